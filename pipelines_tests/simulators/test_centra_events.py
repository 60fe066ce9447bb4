"""Centra's events system in the simulator, over loopback HTTP: the queue an integration polls.

Oracles are the world API's own answers (order numbers, shipment and return ids) and the documented
rules (docs "Events system"): oldest unconfirmed first, kept until confirmed, one queue per integration
name, unset deletes queued events, `object` is the current state and null for DELETED.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.simulators.centra import CentraState, create_app
from pipelines.simulators.serving import BackgroundServer, serve
from pipelines_tests.centra_fixtures import ManualClock, gql, small_estate

ERP, ERP_2, BI = "erp-token", "erp-token-2", "bi-token"
READER, NO_EVENTS = "events-read-only", "orders-only"
MARKET = 1

Q_EVENTS = """query($where: EventFilter, $limit: Int) { events(where: $where, limit: $limit) {
  id objectType changeType objectReference createdAt store { id } market { id } } }"""
M_SET = """mutation($input: [EventListenerSetInput!]!) { setEventListeners(input: $input) {
  eventListeners { integrationName objectType changeTypes createdAt updatedAt } userErrors { message } } }"""
M_UNSET = """mutation($input: [EventListenerUnsetInput!]!) { unsetEventListeners(input: $input) {
  eventListeners { objectType changeTypes } userErrors { message } } }"""
M_CONFIRM = """mutation($ids: [Int!]!) { confirmEvents(input: {eventsIds: $ids}) {
  events { id } userErrors { message } userWarnings { message path } } }"""
Q_LISTENERS = "{ eventListeners { integrationName objectType changeTypes } }"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> CentraState:
    return CentraState(small_estate(), clock=clock, event_integrations={ERP: "erp", ERP_2: "erp", BI: "bi"})


@pytest.fixture
def server(state: CentraState) -> Iterator[BackgroundServer]:
    tokens = {ERP: None, ERP_2: None, BI: None, READER: ["Event:read"], NO_EVENTS: ["Order:read"]}
    with serve(create_app(state, tokens=tokens)) as srv:
        yield srv


def ok(server: BackgroundServer, query: str, variables: dict[str, Any] | None = None, *,
       token: str = ERP) -> dict[str, Any]:
    response = gql(server, query, variables, token=token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def listen(server: BackgroundServer, token: str = ERP, **types: list[str] | None) -> dict[str, Any]:
    inputs = [{"objectType": t} if c is None else {"objectType": t, "changeTypes": c} for t, c in types.items()]
    payload = ok(server, M_SET, {"input": inputs}, token=token)["setEventListeners"]
    assert payload["userErrors"] == []
    return payload


def events(server: BackgroundServer, token: str = ERP, **variables: Any) -> list[dict[str, Any]]:
    return ok(server, Q_EVENTS, variables, token=token)["events"]


def confirm(server: BackgroundServer, ids: list[int], token: str = ERP) -> dict[str, Any]:
    return ok(server, M_CONFIRM, {"ids": ids}, token=token)["confirmEvents"]


def refs(evs: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["objectType"], e["changeType"], e["objectReference"]) for e in evs]


def _sku(state: CentraState, i: int = 0) -> str:
    return state.sizes[state.size_ids_sorted[i]].size.sku


def place(state: CentraState, i: int = 0) -> int:
    return state.place_order(MARKET, [(_sku(state, i), 1)], email=f"e{i}@example.com")["number"]


def test_oldest_unconfirmed_first_and_kept_until_confirmed(server: BackgroundServer, state: CentraState,
                                                           clock: ManualClock) -> None:
    """Kills: newest-first ordering, events dropped once fetched (at-most-once), confirm removing more or
    fewer than the ids given, `limit` ignored, a repeated confirm failing the whole call."""
    listen(server, Order=["CREATED"])
    numbers = []
    for i in range(3):
        numbers.append(place(state, i))
        clock.advance(minutes=1)
    first = events(server)
    assert refs(first) == [("Order", "CREATED", n) for n in numbers]
    assert [e["createdAt"] for e in first] == sorted(e["createdAt"] for e in first)
    assert [e["store"]["id"] for e in first] == [1, 1, 1] and first[0]["market"]["id"] == MARKET
    assert events(server) == first  # at-least-once: every fetch returns them again
    assert events(server, limit=1) == first[:1]

    done = confirm(server, [first[0]["id"], first[1]["id"]])
    assert sorted(e["id"] for e in done["events"]) == [first[0]["id"], first[1]["id"]]
    assert done["userErrors"] == [] and done["userWarnings"] == []
    assert events(server) == first[2:]

    again = confirm(server, [first[0]["id"], first[2]["id"]])  # one already confirmed, one not
    assert [e["id"] for e in again["events"]] == [first[2]["id"]]
    assert [w["path"] for w in again["userWarnings"]] == [["input", "eventsIds", "0"]]
    assert events(server) == []


def test_one_queue_per_integration_name(server: BackgroundServer, state: CentraState) -> None:
    """Kills: one global queue, a queue per token instead of per integration name, events queued for an
    integration before it listened, one integration confirming another's events."""
    listen(server, ERP, Order=None)
    before_bi = place(state, 0)
    listen(server, BI, Order=["CREATED"])
    after_bi = place(state, 1)

    erp = events(server, ERP)
    assert refs(erp) == [("Order", "CREATED", before_bi), ("Order", "CREATED", after_bi)]
    assert events(server, ERP_2) == erp  # same integration name, same queue
    bi = events(server, BI)
    assert refs(bi) == [("Order", "CREATED", after_bi)]
    assert bi[0]["id"] not in {e["id"] for e in erp}

    assert ok(server, Q_LISTENERS, token=ERP_2)["eventListeners"] == [
        {"integrationName": "erp", "objectType": "Order",
         "changeTypes": ["CREATED", "UPDATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED"]}]

    foreign = confirm(server, [erp[0]["id"]], token=BI)
    assert foreign["events"] == [] and len(foreign["userWarnings"]) == 1
    assert events(server, ERP) == erp
    confirm(server, [erp[0]["id"]], token=ERP_2)
    assert events(server, ERP) == erp[1:] and events(server, BI) == bi


