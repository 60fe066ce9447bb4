"""One sync process at a time against a store of record, and a handover between two of them.

Two named mutexes, each released by the operating system or the server when its holder dies, so a
killed run never blocks the next one:

- the *sync* lock: whoever holds it sends stock to Centra;
- the *successor* lock: held by the run that waits to take over (the always-on sync's next run). The
  holder of the sync lock sees it taken (`successor_waiting`), finishes its pass and lets go; the
  successor, polling the sync lock every `_HANDOVER_POLL_S`, takes it within that time, so the sync
  never pauses between two runs.

PostgreSQL: session advisory locks; SQLite: exclusive `flock`s on files next to the database; an
in-memory SQLite database (tests): process-local locks.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

_PG_KEYS = {"sync": 727002, "successor": 727003}
_MEMORY_LOCKS = {name: threading.Lock() for name in _PG_KEYS}
_HANDOVER_POLL_S = 0.02


class SyncBusy(RuntimeError):
    """Another process holds the stock sync lock."""


class _Mutex:
    """A named, non-blocking, crash-released mutex in the store of record's world (see module docstring)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine, self.name = engine, name
        self._conn: Connection | None = None
        self._fd: int | None = None
        self._memory = False

    def try_acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_KEYS[self.name]}).scalar():
                conn.commit()
                self._conn = conn
                return True
            conn.close()
            return False
        path = self.engine.url.database
        if not path or path == ":memory:":
            self._memory = _MEMORY_LOCKS[self.name].acquire(blocking=False)
            return self._memory
        fd = os.open(f"{path}.stock-{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._conn is not None:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_KEYS[self.name]})
            self._conn.commit()
            self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._memory:
            _MEMORY_LOCKS[self.name].release()
            self._memory = False

    def is_held_elsewhere(self) -> bool:
        """True when someone else holds it (checked by taking and releasing it at once)."""
        if not self.try_acquire():
            return True
        self.release()
        return False


@contextmanager
def sync_lock(engine: Engine, *, wait_s: float = 0.0, stop: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold the sync lock. `wait_s` > 0: take over from the current holder, waiting up to `wait_s`
    under the successor lock (the holder sees it and hands over); SyncBusy when it does not come."""
    lock = _Mutex(engine, "sync")
    if not lock.try_acquire():
        if wait_s <= 0:
            raise SyncBusy("another stock sync holds the lock")
        _wait_for_handover(engine, lock, wait_s, stop)
    try:
        yield
    finally:
        lock.release()


def _wait_for_handover(engine: Engine, lock: _Mutex, wait_s: float, stop: Callable[[], bool] | None) -> None:
    successor = _Mutex(engine, "successor")
    if not successor.try_acquire():
        raise SyncBusy("another stock sync is already waiting to take over")
    try:
        deadline = time.monotonic() + wait_s
        while not lock.try_acquire():
            if time.monotonic() >= deadline or (stop is not None and stop()):
                raise SyncBusy(f"the running stock sync did not hand over within {wait_s:.0f} s")
            time.sleep(_HANDOVER_POLL_S)
    finally:
        successor.release()


def successor_waiting(engine: Engine) -> bool:
    """A run waits to take over the sync (it holds the successor lock)."""
    return _Mutex(engine, "successor").is_held_elsewhere()


def sync_running(engine: Engine) -> bool:
    """Some process holds the sync lock (for the sensor: a run Dagster lists as started but holding
    no lock for long has died)."""
    return _Mutex(engine, "sync").is_held_elsewhere()
