"""In-store returns of online orders written to Centra for real: the NewStore simulator publishes the returns,
the intake lands them over loopback HTTP, the order flows sensor requests a run and `order_flow_work` creates
and refunds the Centra returns, on SQLite and PostgreSQL. The oracle is the Centra simulator's own state
(returns, lines, payment history, stock) and the prices the estate sets, not the flow's code."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.defs.flows import order_flow_work, order_flows_sensor
from pipelines.devstack import Stack
from pipelines.simulators.trading import TradingConfig
from pipelines_tests.traded import Traded


def _online_order(stack: Stack, lines: list[tuple[str, int]]) -> int:
    market = stack.estate.stores[0].centra_market_id
    order = stack.centra.state.place_order(market, lines, email="shopper@example.com")
    stack.centra.state.ship_order(int(order["number"]))
    return int(order["number"])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def returned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp(f"returns-{request.param}")
    url = None
    if request.param == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"flows_returns_{id(home)}")
    stack = Stack(home, sizes=30, stores=2, seed=5, database_url=url, trading=TradingConfig())
    with stack:
        centra, ns = stack.centra.state, stack.newstore.state
        store = stack.estate.stores[0]
        node, pricelist = store.newstore_node_id, store.centra_pricelist_id
        a, b, c = stack.estate.skus()[:3]
        price = {s: stack.estate.price(s, pricelist) for s in (a, b, c)}
        partial = _online_order(stack, [(a, 2), (b, 1)])
        short = _online_order(stack, [(a, 1)])
        wrong = _online_order(stack, [(b, 1)])
        stock_before = {s: centra.stock_of(store.centra_warehouse_id, s) for s in (a, b)}
        rets = {
            # a partial return: 1 of the 2 units of a, sellable; b damaged
            "partial": ns.record_return(node, [{"sku": a, "quantity": 1, "refund_amount": price[a]},
                                               {"sku": b, "quantity": 1, "refund_amount": price[b],
                                                "item_condition": "damaged"}],
                                        original_external_order_ref=str(partial)),
            # more than the order holds: 2 of a on an order of 1
            "unmatched": ns.record_return(node, [{"sku": a, "quantity": 2, "refund_amount": 2 * price[a]}],
                                          original_external_order_ref=str(short)),
            "no_ref": ns.record_return(node, [{"sku": c, "quantity": 1, "refund_amount": price[c]}]),
            "wrong_amount": ns.record_return(node, [{"sku": b, "quantity": 1,
                                                     "refund_amount": round(price[b] * 0.9, 2)}],
                                             original_external_order_ref=str(wrong)),
        }
        stack.flush()
        traded = Traded(stack)
        with dg.instance_for_test() as instance:
            before = order_flows_sensor(dg.build_sensor_context(instance=instance, resources=traded.resources))
            first = traded.materialize([order_flow_work])
            charged = dict(stack.centra.app.state.graphql.mutations_charged)
            # NewStore redelivers every return event (at least once): nothing is written twice.
            for d in list(stack.newstore.emitter.deliveries()):
                if d.event.get("name", "").startswith(("return.", "refund_request.", "payment_account.")):
                    httpx.post(f"{stack.intake.url}/newstore/events", json=d.event, headers={
                        "Authorization": f"Bearer {stack.secrets['NEWSTORE_EVENTSTREAM_API_KEY']}"})
            second = traded.materialize([order_flow_work])
            after = order_flows_sensor(dg.build_sensor_context(instance=instance, resources=traded.resources))
        yield {"stack": stack, "orders": {"partial": partial, "short": short, "wrong": wrong}, "rets": rets,
               "price": price, "skus": (a, b, c), "stock_before": stock_before, "store": store,
               "runs": (before, first, second, after), "charged": charged,
               "charged_after": dict(stack.centra.app.state.graphql.mutations_charged)}


def _rows(stack: Stack, sql: str) -> pd.DataFrame:
    with stack.engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql)).mappings().all())


def test_a_partial_return_becomes_a_refunded_centra_return_on_the_right_lines(returned) -> None:
    stack, orders, rets, price = returned["stack"], returned["orders"], returned["rets"], returned["price"]
    a, b, _ = returned["skus"]
    before, first, *_ = returned["runs"]
    assert len(before.run_requests) == 1 and first.success
    order = stack.centra.state.orders[orders["partial"]]
    (ret,) = [r for r in stack.centra.state.returns.values() if r.order_number == orders["partial"]]
    assert ret.external_id == rets["partial"]["id"] and not ret.returned_to_stock
    sku_of = {ln.id: ln.ref.size.sku for ln in order.lines}
    got = sorted((sku_of[ln.order_line_id], ln.quantity) for ln in ret.lines)
    assert got == sorted([(a, 1), (b, 1)])
    by_sku = {ln.ref.size.sku: ln for ln in order.lines}
    assert (by_sku[a].returned, by_sku[b].returned) == (1, 1)
    refunds = [p for p in order.payment_history if p.entry_type == "REFUND"]
    assert len(refunds) == 1 and refunds[0].value == pytest.approx(-(price[a] + price[b]))


def test_the_centra_return_moves_no_stock_the_stock_sync_carries_the_stores_restock(returned) -> None:
    stack, store = returned["stack"], returned["store"]
    a, b, _ = returned["skus"]
    now = {s: stack.centra.state.stock_of(store.centra_warehouse_id, s) for s in (a, b)}
    assert now == returned["stock_before"]
    restock = [e for e in stack.newstore.state.events_published("return.processed")
               if e["payload"]["id"] == returned["rets"]["partial"]["id"]][0]["payload"]["items"]
    assert sorted(i["item_condition"] for i in restock) == ["damaged", "sellable"]


def test_what_cannot_be_matched_is_a_finance_exception_and_nothing_is_written(returned) -> None:
    stack, orders = returned["stack"], returned["orders"]
    assert not [r for r in stack.centra.state.returns.values() if r.order_number == orders["short"]]
    exc = _rows(stack, "SELECT exception_type, owner_team, payload FROM exceptions WHERE source = 'order_flows'")
    kinds = sorted(exc["exception_type"])
    assert kinds == ["refund_amount_mismatch", "return_lines_unmatched", "return_without_order_ref"]
    assert set(exc["owner_team"]) == {"finance"}
    unmatched = exc[exc["exception_type"] == "return_lines_unmatched"]["payload"].iloc[0]
    assert '"requested": 2' in unmatched and '"returnable": 1' in unmatched


def test_a_refund_that_differs_from_the_orders_lines_is_reported_but_centra_refunds_its_own_lines(returned) -> None:
    stack, orders, price = returned["stack"], returned["orders"], returned["price"]
    _, b, _ = returned["skus"]
    order = stack.centra.state.orders[orders["wrong"]]
    refunds = [p.value for p in order.payment_history if p.entry_type == "REFUND"]
    assert refunds == [pytest.approx(-price[b])]
    exc = _rows(stack, "SELECT message FROM exceptions WHERE exception_type = 'refund_amount_mismatch'")
    assert f"{round(price[b] * 0.9, 2):.2f}" in exc["message"].iloc[0]


def test_redelivered_events_write_nothing_twice(returned) -> None:
    stack = returned["stack"]
    *_, second, after = returned["runs"]
    assert second.success
    assert returned["charged_after"] == returned["charged"]
    assert isinstance(after, dg.SkipReason)
    work = _rows(stack, "SELECT flow, status, outcome FROM order_flow_work")
    returns = work[work["flow"] == "store_return"]
    assert sorted(returns["status"]) == ["done", "done", "exception", "exception"]
    pickups = work[work["flow"] == "pickup_order"]  # the online orders' own events: not pickups
    assert len(pickups) == 3 and set(pickups["status"]) == {"skipped"}
    assert all('"not_pickup"' in o for o in pickups["outcome"])
