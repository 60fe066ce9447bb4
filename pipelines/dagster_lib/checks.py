"""Partitioned asset checks: each dataset's pandera schema, run against the stored partition(s).

A check runs for one business day, or, in a range run (a single-run backfill under
`BackfillPolicy.single_run()`), for every day of the range: each day is read and judged on its own
(uniqueness and the money limits are per day), and the check fails when any day fails. Dagster records
one evaluation per run, so a range's evaluation says per day what passed (metadata `by_day`,
`failed_days`) and shows the failing rows of the failing days.
"""


from collections.abc import Callable, Mapping

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipelines.dagster_lib.partitions import daily_partitions
from pipelines.defs.resources import StoreOfRecord
from pipelines.store.partitions import read_partition

SAMPLE_DAYS = 5  # failing days whose samples a range evaluation shows


def check_days(context: dg.AssetCheckExecutionContext) -> list[str]:
    """The business days this check evaluation covers: its partition, or every day of a range run
    (`context.partition_key` raises in a range run)."""
    return list(context.partition_keys)


def _number(value: object) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def combine_days(results: Mapping[str, dg.AssetCheckResult], sample_days: int = SAMPLE_DAYS) -> dg.AssetCheckResult:
    """One result for several days: failed if any day failed; numeric metadata summed, per-day figures in
    `by_day`, the failing days in `failed_days`, and the markdown samples of the first failing days."""
    if len(results) == 1:
        return next(iter(results.values()))
    first = next(iter(results.values()))
    failed = [day for day, r in results.items() if not r.passed]
    by_day: dict[str, dict[str, object]] = {}
    totals: dict[str, int | float] = {}
    counts: dict[str, dict[str, int | float]] = {}
    samples: dict[str, list[str]] = {}
    for day, r in results.items():
        figures: dict[str, object] = {"passed": r.passed}
        for key, md in r.metadata.items():
            if (n := _number(md.value)) is not None:
                figures[key] = n
                totals[key] = totals.get(key, 0) + n
            elif isinstance(md, dg.JsonMetadataValue) and isinstance(md.value, dict) and all(
                    _number(v) is not None for v in md.value.values()):
                merged = counts.setdefault(key, {})
                for k, v in md.value.items():
                    merged[k] = merged.get(k, 0) + v
            elif isinstance(md, dg.MarkdownMetadataValue) and not r.passed and day in failed[:sample_days]:
                samples.setdefault(key, []).append(f"**{day}**\n\n{md.value}")
        by_day[day] = figures
    if failed:
        more = f" (samples of the first {sample_days})" if len(failed) > sample_days else ""
        description = (f"{len(failed)} of {len(results)} day(s) failed{more}: {', '.join(failed)}; "
                       f"{failed[0]}: {results[failed[0]].description}")
    else:
        description = f"all {len(results)} days passed"
    metadata: dict[str, object] = {
        **{k: (dg.MetadataValue.float(float(v)) if isinstance(v, float) else v) for k, v in totals.items()},
        **{k: dg.MetadataValue.json(v) for k, v in counts.items()},
        **{k: dg.MetadataValue.md("\n\n".join(v)) for k, v in samples.items()},
        "days_checked": len(results),
        "failed_days": dg.MetadataValue.json(failed),
        "by_day": dg.MetadataValue.json(by_day),
    }
    return dg.AssetCheckResult(passed=not failed, severity=first.severity, description=description,
                               metadata=metadata)


def evaluate_days(context: dg.AssetCheckExecutionContext,
                  evaluate: Callable[[str], dg.AssetCheckResult]) -> dg.AssetCheckResult:
    """Run a one-day check for every day of the evaluation (one partition or a range) and combine."""
    return combine_days({day: evaluate(day) for day in check_days(context)})


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
                "failing_row_index": dg.MetadataValue.json(idx),  # the sampled rows' index labels
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
        engine = store.engine()
        return evaluate_days(context, lambda day: validate_frame(read_partition(engine, table_name, day),
                                                                 schema, severity))

    return _check


def rows_check(asset: str, name: str, description: str, sql_filter: str, *,
               severity: dg.AssetCheckSeverity, columns: list[str],
               explain: Callable[[int], str]) -> dg.AssetChecksDefinition:
    """A check that fails when rows of the partition match `sql_filter` (e.g. unmapped SKUs)."""

    @dg.asset_check(asset=dg.AssetKey(asset), name=name, partitions_def=daily_partitions,
                    description=description)
    def _check(context: dg.AssetCheckExecutionContext, store: StoreOfRecord) -> dg.AssetCheckResult:
        engine = store.engine()

        def one_day(day: str) -> dg.AssetCheckResult:
            df = read_partition(engine, asset, day)
            bad = df.query(sql_filter) if not df.empty else df
            return dg.AssetCheckResult(
                passed=bad.empty, severity=severity, description=explain(len(bad)),
                metadata={"failing_rows": len(bad),
                          "sample": dg.MetadataValue.md(bad[columns].head(20).to_markdown(index=False)
                                                        if not bad.empty else "_none_")},
            )

        return evaluate_days(context, one_day)

    return _check
