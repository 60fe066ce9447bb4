"""The Centra simulator's order, shipment, return and time behaviour added for Centra's documented operations
(issue 12), over loopback HTTP: click-and-collect completed without a customer email, the shipping option of
an order, relative and naive `shippedAt`, `orderConnection` sorting, return filters, and the instance timezone.

Oracles: the simulated world's records (read through the world API) and fixed known answers (the manual clock,
the documented time forms), never the resolvers under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines.simulators.centra import CentraSimulator, CentraState
from pipelines.simulators.serving import BackgroundServer
from pipelines_tests.centra_fixtures import T0, ManualClock, data, small_estate

MARKET = 1
TOKEN = "test-token"  # centra_fixtures.gql/data send this one

COMPLETE = """mutation($id: Int!, $at: DateTimeTz, $mail: Boolean) {
  completeShipment(id: $id, input: {shippedAt: $at, sendEmail: $mail}) {
    shipment { id shippedAt isShipped } userErrors { message path } } }"""
CREATE = """mutation($n: Int!, $mail: Boolean, $at: DateTimeTz) {
  createShipment(input: {order: {number: $n}, sendEmail: $mail, shippedAt: $at}) {
    shipment { id isShipped } userErrors { message path } } }"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> CentraSimulator:
    return CentraSimulator(small_estate(), clock=clock, tokens=(TOKEN,))


@pytest.fixture
def server(sim: CentraSimulator) -> Iterator[BackgroundServer]:
    with sim.serve() as srv:
        yield srv


def _sku(state: CentraState, i: int = 0) -> str:
    return state.sizes[state.size_ids_sorted[i]].size.sku


def _confirmed(state: CentraState, **kwargs: Any) -> int:
    n = state.place_order(MARKET, [(_sku(state), 1)], email="c@example.com", **kwargs)["number"]
    state.confirm_order(n)
    return n


def test_click_and_collect_completes_without_customer_email(sim: CentraSimulator, server: BackgroundServer) -> None:
    """Kills a `sendEmail: false` that is ignored (on create or on complete), and a default that sends nothing."""
    state = sim.state
    store_wh = 3  # holds one unit of the first SKU in the small estate
    pickup = state.place_order(MARKET, [(_sku(state), 1)], email="p@example.com", shipping_option="Click & Collect",
                               allocate_from=(store_wh,))["number"]
    state.confirm_order(pickup)
    option = data(server, "query($n: [Int!]) { orders(where: {number: $n}) { shippingPriceGroup { shippingOption "
                          "{ id name } } } }", {"n": [pickup]})["orders"][0]["shippingPriceGroup"]["shippingOption"]
    assert option == {"id": 3, "name": "Click & Collect"}  # the third of the default options
    sid = data(server, CREATE, {"n": pickup, "mail": False})["createShipment"]["shipment"]["id"]
    done = data(server, COMPLETE, {"id": sid})["completeShipment"]  # sendEmail omitted: createShipment's false holds
    assert done["userErrors"] == [] and done["shipment"]["isShipped"]
    assert state.shipments[sid].emails_sent == []
    assert state.stock_of(store_wh, _sku(state)) == {"physical": 0, "allocated": 0, "fta": 0, "demand": 0}

    explicit = _confirmed(state)
    sid2 = data(server, CREATE, {"n": explicit})["createShipment"]["shipment"]["id"]
    data(server, COMPLETE, {"id": sid2, "mail": False})
    assert state.shipments[sid2].emails_sent == []

    default = _confirmed(state)
    sid3 = data(server, CREATE, {"n": default})["createShipment"]["shipment"]["id"]
    data(server, COMPLETE, {"id": sid3})
    assert state.shipments[sid3].emails_sent == ["shipment_confirmation"]  # the tenant default (knob) sends

    in_one = _confirmed(state)
    shipped = data(server, CREATE, {"n": in_one, "mail": False, "at": "now"})["createShipment"]["shipment"]
    assert shipped["isShipped"] and state.shipments[shipped["id"]].emails_sent == []


def test_unknown_shipping_option_is_refused(sim: CentraSimulator) -> None:
    """Kills a world API that silently invents a shipping option."""
    with pytest.raises(ValueError, match="shipping option"):
        sim.state.place_order(MARKET, [(_sku(sim.state), 1)], email="x@example.com", shipping_option="Drone")


def test_shipping_options_are_a_knob(clock: ManualClock) -> None:
    state = CentraState(small_estate(), clock=clock, shipping_options=("Home", "Pickup in store"))
    n = state.place_order(MARKET, [(_sku(state), 1)], email="k@example.com", shipping_option="Pickup in store")["number"]
    assert state.orders[n].shipping_option_id == 2


