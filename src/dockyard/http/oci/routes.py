"""The /v2 route table (named routes) and the error boundary that renders every failure as OCI JSON."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Scope

from dockyard.errors import DomainError
from dockyard.http.oci import blobs, listing, manifests, token, uploads
from dockyard.http.oci.errors import OCIError, from_domain, render
from dockyard.http.oci.proxying import MirrorPaths

log = logging.getLogger("dockyard.http")

N = "/v2/{name:path}"

ROUTES = [
    Route("/v2/", listing.base, methods=["GET"], name="oci.base"),
    Route("/v2", listing.base, methods=["GET"], name="oci.base.noslash"),
    Route("/v2/_catalog", listing.catalog, methods=["GET"], name="oci.catalog"),
    Route("/v2/token", token.token_get, methods=["GET"], name="oci.token"),
    Route("/v2/token", token.token_post, methods=["POST"], name="oci.token.post"),
    Route(f"{N}/tags/list", listing.tags_list, methods=["GET"], name="oci.tags"),
    Route(f"{N}/referrers/{{digest}}", listing.referrers, methods=["GET"], name="oci.referrers"),
    Route(f"{N}/manifests/{{reference}}", manifests.get_manifest, methods=["GET", "HEAD"], name="oci.manifest"),
    Route(f"{N}/manifests/{{reference}}", manifests.put_manifest, methods=["PUT"], name="oci.manifest.put"),
    Route(
        f"{N}/manifests/{{reference}}",
        manifests.delete_manifest,
        methods=["DELETE"],
        name="oci.manifest.delete",
    ),
    Route(f"{N}/blobs/uploads/", uploads.start_upload, methods=["POST"], name="oci.upload.start"),
    Route(f"{N}/blobs/uploads", uploads.start_upload, methods=["POST"], name="oci.upload.start.noslash"),
    Route(f"{N}/blobs/uploads/{{upload_id}}", uploads.get_upload, methods=["GET"], name="oci.upload.status"),
    Route(f"{N}/blobs/uploads/{{upload_id}}", uploads.patch_upload, methods=["PATCH"], name="oci.upload.patch"),
    Route(f"{N}/blobs/uploads/{{upload_id}}", uploads.put_upload, methods=["PUT"], name="oci.upload.complete"),
    Route(
        f"{N}/blobs/uploads/{{upload_id}}",
        uploads.delete_upload,
        methods=["DELETE"],
        name="oci.upload.cancel",
    ),
    Route(f"{N}/blobs/{{digest}}", blobs.get_blob, methods=["GET", "HEAD"], name="oci.blob"),
    Route(f"{N}/blobs/{{digest}}", blobs.delete_blob, methods=["DELETE"], name="oci.blob.delete"),
]


def failure_response(exc: Exception, scope: Scope) -> Response:
    """The /v2 error boundary (``Front``'s ``boundary``): domain errors, OCIError and routing failures as the
    spec's JSON; anything else a logged ``UNKNOWN`` 500 without a traceback for the client."""
    return render(_translate(exc, scope), head=scope["method"] == "HEAD")


def _translate(exc: Exception, scope: Scope) -> OCIError:
    if isinstance(exc, OCIError):
        return exc
    if isinstance(exc, DomainError):
        return from_domain(exc)
    if isinstance(exc, HTTPException):
        headers = dict(exc.headers or {})  # a 405's Allow (RFC 9110 §15.5.6)
        if exc.status_code == 405:
            return OCIError("UNSUPPORTED", "method not allowed on this endpoint", status=405, headers=headers)
        if exc.status_code == 404:
            path = {"path": scope.get("path", "")[:200]}
            return OCIError("UNSUPPORTED", "no such endpoint", path, status=404, headers=headers)
        return OCIError("UNSUPPORTED", exc.detail, status=exc.status_code, headers=headers)
    request_id = scope.get("state", {}).get("request_id")
    log.error("unhandled error (request %s)", request_id, exc_info=exc)
    return OCIError("UNKNOWN", "internal server error", {"request_id": request_id})


def oci_app() -> ASGIApp:
    """The /v2 surface behind its ``Front`` (which renders its failures with ``failure_response``)."""
    return MirrorPaths(Router(routes=ROUTES))
