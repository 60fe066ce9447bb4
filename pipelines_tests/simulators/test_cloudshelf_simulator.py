"""Cloudshelf simulator over loopback HTTP: auth, upserts and queries, per-location stock levels and what a shopper
sees, kiosk orders and `upsertOrders`, order webhooks (retries, duplicates, reorder, drop), 429 + Retry-After.

Oracles: the values each test upserts itself, Cloudshelf's documented enums (UserErrorCode, OrderStatus in
cloudshelf.ts) and the rules in cs_design.md / PROVENANCE.md (visibility = availableToPurchase and quantity above
the safety stock), never the simulator's own helpers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.simulators.cloudshelf import CloudshelfInputError, CloudshelfSimulator
from pipelines.simulators.serving import BackgroundServer

KEY = "test-key"
LOC_A = "gid://external/Store/S01"
LOC_B = "gid://external/Store/S02"
PRODUCT = "gid://external/CentraProduct/100"
VAR_1 = "gid://external/CentraVariant/SKU-1"
VAR_2 = "gid://external/CentraVariant/SKU-2"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Receiver:
    """A loopback webhook endpoint that records bodies and fails the first `fail_first` requests with 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.hits = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()

        async def hook(request: Request) -> JSONResponse:
            body = await request.json()
            with self.lock:
                self.hits += 1
                if self.hits <= self.fail_first:
                    return JSONResponse({"error": "down"}, status_code=500)
                self.bodies.append(body)
            return JSONResponse({"ok": True})

        self.server = BackgroundServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"


@pytest.fixture(name="receiver")
def fixture_receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.server.start()
    yield rec
    rec.server.stop()


def gql(url: str, query: str, variables: dict[str, Any] | None = None, key: str | None = KEY,
        scheme: str = "token") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {key}"} if key is not None else {}
    return httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers,
                      timeout=10)


def data(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert "errors" not in body, body
    return body["data"]


UPSERT_LOCATIONS = "mutation($input: [LocationInput!]!) { upsertLocations(input: $input) { locations { id address } " \
                   "userErrors { code message } } }"
UPSERT_PRODUCTS = "mutation($input: [ProductInput!]!) { upsertProducts(input: $input) { products { id } " \
                  "userErrors { code message } } }"
UPSERT_VARIANTS = "mutation($inputs: [UpsertVariantsInput!]!) { upsertProductVariants(inputs: $inputs) { " \
                  "productVariants { id sku } userErrors { code message } } }"
UPSERT_STOCK = "mutation($input: [StockLevelInput!]!) { upsertStockLevels(input: $input) { stockLevels { id isInStock }" \
               " userErrors { code message } } }"
UPSERT_ORDERS = "mutation($input: [OrderInput!]!) { upsertOrders(input: $input) { orders { id status thirdPartyId " \
                "lines { id customAttributes { key value } } } userErrors { code message } } }"
REGISTER = "mutation($inputs: [WebhookRegisterInput!]!) { registerWebhook(inputs: $inputs) { webhooks { id subject url }" \
           " userErrors { code message } } }"


def seed_catalogue(url: str) -> None:
    """Two locations, one product with two variants (SKU-1 for sale at 199.0, SKU-2 not for sale)."""
    out = data(gql(url, UPSERT_LOCATIONS, {"input": [
        {"id": LOC_A, "displayName": "Store A", "countryCode": "SE", "address1": "Drottninggatan 1", "city": "Stockholm"},
        {"id": LOC_B, "displayName": "Store B", "countryCode": "NO"}]}))["upsertLocations"]
    assert out["userErrors"] == []
    assert out["locations"][0]["address"] == "Drottninggatan 1, Stockholm"
    assert data(gql(url, UPSERT_PRODUCTS, {"input": [{"id": PRODUCT, "displayName": "Linen shirt"}]}))[
        "upsertProducts"]["userErrors"] == []
    out = data(gql(url, UPSERT_VARIANTS, {"inputs": [{"productId": PRODUCT, "variants": [
        {"id": VAR_1, "sku": "SKU-1", "displayName": "M", "currentPrice": 199.0, "originalPrice": 249.0,
         "availableToPurchase": True, "isInStock": True},
        {"id": VAR_2, "sku": "SKU-2", "displayName": "L", "currentPrice": 199.0, "originalPrice": 249.0,
         "availableToPurchase": False, "isInStock": False}]}]}))["upsertProductVariants"]
    assert out["userErrors"] == [] and [v["sku"] for v in out["productVariants"]] == ["SKU-1", "SKU-2"]


@pytest.fixture(name="sim")
def fixture_sim() -> Iterator[tuple[CloudshelfSimulator, str]]:
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=0, safety_stock=1,
                              webhook_options={"backoff_s": 0.01, "seed": 3})
    with sim.serve() as srv:
        seed_catalogue(srv.url)
        yield sim, srv.url


