"""NewStore connector against the simulator over real loopback HTTP (auth, retries, typed results, spec)."""

from __future__ import annotations

import pytest

from pipelines.connectors.errors import AuthError, TransientError
from pipelines.connectors.newstore import (
    FulfillmentRequest,
    NewStoreAPIError,
    NewStoreClient,
    NotFound,
    OrderConflict,
    PosStock,
    SalesOrder,
)
from pipelines.estate.model import Estate
from pipelines_tests.newstore_fixtures import (  # noqa: F401
    API_KEY,
    CLIENT_ID,
    EventReceiver,
    ServedNewStore,
    fixture_ns_estate,
    fixture_ns_served,
    fixture_receiver,
    injection_payload,
)
from pipelines_tests.openapi_support import SwaggerSpecs, validate_exchanges


def _dc_sku(estate: Estate, n: int = 0) -> str:
    return [s for s, q in estate.initial_stock["DC01"].items() if q >= 5][n]


def _token_requests(served: ServedNewStore) -> int:
    return sum(1 for e in served.sim.controls.exchanges() if e.path.endswith("/openid-connect/token"))


def _statuses(served: ServedNewStore, path_prefix: str) -> list[int]:
    return [e.status for e in served.sim.controls.exchanges() if e.path.startswith(path_prefix)]


def test_token_is_cached_refreshed_on_403_and_bad_secret_raises(ns_served: ServedNewStore) -> None:
    with ns_served.client() as client:
        assert {loc.id for loc in client.locations()} == {"DC01", "SE01", "SE02", "SE03"}
        client.locations()
        assert _token_requests(ns_served) == 1
        ns_served.sim.controls.expire_tokens()
        assert len(client.locations()) == 4  # 403 -> new token -> same request again
        assert _token_requests(ns_served) == 2
        assert _statuses(ns_served, "/v0/locations") == [200, 200, 403, 200]
    bad = NewStoreClient(ns_served.url, ns_served.sim.tenant, CLIENT_ID, "wrong-secret", backoff_base_s=0.01)
    with bad, pytest.raises(AuthError):
        bad.locations()


def test_token_refreshed_before_expiry(ns_served: ServedNewStore) -> None:
    now = [1000.0]
    with ns_served.client(clock=lambda: now[0]) as client:
        client.locations()
        now[0] += 3600 - 61  # just before the refresh point (expires_in 3600, refreshed 60 s early)
        client.locations()
        assert _token_requests(ns_served) == 1
        now[0] += 2
        client.locations()
        assert _token_requests(ns_served) == 2
    assert _statuses(ns_served, "/v0/locations") == [200, 200, 200]  # refreshed proactively, never refused


