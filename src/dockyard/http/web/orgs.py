"""Organization pages: ``/orgs/new`` (any signed-in user creates an organization they own) and
``/orgs/<org>/settings`` (its owners manage it: members and their roles, invitations — made, resent, cancelled,
their links shown when no SMTP server mails them —, teams, a team's members and its permissions on the
organization's repositories).

Every change is one ``action`` of the settings form, handed to ``OrgService``/``TeamService`` — the services the
Hub API calls, which ask the authorizer; the page's GET asks ``OrgService.get_managed_org`` (owners only: 403 to
the others, as the API answers; an unknown organization is a 404).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.accounts.invites import EXISTING_MEMBER, INVALID_INVITEE
from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import GRANTABLE, attempt, field, level_of, require_signed_in
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form

MAX_LISTED = 100
ROLES = ("member", "editor", "owner")
NOT_INVITED = {
    EXISTING_MEMBER: "already a member",
    INVALID_INVITEE: "no such user, nor an e-mail address",
}


async def new_org_form(request: Request) -> Response:
    current = await visit_of(request)
    require_signed_in(current)
    return page(request, current, "org_new.html", title="New organization", error="", name="")


async def create_org(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    require_signed_in(current)
    name = fields.get("name", "").strip()

    async def create() -> None:
        await services.orgs.create_org(field(fields, "name"), actor=current.principal, source_ip=client_ip(request))

    failed = await attempt(create)
    if failed is not None:
        message, status = failed
        return page(request, current, "org_new.html", status=status, title="New organization", error=message, name=name)
    return finish(RedirectResponse(f"/orgs/{name}/settings", status_code=303), request, current)


async def _render(request: Request, current: Visit, org: str, *, error: str = "", status: int = 200) -> Response:
    services = services_of(request)
    actor = current.principal
    info = await services.orgs.get_managed_org(org, actor=actor)
    members = (await services.orgs.list_members(org, PageRequest(1, MAX_LISTED), actor=actor)).items
    invites = await services.invites.list(org, base_url=str(request.base_url), actor=actor)
    teams = []
    for team in (await services.teams.list_teams(org, PageRequest(1, MAX_LISTED), actor=actor)).items:
        people = (await services.teams.list_team_members(org, team.name, PageRequest(1, MAX_LISTED), actor=actor)).items
        grants = await services.teams.list_team_permissions(org, team.name, actor=actor)
        teams.append((team, people, grants))
    return page(
        request,
        current,
        "org_settings.html",
        status=status,
        title=f"Manage {info.name}",
        org=info,
        members=members,
        invites=invites,
        mail=bool(services.settings.smtp_host),
        teams=teams,
        roles=ROLES,
        levels=GRANTABLE,
        error=error,
        saved=request.query_params.get("saved") == "1",
    )


async def org_settings(request: Request) -> Response:
    current = await visit_of(request)
    require_signed_in(current)
    return await _render(request, current, request.path_params["org"])


def _actions(request: Request, current: Visit, org: str, fields: dict[str, str]) -> Callable[[], Awaitable[object]]:
    """The service call the form's ``action`` asks for (an unknown action is refused as bad input)."""
    services = services_of(request)
    actor, ip = current.principal, client_ip(request)
    orgs, teams = services.orgs, services.teams
    action = fields.get("action", "")

    def repository() -> str:  # a repository of the organization: its short name or its full name
        name = field(fields, "repository")
        return name if "/" in name else f"{org}/{name}"

    invites, base = services.invites, str(request.base_url)

    def invitees() -> list[str]:  # comma, semicolon or white space between names, as on Docker Hub
        return [name for name in re.split(r"[\s,;]+", field(fields, "invitees")) if name]

    async def invite() -> None:
        results = await invites.invite(
            org,
            invitees(),
            team=fields.get("team", "").strip() or None,
            role=fields.get("role", "member"),
            base_url=base,
            actor=actor,
            source_ip=ip,
        )
        refused = [f"{r.invitee} ({NOT_INVITED[r.status]})" for r in results if r.status in NOT_INVITED]
        if refused:  # the others were invited; the page says who was not
            raise Invalid("invite", "not invited: " + ", ".join(refused))

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "invite": invite,
        "resend_invite": lambda: invites.resend(field(fields, "invite"), base_url=base, actor=actor, source_ip=ip),
        "cancel_invite": lambda: invites.delete(field(fields, "invite"), actor=actor, source_ip=ip),
        "add_member": lambda: orgs.add_member(
            org, field(fields, "username"), fields.get("role", "member"), actor=actor, source_ip=ip
        ),
        "set_role": lambda: orgs.set_member_role(
            org, field(fields, "username"), field(fields, "role"), actor=actor, source_ip=ip
        ),
        "remove_member": lambda: orgs.remove_member(org, field(fields, "username"), actor=actor, source_ip=ip),
        "create_team": lambda: teams.create_team(
            org, field(fields, "team"), fields.get("description", ""), actor=actor, source_ip=ip
        ),
        "delete_team": lambda: teams.delete_team(org, field(fields, "team"), actor=actor, source_ip=ip),
        "add_team_member": lambda: teams.add_team_member(
            org, field(fields, "team"), field(fields, "username"), actor=actor, source_ip=ip
        ),
        "remove_team_member": lambda: teams.remove_team_member(
            org, field(fields, "team"), field(fields, "username"), actor=actor, source_ip=ip
        ),
        "grant": lambda: teams.set_team_permission(
            org,
            field(fields, "team"),
            repository(),
            level_of(fields.get("permission", "")),
            actor=actor,
            source_ip=ip,
        ),
        "revoke": lambda: teams.remove_team_permission(
            org, field(fields, "team"), repository(), actor=actor, source_ip=ip
        ),
        "require_two_factor": lambda: orgs.update_org(
            org, require_two_factor=fields.get("require_two_factor") == "on", actor=actor, source_ip=ip
        ),
    }
    if action not in calls:

        async def unknown() -> None:
            raise Invalid("request", "unknown action")

        return unknown
    return calls[action]


async def save_org_settings(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    require_signed_in(current)
    org = request.path_params["org"]
    await services.orgs.get_managed_org(org, actor=current.principal)  # 404 / 403 before the form is read
    failed = await attempt(_actions(request, current, org, fields))
    if failed is not None:
        message, status = failed
        return await _render(request, current, org, error=message, status=status)
    return finish(RedirectResponse(f"/orgs/{org}/settings?saved=1", status_code=303), request, current)
