"""The store of record's engine is built and migrated once per process and database URL, not per sensor tick.

Dagster builds resources afresh for every sensor tick (the stock sync sensor ticks every 5 s); each tick
here gets a new `StoreOfRecord`, as the daemon does, and evaluates `open_exceptions_sensor` (which reads
the store of record on every tick). What the database sees is counted with a SQLAlchemy
event listener on every engine: which engine objects ran statements, and how often the migration runner
created its bookkeeping table (it does so once per `migrate` call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine, event, text

from pipelines.defs.exceptions import open_exceptions_sensor
from pipelines.defs.resources import StoreOfRecord
from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.sync.exceptions import STOCK_SYNC_REJECTED
from pipelines.estate import Estate
from pipelines.store.inbox import record_exceptions

MIGRATION_MARK = "CREATE TABLE IF NOT EXISTS schema_migrations"


class Seen:
    """Per database file: migrate calls, and the engine objects that ran statements."""

    def __init__(self) -> None:
        self.migrations: Counter[str] = Counter()
        self.engines: dict[str, set[int]] = {}

    def __call__(self, conn, _cursor, statement: str, *_args) -> None:  # noqa: ANN001
        db = conn.engine.url.database
        self.engines.setdefault(db, set()).add(id(conn.engine))
        if statement.startswith(MIGRATION_MARK):
            self.migrations[db] += 1


@pytest.fixture
def seen() -> Iterator[Seen]:
    listener = Seen()
    event.listen(Engine, "before_cursor_execute", listener)
    try:
        yield listener
    finally:
        event.remove(Engine, "before_cursor_execute", listener)


def tick(instance: dg.DagsterInstance, url: str) -> int:
    """Open exceptions as a sensor tick sees them, with a resource built for the tick as on a daemon
    (two evaluations: the second, given the first's cursor, says the count in its skip reason)."""
    def evaluate(cursor: str | None) -> dg.SensorResult:
        return open_exceptions_sensor(dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"store": StoreOfRecord(database_url=url)}))

    again = evaluate(evaluate(None).cursor)
    return int(str(again.skip_reason.skip_message).split()[0])


def land_work(url: str, estate: Estate) -> None:
    record_exceptions(StoreOfRecord(database_url=url).engine(), [ExceptionRecord.of(
        STOCK_SYNC_REJECTED, f"1:{estate.skus()[0]}", "stock_sync", "rejected (test)")])


def test_sensor_ticks_reuse_one_engine_and_migrate_once(tmp_path: Path, seen: Seen, small_estate: Estate) -> None:
    path = tmp_path / "store.sqlite"
    url = f"sqlite:///{path}"
    with dg.instance_for_test() as instance:
        for n in range(8):
            if n == 4:  # work lands mid-way: the ticks still see the database as it is
                land_work(url, small_estate)
            assert tick(instance, url) == (1 if n >= 4 else 0), n
    assert seen.migrations[str(path)] == 1
    assert len(seen.engines[str(path)]) == 1  # every tick (and the landing) used the same engine
    assert StoreOfRecord(database_url=url).engine() is StoreOfRecord(database_url=url).engine()


def test_two_databases_in_one_process_keep_their_own_engine(tmp_path: Path, seen: Seen,
                                                            small_estate: Estate) -> None:
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    url_a, url_b = f"sqlite:///{a}", f"sqlite:///{b}"
    land_work(url_a, small_estate)  # work in A only
    with dg.instance_for_test() as instance:
        for _ in range(3):
            assert tick(instance, url_a) == 1
            assert tick(instance, url_b) == 0
    assert seen.migrations[str(a)] == 1 and seen.migrations[str(b)] == 1
    assert len(seen.engines[str(a)]) == 1 and len(seen.engines[str(b)]) == 1
    assert seen.engines[str(a)] != seen.engines[str(b)]
    with StoreOfRecord(database_url=url_b).engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM exceptions")).scalar() == 0


def test_a_replaced_sqlite_file_is_migrated_again(tmp_path: Path, seen: Seen, small_estate: Estate) -> None:
    """A fresh devstack or bench home deletes the file in the same process: no stale engine on it."""
    path = tmp_path / "store.sqlite"
    url = f"sqlite:///{path}"
    engine = StoreOfRecord(database_url=url).engine()
    land_work(url, small_estate)
    engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with dg.instance_for_test() as instance:
        assert tick(instance, url) == 0  # the new file has the schema, and none of the old file's work
    assert seen.migrations[str(path)] == 2
    assert StoreOfRecord(database_url=url).engine() is not engine
