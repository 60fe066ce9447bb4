"""Order webhooks of the simulated Cloudshelf organisation (all of it ASSUMPTION: Cloudshelf documents only the
`ProductUpsert` subject; see PROVENANCE.md).

An order event (a kiosk order created PAID, a later kiosk-side status change) is queued for every URL registered
with `registerWebhook` under the state's `order_subject`, and POSTed by a background thread as JSON:
`{"subject", "id", "status", "emailAddress", "phoneNumber", "attributes": [{"key", "value"}]}` (the last three
named after createPaidOrder's input fields). No extra headers (none is documented).

Knobs: `delay_s` (before each delivery), `drop_rate` (an event is never sent), `duplicate_rate` (a delivered
event is delivered again), `reorder` (shuffle window: up to that many queued events are taken and sent in random
order), `attempts` (tries on a non-2xx answer or a connection error, default 3) with `backoff_s * n` between them;
after the last failure the event is given up. `timeout_s` per POST, `max_queue` (events past it are dropped and
counted in `overflowed`), `seed`. Only loopback URLs are ever contacted (`is_loopback`). Every event and what
became of it is in `deliveries`.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from pipelines.simulators.cloudshelf.state import CloudshelfState, Order

log = logging.getLogger(__name__)


def is_loopback(url: str) -> bool:
    """Whether `url` is http(s) to a loopback address (127.0.0.0/8, ::1, localhost)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def order_payload(subject: str, order: Order) -> dict[str, Any]:
    return {"subject": subject, "id": order.id, "status": order.status, "emailAddress": order.email,
            "phoneNumber": order.phone, "attributes": [dict(kv) for kv in order.attributes]}


@dataclass
class Delivery:
    """One event to one URL and what became of it."""

    seq: int
    url: str
    payload: dict[str, Any]
    attempts: int = 0
    statuses: list[int | None] = field(default_factory=list)
    delivered: bool = False
    dropped: bool = False
    duplicate: bool = False
    gave_up: bool = False
    error: str | None = None


class OrderWebhooks:
    """Background sender of order events; `start()`/`stop()`, `flush(timeout)` waits for an empty queue."""

    def __init__(self, *, delay_s: float = 0.0, drop_rate: float = 0.0, duplicate_rate: float = 0.0,
                 reorder: int = 0, attempts: int = 3, backoff_s: float = 0.5, timeout_s: float = 5.0,
                 max_queue: int = 10_000, seed: int | None = None) -> None:
        if not 0 <= drop_rate <= 1 or not 0 <= duplicate_rate <= 1:
            raise ValueError("drop_rate and duplicate_rate are probabilities")
        self.delay_s = delay_s
        self.drop_rate = drop_rate
        self.duplicate_rate = duplicate_rate
        self.reorder = max(0, int(reorder))
        self.attempts = max(1, int(attempts))
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.rng = random.Random(seed)
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=max_queue)
        self.deliveries: list[Delivery] = []
        self.overflowed = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._busy = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state: CloudshelfState | None = None

    def attach(self, state: CloudshelfState) -> OrderWebhooks:
        self.state = state
        state.add_listener(self.emit)
        return self

    def emit(self, subject: str, order: Order) -> None:
        """Queue the event for every URL registered under `subject` (called under the state's lock)."""
        if self.state is None:
            return
        payload = order_payload(subject, order)
        for url in self.state.urls_for(subject):
            with self._lock:
                self._seq += 1
                delivery = Delivery(seq=self._seq, url=url, payload=payload)
                self.deliveries.append(delivery)
            try:
                self._queue.put_nowait(delivery)
            except queue.Full:
                delivery.dropped = True
                delivery.error = "queue full"
                self.overflowed += 1

    # -- lifecycle

    def start(self) -> OrderWebhooks:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="cloudshelf-webhooks", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued event was handled; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = self._queue.empty() and self._busy == 0
            if idle:
                return True
            time.sleep(0.01)
        return False

    def pending(self) -> int:
        return self._queue.qsize()

    # -- sending

    def _take(self) -> list[Delivery]:
        try:
            first = self._queue.get(timeout=0.05)
        except queue.Empty:
            return []
        with self._lock:
            self._busy += 1
        batch = [first]
        while len(batch) < max(1, self.reorder):
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
            with self._lock:
                self._busy += 1
        if self.reorder > 1:
            self.rng.shuffle(batch)
        return batch

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as http:
            while not self._stop.is_set():
                for delivery in self._take():
                    try:
                        self._deliver(http, delivery)
                    except Exception as exc:  # noqa: BLE001 - one bad event must not stop the sender
                        delivery.error = f"{type(exc).__name__}: {exc}"
                        log.warning("cloudshelf webhook %s failed: %s", delivery.seq, exc)
                    finally:
                        with self._lock:
                            self._busy -= 1

    def _deliver(self, http: httpx.Client, delivery: Delivery) -> None:
        if self.rng.random() < self.drop_rate:
            delivery.dropped = True
            return
        if not is_loopback(delivery.url):
            delivery.error = "not a loopback URL: not sent"
            return
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        if self._post(http, delivery) and self.rng.random() < self.duplicate_rate:
            again = Delivery(seq=delivery.seq, url=delivery.url, payload=delivery.payload, duplicate=True)
            with self._lock:
                self.deliveries.append(again)
            self._post(http, again)

    def _post(self, http: httpx.Client, delivery: Delivery) -> bool:
        for attempt in range(1, self.attempts + 1):
            if self._stop.is_set():
                delivery.error = "stopped"
                return False
            delivery.attempts = attempt
            try:
                status: int | None = http.post(delivery.url, json=delivery.payload).status_code
            except httpx.HTTPError as exc:
                status = None
                delivery.error = f"{type(exc).__name__}: {exc}"
            delivery.statuses.append(status)
            if status is not None and 200 <= status < 300:
                delivery.delivered = True
                delivery.error = None
                return True
            if attempt < self.attempts:
                self._stop.wait(self.backoff_s * attempt)
        delivery.gave_up = True
        return False
