"""Ship-from-store for real: Centra orders allocated to a store's warehouse are checked against NewStore's live
availability, injected into the store (pinned to its node), re-routed when the check fails or the store rejects,
and shipped in Centra with the store's tracking. The simulators run over loopback HTTP, the intake lands their
events, and `order_flow_work` runs in real Dagster materialisations on SQLite and PostgreSQL. The oracle is the
simulators' own state: Centra's allocations, stock, shipments and sent e-mails, NewStore's orders, fulfilment
requests and ATP, and the sales the test itself made in the store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.connectors.centra.client import CentraClient
from pipelines.connectors.centra.errors import CentraUserError
from pipelines.defs.flows import order_flow_work
from pipelines.devstack import Stack
from pipelines.domain.flows.ship_from_store import external_id, locations_of
from pipelines.simulators.trading import TradingConfig
from pipelines_tests.traded import Traded

CARRIER, TRACKING = "PostNord", "PN-TRACK-0001"


def _pick(stack: Stack, taken: set[str], want) -> str:  # noqa: ANN001
    """The first SKU not `taken` whose NewStore ATP per store node satisfies `want(atp by node)` (the estate's
    known stock), so each scenario has its own SKU."""
    ns = stack.newstore.state
    nodes = [loc.newstore_node_id for loc in stack.estate.stores]
    for sku in stack.estate.skus():
        if sku not in taken and want({n: ns.atp(n, sku) for n in nodes}):
            taken.add(sku)
            return sku
    raise AssertionError("the estate has no SKU with that stock")


def _order(stack: Stack, store, sku: str) -> int:  # noqa: ANN001
    """An online delivery order of one unit that Centra allocated to `store`'s warehouse."""
    order = stack.centra.state.place_order(store.centra_market_id, [(sku, 1)], email="shopper@example.com",
                                           allocate_from=(store.centra_warehouse_id,))
    return int(order["number"])


def _fr(stack: Stack, ext: str) -> dict:
    ns = stack.newstore.state
    order_id = ns.get_order(ext, "external")["id"]
    (fr,) = ns.fulfillment_requests(order_id)["fulfillment_requests"]
    return fr


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shipped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp(f"sfs-{request.param}")
    url = None
    if request.param == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"flows_sfs_{id(home)}")
    stack = Stack(home, sizes=30, stores=4, seed=5, database_url=url, trading=TradingConfig())
    with stack:
        se1, se2, se3 = [s for s in stack.estate.stores if s.country == "SE"][:3]
        dc = stack.estate.distribution_centre
        ns = stack.newstore.state
        n1, n2, n3 = se1.newstore_node_id, se2.newstore_node_id, se3.newstore_node_id
        taken: set[str] = set()
        skus = {
            "happy": _pick(stack, taken, lambda a: a[n1] >= 1),
            "race": _pick(stack, taken, lambda a: a[n1] >= 1 and a[n2] >= 1),
            "reject": _pick(stack, taken, lambda a: a[n1] >= 1 and a[n2] >= 1),
            "dc": _pick(stack, taken, lambda a: a[n1] >= 1 and a[n2] == 0 and a[n3] == 0),
            "nowhere": _pick(stack, taken, lambda a: a[n1] >= 1),
            "cancel": _pick(stack, taken, lambda a: a[n1] >= 1),
        }
        orders = {k: _order(stack, se1, sku) for k, sku in skus.items()}
        # Nothing free in the DC either (Centra masters the DC's stock).
        size_id = stack.centra.state.size_by_sku[skus["nowhere"]].size.size_id
        stack.centra.state.apply_stock_set("test: DC sold out", dc.centra_warehouse_id, [(size_id, 0)],
                                           quantity_type="FREE_TO_ALLOCATE")
        atp_before = {k: {n: ns.atp(n, sku) for n in (n1, n2, n3)} for k, sku in skus.items()}
        # The race: the store sells its last units one second before the order is assigned to it (the flow runs
        # next); Centra allocated from its own, not yet synced, count.
        sold = {}
        for k, node in (("race", n1), ("dc", n1), ("nowhere", n2), ("nowhere", n3), ("nowhere", n1)):
            units = ns.atp(node, skus[k])
            price = stack.estate.price(skus[k], se1.centra_pricelist_id)
            if units:
                ns.record_store_sale(node, [{"sku": skus[k], "quantity": units, "unit_price": price}],
                                     at=datetime.now(UTC) - timedelta(seconds=1))
            sold[k] = units
        stack.flush()
        traded = Traded(stack)
        runs = [traded.materialize([order_flow_work])]
        after_first = {k: {n: ns.atp(n, sku) for n in (n1, n2, n3)} for k, sku in skus.items()}
        # The customer cancels one order online after it reached the store.
        stack.centra.state.cancel_order(orders["cancel"], comment="customer changed their mind")
        # The stores answer: the happy store ships with tracking, the other rejects the item.
        happy_fr = _fr(stack, external_id(str(orders["happy"]), locations_of([se1])[0]))
        ns.set_items_states(happy_fr["fulfillment_request_id"], {
            "line_items": [{"item_id": i["item_id"], "state": "shipped"} for i in happy_fr["items"]],
            "carrier": CARRIER, "tracking_code": TRACKING})
        reject_fr = _fr(stack, external_id(str(orders["reject"]), locations_of([se1])[0]))
        ns.set_items_states(reject_fr["fulfillment_request_id"], {
            "line_items": [{"item_id": i["item_id"], "state": "rejected"} for i in reject_fr["items"]],
            "reason": "damaged"})
        stack.flush()
        runs.append(traded.materialize([order_flow_work]))
        stack.flush()  # Centra's order webhooks of the moves: the flow re-runs and finds nothing to do
        runs.append(traded.materialize([order_flow_work]))
        charged = dict(stack.centra.app.state.graphql.mutations_charged)
        ns_orders = len(ns.events_published("order.opened"))
        # Duplicates: NewStore redelivers the fulfilment events, and every ship-from-store work item runs again.
        for d in list(stack.newstore.emitter.deliveries()):
            if d.event.get("name", "").startswith("fulfillment_request."):
                httpx.post(f"{stack.intake.url}/newstore/events", json=d.event, headers={
                    "Authorization": f"Bearer {stack.secrets['NEWSTORE_EVENTSTREAM_API_KEY']}"})
        with stack.engine.begin() as conn:
            conn.execute(text("UPDATE order_flow_work SET status = 'pending' WHERE flow = 'ship_from_store'"))
        runs.append(traded.materialize([order_flow_work]))
        yield {"stack": stack, "orders": orders, "skus": skus, "stores": (se1, se2, se3), "dc": dc, "runs": runs,
               "sold": sold, "atp_before": atp_before, "after_first": after_first, "charged": charged,
               "charged_after": dict(stack.centra.app.state.graphql.mutations_charged), "ns_orders": ns_orders,
               "ns_orders_after": len(ns.events_published("order.opened"))}


