"""Push replication to Debian's ``docker-registry`` on loopback: triggered by push and tag-deletion events with a
tag filter and a namespace mapping, a multi-arch index with its children, a blob mounted across repositories at
the destination, a cosign signature tag travelling with its image, and a destination that stops half-way."""

from __future__ import annotations

from typing import Any

import httpx

from tests.proxy.conftest import ReferenceRegistry
from tests.replication.conftest import (
    add_rule,
    push_index,
    remote_digest,
    run_detail,
    settled,
    start_run,
    wait_run,
)
from tests.support.checks import unique, wait_for
from tests.support.hub import HubAdmin
from tests.support.oci import OCI_MANIFEST, canonical, descriptor, push_blob, push_image, sha256


def test_events_replicate_matching_tags_indexes_and_deletes(
    admin: HubAdmin, org: str, registry_client: httpx.Client, reference: ReferenceRegistry
) -> None:
    rule = add_rule(
        admin,
        org,
        direction="push",
        remote_url=reference.url,
        remote_namespace="mirror",
        tag_filter="v*",
        trigger="event",
        replicate_deletes=True,
    )
    app = unique("app")
    released = push_image(registry_client, f"{org}/{app}", "v1")
    push_image(registry_client, f"{org}/{app}", "dev")
    wait_for(lambda: remote_digest(reference.url, f"mirror/{app}", "v1"), timeout=60, what="v1 replicated")
    assert remote_digest(reference.url, f"mirror/{app}", "v1") == released.digest
    settled(admin, org, rule["name"])
    assert remote_digest(reference.url, f"mirror/{app}", "dev") is None  # filtered out: never sent
    blob = httpx.get(f"{reference.url}/v2/mirror/{app}/blobs/{sha256(released.layers[0])}", timeout=30)
    assert blob.content == released.layers[0]

    index, children = push_index(registry_client, f"{org}/{app}", "v2")
    wait_for(lambda: remote_digest(reference.url, f"mirror/{app}", "v2"), timeout=60, what="index replicated")
    assert remote_digest(reference.url, f"mirror/{app}", "v2") == index
    for child in children:
        assert remote_digest(reference.url, f"mirror/{app}", child) == child

    deleted = registry_client.delete(f"/v2/{org}/{app}/manifests/v1")
    assert deleted.status_code == 202, deleted.text
    wait_for(lambda: remote_digest(reference.url, f"mirror/{app}", "v1") is None, timeout=60, what="v1 deleted")
    assert remote_digest(reference.url, f"mirror/{app}", "v2") == index  # the other tag stays

    history = settled(admin, org, rule["name"], count=3)
    assert all(run["state"] == "succeeded" and run["trigger"] == "event" for run in history), history
    assert sum(run["deleted"] for run in history) == 1