def test_listeners_are_additive_and_unset_deletes_their_queued_events(server: BackgroundServer,
                                                                      state: CentraState) -> None:
    """Kills: setEventListeners replacing instead of adding, unset leaving queued events behind (or
    deleting other types' events), unset of some change types dropping the whole listener."""
    listen(server, Return=["CREATED"])
    payload = listen(server, Return=["COMPLETED"], Shipment=None, Order=None)
    by_type = {r["objectType"]: r["changeTypes"] for r in payload["eventListeners"]}
    assert by_type["Return"] == ["CREATED", "COMPLETED"]
    assert by_type["Shipment"] == ["CREATED", "UPDATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED"]

    number = place(state)
    state.confirm_order(number)
    shipment = state.create_shipment(number, None)
    state.update_shipment(shipment.id, is_paid=True)
    queued = refs(events(server))
    assert ("Shipment", "UPDATED", shipment.id) in queued and ("Shipment", "CREATED", shipment.id) in queued

    unset = ok(server, M_UNSET, {"input": [{"objectType": "Shipment", "changeTypes": ["UPDATED"]}]})
    assert unset["unsetEventListeners"]["eventListeners"] == [
        {"objectType": "Shipment", "changeTypes": ["CREATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED"]}]
    assert refs(events(server)) == [r for r in queued if r != ("Shipment", "UPDATED", shipment.id)]

    gone = ok(server, M_UNSET, {"input": [{"objectType": "Order"}]})["unsetEventListeners"]
    assert gone["eventListeners"] == []  # only affected listeners that still exist
    assert [r for r in refs(events(server)) if r[0] == "Order"] == []
    assert [r for r in refs(events(server)) if r[0] == "Shipment"] == [("Shipment", "CREATED", shipment.id)]
    assert {r["objectType"] for r in ok(server, Q_LISTENERS)["eventListeners"]} == {"Return", "Shipment"}
    state.confirm_order(place(state, 1))
    assert [r for r in refs(events(server)) if r[0] == "Order"] == []  # no listener, nothing queued


