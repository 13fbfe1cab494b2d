"""Automated builds in the Hub API, under ``/api/v2/repositories/{ns}/{repo}/``: the source link (``build-link``),
build rules (``build-rules``), builds (``builds``: history, build now, one build, cancel, its log — live with
``?follow=1`` as ``text/event-stream``), and the inbound triggers: push webhooks from git hosts
(``build-link/webhook``, verified by their signature) and Docker Hub's trigger URL (``trigger/{token}/call/``).

Who may (``dockyard.builds.manage`` / ``service``): admin on the repository manages the link and rules; write lists
rules, starts and cancels builds; read lists builds and reads logs. The triggers take no credentials: the
signature or the token is the capability, and anything wrong is a 401 with nothing queued.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from dockyard.builds import logs
from dockyard.http.api.deps import ApiServices, Caller, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.builds import (
    BuildModel,
    CreatedLink,
    CreateLink,
    CreateRule,
    Link,
    Queued,
    ReplaceRule,
    RuleModel,
    RunBuild,
    TriggerCall,
    build_model,
    link_model,
    rule_model,
)
from dockyard.http.api.schemas.common import PRINTABLE, NsPath, Paginated, RepoPath, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["builds"])

BASE = "/repositories/{ns}/{repo}"
BuildId = Annotated[str, Path(min_length=1, max_length=64, pattern=PRINTABLE, description="the build's id")]
RuleId = Annotated[str, Path(min_length=1, max_length=64, pattern=PRINTABLE, description="the rule's id")]
TriggerToken = Annotated[str, Path(min_length=1, max_length=256, pattern=PRINTABLE, description="the trigger token")]
_LOG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the log as text/plain, or with follow=1 as text/event-stream (one `data:` per line, then "
        "an `end` event whose data is the build's final state)",
        "content": {"text/plain": {}, "text/event-stream": {}},
    }
}


def _public_url(request: Request, svc: ApiServices) -> str:
    return (svc.settings.base_url or str(request.base_url)).rstrip("/")


# -- the link ------------------------------------------------------------------------------------------------------


@router.post(
    BASE + "/build-link",
    status_code=201,
    response_model=CreatedLink,
    responses=error_responses(400, 401, 403, 404),
)
async def create_link(
    body: CreateLink, request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath
) -> CreatedLink:
    """Link the repository to a git remote (admin), or re-link it (its rules stay; credentials, webhook secret and
    trigger token are new). An SSH remote gets a new ed25519 deploy key: install ``ssh_public_key`` on the git
    host. ``webhook_secret`` and ``trigger_url`` are shown this once."""
    view, secrets = await svc.build_settings.link(
        who,
        ns,
        repo,
        url=body.url,
        https_username=body.https_username,
        https_token=body.https_token,
        ssh_known_hosts=body.ssh_known_hosts,
        poll_interval_seconds=body.poll_interval_seconds,
        source_ip=client_ip(request),
    )
    base = f"{_public_url(request, svc)}/api/v2/repositories/{ns}/{repo}"
    return CreatedLink(
        **link_model(view).model_dump(),
        webhook_url=f"{base}/build-link/webhook",
        webhook_secret=secrets.webhook_secret,
        trigger_url=f"{base}/trigger/{secrets.trigger_token}/call/",
    )


@router.get(BASE + "/build-link", response_model=Link, responses=error_responses(401, 403, 404))
async def get_link(svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath) -> Link:
    """The repository's link (admin); no secret is ever shown again."""
    return link_model(await svc.build_settings.get_link(who, ns, repo))


@router.delete(BASE + "/build-link", status_code=204, responses=error_responses(401, 403, 404, ok=(204, "unlinked")))
async def delete_link(request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath) -> Response:
    """Unlink the repository and drop its rules (admin); the build history stays."""
    await svc.build_settings.unlink(who, ns, repo, source_ip=client_ip(request))
    return Response(status_code=204)


@router.post(BASE + "/build-link/webhook", status_code=202, response_model=Queued, responses=error_responses(400, 401))
async def push_webhook(request: Request, svc: Services, ns: NsPath, repo: RepoPath) -> Queued:
    """A push webhook from GitHub (``X-Hub-Signature-256``), GitLab (``X-Gitlab-Token``), Gitea/Forgejo
    (``X-Gitea-Signature``) or Bitbucket (``X-Hub-Signature``), signed with the link's webhook secret. A wrong or
    missing signature, or a repository that is not linked, is 401 and queues nothing."""
    body = await request.body()
    queued = await svc.builds.on_push(ns, repo, dict(request.headers), body)
    return Queued(builds=[q.build for q in queued])


@router.post(
    BASE + "/trigger/{token}/call", status_code=202, response_model=Queued, responses=error_responses(400, 401)
)
async def trigger_call(svc: Services, ns: NsPath, repo: RepoPath, token: TriggerToken, body: TriggerCall) -> Queued:
    """Docker Hub's build trigger: ``{"source_type": "Branch", "source_name": "main"}`` builds that ref with
    every rule that matches it; ``{"build": true}`` (or ``{}``) every ref the rules match. 401 for a wrong token."""
    queued = await svc.builds.on_trigger(
        ns, repo, token, {"source_type": body.source_type, "source_name": body.source_name}
    )
    return Queued(builds=[q.build for q in queued])


