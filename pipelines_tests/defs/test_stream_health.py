"""The event stream's health asset for real: a devstack's NewStore simulator delivers over loopback HTTP into the
intake, the integration is stopped through NewStore's REST API (`_stop`), and the sensor, run with a clock the
test moves (no sleeping), flags the halt at exactly the bound, reporting observation and check evaluations
without a run. Deliveries per hour, the oldest unprocessed event and the lost transactions are judged on rows
of known times in SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from pipelines.defs.pos import stream_health as mod
from pipelines.defs.pos.stream_health import (
    HALT,
    PER_HOUR,
    RECOVERED,
    UNPROCESSED,
    StreamHealthSettings,
    build_stream_health_sensor,
    evaluate,
    newstore_event_stream_health,
    newstore_event_stream_health_checks,
    stream_health_definitions,
)
from pipelines.defs.resources import EstateResource, StoreOfRecord
from pipelines.devstack import Stack
from pipelines.domain.timeutil import parse_time, utc_text
from pipelines.estate import load_estate
from pipelines.simulators.estate_gen import write_estate
from pipelines.store import make_engine, migrate
from pipelines.sync import SyncConfig
from pipelines.sync.queue import ingest

# The wall clock of the test run must not matter: stores always open, or never.
ALWAYS_OPEN = StreamHealthSettings(opening_hour=0, closing_hour=24)
NEVER_OPEN = StreamHealthSettings(opening_hour=9, closing_hour=9)
INTEGRATION = "/api/v1/org/integrations/eventstream/pipelines-intake"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _checks(result: dg.SensorResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)}


def _newest_delivery(engine) -> datetime:  # noqa: ANN001
    """The oracle: the newest NewStore row's received time, read straight from the table."""
    with engine.connect() as conn:
        return parse_time(conn.execute(text(
            "SELECT MAX(received_at) FROM inbox_events WHERE source = 'newstore'")).scalar())


def _sell(stack: Stack, n: int) -> None:
    store, sku = stack.estate.stores[0], stack.estate.skus()[0]
    for _ in range(n):
        stack.newstore.state.record_store_sale(store.newstore_node_id, [
            {"sku": sku, "quantity": 1, "unit_price": "100.00", "discount": "0.00"}], at=datetime.now(UTC))
    stack.flush()


def _inbox_count(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM inbox_events WHERE source = 'newstore'")).scalar()


def test_a_halted_stream_is_flagged_at_the_bound(tmp_path: Path) -> None:
    """Kills: a halt measured from the wrong delivery or flagged a minute late or early, check evaluations not
    reported by the sensor (or a run requested instead), a stopped integration not noticed at all, unprocessed
    stock events not seen past the sync's cursor, and records repeated every tick while nothing changed."""
    with Stack(tmp_path / "stack", sizes=20, stores=2, seed=5) as stack:
        _sell(stack, 3)  # each sale: order.created, order.opened (a stock event), order.completed
        delivered = _inbox_count(stack.engine)
        assert delivered >= 3
        last = _newest_delivery(stack.engine)
        clock = Clock(last + timedelta(minutes=1))
        sensor = build_stream_health_sensor(clock, name="stream_health_test_sensor")
        resources = {"store": StoreOfRecord(database_url=stack.database_url),
                     "estate": EstateResource(path=str(stack.estate_file)), "stream_health_settings": ALWAYS_OPEN}
        with dg.instance_for_test() as instance:
            def tick(cursor: str | None) -> dg.SensorResult:
                return sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))

            first = tick(None)
            assert not first.run_requests
            checks = _checks(first)
            assert set(checks) == {HALT, PER_HOUR, UNPROCESSED, RECOVERED}
            assert checks[HALT].passed and checks[HALT].metadata["silent_minutes"].value == 1.0
            assert checks[PER_HOUR].passed  # no history yet: no verdict
            (observation,) = [e for e in first.asset_events if isinstance(e, dg.AssetObservation)]
            assert observation.asset_key == newstore_event_stream_health.key
            # The sync has not run: the three order.opened events wait past its cursor, a minute old.
            assert checks[UNPROCESSED].passed and checks[UNPROCESSED].metadata["unprocessed"].value == 3
            clock.now = last + timedelta(minutes=6)
            waiting = tick(first.cursor)
            assert not _checks(waiting)[UNPROCESSED].passed
            assert _checks(waiting)[UNPROCESSED].severity == dg.AssetCheckSeverity.WARN
            ingest(stack.engine, stack.estate, SyncConfig(settle_s=0.0), now=clock.now)
            processed = tick(waiting.cursor)
            assert _checks(processed)[UNPROCESSED].passed
            assert _checks(processed)[UNPROCESSED].metadata["unprocessed"].value == 0
            assert not tick(processed.cursor).asset_events  # nothing changed: skipped, nothing recorded

            # NewStore stops the integration: later sales are published but never delivered.
            with stack.newstore_client() as client:
                assert client._json("POST", f"{INTEGRATION}/_stop", json={}, idempotent=True)["status"] == "stopped"
            _sell(stack, 2)
            assert _inbox_count(stack.engine) == delivered
            assert len(stack.newstore.state.events_published("order.opened")) == 5  # the ground truth

            clock.now = last + timedelta(minutes=10) - timedelta(seconds=1)
            before = tick(processed.cursor)
            # 9:59 of silence: still healthy. Nothing is recorded unless a clock hour ended since the last tick
            # (the hourly record); the test's clock follows the wall clock, so that can happen.
            hour_ended = (last + timedelta(minutes=6)).replace(minute=0, second=0, microsecond=0) != \
                clock.now.replace(minute=0, second=0, microsecond=0)
            if hour_ended:
                assert _checks(before)[HALT].passed
            else:
                assert not before.asset_events, before.skip_reason
            clock.now = last + timedelta(minutes=10)
            flagged = tick(before.cursor)
            halt = _checks(flagged)[HALT]
            assert not halt.passed and halt.severity == dg.AssetCheckSeverity.ERROR
            assert halt.metadata["silent_minutes"].value == 10.0
            assert halt.metadata["last_delivery_at"].value == utc_text(last)
            for event in flagged.asset_events:  # what the daemon does with them: stored without a run
                instance.report_runless_asset_event(event)
            record = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(newstore_event_stream_health.key, HALT), limit=1)[0]
            assert record.event.dagster_event.event_specific_data.passed is False

            # Restarted, it delivers again and the halt clears.
            with stack.newstore_client() as client:
                client._json("POST", f"{INTEGRATION}/_start", json={}, idempotent=True)
            _sell(stack, 1)
            assert _inbox_count(stack.engine) == delivered + 3
            clock.now = _newest_delivery(stack.engine) + timedelta(minutes=1)
            assert _checks(tick(flagged.cursor))[HALT].passed


