"""``dockyard key generate``: where the password comes from, the files it writes (and their modes), and refusing to
overwrite a key pair without --force."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dockyard.cli.main import main
from dockyard.signing.keys import WrongPassword, key_id, load_private_key, load_public_key


@pytest.fixture(autouse=True)
def _no_cosign_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)


def generate(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["key", "generate", *args], input=stdin, env=env)


def assert_pair(prefix: Path, password: bytes) -> str:
    """The pair at ``prefix`` opens with ``password`` and its halves match; returns the key ID."""
    private_key = load_private_key((prefix.parent / f"{prefix.name}.key").read_bytes(), password)
    public_key = load_public_key((prefix.parent / f"{prefix.name}.pub").read_bytes())
    assert key_id(private_key.public_key()) == key_id(public_key)
    return key_id(public_key)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_with_password_stdin(tmp_path: Path) -> None:
    prefix = tmp_path / "keys" / "release"
    prefix.parent.mkdir()
    result = generate("--output-prefix", str(prefix), "--password-stdin", stdin="s3cret\n")
    assert result.exit_code == 0, result.output
    kid = assert_pair(prefix, b"s3cret")  # the line ending is not part of the password
    assert mode(tmp_path / "keys" / "release.key") == 0o600
    assert mode(tmp_path / "keys" / "release.pub") == 0o644
    assert f"Private key written to {prefix}.key" in result.output
    assert f"Public key written to {prefix}.pub" in result.output
    assert f"Key ID: {kid}" in result.output
    assert prefix.with_suffix(".key").read_text().startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert prefix.with_suffix(".pub").read_text().startswith("-----BEGIN PUBLIC KEY-----\n")


def test_default_prefix_is_cosign(tmp_path: Path) -> None:
    result = generate("--password-stdin", stdin="pw")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cosign.key", "cosign.pub"]
    assert_pair(tmp_path / "cosign", b"pw")


def test_password_from_cosign_password(tmp_path: Path) -> None:
    result = generate(env={"COSIGN_PASSWORD": "from-env"})
    assert result.exit_code == 0, result.output
    assert "Enter password" not in result.output
    assert_pair(tmp_path / "cosign", b"from-env")


def test_an_empty_cosign_password_is_a_password(tmp_path: Path) -> None:
    result = generate(env={"COSIGN_PASSWORD": ""})
    assert result.exit_code == 0, result.output
    assert "Enter password" not in result.output
    assert_pair(tmp_path / "cosign", b"")
    with pytest.raises(WrongPassword):
        assert_pair(tmp_path / "cosign", b"x")


def test_password_stdin_wins_over_cosign_password(tmp_path: Path) -> None:
    result = generate("--password-stdin", stdin="from-stdin\r\n", env={"COSIGN_PASSWORD": "from-env"})
    assert result.exit_code == 0, result.output
    assert_pair(tmp_path / "cosign", b"from-stdin")


def test_prompts_twice_without_stdin_or_env(tmp_path: Path) -> None:
    result = generate(stdin="first\nsecond\ntyped\ntyped\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Enter password for private key again") == 2
    assert "do not match" in result.output
    assert_pair(tmp_path / "cosign", b"typed")


def test_an_empty_typed_password_is_allowed(tmp_path: Path) -> None:
    result = generate(stdin="\n\n")
    assert result.exit_code == 0, result.output
    assert_pair(tmp_path / "cosign", b"")


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert generate("--password-stdin", stdin="one").exit_code == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    refused = generate("--password-stdin", stdin="two")
    assert refused.exit_code == 1
    assert "cosign.key and cosign.pub already exist; pass --force to overwrite" in refused.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    # Either half existing is enough to refuse.
    (tmp_path / "cosign.key").unlink()
    refused = generate("--password-stdin", stdin="two")
    assert refused.exit_code == 1
    assert "cosign.pub already exists" in refused.output
    assert not (tmp_path / "cosign.key").exists()


def test_force_overwrites_and_tightens_the_private_key_mode(tmp_path: Path) -> None:
    assert generate("--password-stdin", stdin="one").exit_code == 0
    old_id = assert_pair(tmp_path / "cosign", b"one")
    (tmp_path / "cosign.key").chmod(0o644)
    result = generate("--force", "--password-stdin", stdin="two")
    assert result.exit_code == 0, result.output
    assert assert_pair(tmp_path / "cosign", b"two") != old_id
    assert mode(tmp_path / "cosign.key") == 0o600


def test_unwritable_destination_is_a_clear_error(tmp_path: Path) -> None:
    result = generate("--output-prefix", str(tmp_path / "missing" / "dir" / "k"), "--password-stdin", stdin="pw")
    assert result.exit_code == 1
    assert "cannot write the key pair" in result.output


def test_key_group_is_listed() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "key" in result.output.split()
    usage = CliRunner().invoke(main, ["key", "generate", "--help"])
    assert usage.exit_code == 0
    assert "--output-prefix" in usage.output
    assert "--password-stdin" in usage.output


def test_json_output_and_json_errors(tmp_path: Path) -> None:
    made = generate("--output-prefix", "ci", "--password-stdin", "--json", stdin="pw\n")
    assert made.exit_code == 0, made.output
    document = json.loads(made.output)
    assert document == {"private_key": "ci.key", "public_key": "ci.pub", "key_id": assert_pair(tmp_path / "ci", b"pw")}
    again = generate("--output-prefix", "ci", "--password-stdin", "--json", stdin="pw\n")
    assert again.exit_code == 1
    error = json.loads(again.output)["error"]
    assert (error["code"], "already exist" in error["message"]) == ("failed", True)


def test_sign_errors_are_json_under_json(tmp_path: Path) -> None:
    """``dockyard sign`` reports its errors as ``{"error": …}`` under ``--json`` (before touching any server)."""
    usage = CliRunner().invoke(main, ["sign", "acme/app:1", "--key", "absent.key", "--json"])
    assert usage.exit_code == 2
    assert json.loads(usage.output)["error"]["code"] == "usage"
    (tmp_path / "ci.key").write_text("not a key")
    neither = CliRunner().invoke(
        main, ["sign", "acme/app:1", "--key", "ci.key", "--namespace-key", "--json", "--data-dir", str(tmp_path)]
    )
    assert neither.exit_code == 1
    assert json.loads(neither.output)["error"] == {
        "code": "failed",
        "message": "give either --key FILE or --namespace-key",
        "detail": None,
    }
