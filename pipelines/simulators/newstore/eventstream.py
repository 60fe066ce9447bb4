"""NewStore event-stream emitter: at-least-once webhook delivery with chaos knobs.

Each delivery POSTs the envelope ``{"tenant","name","published_at","payload"}`` as JSON with
``Authorization: Bearer <api_key>`` to a started integration's ``callback_url``. A non-2xx answer or a
transport error is retried with capped exponential backoff (bounded attempts). Knobs (all off by
default): duplicate rate, drop rate, shuffle within consecutive windows, extra delay. Drop / duplicate /
delay decisions are drawn from a seeded RNG at enqueue time and shuffle permutations from
``Random((seed, window_no))``, so a run is reproducible for the same sequence of enqueues and flushes
(a partial shuffle window is released by ``flush()`` or after ``shuffle_linger`` seconds idle).
"""

from __future__ import annotations

import heapq
import json
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


@dataclass(frozen=True)
class DeliveryTarget:
    """Where one integration wants its events."""

    integration_id: str
    callback_url: str
    api_key: str


@dataclass(frozen=True)
class EmitterConfig:
    """Delivery behaviour; every chaos knob defaults to off."""

    duplicate_rate: float = 0.0  # probability that a delivery is sent twice (identical envelope)
    # Probability that a delivery is sent again as a *changed* redelivery: `published_at` moved on by
    # `redelivery_shift_s` and `redelivery_extra` merged into the envelope (NewStore's publication log
    # re-publishes an event on request; what else a re-publication changes is not documented: a knob).
    redelivery_rate: float = 0.0
    redelivery_shift_s: float = 3600.0
    redelivery_extra: dict[str, Any] = field(default_factory=dict)
    drop_rate: float = 0.0  # probability that a delivery is silently never attempted
    # Fault injection: deliveries whose envelope this returns True for are dropped (a chosen event lost).
    drop_when: Callable[[dict[str, Any]], bool] | None = None
    shuffle_window: int = 0  # >1: deliveries are released in random order within windows of this size
    shuffle_linger: float = 0.5  # seconds of inactivity after which a partial window is released
    delay: float = 0.0  # max extra seconds before the first attempt (uniform 0..delay per delivery)
    max_attempts: int = 8  # attempts per delivery before giving up (outcome "failed")
    backoff_initial: float = 0.05  # seconds before the first retry; doubles per attempt
    backoff_max: float = 2.0  # cap for the retry wait
    request_timeout: float = 5.0  # per-POST timeout


@dataclass
class Attempt:
    """One HTTP attempt of a delivery."""

    at: str
    status_code: int | None
    error: str | None = None


