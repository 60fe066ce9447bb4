"""Idempotent partition writes and reads: delete the business date, insert, one transaction."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text

from pipelines.store.db import table

# Columns stored as {{BOOL}} (INTEGER on SQLite, BOOLEAN on PostgreSQL), read back as bool.
BOOLEAN_COLUMNS = {"sku_known", "refunded", "is_active"}


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return value.item()
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = list(df.columns)
    return [{c: _clean(v) for c, v in zip(cols, row, strict=True)} for row in df.itertuples(index=False, name=None)]


def replace_partitions(engine: Engine, business_date: str, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Replace one business date in several tables atomically; returns rows written per table."""
    written: dict[str, int] = {}
    with engine.begin() as conn:
        for name, df in frames.items():
            tbl = table(engine, name)
            conn.execute(tbl.delete().where(tbl.c.business_date == business_date))
            rows = records(df.assign(business_date=business_date))
            for start in range(0, len(rows), 5000):
                conn.execute(tbl.insert(), rows[start:start + 5000])
            written[name] = len(rows)
    return written


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    for col in df.columns:
        if df[col].dtype == object and len(df) and df[col].map(lambda v: isinstance(v, Decimal)).any():
            df[col] = df[col].map(lambda v: float(v) if v is not None else None).astype(float)
        if col in BOOLEAN_COLUMNS:
            df[col] = df[col].astype(bool)
    return df


def read_partition(engine: Engine, table_name: str, business_date: str, columns: list[str] | None = None) -> pd.DataFrame:
    cols = ", ".join(columns) if columns else "*"
    with engine.connect() as conn:
        df = pd.read_sql(text(f"SELECT {cols} FROM {table_name} WHERE business_date = :d"),  # noqa: S608
                         conn, params={"d": business_date})
    return _normalise(df)


def read_sql(engine: Engine, sql: str, **params: Any) -> pd.DataFrame:
    with engine.connect() as conn:
        return _normalise(pd.read_sql(text(sql), conn, params=params))
