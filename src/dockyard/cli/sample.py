"""``dockyard sample-image``: a first image without network — the tiny multi-platform image of
``dockyard.core.sample_image`` (linux/amd64 and linux/arm64), written as an OCI image layout or pushed straight into
the server's registry as the operator."""

from __future__ import annotations

from pathlib import Path

import click

from dockyard.cli.common import Operator, operator_command
from dockyard.core.names import validate_name, validate_tag
from dockyard.core.sample_image import (
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    SampleImage,
    build_sample_image,
    layout_files,
)
from dockyard.db.engine import Database
from dockyard.errors import Invalid


def write_layout(image: SampleImage, directory: Path, tag: str) -> None:
    """Write ``image`` as an OCI image layout in ``directory`` (created; files already there are replaced)."""
    for relative, data in layout_files(image, tag).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def parse_target(target: str) -> tuple[str, str]:
    """``NS/REPO:TAG`` (or ``NS/REPO``, tag ``latest``) → (repository name, tag)."""
    name, _, tag = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] else (target, "", "latest")
    try:
        return validate_name(name), validate_tag(tag or "latest")
    except Invalid as exc:
        raise click.BadParameter(f"{target!r}: {exc.message}", param_hint="--push") from None


async def push(op: Operator, db: Database, image: SampleImage, name: str, tag: str) -> None:
    """Store ``image`` in repository ``name`` under ``tag`` through the registry services (events, audit and
    webhooks as for any push), as the site operator."""
    from dockyard.registry.context import RegistryContext
    from dockyard.registry.services import Registry
    from dockyard.storage.factory import open_blob_store

    store = open_blob_store(op.settings.effective_storage_url, fsync=op.settings.fsync)
    try:
        registry = Registry.build(RegistryContext(db=db, store=store, settings=op.settings))
        actor = op.settings.admin_username
        for digest, data in image.blobs.items():
            if digest not in image.manifests:
                await registry.uploads.put_bytes(name, data, actor)
        for digest in image.manifests:
            await registry.manifests.put(name, digest, image.blobs[digest], MANIFEST_MEDIA_TYPE, actor=actor)
        await registry.manifests.put(name, tag, image.index, INDEX_MEDIA_TYPE, actor=actor)
    finally:
        await store.close()


@operator_command(None, "sample-image")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("dockyard-sample"),
    show_default=True,
    help="Where to write the OCI image layout (without --push).",
)
@click.option("--tag", default="latest", show_default=True, help="The layout's tag name (without --push).")
@click.option(
    "--push", "target", default=None, metavar="NS/REPO[:TAG]", help="Push into this server's registry instead."
)
def sample_image(op: Operator, output: Path, tag: str, target: str | None) -> None:
    """A tiny image that prints a greeting (linux/amd64 and linux/arm64, assembled here): write it as an OCI
    layout, or push it into the server's registry as the operator (no credentials, no network)."""
    image = build_sample_image()
    if target is None:
        write_layout(image, output, tag)
        where = output.resolve()
        op.emit(
            {"layout": str(where), "tag": tag, "digest": image.index_digest},
            lambda: click.echo(
                f"wrote an OCI image layout to {where} (tag {tag}, {image.index_digest}); push it with:\n"
                f"  skopeo copy --all --dest-tls-verify=false oci:{where}:{tag} docker://HOST:PORT/NS/REPO:{tag}"
            ),
        )
        return
    name, pushed_tag = parse_target(target)
    op.run(lambda db: push(op, db, image, name, pushed_tag))
    from dockyard.cli.main import client_address

    address = client_address(op.settings)
    op.emit(
        {"repository": name, "tag": pushed_tag, "digest": image.index_digest},
        lambda: click.echo(
            f"pushed {name}:{pushed_tag} ({image.index_digest}); run it with:\n"
            f"  podman run --rm --tls-verify=false {address}/{name}:{pushed_tag}"
        ),
    )
