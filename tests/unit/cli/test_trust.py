"""``dockyard trust key …`` and ``dockyard trust policy …`` on a fresh data directory, as the operator: trusting a
public key from a ``dockyard key generate`` file or standard input, listing and removing it (by a unique start of
its id), a namespace's default policy and a repository's own, and errors as one line. The database is the test
backend's (SQLite, or PostgreSQL with ``DOCKYARD_TEST_BACKEND=scaleout``)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dockyard.authz.principal import OPEN
from dockyard.cli.main import main
from dockyard.cli.trust import default_key_name, resolve_key_id
from dockyard.errors import Invalid, NotFound
from dockyard.settings import load_settings
from dockyard.trust.manage import KeyView, TrustService
from tests.support import backend
from tests.unit.cli.test_accounts import Dockyard


class Deployment(Dockyard):
    """``dockyard …`` over one deployment of the test backend: a data directory, and on the scale-out backend a
    PostgreSQL database of its own."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.env: dict[str, str] = {}
        if backend.is_scaleout():
            from tests.support.postgres import shared_cluster

            self.env["DOCKYARD_DATABASE_URL"] = shared_cluster().create_database("trust_cli", migrated=True)
        self("user", "create", "alice")
        self("org", "create", "acme", "--owner", "alice")

    def __call__(self, *args: str, stdin: str | None = None, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, [*args, "--data-dir", str(self.data_dir)], input=stdin, env=self.env)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def audit_actions(self, like: str) -> list[str]:
        url = (
            self.env.get("DOCKYARD_DATABASE_URL") or load_settings(None, data_dir=self.data_dir).effective_database_url
        )

        async def query() -> list[str]:
            engine = create_async_engine(url)
            try:
                async with engine.connect() as conn:
                    rows = await conn.execute(
                        text("SELECT action FROM audit_log WHERE action LIKE :like ORDER BY id"), {"like": like}
                    )
                    return [str(action) for (action,) in rows]
            finally:
                await engine.dispose()

        return asyncio.run(query())


@pytest.fixture
def dockyard(tmp_path: Path) -> Deployment:
    return Deployment(tmp_path / "data")


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """One deployment for the tests that change nothing (errors)."""
    return Deployment(tmp_path_factory.mktemp("trust-cli") / "data")


def generate_key(prefix: Path) -> tuple[Path, str]:
    """A key pair from ``dockyard key generate``: the .pub file and the key id it printed."""
    result = CliRunner().invoke(
        main, ["key", "generate", "--output-prefix", str(prefix), "--password-stdin"], input="pw\n"
    )
    assert result.exit_code == 0, result.output
    found = re.search(r"Key ID: ([0-9a-f]{64})", result.output)
    assert found is not None, result.output
    return prefix.parent / f"{prefix.name}.pub", found.group(1)


def test_add_list_and_remove_keys(dockyard: Deployment, tmp_path: Path) -> None:
    pub, kid = generate_key(tmp_path / "ci")
    added = dockyard.json("trust", "key", "add", "acme", "--file", str(pub))
    assert (added["key_id"], added["name"], added["algorithm"], added["created_by"]) == (
        kid,
        "ci",
        "ecdsa-p256",
        "open",
    )
    assert added["public_key"] == pub.read_text()
    assert datetime.fromisoformat(added["created_at"]).tzinfo is not None

    other_pub, other = generate_key(tmp_path / "release")
    from_stdin = dockyard.json(
        "trust", "key", "add", "acme", "--file", "-", "--name", "release", stdin=other_pub.read_text()
    )
    assert (from_stdin["key_id"], from_stdin["name"]) == (other, "release")

    listed = dockyard.json("trust", "key", "list", "acme")
    assert [(k["key_id"], k["name"]) for k in listed] == [(kid, "ci"), (other, "release")]
    human = dockyard("trust", "key", "list", "acme").stdout
    assert "trusted keys of acme" in human
    assert kid[:16] in human  # the table may fold the id; its start is enough for `rm`
    assert "release" in human
    assert "ecdsa-p256" in human

    assert dockyard.json("trust", "key", "rm", "acme", kid[:12]) == {"deleted": kid}
    assert [k["key_id"] for k in dockyard.json("trust", "key", "list", "acme")] == [other]
    assert f"acme no longer trusts key {other}" in dockyard("trust", "key", "rm", "acme", other.upper()).stdout
    assert dockyard.json("trust", "key", "list", "acme") == []
    assert dockyard.audit_actions("signing.key.%") == [
        "signing.key.add",
        "signing.key.add",
        "signing.key.remove",
        "signing.key.remove",
    ]


