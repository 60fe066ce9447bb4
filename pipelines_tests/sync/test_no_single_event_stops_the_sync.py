"""No single event stops the sync: bad rows become exception records, refused lines fail alone, and
redeliveries and skewed clocks are applied once, at the right time (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from pipelines.domain.bounds import INT32_MAX
from pipelines.intake.verify import InboundEvent
from pipelines.store.inbox import store_events
from pipelines.sync import SyncConfig
from pipelines_tests.sync.conftest import T0, SyncWorld, age_inbox, count, iso, land, receipt, sale


def exceptions(world: SyncWorld) -> list[tuple[str, str]]:
    with world.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT exception_type, exception_key FROM exceptions ORDER BY exception_type, exception_key"))]


def land_raw(world: SyncWorld, key: str, name: str, payload: dict) -> None:
    """A row as an older or laxer intake could have stored it (no parsing, no bounds)."""
    store_events(world.engine, [InboundEvent("newstore", key, name, iso(T0), {"name": name, "payload": payload})])


BAD_PAYLOADS = {
    "quantity-1e999": ("inventory_transaction.items_received", lambda node, sku: {
        "id": "t-inf", "fulfillment_location_id": node, "processed_at": iso(T0),
        "items": [{"product_id": sku, "quantity": float("inf")}]}),
    "sku-200-chars": ("inventory_transaction.items_received", lambda node, sku: {
        "id": "t-long", "fulfillment_location_id": node, "processed_at": iso(T0),
        "items": [{"product_id": "S" * 200, "quantity": 1}]}),
    "logical-timestamp-2**70": ("inventory_transaction.items_received", lambda node, sku: {
        "id": "t-lt", "fulfillment_location_id": node, "processed_at": iso(T0), "logical_timestamp": 2**70,
        "items": [{"product_id": sku, "quantity": 1}]}),
    "not-an-object": ("order.opened", lambda node, sku: {"id": "o-bad", "channel_type": "store", "channel": node,
                                                          "items": "nope"}),
}


@pytest.mark.parametrize("bad", sorted(BAD_PAYLOADS))
def test_one_bad_event_becomes_an_exception_and_everything_after_it_reaches_centra(world: SyncWorld, bad) -> None:
    node = world.store.newstore_node_id
    sku, later = world.skus(2, min_stock=2)
    name, make = BAD_PAYLOADS[bad]
    land_raw(world, f"bad:{bad}", name, make(node, sku))
    land(world.engine, sale(node, later, T0 + timedelta(minutes=1)))
    age_inbox(world.engine)
    sync = world.sync()
    sync.run(window_s=0)
    assert world.physical(later) == world.initial(later) - 1
    assert world.physical(sku) == world.initial(sku)  # the bad event applied nothing
    assert [t for t, _ in exceptions(world)] == ["undecodable_event"]
    # The next run goes past it too: a later sale flows, the bad row is not retried into a failure.
    land(world.engine, sale(node, later, T0 + timedelta(minutes=2)))
    age_inbox(world.engine)
    sync.run(window_s=0)
    assert world.physical(later) == world.initial(later) - 2
    assert [t for t, _ in exceptions(world)] == ["undecodable_event"]


def test_a_redelivery_with_a_new_envelope_is_applied_once(world: SyncWorld) -> None:
    node = world.store.newstore_node_id
    (sku,) = world.skus(1, min_stock=1)
    first = sale(node, sku, T0, ref="o-77")
    again = {**first, "published_at": iso(T0 + timedelta(hours=3)), "republished": True,
             "payload": {**first["payload"], "associate_id": "assoc-9"}}
    assert land(world.engine, first) == [True]
    world.sync().run(window_s=0)
    assert land(world.engine, again) == [False]  # the same sale: a duplicate, whatever its envelope says
    world.sync().run(window_s=0)
    assert world.physical(sku) == world.initial(sku) - 1


def test_a_count_stamped_ahead_of_its_receipt_is_clamped_and_never_supersedes_later_sales(world: SyncWorld) -> None:
    node = world.store.newstore_node_id
    (sku,) = world.skus(1, min_stock=1)
    now = datetime.now(UTC)
    land(world.engine, count(node, {sku: 10}, now + timedelta(hours=2)))  # the device clock runs 2 h ahead
    land(world.engine, sale(node, sku, now + timedelta(seconds=30)))  # a real sale, after the count arrived
    world.sync(SyncConfig(settle_s=0, poll_s=0, clock_skew_s=300, batch_delay_s=None)).run(window_s=0)
    assert world.physical(sku) == 10 - 1
    assert [t for t, _ in exceptions(world)] == ["event_clock_skew"]


def test_within_the_tolerance_a_count_keeps_its_own_time(world: SyncWorld) -> None:
    node = world.store.newstore_node_id
    (sku,) = world.skus(1, min_stock=1)
    now = datetime.now(UTC)
    land(world.engine, count(node, {sku: 10}, now + timedelta(seconds=240)))
    land(world.engine, sale(node, sku, now + timedelta(seconds=30)))  # before the count: absorbed by it
    world.sync(SyncConfig(settle_s=0, poll_s=0, clock_skew_s=300, batch_delay_s=None)).run(window_s=0)
    assert world.physical(sku) == 10
    assert exceptions(world) == []


def test_a_graphql_400_on_one_line_fails_that_line_and_the_rest_of_the_batch_goes_through(world: SyncWorld) -> None:
    node = world.store.newstore_node_id
    big, small = world.skus(2)
    # Two receipts each within bounds whose sum overflows Centra's Int: Centra refuses the request (400).
    land(world.engine, receipt(node, {big: INT32_MAX}, T0), receipt(node, {big: INT32_MAX, small: 1}, T0))
    sync = world.sync()
    sync.run(window_s=0)
    sync.run(window_s=0)
    assert world.physical(small) == world.initial(small) + 1
    assert world.physical(big) == world.initial(big)
    assert world.statuses() == {"done": 1, "failed": 2}
    assert [t for t, _ in exceptions(world)] == ["stock_sync_rejected"]
    def batches() -> list[tuple[str, str]]:
        with world.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT status, lines FROM stock_sync_batches ORDER BY batch_id"))]

    with world.engine.connect() as conn:
        detail = conn.execute(text("SELECT sku, payload FROM exceptions")).one()
    assert detail.sku == big and "Int cannot represent" in json.loads(detail.payload)["errors"][0]["message"]
    before = batches()
    assert "prepared" not in {status for status, _ in before}  # nothing left to be resent on every pass
    sync.run(window_s=0)  # and a further run sends nothing again
    assert batches() == before


def _store_order(node: str, order_id: str, channel_type: str = "store") -> dict:
    return {"name": "order.opened", "published_at": iso(T0), "payload": {
        "id": order_id, "channel_type": channel_type, "channel": node, "placed_at": iso(T0),
        "price_method": "tax_included", "items": [{"id": f"{order_id}-1", "product_id": "x", "quantity": 1,
                                                   "shipping_service_level": "STANDARD", "status": "pending"}]}}


def _completed(node: str, order_id: str, sku: str, lt: int, service_level: str = "STANDARD") -> dict:
    return {"name": "fulfillment_request.items_completed", "published_at": iso(T0 + timedelta(hours=1)),
            "payload": {"id": f"fr-{order_id}", "order_id": order_id, "logical_timestamp": lt,
                        "fulfillment_location_id": node, "associate_id": None, "service_level": service_level,
                        "items": [{"id": f"{order_id}-{lt}", "product_id": sku}]}}


def test_ship_from_store_reaches_centra_once_and_platform_orders_and_till_sales_do_not(world: SyncWorld) -> None:
    node = world.store.newstore_node_id
    shipped, web, till = world.skus(3, min_stock=1)
    land(world.engine, _store_order(node, "o-sfs"), _store_order(node, "o-web", channel_type="web"),
         _completed(node, "o-sfs", shipped, 11), _completed(node, "o-web", web, 12),
         _completed(node, "o-sfs", till, 13, service_level="IN_STORE_HANDOVER"))
    land(world.engine, _completed(node, "o-sfs", shipped, 11))  # redelivered
    world.sync().run(window_s=0)
    assert world.physical(shipped) == world.initial(shipped) - 1
    assert world.physical(web) == world.initial(web)
    assert world.physical(till) == world.initial(till)
    assert exceptions(world) == []
