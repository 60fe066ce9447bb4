"""Runtime metadata that makes an asset explain itself in the UI: rows, columns, preview."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd

_DTYPE_NAMES = {"int64": "integer", "Int64": "integer", "float64": "decimal", "bool": "boolean", "object": "text"}


def column_schema(df: pd.DataFrame, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(columns=[
        dg.TableColumn(name=str(c), type=_DTYPE_NAMES.get(str(t), str(t)), description=descriptions.get(str(c)))
        for c, t in df.dtypes.items()
    ])


def preview(df: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    if df.empty:
        return dg.MetadataValue.md("_no rows_")
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False))


def table_metadata(df: pd.DataFrame, descriptions: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "dagster/row_count": len(df),
        "dagster/column_schema": column_schema(df, descriptions),
        "preview": preview(df),
        **extra,
    }


DayOutput = dict[str, tuple[pd.DataFrame, dict[str, Any]]]


def materialize_days(context: dg.AssetExecutionContext, one_day: Callable[[str], DayOutput]) -> list[dg.MaterializeResult]:
    """Run `one_day` for every business day in the run (one partition, or a whole backfill range
    under `BackfillPolicy.single_run()`), and merge each asset's metadata across the days."""
    days = context.partition_keys
    frames: dict[str, list[pd.DataFrame]] = {}
    extras: dict[str, list[dict[str, Any]]] = {}
    for day in days:
        for key, (df, extra) in one_day(day).items():
            frames.setdefault(key, []).append(df.assign(business_date=day) if len(days) > 1 else df)
            extras.setdefault(key, []).append(extra)
    results = []
    for key, dfs in frames.items():
        if len(days) == 1:
            md = table_metadata(dfs[0], **extras[key][0])
        else:
            sample = next((d for d in reversed(dfs) if not d.empty), dfs[-1])
            md = {
                "dagster/row_count": int(sum(len(d) for d in dfs)),
                "dagster/column_schema": column_schema(sample),
                "preview": preview(sample),
                "days": dg.MetadataValue.json({day: len(d) for day, d in zip(days, dfs, strict=True)}),
            }
        results.append(dg.MaterializeResult(asset_key=key, metadata=md))
    return results
