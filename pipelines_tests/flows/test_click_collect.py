"""Click-and-collect end to end for real: Centra takes the order (a pickup shipping option, allocated from a
store's warehouse), the order flows hand it to that store in NewStore, the store hands it over (NewStore's
`fulfillment_request.items_completed`, over the intake), and the flows ship it in Centra without a customer
e-mail until the order is SHIPPED. A cancelled pickup releases the store's allocation. On SQLite and PostgreSQL;
the oracle is the simulators' state (Centra's order, shipments and e-mails; NewStore's orders and allocations)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.defs.flows import order_flow_work
from pipelines.defs.resources import OrderFlowSettings
from pipelines.devstack import Stack
from pipelines.simulators.trading import TradingConfig
from pipelines_tests.traded import Traded

PICKUP = "Click & Collect"


def _hand_over(stack: Stack, ns_order_id: str, count: int) -> None:
    ns = stack.newstore.state
    (fr,) = ns.fulfillment_requests(ns_order_id)["fulfillment_requests"]
    waiting = [i["item_id"] for i in fr["items"] if i["status"] == "dispatched"][:count]
    ns.set_items_states(fr["fulfillment_request_id"], {"line_items": [{"item_id": i, "state": "shipped"}
                                                                      for i in waiting]})
    stack.flush()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def collected(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp(f"collect-{request.param}")
    url = None
    if request.param == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"flows_collect_{id(home)}")
    stack = Stack(home, sizes=30, stores=2, seed=5, database_url=url, trading=TradingConfig())
    with stack:
        centra, ns = stack.centra.state, stack.newstore.state
        store, dc = stack.estate.stores[0], stack.estate.distribution_centre
        wid, node = store.centra_warehouse_id, store.newstore_node_id
        sku = next(s for s in stack.estate.skus() if centra.stock_of(wid, s)["fta"] >= 3 and ns.atp(node, s) >= 3)
        place = lambda lines, **kw: int(centra.place_order(  # noqa: E731
            store.centra_market_id, lines, email="collector@example.com", **kw)["number"])
        orders = {
            "collected": place([(sku, 2)], allocate_from=(wid,), shipping_option=PICKUP),
            "cancelled": place([(sku, 1)], allocate_from=(wid,), shipping_option=PICKUP),
            "waiting": place([(sku, 1)], allocate_from=(wid,), shipping_option=PICKUP),  # never collected
            "at_dc": place([(sku, 1)], allocate_from=(dc.centra_warehouse_id,), shipping_option=PICKUP),
            "delivery": place([(sku, 1)], shipping_option="Standard"),
        }
        stack.flush()
        traded = Traded(stack)
        runs = [traded.materialize([order_flow_work])]
        ns_ids = {k: ns.order_id_of(str(n)) for k, n in orders.items()}
        atp_injected = ns.atp(node, sku)
        centra.cancel_order(orders["cancelled"])
        _hand_over(stack, ns_ids["collected"], 1)  # one of the two units collected
        stack.flush()
        runs.append(traded.materialize([order_flow_work]))
        partial = {"status": centra.orders[orders["collected"]].status,
                   "shipped": sum(ln.quantity for s in centra.shipments.values()
                                  if s.order_number == orders["collected"] for ln in s.lines)}
        _hand_over(stack, ns_ids["collected"], 1)  # the second unit
        runs.append(traded.materialize([order_flow_work]))
        charged = dict(stack.centra.app.state.graphql.mutations_charged)
        for d in list(stack.newstore.emitter.deliveries()):  # redelivered handovers (at least once)
            if d.event.get("name") == "fulfillment_request.items_completed":
                httpx.post(f"{stack.intake.url}/newstore/events", json=d.event, headers={
                    "Authorization": f"Bearer {stack.secrets['NEWSTORE_EVENTSTREAM_API_KEY']}"})
        runs.append(traded.materialize([order_flow_work]))
        late = dict(traded.resources, order_flow_settings=OrderFlowSettings(uncollected_after_h=0, run_window_s=0))
        with dg.instance_for_test() as instance:
            flagged = dg.materialize([order_flow_work], resources=late, instance=instance)
        yield {"stack": stack, "orders": orders, "ns_ids": ns_ids, "sku": sku, "node": node, "runs": runs,
               "partial": partial, "atp_injected": atp_injected, "charged": charged, "flagged": flagged,
               "charged_after": dict(stack.centra.app.state.graphql.mutations_charged)}


def _rows(stack: Stack, sql: str) -> pd.DataFrame:
    with stack.engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql)).mappings().all())


def test_a_pickup_order_is_handed_to_the_store_that_holds_its_allocation(collected) -> None:
    stack, ns_ids, node = collected["stack"], collected["ns_ids"], collected["node"]
    assert all(r.success for r in collected["runs"])
    ns = stack.newstore.state
    (fr,) = ns.fulfillment_requests(ns_ids["collected"])["fulfillment_requests"]
    assert fr["fulfillment_node_id"] == node and fr["service_level"] == "IN_STORE_PICKUP"
    assert len(fr["items"]) == 2  # one item per unit
    assert ns_ids["delivery"] is None and ns_ids["at_dc"] is None


def test_each_handover_ships_exactly_the_collected_units_without_an_email(collected) -> None:
    stack, orders = collected["stack"], collected["orders"]
    assert collected["partial"] == {"status": "PROCESSING", "shipped": 1}
    order = stack.centra.state.orders[orders["collected"]]
    shipments = [s for s in stack.centra.state.shipments.values() if s.order_number == orders["collected"]]
    assert order.status == "SHIPPED"
    assert sorted(sum(ln.quantity for ln in s.lines) for s in shipments) == [1, 1]
    assert all(s.is_shipped and s.is_captured and s.emails_sent == [] for s in shipments)


def test_redelivered_handovers_write_nothing(collected) -> None:
    assert collected["charged_after"] == collected["charged"]


def test_a_cancelled_pickup_releases_the_stores_allocation(collected) -> None:
    stack, ns_ids, sku, node = collected["stack"], collected["ns_ids"], collected["sku"], collected["node"]
    ns = stack.newstore.state
    order = ns.get_order(ns_ids["cancelled"], "internal")
    assert all(i["status"] == "cancelled" for i in order["items"])
    # The cancelled order's allocation was released; the collected order's two units left the store.
    assert ns.atp(node, sku) == collected["atp_injected"] + 1
    assert ns.stock_record(node, sku)["allocations"] == 1  # the waiting order's unit only


def test_what_cannot_go_to_a_store_or_is_not_collected_is_an_exception(collected) -> None:
    stack, orders = collected["stack"], collected["orders"]
    assert collected["flagged"].success
    exc = _rows(stack, "SELECT exception_type, owner_team, exception_key FROM exceptions "
                       "WHERE source = 'order_flows'")
    got = sorted(zip(exc["exception_type"], exc["owner_team"], exc["exception_key"], strict=True))
    assert got == [("pickup_store_unknown", "ecommerce", f"pickup_store_unknown:pickup_order:{orders['at_dc']}"),
                   ("pickup_uncollected", "retail_operations", f"pickup_uncollected:pickup_order:{orders['waiting']}")]