@dataclass
class Delivery:
    """A (event, integration) pair travelling through the emitter; also the delivery-log row."""

    seq: int
    event: dict[str, Any]
    target: DeliveryTarget
    duplicate: bool = False
    outcome: str = "pending"  # pending | delivered | failed | dropped
    attempts: list[Attempt] = field(default_factory=list)
    delay: float = 0.0

    @property
    def name(self) -> str:
        return str(self.event.get("name"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "name": self.name,
            "integration_id": self.target.integration_id,
            "callback_url": self.target.callback_url,
            "duplicate": self.duplicate,
            "outcome": self.outcome,
            "attempts": [{"at": a.at, "status_code": a.status_code, "error": a.error} for a in self.attempts],
        }


def changed_redelivery(event: dict[str, Any], shift_s: float, extra: dict[str, Any]) -> dict[str, Any]:
    """The same event re-published: a later `published_at` and `extra` fields in the envelope."""
    published = event.get("published_at")
    later = published
    if isinstance(published, str):
        at = datetime.fromisoformat(published.replace("Z", "+00:00")) + timedelta(seconds=shift_s)
        later = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {**event, **extra, "published_at": later}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventStreamEmitter:
    """Background-thread webhook sender with a bounded inbox and a delivery log.

    ``enqueue`` is thread-safe and blocks (back-pressure) while the inbox is full. ``flush``/``wait_idle``
    block until everything enqueued so far is delivered, dropped or given up.
    """

    def __init__(self, config: EmitterConfig | None = None, *, seed: int = 0, queue_size: int = 100_000,
                 client: httpx.Client | None = None, enqueue_timeout: float = 60.0) -> None:
        self.config = config or EmitterConfig()
        self.seed = seed
        self._rng = random.Random(seed)
        self._inbox: queue.Queue[Delivery] = queue.Queue(maxsize=queue_size)
        self._enqueue_timeout = enqueue_timeout
        self._client = client
        self._own_client = client is None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._log: list[Delivery] = []
        self._seq = 0
        self._outstanding = 0
        self._flush_requested = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # dispatcher-thread-only state
        self._window: list[Delivery] = []
        self._window_no = 0
        self._last_add = 0.0
        self._heap: list[tuple[float, int, Delivery]] = []
        self._release_no = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> EventStreamEmitter:
        """Start the dispatcher thread (idempotent)."""
        if self._thread and self._thread.is_alive():
            return self
        if self._client is None:
            self._client = httpx.Client(timeout=self.config.request_timeout)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="newstore-eventstream", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the dispatcher; undelivered deliveries stay ``pending`` in the log."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=timeout)
            self._thread = None
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def configure(self, **knobs: Any) -> None:
        """Change knobs at runtime, e.g. ``configure(duplicate_rate=0.2)``."""
        with self._lock:
            self.config = replace(self.config, **knobs)

    # -- producer side -----------------------------------------------------------------------------

    def enqueue(self, event: dict[str, Any], target: DeliveryTarget) -> None:
        """Queue one envelope for one integration, applying drop/duplicate/delay knobs."""
        made: list[Delivery] = []
        with self._lock:
            cfg = self.config
            events = [event]
            dropped = (cfg.drop_rate > 0 and self._rng.random() < cfg.drop_rate) or \
                bool(cfg.drop_when is not None and cfg.drop_when(event))
            if cfg.duplicate_rate > 0 and self._rng.random() < cfg.duplicate_rate:
                events.append(event)
            if cfg.redelivery_rate > 0 and self._rng.random() < cfg.redelivery_rate:
                events.append(changed_redelivery(event, cfg.redelivery_shift_s, cfg.redelivery_extra))
            for i, body in enumerate(events):
                self._seq += 1
                delay = self._rng.uniform(0, cfg.delay) if cfg.delay > 0 else 0.0
                d = Delivery(seq=self._seq, event=body, target=target, duplicate=i > 0, delay=delay)
                if dropped:
                    d.outcome = "dropped"
                else:
                    made.append(d)
                    self._outstanding += 1
                self._log.append(d)
        for d in made:
            try:
                self._inbox.put(d, timeout=self._enqueue_timeout)
            except queue.Full:
                with self._lock:
                    d.outcome = "failed"
                    d.attempts.append(Attempt(_now_iso(), None, "emitter inbox full"))
                    self._done_locked()
                raise RuntimeError("event-stream emitter inbox is full") from None

    # -- waiting -----------------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Release partial shuffle windows and wait until nothing is outstanding; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._outstanding > 0:
                self._flush_requested.set()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    wait_idle = flush

    @property
    def outstanding(self) -> int:
        with self._lock:
            return self._outstanding

    def deliveries(self) -> list[Delivery]:
        """The delivery log (every delivery ever enqueued, including drops and duplicates)."""
        with self._lock:
            return list(self._log)

    def delivery_log(self) -> list[dict[str, Any]]:
        """The delivery log as plain dicts (seq, name, integration_id, outcome, attempts...)."""
        with self._lock:
            return [d.as_dict() for d in self._log]

    # -- dispatcher ---------------------------------------------------------------------------------

    def _done_locked(self) -> None:
        self._outstanding -= 1
        self._idle.notify_all()

    def _release(self, batch: list[Delivery], now: float) -> None:
        for d in batch:
            self._release_no += 1
            heapq.heappush(self._heap, (now + d.delay, self._release_no, d))

    def _release_window(self, now: float) -> None:
        if not self._window:
            return
        batch = self._window
        self._window = []
        random.Random(f"{self.seed}:{self._window_no}").shuffle(batch)
        self._window_no += 1
        self._release(batch, now)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            wait = 0.05
            if self._heap:
                wait = max(0.0, min(wait, self._heap[0][0] - now))
            try:
                d = self._inbox.get(timeout=wait) if wait > 0 else self._inbox.get_nowait()
            except queue.Empty:
                d = None
            now = time.monotonic()
            window = self.config.shuffle_window
            while d is not None:
                if window > 1:
                    self._window.append(d)
                    self._last_add = now
                    if len(self._window) >= window:
                        self._release_window(now)
                else:
                    self._release([d], now)
                try:
                    d = self._inbox.get_nowait()
                except queue.Empty:
                    d = None
            if self._window and (self._flush_requested.is_set() or window <= 1
                                 or now - self._last_add >= self.config.shuffle_linger):
                self._release_window(now)
            if not self._window and self._inbox.empty():
                self._flush_requested.clear()
            while self._heap and self._heap[0][0] <= time.monotonic() and not self._stop.is_set():
                _, _, d = heapq.heappop(self._heap)
                self._attempt(d)

    def _attempt(self, d: Delivery) -> None:
        body = json.dumps(d.event, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {d.target.api_key}", "Content-Type": "application/json"}
        status: int | None = None
        error: str | None = None
        try:
            if self._client is None:
                raise RuntimeError("emitter is stopped")
            resp = self._client.post(d.target.callback_url, content=body, headers=headers,
                                     timeout=self.config.request_timeout)
            status = resp.status_code
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: client closed while stopping
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            d.attempts.append(Attempt(_now_iso(), status, error))
            if status is not None and 200 <= status < 300:
                d.outcome = "delivered"
                self._done_locked()
                return
            if len(d.attempts) >= self.config.max_attempts:
                d.outcome = "failed"
                self._done_locked()
                return
            backoff = min(self.config.backoff_max, self.config.backoff_initial * 2 ** (len(d.attempts) - 1))
        self._release_no += 1
        heapq.heappush(self._heap, (time.monotonic() + backoff, self._release_no, d))