def test_add_list_and_remove_keyless_identities(dockyard: Deployment) -> None:
    issuer = "https://token.actions.githubusercontent.com"
    subject = r"https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/tags/v.*"
    added = dockyard.json("trust", "identity", "add", "acme", "--issuer", issuer, "--subject", subject)
    assert (added["issuer"], added["subject"], added["name"], added["created_by"]) == (
        issuer,
        subject,
        subject[:100],
        "open",
    )
    assert re.fullmatch(r"oidc-[0-9a-f]{16}", added["identity_id"])
    listed = dockyard.json("trust", "identity", "list", "acme")
    assert [(i["identity_id"], i["subject"]) for i in listed] == [(added["identity_id"], subject)]
    assert "trusted identities of acme" in dockyard("trust", "identity", "list", "acme").stdout

    bad = dockyard("trust", "identity", "add", "acme", "--issuer", issuer, "--subject", "([", ok=False)
    assert bad.exit_code == 1
    assert "not a valid regular expression" in bad.output
    assert "Traceback" not in bad.output
    again = dockyard("trust", "identity", "add", "acme", "--issuer", issuer, "--subject", subject, ok=False)
    assert again.exit_code == 1
    assert "already trusted" in again.output

    start = added["identity_id"][:10]  # "oidc-" and five hex digits: a unique start is enough
    assert dockyard.json("trust", "identity", "rm", "acme", start) == {"deleted": added["identity_id"]}
    assert dockyard.json("trust", "identity", "list", "acme") == []
    gone = dockyard("trust", "identity", "rm", "acme", added["identity_id"], ok=False)
    assert gone.exit_code == 1
    assert "trusted identity not found" in gone.output
    assert dockyard.audit_actions("signing.identity.%") == ["signing.identity.add", "signing.identity.remove"]


def test_a_key_from_stdin_without_a_name_is_named_by_its_id(dockyard: Deployment, tmp_path: Path) -> None:
    pub, kid = generate_key(tmp_path / "cosign")
    added = dockyard.json("trust", "key", "add", "acme", "--file", "-", stdin=pub.read_text())
    assert (added["key_id"], added["name"]) == (kid, f"key {kid[:12]}")
    human = dockyard("trust", "key", "add", "library", "--file", str(pub)).stdout  # `library` needs no account
    assert "trusted key" in human
    assert "cosign" in human