def test_429_retry_after_is_honoured_and_nothing_is_lost(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    ns_served.sim.controls.fail_next(2, 429, path="/v0/d/fulfill_order", retry_after=0)
    with ns_served.client(sleep=sleep) as client:
        ids = client.fulfill_order(injection_payload(ns_estate, "R-429", [_dc_sku(ns_estate)]))
    assert _statuses(ns_served, "/v0/d/fulfill_order") == [429, 429, 200]
    assert len(sleeps) == 2 and all(s < 1 for s in sleeps)
    assert len(ns_served.sim.state.events_published("order.created")) == 1 and ids["external_id"] == "R-429"

    ns_served.sim.controls.fail_next(1, 429, path="/stores", retry_after=7)
    sleeps.clear()
    with ns_served.client(sleep=sleep) as client:
        assert len(client.stores()) == 3
    assert len(sleeps) == 1 and sleeps[0] >= 7  # waited what the server asked for


def test_tenant_bucket_throttling_loses_nothing(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    ns_served.sim.controls.set_rate_limits(tenant_rate=2, burst=3)
    sku = _dc_sku(ns_estate)
    with ns_served.client() as client:
        results = [client.fulfill_order(injection_payload(ns_estate, f"B-{i}", [sku])) for i in range(6)]
    assert [r["external_id"] for r in results] == [f"B-{i}" for i in range(6)]
    assert 429 in _statuses(ns_served, "/v0/d/fulfill_order")
    assert len(ns_served.sim.state.events_published("order.created")) == 6


def test_forced_5xx_retried_then_surface_as_transient(ns_served: ServedNewStore) -> None:
    ns_served.sim.controls.fail_next(2, 500, path="/v0/locations")
    with ns_served.client() as client:
        assert len(client.locations()) == 4
        assert _statuses(ns_served, "/v0/locations") == [500, 500, 200]
    ns_served.sim.controls.fail_next(10, 503, path="/v0/locations")
    with ns_served.client(max_attempts=3) as client, pytest.raises(TransientError):
        client.locations()
    ns_served.sim.controls.clear_faults()


def test_fulfill_order_idempotency_conflict_and_504(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    sku = _dc_sku(ns_estate)
    payload = injection_payload(ns_estate, "C-1", [sku, sku])
    with ns_served.client() as client:
        first = client.fulfill_order(payload)
        assert client.fulfill_order(payload) == first
        with pytest.raises(OrderConflict) as err:
            client.fulfill_order(injection_payload(ns_estate, "C-1", [sku]))
        assert err.value.error_code == "same_order_injection_with_different_data" and err.value.status == 409
        ns_served.sim.controls.fail_next(1, 504, path="/v0/d/fulfill_order", after_processing=True)
        second = client.fulfill_order(injection_payload(ns_estate, "C-2", [sku]))
        assert client.get_order("C-2", id_type="external").id == second["id"]
        bad = injection_payload(ns_estate, "C-3", [sku])
        bad["shipments"][0]["items"][0]["product_id"] = "NOPE"
        with pytest.raises(NewStoreAPIError) as invalid:
            client.fulfill_order(bad)
        assert invalid.value.status == 400 and invalid.value.error_code == "product_not_found"
    assert len(ns_served.sim.state.events_published("order.created")) == 2


def test_get_order_by_internal_and_external_id(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    sku = _dc_sku(ns_estate)
    sale = ns_served.sim.state.record_store_sale("SE02", [{"sku": sku, "quantity": 2, "unit_price": 250.0,
                                                           "discount": 25.0}])
    with ns_served.client() as client:
        ids = client.fulfill_order(injection_payload(ns_estate, "C-10", [sku]))
        web = client.get_order(ids["id"])
        assert isinstance(web, SalesOrder)
        assert client.get_order("C-10", id_type="external") == web
        assert (web.origin, web.origin_id, web.channel_type, web.status) == ("external", "C-10", "web", "open")
        pos = client.get_order(sale["external_id"], id_type="external")
        assert (pos.origin, pos.channel_type, pos.status, pos.store_id) == ("newstore", "store", "closed", "ST-SE02")
        assert pos.total == 450.0 and pos.tax == 90.0 and {i.status for i in pos.items} == {"complete"}
        assert {i.fulfillment_group_type for i in pos.items} == {"IN_STORE_HANDOVER"}
        with pytest.raises(NotFound):
            client.get_order("missing")
        client.cancel_order(ids["id"], "customer changed mind")
        assert client.get_order(ids["id"]).status == "closed"


def test_fulfillment_request_state_changes(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    sku = _dc_sku(ns_estate)
    state = ns_served.sim.state
    on_hand = state.on_hand("DC01", sku)
    with ns_served.client() as client:
        ids = client.fulfill_order(injection_payload(ns_estate, "C-20", [sku, sku, sku]))
        (fr,) = client.fulfillment_requests(ids["id"])
        assert isinstance(fr, FulfillmentRequest) and fr.status == "dispatched" and len(fr.items) == 3
        items = [i.item_id for i in fr.items]
        client.set_items_states(fr.fulfillment_request_id, [{"item_id": items[0], "state": "shipped"}],
                                carrier="postnord", tracking_code="PN1")
        (fr,) = client.fulfillment_requests(ids["id"])
        assert fr.status == "partially_completed"
        assert (fr.items[0].status, fr.items[0].carrier, fr.items[0].tracking_code) == ("shipped", "postnord", "PN1")
        with pytest.raises(NewStoreAPIError) as err:
            client.set_items_states(fr.fulfillment_request_id, [(items[0], "shipped")])
        assert err.value.error_code == "already_shipped"
        client.set_items_states(fr.fulfillment_request_id, [(items[1], "shipped"), (items[2], "shipped")])
        (fr,) = client.fulfillment_requests(ids["id"])
        assert fr.status == "completed" and {i.status for i in fr.items} == {"shipped"}
        assert client.get_order(ids["id"]).status == "closed"
        assert client.fulfillment_requests("unknown-order") == []
    assert state.on_hand("DC01", sku) == on_hand - 3 and state.stock_record("DC01", sku)["allocations"] == 0


def test_stocked_products_paging_atp_and_insights(ns_served: ServedNewStore, ns_estate: Estate) -> None:
    state = ns_served.sim.state
    sku = _dc_sku(ns_estate)
    state.set_safety_stock("DC01", sku, 1)
    with ns_served.client(page_size=50) as client:
        client.fulfill_order(injection_payload(ns_estate, "C-30", [sku, sku]))
        rows = client.stocked_products()
        assert len(rows) == 240 and all(isinstance(r, PosStock) for r in rows)
        assert _statuses(ns_served, "/_/v0/hq/stocked_products") == [200] * 5
        row = next(r for r in rows if (r.fulfillment_node_id, r.sku) == ("DC01", sku))
        assert row.product_id == sku and row.allocations == 2 and row.safety_stock == 1
        assert row.atp == row.on_hand - 2 - 1 == state.atp("DC01", sku)
        store_rows = client.stocked_products(["SE01", "SE03"])
        assert len(store_rows) == 120 and {r.fulfillment_node_id for r in store_rows} == {"SE01", "SE03"}
        assert all(r.on_hand == ns_estate.initial_stock[r.fulfillment_node_id][r.sku] for r in store_rows)
        atp = client.atp([(sku, "DC01"), {"product_id": sku, "fulfillment_node_id": "SE01"}])
        assert [a.atp for a in atp] == [row.atp, state.atp("SE01", sku)]
        insights = client.stock_insights(sku, "DC01")
        assert len(insights.allocations) == 2 and insights.reservations == ()
        assert [s.id for s in client.stores(page_size=2)] == ["ST-SE01", "ST-SE02", "ST-SE03"]
        assert _statuses(ns_served, "/stores") == [200, 200]


def test_create_return_and_register_eventstream(ns_served: ServedNewStore, ns_estate: Estate,
                                                receiver: EventReceiver) -> None:
    state = ns_served.sim.state
    sku = ns_estate.skus()[2]
    with ns_served.client() as client:
        registered = client.register_eventstream("pipelines", receiver.url, API_KEY)
        assert registered["status"] == "running" and registered["id"] == "pipelines"
        again = client.register_eventstream("pipelines", receiver.url, API_KEY)  # exists already: no error
        assert again["status"] == "running"
        sale = state.record_store_sale("SE03", [{"sku": sku, "quantity": 1, "unit_price": 400.0, "discount": 0}])
        before = state.on_hand("SE03", sku)
        result = client.create_return(sale["id"], [sku], returned_from="SE03")
        assert result.total_refund_amount == 400.0 and result.order_id == sale["id"] and len(result.items) == 1
        assert state.on_hand("SE03", sku) == before + 1
    assert ns_served.sim.flush(10)
    assert receiver.names() == ["order.created", "order.opened", "order.completed", "return.processed",
                                "refund_request.issued", "payment_account.amount_refunded"]
    assert len(state.list_integrations()) == 1


def test_connector_requests_and_simulator_responses_match_specs(ns_served: ServedNewStore,
                                                                ns_estate: Estate) -> None:
    specs = SwaggerSpecs.load()
    sku = _dc_sku(ns_estate)
    with ns_served.client() as client:
        ids = client.fulfill_order(injection_payload(ns_estate, "C-40", [sku, sku]))
        client.get_order(ids["id"])
        client.get_order("C-40", id_type="external")
        (fr,) = client.fulfillment_requests(ids["id"])
        client.set_items_states(fr.fulfillment_request_id, [(fr.items[0].item_id, "shipped")], carrier="dhl",
                                tracking_code="D1")
        client.set_items_states(fr.fulfillment_request_id, [(fr.items[1].item_id, "rejected")])
        client.fulfillment_requests(ids["id"])
        client.stock_insights(sku, "DC01")
        client.stores(page_size=2)
        other = client.fulfill_order(injection_payload(ns_estate, "C-41", [sku]))
        client.cancel_order(other["id"], "fraud", note="manual review")
    exchanges = [e for e in ns_served.sim.controls.exchanges() if not e.path.endswith("/token")]
    checked, errors = validate_exchanges(specs, exchanges)
    assert errors == []
    assert checked >= 11
