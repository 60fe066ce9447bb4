"""Centra webhook events the plugin sends for shipments (`good_to_go`, completion) and redeliveries whose
envelope changed, delivered over loopback HTTP to a receiver.

Oracles: the docs' example (`{"type":"shipment","action":"good_to_go","id":<shipment id>}`), the ids the
world API returned, and the production intake's own parser (`parse_centra_webhook`) for the dedup keys.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from pipelines.connectors.centra import verify_webhook_signature
from pipelines.intake.verify import parse_centra_webhook
from pipelines.simulators.centra import CentraState, WebhookEmitter, create_app
from pipelines.simulators.serving import serve
from pipelines_tests.centra_fixtures import TOKEN, ManualClock, Receiver, data, small_estate

MARKET = 1


@pytest.fixture
def state() -> CentraState:
    return CentraState(small_estate(), clock=ManualClock())


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with serve(rec.app()) as hook_server:
        yield rec, f"{hook_server.url}/hook"


def _events(receiver: Receiver) -> list[dict[str, Any]]:
    return [e for call in receiver.calls
            for e in json.loads(urllib.parse.parse_qs(call["body"])["payload"][0])["events"]]


def _shipment_events(receiver: Receiver) -> list[tuple[str, int]]:
    return [(e["action"], e["id"]) for e in _events(receiver) if e["type"] == "shipment"]


def _order(state: CentraState) -> int:
    sku = state.sizes[state.size_ids_sorted[0]].size.sku
    number = state.place_order(MARKET, [(sku, 1)], email="w@example.com")["number"]
    state.confirm_order(number)
    return number


def test_good_to_go_when_created_good_to_go_or_updated_to_it(state: CentraState,
                                                             receiver: tuple[Receiver, str]) -> None:
    """Kills: good_to_go never sent, sent for a shipment that is not good to go, sent again on an update
    that does not change it, or carrying the order number instead of the shipment id."""
    rec, url = receiver
    app = create_app(state, tokens=[TOKEN])
    with serve(app) as server, WebhookEmitter(url, "k", linger_s=0.01).attach(state) as emitter:
        ready = state.create_shipment(_order(state), None, is_good_to_go=True)
        number = _order(state)
        created = data(server, """mutation($n: Int!) { createShipment(input: {order: {number: $n}}) {
            shipment { id isGoodToGo } userErrors { message } } }""", {"n": number})["createShipment"]
        later = created["shipment"]["id"]
        assert created["shipment"]["isGoodToGo"] is False
        update = """mutation($id: Int!, $g: Boolean) { updateShipment(id: $id, input: {isGoodToGo: $g}) {
            userErrors { message } } }"""
        data(server, update, {"id": later, "g": True})
        data(server, update, {"id": later, "g": True})  # no change: nothing new
        assert emitter.flush(10)
    assert _shipment_events(rec) == [("create", ready.id), ("good_to_go", ready.id),
                                     ("create", later), ("good_to_go", later)]


@pytest.mark.parametrize(("action", "expected"), [(None, []), ("update", ["update"]), ("completed", ["completed"])])
def test_shipment_completion_action_is_a_knob(state: CentraState, receiver: tuple[Receiver, str],
                                              action: str | None, expected: list[str]) -> None:
    """Kills: completion not announced, the knob ignored (None must send nothing for the completion and
    still send the rest), the completion sent for another shipment."""
    rec, url = receiver
    with WebhookEmitter(url, "k", linger_s=0.01, shipment_completed_action=action).attach(state) as emitter:
        shipment = state.create_shipment(_order(state), None)
        state.complete_shipment(shipment.id)
        assert emitter.flush(10)
    assert _shipment_events(rec) == [("create", shipment.id)] + [(a, shipment.id) for a in expected]


def test_a_redelivery_whose_date_moved_on_is_a_new_envelope(state: CentraState,
                                                            receiver: tuple[Receiver, str]) -> None:
    """The knob for duplicates with a changed envelope. Kills: the duplicate sent identical (the intake
    would drop it as a duplicate of the first), the date moved by another amount, a bad signature on it."""
    rec, url = receiver
    with WebhookEmitter(url, "s3cret", linger_s=0.01, duplicate_rate=1.0,
                        redelivery_date_shift_s=2.5).attach(state) as emitter:
        _order(state)
        assert emitter.flush(10)
    first, dup = emitter.deliveries
    assert dup.duplicate and len(rec.calls) == 2 and rec.calls[0]["body"] != rec.calls[1]["body"]
    assert [(e["type"], e["action"], e["id"]) for e in dup.events] == \
        [(e["type"], e["action"], e["id"]) for e in first.events]
    for a, b in zip(first.events, dup.events, strict=True):
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        assert datetime.strptime(b["date"], fmt) - datetime.strptime(a["date"], fmt) == timedelta(seconds=2.5)
    for call in rec.calls:
        assert verify_webhook_signature("s3cret", call["headers"]["x-centra-signature"], call["body"])
    keys = [{ev.dedup_key for ev in parse_centra_webhook(call["body"].encode())} for call in rec.calls]
    assert keys[0].isdisjoint(keys[1])  # the intake stores the redelivery as new events
