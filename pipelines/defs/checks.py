"""Partitioned asset checks: each dataset's pandera schema, run against the stored partition."""


from collections.abc import Callable

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipelines.defs.partitions import daily_partitions
from pipelines.defs.resources import StoreOfRecord
from pipelines.store.partitions import read_partition


def validate_frame(df: pd.DataFrame, schema: type[pa.DataFrameModel], severity: dg.AssetCheckSeverity,
                   sample_rows: int = 20) -> dg.AssetCheckResult:
    """Validate lazily; on failure report the count and a sample of failure cases and failing rows."""
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        idx = [i for i in cases["index"].dropna().unique().tolist() if i in df.index][:sample_rows]
        return dg.AssetCheckResult(
            passed=False,
            severity=severity,
            description=f"{len(cases)} schema failure(s) in {len(df)} rows",
            metadata={
                "failures": len(cases),
                "failing_rows": len(set(cases["index"].dropna().tolist())),
                "rows": len(df),
                "failure_sample": dg.MetadataValue.md(
                    cases[["schema_context", "column", "check", "failure_case", "index"]]
                    .head(sample_rows).astype(str).to_markdown(index=False)),
                "failing_rows_sample": dg.MetadataValue.md(
                    df.loc[idx].astype(str).to_markdown() if idx else "_dataframe-level failure_"),
            },
        )
    return dg.AssetCheckResult(passed=True, severity=severity, metadata={"rows": len(df), "failures": 0})


def schema_check(asset: str, schema: type[pa.DataFrameModel], *, severity: dg.AssetCheckSeverity,
                 table_name: str | None = None, blocking: bool = False) -> dg.AssetChecksDefinition:
    table_name = table_name or asset

    @dg.asset_check(
        asset=dg.AssetKey(asset),
        name=f"{asset}_schema",
        partitions_def=daily_partitions,
        blocking=blocking,
        description=f"pandera schema {schema.__name__} on the stored partition of {table_name} ({severity.value}).",
    )
    def _check(context: dg.AssetCheckExecutionContext, store: StoreOfRecord) -> dg.AssetCheckResult:
        df = read_partition(store.engine(), table_name, context.partition_key)
        return validate_frame(df, schema, severity)

    return _check


def rows_check(asset: str, name: str, description: str, sql_filter: str, *,
               severity: dg.AssetCheckSeverity, columns: list[str],
               explain: Callable[[int], str]) -> dg.AssetChecksDefinition:
    """A check that fails when rows of the partition match `sql_filter` (e.g. unmapped SKUs)."""

    @dg.asset_check(asset=dg.AssetKey(asset), name=name, partitions_def=daily_partitions,
                    description=description)
    def _check(context: dg.AssetCheckExecutionContext, store: StoreOfRecord) -> dg.AssetCheckResult:
        df = read_partition(store.engine(), asset, context.partition_key)
        bad = df.query(sql_filter) if not df.empty else df
        return dg.AssetCheckResult(
            passed=bad.empty, severity=severity, description=explain(len(bad)),
            metadata={"failing_rows": len(bad),
                      "sample": dg.MetadataValue.md(bad[columns].head(20).to_markdown(index=False)
                                                    if not bad.empty else "_none_")},
        )

    return _check
