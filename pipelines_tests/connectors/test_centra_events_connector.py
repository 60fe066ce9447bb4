"""The production side of Centra's events system (`pipelines.connectors.centra.events`) against the Centra
simulator over loopback HTTP, and against a loopback server answering malformed events.

Oracles: the simulated world's order numbers, the simulator's queue (`state.pending_events`) and the
mutations it counted (`mutations_charged`), and hand-written wire answers for the malformed cases.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.centra.events import (
    MAX_EVENTS,
    CentraEvent,
    confirm_events,
    decode_events,
    fetch_event_batch,
    fetch_events,
    set_event_listeners,
)
from pipelines.simulators.centra import CentraState, create_app
from pipelines.simulators.serving import serve
from pipelines_tests.centra_fixtures import T0, TOKEN, ManualClock, small_estate

ALL = ("CREATED", "UPDATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> CentraState:
    return CentraState(small_estate(), clock=clock)


@pytest.fixture
def app(state: CentraState) -> Starlette:
    return create_app(state, tokens=[TOKEN])


@pytest.fixture
def client(app: Starlette) -> Iterator[CentraClient]:
    with serve(app) as server, CentraClient(server.url, TOKEN, backoff_base_s=0.01) as c:
        yield c


def _place(state: CentraState, i: int) -> int:
    sku = state.sizes[state.size_ids_sorted[i]].size.sku
    return state.place_order(1, [(sku, 1)], email=f"c{i}@example.com")["number"]


def test_subscribe_fetch_and_confirm_only_what_was_stored(client: CentraClient, state: CentraState,
                                                          clock: ManualClock) -> None:
    """The consumer loop: fetch, store, confirm only what was stored. Kills: confirming the whole fetched
    batch when storing stopped midway (events lost), decoding objectReference from the wrong field, a
    created_at not in UTC ISO form, listeners not sent (nothing queued)."""
    assert set_event_listeners(client, ["Order"]) == {"Order": ALL}
    assert set_event_listeners(client, {"Shipment": ["COMPLETED"]}) == {"Shipment": ("COMPLETED",)}
    numbers = []
    for i in range(4):
        numbers.append(_place(state, i))
        clock.advance(seconds=30)

    first = fetch_events(client, limit=10)
    assert [(e.object_type, e.change_type, e.object_reference) for e in first] == [
        ("Order", "CREATED", n) for n in numbers]
    assert first[0].created_at == T0.isoformat() and all(isinstance(e, CentraEvent) for e in first)
    assert fetch_events(client, limit=10) == first  # not confirmed: fetched again

    stored = first[:2]  # the store accepted two, then failed
    assert confirm_events(client, [e.id for e in stored]) == {e.id for e in stored}
    assert fetch_events(client, limit=10) == first[2:]
    assert [e.id for e in state.pending_events("pipelines")] == [e.id for e in first[2:]]


def test_confirm_batches_and_a_retried_confirmation(app: Starlette, client: CentraClient,
                                                    state: CentraState) -> None:
    """Kills: one unbounded confirm request (over Centra's 200), duplicate ids sent twice, a confirm that
    is not retried after a 502 behind which Centra had already confirmed (or that fails on the resend)."""
    set_event_listeners(client, ["Product"])
    product = next(iter(state.products))
    for _ in range(MAX_EVENTS + 50):
        state.record_change("Product", "UPDATED", product)
    batch = fetch_event_batch(client, limit=MAX_EVENTS)
    assert len(batch.events) == MAX_EVENTS and batch.malformed == ()
    rest = [e.id for e in state.pending_events("pipelines")][MAX_EVENTS:]
    ids = [e.id for e in batch.events] + rest + rest[:5]  # duplicates in the input
    assert confirm_events(client, ids) == set(ids)
    assert app.state.graphql.mutations_charged["confirmEvents"] == 2
    assert state.pending_events("pipelines") == []

    state.record_change("Product", "UPDATED", product)
    [late] = fetch_events(client)
    state.fail_next(502, after_execute=True)  # confirmed, then the answer is lost
    confirm_events(client, [late.id])
    assert state.pending_events("pipelines") == []
    assert app.state.graphql.mutations_charged["confirmEvents"] == 4


def test_a_429_with_the_documented_timestamp_is_waited(client: CentraClient, state: CentraState) -> None:
    """The simulator's default Retry-After (a Unix timestamp) end to end. Kills: the timestamp read as
    seconds (the budget would re-raise RateLimited), a fetch that loses the queue on a 429."""
    set_event_listeners(client, ["Order"])
    number = _place(state, 0)
    state.fail_next(429, retry_after=1)
    [event] = fetch_events(client)
    assert event.object_reference == number


def _answering(events: list[Any]) -> Starlette:
    async def graphql(request: Request) -> Response:
        return JSONResponse({"data": {"events": events}})
    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


GOOD = {"id": 7, "objectType": "Order", "changeType": "UPDATED", "objectReference": 1001,
        "createdAt": "2026-03-02T10:00:00+01:00"}


def test_a_malformed_event_is_reported_and_never_stops_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    """Kills: one bad entry failing the whole fetch, a malformed entry silently dropped (its id is then
    never confirmed and it blocks the queue forever), bools taken for ids, an Int64 sent as a string
    refused, a non-UTC createdAt kept as is."""
    wire = [
        "not an object",
        {**GOOD, "id": 8, "objectReference": "1002"},  # Int64 as a string: fine
        {**GOOD, "id": 9, "objectType": None},
        {**GOOD, "id": True},
        {**GOOD, "id": 10, "createdAt": "yesterday-ish"},
        {**GOOD, "id": 11, "objectReference": 12.5},
        GOOD,
    ]
    with serve(_answering(wire)) as server, CentraClient(server.url, "t") as c:
        batch = fetch_event_batch(c, limit=10)
        with caplog.at_level(logging.WARNING, logger="pipelines.connectors.centra.events"):
            good = fetch_events(c, limit=10)
    assert [(e.id, e.object_reference) for e in batch.events] == [(8, 1002), (7, 1001)]
    assert batch.events[1].created_at == "2026-03-02T09:00:00+00:00"
    assert [m.id for m in batch.malformed] == [None, 9, None, 10, 11]
    assert "objectType" in batch.malformed[1].reason and "createdAt" in batch.malformed[3].reason
    assert batch.ids == (8, 7, 9, 10, 11)  # malformed but identifiable: still confirmable
    assert good == list(batch.events)
    assert sum("malformed Centra event" in r.getMessage() for r in caplog.records) == 5


def test_decode_and_limits_without_the_network() -> None:
    """Kills: a limit outside Centra's 1-200 sent anyway, an empty input raising."""
    assert decode_events([]).events == ()
    with serve(_answering([])) as server, CentraClient(server.url, "t") as c:
        for bad in (0, MAX_EVENTS + 1):
            with pytest.raises(ValueError):
                fetch_events(c, limit=bad)
        assert set_event_listeners(c, []) == {}


def test_fetch_by_object_type(client: CentraClient, state: CentraState) -> None:
    """Kills: the object-type filter dropped (or sent as a null filter when none is asked for)."""
    set_event_listeners(client, {"Order": ["CREATED"], "Shipment": ["COMPLETED"]})
    number = _place(state, 0)
    state.confirm_order(number)
    shipment = state.create_shipment(number, None)
    state.complete_shipment(shipment.id)
    assert [(e.object_type, e.object_reference) for e in fetch_events(client, object_types=["Shipment"])] == [
        ("Shipment", shipment.id)]
    assert [(e.object_type, e.change_type) for e in fetch_events(client)] == [
        ("Order", "CREATED"), ("Shipment", "COMPLETED")]