def test_world_changes_produce_the_documented_events(server: BackgroundServer, state: CentraState) -> None:
    """Kills: a missing or wrong (objectType, changeType) for a change, COMPLETED sent as UPDATED,
    objectReference = order id instead of number (documented) or a wrong shipment/return id."""
    listen(server, Order=None, Shipment=None, Return=None)
    number = place(state)
    state.confirm_order(number)
    shipment = state.create_shipment(number, None, is_good_to_go=True)
    state.capture_shipment(shipment.id)
    state.complete_shipment(shipment.id)
    ret = state.create_return(number, [(_sku(state), 1)])  # creates, completes and refunds
    assert refs(events(server)) == [
        ("Order", "CREATED", number), ("Order", "UPDATED", number),  # place, confirm
        ("Shipment", "CREATED", shipment.id), ("Order", "UPDATED", number),  # createShipment
        ("Shipment", "UPDATED", shipment.id),  # capture
        ("Order", "COMPLETED", number), ("Shipment", "COMPLETED", shipment.id),  # completeShipment
        ("Return", "CREATED", ret["id"]), ("Order", "UPDATED", number),  # createReturn
        ("Order", "UPDATED", number), ("Return", "COMPLETED", ret["id"]),  # completeReturn
        ("Order", "UPDATED", number),  # refund
    ]


def test_an_order_capture_updates_its_shipments(server: BackgroundServer, state: CentraState) -> None:
    """Kills: a captureOrder that captures the shipments without announcing them, or announcing one twice."""
    listen(server, Shipment=["UPDATED"])
    number = place(state)
    state.confirm_order(number)
    shipment = state.create_shipment(number, None)
    state.capture_order(number)
    assert refs(events(server)) == [("Shipment", "UPDATED", shipment.id)]


def test_object_is_the_current_state_and_null_for_deleted(server: BackgroundServer, state: CentraState) -> None:
    """Kills: `object` as a snapshot taken at publication, a DELETED event carrying an object, the union
    resolving to the wrong type (docs' `... on Order` fragments through the Order interface)."""
    listen(server, Order=["CREATED"], Shipment=None)
    number = place(state)
    state.confirm_order(number)
    shipment = state.create_shipment(number, None)
    state.cancel_order(number)  # drops the open shipment
    q = """{ events { objectType changeType objectReference object { __typename
      ... on Order { number status } ... on Shipment { id shipmentNumber: number } } } }"""
    evs = ok(server, q)["events"]
    assert [(e["objectType"], e["changeType"]) for e in evs] == [
        ("Order", "CREATED"), ("Shipment", "CREATED"), ("Shipment", "DELETED")]
    assert evs[0]["object"] == {"__typename": "DirectToConsumerOrder", "number": number, "status": "CANCELLED"}
    assert evs[1]["object"] is None and evs[2]["object"] is None  # the shipment no longer exists
    assert evs[2]["objectReference"] == shipment.id


def test_filters_by_type_store_and_market(server: BackgroundServer, state: CentraState) -> None:
    """Kills: filters ignored, a store filter matching events without a store, AND/OR of filters mixed up."""
    listen(server, Order=None, Product=None)
    number = place(state)
    state.confirm_order(number)
    state.record_change("Product", "UPDATED", next(iter(state.products)))  # no store, no market
    assert refs(events(server, where={"changeType": ["UPDATED"], "objectType": ["Order"]})) == [
        ("Order", "UPDATED", number)]
    assert len(events(server, where={"storeId": [1]})) == 2
    assert events(server, where={"storeId": [2]}) == []
    assert len(events(server, where={"marketId": [MARKET], "changeType": ["CREATED"]})) == 1
    product = ok(server, "{ events(where: {objectType: [Product]}) { store { id } object { ... on Product { id } } } }")
    assert product["events"] == [{"store": None, "object": {"id": next(iter(state.products))}}]


def test_permissions_and_limits(server: BackgroundServer, state: CentraState) -> None:
    """Kills: the queue readable without Event:read, confirmable without Event:write (and confirming
    anyway), a limit above 200 accepted."""
    listen(server, Order=None)
    place(state)
    denied = gql(server, Q_EVENTS, token=NO_EVENTS).json()
    assert denied["data"] is None
    assert denied["errors"][0]["message"] == "You need Event:read permission to access events."
    assert denied["errors"][0]["extensions"]["category"] == "authorization"

    queued = events(server)
    reader = gql(server, M_CONFIRM, {"ids": [queued[0]["id"]]}, token=READER).json()
    assert reader["errors"][0]["message"] == "You need Event:write permission to access confirmEvents."
    assert events(server) == queued
    assert ok(server, "{ events { id } }", token=READER)["events"] == []  # the default integration's queue
    too_many = gql(server, Q_EVENTS, {"limit": 201}, token=ERP).json()
    assert too_many["errors"][0]["message"] == "Limit must be in range 1 - 200"