DAY = datetime(2026, 11, 24, tzinfo=UTC)  # a Tuesday; Stockholm is UTC+1


def _row(n: int, received: datetime, *, source: str = "newstore", recovered: bool = False,
         name: str = "order.created") -> dict:
    envelope = {"name": name, "payload": {"id": f"o-{n}"}}
    if recovered:
        envelope["recovered"] = {"at": utc_text(received), "via": "GET /v0/orders/{id}", "evidence": []}
    return {"source": source, "dedup_key": f"{name}:{n}", "event_name": name, "event_time": utc_text(received),
            "received_at": utc_text(received), "payload": json.dumps(envelope, separators=(",", ":"))}


def _insert(engine, rows: list[dict]) -> None:  # noqa: ANN001
    rows = sorted(rows, key=lambda r: r["received_at"])  # ids follow the time received, as the intake's do
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO inbox_events (source, dedup_key, event_name, event_time, received_at, payload) "
                          "VALUES (:source, :dedup_key, :event_name, :event_time, :received_at, :payload)"), rows)


@pytest.fixture(scope="module")
def estate_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_estate(tmp_path_factory.mktemp("estate") / "estate.json", sizes=10, stores=2, seed=3)


@pytest.mark.parametrize("judged", [20, 5])
def test_deliveries_per_hour_against_the_same_hour_before(db_url: str, estate_file: Path, judged: int) -> None:
    """The 10:00-11:00 local hour (09:00Z) had 20 NewStore deliveries on each of the 7 days before; today 20 is
    within the band and 5 is low (< 10). Rows recovery landed, Centra's rows and the neighbouring hours must not
    count, and the days before the stream's first delivery are no history. Kills a count over the wrong rows or
    hours (UTC day steps, the current hour instead of the last complete one) and a median over missing days."""
    engine = make_engine(db_url)
    estate = load_estate(estate_file)
    assert estate.business_timezone == "Europe/Stockholm"
    rows, n = [], 0
    for k in range(7, -1, -1):
        start = DAY - timedelta(days=k) + timedelta(hours=9)
        count = judged if k == 0 else 20
        for i in range(count):
            n += 1
            rows.append(_row(n, start + timedelta(seconds=30 + i * 3000 / count)))
        for offset in (timedelta(minutes=-1), timedelta(hours=1, seconds=1)):  # the hours around it
            n += 1
            rows.append(_row(n, start + offset))
        for kind in ("recovered", "centra"):
            n += 1
            rows.append(_row(n, start + timedelta(minutes=20), recovered=kind == "recovered",
                             source="centra" if kind == "centra" else "newstore"))
    _insert(engine, rows)
    now = DAY + timedelta(hours=10, minutes=5)  # 11:05 local: the hour judged is 10:00-11:00
    health = evaluate(engine, estate, StreamHealthSettings().settings(), now)
    per_hour = {o.name: o for o in health.outcomes}[PER_HOUR]
    assert (per_hour.metadata["deliveries"], per_hour.metadata["expected"]) == (judged, 20.0)
    assert per_hour.metadata["history"].value == [20] * 7
    assert per_hour.passed is (judged == 20)
    # The stream began 7 days ago at 08:59Z: with a history of 10 days asked, only those 7 days count.
    longer = evaluate(engine, estate, StreamHealthSettings(history_days=10).settings(), now)
    assert {o.name: o for o in longer.outcomes}[PER_HOUR].metadata["history"].value == [20] * 7
    # The newest delivery (not the recovered row at 09:20Z, which is older anyway) is 10:00:01Z.
    halt = {o.name: o for o in health.outcomes}[HALT]
    assert halt.metadata["last_delivery_at"] == utc_text(DAY + timedelta(hours=10, seconds=1))


