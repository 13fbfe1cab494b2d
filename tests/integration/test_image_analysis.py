"""A pushed image's analysis (``dockyard.analysis.tasks``) on a real database of the test backend and a filesystem
store: the push queues one ``analysis.image`` job, none of the three per-step kinds; the job leaves the layer
index, the inventory with its packages, the SBOM referrer and the scan; its steps read the manifest once, and a
layer's index row and the image's inventory row once each; an image deleted before its turn ends the job without a
retry; with ``inventory_on_push`` off the scan waits (retries) until an inventory exists."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from dockyard.analysis.tasks import ANALYZE, INDEX, analyze, index
from dockyard.app import event_subscribers
from dockyard.events.bus import OutboxDispatcher
from dockyard.inventory.referrers import SBOM_ANNOTATION
from dockyard.inventory.service import READY
from dockyard.inventory.tasks import inventory_service
from dockyard.jobs.handlers import Handler, JobContext, Retry
from dockyard.jobs.registry import JobEnvironment
from dockyard.models import Job
from dockyard.models.layers import LayerIndex
from dockyard.models.vulns import VulnScan
from tests.support.hub_services import HubEnv, hub_env, sha256
from tests.support.layers import DEBIAN_12_OS_RELEASE, E, dpkg_status, layer

SPDX = "application/spdx+json"
BASE = layer(
    [
        E("etc/os-release", data=DEBIAN_12_OS_RELEASE),
        E("var/lib/dpkg/status", data=dpkg_status(("libc6", "2.36-9", "glibc"), ("bash", "5.2.15-2", None))),
    ]
)


async def _push(env: HubEnv, repo: str) -> str:
    return (await env.push_image(repo, "v1", layer_blobs=[BASE])).digest


async def _dispatch(env: HubEnv) -> list[tuple[str, dict[str, Any]]]:
    """Dispatch the outbox through the server's subscribers; the jobs queued, in order, as (kind, payload)."""
    bus = OutboxDispatcher(env.db, event_subscribers(env.db, env.ctx.store, env.ctx.settings), poll_seconds=1)
    while await bus.run_once():
        pass
    async with env.db.read() as conn:
        return [(row.kind, json.loads(row.payload)) for row in await conn.execute(select(Job).order_by(Job.id))]


@asynccontextmanager
async def _handler(env: HubEnv) -> AsyncIterator[Handler]:
    async with AsyncExitStack() as resources:
        yield analyze(JobEnvironment(db=env.db, settings=env.ctx.settings, store=env.ctx.store, resources=resources))


def _job(payload: dict[str, Any], attempt: int = 1, kind: str = ANALYZE) -> JobContext:
    async def renew() -> bool:
        return True

    return JobContext(1, kind, payload, attempt, 12, None, renew)


async def _scan_state(env: HubEnv, digest: str) -> str | None:
    async with env.db.read() as conn:
        return (await conn.execute(select(VulnScan.state).where(VulnScan.manifest_digest == digest))).scalar()


async def test_a_push_queues_one_analysis_that_indexes_inventories_attaches_and_scans(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        digest = await _push(env, "acme/app")
        assert await _dispatch(env) == [(ANALYZE, {"repository": "acme/app", "digest": digest})]

        async with _handler(env) as handle:
            await handle(_job({"repository": "acme/app", "digest": digest}))

        async with env.db.read() as conn:
            index = (await conn.execute(select(LayerIndex.state).where(LayerIndex.digest == sha256(BASE)))).scalar()
        assert index == READY
        inventory = inventory_service(env.ctx)
        state = await inventory.state(digest)
        assert state is not None
        assert state.state == READY
        packages = await inventory.packages(digest)
        assert packages is not None
        assert {(p.name, p.version) for p in packages} == {("libc6", "2.36-9"), ("bash", "5.2.15-2")}
        [sbom] = await env.registry.listing.referrers("acme/app", digest, SPDX)
        assert sbom["annotations"][SBOM_ANNOTATION] == "inventory"
        assert await _scan_state(env, digest) == "scanned"

        # the SBOM referrer the job pushed is an artifact: dispatching its push queues no analysis
        assert [kind for kind, _ in await _dispatch(env)] == [ANALYZE]


@pytest.mark.parametrize("sbom_referrers", [False, True], ids=["without-sbom", "with-sbom"])
async def test_the_steps_read_the_manifest_once_and_the_index_and_inventory_rows_once_each(
    tmp_path: Path, sbom_referrers: bool
) -> None:
    async with hub_env(tmp_path, open=True, sbom_referrers=sbom_referrers) as env:
        digest = await _push(env, "acme/app")
        [(_, payload)] = await _dispatch(env)
        reads: list[str] = []

        def read(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            if statement.startswith("SELECT"):
                reads.append(" ".join(statement.split()))

        event.listen(env.db.engine.sync_engine, "before_cursor_execute", read)
        try:
            async with _handler(env) as handle:
                await handle(_job(payload))
        finally:
            event.remove(env.db.engine.sync_engine, "before_cursor_execute", read)
        assert await _scan_state(env, digest) == "scanned"
        attached = await env.registry.listing.referrers("acme/app", digest, SPDX)
        assert len(attached) == (1 if sbom_referrers else 0)
        # the image's look-up (attaching the SBOM reads its subject's descriptor apart, by another statement)
        assert len([r for r in reads if r.startswith("SELECT manifests.media_type, manifests.content FROM")]) == 1
        # the index step's look-up before its claim; the inventory step's look-up of the index the first one built
        assert len([r for r in reads if r.startswith("SELECT layer_indexes.state")]) == 2
        # the inventory step's look-up of the image's inventory (with its detectors' version), not read back after
        assert len([r for r in reads if r.startswith("SELECT image_inventories.digest, image_inventories.state")]) == 1


async def test_an_image_deleted_before_its_analysis_ends_the_job_without_a_retry(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        digest = await _push(env, "acme/app")
        [(_, payload)] = await _dispatch(env)
        await env.registry.manifests.delete("acme/app", digest)

        async with _handler(env) as handle:
            await handle(_job(payload))  # returns: no Retry to wait out for an image that is gone

        assert await inventory_service(env.ctx).state(digest) is None
        assert await _scan_state(env, digest) is None


async def test_without_inventory_on_push_the_scan_waits_for_an_inventory(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True, inventory_on_push=False) as env:
        digest = await _push(env, "acme/app")
        [(_, payload)] = await _dispatch(env)

        async with _handler(env) as handle:
            with pytest.raises(Retry):
                await handle(_job(payload))
            assert await inventory_service(env.ctx).state(digest) is None  # not computed by the job
            assert await env.registry.listing.referrers("acme/app", digest, SPDX) == []

            await inventory_service(env.ctx).compute("acme/app", digest)  # e.g. a request asked for it
            await handle(_job(payload, attempt=2))
        assert await _scan_state(env, digest) == "scanned"


async def test_a_layers_index_job_queued_before_the_analysis_existed_indexes_the_layers(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        digest = await _push(env, "acme/app")
        async with AsyncExitStack() as resources:
            handle = index(
                JobEnvironment(db=env.db, settings=env.ctx.settings, store=env.ctx.store, resources=resources)
            )
            await handle(_job({"repository": "acme/app", "digest": digest}, kind=INDEX))
            # an image gone since (or never there) ends the job
            await handle(_job({"repository": "acme/gone", "digest": digest}, kind=INDEX))
        async with env.db.read() as conn:
            state = (await conn.execute(select(LayerIndex.state).where(LayerIndex.digest == sha256(BASE)))).scalar()
        assert state == READY
