"""The pause of an idle always-on sync: woken by the intake on PostgreSQL, a short poll on SQLite.

On PostgreSQL every batch of new inbox events commits with a `NOTIFY` (`pipelines.store.inbox`); the
sync LISTENs on its own connection and a wait returns as soon as one arrives, so a store sale starts
its way to Centra within milliseconds of landing. On SQLite (one host, no notifications) the wait is a
sleep of at most `poll_s`, which bounds the reaction time instead.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from pipelines.store.inbox import INBOX_CHANNEL

log = logging.getLogger("pipelines.sync.service")


class Wakeup:
    """`wait(timeout)`: returns early when new inbox events were notified (PostgreSQL)."""

    def __init__(self, engine: Engine, sleep: Callable[[float], None]) -> None:
        self.engine = engine
        self.sleep = sleep
        self._raw: Any = None
        self._dbapi: Any = None

    def __enter__(self) -> Wakeup:
        if self.engine.dialect.name == "postgresql":
            try:
                raw = self.engine.raw_connection()
                dbapi = raw.driver_connection
                raw.detach()  # its session LISTENs: it must not go back to the pool
                dbapi.rollback()
                dbapi.autocommit = True
                with dbapi.cursor() as cur:
                    cur.execute(f"LISTEN {INBOX_CHANNEL}")
                self._raw, self._dbapi = raw, dbapi
            except Exception as exc:  # noqa: BLE001 - polling still works; say why it is slower
                log.warning("cannot LISTEN for new inbox events (%s); polling instead", exc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = self._dbapi = None

    def wait(self, timeout: float) -> bool:
        """Pause up to `timeout` s; True when woken by a notification."""
        if timeout <= 0:
            return False
        if self._raw is None:
            self.sleep(timeout)
            return False
        dbapi = self._dbapi
        if hasattr(dbapi, "poll"):  # psycopg2: notifications collect in `notifies` on poll()
            if not dbapi.notifies:
                select.select([dbapi], [], [], timeout)
                dbapi.poll()
            woken = bool(dbapi.notifies)
            dbapi.notifies.clear()
            return woken
        # psycopg 3: a generator that stops after the first notification or the timeout; drain the rest
        woken = any(True for _ in dbapi.notifies(timeout=timeout, stop_after=1))
        while any(True for _ in dbapi.notifies(timeout=0, stop_after=1)):
            pass
        return woken
