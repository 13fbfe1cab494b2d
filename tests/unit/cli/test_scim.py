"""``dockyard org scim-token create|show|revoke``: the secret printed once and stored as its SHA-256, rotation
replacing it, revocation removing it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.unit.cli.test_accounts import Dockyard


def test_scim_token_lifecycle(tmp_path: Path) -> None:
    dockyard = Dockyard(tmp_path / "data")
    dockyard("user", "create", "owner")
    dockyard("org", "create", "acme", "--owner", "owner")
    made = dockyard.json("org", "scim-token", "create", "acme")
    secret = made["secret"]
    assert secret.startswith("dy_scim_")
    assert secret.startswith(made["token"]["token_prefix"])
    ((stored,),) = dockyard.sql("SELECT token_hash FROM scim_tokens")
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    shown = dockyard.json("org", "scim-token", "show", "acme")
    assert shown["org"] == "acme"
    assert "secret" not in shown
    rotated = dockyard.json("org", "scim-token", "create", "acme")["secret"]
    assert rotated != secret
    assert dockyard.sql("SELECT token_hash FROM scim_tokens") == [(hashlib.sha256(rotated.encode()).hexdigest(),)]
    assert dockyard.json("org", "scim-token", "revoke", "acme") == {"org": "acme", "revoked": True}
    assert dockyard.sql("SELECT * FROM scim_tokens") == []
    missing = dockyard("org", "scim-token", "show", "acme", ok=False)
    assert missing.exit_code != 0
    assert "no SCIM token" in missing.output
    assert dockyard("org", "scim-token", "create", "nosuchorg", ok=False).exit_code != 0