def test_a_missing_or_wrong_key_is_refused_with_401() -> None:
    """Kills: an API that answers without the `Authorization: token <key>` header, with another key, or with the
    Bearer scheme; and one that refuses the SFCC connector's capitalised `Token` scheme."""
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=0)
    query = "{ products(first: 1) { totalCount } }"
    with sim.serve() as srv:
        assert gql(srv.url, query, key=None).status_code == 401
        assert gql(srv.url, query, key="other").status_code == 401
        assert gql(srv.url, query, scheme="Bearer").status_code == 401
        assert data(gql(srv.url, query, scheme="Token"))["products"]["totalCount"] == 0


def test_upserted_catalogue_reads_back_and_pages(sim: tuple[CloudshelfSimulator, str]) -> None:
    """Kills: upserts that drop fields, an update that creates a duplicate instead of changing the entity, and
    cursor paging that repeats or skips products."""
    _, url = sim
    extra = [{"id": f"gid://external/CentraProduct/{n}", "displayName": f"P{n}"} for n in range(200, 205)]
    data(gql(url, UPSERT_PRODUCTS, {"input": extra}))
    data(gql(url, UPSERT_VARIANTS, {"inputs": [{"productId": PRODUCT, "variants": [
        {"id": VAR_1, "currentPrice": 149.0}]}]}))
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = data(gql(url, "query($after: String) { products(first: 2, after: $after) { edges { node { id "
                             "displayName productVariants { sku currentPrice originalPrice availableToPurchase } } } "
                             "pageInfo { endCursor hasNextPage } totalCount } }", {"after": after}))["products"]
        assert page["totalCount"] == 6
        seen += [e["node"]["id"] for e in page["edges"]]
        for edge in page["edges"]:
            if edge["node"]["id"] == PRODUCT:
                assert edge["node"]["displayName"] == "Linen shirt"
                assert edge["node"]["productVariants"][0] == {"sku": "SKU-1", "currentPrice": 149.0,
                                                              "originalPrice": 249.0, "availableToPurchase": True}
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted([PRODUCT] + [p["id"] for p in extra])
    assert len(seen) == len(set(seen))


def test_stock_levels_decide_visibility_per_location(sim: tuple[CloudshelfSimulator, str]) -> None:
    """Kills: visibility that ignores the safety stock (1 here), the location, or availableToPurchase; a stock
    level's isInStock computed otherwise; a later upsert that does not replace the quantity."""
    simulator, url = sim
    out = data(gql(url, UPSERT_STOCK, {"input": [
        {"locationId": LOC_A, "productVariantId": VAR_1, "quantity": 1},
        {"locationId": LOC_B, "productVariantId": VAR_1, "quantity": 2},
        {"locationId": LOC_A, "productVariantId": VAR_2, "quantity": 9}]}))["upsertStockLevels"]
    assert out["userErrors"] == []
    assert [s["isInStock"] for s in out["stockLevels"]] == [False, True, True]
    assert simulator.visible(LOC_A, "SKU-1") is False  # 1 is not above safety stock 1
    assert simulator.visible(LOC_B, "SKU-1") is True
    assert simulator.visible(LOC_A, "SKU-2") is False  # in stock but not available to purchase
    assert simulator.visible(LOC_B, "SKU-2") is False  # no stock level there
    data(gql(url, UPSERT_STOCK, {"input": [{"locationId": LOC_A, "productVariantId": VAR_1, "quantity": 5}]}))
    assert simulator.stock_level(LOC_A, "SKU-1") == 5 and simulator.visible(LOC_A, "SKU-1") is True
    levels = data(gql(url, "{ products(first: 5) { edges { node { productVariants { sku stockLevels { isInStock "
                           "location { id } } } } } } }"))["products"]["edges"][0]["node"]["productVariants"]
    sku1 = next(v for v in levels if v["sku"] == "SKU-1")
    assert {(s["location"]["id"], s["isInStock"]) for s in sku1["stockLevels"]} == {(LOC_A, True), (LOC_B, True)}


