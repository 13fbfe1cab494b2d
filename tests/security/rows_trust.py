"""Matrix rows for the signing-trust routes: a namespace's trusted keys, keyless identities and trust policies are
its owners' alone
(the owner's ``repo:read`` token does not administer the namespace). The namespace is public, so everyone else is
refused (403), the per-repository policy of the private ``app`` included: it is a setting of the namespace, refused
before the repository is looked up. Policies are set to ``off``, so the rows never change what other rows pull."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.security.rows_api import DENIED, api, bound, by
from tests.security.rows_oci import Call, Expect
from tests.security.world import OWNER, World

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
OWNERS = {OWNER}


def public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fresh_key(world: World) -> str:
    body = world.admin_api(
        "POST", f"/api/v2/namespaces/{world.org}/trusted-keys", json={"name": "k", "public_key": public_pem()}
    )
    return str(body["key_id"])


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, template)] = (call, expect)


KEYS = "/api/v2/namespaces/{ns}/trusted-keys"
row("GET", KEYS, api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/trusted-keys"), by(OWNERS, 200, denied=DENIED))
row(
    "POST",
    KEYS,
    api(
        "POST",
        lambda w, p: f"/api/v2/namespaces/{w.org}/trusted-keys",
        lambda w, p: {"name": f"by {p}", "public_key": public_pem()},
    ),
    by(OWNERS, 201, denied=DENIED),
)
row(
    "DELETE",
    f"{KEYS}/{{key_id}}",
    api("DELETE", lambda w, p: f"/api/v2/namespaces/{w.org}/trusted-keys/{fresh_key(w)}"),
    by(OWNERS, 204, denied=DENIED),
)


def fresh_identity(world: World) -> str:
    body = world.admin_api(
        "POST",
        f"/api/v2/namespaces/{world.org}/trusted-identities",
        json={"issuer": "https://issuer.example", "subject": f"{secrets.token_hex(8)}@example\\.com"},
    )
    return str(body["identity_id"])


IDENTITIES = "/api/v2/namespaces/{ns}/trusted-identities"
row(
    "GET",
    IDENTITIES,
    api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/trusted-identities"),
    by(OWNERS, 200, denied=DENIED),
)
row(
    "POST",
    IDENTITIES,
    api(
        "POST",
        lambda w, p: f"/api/v2/namespaces/{w.org}/trusted-identities",
        lambda w, p: {"issuer": "https://issuer.example", "subject": f"{secrets.token_hex(8)}@example\\.com"},
    ),
    by(OWNERS, 201, denied=DENIED),
)
row(
    "DELETE",
    f"{IDENTITIES}/{{identity_id}}",
    api("DELETE", lambda w, p: f"/api/v2/namespaces/{w.org}/trusted-identities/{fresh_identity(w)}"),
    by(OWNERS, 204, denied=DENIED),
)
for template, path in (
    ("/api/v2/namespaces/{ns}/trust-policy", "/api/v2/namespaces/{org}/trust-policy"),
    (
        "/api/v2/namespaces/{ns}/repositories/{repo}/trust-policy",
        "/api/v2/namespaces/{org}/repositories/app/trust-policy",
    ),
):
    row("GET", template, api("GET", bound(path, lambda w, p, t: t.format(org=w.org))), by(OWNERS, 200, denied=DENIED))
    row(
        "PUT",
        template,
        api("PUT", bound(path, lambda w, p, t: t.format(org=w.org)), lambda w, p: {"mode": "off", "exempt": []}),
        by(OWNERS, 200, denied=DENIED),
    )

row(
    "POST",
    "/api/v2/namespaces/{ns}/signing-key",
    api("POST", lambda w, p: f"/api/v2/namespaces/{w.org}/signing-key"),
    by(OWNERS, 201, denied=DENIED),
)
row(
    "GET",
    "/api/v2/namespaces/{ns}/signing-key",
    api("GET", lambda w, p: f"/api/v2/namespaces/{_with_managed_key(w)}/signing-key"),
    by(OWNERS, 200, denied=DENIED),
)


def _with_managed_key(world: World) -> str:
    world.admin_api("POST", f"/api/v2/namespaces/{world.org}/signing-key")
    return world.org
