"""Shared by the kiosk tests: a devstack with kiosks (Cloudshelf simulator on loopback) and the Dagster resources
that point at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.connectors.cloudshelf import ids
from pipelines.defs.resources import (
    CentraResource,
    CloudshelfResource,
    CommercetoolsResource,
    EstateResource,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.devstack import Stack


def kiosk_stack(request: pytest.FixtureRequest, tmp_path: Path, **kwargs: Any) -> Stack:
    """A started stack with kiosks on SQLite, or on PostgreSQL for the `postgres` param."""
    url = None
    if getattr(request, "param", "sqlite") == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"kiosk_{abs(hash(str(tmp_path)))}")
    kwargs = {"sizes": 24, "stores": 3, "seed": 11, **kwargs}
    stack = Stack(tmp_path / "stack", database_url=url, kiosks=True, **kwargs).start()
    # The tests count what one sync pass applies: Centra's budget must not defer it (the kiosk's reads spend too).
    stack.centra.state.set_rate_limits(tier="ENTERPRISE")
    return stack


def resources(stack: Stack, *, cloudshelf: bool = True) -> dict[str, Any]:
    env = stack.env()
    return {"store": StoreOfRecord(database_url=stack.database_url),
            "estate": EstateResource(path=str(stack.estate_file)),
            "centra": CentraResource(base_url=env["CENTRA_API_URL"], token=env["CENTRA_API_TOKEN"]),
            "commercetools": CommercetoolsResource(),
            "cloudshelf": CloudshelfResource(base_url=env["CLOUDSHELF_API_URL"], token=env["CLOUDSHELF_API_TOKEN"])
            if cloudshelf else CloudshelfResource(),
            "sync_settings": SyncSettings(settle_s=0.0, batch_delay_s=None, poll_s=0.0)}


def centra_free(stack: Stack, warehouse_id: int, sku: str) -> int:
    """Centra's free-to-allocate as the simulator holds it (the oracle)."""
    return max(0, stack.centra.state.stock_of(warehouse_id, sku)["fta"])


def expected_kiosk_quantity(stack: Stack, location_id: str, sku: str) -> int:
    """The design's rule, from the estate and Centra's own state: the store's warehouse plus the other warehouses of
    its market's allocation rule."""
    est = stack.estate
    loc = est.by_location_id[location_id]
    rule = next(r for r in est.centra.allocation_rules if r.id == est.markets[loc.centra_market_id].allocation_rule_id)
    warehouses = {loc.centra_warehouse_id, *rule.warehouse_ids}
    return sum(centra_free(stack, w, sku) for w in warehouses)


def set_centra_physical(stack: Stack, warehouse_id: int, sku: str, qty: int) -> None:
    size_id = stack.estate.by_sku[sku].size.size_id
    stack.centra.state.apply_stock_set("test setup", warehouse_id, [(size_id, qty)])


def kiosk_levels(stack: Stack) -> dict[tuple[str, str], tuple[int, object]]:
    """(location id, SKU) -> (quantity, updated_at) of every stock level in the Cloudshelf simulator."""
    state = stack.cloudshelf.state  # type: ignore[union-attr]
    with state.lock:
        return {(ids.location_of(loc), ids.sku_of(var)): (lvl.quantity, lvl.updated_at)
                for (loc, var), lvl in state.stock.items()}
