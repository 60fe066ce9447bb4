"""The stock sync pass and run: recover, ingest, net, govern, send, commit.

A *pass* settles unresolved batches (crash recovery), decodes new inbox events, nets the pending
movements per (warehouse, SKU), groups them into mutations, and sends what the rate budget allows,
most urgent first, each under the exactly-once protocol of `batches`. A *run* repeats passes for
`drain_s` seconds (one Dagster run drains the queue continuously instead of paying a run start-up
per few movements), holding the sync lock throughout.

Modules: this one (`StockSync`: the run loop and the pass), `planning` (netting, counts as deltas,
ranking), `sending` (send, commit, recover, reject), `reports` (`PassReport`, `RunReport`,
`record_run`). Import `StockSync` and the reports from here or from `pipelines.sync`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from threading import Event

from sqlalchemy import Engine

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.errors import RateLimited
from pipelines.domain.sync.governor import Governor, rank
from pipelines.domain.sync.netting import group_mutations
from pipelines.domain.timeutil import parse_time, utc_text
from pipelines.estate import Estate
from pipelines.sync import batches as b
from pipelines.sync.config import SyncConfig
from pipelines.sync.lock import sync_lock
from pipelines.sync.planning import Planning, online_warehouses
from pipelines.sync.queue import count_pending, ingest, load_pending, now_text
from pipelines.sync.reports import PassReport, RunReport, record_run
from pipelines.sync.sending import TRANSIENT, Sending, log

__all__ = ["TRANSIENT", "PassReport", "RunReport", "StockSync", "online_warehouses", "record_run"]


class StockSync(Planning, Sending):
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
