"""The SBOM inventory (``dockyard.inventory``): what the detectors found in each layer (``layer_inventories``,
``layer_packages``, keyed by layer digest: layers are shared, so each is inventoried once) and the packages of
each image platform after whiteouts (``image_inventories``, ``image_packages``, keyed by the image manifest's
digest, the same in every repository holding it).

Layer rows cascade from the layer's file index (and so from its blob); image rows cascade from the image's config
blob, which garbage collection deletes once no manifest refers to it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, UTCDateTime, utcnow


class LayerInventory(Base):
    """The detectors' pass over one layer: ``state`` ``ready`` (its records are in ``layer_packages``) or
    ``failed`` (a package database or the layer stream could not be read; ``error`` says which and why).
    ``version`` is the detectors' version that produced it: an older one is computed again."""

    __tablename__ = "layer_inventories"

    layer_digest: Mapped[str] = mapped_column(
        String(140), ForeignKey("layer_indexes.digest", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    records: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LayerPackage(Base):
    """One record a detector found in a layer's file ``path`` (normalised, no leading ``/``). ``type`` is a
    ``dockyard.inventory.records.RecordType`` (``deb``, ``apk``, ``rpm``, ``pypi``, ``npm``, ``golang``,
    ``maven``) or ``os-release``, whose row holds ``ID`` in ``name``, ``VERSION_ID`` in ``version``,
    ``VERSION_CODENAME`` in ``source_name`` and ``PRETTY_NAME`` in ``label``."""

    __tablename__ = "layer_packages"

    layer_digest: Mapped[str] = mapped_column(
        String(140), ForeignKey("layer_inventories.layer_digest", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    source_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_version: Mapped[str | None] = mapped_column(Text, nullable=True)
    arch: Mapped[str | None] = mapped_column(Text, nullable=True)
    label: Mapped[str | None] = mapped_column(Text, nullable=True)


class ImageInventory(Base):
    """The inventory of one image platform (its image manifest ``digest``): ``state`` ``pending`` (being
    computed), ``ready`` or ``failed`` (``error``); the distribution its ``os-release`` names."""

    __tablename__ = "image_inventories"

    digest: Mapped[str] = mapped_column(String(140), primary_key=True)
    config_digest: Mapped[str] = mapped_column(String(140), ForeignKey("blobs.digest", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    os_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    packages: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ImagePackage(Base):
    """One package of an image (``dockyard.inventory.model.InstalledPackage``, field for field). Indexed by
    (ecosystem, name) and (ecosystem, source_name) so that matching finds the images holding a package without
    reading every image."""

    __tablename__ = "image_packages"

    image_digest: Mapped[str] = mapped_column(
        String(140), ForeignKey("image_inventories.digest", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ecosystem: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(1024))
    version: Mapped[str] = mapped_column(Text)
    purl: Mapped[str] = mapped_column(Text)
    layer: Mapped[str] = mapped_column(String(140))
    path: Mapped[str] = mapped_column(Text)
    release: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_name: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    source_version: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_image_packages_name", "ecosystem", "name"),
        Index("ix_image_packages_source", "ecosystem", "source_name"),
    )
