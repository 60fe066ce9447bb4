"""The NewStore event stream's own health (issue 11): `newstore_event_stream_health`, an observed asset with four
checks, evaluated once a minute by `newstore_event_stream_health_sensor` without a run.

Like `exceptions`, the asset is declared (an AssetSpec) and observed, never materialised: the sensor reads the
store of record, judges it with `pipelines.domain.stream_health`, and reports an AssetObservation with the
figures and one AssetCheckEvaluation per check (Dagster 1.13's `SensorResult(asset_events=...)` takes check
evaluations and stores them without a run). It reports when a check's outcome changes or a new hour has
ended, so the event log gets a few records an hour, not one a minute; otherwise the tick is skipped with the
figures as its reason. The checks are also declared as a multi-asset check that evaluates the same way, so
they show in the UI under the asset and can be executed on demand.

Reads: `inbox_events` (deliveries: NewStore's rows, without the ones recovery landed; no index on
`received_at`, so time ranges are found by binary search on the primary key), the stock sync's inbox cursor
(`stock_sync_cursors`, name 'inbox': stock events past it are unprocessed), `pos_transaction_recoveries`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field
from sqlalchemy import Engine, case, func, select

from pipelines.dagster_lib.common import INTEGRATION, RETAIL_OPERATIONS
from pipelines.defs.intake import newstore_event_inbox
from pipelines.defs.resources import EstateResource, StoreOfRecord
from pipelines.domain import stream_health as sh
from pipelines.domain.stock_movements import STOCK_EVENTS
from pipelines.domain.timeutil import parse_time, utc_text
from pipelines.estate import Estate
from pipelines.store.db import table
from pipelines.store.recoveries import UNRECOVERABLE, WAITING
from pipelines.sync.queue import INBOX_CURSOR, get_cursor

newstore_event_stream_health = dg.AssetSpec(
    "newstore_event_stream_health",
    group_name="pos",
    deps=[newstore_event_inbox, "pos_transaction_recoveries"],
    owners=[*INTEGRATION, *RETAIL_OPERATIONS],
    kinds={"newstore", "sql"},
    description="Health of NewStore's event stream into the intake: deliveries per hour against the expectation "
                "(same hour on previous days, trading hours), a halt (no delivery for minutes while stores "
                "trade: NewStore stops delivering when its callbacks get errors), the oldest stock event the "
                "sync has not processed, and the lost transactions recovery has not recovered. Observed once a "
                "minute by `newstore_event_stream_health_sensor`, recorded when a check's outcome changes and "
                "hourly.",
)

HALT, PER_HOUR, UNPROCESSED, RECOVERED = ("stream_not_halted", "deliveries_per_hour_within_expectation",
                                          "oldest_unprocessed_event_fresh", "lost_transactions_recovered")
CHECK_SPECS = [
    dg.AssetCheckSpec(HALT, asset=newstore_event_stream_health.key,
                      description="ERROR: no NewStore delivery for the halt time while stores trade."),
    dg.AssetCheckSpec(PER_HOUR, asset=newstore_event_stream_health.key,
                      description="WARN: the last complete hour's deliveries outside the band expected from the "
                                  "same hour on previous days."),
    dg.AssetCheckSpec(UNPROCESSED, asset=newstore_event_stream_health.key,
                      description="WARN, then ERROR: a stock event waits past the stock sync's cursor too long."),
    dg.AssetCheckSpec(RECOVERED, asset=newstore_event_stream_health.key,
                      description="WARN: a lost store transaction waits long past due, or one was found "
                                  "unrecoverable lately."),
]


class StreamHealthSettings(dg.ConfigurableResource):
    """Bounds of the event stream's health checks (`pipelines.domain.stream_health.StreamHealthSettings`)."""

    halt_after_minutes: float = Field(default=10.0, gt=0, description=(
        "No delivery for this long while stores trade is a halt (PIPELINES_STREAM_HALT_AFTER_MINUTES)."))
    halt_min_expected: float = Field(default=3.0, ge=0, description=(
        "...provided the hour's expectation gives the silence at least this many deliveries "
        "(PIPELINES_STREAM_HALT_MIN_EXPECTED)."))
    opening_hour: int = Field(default=9, ge=0, le=24, description=(
        "Stores open at this local hour, each in its own timezone (PIPELINES_STORE_OPENING_HOUR)."))
    closing_hour: int = Field(default=20, ge=0, le=24, description=(
        "...and close at this one (PIPELINES_STORE_CLOSING_HOUR)."))
    history_days: int = Field(default=7, ge=1, description=(
        "Previous days whose same hour makes an hour's expectation (PIPELINES_STREAM_HISTORY_DAYS)."))
    low_ratio: float = Field(default=0.5, description="An hour below this share of its expectation is low.")
    high_ratio: float = Field(default=3.0, description="An hour above this multiple of its expectation is high.")
    unprocessed_warn_minutes: float = Field(default=5.0, ge=0, description=(
        "The oldest unprocessed stock event this old: WARN (PIPELINES_STREAM_UNPROCESSED_WARN_MINUTES)."))
    unprocessed_error_minutes: float = Field(default=30.0, ge=0, description=(
        "...this old: ERROR (PIPELINES_STREAM_UNPROCESSED_ERROR_MINUTES)."))
    recovery_overdue_minutes: float = Field(default=10.0, ge=0, description=(
        "A lost transaction still waiting this long past its due time fails the recovery check "
        "(PIPELINES_STREAM_RECOVERY_OVERDUE_MINUTES)."))

    def settings(self) -> sh.StreamHealthSettings:
        return sh.StreamHealthSettings(
            halt_after=timedelta(minutes=self.halt_after_minutes), halt_min_expected=self.halt_min_expected,
            opening_hours=(self.opening_hour, self.closing_hour), history_days=self.history_days,
            low_ratio=self.low_ratio, high_ratio=self.high_ratio,
            unprocessed_warn=timedelta(minutes=self.unprocessed_warn_minutes),
            unprocessed_error=timedelta(minutes=self.unprocessed_error_minutes),
            recovery_overdue=timedelta(minutes=self.recovery_overdue_minutes))


