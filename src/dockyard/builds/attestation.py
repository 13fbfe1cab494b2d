"""What a finished build hands to its ``builds.attest`` job (``records.ATTEST``): the plain facts of the build that
its SLSA provenance records — who built it, from which source and commit, under which rule, with which parameters,
on which base images (by digest), when — and the image it pushed.

The pipeline computes them where the build ran (a builder may be another machine, without blob storage) and puts
them in the job's payload, in the transaction that moves the build to ``signing``; ``dockyard.provenance`` reads them
back with :func:`AttestInputs.from_payload`. Secrets never enter them: credentials are stripped from the source URL,
and of the build args only the names are recorded (SLSA's advice for parameters that may be secret).
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Row

from dockyard.builds.checkout import redact_url
from dockyard.builds.executor import BuildResult, BuildSpec


@dataclass(frozen=True, slots=True)
class AttestInputs:
    """One build's facts for its provenance (JSON-able: the job payload)."""

    build: int  # the build's row id
    build_uuid: str
    repository: str
    digest: str  # what the executor pushed (an image manifest, or an index of platforms)
    media_type: str
    builder: str  # the name of the machine (``dockyard builder`` or ``serve``) that ran it
    executor: str  # the ``build_executor`` setting
    source_url: str  # without credentials
    ref: str  # refs/heads/… or refs/tags/…
    commit: str
    rule: str  # the rule's id
    source_type: str
    source_name: str
    tag_template: str
    dockerfile: str
    context: str
    build_args: tuple[str, ...]  # names only
    tags: tuple[str, ...]
    network: bool
    cache: bool
    base_images: tuple[tuple[str, str], ...]  # (reference as written, digest)
    started_on: str  # RFC 3339
    finished_on: str

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> AttestInputs:
        values = dict(payload)
        values["build_args"] = tuple(values["build_args"])
        values["tags"] = tuple(values["tags"])
        values["base_images"] = tuple((str(r), str(d)) for r, d in values["base_images"])
        return cls(**values)


def _rfc3339(moment: datetime | None) -> str:
    value = moment or datetime.now(UTC)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def attest_inputs(
    build: Row[Any],
    rule: Row[Any],
    link: Row[Any],
    spec: BuildSpec,
    result: BuildResult,
    executor: str,
    started_at: datetime | None,
) -> AttestInputs:
    """The facts of build ``build`` that ran ``spec`` under ``rule`` of ``link`` and pushed ``result``."""
    return AttestInputs(
        build=int(build.id),
        build_uuid=str(build.uuid),
        repository=str(build.repository),
        digest=result.digest,
        media_type=result.media_type,
        builder=socket.gethostname(),
        executor=executor,
        source_url=redact_url(str(link.url)),
        ref=spec.source.ref,
        commit=result.commit,
        rule=str(rule.uuid),
        source_type=str(rule.source_type),
        source_name=str(rule.source_name),
        tag_template=str(rule.tag),
        dockerfile=spec.dockerfile,
        context=spec.context,
        build_args=tuple(sorted(spec.build_args)),
        tags=tuple(spec.target.tags),
        network=spec.network,
        cache=spec.use_cache,
        base_images=tuple((reference, digest) for reference, digest in result.base_images),
        started_on=_rfc3339(started_at),
        finished_on=_rfc3339(None),
    )