def _rows(stack: Stack, sql: str) -> pd.DataFrame:
    with stack.engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql)).mappings().all())


def _allocated(stack: Stack, number: int) -> dict[int, int]:
    out: dict[int, int] = {}
    for line in stack.centra.state.orders[number].lines:
        for a in line.allocations:
            out[a.warehouse_id] = out.get(a.warehouse_id, 0) + a.quantity
    return {w: n for w, n in out.items() if n}


def _ns_order(stack: Stack, number: int, store) -> dict | None:  # noqa: ANN001
    ns = stack.newstore.state
    ext = external_id(str(number), locations_of([store])[0])
    return ns.get_order(ext, "external") if ns.order_id_of(ext) else None


def test_every_run_succeeds(shipped) -> None:
    assert all(r.success for r in shipped["runs"])


def test_happy_path_the_store_fulfils_and_centra_ships_with_its_tracking(shipped) -> None:
    """Kills: injecting without pinning the store (NewStore would route to the DC), losing the tracking, shipping
    without notifying the customer, shipping the wrong line or quantity."""
    stack, number = shipped["stack"], shipped["orders"]["happy"]
    se1 = shipped["stores"][0]
    fr = _fr(stack, external_id(str(number), locations_of([se1])[0]))
    assert fr["fulfillment_node_id"] == se1.newstore_node_id and fr["service_level"] == "STANDARD"
    order = stack.centra.state.orders[number]
    assert order.status == "SHIPPED"
    (shipment,) = [s for s in stack.centra.state.shipments.values() if s.order_number == number]
    assert shipment.is_shipped and shipment.tracking_number == TRACKING and shipment.carrier_name == CARRIER
    assert shipment.emails_sent == ["shipment_confirmation"]
    assert [(ln.order_line_id, ln.quantity) for ln in shipment.lines] == [(order.lines[0].id, 1)]


