"""Several intake replicas against one PostgreSQL database: a delivery is stored once; an outage answers 503.

Each replica is its own uvicorn server with its own SQLAlchemy engine (as separate processes would be);
the same delivery is sent to both at the same moment, many times over.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from itertools import count
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import text

from pipelines.intake.app import IntakeConfig, create_intake_app
from pipelines.intake.verify import centra_signature
from pipelines.simulators.serving import serve
from pipelines.store import make_engine, migrate

pytestmark = pytest.mark.postgres

API_KEY = "replica-api-key"
SECRET = "replica-webhook-secret"
ROUNDS = 20
_names = count(1)


def _database(base_url: str, label: str) -> str:
    from pipelines_tests.pg_server import create_database

    url = create_database(base_url, f"r{os.getpid()}_{label}_{next(_names)}")
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def _newstore(n: int) -> tuple[bytes, dict[str, str]]:
    doc = {"tenant": "t", "name": "order.opened", "published_at": "2026-03-01T10:00:00Z",
           "payload": {"id": f"o-{n}", "placed_at": "2026-03-01T09:59:00Z", "channel_type": "store", "items": []}}
    return json.dumps(doc).encode(), {"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"}


def _centra(ids: list[int]) -> tuple[bytes, dict[str, str]]:
    events = [{"type": "order", "action": "update", "date": "2026-03-01 10:00:00.000000", "id": i} for i in ids]
    body = ("payload=" + quote(json.dumps({"events": events}))).encode()
    t = str(int(time.time()))
    return body, {"X-Centra-Signature": f"t={t},v1={centra_signature(SECRET, t, body)}",
                  "content-type": "application/x-www-form-urlencoded"}


async def _post_to_all(urls: list[str], path: str, bodies: list[tuple[bytes, dict[str, str]]]) -> list[httpx.Response]:
    """POST bodies[i] to urls[i], all at once."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(client.post(f"{u}{path}", content=b, headers=h) for u, (b, h) in zip(urls, bodies,
                                                                                                         strict=True)))


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


@pytest.fixture
def replicas(pg_server_url: str):
    url = _database(pg_server_url, "shared")
    engines = [make_engine(url), make_engine(url)]
    config = IntakeConfig(API_KEY, SECRET)
    with serve(create_intake_app(engines[0], config)) as a, serve(create_intake_app(engines[1], config)) as b:
        yield [a.url, b.url], engines[0]
    for engine in engines:
        engine.dispose()


def test_same_newstore_event_to_two_replicas_is_stored_once(replicas) -> None:
    urls, engine = replicas
    for n in range(ROUNDS):
        delivery = _newstore(n)
        responses = asyncio.run(_post_to_all(urls, "/newstore/events", [delivery, delivery]))
        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        assert sorted(r.json()["status"] for r in responses) == ["duplicate", "stored"]
        assert len({r.json()["dedup_key"] for r in responses}) == 1
    assert _count(engine, "SELECT count(*) FROM inbox_events") == ROUNDS
    assert _count(engine, "SELECT count(DISTINCT dedup_key) FROM inbox_events") == ROUNDS
    assert _count(engine, "SELECT count(*) FROM intake_quarantine") == 0


def test_same_centra_webhook_to_two_replicas_is_stored_once(replicas) -> None:
    urls, engine = replicas
    for n in range(ROUNDS):
        ids = [n * 10 + i for i in range(5)]
        # Overlapping batches in opposite orders as well: the same keys, locked in the same order.
        first, second = _centra(ids), _centra(list(reversed(ids)) + [n * 10 + 9])
        for bodies in ([first, first], [first, second]):
            responses = asyncio.run(_post_to_all(urls, "/centra/webhooks", bodies))
            assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        assert _count(engine, "SELECT count(*) FROM inbox_events WHERE dedup_key LIKE :p",
                      p=f"order:update:{n * 10}%") == 1
    assert _count(engine, "SELECT count(*) FROM inbox_events") == ROUNDS * 6
    assert _count(engine, "SELECT count(DISTINCT dedup_key) FROM inbox_events") == ROUNDS * 6


def test_acknowledged_counts_match_the_table_under_concurrency(replicas) -> None:
    """Every event is acknowledged as stored by exactly one replica, over many concurrent deliveries."""
    urls, engine = replicas

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            posts = []
            for n in range(ROUNDS * 2):
                body, headers = _newstore(1000 + n)
                posts += [client.post(f"{u}/newstore/events", content=body, headers=headers) for u in urls]
            return await asyncio.gather(*posts)

    responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses)
    stored = sum(r.json()["status"] == "stored" for r in responses)
    assert stored == ROUNDS * 2 == _count(engine, "SELECT count(*) FROM inbox_events")


def test_replica_on_a_dropped_database_answers_503_and_stores_nothing(pg_server_url: str, caplog) -> None:
    healthy_url, doomed_url = _database(pg_server_url, "ok"), _database(pg_server_url, "doomed")
    healthy, doomed = make_engine(healthy_url), make_engine(doomed_url)
    config = IntakeConfig(API_KEY, SECRET)
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    try:
        with serve(create_intake_app(healthy, config)) as ok, serve(create_intake_app(doomed, config)) as down:
            warm = httpx.post(f"{down.url}/newstore/events", content=_newstore(1)[0], headers=_newstore(1)[1])
            assert warm.status_code == 200  # the doomed replica worked, and holds pooled connections
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{doomed_url.rsplit("/", 1)[1]}" WITH (FORCE)'))

            body, headers = _newstore(2)
            r = httpx.post(f"{down.url}/newstore/events", content=body, headers=headers)
            assert r.status_code == 503 and r.headers["retry-after"] and r.json()["error"]
            body_c, headers_c = _centra([1, 2, 3])
            r = httpx.post(f"{down.url}/centra/webhooks", content=body_c, headers=headers_c)
            assert r.status_code == 503
            assert httpx.get(f"{down.url}/readyz").status_code == 503
            assert httpx.get(f"{down.url}/healthz").status_code == 200  # alive, not ready

            # A refused delivery cannot be quarantined there either: 503 (retry); the log says what was
            # refused (size, hash, reason) but never holds the body.
            with caplog.at_level(logging.ERROR, logger="pipelines.intake.app"):
                r = httpx.post(f"{down.url}/newstore/events", content=b'{"marker": "keep-me"}',
                               headers={"Authorization": "Bearer wrong", "content-type": "application/json"})
            assert r.status_code == 503
            assert "keep-me" not in caplog.text
            assert any("could not quarantine" in rec.getMessage() and "sha256" in rec.getMessage()
                       for rec in caplog.records)

            # The sender's retry, balanced to the healthy replica, stores each event exactly once.
            assert httpx.post(f"{ok.url}/newstore/events", content=body, headers=headers).json()["status"] == "stored"
            assert httpx.post(f"{ok.url}/centra/webhooks", content=body_c, headers=headers_c).json() == {
                "stored": 3, "duplicates": 0}
            assert _count(healthy, "SELECT count(*) FROM inbox_events") == 4
            assert _count(healthy, "SELECT count(*) FROM intake_quarantine") == 0
    finally:
        healthy.dispose()
        doomed.dispose()
        admin.dispose()