# --- reads -------------------------------------------------------------------------------------------

_RECOVERED_MARK = '%"recovered":{"at":%'  # the envelope recovery lands (pipelines/store/recoveries.py)
_COMMIT_MARGIN = timedelta(seconds=60)  # ids follow received_at to within this (concurrent intake workers)


def _first_id_from(conn: Any, inbox: Any, at: datetime) -> int:
    """The lowest id whose row (or any later row) was received at or after `at`, by binary search on the
    primary key (received_at follows the id to within `_COMMIT_MARGIN`; callers widen ranges by it)."""
    lo, hi = conn.execute(select(func.min(inbox.c.id), func.max(inbox.c.id))).one()
    if lo is None:
        return 0
    text, hi = utc_text(at), hi + 1
    while lo < hi:
        mid = (lo + hi) // 2
        got = conn.execute(select(inbox.c.received_at).where(inbox.c.id >= mid).order_by(inbox.c.id).limit(1)).first()
        if got is None or got[0] >= text:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _delivered(inbox: Any) -> tuple[Any, ...]:
    return inbox.c.source == "newstore", ~inbox.c.payload.like(_RECOVERED_MARK)


def count_deliveries(engine: Engine, hours: list[tuple[datetime, datetime]]) -> list[int]:
    """NewStore deliveries received in each [start, end) (rows recovery landed left out)."""
    inbox = table(engine, "inbox_events")
    out = []
    with engine.connect() as conn:
        for a, b in hours:
            lo, hi = _first_id_from(conn, inbox, a - _COMMIT_MARGIN), _first_id_from(conn, inbox, b + _COMMIT_MARGIN)
            out.append(int(conn.execute(select(func.count()).where(
                inbox.c.id >= lo, inbox.c.id < hi, inbox.c.received_at >= utc_text(a),
                inbox.c.received_at < utc_text(b), *_delivered(inbox))).scalar() or 0))
    return out


