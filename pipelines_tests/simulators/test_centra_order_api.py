"""Centra's REST Order API on the simulator (`POST <base>/order`, `GET <base>/orders`) over loopback HTTP.

The oracle is the tenant's own state and the estate (prices per price list, stock), read after each request,
and the GraphQL Integration API reading the same order back: the REST create must go through the same world
state as every other order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pipelines.simulators.centra import CentraState, create_app
from pipelines.simulators.serving import serve
from pipelines_tests.centra_fixtures import ManualClock, small_estate

TOKEN = "gql-token"
KEY = "order-api-key"


@pytest.fixture()
def tenant() -> Iterator[dict[str, Any]]:
    estate = small_estate()
    state = CentraState(estate, clock=ManualClock())
    app = create_app(state, tokens=[TOKEN])
    api = app.state.order_api
    api.api_keys = {KEY}
    emitted: list[tuple[str, str, int]] = []
    state.add_listener(lambda kind, action, ident, when: emitted.append((kind, action, ident)))
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        yield {"state": state, "api": api, "http": http, "estate": estate, "emitted": emitted}


def _body(estate: Any, skus: list[str], **extra: Any) -> dict[str, Any]:
    return {"address": {"email": "guest@example.com", "firstName": "Ada", "lastName": "Lovelace",
                        "address": "Storgatan 1", "zipcode": "11122", "city": "Stockholm", "country": "SE"},
            "products": [{"sku": s, "qty": 1} for s in skus], **extra}


def _post(t: dict[str, Any], body: Any, key: str | None = KEY) -> httpx.Response:
    headers = {"API-Authorization": key} if key is not None else {}
    return t["http"].post("/order-api/order", json=body, headers=headers)


def _gql(t: dict[str, Any], number: int) -> dict[str, Any]:
    query = """query($n: Int!) { orders(where: {number: [$n]}) { number status internalComment
      market { id } pricelist { id } ... on DirectToConsumerOrder { customer { id email } }
      shippingAddress { firstName lastName address1 city }
      shippingPriceGroup { shippingOption { name uri } }
      paymentHistory { entryType status value { value } externalReference }
      lines { quantity unitPrice { value } unitOriginalPrice { value } productSize { SKU }
              allocations { quantity warehouse { id } } } } }"""
    r = t["http"].post("/graphql", json={"query": query, "variables": {"n": number}},
                       headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    (order,) = r.json()["data"]["orders"]
    return order


def test_a_created_order_is_a_centra_order_graphql_reads_with_its_market_pricelist_option_and_prices(tenant) -> None:
    """Kills: the REST create bypassing the world state (GraphQL cannot see it, no webhook, no allocation),
    charged prices or the price list's original price lost, the market/pricelist/shipping option ignored."""
    t, estate = tenant, tenant["estate"]
    a, b = estate.skus()[:2]
    dc = estate.by_node["DC01"].centra_warehouse_id
    free_before = t["state"].stock_of(dc, a)["fta"]
    body = _body(estate, [a, b], marketId=1, pricelistId=1, shippingList="express", internalComment="ext 42",
                 payment={"auth": {"status": 1, "amount": 10.0, "transaction": "t-1", "method": "store"}})
    body["products"][0].update(qty=2, unitPrice=12.5)
    r = _post(t, body)
    assert r.status_code == 200
    answer = r.json()
    assert answer["status"] == "ok" and len(answer["orders"]) == 1
    number = answer["orders"][0]
    order = _gql(t, number)
    assert order["market"]["id"] == 1 and order["pricelist"]["id"] == 1  # EUR list, not the market's SEK one
    assert order["shippingPriceGroup"]["shippingOption"] == {"name": "Express", "uri": "express"}
    assert order["internalComment"] == "ext 42" and order["status"] == "PENDING"
    lines = {ln["productSize"]["SKU"]: ln for ln in order["lines"]}
    assert lines[a]["quantity"] == 2 and lines[a]["unitPrice"]["value"] == 12.5
    assert lines[a]["unitOriginalPrice"]["value"] == pytest.approx(estate.price(a, 1))
    assert lines[b]["unitPrice"]["value"] == pytest.approx(estate.price(b, 1))
    assert sum(al["quantity"] for al in lines[a]["allocations"]) == 2  # allocated per the market's rule
    assert order["shippingAddress"]["firstName"] == "Ada" and order["shippingAddress"]["city"] == "Stockholm"
    assert [(p["entryType"], p["status"], p["externalReference"]) for p in order["paymentHistory"]] == [
        ("AUTH", "SUCCESS", "t-1")]
    assert ("order", "insert", number) in t["emitted"]
    assert t["state"].stock_of(dc, a)["fta"] == free_before - 2


