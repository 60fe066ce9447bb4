"""NewStore simulator: auth, limits, faults, orders, fulfillment, stock, returns, event stream, spec conformance."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipelines.estate.model import Estate
from pipelines.simulators.newstore import ADJUSTMENT_EVENT, EmitterConfig, NewStoreState
from pipelines_tests.newstore_fixtures import (  # noqa: F401
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    EventReceiver,
    ServedNewStore,
    fixture_ns_estate,
    fixture_ns_served,
    fixture_receiver,
    injection_payload,
    make_simulator,
    served_receiver,
)
from pipelines_tests.openapi_support import SwaggerSpecs, validate_exchanges

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "error_code", "message", "request_id"}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _dc_sku(estate: Estate, n: int = 0, min_qty: int = 5) -> str:
    return [s for s, q in estate.initial_stock["DC01"].items() if q >= min_qty][n]


def _register(http: httpx.Client, rec: EventReceiver, integration_id: str = "erp-1", **extra: Any) -> dict:
    body = {"id": integration_id, "integration_type": "permanent",
            "callback_parameters": {"callback_url": rec.url, "api_key": API_KEY}, **extra}
    resp = http.post("/api/v1/org/integrations/eventstream", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


# -- auth ----------------------------------------------------------------------------------------------


def test_token_endpoint_form_basic_legacy_and_refusals(ns_served: ServedNewStore) -> None:
    url = ns_served.token_url
    form = httpx.post(url, data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                 "client_secret": CLIENT_SECRET})
    assert form.status_code == 200
    body = form.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0 and body["access_token"] and "scope" in body
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    resp = httpx.post(url, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200 and resp.json()["access_token"] != body["access_token"]
    bad = httpx.post(url, data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "x"})
    assert bad.status_code == 401 and bad.json()["error"] == "unauthorized_client"
    assert httpx.post(url, data={"grant_type": "password"}).status_code == 400
    wrong_realm = url.replace(ns_served.sim.tenant, "other-tenant")
    assert httpx.post(wrong_realm, data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                         "client_secret": CLIENT_SECRET}).status_code == 404
    legacy = httpx.post(f"{ns_served.url}/v0/token", data={"grant_type": "password", "username": CLIENT_ID,
                                                           "password": CLIENT_SECRET})
    assert legacy.status_code == 200 and {"access_token", "refresh_token", "expires_in"} <= set(legacy.json())
    token = legacy.json()["access_token"]
    assert httpx.get(f"{ns_served.url}/v0/locations", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_api_without_token_401_bad_or_expired_token_403(ns_served: ServedNewStore) -> None:
    resp = httpx.get(f"{ns_served.url}/v0/locations")
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert set(resp.json()) >= PROBLEM_FIELDS
    assert httpx.get(f"{ns_served.url}/v0/locations", headers={"Authorization": "Bearer nope"}).status_code == 403
    with ns_served.http() as http:
        assert http.get("/v0/locations").status_code == 200
        ns_served.sim.controls.expire_tokens()
        expired = http.get("/v0/locations")
        assert expired.status_code == 403 and expired.json()["status"] == 403


# -- limits and faults ------------------------------------------------------------------------------------


def test_tenant_rate_limit_answers_429_with_retry_after(ns_served: ServedNewStore) -> None:
    ns_served.sim.controls.set_rate_limits(tenant_rate=0.5, burst=2)
    with ns_served.http() as http:
        statuses = [http.get("/v0/locations") for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["error_code"] == "too_many_requests"


def test_endpoint_limit_applies_to_that_endpoint_only(ns_served: ServedNewStore) -> None:
    ns_served.sim.controls.set_rate_limits(tenant_rate=None, endpoint_rates={"get_order": 0.2}, burst=1)
    with ns_served.http() as http:
        codes = [http.get("/v0/orders/nope", params={"id_type": "internal"}).status_code for _ in range(3)]
        assert 429 in codes and codes[0] == 404
        assert all(http.get("/v0/locations").status_code == 200 for _ in range(5))


def test_forced_failures_and_504_after_processing(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    controls = ns_served.sim.controls
    with ns_served.http() as http:
        controls.fail_next(2, 500)
        assert [http.get("/v0/locations").status_code for _ in range(3)] == [500, 500, 200]
        controls.fail_next(1, 429, retry_after=3)
        limited = http.get("/v0/locations")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
        body = injection_payload(ns_estate, "W-504", [_dc_sku(ns_estate)])
        controls.fail_next(1, 504, path="/v0/d/fulfill_order", after_processing=True)
        assert http.post("/v0/d/fulfill_order", json=body).status_code == 504
        found = http.get("/v0/orders/W-504", params={"id_type": "external"})
        assert found.status_code == 200  # the order was created in the background
        retry = http.post("/v0/d/fulfill_order", json=body)
        assert retry.status_code == 200 and retry.json()["id"] == found.json()["id"]


# -- orders -------------------------------------------------------------------------------------------------


def test_fulfill_order_validation(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    sku = _dc_sku(ns_estate)
    with ns_served.http() as http:
        missing = http.post("/v0/d/fulfill_order", json={"external_id": "X1"})
        assert missing.status_code == 400 and len(missing.json()["messages"]) >= 4
        unknown = injection_payload(ns_estate, "X2", [sku])
        unknown["shipments"][0]["items"][0]["product_id"] = "NO-SUCH-SKU"
        assert http.post("/v0/d/fulfill_order", json=unknown).json()["error_code"] == "product_not_found"
        mixed = injection_payload(ns_estate, "X3", [sku, sku])
        mixed["shipments"].append({"items": [mixed["shipments"][0]["items"].pop()], "shipping_offer_token": "tok"})
        assert http.post("/v0/d/fulfill_order", json=mixed).json()["error_code"] == "mixed_shipping_option_types"
        wrong_total = injection_payload(ns_estate, "X4", [sku])
        wrong_total["payments"][0]["amount"] += 1
        assert http.post("/v0/d/fulfill_order", json=wrong_total).json()["error_code"] == "invalid_payments"
        unknown_node = injection_payload(ns_estate, "X6", [sku], node="XX99")
        assert http.post("/v0/d/fulfill_order", json=unknown_node).json()["error_code"] == "invalid_routing_strategy"
        decimals = injection_payload(ns_estate, "X5", [sku], payments=False)
        decimals["shipments"][0]["items"][0]["price"]["item_price"] = 10.005
        assert http.post("/v0/d/fulfill_order", json=decimals).status_code == 400
        assert ns_served.sim.state.events_published("order.created") == []


def test_fulfill_order_idempotency_and_conflict(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    sku = _dc_sku(ns_estate)
    body = injection_payload(ns_estate, "W-1", [sku, sku])
    with ns_served.http() as http:
        first = http.post("/v0/d/fulfill_order", json=body)
        assert first.status_code == 200
        ids = first.json()
        assert len(ids["items"]) == 2 and all(len(i["id"]) == 36 for i in ids["items"])
        assert http.post("/v0/d/fulfill_order", json=body).json() == ids
        changed = injection_payload(ns_estate, "W-1", [sku])
        conflict = http.post("/v0/d/fulfill_order", json=changed)
        assert conflict.status_code == 409
        assert conflict.json()["error_code"] == "same_order_injection_with_different_data"
    assert len(ns_served.sim.state.events_published("order.created")) == 1
    state = NewStoreState(ns_estate, conflict_mode="first_response")
    resp = state.fulfill_order(body)
    assert state.fulfill_order(changed) == resp


def test_orders_by_internal_and_external_id_and_cancel(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    sku = _dc_sku(ns_estate)
    before = ns_served.sim.state.stock_record("DC01", sku)
    with ns_served.http() as http:
        ids = http.post("/v0/d/fulfill_order", json=injection_payload(ns_estate, "W-2", [sku, sku])).json()
        by_internal = http.get(f"/v0/orders/{ids['id']}", params={"id_type": "internal"}).json()
        by_external = http.get("/v0/orders/W-2", params={"id_type": "external"}).json()
        assert by_internal == by_external
        assert by_internal["origin_id"] == "W-2" and by_internal["status"] == "open"
        assert by_internal["channel_type"] == "web" and by_internal["fulfillment_type"] == "traditional"
        assert {i["status"] for i in by_internal["items"]} == {"in_fulfillment"}
        assert http.get(f"/v0/orders/{ids['id']}").status_code == 400  # id_type is required
        assert http.get("/v0/orders/nope", params={"id_type": "internal"}).status_code == 404
        mid = ns_served.sim.state.stock_record("DC01", sku)
        assert mid["allocations"] == before["allocations"] + 2 and mid["atp"] == before["atp"] - 2
        assert http.post(f"/v0/orders/{ids['id']}/cancel", params={"id_type": "internal"}, json={}).status_code == 400
        assert http.get(f"/v0/orders/{ids['id']}/cancel", params={"id_type": "internal"}).json()["cancelable"]
        cancel = http.post(f"/v0/orders/{ids['id']}/cancel", params={"id_type": "internal"},
                           json={"reason": "customer request"})
        assert cancel.status_code == 200
        after = http.get("/v0/orders/W-2", params={"id_type": "external"}).json()
        assert after["status"] == "closed" and {i["status"] for i in after["items"]} == {"cancelled"}
    assert ns_served.sim.state.stock_record("DC01", sku) == before
    cancelled = ns_served.sim.state.events_published("order.cancelled")
    assert len(cancelled) == 1 and len(cancelled[0]["payload"]["items"]) == 2


def test_fulfillment_request_ship_flow(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    state = ns_served.sim.state
    sku = _dc_sku(ns_estate)
    on_hand = state.on_hand("DC01", sku)
    with ns_served.http() as http:
        ids = http.post("/v0/d/fulfill_order", json=injection_payload(ns_estate, "W-3", [sku, sku])).json()
        frs = http.get(f"/v0/fulfillment_requests/{ids['id']}").json()["fulfillment_requests"]
        assert len(frs) == 1 and frs[0]["status"] == "dispatched" and frs[0]["fulfillment_node_id"] == "DC01"
        ffr, items = frs[0]["fulfillment_request_id"], [i["item_id"] for i in frs[0]["items"]]
        url = f"/v0/fulfillment_request/{ffr}/set_items_states"
        mixed = http.post(url, json={"line_items": [{"item_id": items[0], "state": "shipped"},
                                                    {"item_id": items[1], "state": "rejected"}]})
        assert mixed.status_code == 400
        one = http.post(url, json={"line_items": [{"item_id": items[0], "state": "shipped"}], "carrier": "postnord",
                                   "tracking_code": "PN123"})
        assert one.status_code == 204 and one.content == b""
        fr = http.get(f"/v0/fulfillment_requests/{ids['id']}").json()["fulfillment_requests"][0]
        assert fr["status"] == "partially_completed"
        assert fr["items"][0] == {"item_id": items[0], "product_id": sku, "status": "shipped", "carrier": "postnord",
                                  "tracking_code": "PN123"}
        again = http.post(url, json={"line_items": [{"item_id": items[0], "state": "shipped"}]})
        assert again.status_code == 400 and again.json()["error_code"] == "already_shipped"
        http.post(url, json={"line_items": [{"item_id": items[1], "state": "shipped"}]})
        fr = http.get(f"/v0/fulfillment_requests/{ids['id']}").json()["fulfillment_requests"][0]
        assert fr["status"] == "completed"
        assert http.get("/v0/orders/W-3", params={"id_type": "external"}).json()["status"] == "closed"
        assert http.get("/v0/fulfillment_requests/unknown").json() == {"fulfillment_requests": []}
    assert state.stock_record("DC01", sku)["allocations"] == 0 and state.on_hand("DC01", sku) == on_hand - 2
    completed = state.events_published("fulfillment_request.items_completed")
    assert len(completed) == 2 and all(e["payload"]["fulfillment_location_id"] == "DC01" for e in completed)
    assert len(state.events_published("order.completed")) == 1


def test_rejection_reroutes_to_another_node(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    state = ns_served.sim.state
    sku = _dc_sku(ns_estate)
    state.receive_stock("SE02", {sku: 3})
    with ns_served.http() as http:
        ids = http.post("/v0/d/fulfill_order", json=injection_payload(ns_estate, "W-4", [sku], node="SE02")).json()
        fr = http.get(f"/v0/fulfillment_requests/{ids['id']}").json()["fulfillment_requests"][0]
        assert fr["fulfillment_node_id"] == "SE02"
        http.post(f"/v0/fulfillment_request/{fr['fulfillment_request_id']}/set_items_states",
                  json={"line_items": [{"item_id": fr["items"][0]["item_id"], "state": "rejected"}],
                        "reason": "rescinded"})
        frs = http.get(f"/v0/fulfillment_requests/{ids['id']}").json()["fulfillment_requests"]
    assert [f["status"] for f in frs] == ["completed", "dispatched"]
    assert frs[1]["fulfillment_node_id"] == "DC01"
    assert state.stock_record("SE02", sku)["allocations"] == 0
    assert state.stock_record("DC01", sku)["allocations"] == 1


# -- stock -------------------------------------------------------------------------------------------------


def test_stocked_products_pagination_and_atp_arithmetic(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    state = ns_served.sim.state
    sku = _dc_sku(ns_estate, min_qty=10)
    state.set_safety_stock("DC01", sku, 2)
    state.reserve("DC01", sku, 1, expires_at=T0 + timedelta(minutes=30))
    with ns_served.http() as http:
        http.post("/v0/d/fulfill_order", json=injection_payload(ns_estate, "W-5", [sku, sku, sku]))
        rows, offset = [], 0
        while True:
            page = http.get("/_/v0/hq/stocked_products", params={"limit": 70, "offset": offset}).json()
            rows += page["items"]
            offset += len(page["items"])
            if len(page["items"]) < 70:
                break
        assert len(rows) == page["pagination"]["total"] == 4 * 60
        assert len({(r["fulfillment_node_id"], r["sku"]) for r in rows}) == len(rows)
        row = next(r for r in rows if r["fulfillment_node_id"] == "DC01" and r["sku"] == sku)
        assert row["product_id"] == sku and row["allocations"] == 3 and row["safety_stock"] == 2
        assert row["atp"] == row["on_hand"] - 3 - 1 - 2 == state.atp("DC01", sku)
        atp = http.post("/v0/stock/atp", json={"atp_keys": [{"product_id": sku, "fulfillment_node_id": "DC01"},
                                                            {"product_id": sku, "fulfillment_node_id": "NOPE"}]})
        assert [i["atp"] for i in atp.json()["items"]] == [row["atp"], 0]
        insights = http.get("/v0/stock/insights", params={"product_id": sku, "fulfillment_node_id": "DC01"}).json()
        assert len(insights["allocations"]) == 3 and len(insights["reservations"]) == 1
        assert http.get("/v0/stock/insights", params={"product_id": sku}).status_code == 400
        locations = http.get("/v0/locations").json()["locations"]
        assert {loc["id"] for loc in locations} == {"DC01", "SE01", "SE02", "SE03"}
        page1 = http.get("/stores", params={"limit": 2}).json()
        page2 = http.get("/stores", params={"limit": 2, "start_at": page1["next_page_key"]}).json()
        assert [s["id"] for s in page1["items"] + page2["items"]] == ["ST-SE01", "ST-SE02", "ST-SE03"]
        assert "next_page_key" not in page2
        assert http.get("/stores/ST-SE02").json()["country_code"] == "SE"
        assert http.get("/stores/NOPE").status_code == 404


def test_store_sale_payload_stock_and_events(ns_estate: Estate) -> None:
    state = NewStoreState(ns_estate, tenant="t")
    sku_a, sku_b = ns_estate.skus()[:2]
    start_a, start_b = state.on_hand("SE01", sku_a), state.on_hand("SE01", sku_b)
    payload = state.record_store_sale("SE01", [{"sku": sku_a, "quantity": 2, "unit_price": 499.0, "discount": 50.0},
                                               {"sku": sku_b, "quantity": 1, "unit_price": 199.0, "discount": 0}],
                                      at=T0, customer_email="a@b.se")
    assert state.on_hand("SE01", sku_a) == start_a - 2 and state.on_hand("SE01", sku_b) == start_b - 1
    assert [e["name"] for e in state.events_published()] == ["order.created", "order.opened", "order.completed"]
    completed = state.events_published("order.completed")[0]["payload"]
    assert completed["id"] == payload["id"] and {i["status"] for i in completed["items"]} == {"complete"}
    assert payload["channel_type"] == "store" and payload["channel"] == "ST-SE01"
    assert payload["price_method"] == "tax_included"
    # Only fields NewStore's integration dataclasses name (PROVENANCE.md): no invented location fields.
    assert not {"store_id", "fulfillment_node_id", "logical_timestamp"} & set(payload)
    assert payload["currency"] == "SEK" and payload["placed_at"] == "2026-03-02T09:00:00.000Z"
    assert len(payload["items"]) == 3 and {i["quantity"] for i in payload["items"]} == {1}
    assert {i["shipping_service_level"] for i in payload["items"]} == {"IN_STORE_HANDOVER"}
    assert payload["subtotal"] == 499 * 2 + 199 and payload["discount_total"] == 100.0
    assert payload["grand_total"] == 449 * 2 + 199
    assert payload["tax_total"] == pytest.approx(89.8 * 2 + 39.8)
    item = payload["items"][0]
    assert item["external_identifiers"] == {"sku": sku_a, "ean13": ns_estate.by_sku[sku_a].size.ean}
    assert item["list_price"] == 499.0 and item["item_discounts"] == 50.0 and item["tax"] == 89.8
    created, opened, _completed = state.events_published()
    assert created["payload"]["id"] == opened["payload"]["id"]
    assert opened["tenant"] == "t" and opened["published_at"] == "2026-03-02T09:00:00.000Z"


def test_receive_adjust_count_events(ns_estate: Estate) -> None:
    state = NewStoreState(ns_estate, count_chunk_size=4)
    skus = ns_estate.skus()[:10]
    base = state.on_hand("SE02", skus[0])
    (received,) = state.receive_stock("SE02", {skus[0]: 5}, at=T0, asn_id="asn-1", shipment_ref="SHP-1")
    adjusted = state.adjust_stock("SE02", {skus[0]: -2}, at=T0)
    assert state.on_hand("SE02", skus[0]) == base + 3
    on_record = {s: state.on_hand("SE02", s) for s in skus}
    chunks = state.count_stock("SE02", {s: i for i, s in enumerate(skus)}, at=T0 + timedelta(hours=1))
    assert [state.on_hand("SE02", s) for s in skus] == list(range(10))
    events = state.events_published()
    assert [e["name"] for e in events] == ["inventory_transaction.items_received", ADJUSTMENT_EVENT,
                                           *["inventory_count.items_counted"] * 3]
    assert [(c["chunk_number"], c["total_chunks"], len(c["items"])) for c in chunks] == [(1, 3, 4), (2, 3, 4), (3, 3, 2)]
    # The count as NewStore's own integrations read it: what was on record and what was counted.
    assert set(chunks[0]) == {"fulfillment_location_id", "chunk_number", "total_chunks", "items"}
    assert chunks[2]["items"][-1] == {"product_id": skus[9], "stock_on_hand": on_record[skus[9]], "count": 9}
    assert chunks[0]["items"][0] == {"product_id": skus[0], "stock_on_hand": base + 3, "count": 0}
    assert set(received) == {"id", "chunk_number", "asn_id", "shipment_ref", "fulfillment_location_id",
                             "processed_at", "items"}
    assert (received["asn_id"], received["shipment_ref"], received["chunk_number"]) == ("asn-1", "SHP-1", 1)
    assert received["items"] == [{"product_id": skus[0], "quantity": 5}]
    assert adjusted["items"][0]["quantity"] == -2 and adjusted["processed_at"] == "2026-03-02T09:00:00.000Z"
    assert {e["payload"]["fulfillment_location_id"] for e in events} == {"SE02"}
    assert events[-1]["published_at"] == "2026-03-02T10:00:00.000Z"  # a count is dated by its publication


def test_record_return_blind_online_and_linked(ns_estate: Estate) -> None:
    state = NewStoreState(ns_estate)
    sku = ns_estate.skus()[5]
    base = state.on_hand("SE03", sku)
    blind = state.record_return("SE03", [{"sku": sku, "quantity": 2, "refund_amount": 1000.0}], at=T0,
                                original_external_order_ref="CENTRA-123")
    assert state.on_hand("SE03", sku) == base + 2
    assert blind["order_id"] is None and blind["external_order_id"] == "CENTRA-123"
    assert blind["return_location_id"] == "SE03" and blind["currency"] == "SEK"
    assert blind["total_refund_amount"] == 1000.0 and blind["total_refund_tax"] == 200.0
    assert blind["items"][0]["refund_excl_tax"] == 800.0 and blind["items"][0]["refund_tax"] == 200.0
    assert blind["items"][0]["item_condition"] == "sellable" and blind["items"][0]["quantity"] == 2
    state.record_return("SE03", [{"sku": sku, "quantity": 1, "refund_amount": 100.0}], restock=False)
    assert state.on_hand("SE03", sku) == base + 2
    names = [e["name"] for e in state.events_published()]
    assert names.count("return.processed") == 2 and names.count("refund_request.issued") == 2
    refund = state.events_published("refund_request.issued")[0]["payload"]
    assert refund["amount"] == 1000.0 and refund["return_id"] == blind["id"] and refund["order_id"] is None
    sale = state.record_store_sale("SE01", [{"sku": sku, "quantity": 1, "unit_price": 500.0, "discount": 0}])
    linked = state.record_return("SE01", [{"sku": sku, "quantity": 1, "refund_amount": 500.0}],
                                 original_external_order_ref=sale["external_id"])
    assert linked["order_id"] == sale["id"] and linked["external_order_id"] == sale["external_id"]
    assert state.get_order(sale["id"])["items"][0]["status"] == "returned"


def test_returns_api_computes_refund_and_restocks(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    state = ns_served.sim.state
    sku = ns_estate.skus()[7]
    sale = state.record_store_sale("SE01", [{"sku": sku, "quantity": 2, "unit_price": 300.0, "discount": 20.0}])
    on_hand = state.on_hand("SE01", sku)
    with ns_served.http() as http:
        created = http.post(f"/v0/d/orders/{sale['id']}/returns",
                            json={"items": [{"product_id": sku, "reason": "too small"}], "returned_from": "SE01"})
        assert created.status_code == 201, created.text
        ret = created.json()
        assert ret["total_refund_amount"] == 280.0 and ret["currency"] == "SEK" and ret["order_id"] == sale["id"]
        listed = http.get(f"/v0/d/orders/{sale['id']}/returns").json()["returns"]
        assert [r["id"] for r in listed] == [ret["id"]]
        assert http.get(f"/v0/d/orders/{sale['id']}/returns/{ret['id']}").json()["id"] == ret["id"]
        http.post(f"/v0/d/orders/{sale['id']}/returns", json={"items": [{"product_id": sku}], "returned_from": "SE01"})
        third = http.post(f"/v0/d/orders/{sale['id']}/returns",
                          json={"items": [{"product_id": sku}], "returned_from": "SE01"})
        assert third.status_code == 400 and third.json()["error_code"] == "no_returnable_item"
    assert state.on_hand("SE01", sku) == on_hand + 2
    processed = state.events_published("return.processed")[0]["payload"]
    assert processed["order_id"] == sale["id"] and processed["items"][0]["return_reason"] == "too small"


# -- event stream --------------------------------------------------------------------------------------------


def test_eventstream_registry_and_pos_sale_delivery(ns_served: ServedNewStore, ns_estate: Estate,
                                                    receiver: EventReceiver) -> None:
    state = ns_served.sim.state
    sku = ns_estate.skus()[0]
    with ns_served.http() as http:
        created = _register(http, receiver)
        assert created["status"] == "running" and "api_key" not in created["callback_parameters"]
        assert http.post("/api/v1/org/integrations/eventstream", json={"id": "erp-1"}).status_code == 409
        assert [i["id"] for i in http.get("/api/v1/org/integrations/eventstream").json()["integrations"]] == ["erp-1"]
        assert http.get("/api/v1/org/integrations/eventstream/erp-1").json()["id"] == "erp-1"
        assert http.get("/api/v1/org/integrations/eventstream/nope").status_code == 404
        started = http.post("/api/v1/org/integrations/eventstream/erp-1/_start",
                            json={"callback_parameters": {"callback_url": receiver.url, "api_key": API_KEY}})
        assert started.json()["status"] == "running"
    before = state.on_hand("SE01", sku)
    state.record_store_sale("SE01", [{"sku": sku, "quantity": 1, "unit_price": 199.0, "discount": 0}])
    assert ns_served.sim.flush(10)
    assert state.on_hand("SE01", sku) == before - 1
    assert receiver.names() == ["order.created", "order.opened", "order.completed"]
    opened = receiver.received("order.opened")[0]
    assert set(opened) == {"tenant", "name", "published_at", "payload"} and opened["tenant"] == state.tenant
    assert opened["payload"]["items"][0]["shipping_service_level"] == "IN_STORE_HANDOVER"
    assert opened["payload"]["channel"] == "ST-SE01"
    assert [d["outcome"] for d in ns_served.sim.emitter.delivery_log()] == ["delivered"] * 3


def test_return_and_count_events_delivered(ns_served: ServedNewStore, ns_estate: Estate,
                                           receiver: EventReceiver) -> None:
    state = ns_served.sim.state
    state.count_chunk_size = 25
    with ns_served.http() as http:
        _register(http, receiver)
    sku = ns_estate.skus()[1]
    state.record_return("SE02", [{"sku": sku, "quantity": 1, "refund_amount": 249.0}],
                        original_external_order_ref="C-9")
    state.count_stock("SE02", dict.fromkeys(ns_estate.skus(), 1))
    assert ns_served.sim.flush(10)
    names = receiver.names()
    assert names[:3] == ["return.processed", "refund_request.issued", "payment_account.amount_refunded"]
    counts = receiver.received("inventory_count.items_counted")
    assert [c["payload"]["chunk_number"] for c in counts] == [1, 2, 3]
    assert {c["payload"]["total_chunks"] for c in counts} == {3}
    assert sum(len(c["payload"]["items"]) for c in counts) == 60


def test_receiver_errors_are_retried_until_delivered(ns_served: ServedNewStore, receiver: EventReceiver) -> None:
    with ns_served.http() as http:
        _register(http, receiver)
    receiver.fail_next(3, 500)
    ns_served.sim.state.receive_stock("SE01", {ns_served.sim.state.estate.skus()[0]: 4})
    assert ns_served.sim.flush(10)
    assert receiver.names() == ["inventory_transaction.items_received"]
    log = ns_served.sim.emitter.delivery_log()
    assert [a["status_code"] for a in log[0]["attempts"]] == [500, 500, 500, 200]
    assert log[0]["outcome"] == "delivered"


def test_wrong_api_key_and_dead_receiver_give_up_bounded(ns_estate: Estate, receiver: EventReceiver) -> None:
    sim = make_simulator(ns_estate, emitter_config=EmitterConfig(backoff_initial=0.01, backoff_max=0.02,
                                                                 max_attempts=3))
    with sim.serve():
        sim.state.create_integration({"id": "bad-key", "callback_parameters": {"callback_url": receiver.url,
                                                                               "api_key": "wrong"}})
        sim.state.create_integration({"id": "dead", "callback_parameters": {
            "callback_url": "http://127.0.0.1:9/unreachable", "api_key": API_KEY}})
        sim.state.adjust_stock("SE01", {ns_estate.skus()[0]: 1})
        assert sim.flush(10)
    log = {d["integration_id"]: d for d in sim.emitter.delivery_log()}
    assert log["bad-key"]["outcome"] == "failed" and [a["status_code"] for a in log["bad-key"]["attempts"]] == [403] * 3
    assert log["dead"]["outcome"] == "failed" and all(a["error"] for a in log["dead"]["attempts"])
    assert receiver.events == []


def _chaos_run(estate: Estate, seed: int, config: EmitterConfig) -> tuple[list[tuple[str, int]], list[dict]]:
    rec, serving = served_receiver()
    sim = make_simulator(estate, seed=seed, emitter_config=config)
    with serving as srv:
        rec.server = srv
        with sim.serve():
            sim.state.create_integration({"id": "chaos", "callback_parameters": {"callback_url": rec.url,
                                                                                 "api_key": API_KEY}})
            for i, sku in enumerate(estate.skus()[:40]):
                sim.state.receive_stock("SE01", {sku: i + 1}, at=T0)
            assert sim.flush(10)
    # Each receipt's quantity (i + 1) tells the deliveries apart (receipts carry no logical timestamp).
    got = [(e["name"], e["payload"]["items"][0]["quantity"]) for e in rec.events]
    outcome = [{k: d[k] for k in ("seq", "duplicate", "outcome")} for d in sim.emitter.delivery_log()]
    return got, outcome


def test_chaos_knobs_duplicate_shuffle_drop_are_deterministic(ns_estate: Estate) -> None:
    config = EmitterConfig(duplicate_rate=0.25, drop_rate=0.15, shuffle_window=6, shuffle_linger=5.0,
                           backoff_initial=0.01)
    got, log = _chaos_run(ns_estate, 5, config)
    again, log_again = _chaos_run(ns_estate, 5, config)
    other, _ = _chaos_run(ns_estate, 6, config)
    assert got == again and log == log_again  # same seed, same story
    assert other != got
    lts = [lt for _, lt in got]
    assert len(lts) > len(set(lts))  # duplicates arrived
    assert len(set(lts)) < 40  # some were dropped
    assert lts != sorted(lts)  # and the order was shuffled
    dropped = sum(d["outcome"] == "dropped" for d in log)
    assert dropped and len(got) == sum(d["outcome"] == "delivered" for d in log)
    plain, plain_log = _chaos_run(ns_estate, 5, EmitterConfig())
    assert [lt for _, lt in plain] == sorted(lt for _, lt in plain) and len(plain) == 40


def test_delay_knob_still_delivers_everything(ns_estate: Estate, receiver: EventReceiver) -> None:
    sim = make_simulator(ns_estate, emitter_config=EmitterConfig(delay=0.05))
    with sim.serve():
        sim.state.create_integration({"id": "slow", "callback_parameters": {"callback_url": receiver.url,
                                                                            "api_key": API_KEY}})
        for sku in ns_estate.skus()[:10]:
            sim.state.adjust_stock("SE03", {sku: 1})
        assert sim.emitter.wait_idle(10)
    assert sorted(e["payload"]["items"][0]["product_id"] for e in receiver.events) == sorted(ns_estate.skus()[:10])
    assert {e["name"] for e in receiver.events} == {ADJUSTMENT_EVENT}


def test_temporary_integration_replays_window(ns_served: ServedNewStore, receiver: EventReceiver) -> None:
    state = ns_served.sim.state
    sku = state.estate.skus()[0]
    state.receive_stock("SE01", {sku: 1}, at=T0 - timedelta(days=2))
    state.receive_stock("SE01", {sku: 2}, at=T0)
    with ns_served.http() as http:
        _register(http, receiver, "replay", integration_type="temporary",
                  starts_at=(T0 - timedelta(hours=1)).isoformat(), ends_at=(T0 + timedelta(hours=1)).isoformat())
    state.receive_stock("SE01", {sku: 3}, at=T0 + timedelta(days=1))  # outside the window
    assert ns_served.sim.flush(10)
    assert [e["payload"]["items"][0]["quantity"] for e in receiver.events] == [2]


# -- spec conformance ---------------------------------------------------------------------------------------------


def test_simulator_exchanges_conform_to_openapi_specs(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    specs = SwaggerSpecs.load()
    sku = _dc_sku(ns_estate)
    state = ns_served.sim.state
    sale = state.record_store_sale("SE01", [{"sku": sku, "quantity": 1, "unit_price": 100.0, "discount": 10.0}],
                                   customer_email="x@y.se")
    with ns_served.http() as http:
        ids = http.post("/v0/d/fulfill_order", json=injection_payload(ns_estate, "W-S", [sku, sku])).json()
        http.post("/v0/d/fulfill_order", json=injection_payload(ns_estate, "W-S", [sku]))  # 409
        http.post("/v0/d/fulfill_order", json={"external_id": "bad"})  # 400
        for oid, kind in ((ids["id"], "internal"), ("W-S", "external"), (sale["id"], "internal"), ("nope", "internal")):
            http.get(f"/v0/orders/{oid}", params={"id_type": kind})
        fr = http.get(f"/v0/fulfillment_requests/{ids['id']}").json()["fulfillment_requests"][0]
        url = f"/v0/fulfillment_request/{fr['fulfillment_request_id']}/set_items_states"
        http.post(url, json={"line_items": [{"item_id": fr["items"][0]["item_id"], "state": "shipped"}],
                             "carrier": "dhl", "tracking_code": "T1"})
        http.post(url, json={"line_items": [{"item_id": fr["items"][0]["item_id"], "state": "shipped"}]})  # 400
        http.get(f"/v0/fulfillment_requests/{ids['id']}")
        http.post(url.replace(fr["fulfillment_request_id"], "nope"),
                  json={"line_items": [{"item_id": fr["items"][0]["item_id"], "state": "shipped"}]})  # 404
        http.get("/v0/stock/insights", params={"product_id": sku, "fulfillment_node_id": "DC01"})
        http.get("/v0/stock/insights", params={"product_id": sku})  # 400
        http.get("/stores", params={"limit": 2})
        http.get("/stores/ST-SE01")
        http.get("/stores/NOPE")
        http.get(f"/v0/orders/{ids['id']}/cancel", params={"id_type": "internal"})
        http.post(f"/v0/orders/{ids['id']}/cancel", params={"id_type": "internal"}, json={"reason": "r"})  # 400
        ns_served.sim.controls.fail_next(1, 429)
        http.get("/v0/stock/insights", params={"product_id": sku, "fulfillment_node_id": "DC01"})
        ns_served.sim.controls.fail_next(1, 500)
        http.get("/stores", params={"limit": 2})
    exchanges = ns_served.sim.controls.exchanges()
    checked, errors = validate_exchanges(specs, exchanges, requests=False)
    assert checked >= 20 and errors == []
    valid_requests = [e for e in exchanges if e.status < 400]
    checked, errors = validate_exchanges(specs, valid_requests, responses=False)
    assert checked >= 10 and errors == []
    statuses = {e.status for e in exchanges}
    assert {200, 204, 400, 404, 409, 429, 500} <= statuses


def test_spec_validator_catches_bad_shapes() -> None:
    specs = SwaggerSpecs.load(["fulfillment-requests", "order-injection", "stores"])
    bad_fr = {"fulfillment_requests": [{"fulfillment_request_id": "f", "fulfillment_node_id": "DC01",
                                        "service_level": "x", "status": "shipped", "created_at": "yesterday",
                                        "items": []}]}
    assert len(specs.response_errors("GET", "/v0/fulfillment_requests/o", 200, bad_fr)) == 3
    assert specs.response_errors("POST", "/v0/d/fulfill_order", 418, None) == []  # falls back to 'default'
    assert specs.request_errors("GET", "/stores", query={}) == ["query parameter 'limit': required but missing"]
    assert specs.request_errors("POST", "/v0/d/fulfill_order", body={"currency": "SEK", "price_method": "x"})
    assert specs.operation("GET", "/_/v0/hq/stocked_products") is None


def test_missing_specs_folder_skips_with_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from pipelines_tests import openapi_support

    monkeypatch.setattr(openapi_support, "SPEC_DIR", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception, match="specs not found"):
        SwaggerSpecs.load()


def test_changed_redeliveries_and_late_publication_knobs(ns_estate: Estate, receiver: EventReceiver) -> None:
    import json

    from pipelines.intake.verify import parse_newstore_event

    config = EmitterConfig(redelivery_rate=1.0, redelivery_shift_s=7200, redelivery_extra={"republished": True})
    sim = make_simulator(ns_estate, emitter_config=config)
    sim.state.late_publication_rate, sim.state.late_publication_s = 1.0, 5 * 3600
    with sim.serve():
        sim.state.create_integration({"id": "knobs", "callback_parameters": {"callback_url": receiver.url,
                                                                            "api_key": API_KEY}})
        evening = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)
        (receipt,) = sim.state.receive_stock("SE01", {ns_estate.skus()[0]: 2}, at=evening)
        assert sim.emitter.wait_idle(10)
    first, again = receiver.events
    # Published five hours late, after midnight; the receipt's own time still says the evening before.
    assert first["published_at"] == "2026-03-03T02:30:00.000Z" and receipt["processed_at"] == "2026-03-02T21:30:00.000Z"
    # The redelivery: a new published_at and an extra envelope field, the same payload.
    assert again["published_at"] == "2026-03-03T04:30:00.000Z" and again["republished"] is True
    assert again["payload"] == first["payload"] and "republished" not in first
    keys = {parse_newstore_event(json.dumps(e).encode()).dedup_key for e in (first, again)}
    assert len(keys) == 1


def test_cancelled_items_release_allocations_and_leave_on_hand(ns_estate: Estate) -> None:
    state = NewStoreState(ns_estate, tenant="t")
    sku = _dc_sku(ns_estate)
    body = {"external_id": "W-1", "shop": "storefront", "shop_locale": "en-GB", "channel_type": "web",
            "channel_name": "centra", "currency": "SEK", "price_method": "tax_included",
            "shipping_address": {"address_line_1": "x", "country": "SE"},
            "shipments": [{"items": [{"external_item_id": "W-1-1", "product_id": sku,
                                      "price": {"item_price": 100.0, "item_list_price": 100.0, "item_tax_lines": [],
                                                "item_discount_info": [], "item_order_discount_info": []}}],
                           "shipping_option": {"service_level_identifier": "STANDARD", "price": 0, "tax": 0}}],
            "payments": [{"type": "captured", "amount": 100.0, "method": "credit_card", "processor": "adyen",
                          "correlation_ref": "p1", "processed_at": "2026-03-02T09:00:00Z"}]}
    order = state.fulfill_order(body)
    item_id = order["items"][0]["id"]
    node = state.fulfillment_requests(order["id"])["fulfillment_requests"][0]["fulfillment_node_id"]
    before = state.stock_record(node, sku)
    payload = state.cancel_items(order["id"], [item_id], at=T0)
    after = state.stock_record(node, sku)
    assert payload == {"id": order["id"], "items": [{"id": item_id, "product_id": sku}]}
    assert after["on_hand"] == before["on_hand"] and after["allocations"] == before["allocations"] - 1
    assert state.events_published()[-1]["name"] == "order.items_cancelled"
