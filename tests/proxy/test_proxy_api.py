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


def test_administrator_changes_a_proxy(admin: HubAdmin) -> None:
    """PATCH changes what it is given: the TTL alone keeps upstream and credentials; a username alone renames the
    stored credentials (password kept); new credentials replace them; ``clear_credentials`` drops them."""
    ns = admin.org("admin", "chg")
    added = admin.client.post(
        "/api/v2/proxies",
        json={"namespace": ns, "upstream_url": "http://127.0.0.1:9", "username": "me", "password": "pat"},
    )
    assert added.status_code == 201, added.text

    def change(body: dict[str, object], status: int = 200) -> dict[str, object]:
        response = admin.client.patch(f"/api/v2/proxies/{ns}", json=body)
        assert response.status_code == status, response.text
        shown: dict[str, object] = response.json()
        return shown

    ttl = change({"tag_ttl_seconds": 30})
    assert (ttl["upstream_url"], ttl["username"], ttl["has_password"], ttl["tag_ttl_seconds"]) == (
        "http://127.0.0.1:9",
        "me",
        True,
        30,
    )
    renamed = change({"username": "you", "upstream_url": "docker.io"})
    assert (renamed["upstream_url"], renamed["username"], renamed["has_password"], renamed["tag_ttl_seconds"]) == (
        "https://registry-1.docker.io",
        "you",
        True,
        30,
    )
    replaced = change({"username": "them", "password": "new-secret"})
    assert "new-secret" not in str(replaced)
    assert (replaced["username"], replaced["has_password"]) == ("them", True)
    change({"password": "alone"}, 400)
    change({"clear_credentials": True, "username": "x", "password": "y"}, 400)
    change({"upstream_url": "ftp://x"}, 400)
    cleared = change({"clear_credentials": True})
    assert (cleared["username"], cleared["has_password"]) == (None, False)
    change({"username": "nobody-without-a-password"}, 400)
    assert admin.client.patch("/api/v2/proxies/nosuchproxy123", json={}).status_code == 404

    audit = admin.client.get(f"/api/v2/auditlogs/{ns}", params={"action": "proxy.update"})
    assert audit.status_code == 200, audit.text
    assert len(audit.json()["logs"]) == 4
    admin.client.delete(f"/api/v2/proxies/{ns}")
