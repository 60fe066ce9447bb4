"""The stock-drift rule: POS on-hand vs Centra physical per (store, SKU) at the day's cut-off."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance, empty_findings
from pipelines.domain.reconciliation.rules import kiosk_stock
from pipelines.domain.reconciliation.rules.catalog import _allowed, _comparable
from pipelines.domain.reconciliation.rules.frames import (
    _col,
    _fmt,
    _group,
    _over,
    _pair_findings,
    _pair_key,
    _take,
)
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys


def stock_drift(business_date: str, pos_stock: pd.DataFrame, centra_stock: pd.DataFrame,
                locations: pd.DataFrame, prices: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                centra_catalog: pd.DataFrame | None = None, pos_known: Collection[str] | None = None,
                keys: KeySpace | None = None, kiosk_uncounted: pd.DataFrame | None = None) -> pd.DataFrame:
    """POS on-hand vs Centra physical per (store, SKU) at the day's cut-off.

    pos_stock: business_date, location_id | fulfillment_node_id, sku, on_hand.
    centra_stock: business_date, warehouse_id, sku, physical (store warehouses only; the DC is ignored).
    A key missing on one side counts as 0 there. diff = physical - on_hand; diff > units tolerance ->
    stock_drift_oversell, diff < -tolerance -> stock_drift_lost_sales; value = |diff| x the store's
    price-list price (0 when the store has no price). SKUs that are orphans are not drift: with
    ``centra_catalog`` only SKUs active in Centra are compared, with ``pos_known`` only SKUs the POS knows.
    ``kiosk_uncounted`` (location_id, sku, units): kiosk take-home units NewStore's on-hand does not know of yet
    (`rules.kiosk_stock`); where given, Centra is compared with the shelf = max(0, on_hand - units) (the finding's
    POS quantity), and the detail adds ``kiosk_uncounted`` and ``shelf``.
    """
    k = _keys(keys, locations, prices)
    ps_all, cs_all = k.store(pos_stock), k.store_by_warehouse(centra_stock)
    pm = k.day(pos_stock, business_date) & (ps_all >= 0)
    cm = k.day(centra_stock, business_date) & (cs_all >= 0)
    psku, csku = _take(k.sku(pos_stock), pm), _take(k.sku(centra_stock), cm)
    ok = _comparable(k, business_date, centra_catalog, pos_known)
    kiosk_stock.encode(k, kiosk_uncounted)
    width = k.n_skus + 1
    kparts = kiosk_stock.parts(k, kiosk_uncounted, "units", width)
    ukeys, sums = _group(len(locations) * width, [
        (_pair_key(_take(ps_all, pm), psku, width), _col(pos_stock, "on_hand", pm, None)),
        (_pair_key(_take(cs_all, cm), csku, width), _col(centra_stock, "physical", cm, None))] + kparts)
    qp, qc = sums[0], sums[1]
    ku = sums[2] if kparts else np.zeros(len(ukeys))
    qn, qp = qp, (kiosk_stock.shelf(qp, ku) if kparts else qp)
    diff = qc - qp
    sel = np.flatnonzero(_over(diff, tolerance.units))
    sel = sel[_allowed(ok, ukeys[sel] % width)]
    if not len(sel):
        return empty_findings()
    loc, sku, qp, qc, diff = ukeys[sel] // width, ukeys[sel] % width, qp[sel], qc[sel], diff[sel]
    qn, ku = qn[sel], ku[sel]
    price = k.price(loc, sku)
    p0 = np.nan_to_num(price)
    detail = np.asarray([f"on_hand={int(a)};physical={int(b)};unit_price={_fmt(p)}"
                         + (f";kiosk_uncounted={int(u)};shelf={int(s)}" if u > 0 else "")
                         for a, b, p, u, s in zip(qn, qc, price, ku, qp, strict=True)], dtype=object)
    split = ((m.STOCK_DRIFT_OVERSELL, diff > 0), (m.STOCK_DRIFT_LOST_SALES, diff < 0))
    return _pair_findings(business_date, locations, split, loc, k.skus[sku], qp, qc, diff, p0, detail)
