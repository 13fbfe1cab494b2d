"""The administration commands (user, org, team, robot, token, repo) on a fresh data directory, as the operator."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from dockyard.authz.permissions import Level
from dockyard.cli.access import parse_expiry, parse_grants
from dockyard.cli.main import main
from tests.support.schema import seed_sqlite


class Dockyard:
    """Runs ``dockyard …`` against one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        # A fresh data directory: the database is created on request only (--init); it is a copy of a migrated
        # template (tests/support/schema.py), which `db upgrade` finds current.
        seed_sqlite(data_dir / "dockyard.db")
        created = CliRunner().invoke(main, ["db", "upgrade", "--init", "--data-dir", str(data_dir)])
        assert created.exit_code == 0, created.output

    def __call__(self, *args: str, stdin: str | None = None, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, [*args, "--data-dir", str(self.data_dir)], input=stdin)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self(*args, "--json", stdin=stdin).stdout)

    def sql(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.data_dir / "dockyard.db") as conn:
            return conn.execute(statement, params).fetchall()


@pytest.fixture
def dockyard(tmp_path: Path) -> Dockyard:
    return Dockyard(tmp_path / "data")


def test_user_lifecycle(dockyard: Dockyard) -> None:
    created = dockyard.json("user", "create", "alice", "--email", "alice@example.com", "--admin")
    assert created["user"]["name"] == "alice"
    assert created["user"]["is_admin"] is True
    generated = created["password"]
    assert len(generated) >= 20
    given = dockyard.json("user", "create", "bobby", "--password-stdin", stdin="pass-word-1\n")
    assert given["password"] is None
    ((stored,),) = dockyard.sql("SELECT password_hash FROM accounts WHERE name = 'bobby'")
    assert stored.startswith("$argon2id$")
    assert "pass-word-1" not in stored
    assert [u["name"] for u in dockyard.json("user", "list")] == ["alice", "bobby"]
    assert dockyard.json("user", "disable", "bobby")["disabled"] is True
    assert dockyard.json("user", "enable", "bobby")["disabled"] is False
    changed = dockyard.json("user", "set-password", "bobby")
    assert changed["password"]
    assert dockyard.sql("SELECT password_hash FROM accounts WHERE name = 'bobby'") != [(stored,)]
    assert dockyard.json("user", "revoke-sessions", "bobby") == {"user": "bobby", "sessions_revoked": True}
    assert "signed alice out everywhere" in dockyard("user", "revoke-sessions", "alice").stdout
    # The password change and the revocation each moved bobby's credential generation on.
    assert dockyard.sql("SELECT credential_generation FROM accounts WHERE name = 'bobby'") == [(2,)]
    assert dockyard.json("user", "delete", "bobby", "--yes") == {"deleted": "bobby", "repositories": []}
    human = dockyard("user", "list").stdout
    assert "alice" in human
    assert "bobby" not in human
    actions = [a for (a,) in dockyard.sql("SELECT action FROM audit_log WHERE actor = 'open' ORDER BY id")]
    assert actions == [
        "account.create",
        "account.create",
        "account.disable",
        "account.enable",
        "account.password_change",
        "user.revoke_sessions",
        "user.revoke_sessions",
        "account.delete",
    ]


def test_user_create_prints_the_generated_password_once(dockyard: Dockyard) -> None:
    output = dockyard("user", "create", "alice").stdout
    line = next(line for line in output.splitlines() if "shown once" in line)
    password = line.rsplit(": ", 1)[1]
    assert len(password) >= 20
    assert password not in dockyard("user", "list").stdout


def test_orgs_and_teams(dockyard: Dockyard) -> None:
    for name in ("alice", "bobby", "carol"):
        dockyard("user", "create", name)
    assert dockyard.json("org", "create", "acme", "--owner", "alice")["name"] == "acme"
    assert dockyard.json("org", "add-member", "acme", "bobby", "--role", "owner")["role"] == "owner"
    dockyard("team", "create", "acme", "devs", "--description", "builders")
    dockyard("team", "add-member", "acme", "devs", "carol")  # joins the organization too
    members = dockyard.json("org", "members", "acme")
    assert [(m["username"], m["role"]) for m in members] == [
        ("alice", "owner"),
        ("bobby", "owner"),
        ("carol", "member"),
    ]
    dockyard("team", "grant", "acme", "devs", "acme/app", "write")
    assert dockyard.json("team", "permissions", "acme", "devs") == [{"repository": "acme/app", "permission": "write"}]
    assert [(t["name"], t["member_count"]) for t in dockyard.json("team", "list", "acme")] == [("devs", 1)]
    dockyard("team", "revoke", "acme", "devs", "acme/app")
    assert dockyard.json("team", "permissions", "acme", "devs") == []
    dockyard("team", "remove-member", "acme", "devs", "carol")
    dockyard("org", "remove-member", "acme", "carol")
    dockyard("org", "set-role", "acme", "bobby", "member")
    failed = dockyard("org", "remove-member", "acme", "alice", ok=False)
    assert failed.exit_code == 1
    assert "at least one owner" in failed.output
    dockyard("team", "delete", "acme", "devs")
    assert dockyard.json("org", "delete", "acme", "--yes") == {"deleted": "acme", "repositories": ["acme/app"]}