def test_late_publication_and_duplicates(server: BackgroundServer, state: CentraState, clock: ManualClock) -> None:
    """The fault knobs. Kills: a late event visible before its createdAt, createdAt not moved on, a
    duplicate sharing its twin's id (confirming one would then confirm both)."""
    listen(server, Order=["CREATED"])
    state.set_event_faults(delay_s=90)
    changed_at = clock.now
    number = place(state)
    assert events(server) == []
    clock.advance(seconds=89)
    assert events(server) == []
    clock.advance(seconds=1)
    [late] = events(server)
    assert late["objectReference"] == number
    assert late["createdAt"] == (changed_at.replace(microsecond=0) + (clock.now - changed_at)).isoformat()

    confirm(server, [late["id"]])
    state.set_event_faults(delay_s=0, duplicate_rate=1.0)
    twin = place(state, 1)
    dup = events(server)
    assert refs(dup) == [("Order", "CREATED", twin)] * 2 and dup[0]["id"] != dup[1]["id"]
    confirm(server, [dup[0]["id"]])
    assert events(server) == dup[1:]


def test_the_documented_operations_run_in_the_docs_order(server: BackgroundServer, state: CentraState) -> None:
    """Every events-system operation of the docs page (verbatim, from the documented-operations fixture) runs
    without `errors` or `userErrors`, with the documented effects. Kills: a documented argument or field the
    simulator rejects, unset not removing Return, events queued for a type nobody listens to (Shipment)."""
    fixture = json.loads((Path(__file__).with_name("centra_documented_ops.json")).read_text(encoding="utf-8"))
    ops = {op["name"]: "\n\n".join([op.get("repaired_text") or op["text"], *(f["text"] for f in op.get("fragments", []))])
           for op in fixture["operations"] if op["doc"].endswith("08.events-system/docs.md") and op["scope"] == "in"}
    assert set(ops) >= {"setEventListeners", "unsetEventListeners", "eventListeners", "productEvents",
                        "eventsInSingleQuery", "multipleQueries", "completedEventsOfSpecificStoreAndMarket",
                        "confirmEvents"}

    def run(name: str) -> dict[str, Any]:
        result = ok(server, ops[name])
        for payload in result.values():
            assert not (isinstance(payload, dict) and payload.get("userErrors")), payload
        return result

    run("setEventListeners")
    set_types = {r["objectType"]: r["changeTypes"] for r in run("eventListeners")["eventListeners"]}
    assert set_types["Return"] == ["CREATED", "COMPLETED"] and set_types["AdminUser"] == ["DELETED"]
    assert set_types["ProductVariant"] == ["DELETED", "DEPENDENT_DATA_CHANGED"] and len(set_types["Order"]) == 5
    run("unsetEventListeners")
    assert "Return" not in {r["objectType"] for r in run("eventListeners")["eventListeners"]}

    number = place(state)
    state.confirm_order(number)
    shipment = state.create_shipment(number, None)
    state.complete_shipment(shipment.id)
    product = next(iter(state.products))
    state.record_change("Product", "UPDATED", product)
    assert [e["object"]["id"] for e in run("productEvents")["events"]] == [product]
    # The changes this test made, each once, of the objects listened to (the docs' listeners: no Shipment).
    got = Counter((e["objectType"], e["changeType"]) for e in run("eventsInSingleQuery")["events"])
    assert {("Order", "CREATED"), ("Order", "COMPLETED"), ("Product", "UPDATED")} <= set(got)
    assert got[("Order", "CREATED")] == 1 and not any(kind == "Shipment" for kind, _ in got)
    both = run("multipleQueries")
    assert len(both["productEvents"]) == 1 and both["collectionEvents"] == []
    assert run("completedEventsOfSpecificStoreAndMarket")["events"] == []  # the example's market 2 does not exist
    where = {"objectType": ["Order", "Shipment", "Return"], "changeType": ["COMPLETED"], "storeId": 1, "marketId": 1}
    assert refs(events(server, where=where)) == [("Order", "COMPLETED", number)]  # no Shipment listener
    before = {e.id for e in state.pending_events("erp")}
    run("confirmEvents")  # eventsIds: [1, 2, 3, 100]
    assert {e.id for e in state.pending_events("erp")} == before - {1, 2, 3, 100}