def test_the_race_the_last_unit_sold_a_second_before_sends_the_order_to_the_next_store(shipped) -> None:
    """Kills: trusting Centra's allocation (or a stale count) instead of NewStore's live ATP, injecting into a store
    without the stock, re-routing without moving Centra's allocation, skipping the exception record."""
    stack, number = shipped["stack"], shipped["orders"]["race"]
    se1, se2, _ = shipped["stores"]
    assert shipped["sold"]["race"] >= 1 and shipped["after_first"]["race"][se1.newstore_node_id] == 0
    assert _ns_order(stack, number, se1) is None  # never injected where the stock was gone
    copy = _ns_order(stack, number, se2)
    assert copy is not None and [i["status"] for i in copy["items"]] == ["in_fulfillment"]
    assert _fr(stack, external_id(str(number), locations_of([se2])[0]))["fulfillment_node_id"] == se2.newstore_node_id
    assert _allocated(stack, number) == {se2.centra_warehouse_id: 1}
    sku = shipped["skus"]["race"]
    assert stack.newstore.state.atp(se2.newstore_node_id, sku) == shipped["atp_before"]["race"][se2.newstore_node_id] - 1
    exc = _rows(stack, "SELECT exception_type, owner_team, location_id, payload FROM exceptions "
                       f"WHERE exception_key LIKE 'ship_from_store_rerouted:ship_from_store:{number}:%'")
    assert list(exc["owner_team"]) == ["retail_operations"] and list(exc["location_id"]) == [se1.id]
    payload = exc["payload"].iloc[0]
    assert f'"to": "{se2.id}"' in payload and '"stock_check_failed"' in payload and '"available": 0' in payload


def test_a_store_rejection_reroutes_and_releases_the_first_stores_allocation(shipped) -> None:
    """Kills: ignoring `items_failed`, leaving the first store's NewStore order open (its allocation held, NewStore
    re-routing it on its own), not injecting at the next store, leaving Centra allocated to the first store."""
    stack, number = shipped["stack"], shipped["orders"]["reject"]
    se1, se2, _ = shipped["stores"]
    sku = shipped["skus"]["reject"]
    first = _ns_order(stack, number, se1)
    assert first is not None and {i["status"] for i in first["items"]} == {"cancelled"}
    assert stack.newstore.state.atp(se1.newstore_node_id, sku) == shipped["atp_before"]["reject"][se1.newstore_node_id]
    second = _ns_order(stack, number, se2)
    assert second is not None and [i["status"] for i in second["items"]] == ["in_fulfillment"]
    assert _allocated(stack, number) == {se2.centra_warehouse_id: 1}
    exc = _rows(stack, "SELECT payload FROM exceptions "
                       f"WHERE exception_key LIKE 'ship_from_store_rerouted:ship_from_store:{number}:%'")
    assert len(exc) == 1 and '"store_rejected"' in exc["payload"].iloc[0]


def test_no_store_with_stock_falls_back_to_the_dc_in_centra_only(shipped) -> None:
    """Kills: a fallback order that skips the DC or picks a store without stock, sending a DC order to NewStore,
    leaving the store's allocation in Centra (the DC's free stock must drop by the unit)."""
    stack, number, dc = shipped["stack"], shipped["orders"]["dc"], shipped["dc"]
    se1, se2, se3 = shipped["stores"]
    assert _allocated(stack, number) == {dc.centra_warehouse_id: 1}
    assert all(_ns_order(stack, number, s) is None for s in (se1, se2, se3))
    exc = _rows(stack, "SELECT payload FROM exceptions "
                       f"WHERE exception_key LIKE 'ship_from_store_rerouted:ship_from_store:{number}:%'")
    assert len(exc) == 1 and f'"to": "{dc.id}"' in exc["payload"].iloc[0]
    assert stack.centra.state.stock_of(se1.centra_warehouse_id, shipped["skus"]["dc"])["allocated"] == 0


def test_duplicate_and_replayed_deliveries_change_nothing(shipped) -> None:
    """Kills: a second injection, allocation move or shipment on a re-run (the flow must read state, not events)."""
    stack = shipped["stack"]
    assert shipped["charged_after"] == shipped["charged"]
    assert shipped["ns_orders_after"] == shipped["ns_orders"]
    work = _rows(stack, "SELECT work_key, status, outcome FROM order_flow_work WHERE flow = 'ship_from_store'")
    by_key = dict(zip(work["work_key"], work["status"], strict=True))
    assert {by_key[str(n)] for k, n in shipped["orders"].items() if k != "nowhere"} == {"done"}
    assert '"cancelled"' in dict(zip(work["work_key"], work["outcome"], strict=True))[str(shipped["orders"]["cancel"])]
    assert len([s for s in stack.centra.state.shipments.values()
                if s.order_number == shipped["orders"]["happy"]]) == 1


