"""Intake service over loopback HTTP: verification, dedupe, quarantine (nothing lost)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from pipelines.intake.app import IntakeConfig, create_intake_app
from pipelines.intake.verify import centra_signature
from pipelines.simulators.serving import serve
from pipelines.store import make_engine

API_KEY = "test-api-key"
SECRET = "test-webhook-secret"


@pytest.fixture
def intake(db_url: str):
    engine = make_engine(db_url)
    with serve(create_intake_app(engine, IntakeConfig(API_KEY, SECRET))) as srv:
        yield srv.url, engine


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _event(n: int = 1) -> dict:
    return {"tenant": "t", "name": "order.opened", "published_at": "2026-03-01T10:00:00Z",
            "payload": {"id": f"o-{n}", "placed_at": "2026-03-01T09:59:00Z", "channel_type": "store", "items": []}}


def test_newstore_event_stored_once(intake) -> None:
    url, engine = intake
    hdr = {"Authorization": f"Bearer {API_KEY}"}
    r1 = httpx.post(f"{url}/newstore/events", json=_event(), headers=hdr)
    r2 = httpx.post(f"{url}/newstore/events", json=_event(), headers=hdr)
    assert (r1.status_code, r1.json()["status"]) == (200, "stored")
    assert (r2.status_code, r2.json()["status"]) == (200, "duplicate")
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 1
    with engine.connect() as conn:
        when = conn.execute(text("SELECT event_time FROM inbox_events")).scalar()
    assert when == "2026-03-01T09:59:00.000000Z"  # the payload's own time, not the publication time


@pytest.mark.parametrize(("headers", "body", "status"), [
    ({}, json.dumps(_event()), 401),
    ({"Authorization": "Bearer wrong"}, json.dumps(_event()), 403),
    ({"Authorization": "Basic abc"}, json.dumps(_event()), 401),
    ({"Authorization": f"Bearer {API_KEY}"}, "{not json", 400),
    ({"Authorization": f"Bearer {API_KEY}"}, json.dumps({"name": "x"}), 422),
])
def test_newstore_refusals_are_quarantined(intake, headers, body, status) -> None:
    url, engine = intake
    r = httpx.post(f"{url}/newstore/events", content=body, headers={**headers, "content-type": "application/json"})
    assert r.status_code == status and r.json()["error"]
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0
    with engine.connect() as conn:
        row = conn.execute(text("SELECT reason, status_code, body, headers FROM intake_quarantine")).one()
    assert row.status_code == status and row.body == body
    assert "wrong" not in row.headers and API_KEY not in row.headers  # credentials never stored


def _centra_body(events: list[dict]) -> bytes:
    return ("payload=" + quote(json.dumps({"events": events}))).encode()


def _signed(body: bytes, secret: str = SECRET, t: int | None = None) -> dict:
    t = int(time.time()) if t is None else t
    return {"X-Centra-Signature": f"t={t},v1={centra_signature(secret, str(t), body)}",
            "content-type": "application/x-www-form-urlencoded"}


def test_centra_webhook_verified_and_deduplicated(intake) -> None:
    url, engine = intake
    events = [{"type": "order", "action": "insert", "date": "2026-03-01 10:00:00.000000", "id": 17},
              {"type": "shipment", "action": "create", "date": "2026-03-01 10:00:01.000000", "id": 9}]
    body = _centra_body(events)
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 200 and r.json() == {"stored": 2, "duplicates": 0}
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.json() == {"stored": 0, "duplicates": 2}
    assert _count(engine, "SELECT count(*) FROM inbox_events WHERE source = 'centra'") == 2


@pytest.mark.parametrize(("case", "status"), [("missing", 401), ("bad", 401), ("stale", 401), ("garbled", 400)])
def test_centra_bad_signatures_refused(intake, case, status) -> None:
    url, engine = intake
    body = _centra_body([{"type": "order", "action": "update", "id": 1}])
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if case == "bad":
        headers.update(_signed(body, secret="other"))
    elif case == "stale":
        headers.update(_signed(body, t=int(time.time()) - 3600))
    elif case == "garbled":
        headers["X-Centra-Signature"] = "nonsense"
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0
    assert _count(engine, "SELECT count(*) FROM intake_quarantine WHERE source = 'centra'") == 1
