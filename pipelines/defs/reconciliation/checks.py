"""Checks on the daily reconciliation: output schema, money mismatches (blocking), drift, freshness.

Each partitioned check judges every business day of its run on its own (one day, or each day of a range
backfill) and fails when any day fails; the limits are per day (see `pipelines.dagster_lib.checks.evaluate_days`)."""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from pipelines.dagster_lib import schemas
from pipelines.dagster_lib.checks import evaluate_days, schema_check, validate_frame
from pipelines.dagster_lib.partitions import daily_partitions
from pipelines.dagster_lib.reconciliation_gates import DRIFT_GATE, MONEY_GATE, Gate, drift_gate, money_gate
from pipelines.defs.reconciliation.assets import (
    DRIFT,
    EVIDENCE,
    FINDINGS,
    RESTATEMENTS,
    SALES,
    TOTALS,
    read_findings,
)
from pipelines.defs.reconciliation.freshness import finance_report_freshness
from pipelines.defs.resources import ReconciliationSettings, StoreOfRecord

SAMPLE_COLUMNS = ["finding_type", "location_id", "sku", "order_ref", "transaction_id", "quantity_diff", "amount_diff",
                  "currency", "value_at_risk", "value_at_risk_base", "owner_team"]


def _sample(df: pd.DataFrame) -> dg.MetadataValue:
    if df.empty:
        return dg.MetadataValue.md("_none_")
    return dg.MetadataValue.md(df.sort_values("value_at_risk_base", ascending=False)[SAMPLE_COLUMNS]
                               .head(20).to_markdown(index=False))


@dg.asset_check(asset=FINDINGS, partitions_def=daily_partitions,
                description="The findings table is well formed (types, teams, severities, non-negative values).")
def reconciliation_findings_schema(context: dg.AssetCheckExecutionContext,
                                   store: StoreOfRecord) -> dg.AssetCheckResult:
    return evaluate_days(context, lambda day: validate_frame(read_findings(store, day), schemas.Findings,
                                                             dg.AssetCheckSeverity.ERROR))


def gate_result(gate: Gate, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    """A gate as a check result: its findings' count, value and a sample."""
    hits = gate.hits
    return dg.AssetCheckResult(
        passed=gate.passed,
        severity=severity,
        description=gate.description,
        metadata={"failing_rows": len(hits), "value_at_risk_base": dg.MetadataValue.float(gate.value_base),
                  # quantity_diff reads back as object when every row of the day is NULL (money-only types)
                  "units": int(pd.to_numeric(hits["quantity_diff"], errors="coerce").abs().sum()),
                  "by_type": dg.MetadataValue.json({str(k): int(v) for k, v in
                                                    hits["finding_type"].value_counts().items()}),
                  "sample": _sample(hits)},
    )


def _gate_check(name: str, gate: Callable[[pd.DataFrame, ReconciliationSettings], Gate],
                severity: dg.AssetCheckSeverity, description: str, *,
                blocking: bool = False) -> dg.AssetChecksDefinition:
    """The daily check `name` on the findings: each day's findings through `gate` (with the limits of
    `reconciliation_settings`), failing with `severity` where the gate does."""

    @dg.asset_check(asset=FINDINGS, name=name, partitions_def=daily_partitions, blocking=blocking,
                    description=description)
    def _check(context: dg.AssetCheckExecutionContext, store: StoreOfRecord,
               reconciliation_settings: ReconciliationSettings) -> dg.AssetCheckResult:
        return evaluate_days(context, lambda day: gate_result(
            gate(read_findings(store, day), reconciliation_settings), severity))

    return _check


money_mismatches_within_tolerance = _gate_check(
    MONEY_GATE, money_gate, dg.AssetCheckSeverity.ERROR, blocking=True,
    description="ERROR, blocking the finance report: money mismatches (refunds, returns, tax, store sales, open "
                "pickups) whose value at risk exceeds the `blocking_value_base` of `reconciliation_settings` "
                "(PIPELINES_RECON_BLOCKING_VALUE_BASE, base currency, default 0).")

stock_drift_within_tolerance = _gate_check(
    DRIFT_GATE, drift_gate, dg.AssetCheckSeverity.WARN,
    description="WARN: stock drift between store on-hand and the store warehouse in Centra whose value exceeds "
                "the `drift_warn_value_base` of `reconciliation_settings` (PIPELINES_RECON_DRIFT_WARN_VALUE_BASE, "
                "base currency, default 0).")


# The tables written beside the findings: well formed, or the report and the rollup that read them are not.
table_checks = [
    schema_check(TOTALS, schemas.DailyTotals, severity=dg.AssetCheckSeverity.ERROR),
    schema_check(DRIFT, schemas.DriftByStore, severity=dg.AssetCheckSeverity.WARN),
    schema_check(EVIDENCE, schemas.EvidenceNotes, severity=dg.AssetCheckSeverity.WARN),
    schema_check(SALES, schemas.SalesTotals, severity=dg.AssetCheckSeverity.WARN),
    schema_check(RESTATEMENTS, schemas.Restatements, severity=dg.AssetCheckSeverity.WARN),
]

reconciliation_checks = [reconciliation_findings_schema, money_mismatches_within_tolerance,
                         stock_drift_within_tolerance, *table_checks, finance_report_freshness]
