"""What is inside an image and what is wrong with it, for one platform image of a tag:
``/r/<ns>/<repo>/tags/<tag>/security`` — the vulnerability report (findings by severity, the fixed version,
suppressions by VEX or the allowlist) and the package inventory (each package's version, ecosystem, the file and
layer it was found in) — and ``…/sbom?format=spdx|cyclonedx``, the SBOM document as an attachment.

The report and the inventory come from the same services as the Hub API's (``VulnerabilityReports.for_tag``,
``inventory.sbom``), which authorize as a pull: a repository the visitor may not pull is a 404 here too.
``?platform=os/arch[/variant]`` picks an index's image.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.files import platform_param
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.inventory.sbom import MEDIA_TYPES, SbomFormat, image_sbom, render_sbom
from dockyard.vulns.reports import ReportedFinding

SEVERITY_ORDER = ("critical", "high", "medium", "low", "unknown")


def _finding_order(finding: ReportedFinding) -> tuple[int, int, float, str, str]:
    severity = SEVERITY_ORDER.index(finding.severity) if finding.severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
    return (finding.suppressed is not None, severity, -(finding.score or 0.0), finding.package, finding.id)


async def security_page(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    namespace, name, tag = request.path_params["ns"], request.path_params["repo"], request.path_params["tag"]
    platform = platform_param(request)
    view = await services.repositories.get(current.principal, namespace, name)
    image = await services.files.image(current.principal, namespace, name, tag, platform=platform)
    sbom = await image_sbom(services.inventory, image)
    report = await services.reports.for_tag(current.principal, namespace, name, tag, platform)
    query = f"?{urlencode({'platform': platform})}" if platform else ""
    base = f"/r/{quote(namespace)}/{quote(name)}/tags/{quote(tag)}"
    return page(
        request,
        current,
        "security.html",
        title=f"{view.full_name}:{tag} security",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view, tag),
        tab="tags",
        tag=tag,
        tag_page=f"{home_of(namespace, name)}/tags/{quote(tag)}",
        image=image,
        sbom=sbom,
        report=report,
        summary=report.summary(),
        findings=sorted(report.findings, key=_finding_order),
        downloads={
            fmt: f"{base}/sbom?{urlencode({'format': fmt, **({'platform': platform} if platform else {})})}"
            for fmt in MEDIA_TYPES
        },
        query=query,
    )


async def sbom_download(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    namespace, name, tag = request.path_params["ns"], request.path_params["repo"], request.path_params["tag"]
    wanted = request.query_params.get("format", "spdx")
    format_: SbomFormat = "cyclonedx" if wanted == "cyclonedx" else "spdx"
    image = await services.files.image(current.principal, namespace, name, tag, platform=platform_param(request))
    sbom = await image_sbom(services.inventory, image)
    if sbom.subject is None:
        message = (
            f"The image's inventory cannot be computed: {sbom.state.error}"
            if sbom.failed
            else "The image's inventory is being computed; try again in a few seconds."
        )
        response = page(
            request, current, "error.html", status=422 if sbom.failed else 503, title="SBOM", message=message
        )
        if not sbom.failed:
            response.headers["Retry-After"] = "5"
        return response
    body, media_type = await render_sbom(sbom.subject, format_, str(request.base_url).rstrip("/"))
    suffix = "spdx.json" if format_ == "spdx" else "cdx.json"
    filename = f"{name}-{tag}-{image.digest.split(':')[-1][:12]}.{suffix}"
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Docker-Content-Digest": image.digest},
    )
