"""``ImageFiles``: the filesystem of a platform image and the difference between two, as the Hub API and the web
hub's pages ask for them. Every call authorizes as a pull does (``layers.images.resolve_image``), makes sure the
image's layers are indexed (``layers.index.LayerIndexer``), then answers from the index: a listing or a stat reads
only the index rows on the path and in the directory; a file's content is streamed from its layer blob, read
again up to that entry; a diff merges what the two images' indexes can differ in (``layers.diff_trees``), and
the last few diffs are kept (two image manifests always differ the same way).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from dockyard.authz.principal import Principal
from dockyard.errors import Invalid, NotFound
from dockyard.layers.bridge import through_thread
from dockyard.layers.diff import (
    MAX_FILE_CHANGES,
    ImageDiff,
    config_changes,
    config_values,
    file_changes,
    layer_changes,
)
from dockyard.layers.diff_trees import diff_trees
from dockyard.layers.images import ImagePlatform, resolve_image
from dockyard.layers.index import LayerIndexer
from dockyard.layers.merged import (
    COLUMNS,
    FileEntry,
    entry_view,
    find,
    from_row,
    merge,
    rows_for,
)
from dockyard.layers.tarstream import Kind, LayerFormatError, member_content, normalise
from dockyard.models import LayerFile
from dockyard.registry.blobs import SMALL_BLOB_LIMIT, BlobService
from dockyard.registry.context import RegistryContext

CONFIG_CACHE_SIZE = 512
DIFF_CACHE_SIZE = 8  # recent diffs (each at most MAX_FILE_CHANGES file changes) kept per process


@dataclass(frozen=True, slots=True)
class PathInfo:
    """A path of ``image``: its ``entry``, and for a directory listed with children its ``children`` by name."""

    image: ImagePlatform
    entry: FileEntry
    children: tuple[FileEntry, ...] | None


@dataclass(frozen=True, slots=True)
class FileContent:
    """A regular file of ``image`` (``entry.size`` bytes) and its content, streamed: iterate ``chunks`` once, or
    ``aclose()`` it."""

    image: ImagePlatform
    entry: FileEntry
    chunks: AsyncIterator[bytes]


def _no_such_path(path: str) -> NotFound:
    return NotFound("file", "no such file or directory", {"path": path[:1024]})


def _child_path(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


async def _layer_errors(chunks: AsyncGenerator[bytes, None], layer: str) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in chunks:
            yield chunk
    except LayerFormatError as exc:
        raise Invalid("layer", f"the layer cannot be read: {exc}", {"digest": layer}) from None
    finally:
        await chunks.aclose()


class ImageFiles:
    """The service; one per process (it holds the ``LayerIndexer`` that coalesces index builds and a small cache
    of parsed configs)."""

    def __init__(self, ctx: RegistryContext, indexer: LayerIndexer | None = None) -> None:
        self.ctx = ctx
        self.blobs = BlobService(ctx)
        self.indexer = indexer or LayerIndexer(ctx.db, self.blobs)
        self._configs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._diffs: OrderedDict[tuple[str, str, int], ImageDiff] = OrderedDict()

    async def image(
        self, actor: Principal, namespace: str, name: str, reference: str, *, platform: str | None = None
    ) -> ImagePlatform:
        """The platform image (see ``resolve_image`` for the errors)."""
        async with self.ctx.db.read(consistent=True) as conn:
            return await resolve_image(conn, actor, namespace, name, reference, platform)

    async def ensure_indexed(self, image: ImagePlatform) -> None:
        """Index every layer of ``image`` not indexed yet (``LayerIndexer.ensure``'s errors)."""
        for digest in dict.fromkeys(image.layer_digests):
            await self.indexer.ensure(digest)

    async def lookup(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        reference: str,
        path: str,
        *,
        platform: str | None = None,
        children: bool = True,
    ) -> PathInfo:
        """The entry at ``path`` (absolute or not; ``..`` cannot leave the root) and, for a directory when
        ``children``, what it holds. Raises ``NotFound("file")`` for a path the image does not have, besides the
        errors of ``image`` and ``ensure_indexed``."""
        image = await self.image(actor, namespace, name, reference, platform=platform)
        await self.ensure_indexed(image)
        key = normalise(path)
        async with self.ctx.db.read(consistent=True) as conn:
            rows = await rows_for(conn, image.layer_digests, key, children=children)
        root = merge(image.layer_digests, rows)
        node = find(root, key)
        if node is None:
            raise _no_such_path(path)
        entry = entry_view(key, node.entry)
        listed: tuple[FileEntry, ...] | None = None
        if children and entry.kind == Kind.DIR:
            listed = tuple(
                entry_view(_child_path(key, child_name), child.entry)
                for child_name, child in sorted(node.children.items())
                if child.entry is not None
            )
        return PathInfo(image, entry, listed)

    async def open_file(
        self, actor: Principal, namespace: str, name: str, reference: str, path: str, *, platform: str | None = None
    ) -> FileContent:
        """The content of the regular file (or hard link to one) at ``path``, streamed from its layer. Raises
        ``Invalid("file")`` for a directory, symlink or special file, and ``lookup``'s errors; the first chunk is
        read before returning, so a missing blob is an error here rather than in the middle of a response."""
        found = await self.lookup(actor, namespace, name, reference, path, platform=platform, children=False)
        entry = found.entry
        if entry.kind not in (Kind.FILE, Kind.HARDLINK) or entry.layer is None:
            raise Invalid("file", f"not a regular file: a {entry.kind}", {"path": path[:1024], "kind": entry.kind})
        member = await self._member(entry)
        chunks = _layer_errors(
            through_thread(self.blobs.stream(entry.layer), lambda raw: member_content(raw, member)), entry.layer
        )
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except BaseException:
            await chunks.aclose()
            raise

        async def content() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(chunks):
                if first:
                    yield first
                async for chunk in chunks:
                    yield chunk

        return FileContent(found.image, entry, content())

    async def _member(self, entry: FileEntry) -> int:
        """The tar position of ``entry``'s content: its own, or for a hard link its target's in the same layer."""
        key = normalise(entry.path)
        query = select(*COLUMNS).where(LayerFile.layer_digest == entry.layer)
        if entry.kind == Kind.HARDLINK:
            query = query.where(LayerFile.path == normalise(entry.link or ""), LayerFile.kind == Kind.FILE)
        else:
            query = query.where(LayerFile.path == key, LayerFile.kind == Kind.FILE)
        async with self.ctx.db.read() as conn:
            rows = [from_row(row) for row in await conn.execute(query.order_by(LayerFile.seq.desc()).limit(1))]
        if not rows:
            raise _no_such_path(entry.path)
        return rows[0].member

    async def diff(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        before: str,
        after: str,
        *,
        platform: str | None = None,
        limit: int = MAX_FILE_CHANGES,
    ) -> ImageDiff:
        """How image ``after`` differs from image ``before`` (tags or digests of one repository)."""
        old = await self.image(actor, namespace, name, before, platform=platform)
        new = await self.image(actor, namespace, name, after, platform=platform)
        # Two image manifests differ the same way whoever asks and whatever names them: a recent answer is kept
        # (authorization above runs every time).
        key = (old.digest, new.digest, limit)
        known = self._diffs.get(key)
        if known is not None:
            self._diffs.move_to_end(key)
            return replace(known, before=old, after=new)
        await self.ensure_indexed(old)
        await self.ensure_indexed(new)
        old_tree, new_tree = await diff_trees(self.ctx.db, old.layer_digests, new.layer_digests)
        files, added, removed, changed = file_changes(old_tree, new_tree, limit=limit)
        shared, layers_removed, layers_added = layer_changes(old, new)
        found = ImageDiff(
            before=old,
            after=new,
            config=config_changes(await self._config(old), await self._config(new)),
            layers_shared=shared,
            layers_removed=layers_removed,
            layers_added=layers_added,
            files=tuple(files),
            added=added,
            removed=removed,
            changed=changed,
            truncated=added + removed + changed > len(files),
        )
        self._diffs[key] = found
        while len(self._diffs) > DIFF_CACHE_SIZE:
            self._diffs.popitem(last=False)
        return found

    async def _config(self, image: ImagePlatform) -> dict[str, Any]:
        cached = self._configs.get(image.config_digest)
        if cached is not None:
            self._configs.move_to_end(image.config_digest)
            return cached
        content = None
        if 0 <= image.config_size <= SMALL_BLOB_LIMIT:
            content = await self.blobs.read_small(image.config_digest, image.config_size)
        values = config_values(content)
        if content is None:
            return values  # unreadable now (logged): not remembered
        self._configs[image.config_digest] = values
        while len(self._configs) > CONFIG_CACHE_SIZE:
            self._configs.popitem(last=False)
        return values
