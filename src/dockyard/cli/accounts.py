"""``dockyard user …``, ``dockyard org …`` and ``dockyard team …``: users, organizations, members and teams,
managed by the server's operator."""

from __future__ import annotations

import secrets

import click

from dockyard.accounts.orgs import OrgService
from dockyard.accounts.snapshots import MEMBER, ORG_ROLES, MemberInfo, OrgInfo, TeamInfo, UserInfo
from dockyard.accounts.teams import TeamService
from dockyard.accounts.two_factor import TwoFactorService
from dockyard.accounts.users import UserService
from dockyard.auth.second_factor import SecondFactor
from dockyard.auth.throttle import LoginThrottle
from dockyard.authz.permissions import Level
from dockyard.cli.common import (
    Group,
    Operator,
    every_page,
    opened_store,
    operator_command,
    print_fields,
    print_table,
    read_password,
    show_secret,
)
from dockyard.cli.scim import scim_token
from dockyard.db.engine import Database

LEVELS = click.Choice(["read", "write", "admin"])


def _print_user(user: UserInfo) -> None:
    print_fields(
        f"user {user.name}",
        [
            ("email", user.email),
            ("admin", user.is_admin),
            ("disabled", user.disabled),
            ("full name", user.full_name),
            ("created", user.created_at),
        ],
    )


@click.group(cls=Group)
def user() -> None:
    """Users: create, list, disable, enable, delete, set passwords, revoke sessions."""


@operator_command(user, "create")
@click.argument("name")
@click.option("--email", default=None, help="The user's e-mail address.")
@click.option("--admin", is_flag=True, help="Make the user a site administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (else generate one).")
def user_create(op: Operator, name: str, email: str | None, admin: bool, password_stdin: bool) -> None:
    """Create a user. Without --password-stdin a password is generated and printed once."""
    given = read_password(password_stdin)
    password = given or secrets.token_urlsafe(18)

    async def work(db: Database) -> UserInfo:
        return await UserService(db, op.settings).create_user(name, email, password, is_admin=admin, actor=op.actor)

    created = op.run(work)
    generated = None if given else password

    def human() -> None:
        _print_user(created)
        if generated:
            show_secret(f"password for {name}", generated)

    op.emit({"user": created, "password": generated}, human)


@operator_command(user, "list")
def user_list(op: Operator) -> None:
    """List all users."""

    async def work(db: Database) -> list[UserInfo]:
        service = UserService(db, op.settings)
        return await every_page(lambda page: service.list_users(page, actor=op.actor))

    users = op.run(work)
    op.emit(
        users,
        lambda: print_table(
            "users",
            ["name", "email", "admin", "disabled", "created"],
            [(u.name, u.email, u.is_admin, u.disabled, u.created_at) for u in users],
        ),
    )


def _set_disabled(op: Operator, name: str, disabled: bool) -> None:
    async def work(db: Database) -> UserInfo:
        return await UserService(db, op.settings).set_disabled(name, disabled, actor=op.actor)

    changed = op.run(work)
    op.emit(changed, lambda: click.echo(f"{name} is {'disabled' if disabled else 'enabled'}"))


@operator_command(user, "disable")
@click.argument("name")
def user_disable(op: Operator, name: str) -> None:
    """Disable a user: sign-ins, access tokens and sessions stop working at once."""
    _set_disabled(op, name, True)


@operator_command(user, "enable")
@click.argument("name")
def user_enable(op: Operator, name: str) -> None:
    """Enable a disabled user."""
    _set_disabled(op, name, False)


@operator_command(user, "delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete the user and every repository of their namespace?")
def user_delete(op: Operator, name: str) -> None:
    """Delete a user with everything their namespace holds; the name stays reserved for the grace period."""

    async def work(db: Database) -> list[str]:
        async with opened_store(op.settings) as store:
            return await UserService(db, op.settings, store).delete_user(name, actor=op.actor)

    deleted = op.run(work)
    op.emit(
        {"deleted": name, "repositories": deleted},
        lambda: click.echo(f"deleted {name} and {len(deleted)} repositories"),
    )


@operator_command(user, "set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (else generate one).")
def user_set_password(op: Operator, name: str, password_stdin: bool) -> None:
    """Set a user's password (their refresh and API tokens stop working). Without --password-stdin a password is
    generated and printed once."""
    given = read_password(password_stdin)
    password = given or secrets.token_urlsafe(18)

    async def work(db: Database) -> None:
        await UserService(db, op.settings).change_password(name, password, actor=op.actor)

    op.run(work)
    generated = None if given else password

    def human() -> None:
        if generated:
            show_secret(f"new password for {name}", generated)
        else:
            click.echo("password changed")

    op.emit({"user": name, "password": generated}, human)


