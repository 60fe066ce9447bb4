"""Centra webhook plugin ("Integration API" mode) emitter.

Events (`{"type", "action", "date", "id"}`) are queued by `emit` (attach it to a `CentraState`) and
delivered by a background thread in batches of up to `max_events_per_call` as
`application/x-www-form-urlencoded` `payload=<urlencoded JSON {"events": [...]}>`, signed with
`X-Centra-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw_body}")>`. A failed call
(non-2xx, timeout, connection error) is retried `retries` times (0-3) after `retry_delay_s * n`
seconds, then dropped for good. Fault knobs: `duplicate_rate` (a delivered batch is sent again; with
`redelivery_date_shift_s` its events' `date` has moved on by that much, so the envelope differs),
`drop_rate` (a batch is silently never sent). Every batch is recorded in `deliveries`.

Events come from the state's change hook (`CentraState.add_listener`): `order` insert/update, `shipment`
create and `good_to_go` (the docs' example; a shipment created good to go or updated to it), `return`
insert, and a completed shipment, whose wire action no source names: `shipment_completed_action`
(default "update"; None sends nothing).
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from pipelines.connectors.centra.signature import centra_signature, verify_webhook_signature
from pipelines.simulators.centra.events import SHIPMENT_COMPLETED
from pipelines.simulators.centra.state import CentraState

log = logging.getLogger(__name__)

DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # the `date` of a webhook event: "2021-01-29 14:40:58.628033"


def encode_body(events: list[dict[str, Any]]) -> str:
    """The raw form body Centra posts: `payload=` + urlencoded compact JSON."""
    return urllib.parse.urlencode({"payload": json.dumps({"events": events}, separators=(",", ":"))})


def sign(secret: str, body: str, timestamp: int) -> str:
    """The `X-Centra-Signature` header value for `body` at `timestamp`."""
    return f"t={timestamp},v1={centra_signature(secret, timestamp, body)}"


#: Check an `X-Centra-Signature` header (constant-time; rejects timestamps older than tolerance).
verify_signature = verify_webhook_signature


@dataclass
class WebhookDelivery:
    """One batch and what happened to it."""

    batch_id: int
    events: list[dict[str, Any]]
    body: str = ""
    attempts: int = 0
    statuses: list[int | None] = field(default_factory=list)
    error: str | None = None
    delivered: bool = False
    dropped: bool = False
    duplicate: bool = False

    @property
    def status(self) -> int | None:
        return self.statuses[-1] if self.statuses else None


class WebhookEmitter:
    """Background webhook sender; use as a context manager or call `start()`/`stop()`."""

    def __init__(self, url: str, secret: str, *, max_events_per_call: int = 100, timeout_s: float = 5.0,
                 retries: int = 0, retry_delay_s: float = 1.0, duplicate_rate: float = 0.0, drop_rate: float = 0.0,
                 verify_ssl: bool = True, linger_s: float = 0.05, seed: int = 0,
                 time_fn: Callable[[], float] = time.time, transport: httpx.BaseTransport | None = None,
                 shipment_completed_action: str | None = "update",
                 redelivery_date_shift_s: float | None = None) -> None:
        if not 0 <= retries <= 3:
            raise ValueError("retries must be between 0 and 3 (Centra's plugin setting)")
        if max_events_per_call < 1:
            raise ValueError("max_events_per_call must be at least 1")
        self.url, self.secret = url, secret
        self.max_events_per_call, self.timeout_s = max_events_per_call, timeout_s
        self.retries, self.retry_delay_s = retries, retry_delay_s
        self.duplicate_rate, self.drop_rate = duplicate_rate, drop_rate
        self.linger_s = linger_s
        self.shipment_completed_action = shipment_completed_action
        self.redelivery_date_shift_s = redelivery_date_shift_s
        self._time = time_fn
        self._rng = random.Random(seed)
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending = 0  # events emitted and not yet delivered/dropped
        self._deliveries: list[WebhookDelivery] = []
        self._thread: threading.Thread | None = None
        self._client_options: dict[str, Any] = {"timeout": timeout_s, "verify": verify_ssl, "transport": transport}
        self._client = httpx.Client(**self._client_options)
        self._states: list[CentraState] = []

    # -- wiring

    def attach(self, state: CentraState) -> WebhookEmitter:
        state.add_listener(self.emit)
        self._states.append(state)
        return self

    def emit(self, kind: str, action: str, ident: int, when: datetime) -> None:
        """Queue one event (thread-safe, non-blocking)."""
        if kind == "shipment" and action == SHIPMENT_COMPLETED:
            if self.shipment_completed_action is None:
                return
            action = self.shipment_completed_action
        with self._lock:
            self._pending += 1
        self._queue.put({"type": kind, "action": action, "date": when.strftime(DATE_FORMAT), "id": ident})

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    # -- lifecycle

    def start(self) -> WebhookEmitter:
        if self._thread is None or not self._thread.is_alive():
            if self._client.is_closed:
                self._client = httpx.Client(**self._client_options)
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="centra-webhooks", daemon=True)
            self._thread.start()
        return self

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event has been delivered or dropped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.01)
        return False

    def stop(self, *, drain: bool = True, timeout: float = 10.0) -> None:
        if drain and self._thread is not None and self._thread.is_alive():
            self.flush(timeout)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for state in self._states:
            state.remove_listener(self.emit)
        self._states.clear()
        self._client.close()

    def __enter__(self) -> WebhookEmitter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- delivery

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + self.linger_s
            while len(batch) < self.max_events_per_call:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._deliver(batch)
            except Exception:  # noqa: BLE001 - the sender thread must survive anything
                log.exception("webhook delivery crashed")
            with self._lock:
                self._pending -= len(batch)

    def _deliver(self, events: list[dict[str, Any]], *, duplicate: bool = False) -> None:
        with self._lock:
            record = WebhookDelivery(len(self._deliveries) + 1, events, encode_body(events), duplicate=duplicate)
            self._deliveries.append(record)
        if not duplicate and self.drop_rate and self._rng.random() < self.drop_rate:
            record.dropped = True
            record.error = "dropped by fault injection"
            return
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_delay_s * attempt)
                if self._stop.is_set():
                    break
            record.attempts += 1
            ts = int(self._time())
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Centra-Signature": sign(self.secret, record.body, ts)}
            try:
                response = self._client.post(self.url, content=record.body.encode(), headers=headers)
                record.statuses.append(response.status_code)
                if 200 <= response.status_code < 300:
                    record.delivered, record.error = True, None
                    break
                record.error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                record.statuses.append(None)
                record.error = f"{type(exc).__name__}: {exc}"
        if not record.delivered:
            record.dropped = True
            log.warning("webhook batch %d dropped after %d attempt(s): %s", record.batch_id, record.attempts,
                        record.error)
        elif not duplicate and self.duplicate_rate and self._rng.random() < self.duplicate_rate:
            self._deliver(self._redated(events), duplicate=True)

    def _redated(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events of a redelivery: the same, or with their `date` moved on (`redelivery_date_shift_s`)."""
        if self.redelivery_date_shift_s is None:
            return events
        shift = timedelta(seconds=self.redelivery_date_shift_s)
        return [{**e, "date": (datetime.strptime(e["date"], DATE_FORMAT) + shift).strftime(DATE_FORMAT)}
                for e in events]
