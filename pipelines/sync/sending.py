"""The send side of a sync pass: each batch under the exactly-once protocol of `batches`.

`_send_ranked` sends a pass's mutations in their ranked order, up to `max_in_flight` at once but never
two for one warehouse (for one key, where each write carries one line), so the order per warehouse and SKU is
kept, each within the governor's tokens: a send's mutation is reserved before it goes, so concurrent sends cannot overspend. `_send`
prepares a batch (its movements `in_flight`), sends it through the platform's `StockTarget` and commits what the
platform confirmed; an answer that may or may not have been applied (a 5xx, a timeout, a lost connection)
leaves the batch `prepared`, and `_recover` looks it up on the platform (`StockTarget.find_applied`) before
any resend. Permanent rejections fail only the lines the platform names (`_reject`); the rest go back to
pending. Keys that net to nothing settle without a mutation (`_settle_trivial`).

`Sending` is a part of `StockSync` (`pipelines.sync.service`), which holds the state it uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from threading import Lock

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from pipelines.connectors.errors import ConnectorError, RateLimited
from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.sync.exceptions import STOCK_SYNC_REJECTED, STOCK_SYNC_UNKNOWN_SIZE
from pipelines.domain.sync.governor import Governor
from pipelines.domain.sync.model import KeyPlan, Mutation
from pipelines.domain.timeutil import normalise_time
from pipelines.estate import Estate
from pipelines.store.inbox import record_exceptions
from pipelines.sync import batches as b
from pipelines.sync.config import SyncConfig
from pipelines.sync.queue import finish_without_mutation, now_text
from pipelines.sync.reports import PassReport, lag_s
from pipelines.sync.target import StockRejected, StockTarget

log = logging.getLogger("pipelines.sync.service")  # the sync's one logger, wherever the line is

#: Errors after which a pass stops and the run backs off (the batch in flight stays `prepared`).
TRANSIENT = (ConnectorError, httpx.HTTPError, OperationalError)


class Sending:
    """Send, commit, recover and reject batches; settle keys that need no mutation."""

    engine: Engine
    estate: Estate
    target: StockTarget
    config: SyncConfig
    run_id: str | None
    sleep: Callable[[float], None]
    governor: Governor
    after_accept: Callable[[b.Batch], None] | None
    _committed: set[tuple[int, str]]
    _committed_lock: Lock
    _event_times: dict[int, str]
    _backlog_before: str
    _stock_cache: dict[tuple[int, str], tuple[int, int, float]]

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
                lags.append(lag_s(event_time, confirmed_at))

    def _send_ranked(self, ranked: list[Mutation], rep: PassReport) -> None:
        """Send in this order while the budget lasts, keeping on as it refills for up to `send_window_s`
        (planning a pass costs more than waiting for the next token, but new, maybe critical,
        movements are only seen by the next pass); `rep.deferred`: what is left for later."""
        waiting = list(ranked)
        in_flight: dict[Future[bool], tuple[Mutation, PassReport]] = {}
        failures: list[BaseException] = []
        waited, stopped = 0.0, False
        with ThreadPoolExecutor(max(1, self.config.max_in_flight), thread_name_prefix="stock-sync-send") as pool:
            while waiting and not stopped:
                busy = {self._lane(m) for m, _ in in_flight.values()}
                m = next((x for x in waiting if self._lane(x) not in busy), None)
                if m is None or len(in_flight) >= max(1, self.config.max_in_flight):
                    stopped = not self._collect(in_flight, rep, failures, FIRST_COMPLETED)
                    continue
                wait_s = self.governor.seconds_until_mutation()
                if wait_s > 0 and waited + wait_s <= self.config.send_window_s:
                    self.sleep(wait_s)
                    waited += wait_s
                if self.governor.budget().mutations < 1:
                    break
                self._reserve()
                waiting.remove(m)
                part = PassReport()
                in_flight[pool.submit(self._send, b.new_batch(m), part)] = (m, part)
            self._collect(in_flight, rep, failures, None)
        rep.deferred = len(waiting)
        if failures:
            raise failures[0]

    def _lane(self, m: Mutation) -> tuple[object, ...]:
        """What must not be sent twice at once: a warehouse (a multi-line write keeps the order per warehouse and
        SKU), or, on a platform whose writes carry one line (`StockTarget.max_lines == 1`), a key."""
        return (m.warehouse_id, *sorted(m.lines)) if self.target.max_lines == 1 else (m.warehouse_id,)

    @staticmethod
    def _collect(in_flight: dict[Future[bool], tuple[Mutation, PassReport]], rep: PassReport,
                 failures: list[BaseException], return_when: str | None) -> bool:
        """Wait for one (`FIRST_COMPLETED`) or all (None) sends; merge their reports. False when one
        says the pass should stop (a 429, an unconfirmed send) or raised (kept in `failures`)."""
        done = wait(in_flight, return_when=return_when or "ALL_COMPLETED").done
        ok = True
        for future in done:
            _, part = in_flight.pop(future)
            rep.merge(part)
            try:
                ok = future.result() and ok
            except BaseException as exc:  # noqa: BLE001 - re-raised by the caller once every send is merged
                failures.append(exc)
                ok = False
        return ok

    def _reserve(self) -> None:
        """Take a send's request and mutation from the budget before it goes (see `_send`)."""
        self.governor.spend(requests=1, mutations=1)

    def _send(self, batch: b.Batch, rep: PassReport, *, resend: bool = False) -> bool:
        """Send one batch (prepared first unless `resend`) whose request and mutation the caller has
        reserved (`_reserve`); False when the pass should stop."""
        if resend:
            b.mark_sent(self.engine, batch)
        else:
            b.prepare(self.engine, batch, self.run_id)
        try:
            result = self.target.send(batch)
        except StockRejected as exc:
            if exc.mutation_spent:
                rep.mutations += 1
            else:
                self.governor.spend(requests=0, mutations=-1)
            self._reject(batch, exc, rep)
            return True
        except RateLimited as exc:
            self.governor.on_rate_limited(exc.retry_after)
            rep.errors.append(f"batch {batch.batch_id}: {exc}")
            return False
        except TRANSIENT as exc:
            return self._unconfirmed(batch, exc, rep)
        used = max(1, result.mutations)
        if used > 1:
            self.governor.spend(requests=used - 1, mutations=used - 1)
        rep.mutations += used
        if self.after_accept is not None:
            self.after_accept(batch)
        self._commit(batch, result.change_ids, now_text(), rep, recovered=False)
        return True

    def _unconfirmed(self, batch: b.Batch, exc: Exception, rep: PassReport) -> bool:
        """The platform may or may not have applied the batch: it stays prepared, to be looked up first."""
        rep.errors.append(f"batch {batch.batch_id}: {type(exc).__name__}: {exc}")
        log.warning("batch %s not confirmed (%s); it will be looked up before any resend", batch.batch_id, exc)
        return False

    def _commit(self, batch: b.Batch, ids: tuple[int | str, ...], confirmed_at: str, rep: PassReport, *,
                recovered: bool) -> None:
        b.commit(self.engine, batch, change_ids=ids, confirmed_at=confirmed_at, recovered=recovered)
        for sku in batch.lines:
            self._stock_cache.pop((batch.warehouse_id, sku), None)
        with self._committed_lock:  # sends run concurrently; `after_commit` gets them at the end of the pass
            self._committed.update((batch.warehouse_id, sku) for sku in batch.lines)
        applies = [i for p in batch.plan.values() for i in p["applies"]]
        rep.applied += len(applies)
        rep.superseded += sum(len(p["absorbs"]) for p in batch.plan.values())
        self._record_lags(rep, applies, confirmed_at)

    def _recover(self, rep: PassReport) -> None:
        """Settle prepared batches: commit those the platform has (no resend), resend the others."""
        for batch in b.unresolved(self.engine):
            budget = self.governor.budget()
            if budget.requests < 2 or budget.mutations < 1:
                return
            found = self.target.find_applied(batch)
            self.governor.spend(requests=1)
            if found is not None:
                ids, created_at = found
                self._commit(batch, ids, normalise_time(created_at), rep, recovered=True)
                rep.recovered += 1
                log.info("batch %s was applied by %s before the crash; committed without resending",
                         batch.batch_id, self.target.platform)
            else:
                self._reserve()
                if not self._send(batch, rep, resend=True):
                    return

    def _reject(self, batch: b.Batch, exc: StockRejected, rep: PassReport) -> None:
        """Fail the lines the platform's answer names; the rest go back to pending (each alone, when no line
        is named, so the next pass finds the culprit)."""
        culprits = set(exc.skus)
        if not culprits and len(batch.lines) == 1:
            culprits = set(batch.lines)
        error = str(exc)
        b.fail(self.engine, batch, error, culprits)
        loc = self.estate.by_warehouse.get(batch.warehouse_id)
        records = []
        for sku in sorted(culprits):
            kind = STOCK_SYNC_UNKNOWN_SIZE if sku in exc.unknown else STOCK_SYNC_REJECTED
            p = batch.plan[sku]
            rep.failed += len(p["applies"]) + len(p["absorbs"])
            records.append(ExceptionRecord.of(
                kind, f"{batch.warehouse_id}:{sku}", "stock_sync",
                f"{self.target.platform} rejected {batch.operation} {batch.lines[sku]} x {sku} in warehouse "
                f"{batch.warehouse_id}: {error}", location_id=loc.id if loc else None, sku=sku,
                payload={"batch_id": batch.batch_id, "description": batch.description, "operation": batch.operation,
                         "quantity": batch.lines[sku], "movement_ids": [*p["applies"], *p["absorbs"]],
                         "errors": exc.errors}))
        if records:
            record_exceptions(self.engine, records)
