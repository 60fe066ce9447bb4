"""What really happened in the simulated estate: every stock movement, count, sale and injected fault.

Tests and benchmarks compare the platforms' state and the pipeline's findings with this record.
Stored in its own SQLite file (never in the store of record).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.domain.timeutil import business_date, utc_text

_SCHEMA = """
CREATE TABLE IF NOT EXISTS movements (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, business_date TEXT NOT NULL,
    node_id TEXT NOT NULL, sku TEXT NOT NULL, delta INTEGER NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, business_date TEXT NOT NULL,
    node_id TEXT NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL, ref TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, business_date TEXT NOT NULL, kind TEXT NOT NULL,
    platform TEXT NOT NULL, location TEXT, ref TEXT NOT NULL, amount REAL NOT NULL, currency TEXT NOT NULL,
    detail TEXT);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, business_date TEXT NOT NULL, fault TEXT NOT NULL,
    node_id TEXT, sku TEXT, ref TEXT, value REAL, currency TEXT, detail TEXT);
"""


@dataclass(frozen=True)
class Fault:
    fault: str
    business_date: str
    node_id: str | None
    sku: str | None
    ref: str | None
    value: float | None
    currency: str | None
    detail: dict[str, Any]


class GroundTruth:
    def __init__(self, path: str | Path = ":memory:", timezone: str = "Europe/Stockholm"):
        self.timezone = timezone
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # A record of a simulation, rebuilt on every start: no fsync per row (autocommit on a synchronous
        # file cost ~5 ms an insert, most of the trading generator's time in history mode).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)

    def _day(self, at) -> str:  # noqa: ANN001
        return business_date(at, self.timezone)

    def movement(self, at, node_id: str, sku: str, delta: int, kind: str, ref: str) -> None:  # noqa: ANN001
        with self._lock:
            self._db.execute("INSERT INTO movements (at, business_date, node_id, sku, delta, kind, ref)"
                             " VALUES (?,?,?,?,?,?,?)", (utc_text(at), self._day(at), node_id, sku, delta, kind, ref))

    def count(self, at, node_id: str, sku: str, quantity: int, ref: str) -> None:  # noqa: ANN001
        with self._lock:
            self._db.execute("INSERT INTO counts (at, business_date, node_id, sku, quantity, ref) VALUES (?,?,?,?,?,?)",
                             (utc_text(at), self._day(at), node_id, sku, quantity, ref))

    def transaction(self, at, kind: str, platform: str, location: str | None, ref: str, amount: float,  # noqa: ANN001
                    currency: str, **detail: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO transactions (at, business_date, kind, platform, location, ref, amount, currency, detail)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (utc_text(at), self._day(at), kind, platform, location, ref, amount, currency, json.dumps(detail)))

    def fault(self, at, fault: str, *, node_id: str | None = None, sku: str | None = None,  # noqa: ANN001
              ref: str | None = None, value: float | None = None, currency: str | None = None, **detail: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO faults (at, business_date, fault, node_id, sku, ref, value, currency, detail)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (utc_text(at), self._day(at), fault, node_id, sku, ref, value, currency, json.dumps(detail)))

    def query(self, sql: str, *params: Any) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def faults(self, business_date: str | None = None) -> list[Fault]:
        sql = "SELECT fault, business_date, node_id, sku, ref, value, currency, detail FROM faults"
        rows = self.query(sql + " WHERE business_date = ?", business_date) if business_date else self.query(sql)
        return [Fault(*r[:7], json.loads(r[7] or "{}")) for r in rows]

    def expected_stock(self, node_id: str, sku: str, initial: int) -> int:
        """Stock after every recorded movement and count, applied in event-time order."""
        rows = self.query(
            "SELECT at, 'd', delta FROM movements WHERE node_id = ? AND sku = ? "
            "UNION ALL SELECT at, 'c', quantity FROM counts WHERE node_id = ? AND sku = ? ORDER BY 1, 2",
            node_id, sku, node_id, sku)
        qty = initial
        for _at, kind, value in rows:
            qty = value if kind == "c" else qty + value
        return qty

    def close(self) -> None:
        self._db.close()
