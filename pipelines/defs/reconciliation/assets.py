"""Daily reconciliation for finance: the findings and the tables beside them, the finance report files, and
the month-end rollup."""

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from sqlalchemy import Engine, func, select

from pipelines.connectors.newstore import NewStoreClient
from pipelines.dagster_lib.common import FINANCE, SINGLE_RUN
from pipelines.dagster_lib.metadata import DayOutput, materialize_days, preview
from pipelines.dagster_lib.partitions import daily_partitions, monthly_partitions
from pipelines.dagster_lib.reconciliation_evidence import original_order_lookup
from pipelines.dagster_lib.reconciliation_gates import report_gates
from pipelines.defs.commerce_platform import CommerceOpener, commerce_reads
from pipelines.defs.resources import (
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    FinanceReportFiles,
    NewStoreResource,
    ReconciliationSettings,
    StoreOfRecord,
)
from pipelines.domain.kiosk.availability import kiosk_locations
from pipelines.domain.kiosk.postings import day_summary
from pipelines.domain.reconciliation import FINDING_COLUMNS, ReconciliationInputs, reconcile
from pipelines.domain.reconciliation.engine import exception_records
from pipelines.domain.reconciliation.model import DRIFT_TYPES
from pipelines.domain.reconciliation.reference import build_reference
from pipelines.domain.reconciliation.restatement import CHANGE_COLUMNS, describe, restate, sales_totals
from pipelines.domain.reconciliation.return_origins import classify_returns
from pipelines.domain.timeutil import day_window_utc, utc_text
from pipelines.estate import Estate
from pipelines.reporting.finance_report import round_money, summarise
from pipelines.settings import businesscentral as businesscentral_settings
from pipelines.settings import businesscentral_credentials_set
from pipelines.settings import cloudshelf as cloudshelf_settings
from pipelines.store import erp_datasets
from pipelines.store.db import table
from pipelines.store.inbox import record_exceptions
from pipelines.store.kiosk import stock_levels_frame
from pipelines.store.partitions import read_partition, read_sql, replace_partitions
from pipelines.store.recoveries import missing_on
from pipelines.sync.resync import kiosk_units_uncounted_at

RAW_DEPS = ["pos_sale_lines", "pos_pickups", "pos_stock_movements", "pos_stock_snapshot", "pos_catalog",
            "pos_transaction_recoveries", "centra_orders",
            "centra_returns", "centra_return_lines", "centra_stock_snapshot", "centra_stock_changes", "centra_catalog",
            "cloudshelf_orders", "kiosk_stock_levels"]
# The ERP's datasets (pipelines/defs/erp): read only when the ERP is configured (`erp_enabled`).
ERP_DEPS = ["erp_sales_orders", "erp_shipments", "erp_stock_snapshot", "erp_items", "erp_store_sales",
            "centra_order_lines"]
FINDINGS = "reconciliation_findings"
TOTALS = "reconciliation_daily_totals"
DRIFT = "reconciliation_drift_by_store"
EVIDENCE = "reconciliation_evidence"
SALES = "reconciliation_sales_totals"
RESTATEMENTS = "reconciliation_restatements"
RESTATEMENT_TAG = "pipelines/restatement"  # a restatement run (pipelines/defs/reconciliation/restatement.py)
RESTATEMENT_REASON_TAG = "pipelines/restatement_reason"


def _days_before(day: str, n: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=n)).isoformat()


def pickup_orders(commerce: CommerceOpener, numbers: list[int]) -> pd.DataFrame:
    """The commerce platform's current state of the online orders picked up in stores (created on any earlier
    day) and of the orders the day's kiosk orders name, in a few requests (a page of orders each): they share the
    platform's rate budget with the stock sync."""
    rows = []
    if numbers:
        with commerce() as reads:
            found = reads.orders_by_numbers(int(n) for n in numbers)
        rows = [{"order_number": o.number, "status": o.status, "grand_total": o.grand_total, "currency": o.currency,
                 "shipping_total": o.shipping_total, "external_id": o.external_id}
                for o in found.values()]
    return pd.DataFrame(rows, columns=["order_number", "status", "grand_total", "currency", "shipping_total",
                                       "external_id"])


