"""SBOM documents of an image's inventory: SPDX 2.3 JSON (built with spdx-tools' model and JSON writer) and
CycloneDX 1.6 JSON (cyclonedx-python-lib). Both describe the image (an SPDX package / the CycloneDX metadata
component, named by repository and identified by manifest digest), its distribution, and every package with its
version, Package URL, and where it was found (SPDX: a comment; CycloneDX: ``dockyard:layer`` and
``dockyard:path`` properties). Pure: no I/O.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.package import ExternalPackageRef, ExternalPackageRefCategory, Package, PackagePurpose
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

from dockyard.inventory.model import InstalledPackage
from dockyard.inventory.records import OsRelease

CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json"
TOOL = "dockyard"


@dataclass(frozen=True, slots=True)
class SbomSubject:
    """The image an SBOM describes: ``repository`` (``ns/name``), the manifest ``digest``, ``platform``
    (``os/arch`` or ``""``), the distribution and packages of its inventory, and when that was computed."""

    repository: str
    digest: str
    platform: str
    os: OsRelease | None
    packages: list[InstalledPackage]
    created: datetime


def _where(package: InstalledPackage) -> str:
    return f"found in {package.path} of layer {package.layer}"


def spdx_json(subject: SbomSubject, namespace: str) -> bytes:
    """The SPDX 2.3 JSON document; ``namespace`` is its unique document namespace (an absolute URI)."""
    image_id = "SPDXRef-Image"
    image = Package(
        image_id,
        subject.repository,
        SpdxNoAssertion(),
        version=subject.digest,
        files_analyzed=False,
        primary_package_purpose=PackagePurpose.CONTAINER,
        external_references=[
            ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER,
                "purl",
                PackageURL("oci", None, subject.repository.rpartition("/")[2], subject.digest).to_string(),
            )
        ],
        comment=f"platform {subject.platform}" if subject.platform else None,
    )
    packages = [image]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, image_id)]
    if subject.os is not None:
        packages.append(
            Package(
                "SPDXRef-OperatingSystem",
                subject.os.id,
                SpdxNoAssertion(),
                version=subject.os.version_id,
                files_analyzed=False,
                primary_package_purpose=PackagePurpose.OPERATING_SYSTEM,
                description=subject.os.pretty_name,
            )
        )
        relationships.append(Relationship(image_id, RelationshipType.CONTAINS, "SPDXRef-OperatingSystem"))
    for seq, found in enumerate(subject.packages):
        spdx_id = f"SPDXRef-Package-{seq}"
        packages.append(
            Package(
                spdx_id,
                found.name,
                SpdxNoAssertion(),
                version=found.version,
                files_analyzed=False,
                primary_package_purpose=PackagePurpose.LIBRARY,
                source_info=(
                    f"built from source package {found.source_name or found.name} {found.match_version}"
                    if found.source_name or found.source_version
                    else None
                ),
                external_references=[
                    ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", found.purl)
                ],
                comment=_where(found),
            )
        )
        relationships.append(Relationship(image_id, RelationshipType.CONTAINS, spdx_id))
    document = Document(
        CreationInfo(
            spdx_version="SPDX-2.3",
            spdx_id="SPDXRef-DOCUMENT",
            name=f"{subject.repository}@{subject.digest}",
            document_namespace=namespace,
            creators=[Actor(ActorType.TOOL, TOOL)],
            created=subject.created.astimezone(UTC).replace(microsecond=0),
        ),
        packages=packages,
        relationships=relationships,
    )
    out = io.StringIO()
    write_document_to_stream(document, out, validate=False)
    return out.getvalue().encode()


def _properties(found: InstalledPackage) -> list[Property]:
    values = [Property(name="dockyard:layer", value=found.layer), Property(name="dockyard:path", value=found.path)]
    if found.source_name or found.source_version:
        values.append(Property(name="dockyard:source_name", value=found.source_name or found.name))
        values.append(Property(name="dockyard:source_version", value=found.match_version))
    return values


def cyclonedx_json(subject: SbomSubject) -> bytes:
    """The CycloneDX 1.6 JSON document."""
    bom = Bom()
    bom.metadata.timestamp = subject.created.astimezone(UTC)
    bom.metadata.tools = ToolRepository(components=[Component(name=TOOL, type=ComponentType.APPLICATION)])
    root = Component(
        name=subject.repository,
        version=subject.digest,
        type=ComponentType.CONTAINER,
        bom_ref="image",
        properties=[Property(name="dockyard:platform", value=subject.platform)] if subject.platform else None,
    )
    bom.metadata.component = root
    components: list[Component] = []
    if subject.os is not None:
        components.append(
            Component(
                name=subject.os.id,
                version=subject.os.version_id,
                type=ComponentType.OPERATING_SYSTEM,
                description=subject.os.pretty_name,
                bom_ref="os",
            )
        )
    for seq, found in enumerate(subject.packages):
        components.append(
            Component(
                name=found.name,
                version=found.version,
                type=ComponentType.LIBRARY,
                purl=PackageURL.from_string(found.purl),
                bom_ref=f"pkg-{seq}",
                properties=_properties(found),
            )
        )
    for component in components:
        bom.components.add(component)
    bom.register_dependency(root, components)
    return JsonV1Dot6(bom).output_as_string(indent=None).encode()
