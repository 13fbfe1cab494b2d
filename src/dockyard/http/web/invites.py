"""The invitation link's page, ``/invites/<token>``: what the invitation is to (organization, team, role, who
invited, until when), and — once the invitee has signed in — Accept and Decline buttons. Accepting makes the
signed-in user a member (``InviteService.accept``: an invite by user name is for that user alone) and leads to
the organization's page; declining deletes the invite. An unknown, used or cancelled link is a 404 page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt, require_signed_in
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form


async def _render(request: Request, current: Visit, *, error: str = "", status: int = 200) -> Response:
    token = request.path_params["token"]
    invitation = await services_of(request).invites.lookup(token)
    response = page(
        request,
        current,
        "invite.html",
        status=status,
        title=f"Invitation to {invitation.org}",
        invitation=invitation,
        error=error,
        path=request.url.path,
    )
    response.headers["referrer-policy"] = "no-referrer"  # the path is the secret: never pass it on
    return response


async def invite_page(request: Request) -> Response:
    return await _render(request, await visit_of(request))


async def answer_invite(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    require_signed_in(current)
    token = request.path_params["token"]
    invitation = await services.invites.lookup(token)  # 404 before anything else
    accepting = fields.get("answer") == "accept"

    async def answer() -> None:
        if accepting:
            await services.invites.accept(token, actor=current.principal, source_ip=client_ip(request))
        else:
            await services.invites.decline(token, actor=current.principal, source_ip=client_ip(request))

    failed = await attempt(answer)
    if failed is not None:
        message, status = failed
        return await _render(request, current, error=message, status=status)
    target = f"/orgs/{invitation.org}" if accepting else "/"
    return finish(RedirectResponse(target, status_code=303), request, current)
