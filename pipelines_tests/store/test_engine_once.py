"""The store of record's engine is built and migrated once per process and database URL, not per sensor tick.

Dagster builds resources afresh for every sensor tick (the stock sync sensor ticks every 5 s); each tick
here gets a new `StoreOfRecord`, as the daemon does. What the database sees is counted with a SQLAlchemy
event listener on every engine: which engine objects ran statements, and how often the migration runner
created its bookkeeping table (it does so once per `migrate` call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine, event, text

from pipelines.defs.resources import StoreOfRecord
from pipelines.defs.sync.sensors import stock_sync_sensor
from pipelines.estate import Estate
from pipelines_tests.sync.conftest import land, sale

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


def tick(instance: dg.DagsterInstance, url: str, cursor: str | None) -> dg.SensorResult:
    """One sensor evaluation with a resource built for it, as on a daemon tick."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"store": StoreOfRecord(database_url=url)})
    result = stock_sync_sensor(context)
    return result if isinstance(result, dg.SensorResult) else dg.SensorResult(skip_reason=result)


def _sale_at_noon(estate: Estate) -> dict:
    return sale(estate.stores[0].newstore_node_id, estate.skus()[0], datetime(2026, 11, 20, 12, tzinfo=UTC))


def test_sensor_ticks_reuse_one_engine_and_migrate_once(tmp_path: Path, seen: Seen, small_estate: Estate) -> None:
    path = tmp_path / "store.sqlite"
    url = f"sqlite:///{path}"
    with dg.instance_for_test() as instance:
        cursor = None
        for n in range(8):
            if n == 4:  # stock work lands mid-way: the ticks still see the database as it is
                land(StoreOfRecord(database_url=url).engine(), _sale_at_noon(small_estate))
            result = tick(instance, url, cursor)
            assert bool(result.run_requests) == (n >= 4), n
            cursor = result.cursor
    assert seen.migrations[str(path)] == 1
    assert len(seen.engines[str(path)]) == 1  # every tick (and the landing) used the same engine
    assert StoreOfRecord(database_url=url).engine() is StoreOfRecord(database_url=url).engine()


def test_two_databases_in_one_process_keep_their_own_engine(tmp_path: Path, seen: Seen,
                                                            small_estate: Estate) -> None:
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    url_a, url_b = f"sqlite:///{a}", f"sqlite:///{b}"
    land(StoreOfRecord(database_url=url_a).engine(), _sale_at_noon(small_estate))  # work in A only
    with dg.instance_for_test() as instance:
        for _ in range(3):
            assert tick(instance, url_a, None).run_requests
            assert not tick(instance, url_b, None).run_requests
    assert seen.migrations[str(a)] == 1 and seen.migrations[str(b)] == 1
    assert len(seen.engines[str(a)]) == 1 and len(seen.engines[str(b)]) == 1
    assert seen.engines[str(a)] != seen.engines[str(b)]
    with StoreOfRecord(database_url=url_b).engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inbox_events")).scalar() == 0


def test_a_replaced_sqlite_file_is_migrated_again(tmp_path: Path, seen: Seen, small_estate: Estate) -> None:
    """A fresh devstack or bench home deletes the file in the same process: no stale engine on it."""
    path = tmp_path / "store.sqlite"
    url = f"sqlite:///{path}"
    engine = StoreOfRecord(database_url=url).engine()
    land(engine, _sale_at_noon(small_estate))
    engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with dg.instance_for_test() as instance:
        result = tick(instance, url, None)  # the new file has the schema, and none of the old file's work
    assert not result.run_requests and result.skip_reason
    assert seen.migrations[str(path)] == 2
    assert StoreOfRecord(database_url=url).engine() is not engine
