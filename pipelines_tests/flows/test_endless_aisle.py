"""Endless aisle for real: the NewStore simulator takes store orders for home delivery, the intake lands their
events over loopback HTTP, the order flows sensor requests a run, and the flow creates the Centra orders through
Centra's REST Order API (simulated), on SQLite and PostgreSQL. The oracle is the Centra simulator's own state
(orders, lines, prices, market, price list, shipping option, customer) and the estate's prices, not the flow.

The runs go through `pipelines.defs.flows.run_once` (the runner the `order_flow_work` asset runs) with the context
`flow_context` builds from the `order_flow_settings` resource (the Order API's URL and key, the shipping map), as
production does."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.defs.flows import flow_context, order_flows_sensor, run_once
from pipelines.defs.resources import OrderFlowSettings
from pipelines.devstack import Stack
from pipelines.order_flows.endless_aisle import endless_aisle
from pipelines.simulators.newstore.endless_aisle import take_endless_aisle_order
from pipelines.simulators.trading import TradingConfig
from pipelines_tests.traded import Traded

KEY = "order-api-test-key"
SHIPPING_MAP = "STANDARD=standard,EXPRESS=express"


def _address(country: str) -> dict[str, str]:
    return {"first_name": "Ada", "last_name": "Lovelace", "address_line_1": "Storgatan 1", "city": "Stockholm",
            "zip_code": "11122", "country": country}


def _created(api) -> int:  # noqa: ANN001
    """Orders the Order API created (refusals excluded)."""
    return sum(1 for r in api.requests if r["answer"]["status"] == "ok")


def _context(stack: Stack, traded: Traded):
    r = traded.resources
    settings = OrderFlowSettings(run_window_s=0, retry_base_s=0.0, shipping_map=SHIPPING_MAP, centra_order_api_key=KEY,
                                 centra_order_api_url=f"{stack.centra_server.url}/order-api")
    return flow_context(r["store"], r["centra"], r["newstore"], r["estate"], settings)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def aisle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp(f"aisle-{request.param}")
    url = None
    if request.param == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"flows_aisle_{id(home)}")
    stack = Stack(home, sizes=30, stores=2, seed=5, database_url=url, trading=TradingConfig())
    with stack:
        ns, centra = stack.newstore.state, stack.centra.state
        api = stack.centra.app.state.order_api
        api.api_keys = {KEY}
        store = stack.estate.stores[0]
        node, pricelist = store.newstore_node_id, store.centra_pricelist_id
        dc = stack.estate.by_node["DC01"].centra_warehouse_id
        skus = [s for s in stack.estate.skus() if centra.stock_of(dc, s)["fta"] >= 3]
        a, b, c, d = skus[:4]
        price = {s: round(stack.estate.price(s, pricelist), 2) for s in skus[:4]}
        short = min(stack.estate.skus(), key=lambda s: centra.stock_of(dc, s)["fta"])  # the least DC stock
        addr = _address(store.country)
        email = "shopper@example.com"
        orders = {
            "happy": take_endless_aisle_order(ns, node, [{"sku": a, "quantity": 2, "unit_price": price[a]},
                                                         {"sku": b, "quantity": 1, "unit_price": price[b]}],
                                              service_level="STANDARD", customer_email=email, shipping_address=addr),
            "unmapped": take_endless_aisle_order(ns, node, [{"sku": c, "quantity": 1, "unit_price": price[c]}],
                                                 service_level="SAME_DAY_COURIER", customer_email=email,
                                                 shipping_address=addr),
            "discounted": take_endless_aisle_order(ns, node, [{"sku": c, "quantity": 1, "unit_price": price[c],
                                                               "discount": 5}],
                                                   service_level="EXPRESS", customer_email=email,
                                                   shipping_address=addr),
        }
        sale = ns.record_store_sale(node, [{"sku": d, "quantity": 1, "unit_price": price[d]}])  # a till sale
        stack.flush()
        traded = Traded(stack)
        traded.resources["order_flow_settings"] = OrderFlowSettings(retry_base_s=0.0)
        with dg.instance_for_test() as instance:
            before = order_flows_sensor(dg.build_sensor_context(instance=instance, resources=traded.resources))
            # The first create Centra makes and then answers 503 (a gateway timing out after Centra committed).
            api.fail_next(503, after_execute=True)
            first = run_once(_context(stack, traded))
            second = run_once(_context(stack, traded))  # the retry: finds the order instead of creating it again
            # more than Centra has free to allocate: refused (code -2)
            orders["no_stock"] = take_endless_aisle_order(
                ns, node, [{"sku": short, "quantity": centra.stock_of(dc, short)["fta"] + 1,
                            "unit_price": round(stack.estate.price(short, pricelist), 2)}],
                service_level="STANDARD", customer_email=email, shipping_address=addr)
            stack.flush()
            refused = run_once(_context(stack, traded))
            creates = _created(api)
            charged = dict(stack.centra.app.state.graphql.mutations_charged)
            # NewStore redelivers the order events (at least once), and the flow is re-run for every order.
            for dl in list(stack.newstore.emitter.deliveries()):
                if dl.event.get("name", "") in ("order.created", "order.opened"):
                    httpx.post(f"{stack.intake.url}/newstore/events", json=dl.event, headers={
                        "Authorization": f"Bearer {stack.secrets['NEWSTORE_EVENTSTREAM_API_KEY']}"})
            ctx = _context(stack, traded)
            third = run_once(ctx)
            reruns = {k: endless_aisle(ctx, o["id"]).outcome["action"] for k, o in orders.items()}
        yield {"stack": stack, "orders": orders, "sale": sale, "store": store, "price": price, "skus": (a, b, c),
               "email": email, "runs": (before, first, second, third), "refused": refused, "reruns": reruns, "creates": creates,
               "creates_after": _created(api), "charged": charged,
               "charged_after": dict(stack.centra.app.state.graphql.mutations_charged)}


def _rows(stack: Stack, sql: str) -> pd.DataFrame:
    with stack.engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql)).mappings().all())


def _centra_orders(stack: Stack, newstore_id: str) -> list:
    return [o for o in stack.centra.state.orders.values() if o.external_id == newstore_id]


def test_the_order_lands_in_centra_with_market_pricelist_option_lines_and_a_guest(aisle) -> None:
    """Kills: the wrong market/price list (the market's default instead of the store's), a guessed shipping
    option, lost units or prices, a registered customer instead of a guest, the sensor not seeing the event."""
    stack, store, price, email = aisle["stack"], aisle["store"], aisle["price"], aisle["email"]
    a, b, _ = aisle["skus"]
    before, first, *_ = aisle["runs"]
    assert len(before.run_requests) == 1 and first.processed >= 1
    (order,) = _centra_orders(stack, aisle["orders"]["happy"]["id"])
    centra = stack.centra.state
    assert (order.market_id, order.pricelist_id) == (store.centra_market_id, store.centra_pricelist_id)
    assert centra.shipping_options[order.shipping_option_id] == "Standard"
    assert sorted((ln.ref.size.sku, ln.quantity, ln.unit_price) for ln in order.lines) == sorted(
        [(a, 2, pytest.approx(price[a])), (b, 1, pytest.approx(price[b]))])
    assert order.email == email and email.lower() not in centra.customers  # a guest, not a registered customer
    assert order.shipping_address["address1"] == "Storgatan 1" and order.country == store.country
    assert sum(a_.quantity for ln in order.lines for a_ in ln.allocations) == 3  # Centra allocated its stock
    work = _rows(stack, "SELECT work_key, status, outcome FROM order_flow_work WHERE flow = 'endless_aisle'")
    happy = work[work["work_key"] == aisle["orders"]["happy"]["id"]].iloc[0]
    assert happy["status"] == "done" and f'"commerce_order": "{order.number}"' in happy["outcome"]


def test_an_unmapped_service_level_is_an_ecommerce_exception_and_nothing_is_created(aisle) -> None:
    """Kills: a guessed (default) shipping option for a service level the map does not name."""
    stack = aisle["stack"]
    assert _centra_orders(stack, aisle["orders"]["unmapped"]["id"]) == []
    exc = _rows(stack, "SELECT owner_team, message, payload FROM exceptions "
                       "WHERE exception_type = 'shipping_option_unmapped'")
    assert list(exc["owner_team"]) == ["ecommerce"]
    assert "SAME_DAY_COURIER" in exc["message"].iloc[0]


def test_a_price_off_the_price_list_is_reported_and_the_order_keeps_the_charged_price(aisle) -> None:
    """Kills: silently re-pricing the order at the list price, or not reporting the difference."""
    stack, price = aisle["stack"], aisle["price"]
    _, _, c = aisle["skus"]
    (order,) = _centra_orders(stack, aisle["orders"]["discounted"]["id"])
    (line,) = order.lines
    assert line.unit_price == pytest.approx(price[c] - 5) and line.unit_original_price == pytest.approx(price[c])
    assert stack.centra.state.shipping_options[order.shipping_option_id] == "Express"
    exc = _rows(stack, "SELECT owner_team, exception_key, payload FROM exceptions "
                       "WHERE exception_type = 'price_off_pricelist'")
    assert list(exc["owner_team"]) == ["ecommerce"]  # one record for the one discounted order
    assert aisle["orders"]["discounted"]["id"] in exc["exception_key"].iloc[0]
    assert f'"price_list": {price[c]}' in exc["payload"].iloc[0]


def test_a_refused_order_is_an_integration_exception_that_alerts(aisle) -> None:
    """Kills: a Centra refusal (no stock: code -2) retried forever or dropped without a record."""
    stack = aisle["stack"]
    assert _centra_orders(stack, aisle["orders"]["no_stock"]["id"]) == []
    exc = _rows(stack, "SELECT owner_team, severity, status, payload FROM exceptions "
                       "WHERE exception_type = 'commerce_order_rejected'")
    assert list(exc["owner_team"]) == ["integration"] and list(exc["status"]) == ["open"]
    assert list(exc["severity"]) == ["ERROR"] and '"code": -2' in exc["payload"].iloc[0]
    mine = {k: n for k, n in aisle["refused"].by_outcome.items() if k.startswith("endless_aisle:")}
    assert mine == {"endless_aisle:blocked": 1}


def test_a_5xx_after_centra_committed_then_a_retry_creates_exactly_one_order(aisle) -> None:
    """The first create was made by Centra and answered 503. Kills: creating again on the retry (a second order),
    or giving up on the order."""
    stack = aisle["stack"]
    _, first, second, _ = aisle["runs"]
    assert first.retried == 1
    assert second.by_outcome.get("endless_aisle:created_already") == 1
    for key in ("happy", "discounted"):
        assert len(_centra_orders(stack, aisle["orders"][key]["id"])) == 1
    # every Centra order the Order API created belongs to exactly one NewStore order
    created = [r for r in stack.centra.app.state.order_api.requests if r["answer"]["status"] == "ok"]
    assert len(created) == 2 == len({r["body"]["internalComment"] for r in created})


def test_duplicate_deliveries_and_reruns_create_nothing_more(aisle) -> None:
    """Kills: a second Centra order (or a second write of any kind) for a redelivered event or a re-run."""
    stack, orders = aisle["stack"], aisle["orders"]
    *_, third = aisle["runs"]
    assert aisle["creates_after"] == aisle["creates"]
    assert aisle["charged_after"] == aisle["charged"]
    assert third.by_outcome.get("endless_aisle:created", 0) == 0
    assert aisle["reruns"]["happy"] == aisle["reruns"]["discounted"] == "created_already"
    assert len([o for o in stack.centra.state.orders.values() if o.external_id in {o_["id"] for o_ in orders.values()}]) == 2


def test_only_endless_aisle_orders_are_flow_work(aisle) -> None:
    """Kills: a till sale (IN_STORE_HANDOVER) being sent to Centra as an order."""
    stack, orders = aisle["stack"], aisle["orders"]
    work = _rows(stack, "SELECT work_key, status FROM order_flow_work WHERE flow = 'endless_aisle'")
    assert sorted(work["work_key"]) == sorted(o["id"] for o in orders.values())
    assert aisle["sale"]["id"] not in set(work["work_key"])
    status = dict(zip(work["work_key"], work["status"], strict=True))
    assert status[orders["happy"]["id"]] == status[orders["discounted"]["id"]] == "done"
    assert status[orders["unmapped"]["id"]] == status[orders["no_stock"]["id"]] == "exception"
