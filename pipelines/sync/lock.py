"""One sync process at a time against a store of record, whatever Dagster's configuration says.

PostgreSQL: a session advisory lock; SQLite: an exclusive `flock` on a file next to the database.
Both are released by the operating system or the server when the process dies, so a killed run
never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

_PG_LOCK_KEY = 727002
_MEMORY_LOCK = threading.Lock()


class SyncBusy(RuntimeError):
    """Another process holds the stock sync lock."""


@contextmanager
def sync_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_LOCK_KEY}).scalar():
                raise SyncBusy("another stock sync holds the PostgreSQL advisory lock")
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        return
    path = engine.url.database
    if not path or path == ":memory:":
        if not _MEMORY_LOCK.acquire(blocking=False):
            raise SyncBusy("another stock sync is running in this process")
        try:
            yield
        finally:
            _MEMORY_LOCK.release()
        return
    fd = os.open(f"{path}.stock-sync.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SyncBusy("another stock sync holds the lock file") from exc
        yield
    finally:
        os.close(fd)
