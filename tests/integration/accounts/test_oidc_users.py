"""Single sign-on's Dockyard side on the test backend's database (``accounts.oidc_users``): first sign-in
creating or linking the user (never an administrator, never a second identity, never a disabled account), the
groups → teams sync (only what the groups gave is taken away), and the CLI secret as a ``docker login`` password
(``auth.credentials``) that the web sign-in refuses. The browser and the real provider: tests/web/test_oidc_pages.py."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select, update

from dockyard.accounts.oidc_users import OidcAccounts
from dockyard.auth.credentials import Authenticator
from dockyard.auth.oidc_results import OidcRefused, OidcSignIn
from dockyard.auth.secrets import SecretBox
from dockyard.auth.web_sessions import WebSessions
from dockyard.db.engine import Database
from dockyard.errors import NotFound, Unauthorized
from dockyard.models import Account, Team, TeamMember
from dockyard.models.base import utcnow
from dockyard.settings import Settings
from tests.support.accounts import audit, make_org, make_user

SECRET = "integration-test-server-secret-0123456789"
ISSUER = "https://idp.example.test"


def oidc(db: Database, **overrides: Any) -> OidcAccounts:
    settings = Settings(
        secret_key=SECRET,
        oidc_issuer=ISSUER,
        oidc_client_id="dockyard",
        oidc_team_mapping=["platform=acme/ops"],
        **overrides,
    )
    return OidcAccounts(db, settings, SecretBox(SECRET))


def signed(subject: str, **claims: Any) -> OidcSignIn:
    return OidcSignIn(ISSUER, subject, {"sub": subject, **claims}, "/")


async def name_of(db: Database, account_id: int) -> str:
    async with db.read() as conn:
        return str((await conn.execute(select(Account.name).where(Account.id == account_id))).scalar_one())


async def teams_of(db: Database, account_id: int) -> set[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(Team.name).join(TeamMember, TeamMember.team_id == Team.id).where(TeamMember.user_id == account_id)
        )
        return {name for (name,) in rows}


async def make_teams(db: Database, org_id: int, *names: str) -> dict[str, int]:
    made = {}
    async with db.write() as conn:
        for name in names:
            made[name] = (
                await conn.execute(
                    insert(Team).values(org_id=org_id, name=name, created_at=utcnow()).returning(Team.id)
                )
            ).scalar_one()
    return made


async def test_first_sign_in_creates_the_user_then_the_identity_is_that_user(db: Database) -> None:
    accounts = oidc(db)
    first = await accounts.sign_in(signed("s-1", preferred_username="Alice.Smith", email="a@example.test"), "10.0.0.1")
    assert await name_of(db, first) == "alicesmith"  # made a Dockyard name, as SCIM does
    # The subject is what counts afterwards, whatever the user name claim says.
    assert await accounts.sign_in(signed("s-1", preferred_username="someone")) == first
    # Another identity with the same user name gets another account.
    second = await accounts.sign_in(signed("s-2", preferred_username="alicesmith"))
    assert second != first
    entries = [(e["namespace"], e["action"], e["actor"]) for e in await audit(db)]
    assert ("alicesmith", "account.create", "oidc") in entries
    assert ("alicesmith", "oidc.user.create", "oidc") in entries


async def test_existing_users_are_linked_but_never_an_administrator(db: Database) -> None:
    accounts = oidc(db, oidc_auto_create_users=False)
    with pytest.raises(OidcRefused, match="no Dockyard account"):
        await accounts.sign_in(signed("s-1", preferred_username="carol"))
    bob = await make_user(db, "bobby")
    assert await accounts.sign_in(signed("s-2", preferred_username="bobby")) == bob.account_id
    assert "oidc.user.link" in [e["action"] for e in await audit(db, "bobby")]
    with pytest.raises(OidcRefused, match="another single sign-on identity"):
        await accounts.sign_in(signed("s-3", preferred_username="bobby"))
    await make_user(db, "root", admin=True)
    with pytest.raises(OidcRefused, match="administrator"):
        await accounts.sign_in(signed("s-4", preferred_username="root"))
    await make_user(db, "gone", disabled=True)
    with pytest.raises(OidcRefused, match="disabled"):
        await accounts.sign_in(signed("s-5", preferred_username="gone"))
    failures = [e for e in await audit(db, "root", logins=True) if e["action"] == "login.failure"]
    assert [(e["actor"], e["data"]["via"], e["data"]["subject"]) for e in failures] == [("root", "oidc", "s-4")]
    async with db.write() as conn:  # a linked account disabled later
        await conn.execute(update(Account).where(Account.id == bob.account_id).values(disabled=True))
    with pytest.raises(OidcRefused, match="disabled"):
        await accounts.sign_in(signed("s-2", preferred_username="bobby"))


async def test_groups_give_and_take_only_their_own_memberships(db: Database) -> None:
    owner = await make_user(db, "owner")
    org_id = await make_org(db, "acme", owners=[owner])
    teams = await make_teams(db, org_id, "dev", "ops", "qa")
    accounts = oidc(db)
    user = await accounts.sign_in(signed("s-1", preferred_username="dana", groups=["acme/dev", "platform", "x/y"]))
    assert await teams_of(db, user) == {"dev", "ops"}
    async with db.write() as conn:  # an owner puts the user in qa by hand
        await conn.execute(insert(TeamMember).values(team_id=teams["qa"], user_id=user))
    await accounts.sign_in(signed("s-1", groups=["acme/dev", "acme/qa"]))
    assert await teams_of(db, user) == {"dev", "qa"}
    await accounts.sign_in(signed("s-1", groups=[]))
    assert await teams_of(db, user) == {"qa"}  # qa was not the provider's to take
    await accounts.sign_in(signed("s-1"))  # no groups claim at all: nothing changes
    assert await teams_of(db, user) == {"qa"}
    org_log = [(e["action"], e["actor"], e["data"].get("team")) for e in await audit(db, "acme")]
    assert org_log == [
        ("org.member.add", "oidc", None),
        ("team.member.add", "oidc", "dev"),
        ("team.member.add", "oidc", "ops"),
        ("team.member.remove", "oidc", "ops"),
        ("team.member.remove", "oidc", "dev"),
    ]


async def test_the_cli_secret_is_a_docker_login_password_and_not_a_web_one(db: Database) -> None:
    settings = Settings(secret_key=SECRET, oidc_issuer=ISSUER, oidc_client_id="dockyard")
    accounts = OidcAccounts(db, settings, SecretBox(SECRET))
    authenticator = Authenticator(db, settings)
    user_id = await accounts.sign_in(signed("s-1", preferred_username="erin"))
    principal = await authenticator.principal_for(user_id)
    assert principal is not None
    secret = await accounts.cli_secret(principal)
    assert secret is not None
    assert secret.startswith("dy_cli_")
    assert (await authenticator.login("erin", secret)).account_id == user_id
    for name, candidate in (("erin", secret + "x"), ("someone", secret), ("", secret)):
        with pytest.raises(Unauthorized):
            await authenticator.login(name, candidate)
    with pytest.raises(Unauthorized):
        await WebSessions(db, settings, authenticator).sign_in("erin", secret)
    renewed = await accounts.regenerate_cli_secret(principal, "10.0.0.2")
    assert renewed != secret
    with pytest.raises(Unauthorized):
        await authenticator.login("erin", secret)
    assert (await authenticator.login("erin", renewed)).account_id == user_id
    assert "oidc.cli_secret.regenerate" in [e["action"] for e in await audit(db, "erin")]
    local = await make_user(db, "frank")
    assert await accounts.cli_secret(local) is None
    with pytest.raises(NotFound):
        await accounts.regenerate_cli_secret(local)