def first_delivery(engine: Engine) -> datetime | None:
    inbox = table(engine, "inbox_events")
    with engine.connect() as conn:
        got = conn.execute(select(inbox.c.received_at).where(inbox.c.source == "newstore")
                           .order_by(inbox.c.id).limit(1)).scalar()
    return parse_time(got) if got else None


def last_delivery(engine: Engine, now: datetime, lookback: timedelta = timedelta(hours=24),
                  page: int = 500) -> datetime | None:
    """The newest NewStore delivery received by `now` and within `lookback` (rows recovery landed skipped),
    read newest first by id."""
    inbox = table(engine, "inbox_events")
    recovered = case((inbox.c.payload.like(_RECOVERED_MARK), 1), else_=0)
    now_text, oldest, cutoff = utc_text(now), utc_text(now - lookback), utc_text(now - lookback - _COMMIT_MARGIN)
    before = None
    with engine.connect() as conn:
        for _ in range(1000):  # bounded: 500,000 rows at most
            q = select(inbox.c.id, inbox.c.received_at, recovered).where(inbox.c.source == "newstore")
            if before is not None:
                q = q.where(inbox.c.id < before)
            rows = conn.execute(q.order_by(inbox.c.id.desc()).limit(page)).all()
            for _id, received_at, was_recovered in rows:
                if received_at < cutoff:
                    return None
                if not was_recovered and received_at <= now_text:
                    return parse_time(received_at) if received_at >= oldest else None
            if len(rows) < page:
                return None
            before = rows[-1][0]
    return None


def oldest_unprocessed(engine: Engine) -> tuple[int, datetime | None, int]:
    """(the stock sync's inbox cursor, the oldest stock event past it (received_at), how many are past it)."""
    inbox = table(engine, "inbox_events")
    cursor = get_cursor(engine, INBOX_CURSOR)
    with engine.connect() as conn:
        oldest, n = conn.execute(select(func.min(inbox.c.received_at), func.count()).where(
            inbox.c.id > cursor, inbox.c.source == "newstore", inbox.c.event_name.in_(STOCK_EVENTS))).one()
    return cursor, (parse_time(oldest) if oldest else None), int(n or 0)


def recovery_figures(engine: Engine, now: datetime, settings: sh.StreamHealthSettings) -> dict[str, Any]:
    rec = table(engine, "pos_transaction_recoveries")
    with engine.connect() as conn:
        by_status = {str(s): int(n) for s, n in conn.execute(
            select(rec.c.status, func.count()).group_by(rec.c.status)).all()}
        overdue = conn.execute(select(func.count()).where(
            rec.c.status == WAITING, rec.c.due_at <= utc_text(now - settings.recovery_overdue))).scalar()
        unrecoverable = conn.execute(select(func.count()).where(
            rec.c.status == UNRECOVERABLE, rec.c.resolved_at >= utc_text(now - settings.unrecoverable_window))).scalar()
    return {"by_status": by_status, "overdue_waiting": int(overdue or 0),
            "recent_unrecoverable": int(unrecoverable or 0)}


# --- evaluation --------------------------------------------------------------------------------------

@dataclass
class Outcome:
    name: str
    passed: bool
    severity: dg.AssetCheckSeverity
    description: str
    metadata: dict[str, Any]


@dataclass
class Health:
    now: datetime
    hour: str  # start of the last complete hour (the per-hour check's subject)
    counts: dict[str, Any]  # the hourly counts, kept in the sensor's cursor until the next hour ends
    outcomes: list[Outcome] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """What a change of is worth recording: each check's outcome, and the hour judged."""
        key = [self.hour, *((o.name, o.passed, o.severity.value) for o in self.outcomes)]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def _hourly(engine: Engine, estate: Estate, settings: sh.StreamHealthSettings, now: datetime) -> dict[str, Any]:
    """Deliveries of the last complete hour, of the same hour on previous days and of the current hour's
    previous days (hours before the stream's first delivery left out)."""
    tz = estate.business_timezone
    judged = sh.last_complete_hour(now, tz)
    current = (sh.hour_start(now, tz), sh.hour_start(now, tz) + timedelta(hours=1))
    first = first_delivery(engine)
    keep = lambda hours: [h for h in hours if first is not None and h[0] >= first]  # noqa: E731
    judged_history, current_history = (keep(sh.same_hour_before(judged[0], tz, settings.history_days)),
                                       keep(sh.same_hour_before(current[0], tz, settings.history_days)))
    counts = count_deliveries(engine, [judged, *judged_history, *current_history])
    n = len(judged_history)
    return {"hour": utc_text(judged[0]), "observed": counts[0], "history": counts[1:1 + n],
            "current_history": counts[1 + n:]}