def test_centra_allocation_mutations_over_graphql(shipped) -> None:
    """The simulator's `unallocateOrder` / `allocateOrder` as a client sees them: warnings for more than there is,
    one policy only, stock back in the source warehouse. Kills: a release that leaks allocated stock."""
    stack, dc = shipped["stack"], shipped["dc"]
    _, se2, _ = shipped["stores"]
    sku = shipped["skus"]["reject"]
    number = _order(stack, se2, sku)
    env = stack.env()
    client = CentraClient(env["CENTRA_API_URL"], env["CENTRA_API_TOKEN"])
    before = stack.centra.state.stock_of(se2.centra_warehouse_id, sku)
    line_id = stack.centra.state.orders[number].lines[0].id
    data = client.execute("mutation($i: OrderUnallocateInput!) { unallocateOrder(input: $i) { order { number } "
                          "userErrors { message } userWarnings { message } } }", {"i": {
                              "order": {"number": number}, "unallocate": [{"orderLine": {"id": line_id}, "quantity": 5}],
                              "stockActionPolicy": {"releaseItemsBackToWarehouse": True}}})
    assert data["unallocateOrder"]["userWarnings"]
    after = stack.centra.state.stock_of(se2.centra_warehouse_id, sku)
    assert after["allocated"] == before["allocated"] - 1 and after["fta"] == before["fta"] + 1
    with pytest.raises(CentraUserError):
        client.execute("mutation($i: OrderUnallocateInput!) { unallocateOrder(input: $i) { order { number } "
                       "userErrors { message } userWarnings { message } } }", {"i": {
                           "order": {"number": number}, "stockActionPolicy": {
                               "releaseItemsBackToWarehouse": True, "removeItemsFromStock": True}}})
    client.execute("mutation($i: OrderAllocateInput!) { allocateOrder(input: $i) { order { number } "
                   "userErrors { message } userWarnings { message } } }", {"i": {
                       "order": {"number": number}, "warehouses": [{"id": dc.centra_warehouse_id}]}})
    assert _allocated(stack, number) == {dc.centra_warehouse_id: 1}


def test_no_location_with_stock_is_an_ecommerce_exception_and_nothing_moves(shipped) -> None:
    """Kills: re-routing into a location without stock (a store or a sold-out DC), losing the order silently, or
    moving Centra's allocation when there is nowhere to go."""
    stack, number = shipped["stack"], shipped["orders"]["nowhere"]
    se1, se2, se3 = shipped["stores"]
    assert _allocated(stack, number) == {se1.centra_warehouse_id: 1}
    assert all(_ns_order(stack, number, s) is None for s in (se1, se2, se3))
    exc = _rows(stack, "SELECT exception_type, owner_team, payload FROM exceptions "
                       f"WHERE exception_key LIKE '%:ship_from_store:{number}%'")
    assert list(exc["exception_type"]) == ["ship_from_store_unfulfillable"]
    assert list(exc["owner_team"]) == ["ecommerce"]
    work = _rows(stack, f"SELECT status FROM order_flow_work WHERE flow = 'ship_from_store' AND work_key = '{number}'")
    assert list(work["status"]) == ["exception"]


def test_a_store_event_whose_order_has_not_landed_yet_is_resolved_through_newstore(shipped) -> None:
    """Unordered delivery: `items_failed` before its `order.opened` gives the key `ns:<store order>`, and the
    flow resolves it to the online order through NewStore. Kills: dropping such an event."""
    from pipelines.order_flows import ship_from_store as flow

    stack = shipped["stack"]
    found = flow.newstore_triggers(stack.engine, "IN_STORE_PICKUP", 10**9, flow.ITEMS_FAILED, None,
                                   {"payload": {"order_id": "not-landed-yet", "service_level": "STANDARD"}})
    assert [(t.flow, t.work_key) for t in found] == [("ship_from_store", "ns:not-landed-yet")]
    se2 = shipped["stores"][1]
    copy = _ns_order(stack, shipped["orders"]["race"], se2)
    landed = flow.newstore_triggers(stack.engine, "IN_STORE_PICKUP", 10**9, flow.ITEMS_COMPLETED, None,
                                    {"payload": {"order_id": copy["id"], "service_level": "STANDARD"}})
    assert [(t.flow, t.work_key) for t in landed] == [("ship_from_store", str(shipped["orders"]["race"]))]


def test_an_online_cancellation_cancels_the_stores_order_and_frees_its_stock(shipped) -> None:
    """Kills: leaving the store's NewStore order open after the online order was cancelled (Centra has released
    its allocation, so the flow must find the store from its own record)."""
    stack, number = shipped["stack"], shipped["orders"]["cancel"]
    se1 = shipped["stores"][0]
    copy = _ns_order(stack, number, se1)
    assert copy is not None and {i["status"] for i in copy["items"]} == {"cancelled"}
    sku = shipped["skus"]["cancel"]
    assert stack.newstore.state.atp(se1.newstore_node_id, sku) == shipped["atp_before"]["cancel"][se1.newstore_node_id]
