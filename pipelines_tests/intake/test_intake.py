"""Intake service over loopback HTTP: verification, dedupe, quarantine (nothing lost)."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from sqlalchemy import text

from pipelines.intake.app import IntakeConfig, create_intake_app
from pipelines.simulators.serving import serve
from pipelines.store import make_engine
from pipelines_tests.intake.intake_support import centra_form_body, signed_headers

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


_centra_body = centra_form_body


def _signed(body: bytes, secret: str = SECRET, t: int | None = None) -> dict:
    return signed_headers(body, secret=secret, t=t)


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


# --- durability, limits and content types ------------------------------------------------------------


def _quarantined(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(text("SELECT reason, status_code, body, headers FROM intake_quarantine ORDER BY id")).all()


def test_healthz_and_readyz(intake) -> None:
    url, _ = intake
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}


def test_centra_webhook_with_many_events_is_stored_in_one_transaction(intake) -> None:
    url, engine = intake
    events = [{"type": "order", "action": "update", "date": f"2026-03-01 10:00:{i % 60:02d}.{i:06d}", "id": i}
              for i in range(250)]
    body = _centra_body(events + events[:3])  # crosses the 100-row chunks; 3 repeats within the call
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 200 and r.json() == {"stored": 250, "duplicates": 3}
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 250


def test_centra_batch_with_one_bad_event_stores_none_of_it(intake) -> None:
    url, engine = intake
    body = _centra_body([{"type": "order", "action": "update", "id": 1}, {"type": "order", "id": 2}])
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 422 and "type, action and id" in r.json()["error"]
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0
    assert [q.body for q in _quarantined(engine)] == [body.decode()]


def test_store_failure_is_not_acknowledged_and_the_body_is_kept(intake, monkeypatch) -> None:
    url, engine = intake

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("pipelines.intake.app.store_events", boom)
    body = json.dumps(_event(7))
    r = httpx.post(f"{url}/newstore/events", content=body,
                   headers={"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"})
    assert r.status_code == 500 and r.json()["error"]
    (row,) = _quarantined(engine)
    assert row.status_code == 500 and row.reason == "store failed: RuntimeError" and row.body == body
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0


def test_quarantine_failure_asks_for_a_retry_and_logs_size_and_hash_never_the_body(intake, monkeypatch,
                                                                                    caplog) -> None:
    import hashlib

    url, engine = intake
    body = b"{not json but precious"

    def broken(*_args, **kwargs):
        # As a driver error would: the statement's parameters (the body) are in the exception's message.
        raise OSError(f"quarantine unavailable [parameters: {kwargs['body']!r}]")

    monkeypatch.setattr("pipelines.intake.app.quarantine", broken)
    with caplog.at_level(logging.DEBUG, logger="pipelines"):
        r = httpx.post(f"{url}/newstore/events", content=body,
                       headers={"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"})
    assert r.status_code == 503 and r.headers["retry-after"]
    assert "precious" not in caplog.text  # caplog.text holds formatted tracebacks too
    (failure,) = [rec.getMessage() for rec in caplog.records if "could not quarantine" in rec.getMessage()]
    assert hashlib.sha256(body).hexdigest() in failure and f"{len(body)} bytes" in failure
    assert "body is not JSON" in failure and "status 400" in failure


def test_unmigrated_database_answers_503(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")  # no tables: the store cannot take writes
    with serve(create_intake_app(engine, IntakeConfig(API_KEY, SECRET))) as srv:
        r = httpx.post(f"{srv.url}/newstore/events", json=_event(), headers={"Authorization": f"Bearer {API_KEY}"})
        assert r.status_code == 503 and r.headers["retry-after"]
        assert httpx.get(f"{srv.url}/readyz").status_code == 503


def test_oversized_body_refused_with_413_and_its_start_kept(db_url: str) -> None:
    engine = make_engine(db_url)
    with serve(create_intake_app(engine, IntakeConfig(API_KEY, SECRET, max_body_bytes=1000))) as srv:
        big = json.dumps({**_event(), "padding": "x" * 5000})
        r = httpx.post(f"{srv.url}/newstore/events", content=big,
                       headers={"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"})
        assert r.status_code == 413 and "1000 bytes" in r.json()["error"]
        ok = httpx.post(f"{srv.url}/newstore/events", json=_event(), headers={"Authorization": f"Bearer {API_KEY}"})
        assert ok.status_code == 200
    (row,) = _quarantined(engine)
    assert row.status_code == 413 and row.body == big[:1000]


@pytest.mark.parametrize(("content_type", "status"), [
    ("application/json; charset=utf-8", 200), ("application/cloudevents+json", 200), (None, 200),
    ("text/plain", 415), ("application/x-www-form-urlencoded", 415),
])
def test_newstore_content_types(intake, content_type, status) -> None:
    url, engine = intake
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if content_type:
        headers["content-type"] = content_type
    r = httpx.post(f"{url}/newstore/events", content=json.dumps(_event()).encode(), headers=headers)
    assert r.status_code == status, r.text
    assert _count(engine, "SELECT count(*) FROM intake_quarantine") == (0 if status == 200 else 1)


def test_centra_content_types(intake) -> None:
    url, engine = intake
    doc = json.dumps({"events": [{"type": "order", "action": "insert", "id": 5, "date": "2026-03-01 10:00:00"}]})
    as_json = doc.encode()
    r = httpx.post(f"{url}/centra/webhooks", content=as_json, headers={**_signed(as_json), "content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {"stored": 1, "duplicates": 0}
    form = _centra_body(json.loads(doc)["events"])  # the same event, form-encoded: a duplicate
    r = httpx.post(f"{url}/centra/webhooks", content=form, headers=_signed(form))
    assert r.json() == {"stored": 0, "duplicates": 1}
    r = httpx.post(f"{url}/centra/webhooks", content=form, headers={**_signed(form), "content-type": "text/plain"})
    assert r.status_code == 415
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 1
    assert _count(engine, "SELECT count(*) FROM intake_quarantine") == 1


def test_binary_and_nul_bodies_are_quarantined_losslessly(intake) -> None:
    import base64

    url, engine = intake
    bodies = [b"\xff\xfe\x00garbage", b'{"a": "\x00"}']
    for body in bodies:
        r = httpx.post(f"{url}/newstore/events", content=body,
                       headers={"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"})
        assert r.status_code == 400
    rows = _quarantined(engine)
    assert [base64.b64decode(q.body) for q in rows] == bodies
    assert all(json.loads(q.headers)[":body-encoding"] == "base64" for q in rows)


@pytest.mark.parametrize("header", [b"t=1,v1=\xe9\xe9", b"t=99999999999999999999999,v1=ab", b"t=1e9,v1=ab"])
def test_centra_odd_signature_headers_are_refused_not_crashing(intake, header) -> None:
    url, engine = intake
    body = _centra_body([{"type": "order", "action": "update", "id": 1}])
    r = httpx.post(f"{url}/centra/webhooks", content=body,
                   headers={"X-Centra-Signature": header, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code in (400, 401), r.text
    assert _count(engine, "SELECT count(*) FROM intake_quarantine") == 1


def test_centra_future_timestamp_refused(intake) -> None:
    url, _ = intake
    body = _centra_body([{"type": "order", "action": "update", "id": 1}])
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body, t=int(time.time()) + 3600))
    assert r.status_code == 401


def test_long_and_odd_values_are_stored_not_crashing(intake) -> None:
    """Ids longer than the dedup-key column are hashed; odd time fields give no event time."""
    url, engine = intake
    long_id = "x" * 400
    body = _centra_body([{"type": "order", "action": "update", "id": long_id, "date": "0001-01-01 00:00:00+01:00"},
                         {"type": "order", "action": "update", "id": "nul\x00id"}])
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 200 and r.json() == {"stored": 2, "duplicates": 0}
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.json() == {"stored": 0, "duplicates": 2}
    event = {**_event(9), "published_at": 12345}
    r = httpx.post(f"{url}/newstore/events", json=event, headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200
    with engine.connect() as conn:
        keys = [k for (k,) in conn.execute(text("SELECT dedup_key FROM inbox_events WHERE source = 'centra'"))]
    assert len(keys) == 2 and all(len(k) <= 255 and "\x00" not in k for k in keys)


def test_overlong_event_name_refused(intake) -> None:
    url, engine = intake
    event = {**_event(), "name": "n" * 200}
    r = httpx.post(f"{url}/newstore/events", json=event, headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 422
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0


def test_large_centra_batch_parsed_off_the_loop_and_stored_whole(intake) -> None:
    url, engine = intake
    events = [{"type": "shipment", "action": "create", "date": "2026-03-01 11:00:00.000000", "id": f"s-{i:05d}"}
              for i in range(1200)]
    body = _centra_body(events)
    assert len(body) > 64 * 1024
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 200 and r.json() == {"stored": 1200, "duplicates": 0}
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 1200