def test_robots(dockyard: Dockyard) -> None:
    dockyard("user", "create", "alice")
    dockyard("org", "create", "acme", "--owner", "alice")
    created = dockyard.json("robot", "create", "acme", "ci", "--repo", "app:read", "--repo", "acme/web:write")
    assert created["username"] == "acme+ci"
    assert created["secret"].startswith("dy_rbt_")
    assert created["robot"]["permissions"] == [
        {"repository": "acme/app", "level": "read"},
        {"repository": "acme/web", "level": "write"},
    ]
    ((stored,),) = dockyard.sql("SELECT password_hash FROM accounts WHERE name = 'acme+ci'")
    assert created["secret"] not in stored
    human = dockyard("robot", "create", "acme", "deploy").stdout
    assert "acme+deploy" in human
    assert "dy_rbt_" in human
    assert [r["name"] for r in dockyard.json("robot", "list", "acme")] == ["acme+ci", "acme+deploy"]
    regenerated = dockyard.json("robot", "regenerate-secret", "acme", "ci")["secret"]
    assert regenerated != created["secret"]
    dockyard("robot", "delete", "acme", "ci")
    assert [r["name"] for r in dockyard.json("robot", "list", "acme")] == ["acme+deploy"]
    outside = dockyard("robot", "create", "acme", "bad", "--repo", "other/app:read", ok=False)
    assert outside.exit_code == 1
    assert "acme namespace" in outside.output
    malformed = dockyard("robot", "create", "acme", "bad", "--repo", "app:own", ok=False)
    assert malformed.exit_code == 2


def test_robot_expiry_and_update(dockyard: Dockyard) -> None:
    dockyard("user", "create", "alice")
    dockyard("org", "create", "acme", "--owner", "alice")
    created = dockyard.json("robot", "create", "acme", "ci", "--repo", "app:read", "--expires", "30d")["robot"]
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert "expires" in dockyard("robot", "list", "acme").stdout
    past = dockyard("robot", "create", "acme", "old", "--expires", "2001-01-01", ok=False)
    assert (past.exit_code, "in the future" in past.output) == (1, True)
    updated = dockyard.json("robot", "update", "acme", "ci", "--repo", "app:write", "--expires", "never", "--disable")
    assert updated["expires_at"] is None
    assert updated["disabled"] is True
    assert updated["permissions"] == [{"repository": "acme/app", "level": "write"}]
    kept = dockyard.json("robot", "update", "acme", "ci", "--description", "CI", "--enable")
    assert (kept["expires_at"], kept["disabled"], kept["description"]) == (None, False, "CI")
    assert kept["permissions"] == updated["permissions"]  # grants unchanged unless given
    assert dockyard.json("robot", "update", "acme", "ci", "--no-repos")["permissions"] == []
    both = dockyard("robot", "update", "acme", "ci", "--repo", "app:read", "--no-repos", ok=False)
    assert both.exit_code == 2


