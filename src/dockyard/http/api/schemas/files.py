"""Response models of the image filesystem and diff routes (``routes/files.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FileEntryModel(BaseModel):
    path: str = Field(description="absolute path in the image's merged filesystem")
    name: str
    kind: str = Field(description="file, dir, symlink, hardlink or other")
    size: int = Field(description="bytes of a regular file (or of a hard link's target); 0 otherwise")
    mode: int = Field(description="permission bits, with setuid, setgid and sticky")
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: int = Field(description="seconds since the epoch")
    link: str | None = Field(description="a symlink's target as written, or a hard link's target path")
    sha256: str | None = Field(description="hex SHA-256 of a regular file's content")
    layer: str | None = Field(description="digest of the layer the entry comes from")


class LayerRefModel(BaseModel):
    digest: str
    size: int
    media_type: str


class ImageRefModel(BaseModel):
    reference: str = Field(description="the tag or digest asked for")
    digest: str = Field(description="the platform image's manifest digest")
    platform: str = Field(description="os/arch[/variant] chosen from an index; empty for a single image")
    config_digest: str
    layers: list[LayerRefModel]


class PathModel(BaseModel):
    image: ImageRefModel
    entry: FileEntryModel
    entries: list[FileEntryModel] | None = Field(description="a directory's entries by name; null for a non-directory")


class ConfigChangeModel(BaseModel):
    field: str = Field(description="env, entrypoint, cmd, user, labels, exposed_ports or workdir")
    before: Any
    after: Any


class FileChangeModel(BaseModel):
    path: str
    change: str = Field(description="added, removed or changed")
    before: FileEntryModel | None
    after: FileEntryModel | None
    fields: list[str] = Field(description="what changed: kind, size, mode, uid, gid, link, sha256")


class LayerDiffModel(BaseModel):
    shared: list[str]
    removed: list[str]
    added: list[str]


class FileCountsModel(BaseModel):
    added: int
    removed: int
    changed: int


class DiffModel(BaseModel):
    before: ImageRefModel = Field(alias="from")
    after: ImageRefModel = Field(alias="to")
    config: list[ConfigChangeModel]
    layers: LayerDiffModel
    counts: FileCountsModel
    files: list[FileChangeModel]
    truncated: bool = Field(description="more file changes than listed (``files`` holds the first, by path)")

    model_config = ConfigDict(populate_by_name=True)  # FastAPI answers by alias: "from", "to"