def test_bad_stock_inputs_answer_user_errors_and_the_rest_applies(sim: tuple[CloudshelfSimulator, str]) -> None:
    """Kills: an unknown variant or location silently creating a level, a malformed GlobalId accepted, and one bad
    input failing the whole batch. Codes are Cloudshelf's UserErrorCode values."""
    simulator, url = sim
    out = data(gql(url, UPSERT_STOCK, {"input": [
        {"locationId": LOC_A, "productVariantId": "gid://external/CentraVariant/NOPE", "quantity": 3},
        {"locationId": "gid://external/Store/S99", "productVariantId": VAR_1, "quantity": 3},
        {"locationId": "S01", "productVariantId": VAR_1, "quantity": 3},
        {"locationId": LOC_A, "productVariantId": VAR_1, "quantity": 7}]}))["upsertStockLevels"]
    assert [e["code"] for e in out["userErrors"]] == ["ENTITY_NOT_FOUND", "ENTITY_NOT_FOUND", "ENTITY_INVALID_FIELD"]
    assert len(out["stockLevels"]) == 1
    assert simulator.stock_level(LOC_A, "SKU-1") == 7
    missing = data(gql(url, UPSERT_LOCATIONS, {"input": [{"id": "gid://external/Store/S03"}]}))["upsertLocations"]
    assert [e["code"] for e in missing["userErrors"]] == ["ENTITY_CREATION_MISSING_FIELD"]


def test_kiosk_order_reads_back_and_upsert_orders_updates_it(sim: tuple[CloudshelfSimulator, str]) -> None:
    """Kills: an order whose session lacks the location or fulfilment method, lines priced otherwise than the
    variant's currentPrice, `newThirdPartyId` not replacing thirdPartyId, line customAttributes not stored, and
    a senseless status change (VOIDED -> PAID) accepted."""
    simulator, url = sim
    data(gql(url, UPSERT_STOCK, {"input": [{"locationId": LOC_A, "productVariantId": VAR_1, "quantity": 4}]}))
    gid = simulator.kiosk_order(LOC_A, [(VAR_1, 2)], fulfilment_method="home-express", email="kim@example.com",
                                attributes={"address1": "Storgatan 2"}, currency="SEK")
    node = data(gql(url, "query($id: GlobalId!) { order(id: $id) { id status thirdPartyId lines { id "
                         "productVariantId quantity price currencyCode } session { locationId fulfilmentMethod "
                         "basketCurrencyCode basketValue } } }", {"id": gid}))["order"]
    assert node["status"] == "PAID" and node["thirdPartyId"] is None
    assert node["session"] == {"locationId": LOC_A, "fulfilmentMethod": "home-express", "basketCurrencyCode": "SEK",
                               "basketValue": 398.0}
    [line] = node["lines"]
    assert (line["productVariantId"], line["quantity"], line["price"], line["currencyCode"]) == (VAR_1, 2, 199.0, "SEK")
    out = data(gql(url, UPSERT_ORDERS, {"input": [{"id": gid, "newThirdPartyId": "C-1001", "lines": [
        {"id": line["id"], "customAttributes": [{"key": "fulfilmentStatus", "value": "shipped"}]}]}]}))["upsertOrders"]
    assert out["userErrors"] == []
    assert out["orders"][0]["thirdPartyId"] == "C-1001"
    assert out["orders"][0]["lines"][0]["customAttributes"] == [{"key": "fulfilmentStatus", "value": "shipped"}]
    assert data(gql(url, UPSERT_ORDERS, {"input": [{"id": gid, "status": "VOIDED"}]}))["upsertOrders"]["userErrors"] == []
    again = data(gql(url, UPSERT_ORDERS, {"input": [{"id": gid, "status": "PAID"}]}))["upsertOrders"]
    assert [e["code"] for e in again["userErrors"]] == ["ACTION_DISALLOWED"]
    assert simulator.order(gid).status == "VOIDED"
    unknown = data(gql(url, UPSERT_ORDERS, {"input": [{"id": "gid://cloudshelf/Order/none", "status": "PAID"}]}))
    assert [e["code"] for e in unknown["upsertOrders"]["userErrors"]] == ["ENTITY_NOT_FOUND"]