@operator_command(user, "revoke-sessions")
@click.argument("name")
def user_revoke_sessions(op: Operator, name: str) -> None:
    """Sign a user out everywhere: their refresh tokens (docker login) and API tokens stop working at once.
    The password and personal access tokens stay (a password change does this too)."""

    async def work(db: Database) -> None:
        await UserService(db, op.settings).revoke_sessions(name, actor=op.actor)

    op.run(work)
    op.emit({"user": name, "sessions_revoked": True}, lambda: click.echo(f"signed {name} out everywhere"))


@operator_command(user, "reset-2fa")
@click.argument("name")
def user_reset_2fa(op: Operator, name: str) -> None:
    """Remove a user's two-factor sign-in (a lost device and lost recovery codes): they sign in with the password
    alone until they enrol again. Audited (user.2fa.reset)."""

    async def work(db: Database) -> bool:
        factor = SecondFactor(db, op.settings, LoginThrottle(db, op.settings))
        return await TwoFactorService(db, factor).reset(name, actor=op.actor)

    had = op.run(work)
    op.emit(
        {"user": name, "reset": True, "had_second_factor": had},
        lambda: click.echo(f"reset the two-factor sign-in of {name}" if had else f"{name} had no two-factor sign-in"),
    )


@click.group(cls=Group)
def org() -> None:
    """Organizations, their members and their SCIM token."""


org.add_command(scim_token)


def _print_members(org_name: str, members: list[MemberInfo]) -> None:
    print_table(
        f"members of {org_name}",
        ["user", "role", "full name", "joined"],
        [(m.username, m.role, m.full_name, m.joined_at) for m in members],
    )


@operator_command(org, "create")
@click.argument("name")
@click.option("--owner", required=True, help="The user who owns the organization.")
def org_create(op: Operator, name: str, owner: str) -> None:
    """Create an organization owned by a user."""

    async def work(db: Database) -> OrgInfo:
        return await OrgService(db, op.settings).create_org(name, owner=owner, actor=op.actor)

    created = op.run(work)
    op.emit(created, lambda: click.echo(f"created organization {created.name} (owner: {owner})"))


@operator_command(org, "delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete the organization with its repositories, teams and robots?")
def org_delete(op: Operator, name: str) -> None:
    """Delete an organization with everything its namespace holds; the name stays reserved for the grace period."""

    async def work(db: Database) -> list[str]:
        async with opened_store(op.settings) as store:
            return await OrgService(db, op.settings, store).delete_org(name, actor=op.actor)

    deleted = op.run(work)
    op.emit(
        {"deleted": name, "repositories": deleted},
        lambda: click.echo(f"deleted {name} and {len(deleted)} repositories"),
    )


@operator_command(org, "members")
@click.argument("name")
def org_members(op: Operator, name: str) -> None:
    """List an organization's members and their roles."""

    async def work(db: Database) -> list[MemberInfo]:
        service = OrgService(db, op.settings)
        return await every_page(lambda page: service.list_members(name, page, actor=op.actor))

    members = op.run(work)
    op.emit(members, lambda: _print_members(name, members))


@operator_command(org, "add-member")
@click.argument("name")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(ORG_ROLES),
    default=MEMBER,
    show_default=True,
    help="Their role.",
)
def org_add_member(op: Operator, name: str, username: str, role: str) -> None:
    """Add a user to an organization."""

    async def work(db: Database) -> MemberInfo:
        return await OrgService(db, op.settings).add_member(name, username, role, actor=op.actor)

    added = op.run(work)
    op.emit(added, lambda: click.echo(f"{username} is now {role} of {name}"))


@operator_command(org, "set-role")
@click.argument("name")
@click.argument("username")
@click.argument("role", type=click.Choice(ORG_ROLES))
def org_set_role(op: Operator, name: str, username: str, role: str) -> None:
    """Make a member an owner, or an owner a member."""

    async def work(db: Database) -> MemberInfo:
        return await OrgService(db, op.settings).set_member_role(name, username, role, actor=op.actor)

    changed = op.run(work)
    op.emit(changed, lambda: click.echo(f"{username} is now {role} of {name}"))


@operator_command(org, "remove-member")
@click.argument("name")
@click.argument("username")
def org_remove_member(op: Operator, name: str, username: str) -> None:
    """Remove a user from an organization and its teams (an organization keeps at least one owner)."""

    async def work(db: Database) -> None:
        await OrgService(db, op.settings).remove_member(name, username, actor=op.actor)

    op.run(work)
    op.emit({"org": name, "removed": username}, lambda: click.echo(f"removed {username} from {name}"))


