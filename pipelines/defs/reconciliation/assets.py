"""Daily reconciliation for finance: findings, the finance report files, and the month-end rollup."""

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from pipelines.defs.metadata import DayOutput, materialize_days, preview
from pipelines.defs.partitions import BUSINESS_TIMEZONE, daily_partitions
from pipelines.defs.resources import CentraResource, EstateResource, StoreOfRecord
from pipelines.domain.reconciliation import FINDING_COLUMNS, ReconciliationInputs, Tolerance, reconcile
from pipelines.domain.reconciliation.engine import exception_records
from pipelines.domain.reconciliation.reference import build_reference
from pipelines.reporting.finance_report import summarise, write_daily_report, write_month_report
from pipelines.settings import settings
from pipelines.store.inbox import record_exceptions
from pipelines.store.partitions import read_partition, read_sql, replace_partitions

OWNERS = ["team:finance"]
SINGLE_RUN = dg.BackfillPolicy.single_run()
RAW_DEPS = ["pos_sale_lines", "pos_pickups", "pos_stock_movements", "pos_stock_snapshot", "pos_catalog", "centra_orders",
            "centra_returns", "centra_return_lines", "centra_stock_snapshot", "centra_stock_changes", "centra_catalog"]

monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=daily_partitions.start.strftime("%Y-%m-01"),
                                                    timezone=BUSINESS_TIMEZONE, end_offset=1)


def tolerance_from_env() -> Tolerance:
    return Tolerance(money=float(os.environ.get("PIPELINES_RECON_MONEY_TOLERANCE", "0.01")),
                     units=int(os.environ.get("PIPELINES_RECON_UNIT_TOLERANCE", "0")))


def _days_before(day: str, n: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=n)).isoformat()


def pickup_orders(centra: CentraResource, numbers: list[int]) -> pd.DataFrame:
    """Centra's current state of the online orders picked up in stores (created on any earlier day)."""
    rows = []
    if numbers:
        with centra.client() as client:
            for number in numbers:
                order = client.order(int(number))
                if order is not None:
                    rows.append({"order_number": order.number, "status": order.status,
                                 "grand_total": order.grand_total, "currency": order.currency})
    return pd.DataFrame(rows, columns=["order_number", "status", "grand_total", "currency"])


def load_inputs(store: StoreOfRecord, estate: EstateResource, day: str,
                centra: CentraResource | None = None) -> ReconciliationInputs:
    """The day's raw datasets from the store of record (plus recent sales for ids and sell-through, and
    Centra's current status of the day's click-and-collect orders)."""
    engine = store.engine()
    recent = read_sql(engine, "SELECT business_date, transaction_id, kind, location_id, fulfillment_node_id, sku, "
                              "quantity FROM pos_sale_lines WHERE business_date >= :start AND business_date <= :day",
                      start=_days_before(day, 60), day=day)
    week = recent[(recent["business_date"] > _days_before(day, 7)) & (recent["kind"] == "sale")]
    sell_through = (week.groupby(["location_id", "sku"], as_index=False)["quantity"].sum()
                    .rename(columns={"quantity": "units_sold_recent"}))
    part = lambda name: read_partition(engine, name, day).assign(business_date=day)  # noqa: E731
    lines = part("pos_sale_lines")
    # A return of one of the POS's own store sales (its original transaction is a known store sale)
    # is referenced by that transaction, not by an online order: the rules then skip it.
    sale_ids = set(recent.loc[recent["kind"] == "sale", "transaction_id"])
    store_returns = lines["original_transaction_id"].isin(sale_ids)
    lines.loc[store_returns, "original_order_ref"] = lines.loc[store_returns, "original_transaction_id"]
    pickups = part("pos_pickups")
    pickups["order_number"] = pd.to_numeric(pickups["order_number"], errors="coerce").astype("Int64")
    orders = part("centra_orders")
    if centra is not None:
        current = pickup_orders(centra, pickups["order_number"].dropna().astype(int).tolist())
        orders = pd.concat([orders, current.assign(business_date=day)], ignore_index=True)
    return ReconciliationInputs(
        business_date=day,
        reference=build_reference(estate.get()),
        pos_sale_lines=lines,
        pos_stock_snapshot=part("pos_stock_snapshot"),
        pos_catalog=part("pos_catalog"),
        pos_stock_movements=part("pos_stock_movements"),
        centra_orders=orders,
        centra_returns=part("centra_returns"),
        centra_return_lines=part("centra_return_lines"),
        centra_stock_snapshot=part("centra_stock_snapshot"),
        centra_stock_changes=part("centra_stock_changes"),
        centra_catalog=part("centra_catalog"),
        pickups=pickups,
        sell_through=sell_through,
        store_sale_transaction_ids=sorted(sale_ids),
    )