def kiosk_warehouses(estate: Estate, levels: pd.DataFrame) -> pd.DataFrame:
    """location_id, warehouse_id: the warehouses each kiosk location's published quantity reads (its own and the
    other warehouses of its market's allocation rule); empty while nothing was published to the kiosks."""
    rows = []
    if len(levels):
        for loc in kiosk_locations(estate.locations, estate.markets, estate.centra.allocation_rules,
                                   cloudshelf_settings().kiosk_locations):
            rows.extend({"location_id": loc.location_id, "warehouse_id": w} for w in loc.warehouses)
    return pd.DataFrame(rows, columns=["location_id", "warehouse_id"])


def _order_numbers(values: pd.Series) -> list[int]:
    return pd.to_numeric(values, errors="coerce").dropna().astype(int).tolist()


def erp_enabled() -> bool:
    """Whether Business Central is configured (BUSINESSCENTRAL_API_URL and the client credentials), as the ERP
    datasets' resource sees it; the estate's `erp` section is the other half (`erp_inputs`)."""
    return bool(businesscentral_settings().get("api_url")) and businesscentral_credentials_set()


# The ERP datasets the loader reads, by the `ReconciliationInputs` field each fills.
ERP_DATASETS = {"erp_orders": "erp_sales_orders", "erp_shipments": "erp_shipments", "erp_stock": "erp_stock_snapshot",
                "erp_items": "erp_items", "downstream_sales": "erp_store_sales"}
_ERP_READS = {"erp_orders": erp_datasets.erp_orders, "erp_shipments": erp_datasets.erp_shipments,
              "erp_stock": erp_datasets.erp_stock, "erp_items": erp_datasets.erp_items,
              "downstream_sales": erp_datasets.erp_store_sales}


def erp_inputs(engine: Engine, estate: Estate, day: str, enabled: bool,
               landed: Callable[[str], bool] = lambda _asset: True) -> dict[str, Any]:
    """The ERP's inputs of the day (`ReconciliationInputs` fields), or {} (all None: the ERP rules and the store
    sales rule do not apply) when the ERP is not configured or the estate has no `erp` section. `downstream_sales`
    is what the ERP's ledger holds of the store sales journal (`erp_store_sales`); `erp_dc_warehouse_id` is the
    commerce warehouse of the mapping's `dc_location_id` (default: the estate's distribution centre);
    `centra_order_lines` (the day's commerce order lines) values the mapping orphans an order carries. A dataset
    not landed for the day (`landed(asset)` False) stays None: its rules are skipped rather than run against an
    empty ERP (every order would be missing)."""
    mapping = estate.erp
    if not enabled or mapping is None:
        return {}
    dc = estate.by_location_id.get(mapping.dc_location_id) if mapping.dc_location_id else None
    if mapping.dc_location_id and dc is None:
        raise ValueError(f"the estate's erp.dc_location_id {mapping.dc_location_id!r} is not a location of the estate")
    dc = dc or estate.distribution_centre
    return {
        **{field: _ERP_READS[field](engine, day) if landed(asset) else None for field, asset in ERP_DATASETS.items()},
        "erp_expected_currency": dict(mapping.currencies),
        "erp_blocked": erp_datasets.blocked_orders(engine),
        "erp_dc_warehouse_id": dc.centra_warehouse_id,
        "erp_mapping": mapping,
        "centra_order_lines": read_partition(engine, "centra_order_lines", day).assign(business_date=day),
    }


def erp_landed(instance: dg.DagsterInstance, asset: str, day: str) -> bool:
    """Whether `asset` was landed for `day`: its latest materialisation of the partition exists and does not say
    `erp_configured: false` (a run without Business Central lands nothing)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1).records
    if not records:
        return False
    materialization = records[0].asset_materialization
    flag = materialization.metadata.get("erp_configured") if materialization is not None else None
    return not (flag is not None and flag.value is False)


def erp_not_landed_notes(day: str, inputs: ReconciliationInputs, enabled: bool, estate: Estate) -> list[str]:
    """One evidence note per ERP dataset the day's reconciliation had to do without (see `erp_inputs`)."""
    if not enabled or estate.erp is None:
        return []
    return [f"The ERP dataset {asset} was not landed for {day} (materialise it, then re-materialise the day): the "
            "reconciliation rules that need it were skipped."
            for field, asset in ERP_DATASETS.items() if getattr(inputs, field) is None]


