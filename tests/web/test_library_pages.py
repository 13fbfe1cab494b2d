"""A ``library`` repository's pages under their short names in a real browser: ``/_/<name>`` and every tab of it
(``/_/<name>/diff``, ``/builds``, ``/settings``, ``/access``, ``/webhooks``, ``/lifecycle``) and the filesystem
browser, linked from the overview; their forms still post to ``/r/library/<name>/…``."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.app_server import AppServer
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.layers import E, layer
from tests.support.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, canonical, descriptor, push_blob
from tests.web.conftest import shot
from tests.web.pages import sign_in


def _push_files_image(server: AppServer, name: str) -> None:
    config = canonical({"architecture": "amd64", "os": "linux", "config": {}})
    blob = layer([E("etc/hello", data=b"hello from library\n")])
    with httpx.Client(base_url=server.url, auth=("admin", server.ADMIN_PASSWORD), timeout=30) as v2:
        push_blob(v2, name, config)
        push_blob(v2, name, blob)
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, blob)],
            }
        )
        pushed = v2.put(f"/v2/{name}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert pushed.status_code == 201, pushed.text


def test_the_library_tabs_stay_under_the_short_name(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    name = unique("lib")
    _push_files_image(secure_server, name)
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, "admin", secure_server.ADMIN_PASSWORD)
    page.goto(f"{secure_server.url}/_/{name}")
    tabs = {"Compare": "diff", "Builds": "builds", "Settings": "settings", "Access": "access"}
    tabs |= {"Webhooks": "webhooks", "Lifecycle": "lifecycle"}
    for label, rest in tabs.items():
        page.click(f"nav.tabs >> text={label}")
        page.wait_for_load_state()
        assert page.url.split("?")[0] == f"{secure_server.url}/_/{name}/{rest}", label
        assert page.locator("nav.tabs [aria-current=page]").inner_text() == label
    shot(page, "library-lifecycle")

    page.goto(f"{secure_server.url}/_/{name}/settings")
    page.fill("#description", "short and sweet")
    page.click("[data-testid=settings-form] button[type=submit]")
    page.wait_for_selector("[data-testid=saved]")
    assert admin.client.get(f"/api/v2/namespaces/library/repositories/{name}").json()["description"] == (
        "short and sweet"
    )

    page.goto(f"{secure_server.url}/_/{name}/tags/v1/files/etc/hello")
    assert "hello from library" in page.content()
    shot(page, "library-file")
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:  # private: nothing for visitors
        assert anonymous.get(f"/_/{name}/tags/v1/files/etc/hello").status_code == 404
        assert anonymous.get(f"/_/{name}/diff?from=v1&to=v1").status_code == 404