def test_take_home_needs_the_item_visible_at_the_store(sim: tuple[CloudshelfSimulator, str]) -> None:
    """Kills: a take-home (IMMEDIATE_PICKUP) sale of stock the store does not show, and a sale of a variant that is
    not available to purchase; a draft basket created as paid."""
    simulator, url = sim
    with pytest.raises(CloudshelfInputError):
        simulator.kiosk_order(LOC_A, [(VAR_1, 1)])  # no stock level at A yet
    with pytest.raises(CloudshelfInputError):
        simulator.kiosk_order(LOC_A, [(VAR_2, 1)], fulfilment_method="home-standard")
    data(gql(url, UPSERT_STOCK, {"input": [{"locationId": LOC_A, "productVariantId": VAR_1, "quantity": 3}]}))
    draft = simulator.kiosk_order(LOC_A, [(VAR_1, 1)], paid=False)
    assert simulator.order(draft).status == "DRAFT_BASKET"


def test_order_events_reach_the_registered_url_with_retries(receiver: Receiver) -> None:
    """Kills: events sent to an unregistered subject, a failed delivery not retried (the receiver fails twice,
    the third attempt lands), the payload missing the customer details, and a kiosk-side void not notified."""
    receiver.fail_first = 2
    clock = Clock()
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=0, clock=clock,
                              webhook_options={"attempts": 3, "backoff_s": 0.01})
    with sim.serve() as srv:
        seed_catalogue(srv.url)
        out = data(gql(srv.url, REGISTER, {"inputs": [{"subject": "OrderPaid", "url": receiver.url}]}))
        assert out["registerWebhook"]["userErrors"] == []
        gid = sim.kiosk_order(LOC_B, [(VAR_1, 1)], fulfilment_method="home-standard", email="a@example.com",
                              phone="+4670000000", attributes=[("city", "Oslo")])
        assert sim.flush(10)
        sim.set_order_status(gid, "VOIDED")
        assert sim.flush(10)
    assert receiver.hits == 4  # 2 failures, then PAID, then VOIDED
    assert receiver.bodies == [
        {"subject": "OrderPaid", "id": gid, "status": "PAID", "emailAddress": "a@example.com",
         "phoneNumber": "+4670000000", "attributes": [{"key": "city", "value": "Oslo"}]},
        {"subject": "OrderPaid", "id": gid, "status": "VOIDED", "emailAddress": "a@example.com",
         "phoneNumber": "+4670000000", "attributes": [{"key": "city", "value": "Oslo"}]}]
    assert sim.deliveries[0].attempts == 3 and sim.deliveries[0].statuses == [500, 500, 200]


def test_a_delivery_is_given_up_after_its_attempts(receiver: Receiver) -> None:
    """Kills: endless retries, or fewer attempts than configured."""
    receiver.fail_first = 100
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=0, webhook_options={"attempts": 3, "backoff_s": 0.01})
    with sim.serve() as srv:
        seed_catalogue(srv.url)
        data(gql(srv.url, REGISTER, {"inputs": [{"subject": "OrderPaid", "url": receiver.url}]}))
        sim.kiosk_order(LOC_B, [(VAR_1, 1)], fulfilment_method="home-standard")
        assert sim.flush(10)
    assert receiver.hits == 3 and receiver.bodies == []
    assert sim.deliveries[0].gave_up and not sim.deliveries[0].delivered