def load_inputs(store: StoreOfRecord, estate: EstateResource, day: str, commerce: CommerceOpener | None = None,
                newstore: NewStoreClient | None = None, *, erp: bool | None = None,
                landed: Callable[[str], bool] = lambda _asset: True) -> ReconciliationInputs:
    """The day's raw datasets from the store of record (plus recent sales for ids and sell-through,
    Centra's current status of the day's click-and-collect orders, and the original orders of the day's
    store returns: landed events, then NewStore by id), and the ERP's datasets when the ERP is in use (`erp`:
    None = as the settings say, `erp_enabled()`; `landed(asset)`: whether the day's ERP dataset was landed)."""
    engine = store.engine()
    recent = read_sql(engine, "SELECT business_date, transaction_id, kind, location_id, fulfillment_node_id, sku, "
                              "quantity FROM pos_sale_lines WHERE business_date >= :start AND business_date <= :day",
                      start=_days_before(day, 60), day=day)
    week = recent[(recent["business_date"] > _days_before(day, 7)) & (recent["kind"] == "sale")]
    sell_through = (week.groupby(["location_id", "sku"], as_index=False)["quantity"].sum()
                    .rename(columns={"quantity": "units_sold_recent"}))
    part = lambda name: read_partition(engine, name, day).assign(business_date=day)  # noqa: E731
    prev = _days_before(day, 1)  # the previous cut-off's snapshots: what the sync rule judges the day's change by
    before = lambda name: read_partition(engine, name, prev).assign(business_date=prev)  # noqa: E731
    # A return of one of the stores' own sales is referenced by that sale, not by an online order: the
    # rules then skip it. Its original sale may be older than the loaded days: it is looked up.
    returns = classify_returns(part("pos_sale_lines"), day, recent.loc[recent["kind"] == "sale", "transaction_id"],
                               original_order_lookup(engine, newstore))
    pickups = part("pos_pickups")
    pickups["order_number"] = pd.to_numeric(pickups["order_number"], errors="coerce").astype("Int64")
    orders = part("centra_orders")
    kiosk = part("cloudshelf_orders")
    kiosk_levels = stock_levels_frame(engine)
    if commerce is not None:
        current = pickup_orders(commerce, sorted(set(pickups["order_number"].dropna().astype(int).tolist()
                                                     + _order_numbers(kiosk["third_party_id"]))))
        orders = pd.concat([orders, current.assign(business_date=day)], ignore_index=True)
    return ReconciliationInputs(
        business_date=day,
        reference=build_reference(estate.get()),
        pos_sale_lines=returns.lines,
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
        store_sale_transaction_ids=sorted(returns.store_sale_ids),
        unverified_returns=returns.unverified,
        missing_transactions=missing_on(engine, day, estate.get().business_timezone),
        pos_stock_snapshot_before=before("pos_stock_snapshot"),
        centra_stock_snapshot_before=before("centra_stock_snapshot"),
        kiosk_orders=kiosk,
        kiosk_stock_levels=kiosk_levels,
        kiosk_warehouses=kiosk_warehouses(estate.get(), kiosk_levels),
        kiosk_uncounted=_kiosk_uncounted(engine, estate.get(), day, prev),
        **erp_inputs(engine, estate.get(), day, erp_enabled() if erp is None else erp, landed),
    )


def _kiosk_uncounted(engine: Engine, estate: Estate, day: str, prev: str) -> pd.DataFrame:
    """Kiosk take-home units NewStore does not know of at the day's and the previous cut-off (the resync's rule:
    sold after the key's latest store count)."""
    by_wh = {loc.centra_warehouse_id: loc.id for loc in estate.locations if loc.centra_warehouse_id is not None}
    cut_off = lambda d: utc_text(day_window_utc(d, estate.business_timezone)[1])  # noqa: E731
    now, before = kiosk_units_uncounted_at(engine, [cut_off(day), cut_off(prev)], warehouse_ids=list(by_wh))
    rows = [{"location_id": by_wh[w], "sku": s, "units": now.get((w, s), 0), "units_before": before.get((w, s), 0)}
            for w, s in sorted(set(now) | set(before))]
    return pd.DataFrame(rows, columns=["location_id", "sku", "units", "units_before"])