def evaluate(engine: Engine, estate: Estate, settings: sh.StreamHealthSettings, now: datetime,
             cached: dict[str, Any] | None = None) -> Health:
    """Every figure and check outcome at `now`; `cached` hourly counts are reused while their hour is the
    last complete one."""
    tz = estate.business_timezone
    zones = [s.timezone for s in estate.stores]
    hours = settings.opening_hours
    judged = sh.last_complete_hour(now, tz)
    counts = cached if cached and cached.get("hour") == utc_text(judged[0]) else _hourly(engine, estate, settings, now)
    health = Health(now, counts["hour"], counts)

    # Halt: the current hour's expectation sets how long a silence is unlikely.
    now_trades = sh.hour_trades(sh.hour_start(now, tz), sh.hour_start(now, tz) + timedelta(hours=1), zones, hours)
    rate = sh.expect(counts["current_history"], now_trades, settings).expected
    last = last_delivery(engine, now)
    since = sh.trading_since(now, zones, hours)
    halted = sh.halt(now, last, since, rate, settings)
    minutes = lambda d: None if d is None else round(d / timedelta(minutes=1), 1)  # noqa: E731
    halt_md = {"last_delivery_at": utc_text(last) if last else None, "silent_minutes": minutes(halted.silent_for),
               "stores_trading": halted.trading, "trading_since": utc_text(since) if since else None,
               "expected_per_hour_now": rate, "expected_in_silence": halted.expected_in_silence,
               "halt_after_minutes": minutes(settings.halt_after)}
    health.outcomes.append(Outcome(
        HALT, not halted.halted, dg.AssetCheckSeverity.ERROR,
        (f"halted: no delivery for {halt_md['silent_minutes']} min while stores trade" if halted.halted else
         "delivering" if halted.trading else "stores closed"), halt_md))

    # Deliveries of the last complete hour against its expectation.
    judged_trades = sh.hour_trades(*judged, zones, hours)
    exp = sh.expect(counts["history"], judged_trades, settings)
    verdict = sh.verdict(counts["observed"], exp)
    hour_md = {"hour_start": counts["hour"], "deliveries": counts["observed"], "expected": exp.expected,
               "low_below": exp.low, "high_above": exp.high, "history": dg.MetadataValue.json(list(exp.history)),
               "stores_trading": judged_trades, "verdict": verdict}
    health.outcomes.append(Outcome(
        PER_HOUR, verdict in (sh.OK, sh.NO_HISTORY), dg.AssetCheckSeverity.WARN,
        f"{counts['observed']} deliveries in the hour from {counts['hour']}, expected "
        f"{'unknown (no history)' if exp.expected is None else exp.expected}: {verdict}", hour_md))

    # The oldest stock event the sync has not processed.
    cursor, oldest, waiting = oldest_unprocessed(engine)
    severity = sh.unprocessed_severity(now, oldest, settings)
    level = dg.AssetCheckSeverity.ERROR if severity == sh.ERROR else dg.AssetCheckSeverity.WARN
    age = None if oldest is None else now - oldest
    unprocessed_md = {"sync_cursor": cursor, "unprocessed": waiting,
                      "oldest_unprocessed_at": utc_text(oldest) if oldest else None,
                      "oldest_unprocessed_minutes": minutes(age),
                      "warn_minutes": minutes(settings.unprocessed_warn),
                      "error_minutes": minutes(settings.unprocessed_error)}
    health.outcomes.append(Outcome(
        UNPROCESSED, severity is None, level,
        "nothing waiting" if oldest is None else f"{waiting} stock event(s) unprocessed, oldest "
                                                 f"{unprocessed_md['oldest_unprocessed_minutes']} min", unprocessed_md))

    # Lost transactions: recovered in time, none found unrecoverable lately.
    rec = recovery_figures(engine, now, settings)
    ok = sh.recovery_ok(rec["overdue_waiting"], rec["recent_unrecoverable"])
    health.outcomes.append(Outcome(
        RECOVERED, ok, dg.AssetCheckSeverity.WARN,
        f"{rec['overdue_waiting']} waiting past due, {rec['recent_unrecoverable']} unrecoverable in the last "
        f"{settings.unrecoverable_window / timedelta(hours=1):g} h",
        {"by_status": dg.MetadataValue.json(rec["by_status"]), "overdue_waiting": rec["overdue_waiting"],
         "recent_unrecoverable": rec["recent_unrecoverable"]}))
    health.figures = {"evaluated_at": utc_text(now), **{f"{o.name}.{k}": v for o in health.outcomes
                                                       for k, v in o.metadata.items()},
                      "failing": dg.MetadataValue.json([o.name for o in health.outcomes if not o.passed])}
    return health