def test_blob_of_another_repository_is_mounted_at_the_destination(
    admin: HubAdmin, org: str, registry_client: httpx.Client, reference: ReferenceRegistry
) -> None:
    rule = add_rule(admin, org, direction="push", remote_url=reference.url, remote_namespace="m")
    first, second = unique("a"), unique("b")
    image = push_image(registry_client, f"{org}/{first}", "v1")
    run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"])
    assert run["state"] == "succeeded", run
    # the same layer in a second repository: the destination gets it by a mount, not by its bytes
    config = canonical({"architecture": "amd64", "os": "linux", "seed": unique("c")})
    push_blob(registry_client, f"{org}/{second}", config)
    mounted = registry_client.post(
        f"/v2/{org}/{second}/blobs/uploads/", params={"mount": sha256(image.layers[0]), "from": f"{org}/{first}"}
    )
    assert mounted.status_code == 201, mounted.text
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", image.layers[0])],
        }
    )
    put = registry_client.put(
        f"/v2/{org}/{second}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 201, put.text
    run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"])
    assert run["state"] == "succeeded", run
    results = {(r["source"], r["result"]) for r in run["results"]}
    assert (f"{org}/{first}:v1", "skipped") in results  # already there: nothing sent again
    assert (f"{org}/{second}:v1", "copied") in results
    layer = sha256(image.layers[0])
    mounts = reference.requests("POST", f"mount={layer.replace(':', '%3A')}")
    assert any(r.status == 201 and f"/v2/m/{second}/" in r.uri for r in mounts), mounts
    assert not any(
        f"/v2/m/{second}/blobs/uploads/" in r.uri and "digest=" + layer in r.uri for r in reference.requests("PUT")
    )


def test_signature_tag_travels_with_its_image(
    admin: HubAdmin, org: str, registry_client: httpx.Client, reference: ReferenceRegistry
) -> None:
    rule = add_rule(admin, org, direction="push", remote_url=reference.url, tag_filter="v*", trigger="event")
    app = unique("signed")
    image = push_image(registry_client, f"{org}/{app}", "v1")
    wait_for(lambda: remote_digest(reference.url, f"{org}/{app}", "v1"), timeout=60, what="image replicated")
    # a cosign signature, pushed after the image as cosign does (tag sha256-<hex>.sig; the filter does not name it)
    payload = canonical({"critical": {"image": {"docker-manifest-digest": image.digest}}})
    empty = b"{}"
    push_blob(registry_client, f"{org}/{app}", payload)
    push_blob(registry_client, f"{org}/{app}", empty)
    signature = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", empty),
            "layers": [
                descriptor(
                    "application/vnd.dev.cosign.simplesigning.v1+json",
                    payload,
                    annotations={"dev.cosignproject.cosign/signature": "MEUCIQ=="},
                )
            ],
        }
    )
    tag = image.digest.replace(":", "-") + ".sig"
    put = registry_client.put(
        f"/v2/{org}/{app}/manifests/{tag}", content=signature, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 201, put.text
    wait_for(lambda: remote_digest(reference.url, f"{org}/{app}", tag), timeout=60, what="signature replicated")
    assert remote_digest(reference.url, f"{org}/{app}", tag) == sha256(signature)
    history = settled(admin, org, rule["name"], count=2)
    assert all(run["state"] == "succeeded" for run in history), history


def _push_sized(client: httpx.Client, repo: str, tag: str, size: int) -> str:
    """An image whose layer has ``size`` bytes; its digest."""
    config = canonical({"architecture": "amd64", "os": "linux", "seed": unique("c")})
    layer = (unique("l") * (size // 8 + 1)).encode()[:size]
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
        }
    )
    put = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    return sha256(manifest)


def test_destination_down_half_way_is_retried_and_ends_consistent(
    admin: HubAdmin, org: str, registry_client: httpx.Client, reference: ReferenceRegistry
) -> None:
    app = unique("flaky")
    # 4 KiB layers at 2 KiB/s: two seconds per image, so the destination can be stopped half-way through the run
    pushed = {f"v{i}": _push_sized(registry_client, f"{org}/{app}", f"v{i}", 4096) for i in range(5)}
    rule = add_rule(admin, org, direction="push", remote_url=reference.url, bandwidth_limit_kib=2)
    run_id = start_run(admin, org, rule["name"])["id"]

    def detail() -> dict[str, Any]:
        return run_detail(admin, org, run_id)

    wait_for(lambda: any(r["result"] == "copied" for r in detail()["results"]), timeout=60, what="a first copy")
    reference.stop()
    wait_for(lambda: detail()["attempts"] >= 2, timeout=60, what="a second attempt")
    reference.start()
    run = wait_run(admin, org, run_id)
    assert run["state"] == "succeeded", run
    first = [r for r in run["results"] if r["attempt"] == 1]
    assert {r["result"] for r in first} >= {"copied", "failed"}, first  # half done when the destination went
    final = [r for r in run["results"] if r["attempt"] == run["attempts"]]
    assert {r["source"] for r in final} == {f"{org}/{app}:{tag}" for tag in pushed}
    assert all(r["result"] in ("copied", "skipped") for r in final), final
    for tag, digest in pushed.items():
        assert remote_digest(reference.url, f"{org}/{app}", tag) == digest