def _spec(key: str, description: str, deps: list[str], kinds: set[str]) -> dg.AssetSpec:
    return dg.AssetSpec(key, group_name="reconciliation", deps=deps, owners=FINANCE, kinds=kinds,
                        description=description)


@dg.multi_asset(
    specs=[
        _spec(FINDINGS, deps=RAW_DEPS + ERP_DEPS, kinds={"pandas", "sql"}, description=(
            "Every difference between the stores (NewStore) and the web shop (Centra) for one business day, "
            "each from both systems' own records: stock drift (oversell / lost-sales risk), silent sync "
            "failures, orphaned SKUs, refund and return gaps, click-and-collect pickups whose online order is "
            "still open, tax, discount and price-list mismatches, store transactions the event stream lost and "
            "NewStore did not give back; and the Cloudshelf kiosks: paid delivery orders missing or priced "
            "differently in Centra, take-home sales Centra never deducted, kiosk availability Centra cannot back "
            "(or hides). With an ERP (Business Central): commerce orders against the ERP's sales orders (missing, "
            "duplicated, totals, tax, discounts, currency), ERP shipments the commerce platform does not show, ERP "
            "stock against the commerce DC's, mapping orphans, and the store sales against what the ERP's ledger "
            "holds of the daily store sales journal. Each finding carries its value at risk "
            "(store and base currency), a commercial-risk rank, the owning team and the playbook action, and "
            "is raised as an exception record.")),
        _spec(TOTALS, deps=[FINDINGS], kinds={"pandas", "sql"}, description=(
            "The day's findings and value at risk (base currency) per finding type, with its severity and "
            "owner team: the reconciliation engine's totals, as the finance report, its 30-day chart and the "
            "month-end rollup read them.")),
        _spec(DRIFT, deps=[FINDINGS], kinds={"pandas", "sql"}, description=(
            "Stock drift per store of the estate for the day: SKUs, units and value (store and base currency) "
            "of oversell risk (Centra shows more than the store has) and of lost sales (Centra shows less).")),
        _spec(EVIDENCE, deps=["pos_sale_lines"], kinds={"sql"}, description=(
            "What the day's reconciliation could not judge for lack of evidence (e.g. a store return whose "
            "original sale is neither landed nor known to NewStore), one sentence per row; no money finding is "
            "raised for it, and the finance report shows the sentence.")),
        _spec(SALES, deps=["pos_sale_lines"], kinds={"pandas", "sql"}, description=(
            "The store sales and returns the day's reconciliation was computed from, per kind and currency "
            "(lines, units, net amount): what a later restatement of the day compares its own with.")),
        _spec(RESTATEMENTS, deps=[FINDINGS, SALES], kinds={"pandas", "sql"}, description=(
            "What each restatement of a reconciled day changed (late events re-materialised it, see "
            "restatement_sensor): findings added, resolved and changed (value at risk, base currency), the "
            "store sales totals before and after, and the day's findings and value at risk before and after. "
            "Appended, one restatement_no per restatement; the finance report shows the latest.")),
    ],
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
)
def reconciliation_findings(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                            centra: CentraResource, commercetools: CommercetoolsResource, newstore: NewStoreResource,
                            reconciliation_settings: ReconciliationSettings) -> Iterator[dg.MaterializeResult]:
    """One transaction per day writes the findings' tables (each day replaced). A day reconciled before is
    restated: its previous findings and sales totals are compared with the new ones and the changes appended
    to `reconciliation_restatements` (recorded when something changed or the run is a restatement run)."""
    engine = store.engine()
    tagged = context.run.tags.get(RESTATEMENT_TAG) == "true"
    reason = context.run.tags.get(RESTATEMENT_REASON_TAG)
    tolerance = reconciliation_settings.tolerance()
    base_currency = estate.get().base_currency
    newstore_client = newstore.client()

    use_erp = erp_enabled()

    def one_day(day: str) -> DayOutput:
        inputs = load_inputs(store, estate, day, partial(commerce_reads, estate.get(), centra, commercetools),
                             newstore_client, erp=use_erp, landed=partial(erp_landed, context.instance, day=day))
        result = reconcile(inputs, tolerance)
        result.evidence_notes.extend(erp_not_landed_notes(day, inputs, use_erp, estate.get()))
        for note in result.evidence_notes:
            context.log.warning("%s: %s", day, note)
        findings = result.findings[FINDING_COLUMNS].drop(columns=["business_date"])
        totals, drift = result.totals, result.drift_by_store
        notes = pd.DataFrame({"note_no": range(1, len(result.evidence_notes) + 1), "note": result.evidence_notes})
        sales = sales_totals(inputs.pos_sale_lines)
        reconciled_before = bool(context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(FINDINGS), asset_partitions=[day]), limit=1).records)
        restatement = None
        if reconciled_before:
            restatement = restate(day, read_partition(engine, FINDINGS, day), findings,
                                  read_partition(engine, SALES, day), sales)
        replace_partitions(engine, day, {FINDINGS: findings, TOTALS: totals, DRIFT: drift, EVIDENCE: notes,
                                         SALES: sales})
        changes = pd.DataFrame(columns=CHANGE_COLUMNS)
        restatement_md: dict = {"restated": False}
        if restatement is not None and (tagged or restatement.has_changes):
            changes = restatement.changes()
            number = write_restatement(engine, day, changes, run_id=context.run.run_id, reason=reason)
            context.log.info("%s restated (#%d): %s", day, number, restatement.headline())
            restatement_md = {"restated": True, "restatement_no": number, "reason": reason or "re-materialised",
                              **{k: dg.MetadataValue.float(float(v)) if isinstance(v, float) else v
                                 for k, v in restatement.headline().items()}}
        record_exceptions(engine, exception_records(result.findings))
        headline = summarise(result.findings, totals=totals, base_currency=base_currency).headline()
        evidence = {"evidence_complete": not result.evidence_notes,
                    "evidence_notes": dg.MetadataValue.md("\n\n".join(result.evidence_notes) or "_complete_")}
        return {
            FINDINGS: (findings, {
                **{k: dg.MetadataValue.float(float(v)) if isinstance(v, float) else v for k, v in headline.items()},
                "findings_by_type": dg.MetadataValue.json({r.finding_type: int(r.findings) for r in totals.itertuples()}),
                "rules_skipped": dg.MetadataValue.json(result.skipped),
                **evidence,
                "top_risks": preview(findings.sort_values("risk_rank")[
                    ["finding_type", "location_id", "sku", "order_ref", "quantity_diff", "value_at_risk_base",
                     "owner_team"]], rows=15),
            }),
            TOTALS: (totals, {"findings": headline["findings"],
                              "value_at_risk_base": dg.MetadataValue.float(headline["value_at_risk_base"]),
                              "error_findings": headline["error_findings"]}),
            DRIFT: (drift, {"stores_drifting": int((drift["oversell_skus"] + drift["lost_sales_skus"] > 0).sum()),
                            "drift_value_base": dg.MetadataValue.float(headline["drift_value_base"])}),
            EVIDENCE: (notes, evidence),
            SALES: (sales, {"restated": restatement_md["restated"]}),
            RESTATEMENTS: (changes, restatement_md),
        }

    with newstore_client:
        yield from materialize_days(context, one_day)