def _clean(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata Dagster accepts: None as text."""
    return {k: ("none" if v is None else v) for k, v in metadata.items()}


def asset_events(health: Health) -> list[dg.AssetObservation | dg.AssetCheckEvaluation]:
    key = newstore_event_stream_health.key
    return [dg.AssetObservation(asset_key=key, metadata=_clean(health.figures)),
            *(dg.AssetCheckEvaluation(asset_key=key, check_name=o.name, passed=o.passed, severity=o.severity,
                                      description=o.description, metadata=_clean(o.metadata))
              for o in health.outcomes)]


def build_stream_health_sensor(clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                               name: str = "newstore_event_stream_health_sensor") -> dg.SensorDefinition:
    """The sensor, reading the time from `clock` (tests move it instead of sleeping)."""

    @dg.sensor(name=name, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Once a minute: judges the NewStore event stream's health (halt, deliveries per hour, "
                           "oldest unprocessed event, lost transactions) and records an observation of "
                           "`newstore_event_stream_health` with its check evaluations when an outcome changes or "
                           "an hour has ended; never launches a run.")
    def _sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord, estate: EstateResource,
                stream_health_settings: StreamHealthSettings) -> dg.SensorResult:
        previous = json.loads(context.cursor) if context.cursor else {}
        health = evaluate(store.engine(), estate.get(), stream_health_settings.settings(), clock(),
                          previous.get("counts"))
        cursor = json.dumps({"state": health.state, "counts": health.counts})
        failing = [o.name for o in health.outcomes if not o.passed]
        if previous.get("state") == health.state:
            return dg.SensorResult(skip_reason=f"unchanged: {', '.join(failing) or 'all checks pass'}", cursor=cursor)
        return dg.SensorResult(asset_events=asset_events(health), cursor=cursor)

    return _sensor


newstore_event_stream_health_sensor = build_stream_health_sensor()


@dg.multi_asset_check(specs=CHECK_SPECS, name="newstore_event_stream_health_checks",
                      description="The stream health checks on demand (the sensor records them once a minute "
                                  "when an outcome changes).")
def newstore_event_stream_health_checks(store: StoreOfRecord, estate: EstateResource,
                                        stream_health_settings: StreamHealthSettings):  # noqa: ANN201
    health = evaluate(store.engine(), estate.get(), stream_health_settings.settings(), datetime.now(UTC))
    for o in health.outcomes:
        yield dg.AssetCheckResult(asset_key=newstore_event_stream_health.key, check_name=o.name, passed=o.passed,
                                  severity=o.severity, description=o.description, metadata=_clean(o.metadata))


def stream_health_definitions() -> dg.Definitions:
    """The asset, its checks and the sensor (resource `stream_health_settings`: `pipelines/definitions.py`)."""
    return dg.Definitions(assets=[newstore_event_stream_health], asset_checks=[newstore_event_stream_health_checks],
                          sensors=[newstore_event_stream_health_sensor])
