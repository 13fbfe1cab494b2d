"""Robot accounts of organizations in the Hub API: ``org+name`` machine identities with explicit permissions on
the organization's repositories. Their secret is shown once, at creation and at each regeneration. Owners of
the organization (and site administrators) manage them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Request, Response
from pydantic import BaseModel, Field, field_validator

from dockyard.accounts.names import ROBOT_SHORTNAME_RE
from dockyard.accounts.robots import KEEP
from dockyard.accounts.snapshots import RobotInfo
from dockyard.authz.permissions import Level
from dockyard.http.api.deps import Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import AccountPath, NamePath, RepositoryPermission, Text, repository_permission
from dockyard.http.api.schemas.common import NO_CONTENT, Paginated, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["robots"])

MAX_ROBOT_PERMISSIONS = 500
ShortName = Annotated[
    str,
    Field(
        min_length=2,
        max_length=255,
        pattern=ROBOT_SHORTNAME_RE.pattern,
        description="a lowercase letter, then lowercase letters, digits or _ (the robot is ``org+name``)",
    ),
]
Permissions = Annotated[list[RepositoryPermission], Field(max_length=MAX_ROBOT_PERMISSIONS)]


def _distinct(permissions: list[RepositoryPermission] | None) -> list[RepositoryPermission] | None:
    if permissions is not None and len({p.repository for p in permissions}) != len(permissions):
        raise ValueError("each repository may appear once")
    return permissions


class CreateRobot(BaseModel):
    name: ShortName
    description: Text = ""
    permissions: Permissions = Field(
        default_factory=list, description="repositories of the organization (full names) and the robot's level"
    )
    expires_at: datetime | None = Field(default=None, description="when the robot stops working (null: never)")

    _check_permissions = field_validator("permissions")(_distinct)


class UpdateRobot(BaseModel):
    description: Text | None = None
    is_active: bool | None = Field(default=None, description="false disables the robot at once")
    permissions: Permissions | None = Field(default=None, description="replaces all of the robot's permissions")
    expires_at: datetime | None = Field(default=None, description="a new expiry; null: never (absent: unchanged)")

    _check_permissions = field_validator("permissions")(_distinct)


class Robot(BaseModel):
    name: str = Field(description="``org+shortname``: what the robot signs in with")
    shortname: str
    org: str
    description: str
    is_active: bool
    created_at: datetime
    expires_at: datetime | None = Field(description="when the robot stops working; null: never")
    permissions: list[RepositoryPermission]


class CreatedRobot(Robot):
    secret: str = Field(description="shown in this response only")


class RobotSecret(BaseModel):
    name: str
    secret: str = Field(description="the new secret (the old one stops working); shown in this response only")


def _robot(info: RobotInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "shortname": info.shortname,
        "org": info.org,
        "description": info.description,
        "is_active": not info.disabled,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "permissions": [repository_permission(grant) for grant in info.permissions],
    }


def _levels(permissions: list[RepositoryPermission]) -> dict[str, Level]:
    return {p.repository: Level.parse(p.permission) for p in permissions}


@router.get("/orgs/{org}/robots", response_model=Paginated[Robot], responses=error_responses(401, 403, 404))
async def list_robots(org: AccountPath, request: Request, svc: Services, who: SignedIn, page: Paging) -> dict[str, Any]:
    """The organization's robots by name (owners)."""
    robots = await svc.robots.list_robots(org, page, actor=who)
    return paginated(request, robots, [Robot(**_robot(info)) for info in robots.items])


@router.post(
    "/orgs/{org}/robots",
    response_model=CreatedRobot,
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def create_robot(
    org: AccountPath, body: CreateRobot, request: Request, svc: Services, who: SignedIn
) -> CreatedRobot:
    """Create the robot ``org+name`` with the given permissions (missing repositories of the organization are
    created). The secret is not stored: this response is the only time it is shown."""
    info, secret = await svc.robots.create_robot(
        org,
        body.name,
        description=body.description,
        permissions=_levels(body.permissions),
        expires_at=body.expires_at,
        actor=who,
        source_ip=client_ip(request),
    )
    return CreatedRobot(**_robot(info), secret=secret)


@router.get("/orgs/{org}/robots/{name}", response_model=Robot, responses=error_responses(400, 401, 403, 404))
async def get_robot(org: AccountPath, name: NamePath, svc: Services, who: SignedIn) -> Robot:
    """A robot, by short name or ``org+name`` (owners)."""
    return Robot(**_robot(await svc.robots.get_robot(org, name, actor=who)))


@router.patch(
    "/orgs/{org}/robots/{name}",
    response_model=Robot,
    responses=error_responses(400, 401, 403, 404),
)
async def update_robot(
    org: AccountPath, name: NamePath, body: UpdateRobot, request: Request, svc: Services, who: SignedIn
) -> Robot:
    """Change the description, disable or enable, replace the permissions, or move the expiry (owners)."""
    info = await svc.robots.update_robot(
        org,
        name,
        description=body.description,
        disabled=None if body.is_active is None else not body.is_active,
        permissions=None if body.permissions is None else _levels(body.permissions),
        expires_at=body.expires_at if "expires_at" in body.model_fields_set else KEEP,
        actor=who,
        source_ip=client_ip(request),
    )
    return Robot(**_robot(info))


@router.delete(
    "/orgs/{org}/robots/{name}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(400, 401, 403, 404)},
)
async def delete_robot(org: AccountPath, name: NamePath, request: Request, svc: Services, who: SignedIn) -> Response:
    await svc.robots.delete_robot(org, name, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)


@router.post(
    "/orgs/{org}/robots/{name}/secret",
    response_model=RobotSecret,
    responses=error_responses(400, 401, 403, 404),
)
async def regenerate_secret(
    org: AccountPath, name: NamePath, request: Request, svc: Services, who: SignedIn
) -> RobotSecret:
    """A new secret for the robot; the old one stops working (owners)."""
    secret = await svc.robots.regenerate_secret(org, name, actor=who, source_ip=client_ip(request))
    info = await svc.robots.get_robot(org, name, actor=who)
    return RobotSecret(name=info.name, secret=secret)