@dg.asset(
    group_name="reconciliation",
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    deps=RAW_DEPS,
    owners=OWNERS,
    kinds={"pandas", "sql"},
    description="Every difference between the stores (NewStore) and the web shop (Centra) for one business day, "
                "each from both systems' own records: stock drift (oversell / lost-sales risk), silent sync "
                "failures, orphaned SKUs, refund and return gaps, click-and-collect pickups whose online order is "
                "still open, tax, discount and price-list mismatches. Each "
                "finding carries its value at risk (store and base currency), a commercial-risk rank, the owning "
                "team and the playbook action, and is raised as an exception record.",
)
def reconciliation_findings(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                            centra: CentraResource) -> Iterator[dg.MaterializeResult]:
    engine = store.engine()
    tolerance = tolerance_from_env()

    def one_day(day: str) -> DayOutput:
        result = reconcile(load_inputs(store, estate, day, centra), tolerance)
        findings = result.findings[FINDING_COLUMNS].drop(columns=["business_date"])
        totals = result.totals.rename(columns={"count": "findings"})
        drift = result.drift_by_store
        replace_partitions(engine, day, {"reconciliation_findings": findings,
                                         "reconciliation_daily_totals": totals,
                                         "reconciliation_drift_by_store": drift})
        record_exceptions(engine, exception_records(result.findings))
        summary = summarise(result.findings)
        by_type = {r.finding_type: int(r.findings) for r in totals.itertuples()}
        return {"reconciliation_findings": (findings, {
            **{k: dg.MetadataValue.float(float(v)) if isinstance(v, float) else v
               for k, v in summary.headline().items()},
            "findings_by_type": dg.MetadataValue.json(by_type),
            "rules_skipped": dg.MetadataValue.json(result.skipped),
            "top_risks": preview(findings.sort_values("risk_rank")[
                ["finding_type", "location_id", "sku", "order_ref", "quantity_diff", "value_at_risk_base",
                 "owner_team"]], rows=15),
        })}

    yield from materialize_days(context, one_day)


def read_findings(store: StoreOfRecord, day: str) -> pd.DataFrame:
    return read_partition(store.engine(), "reconciliation_findings", day).assign(business_date=day)[FINDING_COLUMNS]


def read_history(store: StoreOfRecord, day: str, days: int = 30) -> pd.DataFrame:
    """Per day of the last `days`: drift value, value at risk and findings (base currency)."""
    totals = read_sql(store.engine(), "SELECT business_date, finding_type, findings, value_at_risk_base "
                                      "FROM reconciliation_daily_totals WHERE business_date > :start "
                                      "AND business_date <= :day", start=_days_before(day, days), day=day)
    if totals.empty:
        return pd.DataFrame(columns=["business_date", "drift_value_base", "value_at_risk_base", "findings"])
    totals["drift_value_base"] = totals["value_at_risk_base"].where(
        totals["finding_type"].str.startswith("stock_drift_"), 0.0)
    return totals.groupby("business_date", as_index=False).agg(
        drift_value_base=("drift_value_base", "sum"), value_at_risk_base=("value_at_risk_base", "sum"),
        findings=("findings", "sum"))


@dg.asset(
    group_name="reconciliation",
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    deps=[reconciliation_findings],
    owners=OWNERS,
    kinds={"html", "csv"},
    description="The finance report of one business day under PIPELINES_REPORTS_DIR/<date>/: summary.html "
                "(totals by type and team, top risks, drift value by store, 30-day drift chart), findings.csv "
                "and one CSV per finding type. Blocked while the day has money mismatches above tolerance.",
)
def finance_daily_report(context: dg.AssetExecutionContext, store: StoreOfRecord,
                         estate: EstateResource) -> Iterator[dg.MaterializeResult]:
    out_dir = settings().reports_dir
    est = estate.get()

    def one_day(day: str) -> DayOutput:
        findings = read_findings(store, day)
        files = write_daily_report(out_dir, day, findings, read_history(store, day),
                                   base_currency=est.base_currency, estate_name=est.name)
        summary = summarise(findings)
        return {"finance_daily_report": (findings, {
            **{k: dg.MetadataValue.float(float(v)) if isinstance(v, float) else v
               for k, v in summary.headline().items()},
            "summary_html": dg.MetadataValue.path(str(files.summary_html)),
            "summary_url": dg.MetadataValue.url(Path(files.summary_html).resolve().as_uri()),
            "csv_files": dg.MetadataValue.json(sorted(p.name for p in files.csv_by_type.values())),
        })}

    yield from materialize_days(context, one_day)


@dg.asset(
    group_name="reconciliation",
    partitions_def=monthly_partitions,
    deps=[finance_daily_report],
    owners=OWNERS,
    kinds={"html", "csv", "sql"},
    description="Month-end rollup of the daily reconciliation: findings and value at risk by day, type and team "
                "for the month, as PIPELINES_REPORTS_DIR/<YYYY-MM>/summary.html and totals.csv.",
)
def finance_month_end_rollup(context: dg.AssetExecutionContext, store: StoreOfRecord,
                             estate: EstateResource) -> dg.MaterializeResult:
    month = context.partition_key[:7]
    est = estate.get()
    totals = read_sql(store.engine(), "SELECT business_date, finding_type, severity, owner_team, findings, "
                                      "value_at_risk_base FROM reconciliation_daily_totals "
                                      "WHERE business_date LIKE :m ORDER BY business_date", m=f"{month}-%")
    path = write_month_report(settings().reports_dir, month, totals, base_currency=est.base_currency,
                              estate_name=est.name)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(totals),
        "days_reconciled": int(totals["business_date"].nunique()) if not totals.empty else 0,
        "findings": int(totals["findings"].sum()) if not totals.empty else 0,
        "value_at_risk_base": float(totals["value_at_risk_base"].sum()) if not totals.empty else 0.0,
        "summary_html": dg.MetadataValue.path(str(path)),
        "preview": preview(totals.groupby(["finding_type", "owner_team"], as_index=False)[
            ["findings", "value_at_risk_base"]].sum() if not totals.empty else totals),
    })
