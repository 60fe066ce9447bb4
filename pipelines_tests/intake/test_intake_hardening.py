"""An intake that strangers cannot fill (issue 7): credentials before the body, bounded quarantine rows,
header limit (431), the quarantine's byte budget and retention, JSON depth and lone surrogates, and the
Centra signature against Centra's documented example and at the edges of its tolerance.

Everything runs over real loopback HTTP against real SQLite and PostgreSQL, as in test_intake.py.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from pipelines.intake.app import IntakeConfig, create_intake_app
from pipelines.intake.verify import Rejected, centra_signature, check_centra_signature
from pipelines.simulators.serving import free_port, serve
from pipelines.store import make_engine, migrate
from pipelines.store.inbox import quarantine, trim_quarantine
from pipelines_tests.intake.intake_support import centra_form_body, signed_headers

API_KEY = "hardening-api-key"
SECRET = "hardening-webhook-secret"
AUTH = {"Authorization": f"Bearer {API_KEY}", "content-type": "application/json"}


@contextmanager
def _intake(db_url: str, **config):
    engine = make_engine(db_url)
    with serve(create_intake_app(engine, IntakeConfig(API_KEY, SECRET, **config))) as srv:
        yield srv.url, engine
    engine.dispose()


@pytest.fixture
def intake(db_url: str):
    with _intake(db_url) as running:
        yield running


def _rows(engine, where: str = "1 = 1") -> list:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT id, reason, status_code, headers, body, sender, body_bytes, body_sha256, body_kept, stored_bytes "
            f"FROM intake_quarantine WHERE {where} ORDER BY id")).all()


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _event(n: int = 1, **payload) -> dict:
    return {"tenant": "t", "name": "order.opened", "published_at": "2026-03-01T10:00:00Z",
            "payload": {"id": f"o-{n}", "placed_at": "2026-03-01T09:59:00Z", "items": [], **payload}}


_centra_body = centra_form_body


def _signed(body: bytes, secret: str = SECRET, t: int | None = None) -> dict:
    return signed_headers(body, secret=secret, t=t)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- strangers: credentials from the headers, a bounded prefix of the body --------------------------


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"Authorization": "Bearer wrong"}, 403)])
def test_newstore_stranger_keeps_only_a_prefix_with_size_and_hash(intake, headers, status) -> None:
    url, engine = intake
    body = json.dumps({**_event(), "padding": "p" * (1 << 20)}).encode()
    r = httpx.post(f"{url}/newstore/events", content=body, headers={**headers, "content-type": "application/json"})
    assert r.status_code == status
    (row,) = _rows(engine)
    assert row.body == body[:4096].decode() and row.body_kept == "prefix" and row.sender == "unverified"
    assert (row.body_bytes, row.body_sha256) == (len(body), _sha(body))
    assert row.stored_bytes < 4096 + 1024  # what the stranger cost: the prefix, headers, reason
    assert "wrong" not in row.headers


def test_centra_bad_signature_keeps_only_a_prefix(intake) -> None:
    url, engine = intake
    events = [{"type": "order", "action": "update", "id": i, "date": "2026-03-01 10:00:00"} for i in range(3000)]
    body = _centra_body(events)
    assert len(body) > 100_000
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body, secret="not-the-secret"))
    assert r.status_code == 401 and r.json()["error"] == "signature does not match"
    (row,) = _rows(engine)
    assert row.body == body[:4096].decode() and row.body_kept == "prefix" and row.sender == "unverified"
    assert (row.body_bytes, row.body_sha256) == (len(body), _sha(body))
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0


def test_credentials_are_checked_before_the_body_is_read(db_url: str) -> None:
    """A stranger's oversized body gets the credentials' status, not 413 (which needed the body read)."""
    with _intake(db_url, max_body_bytes=20_000) as (url, engine):
        big = json.dumps({**_event(), "padding": "x" * 50_000}).encode()
        r = httpx.post(f"{url}/newstore/events", content=big,
                       headers={"Authorization": "Bearer wrong", "content-type": "application/json"})
        assert r.status_code == 403
        form = _centra_body([{"type": "order", "action": "update", "id": "x" * 50_000}])
        r = httpx.post(f"{url}/centra/webhooks", content=form, headers=_signed(form, t=int(time.time()) - 3600))
        assert r.status_code == 401 and "tolerance" in r.json()["error"]
        # A Centra body over the limit cannot be verified (its signature covers all of it): prefix only.
        r = httpx.post(f"{url}/centra/webhooks", content=form, headers=_signed(form))
        assert r.status_code == 413
        # A verified NewStore sender's oversized body keeps its first `limit` bytes (as before).
        r = httpx.post(f"{url}/newstore/events", content=big, headers=AUTH)
        assert r.status_code == 413
    rows = _rows(engine)
    assert [(q.status_code, q.sender, len(q.body), q.body_kept) for q in rows] == [
        (403, "unverified", 4096, "prefix"), (401, "unverified", 4096, "prefix"),
        (413, "unverified", 4096, "prefix"), (413, "verified", 20_000, "prefix")]
    # A stranger's body is hashed while read, and reading stops just past the body limit.
    assert 20_000 < rows[0].body_bytes <= len(big) and rows[0].body_sha256 == _sha(big[:rows[0].body_bytes])
    assert all(q.body_bytes > 20_000 for q in rows[1:])


def test_a_verified_senders_refused_body_is_kept_whole(intake) -> None:
    url, engine = intake
    body = json.dumps({"name": "order.opened", "padding": "z" * 100_000}).encode()  # no payload: 422
    r = httpx.post(f"{url}/newstore/events", content=body, headers=AUTH)
    assert r.status_code == 422
    (row,) = _rows(engine)
    assert row.body == body.decode() and row.body_kept == "all" and row.sender == "verified"
    assert (row.body_bytes, row.body_sha256) == (len(body), _sha(body))
    assert row.stored_bytes >= len(row.body) + len(row.headers)


def test_an_unexpected_parsing_error_is_a_json_500_and_the_body_is_kept(intake, monkeypatch) -> None:
    url, engine = intake

    def broken(_body: bytes):
        raise RuntimeError("parser bug")

    monkeypatch.setattr("pipelines.intake.app.parse_newstore_event", broken)
    body = json.dumps(_event(3)).encode()
    r = httpx.post(f"{url}/newstore/events", content=body, headers=AUTH)
    assert r.status_code == 500 and r.json()["error"]  # JSON, so the sender retries; not a plaintext crash
    (row,) = _rows(engine)
    assert (row.reason, row.body, row.sender) == ("parse failed: RuntimeError", body.decode(), "verified")


# --- header limit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["one 1 MiB header", "one 20 KiB header", "300 small headers"])
def test_oversized_headers_get_431_and_only_a_bounded_summary(intake, shape) -> None:
    url, engine = intake
    if shape == "300 small headers":
        extra = {f"x-h{i:03d}": "v" * 60 for i in range(300)}  # each small, 20 KiB together
    else:
        extra = {"x-padding": "a" * ((1 << 20) if shape.startswith("one 1 MiB") else 20_000)}
    r = httpx.post(f"{url}/newstore/events", json=_event(), headers={**AUTH, **extra})
    assert r.status_code == 431 and "more than 16384" in r.json()["error"]
    (row,) = _rows(engine)
    assert row.status_code == 431 and row.sender == "unverified"
    assert row.body == "" and row.body_kept == "none" and row.body_bytes is None
    assert len(row.headers) < 3072 and "aaaaaaaa" not in row.headers and "vvvvvvvv" not in row.headers
    assert API_KEY not in row.headers
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0


def test_headers_just_under_the_limit_are_accepted(intake) -> None:
    url, engine = intake
    r = httpx.post(f"{url}/newstore/events", json=_event(), headers={**AUTH, "x-padding": "a" * 15_000})
    assert r.status_code == 200 and r.json()["status"] == "stored"
    assert _count(engine, "SELECT count(*) FROM intake_quarantine") == 0


def test_under_h11_huge_headers_are_refused_by_the_server_and_nothing_is_stored(db_url: str) -> None:
    """Without httptools uvicorn parses with h11, whose own limit answers 400 (and closes) before the app
    for a head it cannot buffer (here 1 MiB); one it reads in one go (20 KiB) reaches the app: 431."""
    engine = make_engine(db_url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_intake_app(engine, IntakeConfig(API_KEY, SECRET)), host="127.0.0.1",
                                           port=port, http="h11", log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            time.sleep(0.02)
        try:
            huge: int | str = httpx.post(f"http://127.0.0.1:{port}/newstore/events", json=_event(),
                                         headers={**AUTH, "x-padding": "a" * (1 << 20)}).status_code
        except httpx.TransportError:  # h11 answered 400 and closed while the client was still sending
            huge = "reset"
        big = httpx.post(f"http://127.0.0.1:{port}/newstore/events", json=_event(),
                         headers={**AUTH, "x-padding": "a" * 20_000})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert huge in (400, "reset")
    # 20 KiB normally arrives in one read, so h11 passes it on and the app answers 431; should h11 have
    # had to buffer it (split reads), it answers 400 itself. Either way nothing unbounded is stored.
    assert big.status_code in (431, 400)
    rows = _rows(engine)
    assert [q.status_code for q in rows] == ([431] if big.status_code == 431 else [])
    assert all(len(q.headers) < 3072 and q.body == "" for q in rows)
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0


# --- quarantine budget and retention ---------------------------------------------------------------


def test_quarantine_budget_evicts_strangers_oldest_first_and_keeps_verified_rows(db_url: str) -> None:
    budget = 64 * 1024
    with _intake(db_url, quarantine_max_bytes=budget) as (url, engine):
        verified = json.dumps({"name": "order.opened", "padding": "v" * 10_000}).encode()
        assert httpx.post(f"{url}/newstore/events", content=verified, headers=AUTH).status_code == 422
        stranger = {"Authorization": "Bearer wrong", "content-type": "application/json"}
        for i in range(60):  # ~270 KB of stranger rows: four times the budget
            body = json.dumps({**_event(i), "padding": f"{i:04d}" * 2000}).encode()
            assert httpx.post(f"{url}/newstore/events", content=body, headers=stranger).status_code == 403
        rows = _rows(engine)
    total = sum(q.stored_bytes for q in rows)
    slice_ = budget // 8  # a process trims each time it has quarantined another eighth of the budget
    assert total <= budget + slice_ + max(q.stored_bytes for q in rows)
    assert total >= budget // 2  # trimmed to 7/8 of the budget, not emptied
    assert rows[0].sender == "verified" and rows[0].status_code == 422  # the oldest row, yet kept
    assert len(rows) - 1 < 60 and '"id": "o-59"' in rows[-1].body  # the newest stranger rows survive
    ids = [q.id for q in rows[1:]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # a contiguous newest run: oldest deleted first
    assert all(q.stored_bytes >= len(q.body) + len(q.headers) for q in rows)


def _quarantine_row(engine, reason: str, verified: bool = True) -> None:
    quarantine(engine, source="newstore", reason=reason, status_code=400, headers={}, body=b"x" * 100,
               verified=verified)


def test_trim_quarantine_retention_boundary(db_url: str) -> None:
    engine = make_engine(db_url)
    for reason in ("31 days", "29 days", "now"):
        _quarantine_row(engine, reason)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for reason, age in (("31 days", 31), ("29 days", 29)):
            conn.execute(text("UPDATE intake_quarantine SET received_at = :t WHERE reason = :r"),
                         {"t": (now - timedelta(days=age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "r": reason})
    assert trim_quarantine(engine, max_bytes=1 << 30, retention_days=30, now=now) == (1, 0)
    assert [q.reason for q in _rows(engine)] == ["29 days", "now"]


def test_trim_quarantine_over_budget_deletes_unverified_then_oldest(db_url: str) -> None:
    engine = make_engine(db_url)
    for i, verified in enumerate([True, False, True, False, True, False]):
        _quarantine_row(engine, f"r{i}", verified)
    row = _rows(engine)[0].stored_bytes
    # Budget for 4 rows, trimmed to 7/8 of it: 3 rows stay, the verified ones (unverified go first).
    assert trim_quarantine(engine, max_bytes=4 * row, retention_days=30) == (0, 3)
    assert [q.reason for q in _rows(engine)] == ["r0", "r2", "r4"]
    assert trim_quarantine(engine, max_bytes=2 * row, retention_days=30) == (0, 2)  # then the oldest
    assert [q.reason for q in _rows(engine)] == ["r4"]
    assert trim_quarantine(engine, max_bytes=2 * row, retention_days=30) == (0, 0)  # within budget


def test_intake_applies_retention_when_it_starts(db_url: str) -> None:
    engine = make_engine(db_url)
    _quarantine_row(engine, "old")
    _quarantine_row(engine, "recent")
    with engine.begin() as conn:
        conn.execute(text("UPDATE intake_quarantine SET received_at = '2020-01-01T00:00:00.000000Z' "
                          "WHERE reason = 'old'"))
    with _intake(db_url, quarantine_retention_days=7):
        deadline = time.monotonic() + 10
        while len(_rows(engine)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [q.reason for q in _rows(engine)] == ["recent"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.sqlite'}"
    from pipelines_tests.pg_server import create_database

    return create_database(request.getfixturevalue("pg_server_url"), f"q{uuid.uuid4().hex}")


def test_migration_accounts_for_rows_quarantined_before_it(unmigrated_url: str, tmp_path) -> None:
    from pipelines.store.migrate import MIGRATIONS_DIR

    engine = make_engine(unmigrated_url)
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "0004":
            (before / path.name).write_text(path.read_text())
    migrate(engine, before)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO intake_quarantine (source, received_at, reason, status_code, headers, body) "
                          "VALUES ('newstore', '2026-03-01T10:00:00.000000Z', 'old', 401, '{}', :b)"),
                     {"b": "y" * 5000})
    assert "0004_quarantine_budget.sql" in migrate(engine)
    (row,) = _rows(engine)
    assert row.stored_bytes >= 5000 and row.sender is None
    assert trim_quarantine(engine, max_bytes=1000, retention_days=100_000) == (0, 1)  # counted, trimmed


# --- JSON depth, lone surrogates, duplicate form fields --------------------------------------------


def _chain(n: int) -> dict:
    """n dicts nested in each other."""
    value: dict = {}
    for _ in range(n - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("depth", "status"), [(64, 200), (65, 422), (100_000, 422)])
def test_newstore_json_depth_limit(intake, depth, status) -> None:
    url, engine = intake
    if depth < 1000:
        # envelope (level 1) > payload (2) > x: the innermost dict is at level `depth`
        body = json.dumps({**_event(), "payload": {"id": "deep", "x": _chain(depth - 2)}}).encode()
    else:  # too deep for json.dumps to build, and for json.loads to parse without a RecursionError
        body = (b'{"tenant": "t", "name": "order.opened", "payload": ' + b'{"a": ' * depth + b"{}"
                + b"}" * depth + b"}")
    r = httpx.post(f"{url}/newstore/events", content=body, headers=AUTH)
    assert r.status_code == status, r.text[:200]
    if status == 422:
        assert "nested deeper than 64" in r.json()["error"]
        (row,) = _rows(engine)
        assert row.status_code == 422 and row.body_sha256 == _sha(body)
    assert _count(engine, "SELECT count(*) FROM inbox_events") == (1 if status == 200 else 0)


def test_centra_json_depth_limit(intake) -> None:
    url, engine = intake
    raw = '{"events": [{"type": "order", "action": "update", "id": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}]}"
    body = ("payload=" + quote(raw)).encode()
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 422 and "nested deeper than 64" in r.json()["error"]
    assert [q.status_code for q in _rows(engine)] == [422]


@pytest.mark.parametrize("where", ["event name", "payload value", "payload key", "raw bytes"])
def test_newstore_lone_surrogate_is_422_on_every_database(intake, where) -> None:
    url, engine = intake
    doc = json.dumps(_event(), ensure_ascii=True)
    if where == "event name":
        body = doc.replace('"order.opened"', '"order.\\ud800"').encode()
    elif where == "payload value":
        body = doc.replace('"items": []', '"items": [{"sku": "a\\udfffb"}]').encode()
    elif where == "payload key":
        body = doc.replace('"items": []', '"items": [{"\\udc00": 1}]').encode()
    else:  # the surrogate's UTF-8-style bytes, which json decodes with surrogatepass
        body = doc.replace('"items": []', '"items": ["\xed\xa0\x80"]').encode("latin-1")
    r = httpx.post(f"{url}/newstore/events", content=body, headers=AUTH)
    assert r.status_code == 422 and "surrogate" in r.json()["error"]
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0
    (row,) = _rows(engine)
    assert row.status_code == 422 and row.body_sha256 == _sha(body)
    # A surrogate *pair* is an ordinary character (U+1F600): stored.
    ok = doc.replace('"items": []', '"items": [{"sku": "\\ud83d\\ude00"}]').encode()
    r = httpx.post(f"{url}/newstore/events", content=ok, headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "stored"
    with engine.connect() as conn:
        stored = json.loads(conn.execute(text("SELECT payload FROM inbox_events")).scalar())
    assert stored["payload"]["items"] == [{"sku": "\U0001F600"}]


def test_centra_lone_surrogate_is_422(intake) -> None:
    url, engine = intake
    raw = '{"events": [{"type": "order", "action": "update", "id": "\\ud800"}]}'
    body = ("payload=" + quote(raw)).encode()
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 422 and "surrogate" in r.json()["error"]
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0


def test_centra_form_with_two_payload_fields_is_400(intake) -> None:
    url, engine = intake
    one = quote(json.dumps({"events": [{"type": "order", "action": "update", "id": 1}]}))
    two = quote(json.dumps({"events": [{"type": "order", "action": "update", "id": 2}]}))
    body = f"payload={one}&payload={two}".encode()
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 400 and "2 payload= fields" in r.json()["error"]
    assert _count(engine, "SELECT count(*) FROM inbox_events") == 0
    assert [q.body for q in _rows(engine)] == [body.decode()]


def test_form_error_reason_does_not_echo_the_body(intake) -> None:
    url, engine = intake
    body = b"payload=x&" + b"q" * 100_000  # a field without '=': parse_qs's message quotes it whole
    r = httpx.post(f"{url}/centra/webhooks", content=body, headers=_signed(body))
    assert r.status_code == 400 and len(r.text) < 200
    (row,) = _rows(engine)
    assert "qqqq" not in row.reason


# --- Centra signature: Centra's documented example, tolerance edges ---------------------------------

# From Centra's webhook plugin documentation (centrahq/api-documentation,
# pages/06.plugins/09.centra-webhook/docs.md, "Signature verification"): endpoint secret `test123`,
# t=12345678, body `payload=%7B%22x%22%3A%22test%22%7D`, and the header it shows.
DOC_SECRET = "test123"
DOC_T = 12345678
DOC_BODY = b"payload=%7B%22x%22%3A%22test%22%7D"
DOC_V1 = "0b9cd84f5d583e5e1aadfb9f160aa8080b51d5b85ff85808d6b75bdac356c549"


def test_signature_matches_centras_documented_example() -> None:
    assert centra_signature(DOC_SECRET, str(DOC_T), DOC_BODY) == DOC_V1
    # The documentation wraps the header after the comma; the parts are read with spaces trimmed.
    check_centra_signature(f"t={DOC_T}, v1={DOC_V1}", DOC_BODY, DOC_SECRET, now=DOC_T)
    with pytest.raises(Rejected) as bad:
        check_centra_signature(f"t={DOC_T},v1={DOC_V1}", DOC_BODY.replace(b"test", b"tesT"), DOC_SECRET, now=DOC_T)
    assert bad.value.status == 401


def test_centras_documented_example_is_stored_over_http(db_url: str) -> None:
    engine = make_engine(db_url)
    config = IntakeConfig(API_KEY, DOC_SECRET, signature_tolerance_s=10**10)  # 1970's t accepted here only
    with serve(create_intake_app(engine, config)) as srv:
        headers = {"X-Centra-Signature": f"t={DOC_T},v1={DOC_V1}",
                   "content-type": "application/x-www-form-urlencoded"}
        r = httpx.post(f"{srv.url}/centra/webhooks", content=DOC_BODY, headers=headers)
        assert r.status_code == 200 and r.json() == {"stored": 1, "duplicates": 0}
        wrong = {**headers, "X-Centra-Signature": f"t={DOC_T + 1},v1={DOC_V1}"}  # t is signed too
        assert httpx.post(f"{srv.url}/centra/webhooks", content=DOC_BODY, headers=wrong).status_code == 401
    with engine.connect() as conn:
        assert json.loads(conn.execute(text("SELECT payload FROM inbox_events")).scalar()) == {"x": "test"}


@pytest.mark.parametrize(("offset", "accepted"), [
    (-299, True), (-300, True), (-301, False),  # signed 299 / 300 / 301 s ago
    (299, True), (300, True), (301, False),  # a sender clock that far ahead
])
def test_signature_timestamp_tolerance(offset: int, accepted: bool) -> None:
    now = 1_780_000_000.0
    t = int(now) + offset
    header = f"t={t},v1={centra_signature(SECRET, str(t), DOC_BODY)}"
    for body in (None, DOC_BODY):  # the header-only pre-check and the full check agree
        if accepted:
            check_centra_signature(header, body, SECRET, now, tolerance_s=300)
        else:
            with pytest.raises(Rejected) as refused:
                check_centra_signature(header, body, SECRET, now, tolerance_s=300)
            assert refused.value.status == 401 and "300s tolerance" in refused.value.reason


# --- configuration from the environment ---------------------------------------------------------------


def test_limits_are_read_from_the_environment(monkeypatch) -> None:
    from pipelines.intake.server import config_from_env

    monkeypatch.setenv("NEWSTORE_EVENTSTREAM_API_KEY", "k")
    monkeypatch.setenv("CENTRA_WEBHOOK_SECRET", "s")
    for name in ("MAX_HEADER_BYTES", "QUARANTINE_MAX_BYTES", "QUARANTINE_RETENTION_DAYS", "MAX_BODY_BYTES"):
        monkeypatch.delenv(f"PIPELINES_INTAKE_{name}", raising=False)
    default = config_from_env()
    assert (default.max_header_bytes, default.quarantine_max_bytes, default.quarantine_retention_days) == (
        16384, 256 * 1024 * 1024, 30)
    monkeypatch.setenv("PIPELINES_INTAKE_MAX_HEADER_BYTES", "8192")
    monkeypatch.setenv("PIPELINES_INTAKE_QUARANTINE_MAX_BYTES", "20000000")
    monkeypatch.setenv("PIPELINES_INTAKE_QUARANTINE_RETENTION_DAYS", "7")
    config = config_from_env()
    assert (config.max_header_bytes, config.quarantine_max_bytes, config.quarantine_retention_days) == (
        8192, 20_000_000, 7)
    monkeypatch.setenv("PIPELINES_INTAKE_QUARANTINE_MAX_BYTES", "6000000")  # < 2 x the 5 MiB body limit
    with pytest.raises(SystemExit, match="at least twice"):
        config_from_env()
