"""commercetools connector against the commercetools simulator over loopback HTTP: OAuth, errors, retries, paging,
messages, and the reconciliation's reads (known answers from what each test placed through the simulator's world
API and the estate, never from the code under test)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.connectors.commercetools import (
    CommercetoolsClient,
    ConcurrentModification,
    DuplicateField,
    ResourceNotFound,
)
from pipelines.connectors.commercetools.reads import CommercetoolsReads
from pipelines.connectors.errors import AuthError, TransientError
from pipelines.estate.model import Estate, estate_from_dict
from pipelines.simulators.commercetools import CommercetoolsSimulator
from pipelines.simulators.estate_gen import generate_estate

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
SECRET = "s3cret"
ALL = ("manage_project:nordlys-sim",)


@dataclass
class World:
    estate: Estate
    sim: CommercetoolsSimulator
    url: str
    now: list[datetime]
    sleeps: list[float]

    def client(self, client_id: str = "conn", secret: str = SECRET, scopes: tuple[str, ...] = (),
               **kwargs: object) -> CommercetoolsClient:
        return CommercetoolsClient(self.url, self.url, self.sim.project_key, client_id, secret, scopes,
                                   sleep=self.sleeps.append, backoff_base_s=0.01, **kwargs)  # type: ignore[arg-type]

    def advance(self, **delta: float) -> datetime:
        self.now[0] += timedelta(**delta)
        return self.now[0]


@pytest.fixture(name="world")
def fixture_world() -> Iterator[World]:
    estate = estate_from_dict(generate_estate(sizes=20, stores=2, commerce="commercetools"))
    now = [T0]
    sim = CommercetoolsSimulator(estate, clock=lambda: now[0], auth_clock=lambda: now[0], token_ttl_s=3600,
                                 order_number_prefix="CT", clients={
        "conn": (SECRET, ALL), "orders-only": (SECRET, ("view_orders:nordlys-sim",))})
    with sim.serve() as srv:
        yield World(estate, sim, srv.url, now, [])


def _dc_skus(estate: Estate, n: int, minimum: int = 3) -> list[str]:
    return [s for s, q in sorted(estate.initial_stock["DC01"].items()) if q >= minimum][:n]


def _price(estate: Estate, sku: str) -> float:
    return estate.price(sku, estate.markets[1].pricelist_id)  # the SE market's price list (SEK, tax included)


# -- OAuth


def test_token_scope_cache_expiry_and_refresh_on_invalid_token(world: World) -> None:
    """Kills: no/unqualified scope in the token request, a token per request, no refresh before expires_in, no
    retry with a new token after a 401 invalid_token, a 403 insufficient_scope swallowed or retried forever."""
    clock = [0.0]
    with world.client(scopes=("view_products", "view_channels"), clock=lambda: clock[0]) as client:
        assert len(client.channels()) == 4
        assert set(client.tokens.granted_scope.split()) == {"view_products:nordlys-sim", "view_channels:nordlys-sim"}
        assert len(list(client.inventory_entries())) == 60
        assert client.tokens.fetches == 1  # cached across requests
        clock[0] += 3600 - 1  # within the refresh margin before expires_in (3600 s)
        client.channels()
        assert client.tokens.fetches == 2
        world.advance(seconds=7200)  # the server's clock: every token issued so far has expired
        assert len(client.channels()) == 4  # 401 invalid_token -> new token -> the same request again
        assert client.tokens.fetches == 3
        with pytest.raises(AuthError) as denied:
            client.order("any")  # view_orders was not asked for
        assert denied.value.status == 403
        assert client.tokens.fetches == 3  # a 403 is not a reason for a new token
    with world.client("orders-only") as narrow, pytest.raises(AuthError) as refused:
        narrow.inventory_by_key("x")
    assert refused.value.status == 403
    with world.client(secret="wrong") as bad, pytest.raises(AuthError):
        bad.channels()


# -- errors and retries


def test_conflict_not_found_duplicate(world: World) -> None:
    """Kills: a 409 not typed (or without currentVersion), 404 raised from the getters that answer None, a 400
    DuplicateField not typed."""
    sku = _dc_skus(world.estate, 1)[0]
    dc = world.sim.state.channel_id("DC01")
    with world.client() as client:
        (entry,) = client.inventory_entries(skus=[sku], channel_ids=[dc])
        assert entry["quantityOnStock"] == world.estate.initial_stock["DC01"][sku]
        updated = client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity",
                                                                                  "quantity": 2}])
        assert updated["version"] == entry["version"] + 1
        with pytest.raises(ConcurrentModification) as stale:
            client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 2}])
        assert stale.value.status == 409 and stale.value.code == "ConcurrentModification"
        assert stale.value.current_version == updated["version"]
        assert world.sim.state.stock("DC01", sku)[0] == entry["quantityOnStock"] + 2  # the stale write did nothing
        assert client.order("no-such-order") is None
        assert client.order_by_number("999999") is None
        assert client.inventory_by_key("no-such-key") is None
        with pytest.raises(ResourceNotFound) as missing:
            client.get("/orders/no-such-order")
        assert missing.value.status == 404 and missing.value.code == "ResourceNotFound"
        with pytest.raises(DuplicateField):
            client.create_inventory_entry({"sku": sku, "quantityOnStock": 1,
                                           "supplyChannel": {"typeId": "channel", "id": dc}})


def test_502_503_retried_for_reads_and_only_safe_writes(world: World) -> None:
    """Kills: 5xx not retried, retries without backoff sleeps, a non-idempotent POST resent after the server may
    have applied it (a double addQuantity), an idempotent one not retried, retries without bound."""
    state = world.sim.state
    sku = _dc_skus(world.estate, 1)[0]
    with world.client() as client:
        (entry,) = client.inventory_entries(skus=[sku], channel_ids=[state.channel_id("DC01")])
        start = state.stock("DC01", sku)[0]
        state.fail_next(502)
        state.fail_next(503)
        assert len(client.channels()) == 4
        assert len(world.sleeps) == 2
        state.fail_next(503, after_execute=True)  # applied, then answered 503
        with pytest.raises(TransientError) as ambiguous:
            client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 1}])
        assert ambiguous.value.status == 503
        assert state.stock("DC01", sku)[0] == start + 1  # applied once, not resent
        fresh = client.inventory_entry(entry["id"])
        assert fresh is not None
        state.fail_next(502)  # refused before executing: resent because the caller says the write is idempotent
        client.update("/inventory", entry["id"], fresh["version"], [{"action": "addQuantity", "quantity": 1}],
                      idempotent=True)
        assert state.stock("DC01", sku)[0] == start + 2
        state.fail_next(503, count=4)
        with pytest.raises(TransientError):
            client.channels()  # 4 attempts (max_attempts), then the error
        assert len(client.channels()) == 4
    assert len(world.sleeps) == 2 + 1 + 3


# -- paging and messages


def test_keyset_paging_reads_every_entry_once(world: World) -> None:
    """Kills: offset paging, a keyset that skips or repeats the page boundary, stopping after the first page, a
    SKU batch or channel filter that drops entries."""
    state = world.sim.state
    with world.client() as client:
        before = state.request_count("GET", "inventory")
        entries = list(client.query("/inventory", limit=7))
        assert state.request_count("GET", "inventory") - before == 9  # 60 entries: 8 full pages + 4
        ids = [e["id"] for e in entries]
        assert len(ids) == len(set(ids)) == 60 and ids == sorted(ids)
        expected = {(loc.id, sku): qty for loc in world.estate.locations
                    for sku, qty in world.estate.initial_stock[loc.newstore_node_id].items()}
        channels = {c["id"]: c["key"] for c in client.channels()}
        assert {(channels[e["supplyChannel"]["id"]], e["sku"]): e["quantityOnStock"] for e in entries} == expected
        skus = sorted(world.estate.by_sku)[:5]
        some = list(client.inventory_entries(skus=skus, channel_ids=[state.channel_id("ST-SE01")]))
        assert sorted(e["sku"] for e in some) == skus


def test_message_pulls_in_created_order_with_overlap(world: World) -> None:
    """Kills: a `since` filter that is exclusive (drops same-instant messages), the wrong sort, type filters
    ignored."""
    a, b = _dc_skus(world.estate, 2)
    state = world.sim.state
    with world.client() as client:
        since = world.now[0]
        for sku, delta in ((a, 4), (b, -1)):
            world.advance(seconds=10)
            state.set_stock("DC01", sku, state.stock("DC01", sku)[0] + delta)
        world.advance(seconds=10)
        stamp = since.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        first = client.messages(since=stamp, types=["InventoryEntryQuantitySet"], limit=1)
        assert len(first) == 1 and first[0]["sku"] == a
        again = client.messages(since=first[0]["createdAt"], types=["InventoryEntryQuantitySet"])
        seen = {m["id"]: m for m in first + again}
        assert [(m["sku"], m["newQuantityOnStock"] - m["oldQuantityOnStock"])
                for m in sorted(seen.values(), key=lambda m: m["createdAt"])] == [(a, 4), (b, -1)]
        assert first[0]["id"] in {m["id"] for m in again}  # the boundary message comes again
        assert client.messages(since=stamp, types=["OrderCreated"]) == []


# -- the reconciliation's reads


def _reads(world: World, client: CommercetoolsClient) -> CommercetoolsReads:
    return CommercetoolsReads(client, world.estate, order_number_prefix="CT")


def _returned(client: CommercetoolsClient, order: dict, line_id: str, state: str, tracking: str) -> dict:
    return client.update_order(order["id"], order["version"], [{
        "action": "addReturnInfo", "returnTrackingId": tracking,
        "items": [{"lineItemId": line_id, "quantity": 1, "shipmentState": state}]}])


def test_orders_between_maps_numbers_states_totals_and_markets(world: World) -> None:
    """Kills: a window that is not [start, end), orderNumber not read (or the project prefix not stripped), the
    wrong status mapping (shipped/cancelled/open), totals not from the tax-included prices, tax rate not x100, the
    market/price list not found through the store and currency, returned quantities counting Advised items."""
    state = world.sim.state
    a, b = _dc_skus(world.estate, 2)
    shipped = state.place_order("web-se", [(a, 2), (b, 1)], "ann@example.com", created_at=T0 + timedelta(hours=1),
                                order_number="100001")
    state.ship_order(shipped["id"], at=T0 + timedelta(hours=2))
    open_ = state.place_order("web-se", [(b, 1)], "bo@example.com", created_at=T0 + timedelta(hours=3))
    cancelled = state.place_order("web-se", [(a, 1)], "cy@example.com", created_at=T0 + timedelta(hours=4),
                                  order_number="100003")
    state.place_order("web-se", [(a, 1)], "late@example.com", created_at=T0 + timedelta(days=1), order_number="100004")
    with world.client() as client:
        client.update_order(cancelled["id"], cancelled["version"],
                            [{"action": "changeOrderState", "orderState": "Cancelled"}])
        order = client.order(shipped["id"])
        line_a = next(li["id"] for li in order["lineItems"] if li["variant"]["sku"] == a)
        line_b = next(li["id"] for li in order["lineItems"] if li["variant"]["sku"] == b)
        order = _returned(client, order, line_a, "Returned", "RT-1")
        _returned(client, order, line_b, "Advised", "RT-2")
        orders = {o.number: o for o in _reads(world, client).orders_between(T0, T0 + timedelta(days=1))}
    assert open_["orderNumber"].startswith("CT")
    open_number = int(open_["orderNumber"][2:])
    assert set(orders) == {100001, open_number, 100003}
    assert {n: o.status for n, o in orders.items()} == {100001: "SHIPPED", open_number: "PENDING",
                                                        100003: "CANCELLED"}
    pa, pb = _price(world.estate, a), _price(world.estate, b)
    first = orders[100001]
    assert first.id == shipped["id"] and first.email == "ann@example.com"
    assert first.grand_total == pytest.approx(2 * pa + pb)
    assert first.tax_total == pytest.approx((2 * pa + pb) * 0.25 / 1.25, abs=0.02)  # SE 25 %, tax included
    assert (first.market_id, first.pricelist_id, first.store_id, first.currency, first.country) == (1, 2, 1, "SEK",
                                                                                                      "SE")
    lines = {ln.sku: ln for ln in first.lines}
    assert (lines[a].quantity, lines[a].unit_price, lines[a].line_value, lines[a].tax_percent) == (2, pa, 2 * pa,
                                                                                                   25.0)
    assert (lines[a].returned_quantity, lines[b].returned_quantity) == (1, 0)  # Advised is not yet returned
    assert lines[a].product_number == world.estate.by_sku[a].product.product_number
    assert [ln.cancelled_quantity for ln in orders[100003].lines] == [1]
    assert orders[open_number].grand_total == pytest.approx(pb)
    with world.client() as client:
        found = _reads(world, client).orders_by_numbers([100001, open_number, 100004, 999999])
    assert {n: o.status for n, o in found.items()} == {100001: "SHIPPED", open_number: "PENDING", 100004: "PENDING"}


def test_returns_between_with_refunds(world: World) -> None:
    """Kills: returns read by order creation instead of return creation, the return id not stable (the first item
    id), refunds not matched to their return by interactionId, a return counted refunded without a refund, the
    tracking id lost."""
    state = world.sim.state
    a, b = _dc_skus(world.estate, 2)
    day1 = T0 - timedelta(days=1)  # the order is from the day before: its returns belong to the day they were made
    placed = state.place_order("web-se", [(a, 1), (b, 1)], "ann@example.com", created_at=day1, order_number="200001")
    state.ship_order(placed["id"], at=day1 + timedelta(hours=1))
    pa = _price(world.estate, a)
    with world.client() as client:
        order = client.order(placed["id"])
        line = {li["variant"]["sku"]: li["id"] for li in order["lineItems"]}
        world.now[0] = T0 + timedelta(hours=3)
        order = _returned(client, order, line[a], "Returned", "RT-1")
        item = order["returnInfo"][0]["items"][0]
        order = client.update_order(order["id"], order["version"], [
            {"action": "setReturnPaymentState", "returnItemId": item["id"], "paymentState": "Refunded"}])
        payment = client.payment(order["paymentInfo"]["payments"][0]["id"])
        client.update_payment(payment["id"], payment["version"], [{"action": "addTransaction", "transaction": {
            "type": "Refund", "amount": {"currencyCode": "SEK", "centAmount": round(pa * 100)}, "state": "Success",
            "interactionId": "RT-1", "timestamp": "2026-03-10T12:30:00.000Z"}}])
        world.now[0] = T0 + timedelta(hours=4)
        order = _returned(client, order, line[b], "Returned", "RT-2")
        world.now[0] = T0 + timedelta(days=1, hours=1)
        _returned(client, client.order(placed["id"]), line[b], "Advised", "RT-3")  # the next day: not in the window
        returns = _reads(world, client).returns_between(T0, T0 + timedelta(days=1))
    assert [r.external_id for r in returns] == ["RT-1", "RT-2"]
    refunded, pending = returns
    assert refunded.id == item["id"] and refunded.order_number == 200001 and refunded.order_id == placed["id"]
    assert (refunded.refunded, refunded.refund_amount, refunded.grand_total) == (True, pa, pa)
    assert refunded.refunded_at == "2026-03-10T12:30:00+00:00" and refunded.status == "COMPLETED"
    assert [(ln.sku, ln.quantity, ln.line_value, ln.tax_percent) for ln in refunded.lines] == [(a, 1, pa, 25.0)]
    assert (pending.refunded, pending.refund_amount, pending.status) == (False, 0.0, "PENDING")
    assert [ln.sku for ln in pending.lines] == [b]
    assert refunded.return_warehouse_id is None  # no restock channel recorded


def test_stock_snapshot_and_catalog(world: World) -> None:
    """Kills: entries of non-location channels read as stock, the warehouse/size ids not mapped through the
    estate, allocated/free swapped, an order's deduction not seen, catalog ids or activity wrong."""
    state = world.sim.state
    a = _dc_skus(world.estate, 1)[0]
    state.place_order("web-se", [(a, 2)], "ann@example.com", created_at=T0)
    with world.client() as client:
        reads = _reads(world, client)
        rows = reads.stock()
        sizes = reads.product_sizes()
    expected = {(loc.centra_warehouse_id, sku): qty - (2 if (loc.id, sku) == ("DC01", a) else 0)
                for loc in world.estate.locations for sku, qty in world.estate.initial_stock[loc.newstore_node_id].items()}
    assert {(r.warehouse_id, r.sku): r.physical for r in rows} == expected
    for r in rows:
        loc = world.estate.by_warehouse[r.warehouse_id]
        on_stock, available = state.stock(loc.id, r.sku)
        assert (r.free_to_allocate, r.allocated, r.demand) == (available, on_stock - available, 0)
        assert r.size_id == world.estate.by_sku[r.sku].size.size_id
    assert {s.sku: s.size_id for s in sizes} == {sku: ref.size.size_id for sku, ref in world.estate.by_sku.items()}
    for s in sizes:
        ref = world.estate.by_sku[s.sku]
        assert (s.product_number, s.variant_name, s.size_name, s.is_active) == (
            ref.product.product_number, ref.variant.name, ref.size.size, True)


