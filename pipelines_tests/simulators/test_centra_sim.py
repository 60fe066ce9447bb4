"""The Centra simulator over real HTTP: transport, limits, stock, orders, returns, webhooks."""

from __future__ import annotations

import base64
import email.utils
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest

from pipelines.connectors.centra import parse_webhook_events, verify_webhook_signature
from pipelines.simulators.centra import CentraSimulator, CentraState, WebhookEmitter, sign, verify_signature
from pipelines.simulators.serving import BackgroundServer, serve
from pipelines_tests.centra_fixtures import (
    READ_ONLY_TOKEN,
    T0,
    TOKEN,
    ManualClock,
    Receiver,
    data,
    gql,
    running_centra,
    small_estate,
)

DC = 1
STORE_WH = 2
MARKET = 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> CentraState:
    return CentraState(small_estate(), clock=clock)


@pytest.fixture
def server(state: CentraState) -> Iterator[BackgroundServer]:
    with running_centra(state) as srv:
        yield srv


def _skus(state: CentraState, n: int = 3) -> list[str]:
    return [state.sizes[sid].size.sku for sid in state.size_ids_sorted[:n]]


# ------------------------------------------------------------------ transport


def test_auth_bearer_cookie_and_403(server: BackgroundServer) -> None:
    q = {"query": "{ stores { id } }"}
    assert httpx.post(f"{server.url}/graphql", json=q).status_code == 403
    bad = httpx.post(f"{server.url}/graphql", json=q, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 403 and bad.json()["errors"][0]["message"]
    assert httpx.post(f"{server.url}/graphql", json=q, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    cookie = httpx.post(f"{server.url}/graphql", json=q, cookies={"graphql-access": TOKEN})
    assert cookie.status_code == 200 and cookie.json()["data"]["stores"][0]["id"] == 1


def test_parse_validation_and_variable_errors_are_400(server: BackgroundServer) -> None:
    syntax = gql(server, "{ stores { id ")
    assert syntax.status_code == 400 and "Syntax Error" in syntax.json()["errors"][0]["message"]
    unknown = gql(server, "{ stores { nope } }")
    assert unknown.status_code == 400 and "nope" in unknown.json()["errors"][0]["message"]
    variables = gql(server, "query($l: Int!) { orders(limit: $l) { id } }", {"l": "many"})
    assert variables.status_code == 400 and variables.json()["errors"]
    not_json = httpx.post(f"{server.url}/graphql", content=b"{", headers={"Authorization": f"Bearer {TOKEN}"})
    assert not_json.status_code == 400


def test_resolver_errors_are_200_with_errors(server: BackgroundServer) -> None:
    response = gql(server, "{ orders(limit: 500) { id } }")
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == "Limit must be in range 1 - 200"


def test_extensions_complexity_and_permissions(server: BackgroundServer) -> None:
    small = gql(server, "{ orders(limit: 10) { id number } }").json()["extensions"]
    big = gql(server, "{ orders(limit: 20) { id number } }").json()["extensions"]
    assert small["complexity"] == 1 + 10 * 2 and big["complexity"] == 1 + 20 * 2
    assert small["permissionsUsed"] == ["Order:read"] and small["appVersion"]
    again = gql(server, "{ orders(limit: 10) { id number } }").json()["extensions"]
    assert again["complexity"] == small["complexity"]


def test_missing_permission_is_an_authorization_error(server: BackgroundServer) -> None:
    response = gql(server, "{ stores { id } orders { id } }", token=READ_ONLY_TOKEN)
    body = response.json()
    assert response.status_code == 200 and body["data"] is None
    err = body["errors"][0]
    assert err["extensions"]["category"] == "authorization"
    assert err["message"] == "You need Order:read permission to access orders."


def test_rate_limits_429_retry_after_and_query(state: CentraState, server: BackgroundServer) -> None:
    state.set_rate_limits(overrides={("REQUEST_COUNT", "TEN_SECONDS"): 2})
    assert gql(server, "{ stores { id } }").status_code == 200
    limits = data(server, "{ rateLimits { type intervalSeconds quota usedQuota remainingQuota } }")["rateLimits"]
    assert len(limits) == 6
    req10 = next(r for r in limits if r["type"] == "REQUEST_COUNT" and r["intervalSeconds"] == "TEN_SECONDS")
    assert req10["quota"] == 2 and req10["usedQuota"] == 2 and req10["remainingQuota"] == 0
    limited = gql(server, "{ stores { id } }")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > time.time()  # default: the documented timestamp (AD-rl)
    assert limited.json()["errors"][0]["extensions"]["type"] == "REQUEST_COUNT"

    state.retry_after_style = "epoch"
    epoch = int(gql(server, "{ stores { id } }").headers["Retry-After"])
    assert epoch >= int(time.time())
    state.retry_after_style = "http-date"
    assert email.utils.parsedate_to_datetime(gql(server, "{ stores { id } }").headers["Retry-After"]) is not None
    state.retry_after_style = "seconds"
    assert 1 <= int(gql(server, "{ stores { id } }").headers["Retry-After"]) <= 10


def test_tiers_and_multiplier(state: CentraState) -> None:
    state.set_rate_limits(tier="Enterprise")
    rows = {(r["type"], r["interval_seconds"]): r["quota"] for r in state.rate_limiter.snapshot()}
    assert rows[("REQUEST_COUNT", "TEN_SECONDS")] == 1500 and rows[("MUTATION_COUNT", "ONE_HOUR")] == 25_000
    state.set_rate_limits(tier="Growth", multiplier=0.1)
    rows = {(r["type"], r["interval_seconds"]): r["quota"] for r in state.rate_limiter.snapshot()}
    assert rows[("REQUEST_COUNT", "TEN_SECONDS")] == 6 and rows[("QUERY_COMPLEXITY", "TEN_SECONDS")] == 25_000


def test_each_mutation_field_counts(state: CentraState, server: BackgroundServer) -> None:
    state.set_rate_limits(overrides={("MUTATION_COUNT", "TEN_SECONDS"): 3})
    sku = _skus(state, 1)[0]
    two = """mutation($i: StockChangeInput!) {
      a: changeStock(input: $i) { userErrors { message } }
      b: changeStock(input: $i) { userErrors { message } } }"""
    variables = {"i": {"intoWarehouse": {"id": DC}, "description": "two",
                       "productSizes": [{"productSize": {"SKU": sku}, "deliveredQuantity": 1}]}}
    assert gql(server, two, variables).status_code == 200
    assert gql(server, two, variables).status_code == 429  # 1 token left, 2 needed


def test_forced_failures(state: CentraState, server: BackgroundServer) -> None:
    state.fail_next(500)
    state.fail_next(499)
    state.fail_next(429, retry_after=0)
    assert gql(server, "{ stores { id } }").status_code == 500
    assert gql(server, "{ stores { id } }").status_code == 499
    limited = gql(server, "{ stores { id } }")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) <= time.time()  # "now"
    assert gql(server, "{ stores { id } }").status_code == 200


def test_reference_queries(server: BackgroundServer) -> None:
    d = data(server, """{
      stores { id type } markets { id store { id } allocationRule { id warehouses { id } } assignedToCountries { code } }
      pricelists { id currency { code } assignedToCountries { code } }
      currencies(where: {isBase: true}) { code }
      warehouses { id name country { code } }
      productVariants(limit: 1) { id prices(where: {pricelistId: [2]}) { pricelist { id } price { value currency { code } } } }
    }""")
    assert [s["type"] for s in d["stores"]] == ["DIRECT_TO_CONSUMER", "WHOLESALE"]
    assert d["markets"][0]["allocationRule"]["warehouses"][0]["id"] == DC
    assert d["currencies"] == [{"code": "EUR"}]
    assert {w["id"] for w in d["warehouses"]} == {1, 2, 3, 4}
    price = d["productVariants"][0]["prices"][0]
    assert price["pricelist"]["id"] == 2 and price["price"]["currency"]["code"] == "SEK"


# ------------------------------------------------------------------ stock


STOCK_Q = """query($w: [Int!], $s: [Int!]) { warehouses(where: {id: $w}) {
  stock(where: {productSizeId: $s}) { physicalQuantity allocatedQuantity freeToAllocateQuantity demandQuantity } } }"""


def _stock(server: BackgroundServer, wid: int, size_id: int) -> dict:
    return data(server, STOCK_Q, {"w": [wid], "s": [size_id]})["warehouses"][0]["stock"][0]


def test_change_stock_into_out_and_transfer_with_ledger(state: CentraState, server: BackgroundServer) -> None:
    sku = _skus(state, 1)[0]
    ref = state.size_by_sku[sku]
    before_dc = state.stock_of(DC, sku)["physical"]
    before_store = state.stock_of(STORE_WH, sku)["physical"]
    m = """mutation($i: StockChangeInput!) { changeStock(input: $i) {
      stockChange { id description lines { deliveredQuantity warehouse { id } } }
      userErrors { message path } userWarnings { message path } } }"""
    into = data(server, m, {"i": {"intoWarehouse": {"id": DC}, "description": "inbound ASN-1", "productSizes": [
        {"productSize": {"SKU": sku}, "deliveredQuantity": 5}]}})["changeStock"]
    assert into["userErrors"] == [] and into["stockChange"]["lines"][0]["deliveredQuantity"] == 5
    # variant + size-name form, removing stock
    out = data(server, m, {"i": {"outFromWarehouse": {"id": DC}, "description": "damaged",
                                 "productVariants": [{"productVariant": {"id": ref.variant.variant_id},
                                                      "sizeChanges": {"size": {"name": ref.size.size},
                                                                      "deliveredQuantity": 2}}]}})["changeStock"]
    assert out["stockChange"]["lines"][0]["deliveredQuantity"] == -2
    move = data(server, m, {"i": {"outFromWarehouse": {"id": DC}, "intoWarehouse": {"id": STORE_WH},
                                  "description": "transfer T-9",
                                  "productSizes": [{"productSize": {"EAN": ref.size.ean}, "deliveredQuantity": 1}]}})
    assert len(move["changeStock"]["stockChange"]["lines"]) == 2
    assert _stock(server, DC, ref.size.size_id)["physicalQuantity"] == before_dc + 5 - 2 - 1
    assert _stock(server, STORE_WH, ref.size.size_id)["physicalQuantity"] == before_store + 1

    found = data(server, """{ stockChangeConnection(first: 10, where: {search: "asn-1"}) { totalCount
        edges { node { description createdAt lines { deliveredQuantity productSize { SKU } warehouse { id } } } } } }""")
    conn = found["stockChangeConnection"]
    assert conn["totalCount"] == 1
    node = conn["edges"][0]["node"]
    assert node["description"] == "inbound ASN-1" and node["createdAt"] == "2026-03-02T09:00:00+00:00"
    assert node["lines"][0] == {"deliveredQuantity": 5, "productSize": {"SKU": sku}, "warehouse": {"id": DC}}
    assert [c["description"] for c in state.stock_changes()] == ["inbound ASN-1", "damaged", "transfer T-9",
                                                                "transfer T-9"]


def test_change_stock_rejects_unknown_sku_and_negative_whole_mutation(state: CentraState,
                                                                       server: BackgroundServer) -> None:
    sku = _skus(state, 1)[0]
    before = state.stock_of(DC, sku)
    m = """mutation($i: StockChangeInput!) { changeStock(input: $i) { stockChange { id }
      userErrors { message path } userWarnings { message } } }"""
    unknown = data(server, m, {"i": {"intoWarehouse": {"id": DC}, "description": "x", "productSizes": [
        {"productSize": {"SKU": sku}, "deliveredQuantity": 1},
        {"productSize": {"SKU": "NOPE"}, "deliveredQuantity": 1}]}})["changeStock"]
    assert unknown["stockChange"] is None
    assert unknown["userErrors"][0]["path"] == ["input", "productSizes", "1", "productSize"]
    negative = data(server, m, {"i": {"outFromWarehouse": {"id": DC}, "description": "y", "productSizes": [
        {"productSize": {"SKU": sku}, "deliveredQuantity": before["physical"] + 1}]}})["changeStock"]
    assert negative["stockChange"] is None and "negative" in negative["userErrors"][0]["message"]
    assert state.stock_of(DC, sku) == before and state.stock_changes() == []


def test_set_stock_physical(state: CentraState, server: BackgroundServer) -> None:
    a, b = _skus(state, 2)
    m = """mutation($i: StockSetInput!) { setStock(input: $i) { stockChanges { id lines { deliveredQuantity } }
      userErrors { message } userWarnings { message } } }"""
    res = data(server, m, {"i": {"warehouse": {"id": STORE_WH}, "description": "stock-take 7",
                                 "stockQuantityType": "PHYSICAL", "productSizes": [
                                     {"productSize": {"SKU": a}, "quantity": 10},
                                     {"productSize": {"SKU": b}, "quantity": 0}]}})["setStock"]
    assert res["userErrors"] == [] and len(res["stockChanges"]) == 1
    assert state.stock_of(STORE_WH, a)["physical"] == 10 and state.stock_of(STORE_WH, b)["physical"] == 0
    bad = data(server, m, {"i": {"warehouse": {"id": STORE_WH}, "description": "neg", "stockQuantityType": "PHYSICAL",
                                 "productSizes": [{"productSize": {"SKU": a}, "quantity": -1}]}})["setStock"]
    assert bad["userErrors"] and state.stock_of(STORE_WH, a)["physical"] == 10


def test_stock_change_connection_pages(state: CentraState, server: BackgroundServer) -> None:
    sku = _skus(state, 1)[0]
    for i in range(5):
        state.apply_stock_change(f"batch {i}", [(state.size_by_sku[sku].size.size_id, 1)], into=DC)
    seen, after = [], None
    while True:
        conn = data(server, """query($a: String) { stockChangeConnection(first: 2, after: $a, where: {search: "batch"}) {
            pageInfo { hasNextPage endCursor } edges { node { description } } } }""", {"a": after})
        conn = conn["stockChangeConnection"]
        seen += [e["node"]["description"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == [f"batch {i}" for i in range(5)]


# ------------------------------------------------------------------ orders


def test_place_order_allocates_fta_not_physical_and_prices(state: CentraState) -> None:
    sku = _skus(state, 1)[0]
    before = state.stock_of(DC, sku)
    order = state.place_order(MARKET, [(sku, 2)], email="ana@example.com")
    after = state.stock_of(DC, sku)
    assert order["status"] == "PENDING" and len(order["id"]) == 32 and order["number"] == 1001
    assert after["physical"] == before["physical"] and after["fta"] == before["fta"] - 2
    line = order["lines"][0]
    assert line["unit_price"] == state.estate.price(sku, 2) and line["tax_percent"] == 25.0
    assert state.stock_changes()[-1]["fta_delta"] == -2 and state.stock_changes()[-1]["quantity"] == 0

    wrong = state.place_order(MARKET, [(sku, 1)], email="b@example.com", unit_prices={sku: 1.0}, external_id="X1")
    assert wrong["lines"][0]["unit_price"] == 1.0 and wrong["lines"][0]["unit_original_price"] > 1.0


def test_unallocatable_quantity_becomes_demand(state: CentraState) -> None:
    sku = _skus(state, 1)[0]
    rule = state.allocation_rules[state.markets[MARKET].allocation_rule_id].warehouse_ids
    total_fta = sum(state.stock_of(w, sku)["fta"] for w in rule)
    order = state.place_order(MARKET, [(sku, total_fta + 3)], email="c@example.com")
    assert order["lines"][0]["demand"] == 3 and order["lines"][0]["allocated"] == total_fta
    assert all(state.stock_of(w, sku)["fta"] == 0 for w in rule)
    assert state.stock_of(DC, sku)["demand"] == 3


def test_place_order_is_thread_safe(state: CentraState) -> None:
    sku = _skus(state, 1)[0]
    fta_before = sum(state.stock_of(w, sku)["fta"] for w in (1, 2, 3, 4))
    threads = [threading.Thread(target=lambda: [state.place_order(MARKET, [(sku, 1)], email="t@example.com")
                                                 for _ in range(5)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(state.orders) == 20 and len({o.id for o in state.orders.values()}) == 20
    assert sum(state.stock_of(w, sku)["fta"] for w in (1, 2, 3, 4)) == max(0, fta_before - 20)


ORDER_Q = """query($n: [Int!]) { orders(where: {number: $n}) { id number status
  lines { id quantity cancelledQuantity returnedQuantity unitPrice { value } lineValue { value }
          allocations { quantity warehouse { id } } productSize { SKU } }
  shipments { id number isShipped lines { id quantity } } totals { taxIncluded { value } discounts { value } }
  grandTotal { value currency { code } } } }"""


def test_graphql_order_flow_ship_and_return(state: CentraState, server: BackgroundServer) -> None:
    a, b = _skus(state, 2)
    placed = state.place_order(MARKET, [(a, 2), (b, 1)], email="d@example.com")
    number = placed["number"]
    phys_a = state.stock_of(DC, a)["physical"]
    order = data(server, ORDER_Q, {"n": [number]})["orders"][0]
    assert order["status"] == "PENDING" and order["lines"][0]["allocations"] == [{"quantity": 2, "warehouse": {"id": DC}}]
    shipment_m = """mutation($i: ShipmentCreateInput!) { createShipment(input: $i) {
        shipment { id number lines { id quantity } } userErrors { message } } }"""
    early = data(server, shipment_m, {"i": {"order": {"number": number}}})["createShipment"]
    assert early["shipment"] is None and "CONFIRMED" in early["userErrors"][0]["message"]
    assert data(server, """mutation($n: Int) { confirmOrder(input: {order: {number: $n}}) { order { status }
        userErrors { message } } }""", {"n": number})["confirmOrder"]["order"]["status"] == "CONFIRMED"
    shipment = data(server, shipment_m, {"i": {"order": {"id": placed["id"]}, "lines": [
        {"orderLine": {"id": order["lines"][0]["id"]}, "quantity": 2}]}})["createShipment"]["shipment"]
    assert shipment["number"] == f"{number}-1"
    assert data(server, ORDER_Q, {"n": [number]})["orders"][0]["status"] == "PROCESSING"
    done = data(server, """mutation($id: Int!) { completeShipment(id: $id, input: {shipmentInfo: {carrier: "PN",
        trackingNumber: "T1"}}) { shipment { isShipped trackingNumber carrierInformation { carrierName } }
        userErrors { message } } }""", {"id": shipment["id"]})["completeShipment"]["shipment"]
    assert done["isShipped"] and done["trackingNumber"] == "T1"
    assert state.stock_of(DC, a)["physical"] == phys_a - 2 and state.stock_of(DC, a)["allocated"] == 0
    assert data(server, ORDER_Q, {"n": [number]})["orders"][0]["status"] == "PROCESSING"  # line b not shipped
    rest = data(server, shipment_m, {"i": {"order": {"number": number}}})["createShipment"]["shipment"]
    data(server, "mutation($id: Int!) { completeShipment(id: $id) { userErrors { message } } }", {"id": rest["id"]})
    assert data(server, ORDER_Q, {"n": [number]})["orders"][0]["status"] == "SHIPPED"

    ret = data(server, """mutation($i: ReturnCreateInput!) { createReturn(input: $i) {
        return { id status returnedToStock returnWarehouse { id } grandTotal { value }
                 totals { taxIncluded { value } } lines { quantity unitPrice { value } lineValue { value } } }
        userErrors { message } userWarnings { message } } }""",
               {"i": {"shipment": {"id": shipment["id"]}, "lines": [{"shipmentLine": {"id": shipment["lines"][0]["id"]},
                                                                      "quantity": 1}],
                      "returnStockActionPolicy": {"releaseItemsBackToWarehouse": True}, "comment": "too big"}})
    ret = ret["createReturn"]["return"]
    unit = state.estate.price(a, 2)
    assert ret["status"] == "PENDING" and ret["returnedToStock"] and ret["returnWarehouse"] == {"id": DC}
    assert ret["grandTotal"]["value"] == unit and ret["lines"][0]["lineValue"]["value"] == unit
    assert ret["totals"]["taxIncluded"]["value"] == round(unit - unit / 1.25, 2)
    assert state.stock_of(DC, a)["physical"] == phys_a - 1
    assert data(server, "mutation($id: Int!) { completeReturn(id: $id) { return { status } userErrors { message } } }",
                {"id": ret["id"]})["completeReturn"]["return"]["status"] == "COMPLETED"
    refund = data(server, """mutation($id: Int!) { refundReturn(id: $id) { paymentHistoryEntry { entryType status
        value { value } } return { refundPaymentHistory { entryType } } userErrors { message } } }""",
                  {"id": ret["id"]})["refundReturn"]
    assert refund["paymentHistoryEntry"] == {"entryType": "REFUND", "status": "SUCCESS", "value": {"value": -unit}}
    again = data(server, "mutation($id: Int!) { refundReturn(id: $id) { userErrors { message } } }", {"id": ret["id"]})
    assert again["refundReturn"]["userErrors"]
    line_a = data(server, ORDER_Q, {"n": [number]})["orders"][0]["lines"][0]
    assert line_a["returnedQuantity"] == 1
    returns = data(server, """query($f: DateTimeTz, $t: DateTimeTz) { returns(where: {createdAt: {from: $f, to: $t}})
        { id } }""", {"f": "2026-03-02 08:00:00", "t": "2026-03-02T10:00:00+00:00"})["returns"]
    assert [r["id"] for r in returns] == [ret["id"]]


def test_world_api_ship_and_return_restock(state: CentraState, clock: ManualClock) -> None:
    sku = _skus(state, 1)[0]
    phys = state.stock_of(DC, sku)["physical"]
    number = state.place_order(MARKET, [(sku, 3)], email="e@example.com")["number"]
    clock.advance(hours=1)
    shipped = state.ship_order(number)
    assert shipped["status"] == "SHIPPED" and state.stock_of(DC, sku)["physical"] == phys - 3
    ret = state.create_return(number, [(sku, 2)], restock_warehouse_id=STORE_WH)
    assert ret["refunded"] and ret["return_warehouse_id"] == STORE_WH
    assert state.stock_of(STORE_WH, sku)["physical"] >= 2
    assert state.order_summary(number)["lines"][0]["returned"] == 2
    kinds = [c["kind"] for c in state.stock_changes()]
    assert kinds == ["ALLOCATION", "SHIPMENT", "RETURN"]


def test_update_cancel_lines_hold_and_cancel_order(state: CentraState, server: BackgroundServer) -> None:
    a, b = _skus(state, 2)
    placed = state.place_order(MARKET, [(a, 2), (b, 1)], email="f@example.com")
    fta_a = state.stock_of(DC, a)["fta"]
    line_a = placed["lines"][0]["id"]
    upd = data(server, """mutation($n: Int, $l: Int!) { updateDirectToConsumerOrder(order: {number: $n},
        input: {isOnHold: true, cancelLines: [{line: {id: $l}, quantity: 1}]}) {
        order { isOnHold lines { quantity cancelledQuantity } } userErrors { message } } }""",
               {"n": placed["number"], "l": line_a})["updateDirectToConsumerOrder"]
    assert upd["order"]["isOnHold"] and upd["order"]["lines"][0] == {"quantity": 1, "cancelledQuantity": 1}
    assert state.stock_of(DC, a)["fta"] == fta_a + 1
    cancel = data(server, """mutation($id: String!) { cancelDirectToConsumerOrder(id: $id,
        input: {stockAction: {releaseItemsBackToWarehouse: true}}) { order { status } userErrors { message } } }""",
                  {"id": placed["id"]})["cancelDirectToConsumerOrder"]
    assert cancel["order"]["status"] == "CANCELLED" and state.stock_of(DC, a)["fta"] == fta_a + 2


def test_order_pagination_connection_and_single_order(state: CentraState, server: BackgroundServer,
                                                      clock: ManualClock) -> None:
    sku = _skus(state, 1)[0]
    numbers = []
    for _ in range(7):
        numbers.append(state.place_order(MARKET, [(sku, 1)], email="g@example.com")["number"])
        clock.advance(minutes=5)
    pages = [data(server, "query($p: Int) { orders(sort: [number_ASC], limit: 3, page: $p) { number } }",
                  {"p": p})["orders"] for p in (1, 2, 3, 4)]
    assert [o["number"] for page in pages for o in page] == numbers and pages[3] == []
    desc = data(server, "{ orders(sort: [number_DESC], limit: 2) { number } }")["orders"]
    assert [o["number"] for o in desc] == numbers[::-1][:2]
    seen, after = [], None
    while True:
        conn = data(server, """query($a: String) { orderConnection(first: 3, after: $a) { totalCount
            pageInfo { hasNextPage endCursor } edges { cursor node { number } } } }""", {"a": after})["orderConnection"]
        seen += [e["node"]["number"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == numbers
    assert base64.b64decode(after).decode() == f"number:{numbers[5]}"
    window = data(server, """{ orders(where: {createdAt: {from: "2026-03-02T09:05:00+00:00",
        to: "2026-03-02T09:15:00+00:00"}}) { number createdAt orderDate(format: "Y-m-d") } }""")["orders"]
    assert [o["number"] for o in window] == numbers[1:4] and window[0]["orderDate"] == "2026-03-02"
    one = data(server, "query($id: String!) { order(id: $id) { number } }", {"id": state.orders[numbers[0]].id})
    assert one["order"]["number"] == numbers[0]


# ------------------------------------------------------------------ webhooks


def _events(body: str) -> list[dict]:
    return json.loads(urllib.parse.parse_qs(body)["payload"][0])["events"]


def test_webhooks_signed_batched_and_verifiable(state: CentraState) -> None:
    receiver = Receiver()
    sku = _skus(state, 1)[0]
    with serve(receiver.app()) as hook_server:
        emitter = WebhookEmitter(f"{hook_server.url}/hook", "s3cret", linger_s=0.2).attach(state)
        with emitter:
            number = state.place_order(MARKET, [(sku, 1)], email="h@example.com")["number"]
            state.ship_order(number)
            assert emitter.flush(10)
    events = [e for call in receiver.calls for e in _events(call["body"])]
    assert events[0] == {"type": "order", "action": "insert", "date": "2026-03-02 09:00:00.000000", "id": number}
    assert any(e["type"] == "shipment" and e["action"] == "create" for e in events)
    assert any(e["type"] == "order" and e["action"] == "update" for e in events)
    for call in receiver.calls:
        header = call["headers"]["x-centra-signature"]
        assert call["headers"]["content-type"] == "application/x-www-form-urlencoded"
        assert call["body"].startswith("payload=%7B")
        assert verify_webhook_signature("s3cret", header, call["body"])
        assert verify_signature("s3cret", header, call["body"])
        assert not verify_webhook_signature("other", header, call["body"])
        ts = int(header.split(",")[0][2:])
        assert header == sign("s3cret", call["body"], ts)
        assert parse_webhook_events(call["body"]) == _events(call["body"])
    assert all(d.delivered and d.attempts == 1 for d in emitter.deliveries)


def test_webhook_retries_then_drops(state: CentraState) -> None:
    receiver = Receiver(fail_first=-1)
    sku = _skus(state, 1)[0]
    with (serve(receiver.app()) as hook_server,
          WebhookEmitter(f"{hook_server.url}/hook", "k", retries=2, retry_delay_s=0.01).attach(state) as emitter):
        state.place_order(MARKET, [(sku, 1)], email="i@example.com")
        assert emitter.flush(10)
    [delivery] = emitter.deliveries
    assert delivery.attempts == 3 and delivery.dropped and not delivery.delivered and delivery.statuses == [500] * 3
    assert len(receiver.calls) == 3


def test_webhook_retry_recovers_and_fault_knobs(state: CentraState) -> None:
    sku = _skus(state, 1)[0]
    receiver = Receiver(fail_first=1)
    with serve(receiver.app()) as hook_server:
        url = f"{hook_server.url}/hook"
        with WebhookEmitter(url, "k", retries=1, retry_delay_s=0.01, duplicate_rate=1.0).attach(state) as emitter:
            state.place_order(MARKET, [(sku, 1)], email="j@example.com")
            assert emitter.flush(10)
        first, dup = emitter.deliveries
        assert first.delivered and first.attempts == 2 and dup.duplicate and dup.events == first.events
        with WebhookEmitter(url, "k", drop_rate=1.0).attach(state) as dropper:
            state.place_order(MARKET, [(sku, 1)], email="k@example.com")
            assert dropper.flush(10)
        assert dropper.deliveries[0].dropped and dropper.deliveries[0].attempts == 0
    with pytest.raises(ValueError):
        WebhookEmitter("http://127.0.0.1:9/", "k", retries=4)


def test_webhook_batches_respect_max_events() -> None:
    receiver = Receiver()
    with serve(receiver.app()) as hook_server:
        emitter = WebhookEmitter(f"{hook_server.url}/hook", "k", max_events_per_call=2, linger_s=0.3)
        for i in range(5):
            emitter.emit("order", "update", i, T0)
        with emitter:
            assert emitter.flush(10)
    assert [len(_events(c["body"])) for c in receiver.calls] == [2, 2, 1]


def test_centra_simulator_convenience() -> None:
    receiver = Receiver()
    with serve(receiver.app()) as hook_server:
        sim = CentraSimulator(small_estate(), tokens=[TOKEN], webhook_url=f"{hook_server.url}/hook",
                              webhook_options={"linger_s": 0.01})
        with sim.serve() as server:
            assert data(server, "{ warehouses { id } }")["warehouses"]
            sku = next(iter(sim.state.size_by_sku))
            sim.state.place_order(MARKET, [(sku, 1)], email="l@example.com")
            assert sim.webhooks is not None and sim.webhooks.flush(10)
    assert receiver.calls and _events(receiver.calls[0]["body"])[0]["action"] == "insert"


def test_hourly_quota_used_up_leaves_only_its_refill() -> None:
    """The knob the latency benchmark uses for the steady state of a long peak."""
    from pipelines.simulators.centra.ratelimit import RateLimiter

    now = [0.0]
    limiter = RateLimiter("GROWTH", time_fn=lambda: now[0])
    assert limiter.acquire({"MUTATION_COUNT": 1, "REQUEST_COUNT": 1}).allowed
    limiter.set_remaining("MUTATION_COUNT", "ONE_HOUR", 0)
    refused = limiter.acquire({"MUTATION_COUNT": 1, "REQUEST_COUNT": 1})
    assert not refused.allowed and refused.limited_by == ("MUTATION_COUNT", "ONE_HOUR")
    assert refused.retry_after_s == 2.0  # 1,800 an hour: one token every 2 s
    assert limiter.acquire({"REQUEST_COUNT": 1}).allowed  # queries are not limited by it
    now[0] = 2.0
    assert limiter.acquire({"MUTATION_COUNT": 1, "REQUEST_COUNT": 1}).allowed