# -- rules ---------------------------------------------------------------------------------------------------------


@router.get(BASE + "/build-rules", response_model=list[RuleModel], responses=error_responses(401, 403, 404))
async def list_rules(svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath) -> list[RuleModel]:
    """The build rules, oldest first (write); secret build args show no value."""
    return [rule_model(view) for view in await svc.build_settings.list_rules(who, ns, repo)]


@router.post(
    BASE + "/build-rules", status_code=201, response_model=RuleModel, responses=error_responses(400, 401, 403, 404)
)
async def create_rule(
    body: CreateRule, request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath
) -> RuleModel:
    """Add a build rule (admin)."""
    view = await svc.build_settings.add_rule(
        who,
        ns,
        repo,
        source_type=body.source_type,
        source_name=body.source_name,
        tag=body.tag,
        dockerfile=body.dockerfile,
        build_context=body.build_context,
        build_args=[arg.model_dump() for arg in body.build_args],
        autobuild=body.autobuild,
        build_cache=body.build_cache,
        also_latest=body.also_latest,
        network=body.network,
        source_ip=client_ip(request),
    )
    return rule_model(view)


@router.put(BASE + "/build-rules/{rule}", response_model=RuleModel, responses=error_responses(400, 401, 403, 404))
async def replace_rule(
    body: ReplaceRule, request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath, rule: RuleId
) -> RuleModel:
    """Replace a build rule's settings, keeping its id (admin); without ``build_args`` the stored ones stay."""
    view = await svc.build_settings.update_rule(
        who,
        ns,
        repo,
        rule,
        source_type=body.source_type,
        source_name=body.source_name,
        tag=body.tag,
        dockerfile=body.dockerfile,
        build_context=body.build_context,
        build_args=None if body.build_args is None else [arg.model_dump() for arg in body.build_args],
        autobuild=body.autobuild,
        build_cache=body.build_cache,
        also_latest=body.also_latest,
        network=body.network,
        source_ip=client_ip(request),
    )
    return rule_model(view)


@router.delete(
    BASE + "/build-rules/{rule}", status_code=204, responses=error_responses(401, 403, 404, ok=(204, "removed"))
)
async def delete_rule(
    request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath, rule: RuleId
) -> Response:
    """Remove a build rule (admin)."""
    await svc.build_settings.delete_rule(who, ns, repo, rule, source_ip=client_ip(request))
    return Response(status_code=204)


# -- builds --------------------------------------------------------------------------------------------------------


@router.get(BASE + "/builds", response_model=Paginated[BuildModel], responses=error_responses(401, 403, 404))
async def list_builds(
    request: Request, svc: Services, who: Caller, ns: NsPath, repo: RepoPath, page: Paging
) -> dict[str, Any]:
    """The repository's builds, newest first (read)."""
    found = await svc.builds.list(who, ns, repo, page)
    return paginated(request, found, [build_model(view) for view in found.items])


@router.post(BASE + "/builds", status_code=202, response_model=Queued, responses=error_responses(400, 401, 403, 404))
async def run_build(
    request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath, body: RunBuild
) -> Queued:
    """Build now (write): a branch or tag with every rule that matches it (or only ``rule``); without
    ``source_name`` every ref the rules match (listed in the background: the answer is then empty)."""
    queued = await svc.builds.run(
        who,
        ns,
        repo,
        source_type=body.source_type,
        source_name=body.source_name,
        rule=body.rule,
        source_ip=client_ip(request),
    )
    return Queued(builds=[q.build for q in queued])


@router.get(BASE + "/builds/{build}", response_model=BuildModel, responses=error_responses(401, 403, 404))
async def get_build(svc: Services, who: Caller, ns: NsPath, repo: RepoPath, build: BuildId) -> BuildModel:
    _, view = await svc.builds.get(who, ns, repo, build)
    return build_model(view)


@router.post(BASE + "/builds/{build}/cancel", response_model=BuildModel, responses=error_responses(401, 403, 404))
async def cancel_build(
    request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath, build: BuildId
) -> BuildModel:
    """Cancel a queued or running build (write); a finished one is answered as it is."""
    return build_model(await svc.builds.cancel(who, ns, repo, build, source_ip=client_ip(request)))


@router.get(
    BASE + "/builds/{build}/logs",
    response_class=StreamingResponse,
    responses={**_LOG_RESPONSES, **error_responses(401, 403, 404)},
)
async def build_logs(
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    build: BuildId,
    follow: Annotated[bool, Query(description="stream new lines until the build ends (text/event-stream)")] = False,
) -> StreamingResponse:
    """The build's log (read): what has been written so far, or with ``follow`` every line as it comes."""
    row_id, _ = await svc.builds.get(who, ns, repo, build)
    db = svc.builds.db

    async def plain() -> AsyncIterator[bytes]:
        async for line in logs.read_log(db, svc.blobs, row_id):
            yield (line + "\n").encode()

    async def events() -> AsyncIterator[bytes]:
        async for line in logs.read_log(db, svc.blobs, row_id, follow=True):
            yield "".join(f"data: {part}\n" for part in line.split("\r")).encode() + b"\n"
        _, final = await svc.builds.get(who, ns, repo, build)
        yield f"event: end\ndata: {final.state}\n\n".encode()

    if follow:
        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
    return StreamingResponse(plain(), media_type="text/plain; charset=utf-8")