@click.group(cls=Group)
def team() -> None:
    """Teams of an organization, their members and repository permissions."""


@operator_command(team, "create")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="TEAM")
@click.option("--description", default="", help="What the team is for.")
def team_create(op: Operator, org_name: str, name: str, description: str) -> None:
    """Create a team in an organization."""

    async def work(db: Database) -> TeamInfo:
        return await TeamService(db, op.settings).create_team(org_name, name, description, actor=op.actor)

    created = op.run(work)
    op.emit(created, lambda: click.echo(f"created team {name} in {org_name}"))


@operator_command(team, "delete")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="TEAM")
def team_delete(op: Operator, org_name: str, name: str) -> None:
    """Delete a team (its members stay in the organization; its permissions go)."""

    async def work(db: Database) -> None:
        await TeamService(db, op.settings).delete_team(org_name, name, actor=op.actor)

    op.run(work)
    op.emit({"org": org_name, "deleted": name}, lambda: click.echo(f"deleted team {name} of {org_name}"))


@operator_command(team, "list")
@click.argument("org_name", metavar="ORG")
def team_list(op: Operator, org_name: str) -> None:
    """List an organization's teams."""

    async def work(db: Database) -> list[TeamInfo]:
        service = TeamService(db, op.settings)
        return await every_page(lambda page: service.list_teams(org_name, page, actor=op.actor))

    teams = op.run(work)
    op.emit(
        teams,
        lambda: print_table(
            f"teams of {org_name}",
            ["team", "members", "description"],
            [(t.name, t.member_count, t.description) for t in teams],
        ),
    )


@operator_command(team, "add-member")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="TEAM")
@click.argument("username", metavar="USER")
def team_add_member(op: Operator, org_name: str, name: str, username: str) -> None:
    """Add a user to a team (and to the organization, as a member, if needed)."""

    async def work(db: Database) -> None:
        await TeamService(db, op.settings).add_team_member(org_name, name, username, actor=op.actor)

    op.run(work)
    op.emit({"org": org_name, "team": name, "added": username}, lambda: click.echo(f"added {username} to {name}"))


@operator_command(team, "remove-member")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="TEAM")
@click.argument("username", metavar="USER")
def team_remove_member(op: Operator, org_name: str, name: str, username: str) -> None:
    """Take a user out of a team."""

    async def work(db: Database) -> None:
        await TeamService(db, op.settings).remove_team_member(org_name, name, username, actor=op.actor)

    op.run(work)
    op.emit({"org": org_name, "team": name, "removed": username}, lambda: click.echo(f"removed {username} from {name}"))


@operator_command(team, "grant")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="TEAM")
@click.argument("repository", metavar="NS/REPO")
@click.argument("level", metavar="read|write|admin", type=LEVELS)
def team_grant(op: Operator, org_name: str, name: str, repository: str, level: str) -> None:
    """Give a team read, write or admin on a repository of the organization (created if missing)."""

    async def work(db: Database) -> None:
        await TeamService(db, op.settings).set_team_permission(
            org_name, name, repository, Level.parse(level), actor=op.actor
        )

    op.run(work)
    op.emit(
        {"org": org_name, "team": name, "repository": repository, "permission": level},
        lambda: click.echo(f"team {name} has {level} on {repository}"),
    )


@operator_command(team, "revoke")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="TEAM")
@click.argument("repository", metavar="NS/REPO")
def team_revoke(op: Operator, org_name: str, name: str, repository: str) -> None:
    """Remove a team's permission on a repository."""

    async def work(db: Database) -> None:
        await TeamService(db, op.settings).remove_team_permission(org_name, name, repository, actor=op.actor)

    op.run(work)
    op.emit(
        {"org": org_name, "team": name, "repository": repository, "permission": None},
        lambda: click.echo(f"team {name} has no permission on {repository} any more"),
    )


@operator_command(team, "permissions")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="TEAM")
def team_permissions(op: Operator, org_name: str, name: str) -> None:
    """List a team's repository permissions."""

    async def work(db: Database) -> list[tuple[str, Level]]:
        grants = await TeamService(db, op.settings).list_team_permissions(org_name, name, actor=op.actor)
        return [(g.repository, g.level) for g in grants]

    grants = op.run(work)
    op.emit(
        [{"repository": repository, "permission": level} for repository, level in grants],
        lambda: print_table(f"permissions of team {name}", ["repository", "permission"], grants),
    )
