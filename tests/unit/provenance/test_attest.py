"""The ``signing`` stage of a build (``dockyard.provenance.attest.Attester``) on a real database of the test backend
and a filesystem store, with the services the ``builds.attest`` job gives it: every image platform of a pushed index
gets its SBOM and SLSA provenance as DSSE envelopes signed with the namespace's managed key (BuildKit's attestation
manifests and nested indexes get none) and the index is signed; a domain error — the image deleted meanwhile, an
inventory that failed — fails the build at ``signing``; a build no longer in ``signing`` is left alone."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, select

from dockyard.auth.secrets import SecretBox
from dockyard.builds import records
from dockyard.builds.attestation import AttestInputs
from dockyard.builds.logs import lines_after
from dockyard.errors import NotFound
from dockyard.inventory.tasks import inventory_service
from dockyard.models import Build
from dockyard.models.base import utcnow
from dockyard.provenance import statements
from dockyard.provenance.attest import Attester
from dockyard.signing.formats import ANNOTATION_SIGNATURE, SIMPLE_SIGNING, signature_tag
from dockyard.trust.manage import TrustService
from tests.support.hub_services import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    HubEnv,
    canonical,
    hub_env,
    sha256,
)
from tests.support.layers import DEBIAN_12_OS_RELEASE, E, dpkg_status, layer

SECRET = "attest-tests-secret-0123456789abcdef"
BASE_URL = "https://hub.example"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
PREDICATE = "in-toto.io/predicate-type"
REPO = "acme/app"

DEBIAN = layer(  # built once: gzip stamps the time, and the same image must have the same digest everywhere
    [
        E("etc/os-release", data=DEBIAN_12_OS_RELEASE),
        E("var/lib/dpkg/status", data=dpkg_status(("libc6", "2.36-9", "glibc"), ("bash", "5.2.15-2", None))),
    ]
)


@asynccontextmanager
async def environment(tmp_path: Path) -> AsyncIterator[tuple[HubEnv, Attester, TrustService]]:
    async with hub_env(tmp_path, open=True, secret_key=SECRET, base_url=BASE_URL) as env:
        trust = TrustService(env.db, SecretBox(SECRET))
        yield env, Attester(env.db, env.registry, inventory_service(env.ctx), trust, env.ctx.settings), trust


async def push_platform(env: HubEnv, arch: str, variant: str | None = None, blob: bytes = DEBIAN) -> tuple[str, int]:
    """An image for ``linux/arch[/variant]`` pushed by digest; (its digest, its size)."""
    config_doc: dict[str, Any] = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    if variant:
        config_doc["variant"] = variant
    config = canonical(config_doc)
    await env.blob(REPO, config)
    await env.blob(REPO, blob)
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(blob), "size": len(blob)}],
        }
    )
    await env.registry.manifests.put(REPO, sha256(body), body, OCI_MANIFEST)
    return sha256(body), len(body)


async def push_index(env: HubEnv, tag: str, children: list[tuple[str, str, int, dict[str, str] | None]]) -> str:
    """An index of ``(media type, digest, size, platform)`` children as ``tag``; its digest."""
    manifests = []
    for media_type, digest, size, platform in children:
        descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
        if platform is not None:
            descriptor["platform"] = platform
        manifests.append(descriptor)
    body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    await env.registry.manifests.put(REPO, tag, body, OCI_INDEX)
    return sha256(body)


async def new_build(env: HubEnv, state: str) -> tuple[int, str]:
    """A build of ``REPO`` in ``state``: (row id, uuid)."""
    build_uuid = str(uuid.uuid4())
    async with env.db.write() as conn:
        build_id = (
            await conn.execute(
                insert(Build)
                .values(
                    uuid=build_uuid,
                    repository=REPO,
                    namespace="acme",
                    rule_id=None,
                    coalesce_key=f"test:{build_uuid}",
                    source_type="Branch",
                    ref="main",
                    commit="c0ffee" * 6 + "abcd",
                    tags=json.dumps(["latest"]),
                    dockerfile="Dockerfile",
                    context=".",
                    trigger="api",
                    actor="acme",
                    state=state,
                    cancel_requested=False,
                    log_size=0,
                    created_at=utcnow(),
                    started_at=utcnow(),
                )
                .returning(Build.id)
            )
        ).scalar_one()
    return int(build_id), build_uuid


def inputs(build: tuple[int, str], digest: str, media_type: str = OCI_MANIFEST) -> AttestInputs:
    return AttestInputs(
        build=build[0],
        build_uuid=build[1],
        repository=REPO,
        digest=digest,
        media_type=media_type,
        builder="builder-1",
        executor="tests.support.build_executor:GitTarExecutor",
        source_url="https://git.example/acme/app.git",
        ref="refs/heads/main",
        commit="c0ffee" * 6 + "abcd",
        rule="r-uuid",
        source_type="Branch",
        source_name="main",
        tag_template="latest",
        dockerfile="Dockerfile",
        context=".",
        build_args=("GREETING",),
        tags=("latest",),
        network=False,
        cache=True,
        base_images=(),
        started_on="2026-01-01T00:00:00Z",
        finished_on="2026-01-01T00:01:00Z",
    )


async def build_row(env: HubEnv, build_id: int) -> Any:
    async with env.db.read() as conn:
        return (await conn.execute(select(Build).where(Build.id == build_id))).one()


async def log_of(env: HubEnv, build_id: int) -> list[str]:
    return [text for _, text in await lines_after(env.db, build_id, 0)]


def pae(payload: bytes) -> bytes:
    kind = IN_TOTO.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


async def attestations(env: HubEnv, digest: str) -> dict[str, dict[str, Any]]:
    """The DSSE envelopes attached to ``digest``, by predicate type."""
    found: dict[str, dict[str, Any]] = {}
    for referrer in await env.registry.listing.referrers(REPO, digest, DSSE):
        manifest = json.loads((await env.registry.manifests.get(REPO, referrer["digest"])).content)
        assert manifest["subject"]["digest"] == digest
        (envelope_layer,) = manifest["layers"]
        content = await env.registry.blobs.read_small(envelope_layer["digest"], envelope_layer["size"])
        assert content is not None
        found[referrer["annotations"][PREDICATE]] = json.loads(content)
    return found


# -- the platforms of an index ------------------------------------------------------------------------------------


async def test_every_platform_of_an_index_gets_signed_attestations_and_the_index_a_signature(tmp_path: Path) -> None:
    async with environment(tmp_path) as (env, attester, trust):
        owner = await env.user("acme")
        managed = await trust.create_managed_key(owner, "acme")
        public_key = serialization.load_pem_public_key(managed.public_key.encode())
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        amd64, amd64_size = await push_platform(env, "amd64")
        arm, arm_size = await push_platform(env, "arm", "v7")
        # BuildKit's attestation manifest for amd64: "unknown/unknown", an image manifest that is no platform.
        provenance, provenance_size = await push_platform(env, "unknown")
        nested = await push_index(
            env, "nested", [(OCI_MANIFEST, amd64, amd64_size, {"os": "linux", "architecture": "amd64"})]
        )
        nested_size = len((await env.registry.manifests.get(REPO, nested)).content)
        index = await push_index(
            env,
            "latest",
            [
                (OCI_MANIFEST, amd64, amd64_size, {"os": "linux", "architecture": "amd64"}),
                (OCI_MANIFEST, arm, arm_size, {"os": "linux", "architecture": "arm", "variant": "v7"}),
                (OCI_MANIFEST, provenance, provenance_size, {"os": "unknown", "architecture": "unknown"}),
                (OCI_INDEX, nested, nested_size, None),  # not an image manifest: no platform of its own
            ],
        )
        build = await new_build(env, records.SIGNING)

        await attester.attest(inputs(build, index, OCI_INDEX))

        row = await build_row(env, build[0])
        assert (row.state, row.error) == (records.SUCCEEDED, None)
        assert row.finished_at is not None
        for digest, platform in ((amd64, "linux/amd64"), (arm, "linux/arm/v7")):
            found = await attestations(env, digest)
            assert sorted(found) == sorted([statements.SPDX_DOCUMENT, statements.SLSA_PROVENANCE_V1])
            for predicate_type, envelope in found.items():
                payload = base64.b64decode(envelope["payload"])
                (signature,) = envelope["signatures"]
                assert signature["keyid"] == managed.key_id
                public_key.verify(base64.b64decode(signature["sig"]), pae(payload), ec.ECDSA(hashes.SHA256()))
                statement = json.loads(payload)
                assert statement["subject"] == [{"name": f"hub.example/{REPO}", "digest": {"sha256": digest[7:]}}]
                assert statement["predicateType"] == predicate_type
            sbom = json.loads(base64.b64decode(found[statements.SPDX_DOCUMENT]["payload"]))["predicate"]
            image = next(p for p in sbom["packages"] if p.get("versionInfo") == digest)
            assert image["comment"] == f"platform {platform}"
            assert sbom["documentNamespace"].startswith(f"{BASE_URL}/spdx/{REPO}/{digest}")
            slsa = json.loads(base64.b64decode(found[statements.SLSA_PROVENANCE_V1]["payload"]))["predicate"]
            assert slsa["runDetails"]["builder"]["id"] == f"{BASE_URL}/builders/builder-1"
            assert (
                slsa["runDetails"]["metadata"]["invocationId"]
                == f"{BASE_URL}/api/v2/repositories/{REPO}/builds/{build[1]}"
            )
        for left_out in (provenance, nested, index):
            assert await env.registry.listing.referrers(REPO, left_out, DSSE) == []

        # The index itself is signed in cosign's tag scheme, with the managed key, over its own digest.
        signed = json.loads((await env.registry.manifests.get(REPO, signature_tag(index))).content)
        (simple,) = signed["layers"]
        assert simple["mediaType"] == SIMPLE_SIGNING
        simple_payload = await env.registry.blobs.read_small(simple["digest"], simple["size"])
        assert simple_payload is not None
        assert json.loads(simple_payload)["critical"]["image"]["docker-manifest-digest"] == index
        public_key.verify(
            base64.b64decode(simple["annotations"][ANNOTATION_SIGNATURE]), simple_payload, ec.ECDSA(hashes.SHA256())
        )

        log = await log_of(env, build[0])
        attached = [line.split() for line in log if line.startswith(("SBOM", "provenance"))]
        assert [(words[0], words[-3]) for words in attached] == [
            ("SBOM", amd64),
            ("provenance", amd64),
            ("SBOM", arm),
            ("provenance", arm),
        ]  # in the index's order; each line names the referrer it attached
        for words in attached:
            listed = await env.registry.listing.referrers(REPO, words[-3], DSSE)
            assert words[-1] in [r["digest"] for r in listed]
        assert f"image {index} signed with the namespace's managed key ({signature_tag(index)})" in log
        assert log[-1] == f"build succeeded: {index}"


async def test_a_single_image_without_a_managed_key_gets_unsigned_attestations(tmp_path: Path) -> None:
    async with environment(tmp_path) as (env, attester, _):
        digest, _size = await push_platform(env, "amd64")
        build = await new_build(env, records.SIGNING)

        await attester.attest(inputs(build, digest))

        row = await build_row(env, build[0])
        assert row.state == records.SUCCEEDED
        found = await attestations(env, digest)
        assert sorted(found) == sorted([statements.SPDX_DOCUMENT, statements.SLSA_PROVENANCE_V1])
        assert all(envelope["signatures"] == [] for envelope in found.values())
        sbom = json.loads(base64.b64decode(found[statements.SPDX_DOCUMENT]["payload"]))["predicate"]
        image = next(p for p in sbom["packages"] if p.get("versionInfo") == digest)
        assert "comment" not in image  # a lone image names no platform
        with pytest.raises(NotFound):
            await env.registry.manifests.get(REPO, signature_tag(digest))
        log = await log_of(env, build[0])
        assert log[0].startswith("acme has no managed signing key")


# -- a domain error fails the build ---------------------------------------------------------------------------------


async def test_an_image_deleted_meanwhile_fails_the_build_at_signing(tmp_path: Path) -> None:
    async with environment(tmp_path) as (env, attester, trust):
        await trust.create_managed_key(await env.user("acme"), "acme")
        digest, _size = await push_platform(env, "amd64")
        kept, _size = await push_platform(env, "arm64")  # the repository stays
        await env.registry.manifests.delete(REPO, digest)
        with pytest.raises(NotFound) as gone:
            await env.registry.manifests.get(REPO, digest)
        build = await new_build(env, records.SIGNING)

        await attester.attest(inputs(build, digest))

        row = await build_row(env, build[0])
        reason = f"signing: {gone.value.message}"
        assert (row.state, row.error) == (records.FAILED, reason)
        assert row.finished_at is not None
        assert (await log_of(env, build[0]))[-1] == f"build failed: {reason}"
        assert await env.registry.listing.referrers(REPO, kept, DSSE) == []
        with pytest.raises(NotFound):
            await env.registry.manifests.get(REPO, signature_tag(digest))


async def test_an_image_whose_inventory_failed_fails_the_build_before_anything_is_signed(tmp_path: Path) -> None:
    async with environment(tmp_path) as (env, attester, trust):
        await trust.create_managed_key(await env.user("acme"), "acme")
        digest, _size = await push_platform(env, "amd64", blob=b"not a tar archive at all")
        build = await new_build(env, records.SIGNING)

        await attester.attest(inputs(build, digest))

        row = await build_row(env, build[0])
        assert row.state == records.FAILED
        assert row.error.startswith(f"signing: no SBOM of {digest}: its inventory failed (")
        assert (await log_of(env, build[0]))[-1] == f"build failed: {row.error}"
        assert await env.registry.listing.referrers(REPO, digest, DSSE) == []
        with pytest.raises(NotFound):
            await env.registry.manifests.get(REPO, signature_tag(digest))


# -- a build no longer in signing -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [records.CANCELLED, records.FAILED, records.SUCCEEDED, records.PUSHING])
async def test_a_build_no_longer_in_signing_is_left_alone(tmp_path: Path, state: str) -> None:
    async with environment(tmp_path) as (env, attester, _):
        digest, _size = await push_platform(env, "amd64")
        build = await new_build(env, state)
        before = await build_row(env, build[0])

        await attester.attest(inputs(build, digest))

        after = await build_row(env, build[0])
        assert (after.state, after.error, after.finished_at) == (before.state, before.error, before.finished_at)
        assert await log_of(env, build[0]) == []
        assert await env.registry.listing.referrers(REPO, digest, DSSE) == []


async def test_a_build_that_is_gone_is_left_alone(tmp_path: Path) -> None:
    async with environment(tmp_path) as (env, attester, _):
        digest, _size = await push_platform(env, "amd64")
        build = await new_build(env, records.SIGNING)

        await attester.attest(inputs((build[0] + 1000, str(uuid.uuid4())), digest))

        assert (await build_row(env, build[0])).state == records.SIGNING
        assert await env.registry.listing.referrers(REPO, digest, DSSE) == []