def test_tokens(dockyard: Dockyard) -> None:
    dockyard("user", "create", "alice")
    made = dockyard.json(
        "token", "create", "alice", "--label", "ci", "--scope", "repo:read", "--scope", "repo:write",
        "--expires", "30d", "--repo", "alice/app",
    )  # fmt: skip
    token, secret = made["token"], made["secret"]
    assert secret.startswith("dy_pat_")
    assert (token["scopes"], token["repositories"], token["is_active"]) == (
        ["repo:write", "repo:read"],
        ["alice/app"],
        True,
    )
    expires = datetime.fromisoformat(token["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert all(secret not in str(value) for row in dockyard.sql("SELECT * FROM access_tokens") for value in row)
    listed = dockyard.json("token", "list", "alice")
    assert [t["uuid"] for t in listed] == [token["uuid"]]
    assert "secret" not in json.dumps(listed)
    assert "ci" in dockyard("token", "list", "alice").stdout
    dockyard("user", "create", "bobby")
    wrong_owner = dockyard("token", "revoke", "bobby", token["uuid"], ok=False)
    assert wrong_owner.exit_code == 1
    too_short = dockyard("token", "revoke", "alice", token["uuid"][:3], ok=False)
    assert (too_short.exit_code, "at least 4 of its first characters" in too_short.output) == (1, True)
    revoked = dockyard.json("token", "revoke", "alice", token["uuid"][:8])  # a unique start of the id is enough
    assert (revoked["uuid"], revoked["is_active"]) == (token["uuid"], False)
    bad_scope = dockyard("token", "create", "alice", "--label", "x", "--scope", "repo:all", ok=False)
    assert bad_scope.exit_code == 2
    bad_expiry = dockyard(
        "token", "create", "alice", "--label", "x", "--scope", "repo:read", "--expires", "soon", ok=False
    )
    assert bad_expiry.exit_code == 2
    past = dockyard(
        "token", "create", "alice", "--label", "x", "--scope", "repo:read", "--expires", "2001-01-01", ok=False
    )
    assert past.exit_code == 1
    assert "future" in past.output


def test_repo_set_visibility(dockyard: Dockyard) -> None:
    dockyard("user", "create", "alice")
    dockyard("org", "create", "acme", "--owner", "alice")
    dockyard("team", "create", "acme", "devs")
    dockyard("team", "grant", "acme", "devs", "acme/app", "read")  # creates the (private) repository
    assert dockyard.sql("SELECT is_private FROM repositories WHERE name = 'acme/app'") == [(1,)]
    assert dockyard.json("repo", "set-visibility", "acme/app", "public")["changed"] is True
    assert dockyard.sql("SELECT is_private FROM repositories WHERE name = 'acme/app'") == [(0,)]
    assert "unchanged" in dockyard("repo", "set-visibility", "acme/app", "public").stdout
    missing = dockyard("repo", "set-visibility", "acme/nope", "private", ok=False)
    assert missing.exit_code == 1
    assert "repository not found" in missing.output
    # The same entry as the Hub API's PATCH writes (``{"is_private"}``).
    assert dockyard.sql("SELECT actor, target, data FROM audit_log WHERE action = 'repo.change_privacy'") == [
        ("open", "acme/app", '{"is_private":false}')
    ]


def test_errors_are_one_line_without_traceback(dockyard: Dockyard) -> None:
    result = dockyard("org", "create", "acme", "--owner", "ghost", ok=False)
    assert result.exit_code == 1
    assert "Error: user not found" in result.output
    assert "Traceback" not in result.output
    invalid = dockyard("user", "create", "Not_Valid", ok=False)
    assert invalid.exit_code == 1
    assert "lowercase letters and digits" in invalid.output


def test_parse_expiry_and_grants() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_expiry(None, now) is None
    assert parse_expiry("12h", now) == now + timedelta(hours=12)
    assert parse_expiry("2w", now) == now + timedelta(weeks=2)
    assert parse_expiry("2031-06-01", now) == datetime(2031, 6, 1, tzinfo=UTC)
    assert parse_expiry("2031-06-01T10:00:00+02:00", now) == datetime(2031, 6, 1, 8, tzinfo=UTC)
    with pytest.raises(click.BadParameter):
        parse_expiry("tomorrow", now)
    assert parse_grants("acme", ("app:read", "acme/web:admin", "other/x:write")) == {
        "acme/app": Level.READ,
        "acme/web": Level.ADMIN,
        "other/x": Level.WRITE,  # refused later by the service, with its reason
    }
    for bad in ("app", ":read", "app:none"):
        with pytest.raises(click.BadParameter):
            parse_grants("acme", (bad,))


def test_user_reset_2fa(dockyard: Dockyard) -> None:
    dockyard.json("user", "create", "carol")
    ((carol,),) = dockyard.sql("SELECT id FROM accounts WHERE name = 'carol'")
    assert dockyard.json("user", "reset-2fa", "carol") == {"user": "carol", "reset": True, "had_second_factor": False}
    with sqlite3.connect(dockyard.data_dir / "dockyard.db") as conn:  # an enabled factor with recovery codes
        now = datetime.now(UTC).isoformat()
        conn.execute(
            "INSERT INTO two_factor (account_id, secret, created_at, enabled_at) VALUES (?, 'sealed', ?, ?)",
            (carol, now, now),
        )
        conn.execute("INSERT INTO two_factor_recovery_codes (account_id, code_hash) VALUES (?, 'h')", (carol,))
    assert "reset the two-factor sign-in of carol" in dockyard("user", "reset-2fa", "carol").stdout
    assert dockyard.sql("SELECT count(*) FROM two_factor") == [(0,)]
    assert dockyard.sql("SELECT count(*) FROM two_factor_recovery_codes") == [(0,)]
    audited = dockyard.sql("SELECT action, target FROM audit_log WHERE action = 'user.2fa.reset'")
    assert audited == [("user.2fa.reset", "carol"), ("user.2fa.reset", "carol")]
    assert dockyard("user", "reset-2fa", "nobody", ok=False).exit_code != 0
