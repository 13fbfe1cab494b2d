"""RFC 9457 problem details for every error the Hub API returns: domain errors, request validation failures,
unknown routes and methods, and — without a traceback — anything unexpected (logged with the request id).

Under ``/api/v2/scim/`` the same errors are rendered in SCIM's error schema instead (RFC 7644 §3.12,
``application/scim+json``, with the ``scimType`` a domain error's detail carries): SCIM clients read nothing else."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dockyard import errors as e
from dockyard.http.api import scim_documents as scim

log = logging.getLogger("dockyard.http.api")
PROBLEM = "application/problem+json"

_STATUS: list[tuple[type[e.DomainError], int, str]] = [
    (e.NotFound, 404, "Not Found"),
    (e.TooLarge, 413, "Content Too Large"),
    (e.RangeNotSatisfiable, 416, "Range Not Satisfiable"),
    (e.Invalid, 400, "Bad Request"),
    (e.Conflict, 409, "Conflict"),
    (e.Unsupported, 400, "Unsupported"),
    (e.Denied, 403, "Forbidden"),
    (e.Unauthorized, 401, "Unauthorized"),
    (e.RateLimited, 429, "Too Many Requests"),
    (e.Unavailable, 503, "Service Unavailable"),
]


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def from_domain(exc: e.DomainError) -> Response:
    for cls, status, title in _STATUS:
        if isinstance(exc, cls):
            headers: dict[str, str] = {}
            if isinstance(exc, e.Unauthorized):
                headers["WWW-Authenticate"] = 'Bearer realm="dockyard-api"'
            if isinstance(exc, e.RateLimited):
                headers["Retry-After"] = str(exc.retry_after)
            extra: dict[str, Any] = {"subject": exc.subject}
            if exc.detail is not None:
                extra["errors"] = exc.detail
            return problem(
                status, title, exc.message, type_=f"urn:dockyard:error:{exc.subject}", headers=headers, **extra
            )
    return problem(500, "Internal Server Error", "unexpected error")


def _scim_type(exc: e.DomainError) -> str | None:
    if isinstance(exc.detail, dict) and isinstance(exc.detail.get("scimType"), str):
        return str(exc.detail["scimType"])
    if isinstance(exc, e.Conflict):
        return "uniqueness"
    if isinstance(exc, e.Invalid):
        return "invalidValue"
    return None


def scim_from_domain(exc: e.DomainError) -> Response:
    problem_response = from_domain(exc)
    headers = {
        name: value for name, value in problem_response.headers.items() if name in ("www-authenticate", "retry-after")
    }
    return scim.error(problem_response.status_code, exc.message, _scim_type(exc), headers)


def _is_scim(request: Request) -> bool:
    return request.url.path.startswith(scim.SCIM_PATH + "/") or request.url.path == scim.SCIM_PATH


def install(app: FastAPI) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, e.DomainError)
        if _is_scim(request):
            return scim_from_domain(exc)
        return from_domain(exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type")}
            for err in exc.errors()
        ][:50]
        if _is_scim(request):
            where = ", ".join(".".join(error["loc"]) for error in errors[:5])
            return scim.error(400, f"the request is not valid: {where}", "invalidSyntax")
        return problem(422, "Unprocessable Content", "the request is not valid", errors=errors)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if _is_scim(request):
            return scim.error(exc.status_code, detail, None, dict(exc.headers or {}))
        return problem(exc.status_code, _title(exc.status_code), detail, headers=dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = request.scope.get("state", {}).get("request_id")
        log.error("unhandled error (request %s)", request_id, exc_info=exc)
        if _is_scim(request):
            return scim.error(500, f"internal server error (request {request_id})")
        return problem(500, "Internal Server Error", "internal server error", request_id=request_id)

    app.add_exception_handler(e.DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
