"""The buildah executor end to end: a commit on a loopback git server is checked out, built on a busybox base
pulled from Dockyard with the build's token, pushed under every tag; skopeo pulls it and the files are inside; the
same commit builds to the same digest."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from dockyard.builds.buildah import BuildahExecutor
from dockyard.builds.dockerfile import from_references, split_reference
from tests.builds.executor.conftest import (
    BASE_REPO,
    BASE_TAG,
    TIMINGS,
    admin_creds,
    assert_nothing_left,
    run_build,
    spec_for,
)
from tests.clients.conftest import make_containers_env
from tests.support.gitrepo import GitServer
from tests.support.oci import unique_name
from tests.support.server import DockyardServer

pytestmark = [pytest.mark.clients, pytest.mark.embedded_only]

DOCKERFILE = f"""\
ARG BASE={BASE_REPO}:{BASE_TAG}
FROM $BASE
COPY greeting.txt /greeting.txt
RUN echo "built from $(cat /greeting.txt)" > /built.txt && chmod 644 /built.txt
"""


def image_files(registry: DockyardServer, reference: str, tmp_path: Path) -> dict[str, bytes]:
    """Pull ``reference`` with skopeo into an OCI layout and return the regular files of its layers."""
    skopeo = make_containers_env(tmp_path / "skopeo", registry).tool("skopeo")
    layout = tmp_path / "layout"
    skopeo.run(
        "copy", "--src-tls-verify=false", "--src-creds", admin_creds(), f"docker://{reference}", f"oci:{layout}:x"
    )
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        blob = (layout / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]).read_bytes()
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    files[member.name.lstrip("./")] = extracted.read()
    return files


def image_json(registry: DockyardServer, reference: str, tmp_path: Path) -> tuple[str, str]:
    """The manifest and the config of ``reference`` (to show what differs between two builds)."""
    skopeo = make_containers_env(tmp_path / "inspect", registry).tool("skopeo")
    common = ("--tls-verify=false", "--creds", admin_creds())
    manifest = skopeo.out("inspect", *common, "--raw", f"docker://{reference}")
    config = skopeo.out("inspect", *common, "--config", f"docker://{reference}")
    return manifest, config


def test_build_push_pull_and_reproduce(
    executor: BuildahExecutor, registry: DockyardServer, base_digest: str, git_server: GitServer, tmp_path: Path
) -> None:
    work = git_server.repository(unique_name("app").replace("/", "-"))
    commit = work.commit({"Dockerfile": DOCKERFILE, "greeting.txt": "the git server\n"}, when=1_700_000_000)
    repository = unique_name("builds")
    spec = spec_for(registry, work.url, commit, repository, tags=("v1", "latest"))

    first = run_build(executor, spec)
    assert first.failure is None, first.text
    assert first.result is not None
    assert first.stages == ["cloning", "building", "pushing"]
    assert first.result.commit == commit
    assert first.result.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert first.result.base_images == ((f"{BASE_REPO}:{BASE_TAG}", base_digest),)
    assert any(line.startswith("sandbox: ") for line in first.log), first.text
    assert spec.target.token not in first.text
    TIMINGS.info(f"cold build (fresh storage, base pulled): {first.seconds:.1f} s")

    files = image_files(registry, f"{registry.host}/{repository}:v1", tmp_path / "v1")
    assert files["built.txt"] == b"built from the git server\n"
    assert files["greeting.txt"] == b"the git server\n"
    assert "bin/busybox" in files  # the base's layer is there too
    assert image_files(registry, f"{registry.host}/{repository}:latest", tmp_path / "latest") == files
    assert_nothing_left(executor, registry)

    # The same commit again, into fresh storage: the same image, byte for byte.
    again = run_build(executor, spec_for(registry, work.url, commit, repository, tags=("again",)))
    assert again.failure is None, again.text
    assert again.result is not None
    assert again.result.digest == first.result.digest, (
        image_json(registry, f"{registry.host}/{repository}:v1", tmp_path),
        image_json(registry, f"{registry.host}/{repository}:again", tmp_path),
    )
    assert again.result.size == first.result.size
    TIMINGS.info(f"second build of the same commit: {again.seconds:.1f} s, digest {again.result.digest}")
    assert_nothing_left(executor, registry)


def test_layer_cache_and_older_commit(
    executor: BuildahExecutor, registry: DockyardServer, base_digest: str, git_server: GitServer
) -> None:
    """A commit that is no longer a branch head is checked out by its sha; the layer cache keeps layers between
    builds of one cache key, and a cached build gives the same digest as an uncached one."""
    work = git_server.repository(unique_name("cached").replace("/", "-"))
    commit = work.commit({"Dockerfile": DOCKERFILE, "greeting.txt": "a cache\n"})
    work.commit({"greeting.txt": "a newer head\n"}, when=1_700_000_100)
    repository = unique_name("builds")
    plain = run_build(executor, spec_for(registry, work.url, commit, repository, tags=("plain",)))
    assert plain.failure is None, plain.text
    assert plain.result is not None
    assert plain.result.commit == commit
    timings = []
    for tag in ("c1", "c2"):
        cached = run_build(
            executor,
            spec_for(registry, work.url, commit, repository, tags=(tag,), use_cache=True, cache_key=repository),
        )
        assert cached.failure is None, cached.text
        assert cached.result is not None
        assert cached.result.digest == plain.result.digest
        timings.append(cached.seconds)
    assert any("Using cache" in line for line in cached.log), cached.text
    TIMINGS.info(f"uncached {plain.seconds:.1f} s; cached cold {timings[0]:.1f} s, warm {timings[1]:.1f} s")
    assert (executor.work_root / "cache").is_dir()
    assert_nothing_left(executor, registry)


def test_secret_build_args(
    executor: BuildahExecutor, registry: DockyardServer, base_digest: str, git_server: GitServer, tmp_path: Path
) -> None:
    """A secret build arg is never logged, and reaches RUN as a secret mount that leaves no trace in the image."""
    secret = "s3cret-build-arg-value-0123456789"
    # The Dockerfile holds only the secret's hash (a Dockerfile's RUN lines are in the image's history).
    digest = hashlib.sha256(secret.encode()).hexdigest()
    dockerfile = (
        f"FROM {BASE_REPO}:{BASE_TAG}\nARG PLAIN\n"
        'RUN --mount=type=secret,id=API_TOKEN test "$(sha256sum < /run/secrets/API_TOKEN | cut -d" " -f1)" = '
        f"{digest} && echo SECRET-MOUNT-OK && echo $PLAIN > /plain.txt && cat /run/secrets/API_TOKEN && echo\n"
    )
    work = git_server.repository(unique_name("secret").replace("/", "-"))
    commit = work.commit({"Dockerfile": dockerfile})
    repository = unique_name("builds")
    spec = spec_for(
        registry,
        work.url,
        commit,
        repository,
        build_args={"API_TOKEN": secret, "PLAIN": "visible"},
        secret_build_args=frozenset({"API_TOKEN"}),
    )
    outcome = run_build(executor, spec)
    assert outcome.failure is None, outcome.text
    assert "SECRET-MOUNT-OK" in outcome.text
    assert secret not in outcome.text
    assert "***" in outcome.text  # where the RUN step printed it, redacted
    _, config = image_json(registry, f"{registry.host}/{repository}:latest", tmp_path)
    assert secret not in config
    files = image_files(registry, f"{registry.host}/{repository}:latest", tmp_path / "pull")
    assert files["plain.txt"] == b"visible\n"
    assert_nothing_left(executor, registry)


def test_checkout_failures_are_clear(
    executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer
) -> None:
    work = git_server.repository(unique_name("missing").replace("/", "-"))
    work.commit({"Dockerfile": "FROM scratch\n"})
    outcome = run_build(executor, spec_for(registry, work.url, "0" * 40, unique_name("builds")))
    assert outcome.failure is not None
    assert outcome.failure.stage == "cloning"
    assert "not found" in outcome.failure.reason
    local = run_build(executor, spec_for(registry, "/etc", "0" * 40, unique_name("builds")))
    assert local.failure is not None
    assert "not a network git URL" in local.failure.reason
    assert_nothing_left(executor, registry)


def test_from_references_and_names() -> None:
    dockerfile = (
        "ARG TAG=3\nARG REG\nFROM --platform=linux/amd64 ${REG:-127.0.0.1:5000}/ns/a:$TAG AS build\n"
        "FROM scratch\nFROM build\nFROM other.example/x/y@sha256:abc\nFROM \\\n  ns/b\n"
    )
    assert from_references(dockerfile, {}) == ["127.0.0.1:5000/ns/a:3", "other.example/x/y@sha256:abc", "ns/b"]
    assert from_references(dockerfile, {"TAG": "9"})[0] == "127.0.0.1:5000/ns/a:9"
    assert split_reference("ns/b", "h:1") == ("h:1", "ns/b", "latest")
    assert split_reference("h:1/ns/b:2", "x") == ("h:1", "ns/b", "2")
    assert split_reference("localhost/b@sha256:ff", "x") == ("localhost", "b", "sha256:ff")
