"""Organization invites in the Hub API, as Docker Hub has them — ``GET /api/v2/orgs/{org}/invites``,
``POST /api/v2/invites/bulk``, ``PATCH /api/v2/invites/{id}/resend``, ``DELETE /api/v2/invites/{id}``: the
organization's owners invite by user name or e-mail address — and Dockyard's own acceptance by the invitee:
``POST /api/v2/invites/accept`` and ``/decline`` with the token of the invitation link. See
``dockyard.accounts.invites``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response
from pydantic import BaseModel, Field

from dockyard.accounts.invites import MAX_INVITEES, BulkResult, Invitation, InviteInfo
from dockyard.http.api.deps import Services, SignedIn
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import AccountPath
from dockyard.http.api.schemas.common import NO_CONTENT, PRINTABLE, Timestamp, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["invites"])

InviteId = Annotated[str, Path(min_length=1, max_length=36, pattern=PRINTABLE, description="the invite's id")]
Name = Annotated[str, Field(min_length=1, max_length=320, pattern=PRINTABLE)]
Token = Annotated[
    str, Field(min_length=1, max_length=128, pattern=PRINTABLE, description="the invitation link's token")
]


class Invite(BaseModel):
    """Docker Hub's ``invite`` (``team`` is empty for an invite to the organization alone), and Dockyard's
    ``role``, ``expires_at``, ``is_expired`` and — only when no SMTP server is configured — ``link``, the
    invitation link to hand to the invitee."""

    id: str
    inviter_username: str
    invitee: str
    org: str
    team: str
    role: str
    created_at: Timestamp
    expires_at: Timestamp
    is_expired: bool
    link: str | None = Field(default=None, description="the invitation link; only when e-mail is off")


class InviteList(BaseModel):
    data: list[Invite]


class BulkInvite(BaseModel):
    """Docker Hub's bulk invite: ``invitees`` are user names or e-mail addresses; ``role`` owner, editor or member
    (any case); ``dry_run`` checks and answers without inviting anyone."""

    org: Name
    team: Name | None = None
    role: Annotated[str, Field(min_length=1, max_length=16)] = "member"
    invitees: Annotated[list[Name], Field(min_length=1, max_length=MAX_INVITEES)]
    dry_run: bool = False


class BulkInvitee(BaseModel):
    """One invitee's outcome: ``invited``, ``already_invited`` (the pending invite), ``existing_org_member`` or
    ``invalid_email_or_docker_id``."""

    invitee: str
    status: str
    invite: Invite | None = None


class BulkInvited(BaseModel):
    invitees: list[BulkInvitee]


class InviteToken(BaseModel):
    token: Token


class Accepted(BaseModel):
    """What the accepted invitation made the caller: a member of ``org`` with ``role`` (and of ``team``)."""

    org: str
    team: str
    role: str


def _invite(info: InviteInfo) -> Invite:
    return Invite(
        id=info.id,
        inviter_username=info.inviter,
        invitee=info.invitee,
        org=info.org,
        team=info.team or "",
        role=info.role,
        created_at=info.created_at,
        expires_at=info.expires_at,
        is_expired=info.expired,
        link=info.link,
    )


def _bulk(result: BulkResult) -> BulkInvitee:
    invite = _invite(result.invite) if result.invite is not None else None
    return BulkInvitee(invitee=result.invitee, status=result.status, invite=invite)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/orgs/{org}/invites", response_model=InviteList, responses=error_responses(401, 403, 404))
async def list_invites(org: AccountPath, request: Request, svc: Services, who: SignedIn) -> InviteList:
    """The organization's pending invites, newest first, expired ones included (owners)."""
    invites = await svc.invites.list(org, base_url=_base(request), actor=who)
    return InviteList(data=[_invite(info) for info in invites])


@router.post(
    "/invites/bulk",
    response_model=BulkInvited,
    response_model_exclude_none=True,
    status_code=202,
    responses=error_responses(400, 401, 403, 404),
)
async def bulk_invite(body: BulkInvite, request: Request, svc: Services, who: SignedIn) -> BulkInvited:
    """Invite people to the organization (and a team) by user name or e-mail address (owners). The link is mailed
    when an SMTP server is configured, else answered in each invite's ``link``."""
    results = await svc.invites.invite(
        body.org,
        body.invitees,
        team=body.team,
        role=body.role,
        dry_run=body.dry_run,
        base_url=_base(request),
        actor=who,
        source_ip=client_ip(request),
    )
    return BulkInvited(invitees=[_bulk(result) for result in results])


@router.patch(
    "/invites/{invite_id}/resend",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 404)},
)
async def resend_invite(invite_id: InviteId, request: Request, svc: Services, who: SignedIn) -> Response:
    """Renew the invite's expiry and mail its link again (owners of its organization)."""
    await svc.invites.resend(invite_id, base_url=_base(request), actor=who, source_ip=client_ip(request))
    return Response(status_code=204)


@router.delete(
    "/invites/{invite_id}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 404)},
)
async def delete_invite(invite_id: InviteId, request: Request, svc: Services, who: SignedIn) -> Response:
    """Cancel the invite (owners of its organization): its link stops working."""
    await svc.invites.delete(invite_id, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)


def _accepted(invitation: Invitation) -> Accepted:
    return Accepted(org=invitation.org, team=invitation.team or "", role=invitation.role)


@router.post("/invites/accept", response_model=Accepted, responses=error_responses(400, 401, 403, 404, 409))
async def accept_invite(body: InviteToken, request: Request, svc: Services, who: SignedIn) -> Accepted:
    """Dockyard's own: accept an invitation with its link's token — the caller joins the organization with the
    invite's role (and its team). An invite by user name is for that user only; 409 once it has expired. Needs
    the account's own sign-in (not a personal access token)."""
    return _accepted(await svc.invites.accept(body.token, actor=who, source_ip=client_ip(request)))


@router.post(
    "/invites/decline",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(400, 401, 403, 404)},
)
async def decline_invite(body: InviteToken, request: Request, svc: Services, who: SignedIn) -> Response:
    """Dockyard's own: decline an invitation with its link's token; the invite is deleted."""
    await svc.invites.decline(body.token, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)
