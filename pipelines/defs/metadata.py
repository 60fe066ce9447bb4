"""Runtime metadata that makes an asset explain itself in the UI: rows, columns, preview."""

from __future__ import annotations

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