def read_findings(store: StoreOfRecord, day: str) -> pd.DataFrame:
    return read_partition(store.engine(), FINDINGS, day).assign(business_date=day)[FINDING_COLUMNS]


def read_totals(store: StoreOfRecord, day: str) -> pd.DataFrame:
    """The engine's totals of the day (`reconciliation_daily_totals`), as it wrote them."""
    return read_partition(store.engine(), TOTALS, day,
                          ["finding_type", "severity", "owner_team", "findings", "value_at_risk_base"])


def read_history(store: StoreOfRecord, day: str, days: int = 30) -> pd.DataFrame:
    """Per day of the last `days`: drift value, value at risk and findings (base currency)."""
    totals = read_sql(store.engine(), "SELECT business_date, finding_type, findings, value_at_risk_base "
                                      "FROM reconciliation_daily_totals WHERE business_date > :start "
                                      "AND business_date <= :day", start=_days_before(day, days), day=day)
    if totals.empty:
        return pd.DataFrame(columns=["business_date", "drift_value_base", "value_at_risk_base", "findings"])
    totals["drift_value_base"] = totals["value_at_risk_base"].where(
        totals["finding_type"].isin(DRIFT_TYPES), 0.0)
    return totals.groupby("business_date", as_index=False).agg(
        drift_value_base=("drift_value_base", "sum"), value_at_risk_base=("value_at_risk_base", "sum"),
        findings=("findings", "sum"))