def test_stock_changes_from_quantity_messages_with_batch_markers(world: World) -> None:
    """Kills: deltas not new - old, the window not [from, to), the marker attached to every later change of the
    entry (not only its resourceVersion), the warehouse not from the supply channel, order deductions invented."""
    state = world.sim.state
    a = _dc_skus(world.estate, 1)[0]
    store = world.estate.by_location_id["ST-SE01"]
    with world.client() as client:
        client.post("/types", {"key": "pipelines-sync", "name": {"en": "sync"}, "resourceTypeIds": ["inventory-entry"],
                               "fieldDefinitions": [{"name": "lastSyncBatch", "label": {"en": "batch"}, "required": False,
                                                     "type": {"name": "String"}, "inputHint": "SingleLine"}]})
        (entry,) = client.inventory_entries(skus=[a], channel_ids=[state.channel_id("ST-SE01")])
        world.now[0] = T0 - timedelta(minutes=1)
        entry = client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 9}])
        world.now[0] = T0 + timedelta(hours=1)
        entry = client.update_inventory_entry(entry["id"], entry["version"], [
            {"action": "setCustomType", "type": {"typeId": "type", "key": "pipelines-sync"},
             "fields": {"lastSyncBatch": f"{entry['version'] + 1}:batch-7"}},
            {"action": "addQuantity", "quantity": 3}])
        world.now[0] = T0 + timedelta(hours=2)
        client.update_inventory_entry(entry["id"], entry["version"], [{"action": "removeQuantity", "quantity": 1}])
        world.now[0] = T0 + timedelta(hours=3)
        state.place_order("web-se", [(a, 1)], "ann@example.com")  # deducts from the DC: no message
        (other,) = client.inventory_entries(skus=[a], channel_ids=[state.channel_id("DC01")])
        world.now[0] = T0 + timedelta(hours=5)  # the sync's write as it is today: a bare marker, the entry's last
        client.update_inventory_entry(other["id"], other["version"], [
            {"action": "setCustomType", "type": {"typeId": "type", "key": "pipelines-sync"},
             "fields": {"lastSyncBatch": "batch-9"}}, {"action": "removeQuantity", "quantity": 2}])
        world.now[0] = T0 + timedelta(days=1)
        state.set_stock("ST-SE01", a, 0)  # at the window's end: the next day's
        changes = _reads(world, client).stock_changes(T0, T0 + timedelta(days=1))
    dc = world.estate.by_location_id["DC01"]
    assert [(c.quantity, c.description, c.warehouse_id, c.sku) for c in changes] == [
        (3, "batch-7", store.centra_warehouse_id, a), (-1, "", store.centra_warehouse_id, a),
        (-2, "batch-9", dc.centra_warehouse_id, a)]
    assert all(c.size_id == world.estate.by_sku[a].size.size_id for c in changes)
    assert changes[0].created_at == "2026-03-10T10:00:00+00:00"
