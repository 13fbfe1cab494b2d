"""``/api/v2/proxies`` as the site administrator: add (the password write-only), list, refusals (unknown namespace,
already a proxy, a bad URL), remove. Everyone else is refused: ``tests/security/rows_proxies.py``."""

from __future__ import annotations

from tests.support.hub import HubAdmin


def test_administrator_manages_proxies(admin: HubAdmin) -> None:
    ns = admin.org("admin", "api")
    added = admin.client.post(
        "/api/v2/proxies",
        json={"namespace": ns, "upstream_url": "docker.io", "username": "me", "password": "pat", "tag_ttl_seconds": 60},
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["upstream_url"], body["username"], body["has_password"], body["tag_ttl_seconds"]) == (
        "https://registry-1.docker.io",
        "me",
        True,
        60,
    )
    assert "pat" not in added.text
    listed = admin.client.get("/api/v2/proxies").json()
    assert ns in [p["namespace"] for p in listed["results"]]

    again = admin.client.post("/api/v2/proxies", json={"namespace": ns, "upstream_url": "docker.io"})
    assert again.status_code == 409, again.text
    unknown = admin.client.post("/api/v2/proxies", json={"namespace": "nosuchorg123", "upstream_url": "docker.io"})
    assert unknown.status_code == 404, unknown.text
    bad = admin.client.post("/api/v2/proxies", json={"namespace": ns, "upstream_url": "ftp://x"})
    assert bad.status_code == 400, bad.text
    half = admin.client.post("/api/v2/proxies", json={"namespace": ns, "upstream_url": "docker.io", "username": "me"})
    assert half.status_code == 400, half.text

    assert admin.client.delete(f"/api/v2/proxies/{ns}").status_code == 204
    assert admin.client.delete(f"/api/v2/proxies/{ns}").status_code == 404
    assert ns not in [p["namespace"] for p in admin.client.get("/api/v2/proxies").json()["results"]]
