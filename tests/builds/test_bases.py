"""Finding a Dockerfile's base images before a build (``dockyard.builds.bases``), for its token's pull grants."""

from __future__ import annotations

import pytest

from dockyard.builds.bases import parse_from, repository_of

pytestmark = pytest.mark.embedded_only


def test_from_lines() -> None:
    dockerfile = """# syntax=docker/dockerfile:1
ARG BASE=reg:5000/acme/base
ARG VERSION="1.0"
FROM --platform=$BUILDPLATFORM ${BASE}:${VERSION} AS build
RUN make
from reg:5000/acme/tools@sha256:abc as tools
FROM build
FROM scratch
FROM \\
    alpine:3
COPY --from=tools /x /x
"""
    assert parse_from(dockerfile) == ["reg:5000/acme/base:1.0", "reg:5000/acme/tools@sha256:abc", "alpine:3"]
    # build args override ARG defaults
    assert parse_from(dockerfile, {"VERSION": "2"})[0] == "reg:5000/acme/base:2"


def test_no_from_no_bases() -> None:
    assert parse_from("") == []
    assert parse_from("RUN true\n") == []


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("reg:5000/acme/base:1.0", ("acme/base", "1.0")),
        ("reg:5000/acme/base", ("acme/base", "latest")),
        ("reg:5000/acme/team/base:x", ("acme/team/base", "x")),
        ("reg:5000/acme/base@sha256:abc", ("acme/base", "")),  # pinned by digest: no tag to follow
        ("reg:5000/acme/base:1@sha256:abc", ("acme/base", "1")),
        ("docker.io/library/alpine:3", None),  # another registry
        ("alpine:3", None),
    ],
)
def test_references_on_this_registry(reference: str, expected: tuple[str, str] | None) -> None:
    assert repository_of(reference, "reg:5000") == expected
