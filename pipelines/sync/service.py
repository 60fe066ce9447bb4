"""The stock sync pass and run: recover, ingest, net, govern, send, commit.

A *pass* settles unresolved batches (crash recovery), decodes new inbox events, nets the pending
movements per (warehouse, SKU), groups them into mutations, and sends what the rate budget allows,
most urgent first, each under the exactly-once protocol of `batches`. A *run* repeats passes for
`drain_s` seconds (one Dagster run drains the queue continuously instead of paying a run start-up
per few movements), holding the sync lock throughout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from threading import Event
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from pipelines.connectors.centra import CentraClient, CentraGraphQLError, CentraUserError
from pipelines.connectors.errors import ConnectorError, RateLimited
from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.sync.exceptions import STOCK_SYNC_REJECTED, STOCK_SYNC_UNKNOWN_SIZE
from pipelines.domain.sync.governor import Governor, mark_critical, online_keys, rank
from pipelines.domain.sync.model import KeyPlan, Mutation, QueuedMovement
from pipelines.domain.sync.netting import group_mutations, net_key, newer_count
from pipelines.domain.sync.stats import percentile
from pipelines.domain.timeutil import human_duration, normalise_time, parse_time, utc_text
from pipelines.estate import Estate
from pipelines.store.db import table
from pipelines.store.inbox import record_exceptions
from pipelines.sync import batches as b
from pipelines.sync.centra_io import failing_skus, find_applied, send, stock_view
from pipelines.sync.config import SyncConfig
from pipelines.sync.lock import sync_lock
from pipelines.sync.queue import (
    applied_after,
    count_pending,
    finish_without_mutation,
    ingest,
    load_failed,
    load_pending,
    load_watermarks,
    now_text,
)

log = logging.getLogger(__name__)

#: Errors after which a pass stops and the run backs off (the batch in flight stays `prepared`).
TRANSIENT = (ConnectorError, httpx.HTTPError, OperationalError)


@dataclass
class PassReport:
    ingested: int = 0
    applied: int = 0
    superseded: int = 0
    failed: int = 0
    mutations: int = 0
    recovered: int = 0
    deferred: int = 0
    pending_keys: int = 0
    lags: list[float] = field(default_factory=list)  # steady state: events that happened during the run
    backlog_lags: list[float] = field(default_factory=list)  # events from before the run started
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.ingested or self.mutations or self.recovered or self.applied or self.superseded)


@dataclass
class RunReport:
    run_id: str | None
    kind: str = "sync"
    started_at: str = field(default_factory=now_text)
    finished_at: str = ""
    passes: int = 0
    ingested: int = 0
    applied: int = 0
    superseded: int = 0
    failed: int = 0
    mutations: int = 0
    recovered: int = 0
    deferred: int = 0
    rate_limited: int = 0
    budget_used: int = 0
    budget_available: int = 0
    pending_after: int = 0
    lags: list[float] = field(default_factory=list)  # steady state: events that happened during the run
    backlog_lags: list[float] = field(default_factory=list)  # backlog caught up: events from before the run
    errors: list[str] = field(default_factory=list)

    def add(self, rep: PassReport) -> None:
        self.passes += 1
        for name in ("ingested", "applied", "superseded", "failed", "mutations", "recovered"):
            setattr(self, name, getattr(self, name) + getattr(rep, name))
        self.deferred = rep.deferred
        self.lags += rep.lags
        self.backlog_lags += rep.backlog_lags
        self.errors += rep.errors

    def lag(self, q: float) -> float | None:
        value = percentile(self.lags, q)
        return None if value is None else round(value, 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passes": self.passes, "movements_ingested": self.ingested, "movements_applied": self.applied,
            "movements_superseded": self.superseded, "movements_failed": self.failed, "mutations": self.mutations,
            "batches_recovered": self.recovered, "mutations_deferred": self.deferred,
            "rate_limited": self.rate_limited, "budget_used": self.budget_used,
            "budget_available": self.budget_available, "pending_after": self.pending_after,
            "lag_p50_s": self.lag(50), "lag_p95_s": self.lag(95),
            "lag_max_s": round(max(self.lags), 3) if self.lags else None,
            "backlog_movements": len(self.backlog_lags),
            "backlog_max_age_s": round(max(self.backlog_lags), 3) if self.backlog_lags else None,
        }

    def readable(self) -> dict[str, str]:
        """The lags in human units (s, min, h, d), for run tags and metadata."""
        d = self.as_dict()
        return {"lag_p50": human_duration(d["lag_p50_s"]), "lag_p95": human_duration(d["lag_p95_s"]),
                "lag_max": human_duration(d["lag_max_s"]),
                "backlog_caught_up": f"{d['backlog_movements']} movement(s), oldest "
                                     f"{human_duration(d['backlog_max_age_s'])} old"
                if d["backlog_movements"] else "none"}


def _lag_s(event_time: str, confirmed_at: str) -> float:
    return (parse_time(confirmed_at) - parse_time(event_time)).total_seconds()


class StockSync:
    """Stock sync against one store of record and one Centra tenant (see module docstring)."""

    def __init__(self, engine: Engine, estate: Estate, client: CentraClient, config: SyncConfig | None = None, *,
                 run_id: str | None = None, governor: Governor | None = None,
                 after_accept: Callable[[b.Batch], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.engine = engine
        self.estate = estate
        self.client = client
        self.config = config or SyncConfig()
        self.run_id = run_id
        self.clock = clock
        self.sleep = sleep
        self.governor = governor or Governor(self.config.rate_share, clock=clock)
        self.after_accept = after_accept
        self.size_ids = {sku: ref.size.size_id for sku, ref in estate.by_sku.items()}
        self.online = online_warehouses(estate)
        self._event_times: dict[int, str] = {}
        self._backlog_before = now_text()  # set per run: events before this are backlog
        self._stock_cache: dict[tuple[int, str], tuple[int, int, float]] = {}  # (physical, free, read at)

    # ------------------------------------------------------------------ run

    def run(self, drain_s: float | None = None, stop: Event | None = None, kind: str = "sync") -> RunReport:
        """Passes for `drain_s` seconds (0: one pass), under the sync lock; records the run."""
        drain = self.config.drain_s if drain_s is None else drain_s
        report = RunReport(self.run_id, kind)
        self._backlog_before = utc_text(parse_time(report.started_at) - timedelta(seconds=self.config.backlog_after_s))
        spent_before = self.governor.spent_mutations
        limited_before = self.governor.rate_limited
        with sync_lock(self.engine):
            deadline = self.clock() + drain
            backoff = 0.0
            while True:
                try:
                    rep = self.pass_once()
                    report.budget_available = max(report.budget_available, self.governor.budget().mutations)
                    backoff = 0.0
                except RateLimited as exc:
                    self.governor.on_rate_limited(exc.retry_after)
                    rep = PassReport(errors=[str(exc)])
                except TRANSIENT as exc:
                    rep = PassReport(errors=[f"{type(exc).__name__}: {exc}"])
                    log.warning("stock sync pass failed: %s", exc)
                    backoff = min(10.0, max(0.5, backoff * 2))
                report.add(rep)
                now = self.clock()
                if now >= deadline or (stop is not None and stop.is_set()):
                    break
                self.sleep(min(self._pause(rep, backoff), max(0.0, deadline - now)))
            report.pending_after = count_pending(self.engine)
        report.budget_used = self.governor.spent_mutations - spent_before
        report.rate_limited = self.governor.rate_limited - limited_before
        report.finished_at = now_text()
        record_run(self.engine, report)
        return report

    def _pause(self, rep: PassReport, backoff: float) -> float:
        if backoff:
            return backoff
        if rep.deferred:
            return min(self.config.max_wait_s, max(0.1, self.governor.seconds_until_mutation()))
        return 0.0 if rep.busy else self.config.poll_s

    # ------------------------------------------------------------------ pass

    def pass_once(self) -> PassReport:
        rep = PassReport()
        self._refresh_limits()
        self._recover(rep)
        rep.ingested = ingest(self.engine, self.estate, self.config).movements
        blocked = {(x.warehouse_id, sku) for x in b.unresolved(self.engine) for sku in x.lines}
        pending = load_pending(self.engine, exclude=blocked)
        rep.pending_keys = len(pending)
        if not pending:
            return rep
        plans = self._counts_as_deltas(self._plan(pending))
        self._settle_trivial(plans, rep)
        mutations = group_mutations([p for p in plans if p.operation != "none"], self.config.max_lines)
        if not mutations:
            return rep
        budget = self.governor.budget()
        if len(mutations) > budget.mutations and budget.requests > budget.mutations + 1:
            self._rank(mutations)
        ranked = rank(mutations, self.config.max_defer_s)
        waited = 0.0
        for i, m in enumerate(ranked):
            # Keep sending in this order as the budget refills, for up to `send_window_s`: planning a
            # pass costs far more than waiting for the next token, but new (maybe critical) movements
            # are only seen by the next pass.
            wait = self.governor.seconds_until_mutation()
            if wait > 0 and waited + wait <= self.config.send_window_s:
                self.sleep(wait)
                waited += wait
            if self.governor.budget().mutations < 1 or not self._send(b.new_batch(m), rep):
                rep.deferred = len(ranked) - i
                break
        return rep

    def _refresh_limits(self) -> None:
        g = self.governor
        now = self.clock()
        if g.observed_at is not None and now - g.observed_at < self.config.rate_refresh_s:
            return
        if now < g.blocked_until:
            return
        try:
            g.observe(self.client.rate_limits(), now)
        except RateLimited as exc:
            g.on_rate_limited(exc.retry_after)

    def _plan(self, pending: dict[tuple[int, str], list[QueuedMovement]]) -> list[KeyPlan]:
        """Net every key. A key getting a newer count also takes its failed movements: the count
        re-bases them (absorbed if older, carried in the absolute quantity if newer)."""
        watermarks = load_watermarks(self.engine, pending)
        counts = {key: newer_count(moves, watermarks.get(key)) for key, moves in pending.items()}
        failed = load_failed(self.engine, [k for k, c in counts.items() if c is not None])
        plans = []
        for key, moves in pending.items():
            moves = moves + failed.get(key, [])
            for m in moves:
                self._event_times[m.id] = m.event_time
            count = counts[key]
            plans.append(net_key(moves, watermarks.get(key), applied_after(self.engine, key, count) if count else 0))
        return plans

    def _counts_as_deltas(self, plans: list[KeyPlan]) -> list[KeyPlan]:
        """With `counts_as="delta"`, an absolute quantity becomes the difference to Centra's physical
        stock read just now, so it rides in the warehouse's changeStock instead of a setStock of its
        own (one mutation fewer) and can always be found in the ledger. Keys whose stock cannot be
        read now wait for the next pass."""
        sets = [p for p in plans if p.operation == "set"]
        if self.config.counts_as != "delta" or not sets:
            return plans
        others = [p for p in plans if p.operation != "set"]
        if self.governor.budget().requests < 1:
            return others
        stock = self._read_stock([p.key for p in sets], "counts wait for the next pass")
        if stock is None:
            return others
        for p in sets:
            delta = p.quantity - stock.get(p.key, (0, 0))[0]
            others.append(replace(p, operation="delta" if delta else "none", quantity=delta))
        return others

    def _settle_trivial(self, plans: list[KeyPlan], rep: PassReport) -> None:
        """Keys that net to zero, and movements absorbed by a count already applied, settle now."""
        applies = [i for p in plans if p.operation == "none" for i in p.applies]
        absorbs = [i for p in plans if p.operation == "none" for i in p.absorbs]
        if not applies and not absorbs:
            return
        at = now_text()
        finish_without_mutation(self.engine, applies, absorbs, at,
                                [(p.warehouse_id, p.sku, p.watermark) for p in plans
                                 if p.operation == "none" and p.watermark is not None])
        rep.applied += len(applies)
        rep.superseded += len(absorbs)
        self._record_lags(rep, applies, at)

    def _record_lags(self, rep: PassReport, applied: list[int], confirmed_at: str) -> None:
        """Lags of applied movements: backlog (the event happened more than `backlog_after_s` before this
        run started: downtime, or the history at a first start) apart from the steady state, so a
        caught-up backlog does not read as the sync being days behind."""
        for i in applied:
            event_time = self._event_times.pop(i, None)
            if event_time is not None:
                lags = rep.backlog_lags if event_time < self._backlog_before else rep.lags
                lags.append(_lag_s(event_time, confirmed_at))

    def _rank(self, mutations: list[Mutation]) -> None:
        """The budget is short: flag the critical lines from Centra's stock of the keys at stake.

        The stock is cached for `rank_cache_s` (a key the sync changes is dropped on commit), so a
        pass reads only keys it has not seen lately: reading every warehouse of an allocation rule for
        every SKU at stake on every pass costs more time and request budget than the ranking is worth.
        Keys Centra has no stock row for are cached as zero; unreadable keys count as zero (critical).
        """
        keys = online_keys(mutations, self.online)
        now = self.clock()
        stale = [k for k in keys if k not in self._stock_cache or now - self._stock_cache[k][2] > self.config.rank_cache_s]
        read = self._read_stock(stale, "unread keys count as critical") if stale else None
        if read is not None:
            for k in {*stale, *read}:
                self._stock_cache[k] = (*read.get(k, (0, 0)), now)
        stock = {k: self._stock_cache[k][:2] for k in keys if k in self._stock_cache}
        mark_critical(mutations, stock, self.config.safety_stock, self.online)

    def _read_stock(self, keys: list[tuple[int, str]], if_unread: str) -> dict[tuple[int, str], tuple[int, int]] | None:
        """Centra's (physical, free to allocate) of `keys`, every request charged to the budget;
        None when it cannot be read now (a 429 blocks the governor until its Retry-After)."""
        try:
            return stock_view(self.client, keys, self.size_ids, lambda: self.governor.spend(requests=1))
        except RateLimited as exc:
            self.governor.on_rate_limited(exc.retry_after)
        except TRANSIENT as exc:
            log.warning("stock read failed (%s); %s", exc, if_unread)
        return None

    # ------------------------------------------------------------------ send / recover

    def _send(self, batch: b.Batch, rep: PassReport, *, resend: bool = False) -> bool:
        """Send one batch (prepared first unless `resend`); False when the pass should stop."""
        if resend:
            b.mark_sent(self.engine, batch)
        else:
            b.prepare(self.engine, batch, self.run_id)
        try:
            result = send(self.client, batch)
        except CentraUserError as exc:
            self.governor.spend(requests=1, mutations=1)
            rep.mutations += 1
            self._reject(batch, str(exc), exc.user_errors, rep)
            return True
        except CentraGraphQLError as exc:
            if exc.status != 400:
                return self._unconfirmed(batch, exc, rep)
            # Centra refused the request before executing it (HTTP 400: a variable it cannot coerce,
            # such as an Int overflow), so nothing was applied: fail the lines the errors name and
            # release the rest, instead of resending the same refused batch on every pass.
            self.governor.spend(requests=1)
            self._reject(batch, str(exc), exc.errors, rep)
            return True
        except RateLimited as exc:
            self.governor.on_rate_limited(exc.retry_after)
            rep.errors.append(f"batch {batch.batch_id}: {exc}")
            return False
        except TRANSIENT as exc:
            return self._unconfirmed(batch, exc, rep)
        self.governor.spend(requests=max(1, result.mutations), mutations=max(1, result.mutations))
        rep.mutations += max(1, result.mutations)
        if self.after_accept is not None:
            self.after_accept(batch)
        self._commit(batch, result.stock_change_ids, now_text(), rep, recovered=False)
        return True

    def _unconfirmed(self, batch: b.Batch, exc: Exception, rep: PassReport) -> bool:
        """Centra may or may not have applied the batch: it stays prepared, to be looked up first."""
        self.governor.spend(requests=1, mutations=1)
        rep.errors.append(f"batch {batch.batch_id}: {type(exc).__name__}: {exc}")
        log.warning("batch %s not confirmed (%s); it will be looked up before any resend", batch.batch_id, exc)
        return False

    def _commit(self, batch: b.Batch, ids: tuple[int, ...], confirmed_at: str, rep: PassReport, *,
                recovered: bool) -> None:
        b.commit(self.engine, batch, change_ids=ids, confirmed_at=confirmed_at, recovered=recovered)
        for sku in batch.lines:
            self._stock_cache.pop((batch.warehouse_id, sku), None)
        applies = [i for p in batch.plan.values() for i in p["applies"]]
        rep.applied += len(applies)
        rep.superseded += sum(len(p["absorbs"]) for p in batch.plan.values())
        self._record_lags(rep, applies, confirmed_at)

    def _recover(self, rep: PassReport) -> None:
        """Settle prepared batches: commit those Centra has (no resend), resend the others."""
        for batch in b.unresolved(self.engine):
            budget = self.governor.budget()
            if budget.requests < 2 or budget.mutations < 1:
                return
            found = find_applied(self.client, batch)
            self.governor.spend(requests=1)
            if found is not None:
                ids, created_at = found
                self._commit(batch, ids, normalise_time(created_at), rep, recovered=True)
                rep.recovered += 1
                log.info("batch %s was applied by Centra before the crash; committed without resending",
                         batch.batch_id)
            elif not self._send(batch, rep, resend=True):
                return

    def _reject(self, batch: b.Batch, error: str, errors: list[dict[str, Any]], rep: PassReport) -> None:
        """Fail the lines Centra's errors name; the rest go back to pending (each alone, when no line
        is named, so the next pass finds the culprit)."""
        culprits = failing_skus(errors, batch)
        if not culprits and len(batch.lines) == 1:
            culprits = set(batch.lines)
        b.fail(self.engine, batch, error, culprits)
        loc = self.estate.by_warehouse.get(batch.warehouse_id)
        records = []
        for sku in sorted(culprits):
            unknown = "not found" in error.lower() or sku not in self.size_ids
            kind = STOCK_SYNC_UNKNOWN_SIZE if unknown else STOCK_SYNC_REJECTED
            p = batch.plan[sku]
            rep.failed += len(p["applies"]) + len(p["absorbs"])
            records.append(ExceptionRecord.of(
                kind, f"{batch.warehouse_id}:{sku}", "stock_sync",
                f"Centra rejected {batch.operation} {batch.lines[sku]} x {sku} in warehouse {batch.warehouse_id}: "
                f"{error}", location_id=loc.id if loc else None, sku=sku,
                payload={"batch_id": batch.batch_id, "description": batch.description, "operation": batch.operation,
                         "quantity": batch.lines[sku], "movement_ids": [*p["applies"], *p["absorbs"]],
                         "errors": errors}))
        if records:
            record_exceptions(self.engine, records)


def online_warehouses(estate: Estate) -> dict[int, list[tuple[int, ...]]]:
    """Warehouse -> the warehouse lists of the allocation rules (markets) it sells online through."""
    out: dict[int, list[tuple[int, ...]]] = {}
    for rule in estate.centra.allocation_rules:
        for w in rule.warehouse_ids:
            out.setdefault(w, []).append(tuple(rule.warehouse_ids))
    return out


def record_run(engine: Engine, report: RunReport) -> None:
    runs = table(engine, "stock_sync_runs")
    d = report.as_dict()
    with engine.begin() as conn:
        conn.execute(runs.insert().values(
            run_id=report.run_id, kind=report.kind, started_at=report.started_at,
            finished_at=report.finished_at or now_text(), passes=report.passes, ingested=report.ingested,
            applied=report.applied, superseded=report.superseded, failed=report.failed, mutations=report.mutations,
            recovered=report.recovered, deferred=report.deferred, rate_limited=report.rate_limited,
            budget_used=report.budget_used, budget_available=report.budget_available,
            pending_after=report.pending_after, lag_p50_s=d["lag_p50_s"], lag_p95_s=d["lag_p95_s"],
            lag_max_s=d["lag_max_s"]))