def test_namespace_and_repository_policies(dockyard: Deployment) -> None:
    unset = dockyard.json("trust", "policy", "show", "acme")
    assert (unset["namespace"], unset["repository"], unset["mode"], unset["exempt"]) == ("acme", None, "off", [])
    assert (unset["inherited"], unset["updated_at"]) == (True, None)

    default = dockyard.json("trust", "policy", "set", "acme", "--mode", "warn")
    assert (default["repository"], default["mode"], default["exempt"], default["inherited"]) == (
        None,
        "warn",
        [],
        False,
    )
    assert default["updated_by"] == "open"

    own = dockyard.json(
        "trust", "policy", "set", "acme/app", "--mode", "enforce", "--exempt", "app:dev-*", "--exempt", "app:pr-*"
    )
    assert (own["namespace"], own["repository"], own["mode"]) == ("acme", "acme/app", "enforce")
    assert (own["exempt"], own["inherited"]) == (["app:dev-*", "app:pr-*"], False)
    assert dockyard.json("trust", "policy", "show", "acme/app") == own
    follows = dockyard.json("trust", "policy", "show", "acme/other")
    assert (follows["repository"], follows["mode"], follows["inherited"]) == ("acme/other", "warn", True)
    assert dockyard.json("trust", "policy", "show", "acme")["mode"] == "warn"  # the default is unchanged

    human = dockyard("trust", "policy", "show", "acme/app").stdout
    assert "trust policy of acme/app" in human
    assert "enforce" in human
    assert "app:dev-*, app:pr-*" in human
    assert "the repository's own" in human
    assert "the namespace's default" in dockyard("trust", "policy", "show", "acme/other").stdout
    assert "none set (off)" in dockyard("trust", "policy", "show", "library/alpine").stdout

    replaced = dockyard.json("trust", "policy", "set", "acme/app", "--mode", "off")  # no --exempt: an empty list
    assert (replaced["mode"], replaced["exempt"]) == ("off", [])
    official = dockyard.json("trust", "policy", "set", "library/alpine", "--mode", "enforce")
    assert (official["namespace"], official["repository"]) == ("library", "alpine")
    assert dockyard.audit_actions("trust.policy.%") == ["trust.policy.change"] * 4


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Key files: a public key, its private half, text that is not PEM, binary data, and a missing path."""
    tmp_path = tmp_path_factory.mktemp("keys")
    pub, _ = generate_key(tmp_path / "ci")
    (tmp_path / "notes.txt").write_text("just some text\n")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    return {
        "pub": str(pub),
        "private": str(tmp_path / "ci.key"),
        "text": str(tmp_path / "notes.txt"),
        "binary": str(tmp_path / "blob.bin"),
        "missing": str(tmp_path / "missing.pub"),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("key", "add", "nobody", "--file", "{pub}"), "namespace not found"),
        (("key", "list", "nobody"), "namespace not found"),
        (("key", "rm", "nobody", "0123456789abcdef"), "namespace not found"),
        (("policy", "show", "nobody"), "namespace not found"),
        (("policy", "set", "nobody/app", "--mode", "warn"), "namespace not found"),
        (("key", "add", "acme", "--file", "{private}"), "not a usable public key: unsupported PEM type"),
        (("key", "add", "acme", "--file", "{private}"), "give the public half, the .pub file"),
        (("key", "add", "acme", "--file", "{text}"), "notes.txt: not a usable public key: not a PEM key"),
        (("key", "add", "acme", "--file", "{binary}"), "blob.bin: not a usable public key: not a PEM key"),
        (("key", "add", "acme", "--file", "{missing}"), "missing.pub: cannot read it"),
        (("key", "add", "acme", "--file", "-"), "standard input: not a usable public key"),
        (("key", "rm", "acme", "0123456789abcdef"), "trusted key not found"),
        (("key", "rm", "acme", "0123"), "at least 8 of its first characters"),
    ],
)
def test_errors_are_one_line(untouched: Deployment, files: dict[str, str], args: tuple[str, ...], message: str) -> None:
    result = untouched("trust", *(arg.format(**files) for arg in args), stdin="", ok=False)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_adding_a_trusted_key_again_is_refused(dockyard: Deployment, files: dict[str, str]) -> None:
    dockyard("trust", "key", "add", "acme", "--file", files["pub"])
    again = dockyard("trust", "key", "add", "acme", "--file", files["pub"], "--name", "again", ok=False)
    assert again.exit_code == 1
    assert "this key is already trusted" in again.output
    assert [k["name"] for k in dockyard.json("trust", "key", "list", "acme")] == ["ci"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("policy", "set", "acme", "--mode", "strict"), "'strict' is not one of 'off', 'warn', 'enforce'"),
        (("policy", "set", "acme"), "Missing option '--mode'"),
        (("policy", "show", "acme/"), "expected NAMESPACE or NAMESPACE/REPOSITORY"),
        (("key", "add", "acme"), "Missing option '--file'"),
    ],
)
def test_usage_errors(untouched: Deployment, args: tuple[str, ...], message: str) -> None:
    result = untouched("trust", *args, ok=False)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


class KeysOnly:
    """Stands in for ``TrustService`` where ``resolve_key_id`` only lists keys."""

    def __init__(self, *ids: str) -> None:
        self.ids = ids

    async def list_keys(self, actor: object, namespace: str) -> list[KeyView]:
        return [KeyView(kid, "k", "ed25519", "", "open", datetime(2026, 1, 1)) for kid in self.ids]


def test_resolve_key_id() -> None:
    first, second = "abcdef12" + "0" * 56, "abcdef12" + "1" * 56
    service = cast(TrustService, KeysOnly(first, second))

    def resolve(given: str) -> Any:
        return asyncio.run(resolve_key_id(service, OPEN, "acme", given))

    assert resolve("abcdef121") == second
    assert resolve(" ABCDEF120 ") == first
    assert resolve(first.upper()) == first  # a whole id, in any case
    with pytest.raises(NotFound, match="trusted key not found"):
        resolve("f" * 64)
    with pytest.raises(Invalid, match="several trusted key ids start so"):
        resolve("abcdef12")
    with pytest.raises(NotFound):
        resolve("abcdef13")
    with pytest.raises(Invalid, match="at least 8"):
        resolve("abcdef1")


def test_default_key_name() -> None:
    kid = "0123456789abcdef" * 4
    assert default_key_name("keys/ci.pub", kid) == "ci"
    assert default_key_name("cosign.pem", kid) == "cosign.pem"
    assert default_key_name("-", kid) == "key 0123456789ab"
    assert default_key_name(".pub", kid) == "key 0123456789ab"


def test_trust_group_is_listed() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "trust" in result.output.split()
    usage = CliRunner().invoke(main, ["trust", "policy", "set", "--help"])
    assert usage.exit_code == 0
    assert "--exempt" in usage.output
