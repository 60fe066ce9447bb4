"""The stock sync pass and run: recover, ingest, net, govern, send, commit.

A *pass* settles unresolved batches (crash recovery), decodes new inbox events, nets the pending
movements per (warehouse, SKU), groups them into mutations, and sends what the rate budget allows:
critical ones (an oversell at stake) at once, the rest once they have waited `batch_delay_s`, most
urgent first, several warehouses at a time, each batch under the exactly-once protocol of `batches`.

A *run* repeats passes under the sync lock. The always-on sync (`hand_over=True`, what the Dagster
job runs) takes the lock over from the running sync without a gap, lives for `run_window_s`, and then
keeps going until its successor (launched by the sensor ahead of time) waits to take over: it finishes
its pass and lets go, and the successor starts within milliseconds. An idle run waits for new events:
woken by the intake's NOTIFY on PostgreSQL, a `poll_s` poll on SQLite (`wakeup`).

Modules: this one (`StockSync`: the run loop and the pass), `planning` (netting, counts as deltas,
ranking), `sending` (send, commit, recover, reject; concurrent sends), `reports` (`PassReport`,
`RunReport`, `record_run`), `rate_state` (the governor's buckets shared in the store of record).
Import `StockSync` and the reports from here or from `pipelines.sync`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from threading import Event, Lock

from sqlalchemy import Engine

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.errors import RateLimited
from pipelines.domain.sync.governor import Governor, rank, split_due
from pipelines.domain.sync.netting import group_mutations
from pipelines.domain.timeutil import parse_time, utc_text
from pipelines.estate import Estate
from pipelines.sync import batches as b
from pipelines.sync.centra_io import target_of
from pipelines.sync.config import SyncConfig
from pipelines.sync.lock import successor_waiting, sync_lock
from pipelines.sync.planning import Planning
from pipelines.sync.queue import count_pending, ingest, load_pending, now_text
from pipelines.sync.rate_state import RateState
from pipelines.sync.reports import PassReport, RunReport, record_run
from pipelines.sync.sending import TRANSIENT, Sending, log
from pipelines.sync.target import StockTarget
from pipelines.sync.wakeup import Wakeup

__all__ = ["TRANSIENT", "PassReport", "RunReport", "StockSync", "record_run"]

#: How often a long run publishes its running figures (`progress`).
PROGRESS_EVERY_S = 60.0
#: How often a run looks for a successor waiting to take over (a lock probe; on PostgreSQL a round trip),
#: rather than after every pass of a busy run.
HANDOVER_CHECK_S = 0.5


class StockSync(Planning, Sending):
    """Stock sync against one store of record and one commerce platform (see module docstring).

    `client` is the platform's `StockTarget` (a bare `CentraClient` is wrapped as Centra's).

    The governor's own buckets are shared through the store of record (`rate_state`) when the clock is
    the wall clock (`shared_budget=None`); a test's or a simulation's own clock gets a private governor.

    `after_commit` is called once per pass with the (warehouse, SKU) keys the pass committed (the kiosk
    availability, `pipelines.kiosk`); a failure there is logged, never raised into the sync.
    """

    def __init__(self, engine: Engine, estate: Estate, client: StockTarget | CentraClient, config: SyncConfig | None = None, *,
                 run_id: str | None = None, governor: Governor | None = None,
                 after_accept: Callable[[b.Batch], None] | None = None,
                 after_commit: Callable[[set[tuple[int, str]]], None] | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 shared_budget: bool | None = None) -> None:
        self.engine = engine
        self.estate = estate
        self.target = target_of(client, estate)
        self.config = config or SyncConfig()
        self.run_id = run_id
        self.clock = clock
        self.sleep = sleep
        shared = clock is time.time if shared_budget is None else shared_budget
        self.governor = governor or Governor(self.config.rate_share, clock=clock,
                                             shared=RateState(engine) if shared else None)
        self.after_accept = after_accept
        self.after_commit = after_commit
        self._committed: set[tuple[int, str]] = set()  # (warehouse, SKU) keys committed in the current pass
        self._committed_lock = Lock()
        self.online = self.target.selling_groups()
        self._event_times: dict[int, str] = {}
        self._backlog_before = now_text()  # set per run: events before this are backlog
        self._stock_cache: dict[tuple[int, str], tuple[int, int, float]] = {}  # (physical, free, read at)

    # ------------------------------------------------------------------ run

    def run(self, window_s: float | None = None, stop: Event | None = None, kind: str = "sync", *,
            hand_over: bool = False, progress: Callable[[RunReport], None] | None = None) -> RunReport:
        """Passes for `window_s` seconds (0: one pass) under the sync lock; records the run.

        `hand_over`: the always-on sync. Take the lock over from a running sync (waiting up to
        `handover_wait_s` for it to let go instead of raising SyncBusy), and after the window keep going
        until a successor waits (at most another window). Any run lets go early when a successor waits.
        `progress` gets the running report every `PROGRESS_EVERY_S`."""
        window = self.config.run_window_s if window_s is None else window_s
        report = RunReport(run_id=self.run_id, kind=kind)
        spent_before = self.governor.spent_mutations
        limited_before = self.governor.rate_limited
        wait_s = self.config.handover_wait_s if hand_over else 0.0
        with sync_lock(self.engine, wait_s=wait_s, stop=stop.is_set if stop is not None else None):
            report.started_at = now_text()
            self._backlog_before = utc_text(parse_time(report.started_at)
                                            - timedelta(seconds=self.config.backlog_after_s))
            with Wakeup(self.engine, self.sleep) as wakeup:
                self._loop(report, window, 2 * window if hand_over else window, stop, wakeup, progress)
        report.pending_after = count_pending(self.engine)
        report.budget_used = self.governor.spent_mutations - spent_before
        report.rate_limited = self.governor.rate_limited - limited_before
        report.finished_at = now_text()
        report.quota_share = self._quota_share(report)
        record_run(self.engine, report)
        return report

    def _loop(self, report: RunReport, window: float, longest: float, stop: Event | None, wakeup: Wakeup,
              progress: Callable[[RunReport], None] | None) -> None:
        start = self.clock()
        published, checked = start, start - HANDOVER_CHECK_S
        backoff = 0.0
        while True:
            rep, backoff = self._guarded_pass(backoff)
            report.add(rep)
            report.budget_available = max(report.budget_available, self.governor.budget().mutations)
            now = self.clock()
            if window <= 0 or (stop is not None and stop.is_set()):
                return
            if now - checked >= HANDOVER_CHECK_S:
                checked = now
                if successor_waiting(self.engine):
                    report.handed_over = True
                    log.info("stock sync run %s hands over to its successor", self.run_id)
                    return
            if now - start >= longest:
                return
            if progress is not None and now - published >= PROGRESS_EVERY_S:
                published = now
                progress(report)
            pause = min(self._pause(rep, backoff), max(0.0, start + longest - now))
            if backoff or pause <= 0:
                self.sleep(pause)
            else:
                wakeup.wait(pause)  # new events end the wait early (PostgreSQL)

    def _guarded_pass(self, backoff: float) -> tuple[PassReport, float]:
        """One pass; a 429 or a transient failure becomes the pass's error (and a backoff)."""
        try:
            return self.pass_once(), 0.0
        except RateLimited as exc:
            self.governor.on_rate_limited(exc.retry_after)
            return PassReport(errors=[str(exc)]), 0.0
        except TRANSIENT as exc:
            log.warning("stock sync pass failed: %s", exc)
            return PassReport(errors=[f"{type(exc).__name__}: {exc}"]), min(10.0, max(0.5, backoff * 2))

    def _pause(self, rep: PassReport, backoff: float) -> float:
        if backoff:
            return backoff
        if rep.deferred:
            return min(self.config.max_wait_s, max(0.1, self.governor.seconds_until_mutation()))
        return 0.0 if rep.busy else self.config.poll_s

    def _quota_share(self, report: RunReport) -> float | None:
        """Mutations this run used over the platform's hourly mutation quota for the run's lifetime (None for a
        run shorter than a minute: a burst says nothing about the share over time)."""
        quota = self.governor.hourly_mutation_quota()
        seconds = (parse_time(report.finished_at) - parse_time(report.started_at)).total_seconds()
        if not quota or seconds < 60:
            return None
        return round(report.budget_used / (quota * seconds / 3600.0), 4)

    # ------------------------------------------------------------------ pass

    def pass_once(self) -> PassReport:
        """One pass (module docstring); then `after_commit` with the keys the pass committed, if any."""
        try:
            return self._pass()
        finally:
            self._notify_committed()

    def _notify_committed(self) -> None:
        """Hand the keys committed in this pass to `after_commit` (the kiosk availability); its failure is
        logged, never raised into the sync (the kiosk's periodic refresh catches up)."""
        with self._committed_lock:
            keys, self._committed = self._committed, set()
        if not keys or self.after_commit is None:
            return
        try:
            self.after_commit(keys)
        except RateLimited as exc:  # the listener's read of the platform hit the shared budget's limit
            self.governor.on_rate_limited(exc.retry_after)
            log.warning("after_commit rate limited for %d key(s); the next refresh catches up", len(keys))
        except Exception:  # noqa: BLE001 - a listener must never stop the sync
            log.warning("after_commit failed for %d key(s); the next refresh catches up", len(keys), exc_info=True)

    def _pass(self) -> PassReport:
        rep = PassReport()
        self.governor.refresh()
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
        max_lines = min(self.config.max_lines, self.target.max_lines or self.config.max_lines)
        mutations = group_mutations([p for p in plans if p.operation != "none"], max_lines)
        if not mutations:
            return rep
        self.target.expect((m.warehouse_id, sku) for m in mutations for sku in m.lines)
        # Critical mutations go at once, the rest once they have waited to be batched (`split_due`): each
        # mutation spent on a trickle now is one the hourly quota lacks at the next peak. What is due goes
        # earliest deadline first; when the budget is short, the oversell risks are found first.
        delay = self.config.batch_delay_s
        now = datetime.now(UTC).timestamp()
        budget = self.governor.budget()
        _, young = split_due(mutations, now, delay)
        if len(mutations) > budget.mutations and budget.requests > budget.mutations + 1:
            self._rank(mutations)
        elif young and budget.requests >= 2:
            self._rank(young)
        ready, held = split_due(mutations, now, delay)
        rep.held = len(held)
        self._send_ranked(rank(ready, delay), rep)
        return rep

    def _refresh_limits(self) -> None:
        g = self.governor
        now = self.clock()
        if g.observed_at is not None and now - g.observed_at < self.config.rate_refresh_s:
            return
        if now < g.blocked_until:
            return
        try:
            g.observe(self.target.rate_limits(), now)
        except RateLimited as exc:
            g.on_rate_limited(exc.retry_after)