def write_restatement(engine: Engine, day: str, changes: pd.DataFrame, *, run_id: str,
                      reason: str | None) -> int:
    """Append a restatement's changes (CHANGE_COLUMNS) as the day's next restatement_no (a retry within the
    same run replaces its own rows); returns the restatement_no."""
    tbl = table(engine, RESTATEMENTS)
    at = utc_text(datetime.now(UTC))
    clean = changes.astype(object).where(changes.notna(), None).to_dict("records")
    with engine.begin() as conn:
        conn.execute(tbl.delete().where((tbl.c.business_date == day) & (tbl.c.run_id == run_id)))
        last = conn.execute(select(func.max(tbl.c.restatement_no)).where(tbl.c.business_date == day)).scalar()
        number = int(last or 0) + 1
        if clean:
            conn.execute(tbl.insert(), [{**r, "business_date": day, "restatement_no": number, "restated_at": at,
                                         "run_id": run_id, "reason": reason} for r in clean])
    return number


def read_latest_restatement(store: StoreOfRecord, day: str) -> pd.DataFrame:
    """The rows of the day's latest restatement (empty: never restated)."""
    return read_sql(store.engine(), f"SELECT * FROM {RESTATEMENTS} WHERE business_date = :d AND "  # noqa: S608
                                    f"restatement_no = (SELECT max(restatement_no) FROM {RESTATEMENTS} "
                                    "WHERE business_date = :d)", d=day)


def read_evidence_notes(store: StoreOfRecord, day: str) -> list[str]:
    notes = read_partition(store.engine(), EVIDENCE, day, ["note_no", "note"])
    return notes.sort_values("note_no")["note"].tolist()


def _by_currency(kiosk: pd.DataFrame, column: str) -> dict[str, float]:
    """A kiosk section's column summed per currency, rounded to the currency's minor unit."""
    if kiosk.empty:
        return {}
    sums = kiosk.groupby("currency")[column].sum()
    return {str(c): round_money(float(v), c) for c, v in sums.items()}


