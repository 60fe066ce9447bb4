"""Run every reconciliation rule of one business day and summarise the findings."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.domain.erp.mapping import ErpMapping
from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.reconciliation import rules
from pipelines.domain.reconciliation.model import (
    DEFAULT_TOLERANCE,
    DRIFT_TYPE_BY_KIND,
    DRIFT_TYPES,
    FINDING_TYPES,
    Tolerance,
    empty_findings,
)
from pipelines.domain.reconciliation.reference import Reference
from pipelines.domain.reconciliation.return_origins import evidence_notes
from pipelines.domain.reconciliation.rules import erp as erp_rules
from pipelines.domain.reconciliation.rules import kiosk as kiosk_rules
from pipelines.domain.reconciliation.rules import kiosk_stock


@dataclass(frozen=True)
class RuleConfig:
    """Rule switches that are policy rather than tolerance.

    exclude_change_description_prefixes: Centra ledger changes that are not store movements (sync rule).
    skip_counted_keys: do not compare the day's net deltas of (store, SKU) keys the POS counted.
    allowed_discount_rates: if set, sale-line discounts must be one of these fractions of gross (or 0).
    terminal_order_statuses: click-and-collect orders in these statuses are closed.
    report_unstocked_commerce_skus: SKU-level findings for active Centra SKUs unknown to the POS that have
        no store-warehouse stock (web-only assortments may want this off).
    store_returns_only: ignore Centra returns received into a non-store warehouse.
    kiosk_safety_stock: the Cloudshelf organisation's safety stock: a kiosk shows a variant in stock above it.
    erp_order_statuses: Centra order statuses due in the ERP (`rules.erp.DUE_STATUSES`: confirmed and not
        cancelled); an order of the day in one of them must have an ERP sales order.
    """

    exclude_change_description_prefixes: tuple[str, ...] = rules.DEFAULT_EXCLUDED_CHANGE_PREFIXES
    skip_counted_keys: bool = True
    allowed_discount_rates: tuple[float, ...] | None = None
    terminal_order_statuses: tuple[str, ...] = ("SHIPPED",)
    report_unstocked_commerce_skus: bool = True
    store_returns_only: bool = True
    kiosk_safety_stock: int = 0
    erp_order_statuses: tuple[str, ...] = erp_rules.DUE_STATUSES


@dataclass
class ReconciliationInputs:
    """The day's inputs: frames as read from the raw tables (None = not available; its rules are skipped).

    pos_sale_lines may hold earlier days too (store-sale ids and cumulative refunds use them; everything
    else uses ``business_date`` rows). Extra inputs:
    downstream_sales: location_id, business_date, tax_rate, count, gross, discount, tax, net.
    pickups: order_number, location_id, completed_at (click-and-collect completions of the day).
    sell_through: location_id, sku, units_sold_recent (risk weighting of stock drift).
    store_sale_transaction_ids: known store-sale transaction ids of recent days.
    unverified_returns: the day's return lines whose original sale was not found (`return_origins`):
        not judged, and said so in ``evidence_notes``.
    missing_transactions: the day's store transactions the event stream lost and recovery did not land
        (`pos_transaction_recoveries` rows not recovered or arrived; see `rules.missing_transactions`).
    pos_stock_snapshot_before, centra_stock_snapshot_before: the stock snapshots of the previous cut-off (the
        previous business day's partitions): the sync rule's evidence of what NewStore and Centra each moved over
        the day (`rules.sync_failures`; without them it judges on the day's cut-off only).
    kiosk_orders: the day's Cloudshelf kiosk order lines (`cloudshelf_orders`); kiosk_stock_levels: what was last
        published to the kiosks per (location, SKU) (`kiosk_stock_levels`); kiosk_warehouses: location_id,
        warehouse_id the kiosk quantities read (`rules.kiosk`). None: the kiosk rules are skipped.
    kiosk_uncounted: location_id, sku, units, units_before: the kiosk take-home units NewStore's on-hand does not
        know of at the day's and at the previous cut-off (sold after the key's latest real count; what the full
        resync subtracts too). None: derived from the day's kiosk_orders and POS counts
        (`rules.kiosk_stock.uncounted_on_day`). The stock rules compare Centra with the shelf (`rules.kiosk_stock`).
    The ERP behind the commerce platform (issue 15; `rules.erp`; each None: the rules needing it are skipped; all
    None: a retailer without an ERP, the ERP rules do not apply):
    erp_orders: business_date, order_id, order_number, external_ref, currency, customer_number, total_including_tax,
        total_tax, discount_amount, line_count: the ERP's sales orders whose order date is the day.
    erp_expected_currency: commerce currency -> ERP currency code ("" = the ERP's local currency), the estate's
        `erp.currencies`; None: the currency rule is not run.
    erp_blocked: order_ref, exception_type: commerce orders the order-to-ERP flow holds as an exception.
    erp_shipments: business_date, shipment_id, shipment_number, external_ref, units, value, tracking_number, carrier,
        in_commerce (and optionally currency): the ERP's shipments posted on the day.
    erp_stock: sku, on_hand: the ERP's on-hand per commerce SKU (bundles excluded) at the cut-off, compared with the
        `centra_stock_snapshot` rows of warehouse ``erp_dc_warehouse_id`` (the DC whose physical stock the ERP owns).
    erp_items: number, variant_code: every ERP item and variant; erp_mapping: the estate's `ErpMapping`; with
        centra_catalog: the mapping orphans. centra_order_lines (optional, `centra_order_lines` of the day): values
        an orphan an order of the day carries.
    """

    business_date: str
    reference: Reference
    pos_sale_lines: pd.DataFrame | None = None
    pos_stock_snapshot: pd.DataFrame | None = None
    pos_catalog: pd.DataFrame | None = None
    pos_stock_movements: pd.DataFrame | None = None
    centra_orders: pd.DataFrame | None = None
    centra_returns: pd.DataFrame | None = None
    centra_return_lines: pd.DataFrame | None = None
    centra_stock_snapshot: pd.DataFrame | None = None
    centra_stock_changes: pd.DataFrame | None = None
    centra_catalog: pd.DataFrame | None = None
    downstream_sales: pd.DataFrame | None = None
    pickups: pd.DataFrame | None = None
    sell_through: pd.DataFrame | None = None
    store_sale_transaction_ids: Iterable[str] | None = None
    unverified_returns: pd.DataFrame | None = None
    missing_transactions: pd.DataFrame | None = None
    pos_stock_snapshot_before: pd.DataFrame | None = None
    centra_stock_snapshot_before: pd.DataFrame | None = None
    kiosk_orders: pd.DataFrame | None = None
    kiosk_stock_levels: pd.DataFrame | None = None
    kiosk_warehouses: pd.DataFrame | None = None
    kiosk_uncounted: pd.DataFrame | None = None
    erp_orders: pd.DataFrame | None = None
    erp_expected_currency: dict[str, str] | None = None
    erp_blocked: pd.DataFrame | None = None
    erp_shipments: pd.DataFrame | None = None
    erp_stock: pd.DataFrame | None = None
    erp_dc_warehouse_id: int | None = None
    erp_items: pd.DataFrame | None = None
    erp_mapping: ErpMapping | None = None
    centra_order_lines: pd.DataFrame | None = None


@dataclass
class ReconciliationResult:
    """findings: FINDING_COLUMNS sorted by value at risk (base currency) desc; totals: per type/severity/team
    (`totals_by_type`); drift_by_store: every store's oversell and lost-sales units and value; skipped: rule ->
    reason; timings_s: rule -> seconds; evidence_notes: what could not be judged for lack of evidence."""

    business_date: str
    findings: pd.DataFrame
    totals: pd.DataFrame
    drift_by_store: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    evidence_notes: list[str] = field(default_factory=list)


def reconcile(inputs: ReconciliationInputs, tolerance: Tolerance = DEFAULT_TOLERANCE,
              config: RuleConfig | None = None) -> ReconciliationResult:
    """All findings of one business day (see :mod:`rules` for each rule's matching rule)."""
    day = _Day.prepare(inputs, tolerance, config or RuleConfig())
    _stock_rules(day)
    _sales_rules(day)
    _order_rules(day)
    _kiosk_rules(day)
    _erp_rules(day)
    frames = [f for f in day.frames if len(f)]
    findings = pd.concat(frames, ignore_index=True) if frames else empty_findings()
    findings = rules.sort_findings(rules.rank_findings(findings, inputs.sell_through))
    day.lap("rank")
    unverified = inputs.unverified_returns
    notes = evidence_notes(unverified) if unverified is not None else []
    return ReconciliationResult(inputs.business_date, findings, totals_by_type(findings),
                                drift_by_store(findings, inputs.reference.locations), day.skipped, day.timings,
                                notes)


@dataclass
class _Day:
    """One `reconcile` call: its inputs and settings, and the frames, skipped rules and timings so far."""

    inputs: ReconciliationInputs
    tolerance: Tolerance
    cfg: RuleConfig
    clock: float  # end of the previous lap
    keys: rules.KeySpace
    has_pos: bool  # any POS frame
    known: pd.Index | None  # every SKU the POS knows on the day (None: no POS frame)
    frames: list[pd.DataFrame] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def prepare(cls, x: ReconciliationInputs, tolerance: Tolerance, cfg: RuleConfig) -> _Day:
        """The key space and the SKUs the POS knows (timed as `prepare`)."""
        clock = time.perf_counter()
        keys = rules.KeySpace(x.reference.locations, x.reference.prices)
        has_pos = any(f is not None for f in (x.pos_stock_snapshot, x.pos_stock_movements, x.pos_sale_lines,
                                              x.pos_catalog))
        known = rules.pos_known_skus(pos_catalog=x.pos_catalog, pos_stock=x.pos_stock_snapshot,
                                     pos_sale_lines=x.pos_sale_lines, pos_movements=x.pos_stock_movements,
                                     business_date=x.business_date, keys=keys) if has_pos else None
        day = cls(x, tolerance, cfg, clock, keys, has_pos, known)
        day.lap("prepare")
        return day

    def lap(self, name: str) -> None:
        """Record the seconds since the previous lap under `name`."""
        now = time.perf_counter()
        self.timings[name] = round(now - self.clock, 4)
        self.clock = now

    def found(self, name: str, frame: pd.DataFrame) -> None:
        """A rule's findings, timed under `name`."""
        self.frames.append(frame)
        self.lap(name)


def _kiosk_stock(day: _Day) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The day's paid kiosk take-home units and the units NewStore does not know of (`rules.kiosk_stock`): explained
    movements for the stock rules. Without kiosk_orders: no day units, and the loaded kiosk_uncounted if any."""
    x = day.inputs
    if x.kiosk_orders is None:
        return None, x.kiosk_uncounted
    units = kiosk_stock.day_units(x.kiosk_orders, x.business_date)
    uncounted = x.kiosk_uncounted if x.kiosk_uncounted is not None else kiosk_stock.uncounted_on_day(
        x.business_date, x.kiosk_orders, x.pos_stock_movements, x.reference.locations, keys=day.keys)
    return units, uncounted


def _stock_rules(day: _Day) -> None:
    """Stock drift (POS vs Centra), sync failures (movements vs stock changes), orphan SKUs; kiosk take-home sales
    are explained movements of both (`rules.kiosk_stock`)."""
    x, cfg, keys, known = day.inputs, day.cfg, day.keys, day.known
    d, locs, prices, tol = x.business_date, x.reference.locations, x.reference.prices, day.tolerance
    pos_stock, cen_stock, ccat = x.pos_stock_snapshot, x.centra_stock_snapshot, x.centra_catalog
    kiosk_units, kiosk_uncounted = _kiosk_stock(day)
    if pos_stock is not None and cen_stock is not None:
        day.found("stock_drift", rules.stock_drift(d, pos_stock, cen_stock, locs, prices, tol,
                                                   centra_catalog=ccat, pos_known=known, keys=keys,
                                                   kiosk_uncounted=kiosk_uncounted))
    else:
        day.skipped["stock_drift"] = "needs pos_stock_snapshot and centra_stock_snapshot"
    if x.pos_stock_movements is not None and x.centra_stock_changes is not None:
        day.found("sync", rules.sync_failures(
            d, x.pos_stock_movements, x.centra_stock_changes, locs, prices, tol,
            exclude_description_prefixes=cfg.exclude_change_description_prefixes,
            skip_counted=cfg.skip_counted_keys, centra_catalog=ccat, pos_known=known, keys=keys,
            pos_stock=pos_stock, centra_stock=cen_stock, pos_stock_before=x.pos_stock_snapshot_before,
            centra_stock_before=x.centra_stock_snapshot_before, kiosk_units=kiosk_units,
            kiosk_uncounted=kiosk_uncounted))
    else:
        day.skipped["sync"] = "needs pos_stock_movements and centra_stock_changes"
    if ccat is not None and day.has_pos:
        day.found("orphan_sku", rules.orphan_skus(
            d, ccat, locs, prices, pos_catalog=x.pos_catalog, pos_stock=pos_stock, pos_sale_lines=x.pos_sale_lines,
            pos_movements=x.pos_stock_movements, centra_stock=cen_stock, pos_known=known, keys=keys,
            report_unstocked_commerce_skus=cfg.report_unstocked_commerce_skus))
    else:
        day.skipped["orphan_sku"] = "needs centra_catalog and a POS frame"


def _sales_rules(day: _Day) -> None:
    """Store sales vs downstream, returns and refunds, sale-line checks."""
    x, cfg, keys = day.inputs, day.cfg, day.keys
    d, locs, tol = x.business_date, x.reference.locations, day.tolerance
    lines, unverified = x.pos_sale_lines, x.unverified_returns
    if lines is not None and x.downstream_sales is not None:
        day.found("store_sales", rules.store_sales(d, lines, x.downstream_sales, locs, tol,
                                                   tax_rates=x.reference.tax_rates, keys=keys))
    else:
        day.skipped["store_sales"] = "needs pos_sale_lines and downstream_sales"
    if lines is None:
        day.skipped["returns"] = day.skipped["lines"] = "needs pos_sale_lines"
        return
    if x.centra_return_lines is None:
        day.skipped["returns"] = "no centra_return_lines: only return_without_order_ref is checked"
    day.found("returns", rules.returns_and_refunds(
        d, lines, locs, tol, centra_returns=x.centra_returns, centra_return_lines=x.centra_return_lines,
        store_sale_transaction_ids=x.store_sale_transaction_ids,
        unjudged_transaction_ids=unverified["transaction_id"].tolist() if unverified is not None else None,
        store_returns_only=cfg.store_returns_only, keys=keys))
    day.found("lines", rules.sale_line_checks(d, lines, locs, x.reference.prices, tol,
                                              allowed_discount_rates=cfg.allowed_discount_rates, keys=keys))


def _order_rules(day: _Day) -> None:
    """Click-and-collect pickups vs Centra orders; store transactions known lost."""
    x = day.inputs
    if x.missing_transactions is not None:
        day.found("completeness", rules.missing_transactions(x.business_date, x.missing_transactions,
                                                             x.reference.locations, keys=day.keys))
    else:
        day.skipped["completeness"] = "needs missing_transactions"
    if x.pickups is not None and x.centra_orders is not None:
        day.found("click_collect", rules.click_collect(
            x.business_date, x.pickups, x.centra_orders, x.reference.locations, x.reference.fx_to_base,
            terminal_statuses=day.cfg.terminal_order_statuses, keys=day.keys))
    else:
        day.skipped["click_collect"] = "needs pickups and centra_orders"


def _kiosk_rules(day: _Day) -> None:
    """Cloudshelf kiosks: delivery orders vs Centra orders, take-home sales vs Centra's ledger, kiosk availability
    vs Centra's stock at the cut-off (`rules.kiosk`). Without kiosk data at all (a retailer without kiosks) they do not
    apply, rather than being skipped."""
    x, locs, tol = day.inputs, day.inputs.reference.locations, day.tolerance
    lines = x.kiosk_orders
    if lines is None and x.kiosk_stock_levels is None:
        return
    if lines is not None:
        day.found("kiosk_orders", kiosk_rules.kiosk_orders_vs_commerce(
            x.business_date, lines, x.centra_orders, locs, x.reference.fx_to_base, tol, keys=day.keys))
    else:
        day.skipped["kiosk_orders"] = "needs kiosk_orders"
    if lines is not None and x.centra_stock_changes is not None:
        day.found("kiosk_sales", kiosk_rules.kiosk_sales_not_deducted(
            x.business_date, lines, x.centra_stock_changes, locs, tol, pos_movements=x.pos_stock_movements,
            keys=day.keys))
    else:
        day.skipped["kiosk_sales"] = "needs kiosk_orders and centra_stock_changes"
    if x.kiosk_stock_levels is not None and x.kiosk_warehouses is not None and x.centra_stock_snapshot is not None:
        day.found("kiosk_availability", kiosk_rules.kiosk_availability(
            x.business_date, x.kiosk_stock_levels, x.centra_stock_snapshot, x.kiosk_warehouses, locs,
            x.reference.prices, safety_stock=day.cfg.kiosk_safety_stock, keys=day.keys))
    else:
        day.skipped["kiosk_availability"] = "needs kiosk_stock_levels, kiosk_warehouses and centra_stock_snapshot"


def _erp_rules(day: _Day) -> None:
    """The ERP behind the commerce platform (`rules.erp`): Centra's orders of the day vs the ERP's sales orders, the
    ERP's shipments Centra does not show, the ERP's on-hand vs Centra's DC stock, commerce SKUs without an ERP item.
    Without any ERP input (a retailer without an ERP: no mapping, no ERP dataset) they do not apply, rather than
    being skipped (as the kiosk rules); otherwise each is skipped, with the reason, while an input it needs is None."""
    x, tol = day.inputs, day.tolerance
    if all(v is None for v in (x.erp_orders, x.erp_shipments, x.erp_stock, x.erp_items, x.erp_mapping,
                               x.erp_expected_currency, x.erp_dc_warehouse_id, x.erp_blocked)):
        return
    d, fx = x.business_date, x.reference.fx_to_base
    if x.erp_orders is not None and x.centra_orders is not None:
        day.found("erp_orders", erp_rules.erp_orders_vs_commerce(
            d, x.centra_orders, x.erp_orders, fx, tol, expected_currency=x.erp_expected_currency,
            blocked=x.erp_blocked, statuses=day.cfg.erp_order_statuses))
        if x.erp_expected_currency is None:
            day.skipped["erp_order_currency"] = "needs erp_expected_currency (the estate's erp.currencies)"
    else:
        day.skipped["erp_orders"] = "needs erp_orders and centra_orders"
    if x.erp_shipments is not None:
        day.found("erp_shipments", erp_rules.erp_shipments_not_in_commerce(
            d, x.erp_shipments, fx, expected_currency=x.erp_expected_currency, centra_orders=x.centra_orders))
    else:
        day.skipped["erp_shipments"] = "needs erp_shipments"
    if x.erp_stock is not None and x.centra_stock_snapshot is not None and x.erp_dc_warehouse_id is not None:
        mapping = x.erp_mapping
        day.found("erp_stock", erp_rules.erp_stock_drift(
            d, x.erp_stock, x.centra_stock_snapshot, x.erp_dc_warehouse_id, x.reference.prices,
            x.reference.locations, tol, base_currency=x.reference.base_currency,
            dc_location_id=mapping.dc_location_id if mapping is not None else None, erp_mapping=mapping,
            erp_items=x.erp_items))
    else:
        day.skipped["erp_stock"] = "needs erp_stock, centra_stock_snapshot and erp_dc_warehouse_id"
    if x.erp_items is not None and x.erp_mapping is not None and x.centra_catalog is not None:
        day.found("erp_mapping", erp_rules.erp_mapping_orphans(
            d, x.centra_catalog, x.erp_items, x.erp_mapping, fx, order_lines=x.centra_order_lines,
            centra_orders=x.centra_orders, statuses=day.cfg.erp_order_statuses))
    else:
        day.skipped["erp_mapping"] = "needs erp_items, erp_mapping and centra_catalog"


def totals_by_type(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings and value at risk (base currency) per finding type, with its severity and owner."""
    cols = ["finding_type", "severity", "owner_team", "findings", "value_at_risk_base"]
    if findings.empty:
        return pd.DataFrame(columns=cols)
    g = findings.groupby(["finding_type", "severity", "owner_team"], as_index=False, sort=True).agg(
        findings=("finding_type", "size"), value_at_risk_base=("value_at_risk_base", "sum"))
    g["value_at_risk_base"] = g["value_at_risk_base"].round(2)
    return g.sort_values(["value_at_risk_base", "finding_type"], ascending=[False, True],
                         kind="mergesort").reset_index(drop=True)[cols]


def drift_by_store(findings: pd.DataFrame, locations: pd.DataFrame) -> pd.DataFrame:
    """Per store: SKUs, units and value (store and base currency) of oversell and lost-sales drift."""
    base = locations[["location_id", "currency"]].copy()
    f = findings[findings["finding_type"].isin(DRIFT_TYPES)]
    for kind, ft in DRIFT_TYPE_BY_KIND.items():
        sub = f[f["finding_type"] == ft]
        g = sub.assign(units=sub["quantity_diff"].astype("float64").abs()).groupby("location_id").agg(
            skus=("sku", "size"), units=("units", "sum"), value=("value_at_risk", "sum"),
            value_base=("value_at_risk_base", "sum"))
        g.columns = [f"{kind}_{c}" for c in g.columns]
        base = base.merge(g, how="left", left_on="location_id", right_index=True)
    for c in base.columns[2:]:
        base[c] = base[c].fillna(0)
        base[c] = base[c].round(2) if "value" in c else base[c].astype("int64")
    base["value_at_risk_base"] = (base["oversell_value_base"] + base["lost_sales_value_base"]).round(2)
    return base.sort_values(["value_at_risk_base", "location_id"], ascending=[False, True],
                            kind="mergesort").reset_index(drop=True)


def exception_records(findings: pd.DataFrame, source: str = "reconciliation") -> list[ExceptionRecord]:
    """One exception record per finding; the key makes re-detection of the same finding idempotent."""
    out = []
    for row in findings.itertuples(index=False):
        ft = FINDING_TYPES[row.finding_type]
        parts = [row.business_date, row.location_id, row.sku, row.order_ref, row.transaction_id,
                 None if pd.isna(row.tax_rate) else f"{row.tax_rate:g}"]
        key = ":".join("" if p is None or (isinstance(p, float) and np.isnan(p)) else str(p) for p in parts)
        msg = (f"{row.finding_type}: value at risk {row.value_at_risk:.2f} {row.currency or ''}".rstrip()
               + f" (rank {row.risk_rank}); {row.detail}")
        out.append(ExceptionRecord.of(
            ft.as_exception_type(), key, source, msg, business_date=row.business_date, location_id=row.location_id,
            sku=row.sku, payload={"order_ref": row.order_ref, "transaction_id": row.transaction_id,
                                  "value_at_risk_base": float(row.value_at_risk_base)}))
    return out
