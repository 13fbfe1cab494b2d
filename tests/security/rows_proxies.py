"""Matrix rows for the pull-through cache settings (``/api/v2/proxies``): site administrators only — an upstream
URL makes the server send requests wherever it points, and its credentials are the upstream's. None of the
world's principals is one, so every live caller is refused (403) and anonymous or dead credentials are 401. The
behaviour of an administrator's calls is in ``tests/proxy/test_proxy_api.py``."""

from __future__ import annotations

from tests.security.rows_api import DENIED, api, by
from tests.security.rows_oci import Call, Expect

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
UPSTREAM = "http://127.0.0.1:9"  # never reached: nobody here may add it


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, template)] = (call, expect)


row("GET", "/api/v2/proxies", api("GET", lambda w, p: "/api/v2/proxies"), by(set(), 200, denied=DENIED))
row(
    "POST",
    "/api/v2/proxies",
    api("POST", lambda w, p: "/api/v2/proxies", lambda w, p: {"namespace": w.other_org, "upstream_url": UPSTREAM}),
    by(set(), 201, denied=DENIED),
)
row(
    "DELETE",
    "/api/v2/proxies/{ns}",
    api("DELETE", lambda w, p: f"/api/v2/proxies/{w.other_org}"),
    by(set(), 204, denied=DENIED),
)
row(
    "PATCH",
    "/api/v2/proxies/{ns}",
    api("PATCH", lambda w, p: f"/api/v2/proxies/{w.other_org}", lambda w, p: {"tag_ttl_seconds": 60}),
    by(set(), 200, denied=DENIED),
)