@pytest.mark.parametrize(("form", "expected"), [
    ("now", T0),
    ("-1 hour", T0 - timedelta(hours=1)),
    ("yesterday", datetime(2026, 3, 1, tzinfo=UTC)),
    ("21/10/2023", datetime(2023, 10, 21, tzinfo=UTC)),
    ("2026-03-02 08:15:00", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
    ("2026-03-02T09:15:00+01:00", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
])
def test_documented_shipped_at_forms(form: str, expected: datetime, sim: CentraSimulator,
                                     server: BackgroundServer) -> None:
    """AD-erp: shippedAt accepts PHP date forms ("yesterday", "21/10/2023", "-1 hour"), read on the business
    clock (T0 = 2026-03-02 09:00 UTC) in the instance timezone (UTC by default). Kills "now" read from the
    wall clock and relative forms refused."""
    n = _confirmed(sim.state)
    sid = data(server, CREATE, {"n": n})["createShipment"]["shipment"]["id"]
    done = data(server, COMPLETE, {"id": sid, "at": form})["completeShipment"]
    assert done["userErrors"] == []
    assert sim.state.shipments[sid].shipped_at == expected


def test_future_relative_shipped_at_is_refused(sim: CentraSimulator, server: BackgroundServer) -> None:
    n = _confirmed(sim.state)
    sid = data(server, CREATE, {"n": n})["createShipment"]["shipment"]["id"]
    done = data(server, COMPLETE, {"id": sid, "at": "+1 day"})["completeShipment"]
    assert done["userErrors"] and not sim.state.shipments[sid].is_shipped


def test_naive_times_are_read_and_written_in_the_instance_timezone(clock: ManualClock) -> None:
    """Kills naive input read as UTC when the instance runs in Europe/Stockholm, and output left in UTC."""
    sim = CentraSimulator(small_estate(), clock=clock, tokens=(TOKEN,), timezone="Europe/Stockholm")
    with sim.serve() as server:
        n = _confirmed(sim.state)
        sid = data(server, CREATE, {"n": n})["createShipment"]["shipment"]["id"]
        done = data(server, COMPLETE, {"id": sid, "at": "2026-03-02 08:30:00"})["completeShipment"]["shipment"]
        assert sim.state.shipments[sid].shipped_at == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
        assert done["shippedAt"] == "2026-03-02T08:30:00+01:00"
        found = data(server, """query { orders(where: {createdAt: {from: "2026-03-02 10:00:00", to: "2026-03-02 10:00:00"}})
            { number createdAt(format: "Y-m-d H:i:s P") } }""")["orders"]
        assert found == [{"number": n, "createdAt": "2026-03-02 10:00:00 +01:00"}]  # T0 09:00 UTC = 10:00 local


def test_order_connection_sort_pages_in_sorted_order(sim: CentraSimulator, clock: ManualClock,
                                                    server: BackgroundServer) -> None:
    """Kills `sort` ignored by orderConnection and cursors that skip or repeat orders across pages."""
    state = sim.state
    numbers = []
    for i in range(5):
        clock.now = T0 + timedelta(minutes=10 * (5 - i))  # later numbers are older
        numbers.append(state.place_order(MARKET, [(_sku(state), 1)], email=f"s{i}@example.com")["number"])
    clock.now = T0 + timedelta(hours=1)
    q = """query($after: String) { orderConnection(first: 2, after: $after, sort: [createdAt_ASC]) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { number } } } }"""
    seen, after = [], None
    for _ in range(5):
        page = data(server, q, {"after": after})["orderConnection"]
        seen += [e["node"]["number"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(numbers))


def test_return_filters_by_customer_and_store_type(sim: CentraSimulator, server: BackgroundServer) -> None:
    """Kills `customerId`/`storeType` return filters that are ignored."""
    state = sim.state
    mine = state.place_order(MARKET, [(_sku(state), 1)], email="one@example.com")["number"]
    theirs = state.place_order(MARKET, [(_sku(state, 1), 1)], email="two@example.com")["number"]
    for n in (mine, theirs):
        state.ship_order(n)
    r1 = state.create_return(mine, [(_sku(state), 1)])["id"]
    state.create_return(theirs, [(_sku(state, 1), 1)])
    q = "query($w: ReturnFilter) { returns(where: $w) { id } }"
    assert data(server, q, {"w": {"customerId": [state.orders[mine].customer_id]}})["returns"] == [{"id": r1}]
    assert len(data(server, q, {"w": {"storeType": "DIRECT_TO_CONSUMER"}})["returns"]) == 2
    assert data(server, q, {"w": {"storeType": "WHOLESALE"}})["returns"] == []


def test_capture_order_then_cancel_is_refused(sim: CentraSimulator, server: BackgroundServer) -> None:
    """Kills a whole-order capture that can be captured twice or cancelled afterwards (AD-erp: after a
    capture, return and refund instead of cancelling)."""
    state = sim.state
    n = _confirmed(state)
    m = """mutation($n: Int) { captureOrder(order: {number: $n}) { paymentHistoryEntry { entryType }
        userErrors { message } } }"""
    assert data(server, m, {"n": n})["captureOrder"]["paymentHistoryEntry"] == {"entryType": "CAPTURE"}
    assert data(server, m, {"n": n})["captureOrder"]["userErrors"]
    cancel = data(server, """mutation($id: String!) { cancelDirectToConsumerOrder(id: $id) { order { status }
        userErrors { message } } }""", {"id": state.orders[n].id})["cancelDirectToConsumerOrder"]
    assert cancel["userErrors"] and state.orders[n].status == "CONFIRMED"
