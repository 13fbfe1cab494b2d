"""Matrix rows for replication (``http/api/routes/replication.py``): a namespace's rules, their runs and each run's
history are its owners' alone — a rule holds another registry's credentials and sends requests to its URL — so
everyone else who is signed in is refused (403: the namespace is public), anonymous callers are 401. Rules point at
a closed port on loopback (allowed by the matrix server's ``replication_allowed_hosts``), never at a registry; the
behaviour of the owners' calls is in ``tests/replication/``."""

from __future__ import annotations

import uuid

from tests.security.rows_api import DENIED, api, by
from tests.security.rows_oci import Call, Expect
from tests.security.world import OWNER, World

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
RULES = "/api/v2/namespaces/{ns}/replication/rules"
REMOTE = "http://127.0.0.1:9"  # the discard port: nothing listens; a run fails at once


def fresh_rule(world: World) -> str:
    name = f"m{uuid.uuid4().hex[:10]}"
    world.admin_api("POST", f"/api/v2/namespaces/{world.org}/replication/rules", json=rule_body(name))
    return name


def rule_body(name: str) -> dict[str, str]:
    return {"name": name, "direction": "push", "remote_url": REMOTE}


def fresh_run(world: World) -> int:
    rule = fresh_rule(world)
    run = world.admin_api("POST", f"/api/v2/namespaces/{world.org}/replication/rules/{rule}/runs")
    return int(run["id"])


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, template)] = (call, expect)


OWNERS = by({OWNER}, 200, denied=DENIED)

row("GET", RULES, api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/replication/rules"), OWNERS)
row(
    "POST",
    RULES,
    api(
        "POST",
        lambda w, p: f"/api/v2/namespaces/{w.org}/replication/rules",
        lambda w, p: rule_body(f"by-{p}-{uuid.uuid4().hex[:6]}"),
    ),
    by({OWNER}, 201, denied=DENIED),
)
row(
    "GET",
    RULES + "/{rule}",
    api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/replication/rules/{fresh_rule(w)}"),
    OWNERS,
)
row(
    "DELETE",
    RULES + "/{rule}",
    api("DELETE", lambda w, p: f"/api/v2/namespaces/{w.org}/replication/rules/{fresh_rule(w)}"),
    by({OWNER}, 204, denied=DENIED),
)
row(
    "POST",
    RULES + "/{rule}/runs",
    api("POST", lambda w, p: f"/api/v2/namespaces/{w.org}/replication/rules/{fresh_rule(w)}/runs"),
    by({OWNER}, 201, denied=DENIED),
)
row(
    "GET",
    RULES + "/{rule}/runs",
    api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/replication/rules/{fresh_rule(w)}/runs"),
    OWNERS,
)
row(
    "GET",
    "/api/v2/namespaces/{ns}/replication/runs/{run_id}",
    api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/replication/runs/{fresh_run(w)}"),
    OWNERS,
)
