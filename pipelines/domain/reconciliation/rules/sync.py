"""The silent-sync-failure rule: the day's net POS stock deltas vs Centra's stock-change ledger."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance, empty_findings
from pipelines.domain.reconciliation.rules.catalog import _allowed, _comparable
from pipelines.domain.reconciliation.rules.frames import (
    _col,
    _group,
    _over,
    _pair_findings,
    _pair_key,
    _take,
)
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys

#: Centra ledger descriptions that are not store movements (the simulator writes "Order N allocation",
#: "Order N cancelled", "Shipment N"): online allocations and ship-from-store shipments.
DEFAULT_EXCLUDED_CHANGE_PREFIXES: tuple[str, ...] = ("Order ", "Shipment ")


def _excluded(descriptions: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    codes, uniq = pd.factorize(descriptions)
    width = max(len(p) for p in prefixes)
    flags = np.array([str(d)[:width].lower().startswith(prefixes) for d in uniq], dtype=bool)
    return flags[codes] if len(uniq) else np.zeros(len(descriptions), dtype=bool)


def sync_failures(business_date: str, pos_movements: pd.DataFrame, centra_changes: pd.DataFrame,
                  locations: pd.DataFrame, prices: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                  exclude_description_prefixes: Iterable[str] = DEFAULT_EXCLUDED_CHANGE_PREFIXES,
                  skip_counted: bool = True, centra_catalog: pd.DataFrame | None = None,
                  pos_known: Collection[str] | None = None, keys: KeySpace | None = None) -> pd.DataFrame:
    """Silent sync failures: the day's net POS stock deltas vs Centra's ledger, per (store, SKU).

    pos_movements: business_date, location_id | fulfillment_node_id, sku, movement_type, quantity (signed
        deltas; movement_type 'count' rows are absolute and not summed).
    centra_changes: business_date, warehouse_id, sku, quantity (signed), description.

    Matching rule: pos_net = sum of the day's POS deltas, commerce_net = sum of the day's Centra changes in
    the store's warehouse whose description does not start (case-insensitively) with one of
    ``exclude_description_prefixes`` (online allocations, shipments). With ``skip_counted`` keys with a POS
    count on the day are not compared (a count's Centra delta is unknowable from the POS; the cut-off
    drift covers them). diff = commerce_net - pos_net; |diff| > units tolerance is a finding:
    sync_missing_in_commerce when the POS moved and Centra moved less in the same direction (0 included),
    otherwise sync_unexpected_in_commerce (Centra moved without a POS delta, more, or the other way).
    value = |diff| x price-list price. Orphan SKUs are skipped as in :func:`stock_drift`.
    """
    k = _keys(keys, locations, prices)
    ps_all, cs_all = k.store(pos_movements), k.store_by_warehouse(centra_changes)
    pm = k.day(pos_movements, business_date) & (ps_all >= 0)
    cm = k.day(centra_changes, business_date) & (cs_all >= 0)
    prefixes = tuple(p.lower() for p in exclude_description_prefixes)
    if prefixes and cm.any():
        cm = cm.copy()
        cm[cm] = ~_excluded(_col(centra_changes, "description", cm, object), prefixes)
    counted = k.eq(pos_movements, "movement_type", "count")
    dm, cnt = pm & ~counted, pm & counted
    ok = _comparable(k, business_date, centra_catalog, pos_known)
    width = k.n_skus + 1
    pkey = _pair_key(ps_all, k.sku(pos_movements), width)
    ckey = _pair_key(_take(cs_all, cm), _take(k.sku(centra_changes), cm), width)
    dkey = _take(pkey, dm)
    ukeys, (pnet, pn, cnet, cn, nc) = _group(len(locations) * width, [
        (dkey, _col(pos_movements, "quantity", dm, None)), (dkey, None),
        (ckey, _col(centra_changes, "quantity", cm, None)), (ckey, None), (pkey[cnt], None)])
    diff = cnet - pnet
    sel = np.flatnonzero(_over(diff, tolerance.units))
    sel = sel[_allowed(ok, ukeys[sel] % width)]
    if skip_counted:
        sel = sel[nc[sel] == 0]
    if not len(sel):
        return empty_findings()
    loc, sku = ukeys[sel] // width, ukeys[sel] % width
    pnet, cnet, diff, pn, cn = pnet[sel], cnet[sel], diff[sel], pn[sel], cn[sel]
    price = np.nan_to_num(k.price(loc, sku))
    moved = np.sign(pnet) * cnet
    missing = (pnet != 0) & (moved >= 0) & (moved < np.abs(pnet))
    detail = np.asarray([f"pos_net={int(a)};commerce_net={int(b)};pos_movements={int(c)};commerce_changes={int(d)}"
                         for a, b, c, d in zip(pnet, cnet, pn, cn, strict=True)], dtype=object)
    split = ((m.SYNC_MISSING_IN_COMMERCE, missing), (m.SYNC_UNEXPECTED_IN_COMMERCE, ~missing))
    return _pair_findings(business_date, locations, split, loc, k.skus[sku], pnet, cnet, diff, price, detail)