def test_recovered_rows_are_not_deliveries(db_url: str, estate_file: Path) -> None:
    """Recovery lands rows into the inbox while the stream is silent: they must not hide the halt. Kills a last
    delivery read without skipping recovered rows."""
    engine = make_engine(db_url)
    estate = load_estate(estate_file)
    streamed = DAY + timedelta(hours=10)
    _insert(engine, [_row(1, streamed), *(_row(2 + i, streamed + timedelta(minutes=5 + i), recovered=True)
                                          for i in range(3))])
    health = evaluate(engine, estate, ALWAYS_OPEN.settings(), streamed + timedelta(minutes=10))
    halt = {o.name: o for o in health.outcomes}[HALT]
    assert not halt.passed and halt.metadata["last_delivery_at"] == utc_text(streamed)


def test_lost_transactions_waiting_past_due_or_unrecoverable(db_url: str, estate_file: Path) -> None:
    """A transaction waiting 10 minutes past due fails the check, 9 minutes does not; an unrecoverable one
    resolved within 24 hours fails it, an older one does not. Kills wrong status names or time comparisons."""
    engine = make_engine(db_url)
    estate = load_estate(estate_file)
    now = DAY + timedelta(hours=12)

    def put(tid: str, status: str, due: datetime, resolved: datetime | None = None) -> None:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO pos_transaction_recoveries (kind, transaction_id, status, evidence, first_seen_at, "
                "due_at, attempts, resolved_at) VALUES ('order', :tid, :status, '[]', :due, :due, 0, :resolved)"),
                {"tid": tid, "status": status, "due": utc_text(due), "resolved": resolved and utc_text(resolved)})

    def outcome() -> mod.Outcome:
        return {o.name: o for o in evaluate(engine, estate, ALWAYS_OPEN.settings(), now).outcomes}[RECOVERED]

    put("w1", "waiting", now - timedelta(minutes=9))
    put("u-old", "unrecoverable", now - timedelta(days=3), now - timedelta(hours=25))
    put("r1", "recovered", now - timedelta(hours=1), now - timedelta(minutes=50))
    assert outcome().passed
    put("w2", "waiting", now - timedelta(minutes=10))
    failed = outcome()
    assert not failed.passed and failed.metadata["overdue_waiting"] == 1 and failed.severity.value == "WARN"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM pos_transaction_recoveries WHERE transaction_id = 'w2'"))
    put("u-new", "unrecoverable", now - timedelta(hours=2), now - timedelta(hours=1))
    assert outcome().metadata["recent_unrecoverable"] == 1 and not outcome().passed


def test_definitions_load_and_the_checks_run_on_demand(tmp_path: Path, estate_file: Path) -> None:
    """The definitions merge with the store and estate resources, the sensor starts on its own, and executing
    the declared checks from the UI (here in process) judges as the sensor does (real time, stores closed): an
    unrecoverable transaction resolved an hour ago fails the recovery check, the rest pass. Kills checks
    declared but not executable or declared under other names than the sensor reports."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO pos_transaction_recoveries (kind, transaction_id, status, evidence, first_seen_at, due_at, "
            "attempts, resolved_at) VALUES ('order', 'gone', 'unrecoverable', '[]', :t, :t, 1, :t)"),
            {"t": utc_text(now - timedelta(hours=1))})
    resources = {"store": StoreOfRecord(database_url=url), "estate": EstateResource(path=str(estate_file))}
    defs = dg.Definitions.merge(stream_health_definitions(),
                                dg.Definitions(resources={**resources, "stream_health_settings": NEVER_OPEN}))
    dg.Definitions.validate_loadable(defs)
    sensor = defs.resolve_sensor_def("newstore_event_stream_health_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING and sensor.minimum_interval_seconds == 60
    with dg.instance_for_test() as instance:
        run = dg.materialize([newstore_event_stream_health, newstore_event_stream_health_checks], instance=instance,
                             resources={**resources, "stream_health_settings": NEVER_OPEN},
                             selection=dg.AssetSelection.checks(newstore_event_stream_health_checks))
        on_demand = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
        ticked = _checks(sensor(dg.build_sensor_context(instance=instance, resources={
            **resources, "stream_health_settings": NEVER_OPEN})))
    assert on_demand == {HALT: True, PER_HOUR: True, UNPROCESSED: True, RECOVERED: False}
    assert {name: e.passed for name, e in ticked.items()} == on_demand
