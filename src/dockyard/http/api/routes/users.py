"""User accounts in the Hub API: the current user and their organizations, creating and listing users
(site administrators), public profiles, profile changes, passwords, "revoke sessions", disabling and deletion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response
from pydantic import BaseModel, Field

from dockyard.accounts.names import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from dockyard.authz.principal import Principal
from dockyard.errors import Denied, Unsupported
from dockyard.http.api.deps import Caller, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import (
    AccountName,
    AccountPath,
    Text,
    UserAccount,
    UserOrganization,
    UserProfile,
    may_see_account,
    organization,
    user_account,
    user_profile,
)
from dockyard.http.api.schemas.common import NO_CONTENT, Paginated, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["users"])

Email = Annotated[str, Field(max_length=MAX_EMAIL_LENGTH, description="e-mail address")]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


class CreateUser(BaseModel):
    username: AccountName
    email: Email | None = None
    password: Password
    is_admin: bool = False


class UpdateUser(BaseModel):
    """Fields to change (absent: unchanged; "" clears a profile field). ``is_active`` and ``is_admin`` are for
    site administrators."""

    full_name: Text | None = None
    company: Text | None = None
    location: Text | None = None
    profile_url: Text | None = None
    email: Email | None = None
    is_active: bool | None = None
    is_admin: bool | None = None


class ChangePassword(BaseModel):
    current_password: str | None = Field(
        default=None, min_length=1, max_length=MAX_PASSWORD_LENGTH, description="required to change your own"
    )
    new_password: Password


def _user_name(who: Principal) -> str:
    if who.kind != "user":
        raise Denied("account", "only users have a user account")
    return who.name


@router.get("/user", response_model=UserAccount, responses=error_responses(401, 403, validated=False))
async def current_user(svc: Services, who: SignedIn) -> UserAccount:
    """The signed-in user's own account."""
    return user_account(await svc.users.get_user(_user_name(who)))


@router.get("/user/orgs", response_model=Paginated[UserOrganization], responses=error_responses(401, 403))
async def current_user_orgs(request: Request, svc: Services, who: SignedIn, page: Paging) -> dict[str, Any]:
    """The organizations the signed-in user belongs to, with their role in each."""
    orgs = await svc.orgs.list_user_orgs(_user_name(who), page, actor=who)
    default = svc.settings.default_private
    results = [UserOrganization(**organization(item.org, default).model_dump(), role=item.role) for item in orgs.items]
    return paginated(request, orgs, results)


@router.post(
    "/users",
    response_model=UserAccount,
    status_code=201,
    responses=error_responses(400, 401, 403, 409),
)
async def create_user(body: CreateUser, request: Request, svc: Services, who: SignedIn) -> UserAccount:
    """Create a user (site administrators only)."""
    info = await svc.users.create_user(
        body.username,
        body.email,
        body.password,
        is_admin=body.is_admin,
        actor=who,
        source_ip=client_ip(request),
    )
    return user_account(info)


@router.get("/users", response_model=Paginated[UserAccount], responses=error_responses(401, 403))
async def list_users(request: Request, svc: Services, who: SignedIn, page: Paging) -> dict[str, Any]:
    """Every user, by name (site administrators only)."""
    users = await svc.users.list_users(page, actor=who)
    return paginated(request, users, [user_account(info) for info in users.items])


@router.get(
    "/users/{username}",
    response_model=UserAccount | UserProfile,
    responses=error_responses(401, 404),
)
async def get_user(username: AccountPath, svc: Services, who: Caller) -> UserAccount | UserProfile:
    """A user's public profile; the user themselves and site administrators also see the e-mail address,
    ``is_admin`` and ``is_active``."""
    info = await svc.users.get_user(username)
    return user_account(info) if may_see_account(who, info) else user_profile(info)


@router.patch(
    "/users/{username}",
    response_model=UserAccount,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def update_user(
    username: AccountPath, body: UpdateUser, request: Request, svc: Services, who: SignedIn
) -> UserAccount:
    """Change profile fields (the user or a site administrator, with a password sign-in); ``is_active`` and
    ``is_admin`` (site administrators)."""
    if (body.is_active is not None or body.is_admin is not None) and not who.superuser:
        raise Denied("account", "only site administrators may change is_active or is_admin")
    if body.is_admin is not None and body.is_admin != (await svc.users.get_user(username)).is_admin:
        # TODO(accounts): UserService has no way to grant or revoke site administration yet.
        raise Unsupported("account", "changing is_admin is not supported yet")
    ip = client_ip(request)
    info = await svc.users.update_profile(
        username,
        full_name=body.full_name,
        company=body.company,
        location=body.location,
        profile_url=body.profile_url,
        email=body.email,
        actor=who,
        source_ip=ip,
    )
    if body.is_active is not None:
        info = await svc.users.set_disabled(username, not body.is_active, actor=who, source_ip=ip)
    return user_account(info)


@router.delete(
    "/users/{username}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404, 409)},
)
async def delete_user(username: AccountPath, request: Request, svc: Services, who: SignedIn) -> Response:
    """Delete a user and everything their namespace holds (the user, with a password sign-in, or a site
    administrator); the audit log is archived and the name reserved for `deleted_name_grace_days`. Refused
    while the user is the only owner of an organization."""
    await svc.users.delete_user(username, actor=who, source_ip=client_ip(request))
    svc.checker.forget(username)  # their trust policies and keys are gone
    return Response(status_code=204)


@router.put(
    "/users/{username}/password",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(400, 401, 403, 404)},
)
async def change_password(
    username: AccountPath, body: ChangePassword, request: Request, svc: Services, who: SignedIn
) -> Response:
    """Set a new password. Users changing their own give ``current_password``; site administrators need not."""
    ip = client_ip(request)

    async def check_current(password: str) -> bool:  # throttled like a sign-in
        return await svc.authenticator.check_password(username, password, ip)

    await svc.users.change_password(
        username, body.new_password, current=body.current_password, actor=who, source_ip=ip, check_current=check_current
    )
    return Response(status_code=204)


@router.post(
    "/users/{username}/revoke-sessions",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def revoke_sessions(username: AccountPath, request: Request, svc: Services, who: SignedIn) -> Response:
    """Sign out everywhere: every refresh token (``docker login``) and API token issued to the user before now
    stops working; the password and personal access tokens stay. The user, with a password sign-in, or a site
    administrator."""
    await svc.users.revoke_sessions(username, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)
