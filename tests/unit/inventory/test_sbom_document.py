"""``inventory.referrers.sbom_document`` when the image's inventory is not ready: being computed by someone else
(the push's inventory job racing a build's attestation) is ``InventoryBusy`` — try again, the job retries — while a
failed inventory or a manifest that is no image is ``Invalid``, an answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from dockyard.errors import Invalid
from dockyard.inventory.referrers import sbom_document
from dockyard.inventory.service import FAILED, PENDING, READY, InventoryBusy, InventoryService, InventoryState

DIGEST = "sha256:" + "a" * 64


class Inventory:
    """``compute`` answers ``state``; ``packages`` answers None (not ready when read)."""

    def __init__(self, state: str | None) -> None:
        self.state = state

    async def compute(self, repository: str, digest: str) -> InventoryState | None:
        if self.state is None:
            return None
        error = "layer x: corrupt" if self.state == FAILED else None
        return InventoryState(digest, self.state, error, None, 0, datetime.now(UTC))

    async def packages(self, digest: str) -> Any:
        return None


def document(state: str | None) -> Any:
    inventory = cast(InventoryService, Inventory(state))
    return asyncio.run(sbom_document(inventory, "acme/app", DIGEST, "linux/amd64", "https://hub.test"))


@pytest.mark.parametrize("state", [PENDING, READY])  # READY, then pending again when the packages were read
def test_an_inventory_being_computed_is_busy_not_failed(state: str) -> None:
    with pytest.raises(InventoryBusy):
        document(state)


def test_a_failed_inventory_or_no_image_is_an_answer() -> None:
    with pytest.raises(Invalid, match=r"its inventory failed \(layer x: corrupt\)"):
        document(FAILED)
    with pytest.raises(Invalid, match="not an image"):
        document(None)
