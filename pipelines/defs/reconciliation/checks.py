"""Checks on the daily reconciliation: output schema, money mismatches (blocking), drift, freshness.

Each partitioned check judges every business day of its run on its own (one day, or each day of a range
backfill) and fails when any day fails; the limits are per day (see `pipelines.defs.checks.evaluate_days`)."""

import os

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipelines.defs.checks import evaluate_days, validate_frame
from pipelines.defs.partitions import BUSINESS_TIMEZONE, daily_partitions
from pipelines.defs.reconciliation.assets import finance_daily_report, read_findings, reconciliation_findings
from pipelines.defs.resources import StoreOfRecord
from pipelines.domain.reconciliation.model import FINDING_TYPES

MONEY_TYPES = ("store_sales_mismatch", "return_without_order_ref", "return_missing_in_commerce",
               "refund_amount_mismatch", "refund_tax_mismatch", "click_collect_open", "line_tax_mismatch")
DRIFT_TYPES = ("stock_drift_oversell", "stock_drift_lost_sales")
SAMPLE_COLUMNS = ["finding_type", "location_id", "sku", "order_ref", "transaction_id", "quantity_diff", "amount_diff",
                  "currency", "value_at_risk", "value_at_risk_base", "owner_team"]


class Findings(pa.DataFrameModel):
    finding_type: Series[str] = pa.Field(isin=sorted(FINDING_TYPES))
    severity: Series[str] = pa.Field(isin=["ERROR", "WARN"])
    owner_team: Series[str] = pa.Field(isin=["finance", "retail_operations", "ecommerce", "integration"])
    value_at_risk: Series[float] = pa.Field(ge=0)
    value_at_risk_base: Series[float] = pa.Field(ge=0)
    risk_rank: Series[int] = pa.Field(ge=1)
    playbook: Series[str] = pa.Field(str_length={"min_value": 10})

    class Config:
        coerce = True


def _sample(df: pd.DataFrame) -> dg.MetadataValue:
    if df.empty:
        return dg.MetadataValue.md("_none_")
    return dg.MetadataValue.md(df.sort_values("value_at_risk_base", ascending=False)[SAMPLE_COLUMNS]
                               .head(20).to_markdown(index=False))


def _threshold(name: str) -> float:
    return float(os.environ.get(name, "0"))


@dg.asset_check(asset=reconciliation_findings, partitions_def=daily_partitions,
                description="The findings table is well formed (types, teams, severities, non-negative values).")
def reconciliation_findings_schema(context: dg.AssetCheckExecutionContext,
                                   store: StoreOfRecord) -> dg.AssetCheckResult:
    return evaluate_days(context, lambda day: validate_frame(read_findings(store, day), Findings,
                                                             dg.AssetCheckSeverity.ERROR))


def _value_check(findings: pd.DataFrame, types: tuple[str, ...], limit_env: str, severity: dg.AssetCheckSeverity,
                 what: str) -> dg.AssetCheckResult:
    """Fails when the day's findings of `types` put more than the configured value (base currency) at risk."""
    hits = findings[findings["finding_type"].isin(types)]
    value = float(hits["value_at_risk_base"].sum())
    limit = _threshold(limit_env)
    return dg.AssetCheckResult(
        passed=hits.empty or value <= limit,
        severity=severity,
        description=f"{len(hits)} {what}, {value:.2f} at risk (limit {limit:.2f})",
        metadata={"failing_rows": len(hits), "value_at_risk_base": value,
                  # quantity_diff reads back as object when every row of the day is NULL (money-only types)
                  "units": int(pd.to_numeric(hits["quantity_diff"], errors="coerce").abs().sum()),
                  "by_type": dg.MetadataValue.json({str(k): int(v) for k, v in
                                                    hits["finding_type"].value_counts().items()}),
                  "sample": _sample(hits)},
    )


@dg.asset_check(asset=reconciliation_findings, partitions_def=daily_partitions, blocking=True,
                description="ERROR, blocking the finance report: money mismatches (refunds, returns, tax, "
                            "store sales, open pickups) whose value at risk exceeds "
                            "PIPELINES_RECON_BLOCKING_VALUE_BASE (base currency, default 0).")
def money_mismatches_within_tolerance(context: dg.AssetCheckExecutionContext,
                                      store: StoreOfRecord) -> dg.AssetCheckResult:
    return evaluate_days(context, lambda day: _value_check(
        read_findings(store, day), MONEY_TYPES, "PIPELINES_RECON_BLOCKING_VALUE_BASE", dg.AssetCheckSeverity.ERROR,
        "money mismatch(es)"))


@dg.asset_check(asset=reconciliation_findings, partitions_def=daily_partitions,
                description="WARN: stock drift between store on-hand and the store warehouse in Centra whose "
                            "value exceeds PIPELINES_RECON_DRIFT_WARN_VALUE_BASE (base currency, default 0).")
def stock_drift_within_tolerance(context: dg.AssetCheckExecutionContext,
                                 store: StoreOfRecord) -> dg.AssetCheckResult:
    return evaluate_days(context, lambda day: _value_check(
        read_findings(store, day), DRIFT_TYPES, "PIPELINES_RECON_DRIFT_WARN_VALUE_BASE", dg.AssetCheckSeverity.WARN,
        "drifting (store, SKU) pair(s)"))


REPORT_DEADLINE_HOUR = int(os.environ.get("PIPELINES_RECON_REPORT_DEADLINE_HOUR", "7"))

report_freshness_checks = dg.build_time_partition_freshness_checks(
    assets=[finance_daily_report], deadline_cron=f"0 {REPORT_DEADLINE_HOUR} * * *", timezone=BUSINESS_TIMEZONE,
    severity=dg.AssetCheckSeverity.ERROR,
)
report_freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=report_freshness_checks, name="finance_report_freshness_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
)

reconciliation_checks = [reconciliation_findings_schema, money_mismatches_within_tolerance,
                         stock_drift_within_tolerance, *report_freshness_checks]
