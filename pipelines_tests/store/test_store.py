"""Store of record: migrations, idempotent partitions, inbox dedupe, exception upserts (SQLite + PostgreSQL)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.domain.exceptions import UNKNOWN_SKU, ExceptionRecord
from pipelines.intake.verify import InboundEvent
from pipelines.store import make_engine, migrate
from pipelines.store.inbox import record_exceptions, store_events
from pipelines.store.migrate import MigrationError
from pipelines.store.partitions import read_partition, replace_partitions


def test_migrations_apply_once_and_upgrade_in_place(db_url: str, tmp_path) -> None:
    engine = make_engine(db_url)
    assert migrate(engine) == []  # the fixture applied everything already
    extra = tmp_path / "migrations"
    extra.mkdir()
    from pipelines.store.migrate import MIGRATIONS_DIR

    for f in MIGRATIONS_DIR.glob("*.sql"):
        (extra / f.name).write_text(f.read_text())
    (extra / "9999_add_column.sql").write_text("ALTER TABLE pos_catalog ADD COLUMN note VARCHAR(20);")
    assert migrate(engine, extra) == ["9999_add_column.sql"]
    assert migrate(engine, extra) == []
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO pos_catalog (business_date, sku, product_id, locations, on_hand_total, note)"
                          " VALUES ('2026-01-01', 'A', 'A', 1, 2, 'kept')"))
    (extra / "9999_add_column.sql").write_text("ALTER TABLE pos_catalog ADD COLUMN other VARCHAR(20);")
    with pytest.raises(MigrationError):
        migrate(engine, extra)


def test_replace_partition_is_idempotent_and_scoped(db_url: str) -> None:
    engine = make_engine(db_url)
    df = pd.DataFrame({"sku": ["A", "B"], "product_id": ["A", "B"], "locations": [1, 2], "on_hand_total": [3, 4]})
    replace_partitions(engine, "2026-01-01", {"pos_catalog": df})
    replace_partitions(engine, "2026-01-02", {"pos_catalog": df.head(1)})
    replace_partitions(engine, "2026-01-01", {"pos_catalog": df})
    first = read_partition(engine, "pos_catalog", "2026-01-01")
    assert sorted(first["sku"]) == ["A", "B"]
    assert len(read_partition(engine, "pos_catalog", "2026-01-02")) == 1


def test_inbox_stores_each_event_once(db_url: str) -> None:
    engine = make_engine(db_url)
    ev = InboundEvent("newstore", "order.opened:abc", "order.opened", "2026-01-01T10:00:00.000000Z", {"x": 1})
    assert store_events(engine, [ev]) == [True]
    assert store_events(engine, [ev, ev]) == [False, False]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inbox_events")).scalar() == 1


def test_exception_records_upsert_by_key(db_url: str) -> None:
    engine = make_engine(db_url)
    rec = ExceptionRecord.of(UNKNOWN_SKU, "SE01:ZZZ", "newstore", "unknown", sku="ZZZ", business_date="2026-01-01")
    record_exceptions(engine, [rec])
    record_exceptions(engine, [rec])
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT exception_type, owner_team, occurrences, status FROM exceptions")).all()
    assert [tuple(r) for r in rows] == [("unknown_sku", "ecommerce", 2, "open")]