@pytest.mark.parametrize("knobs", [{"duplicate_rate": 1.0}, {"drop_rate": 1.0}, {"reorder": 8, "seed": 5}])
def test_fault_knobs_duplicate_drop_and_reorder(receiver: Receiver, knobs: dict[str, Any]) -> None:
    """Kills: knobs that do nothing: every event twice with duplicate_rate 1, none with drop_rate 1, and with a
    shuffle window of 8 the 8 queued events all arrive, in another order than they happened."""
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=0, webhook_options={"backoff_s": 0.01, **knobs})
    with sim.serve() as srv:
        seed_catalogue(srv.url)
        data(gql(srv.url, REGISTER, {"inputs": [{"subject": "OrderPaid", "url": receiver.url}]}))
        sim.stop()  # queue while the sender is stopped, so the shuffle window sees them all
        made = [sim.kiosk_order(LOC_B, [(VAR_1, 1)], fulfilment_method="home-standard") for _ in range(8)]
        sim.start()
        assert sim.flush(10)
    got = [b["id"] for b in receiver.bodies]
    if "duplicate_rate" in knobs:
        assert sorted(got) == sorted(made * 2)
    elif "drop_rate" in knobs:
        assert got == [] and all(d.dropped for d in sim.deliveries)
    else:
        assert sorted(got) == sorted(made) and got != made


def test_registering_a_non_loopback_url_is_refused() -> None:
    """Kills: a simulator that would deliver outside this machine."""
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=0)
    with sim.serve() as srv:
        out = data(gql(srv.url, REGISTER, {"inputs": [{"subject": "OrderPaid", "url": "http://10.1.2.3/hook"}]}))
    assert [e["code"] for e in out["registerWebhook"]["userErrors"]] == ["INVALID_ARGUMENT"]
    assert sim.state.webhooks == []


def test_rate_limit_answers_429_with_retry_after() -> None:
    """Kills: no limit at all, or a 429 without Retry-After (the client could not know how long to wait)."""
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=1)
    query = "{ products(first: 1) { totalCount } }"
    with sim.serve() as srv:
        first = gql(srv.url, query)
        second = gql(srv.url, query)
    assert first.status_code == 200
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1


CREATE_PAID = "mutation($input: CreatePaidOrderInput!) { createPaidOrder(input: $input) { success message " \
              "order { id taxLines { title } } } }"
ORDER = "query($id: GlobalId!) { order(id: $id) { status session { id fulfilmentMethod } } }"


def test_create_paid_order_pays_a_basket_once_and_notifies(receiver: Receiver) -> None:
    """The kiosk's own checkout over HTTP (CreatePaidOrderInput's documented fields). Kills: a basket left unpaid, the
    acquisition option not becoming the session's fulfilment method, the shopper's details not in the webhook, a
    retried attempt paying (and notifying) twice, a second attempt on a paid basket succeeding, a basket of another
    session paid."""
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=0, webhook_options={"backoff_s": 0.01})
    with sim.serve() as srv:
        seed_catalogue(srv.url)
        data(gql(srv.url, REGISTER, {"inputs": [{"subject": "OrderPaid", "url": receiver.url}]}))
        basket = sim.kiosk_order(LOC_A, [(VAR_1, 2)], fulfilment_method="home-standard", paid=False)
        session = data(gql(srv.url, ORDER, {"id": basket}))["order"]["session"]["id"]
        pay = {"basketId": basket, "sessionId": session, "attemptId": "att-1", "token": "tok",
               "acquisitionOptionId": sim.state.acquisition_option_gid("home-express"),
               "emailAddress": "k@example.com", "attributes": [{"key": "city", "value": "Malmö"}]}
        wrong_session = data(gql(srv.url, CREATE_PAID, {"input": {**pay, "sessionId": "gid://cloudshelf/Session/x"}}))
        assert wrong_session["createPaidOrder"]["success"] is False
        first = data(gql(srv.url, CREATE_PAID, {"input": pay}))["createPaidOrder"]
        again = data(gql(srv.url, CREATE_PAID, {"input": pay}))["createPaidOrder"]
        other = data(gql(srv.url, CREATE_PAID, {"input": {**pay, "attemptId": "att-2"}}))["createPaidOrder"]
        assert sim.flush(10)
        shown = data(gql(srv.url, ORDER, {"id": basket}))["order"]
    assert first == again == {"success": True, "message": None, "order": {"id": basket, "taxLines": []}}
    assert other["success"] is False and "PAID" in other["message"]
    assert shown == {"status": "PAID", "session": {"id": session, "fulfilmentMethod": "home-express"}}
    assert receiver.bodies == [{"subject": "OrderPaid", "id": basket, "status": "PAID", "emailAddress": "k@example.com",
                                "phoneNumber": None, "attributes": [{"key": "city", "value": "Malmö"}]}]