def test_a_guest_order_gets_an_auto_created_customer_not_the_registered_one(tenant) -> None:
    """Kills: customerRegister false attaching the order to the registered customer with the same e-mail."""
    t, estate = tenant, tenant["estate"]
    a = estate.skus()[0]
    registered = t["state"].place_order(1, [(a, 1)], email="guest@example.com")
    known = t["state"].orders[int(registered["number"])].customer_id
    guest = _gql(t, _post(t, _body(estate, [a])).json()["orders"][0])
    member = _gql(t, _post(t, _body(estate, [a], customerRegister=True)).json()["orders"][0])
    assert guest["customer"]["id"] != known
    assert member["customer"]["id"] == known


@pytest.mark.parametrize(("change", "code"), [
    (lambda b: b.update(products=[]), -3),
    (lambda b: b["address"].pop("email"), -4),
    (lambda b: b["address"].pop("country"), -4),
    (lambda b: b["products"][0].pop("sku"), -4),
    (lambda b: b["products"][0].update(sku="NO-SUCH-SKU"), -1),
    (lambda b: b["products"][0].update(qty=10**6), -2),
    (lambda b: b.update(shippingList="carrier-pigeon"), -7),
    (lambda b: b.update(customerId=424242), -6),
])
def test_invalid_requests_answer_status_no_with_the_documented_code_and_create_nothing(tenant, change, code) -> None:
    """Kills: a half-created order on a refused request, or a code other than the reference's table."""
    t = tenant
    body = _body(t["estate"], t["estate"].skus()[:1])
    change(body)
    r = _post(t, body)
    assert r.status_code == 200
    assert r.json()["status"] == "no" and r.json()["code"] == code and r.json()["msg"]
    assert t["state"].orders == {}


def test_no_or_a_wrong_api_key_and_a_plugin_without_order_create_create_nothing(tenant) -> None:
    """Kills: the Order API accepting the GraphQL token or no key; ignoring the "Allow Order Create" flag."""
    t = tenant
    body = _body(t["estate"], t["estate"].skus()[:1])
    assert _post(t, body, key=None).status_code == 401
    assert _post(t, body, key=TOKEN).status_code == 401
    t["api"].allow_order_create = False
    refused = _post(t, body)
    assert refused.json()["status"] == "no" and refused.json()["code"] == -7
    assert t["state"].orders == {}


def test_a_repeated_request_creates_a_second_order_unless_it_names_the_order_number(tenant) -> None:
    """The API has no idempotency key: callers must look before resending. Kills: a simulator that silently
    dedups (hiding a client bug) or that lets an explicit `orderNumber` be created twice."""
    t = tenant
    body = _body(t["estate"], t["estate"].skus()[:1])
    first, second = _post(t, body).json(), _post(t, body).json()
    assert first["orders"] != second["orders"] and len(t["state"].orders) == 2
    numbered = {**body, "orderNumber": 5000}
    assert _post(t, numbered).json() == {"status": "ok", "orders": [5000]}
    again = _post(t, numbered).json()
    assert again["status"] == "no" and again["code"] == -5
    assert len(t["state"].orders) == 3


def test_a_forced_failure_after_execution_keeps_the_order(tenant) -> None:
    """The knob the flows' crash tests use: the order exists although the caller saw a 503."""
    t = tenant
    t["state"].fail_next(503, after_execute=True)
    r = _post(t, _body(t["estate"], t["estate"].skus()[:1]))
    assert r.status_code == 503
    assert len(t["state"].orders) == 1


def test_get_orders_lists_the_order_with_the_documented_fields(tenant) -> None:
    """Kills: the REST read-back disagreeing with the created order."""
    t, estate = tenant, tenant["estate"]
    a = estate.skus()[0]
    body = _body(estate, [a], shippingList="standard", comment="leave at the door")
    number = _post(t, body).json()["orders"][0]
    r = t["http"].get("/order-api/orders", params={"order": number}, headers={"API-Authorization": KEY})
    (row,) = r.json()["orders"]
    assert row["orderId"] == str(number) and row["shippingList"] == "standard"
    assert row["marketId"] == 1 and row["pricelistId"] == 2 and row["otherComment"] == "leave at the door"
    assert [(p["sku"], p["qty"], p["price"]) for p in row["products"]] == [(a, 1, pytest.approx(estate.price(a, 2)))]