@dg.asset(
    group_name="reconciliation",
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    deps=[FINDINGS, TOTALS, EVIDENCE, RESTATEMENTS, "cloudshelf_orders"],
    owners=FINANCE,
    kinds={"html", "csv"},
    description="The finance report of one business day under `PIPELINES_REPORTS_DIR/<date>/`: `summary.html` "
                "(totals by type and team, top risks, drift value by store, 30-day drift chart), findings.csv "
                "and one CSV per finding type, and the gates it was produced under. Never written (an earlier one "
                "is removed) while the day's findings are malformed or its money mismatches exceed the limit: "
                "the asset judges the money check's gate itself, however it is launched. A restated day's page "
                "says so, with what changed (reconciliation_restatements), and its folder has restatement.csv. "
                "With Cloudshelf kiosks, a kiosk section (and kiosk.csv): the day's kiosk transactions per store and "
                "currency against Centra, and what the posting mode (PIPELINES_FINANCE_POSTING_MODE) posted "
                "intra-day and by the cut-off.",
)
def finance_daily_report(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                         reconciliation_settings: ReconciliationSettings,
                         finance_reports: FinanceReportFiles) -> Iterator[dg.MaterializeResult]:
    est = estate.get()

    def one_day(day: str) -> DayOutput:
        findings = read_findings(store, day)
        gates = report_gates(findings, reconciliation_settings)
        if not gates.may_publish:
            # However the report was launched (alone, in a backfill, with the check skipped): no report,
            # and none left over from an earlier run, for a day whose money check is red.
            removed = finance_reports.remove_day(day)
            raise dg.Failure(
                description=f"{day}: no finance report while {gates.money.name} fails ({gates.money.description}). "
                            "Resolve or accept the money findings (table reconciliation_findings), then "
                            "re-materialise the day.",
                metadata={"business_date": day, "money_value_at_risk_base": dg.MetadataValue.float(gates.money.value_base),
                          "money_findings": len(gates.money.hits), "earlier_report_removed": removed})
        notes = read_evidence_notes(store, day)
        restated = read_latest_restatement(store, day)
        mode = reconciliation_settings.posting_mode
        kiosk_lines = read_partition(store.engine(), "cloudshelf_orders", day)
        # an estate without kiosks (Cloudshelf not configured, no kiosk order landed) gets no kiosk section
        kiosk = day_summary(kiosk_lines, findings, mode, day, est.business_timezone) \
            if len(kiosk_lines) or cloudshelf_settings().api_url else None
        files = finance_reports.write_day(day, findings, read_totals(store, day), read_history(store, day), estate=est,
                                          produced_under=gates.produced_under, evidence_notes=notes,
                                          restatement=restated if len(restated) else None, kiosk=kiosk,
                                          posting_mode=mode if kiosk is not None else None)
        summary = files.summary  # the summary the page shows, money rounded to the currency
        return {"finance_daily_report": (findings, {
            **{k: dg.MetadataValue.float(float(v)) if isinstance(v, float) else v
               for k, v in summary.headline().items()},
            "produced_under": dg.MetadataValue.md("\n".join(
                f"- {name}: {'passed' if ok else 'FAILED'} ({detail})" for name, ok, detail in gates.produced_under)),
            "evidence_complete": not notes,
            "restated": bool(len(restated)),
            **({"restatement_no": int(restated["restatement_no"].iloc[0]),
                "restated_at": str(restated["restated_at"].iloc[0]),
                "restatement": dg.MetadataValue.md("\n".join(f"- {t}" for t in describe(restated)))}
               if len(restated) else {}),
            **({"posting_mode": mode,
                "kiosk_traded": dg.MetadataValue.json(_by_currency(kiosk, "traded_amount")),
                "kiosk_posted_intraday": dg.MetadataValue.json(_by_currency(kiosk, "posted_intraday"))}
               if kiosk is not None else {}),
            "summary_html": dg.MetadataValue.path(str(files.summary_html)),
            "summary_url": dg.MetadataValue.url(Path(files.summary_html).resolve().as_uri()),
            "csv_files": dg.MetadataValue.json(sorted(p.name for p in files.csv_by_type.values())),
        })}

    yield from materialize_days(context, one_day)


@dg.asset(
    group_name="reconciliation",
    partitions_def=monthly_partitions,
    deps=[TOTALS, "finance_daily_report"],
    owners=FINANCE,
    kinds={"html", "csv", "sql"},
    description="Month-end rollup of the daily reconciliation: findings and value at risk by day, type and team "
                "for the month (from `reconciliation_daily_totals`), as `PIPELINES_REPORTS_DIR/<YYYY-MM>/summary.html` "
                "and `totals.csv`, linking to the daily reports.",
)
def finance_month_end_rollup(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                             finance_reports: FinanceReportFiles) -> dg.MaterializeResult:
    month = context.partition_key[:7]
    est = estate.get()
    totals = read_sql(store.engine(), "SELECT business_date, finding_type, severity, owner_team, findings, "
                                      "value_at_risk_base FROM reconciliation_daily_totals "
                                      "WHERE business_date LIKE :m ORDER BY business_date", m=f"{month}-%")
    path = finance_reports.write_month(month, totals, estate=est)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(totals),
        "days_reconciled": int(totals["business_date"].nunique()) if not totals.empty else 0,
        "findings": int(totals["findings"].sum()) if not totals.empty else 0,
        "value_at_risk_base": dg.MetadataValue.float(
            round_money(float(totals["value_at_risk_base"].sum()) if not totals.empty else 0.0, est.base_currency)),
        "summary_html": dg.MetadataValue.path(str(path)),
        "preview": preview(totals.groupby(["finding_type", "owner_team"], as_index=False)[
            ["findings", "value_at_risk_base"]].sum() if not totals.empty else totals),
    })
