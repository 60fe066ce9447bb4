"""Kiosk shoppers in the simulated world (`pipelines-dev --kiosks`): live trading places kiosk orders at the stores'
kiosks, take-home units leave the shelf without the store system hearing of them, and the store never sells them
twice. The product's handling of these orders is tested in pipelines_tests/flows/test_kiosk_orders.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from pipelines.connectors.cloudshelf import ids
from pipelines.defs.kiosk.assets import kiosk_catalog
from pipelines.devstack import Stack
from pipelines_tests.kiosk.kiosk_support import resources


@pytest.fixture(params=["sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201 - overrides the folder's two-database one
    from pipelines_tests.kiosk.kiosk_support import kiosk_stack

    s = kiosk_stack(request, tmp_path)
    try:
        yield s
    finally:
        s.stop()


def test_live_kiosk_shoppers_order_at_the_kiosks_and_take_units_off_the_shelf(stack: Stack) -> None:
    """Kills: kiosk orders in a world without the rate (or in history, where no flow takes them), a take-home unit the
    store later sells again or counts as still there, orders at kiosks that do not show the SKU."""
    assert dg.materialize([kiosk_catalog], resources=resources(stack)).success  # the product publishes first
    trader, cs = stack.trader, stack.cloudshelf.state  # type: ignore[union-attr]
    store = stack.estate.stores[0]
    opens = datetime.now(ZoneInfo(store.timezone)).replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)
    trader.simulate(opens, opens + timedelta(hours=1))  # history mode: no kiosk shoppers
    assert not cs.all_orders()
    trader.config.kiosk_orders_per_store_per_hour = 40.0
    trader.config.store_sales_per_hour = 0.0
    trader.config.online_orders_per_hour = 0.0
    trader.config.click_collect_per_store_per_day = 0.0
    trader.config.counts_per_store_per_day = 0.0
    stats = trader.simulate(opens, opens + timedelta(hours=1), world_clock=False)
    orders = cs.all_orders()
    assert len(orders) == stats.get("kiosk_delivery_orders", 0) + stats.get("kiosk_take_home_sales", 0) > 10
    assert stats.get("kiosk_delivery_orders", 0) > 0 and stats.get("kiosk_take_home_sales", 0) > 0
    for order in orders:
        assert order.status == "PAID" and order.session.location_id in {ids.location_gid(s.id) for s in
                                                                        stack.estate.stores}
    # Each take-home unit is gone from the shelf but not from NewStore: the store cannot sell it again.
    taken = dict(trader._kiosk_taken)
    assert sum(taken.values()) == stats["kiosk_take_home_sales"]
    for (node, sku), n in taken.items():
        on_hand = stack.newstore.state.on_hand(node, sku)
        assert trader._sellable(node, sku) == (on_hand - n > 0 and stack.newstore.state.atp(node, sku) - n > 0)
