"""The reconciliation rules: one function per finding family, DataFrames in, findings (FINDING_COLUMNS) out.

Inputs are frames as read from the store-of-record tables (sql/migrations/0001_core.sql); only the columns
each rule names are read. Every rule:

- keeps rows of ``business_date`` when the frame has that column (returns/refund matching excepted, see
  :func:`returns_and_refunds`);
- maps rows to *stores* through the reference ``locations`` frame (``location_id``, else
  ``fulfillment_node_id``; Centra rows by ``warehouse_id``); rows of other places (the DC, unmapped
  nodes) are ignored;
- reports a difference only when it is strictly larger than the :class:`Tolerance`.

Large frames are handled with integer codes (factorised SKUs, location codes, bincount/merge); Python
loops only run over the (few) finding rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import (
    DEFAULT_TOLERANCE,
    FINDING_COLUMNS,
    FINDING_DTYPES,
    FindingType,
    Tolerance,
    empty_findings,
)

_EPS = 1e-9

#: Centra ledger descriptions that are not store movements (the simulator writes "Order N allocation",
#: "Order N cancelled", "Shipment N"): online allocations and ship-from-store shipments.
DEFAULT_EXCLUDED_CHANGE_PREFIXES: tuple[str, ...] = ("Order ", "Shipment ")
DRIFT_TYPES = (m.STOCK_DRIFT_OVERSELL.name, m.STOCK_DRIFT_LOST_SALES.name)


# ------------------------------------------------------------------------------------------- helpers


def _day(df: pd.DataFrame | None, business_date: str | None) -> pd.DataFrame | None:
    """Rows of the business date (all rows when the frame has no business_date column)."""
    if df is None or business_date is None or "business_date" not in df.columns:
        return df
    mask = (df["business_date"] == business_date).to_numpy()
    return df if mask.all() else df[mask]


def _obj(values: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _loc_codes(df: pd.DataFrame, locations: pd.DataFrame) -> np.ndarray:
    """Store code (row of ``locations``) of each row by location_id, else fulfillment_node_id; -1 if none."""
    codes = np.full(len(df), -1, dtype=np.int64)
    if "location_id" in df.columns:
        codes = pd.Index(_obj(locations["location_id"])).get_indexer(_obj(df["location_id"])).astype(np.int64)
    if "fulfillment_node_id" in df.columns:
        miss = codes < 0
        if miss.any():
            nodes = pd.Index(_obj(locations["fulfillment_node_id"]))
            codes[miss] = nodes.get_indexer(_obj(df["fulfillment_node_id"])[miss])
    return codes


def _wh_codes(df: pd.DataFrame, locations: pd.DataFrame) -> np.ndarray:
    """Store code of each row by Centra warehouse_id; -1 for non-store warehouses."""
    idx = pd.Index(locations["warehouse_id"].to_numpy(dtype=np.int64))
    return idx.get_indexer(pd.to_numeric(df["warehouse_id"], errors="coerce").to_numpy(dtype=float)).astype(np.int64)


def _factorize(*cols: pd.Series | np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Codes of several string columns in one shared code space, and the uniques."""
    arrays = [_obj(c) for c in cols]
    joined = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    codes, uniques = pd.factorize(joined)
    out, start = [], 0
    for a in arrays:
        out.append(codes[start:start + len(a)].astype(np.int64))
        start += len(a)
    return out, _obj(uniques)


def _price_of(loc_codes: np.ndarray, skus: np.ndarray, locations: pd.DataFrame, prices: pd.DataFrame) -> np.ndarray:
    """Price-list price of (store, SKU) pairs (NaN when the store has no price for the SKU)."""
    n = len(loc_codes)
    out = np.full(n, np.nan)
    if n == 0 or prices is None or prices.empty:
        return out
    (row_sku, price_sku), _ = _factorize(skus, prices["sku"])
    pl_index = pd.Index(pd.unique(prices["pricelist_id"].to_numpy(dtype=np.int64)))
    loc_pl = pl_index.get_indexer(pd.to_numeric(locations["pricelist_id"], errors="coerce").to_numpy(dtype=float))
    width = int(max(row_sku.max(initial=0), price_sku.max(initial=0))) + 1
    pkey = pl_index.get_indexer(prices["pricelist_id"].to_numpy(dtype=np.int64)).astype(np.int64) * width + price_sku
    ukey, first = np.unique(pkey, return_index=True)
    pval = prices["price"].to_numpy(dtype=float)[first]
    row_pl = np.where(loc_codes >= 0, loc_pl[np.clip(loc_codes, 0, None)], -1)
    rkey = np.where(row_pl >= 0, row_pl * width + row_sku, -1)
    pos = np.searchsorted(ukey, rkey)
    pos = np.clip(pos, 0, len(ukey) - 1)
    hit = (rkey >= 0) & (ukey[pos] == rkey)
    out[hit] = pval[pos[hit]]
    return out


def _over(diff_abs: np.ndarray, tol: float | np.ndarray) -> np.ndarray:
    return np.abs(diff_abs) > np.asarray(tol) + _EPS


def _ints(values: np.ndarray | None, n: int) -> pd.arrays.IntegerArray:
    if values is None:
        return pd.array([pd.NA] * n, dtype="Int64")
    arr = np.asarray(values, dtype=float)
    return pd.array(np.where(np.isnan(arr), np.nan, np.rint(arr)), dtype="Int64")


def _floats(values: np.ndarray | float | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return np.round(np.broadcast_to(np.asarray(values, dtype=float), (n,)).astype(float), 2)


def _objs(values: np.ndarray | pd.Series | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, None, dtype=object)
    arr = _obj(values).copy()
    arr[pd.isna(arr)] = None
    return arr


def _findings(ft: FindingType, business_date: str, locations: pd.DataFrame, loc_codes: np.ndarray, *,
              value: np.ndarray, location_ids: np.ndarray | None = None, sku: np.ndarray | None = None,
              order_ref: np.ndarray | None = None, transaction_id: np.ndarray | None = None,
              tax_rate: np.ndarray | None = None, quantity_pos: np.ndarray | None = None,
              quantity_commerce: np.ndarray | None = None, amount_pos: np.ndarray | None = None,
              amount_commerce: np.ndarray | None = None, detail: Iterable[str] | None = None,
              currency: np.ndarray | None = None, fx: np.ndarray | None = None) -> pd.DataFrame:
    """A findings frame of one type. Store currency and fx come from ``locations`` by code; the ``currency``
    and ``fx`` arrays fill rows without a store. value_at_risk = round(|value|, 2)."""
    loc_codes = np.asarray(loc_codes, dtype=np.int64)
    n = len(loc_codes)
    if n == 0:
        return empty_findings()
    ok = loc_codes >= 0
    safe = np.where(ok, loc_codes, 0)
    loc_ids = np.where(ok, _obj(locations["location_id"])[safe], None) if len(locations) else np.full(n, None)
    if location_ids is not None:
        loc_ids = np.where(ok, loc_ids, _objs(location_ids, n))
    cur = np.where(ok, _obj(locations["currency"])[safe], None) if len(locations) else np.full(n, None)
    fxa = np.where(ok, locations["fx_to_base"].to_numpy(dtype=float)[safe], np.nan) if len(locations) \
        else np.full(n, np.nan)
    if currency is not None:
        cur = np.where(ok, cur, _objs(currency, n))
    if fx is not None:
        fxa = np.where(ok, fxa, np.asarray(fx, dtype=float))
    val = np.round(np.abs(np.nan_to_num(np.asarray(value, dtype=float))), 2)
    base = np.round(np.where(np.isnan(fxa), val, val * np.nan_to_num(fxa)), 2)
    qp, qc = _ints(quantity_pos, n), _ints(quantity_commerce, n)
    ap, ac = _floats(amount_pos, n), _floats(amount_commerce, n)
    df = pd.DataFrame({
        "business_date": np.full(n, business_date, dtype=object),
        "finding_type": np.full(n, ft.name, dtype=object),
        "severity": np.full(n, ft.severity, dtype=object),
        "owner_team": np.full(n, ft.owner_team, dtype=object),
        "location_id": loc_ids.astype(object),
        "sku": _objs(sku, n),
        "order_ref": _objs(order_ref, n),
        "transaction_id": _objs(transaction_id, n),
        "tax_rate": np.full(n, np.nan) if tax_rate is None else np.round(np.asarray(tax_rate, dtype=float), 4),
        "quantity_pos": qp,
        "quantity_commerce": qc,
        "quantity_diff": qc - qp,
        "amount_pos": ap,
        "amount_commerce": ac,
        "amount_diff": np.round(ac - ap, 2),
        "currency": cur.astype(object),
        "value_at_risk": val,
        "value_at_risk_base": base,
        "risk_rank": np.zeros(n, dtype=np.int64),
        "playbook": np.full(n, ft.playbook, dtype=object),
        "detail": np.full(n, "", dtype=object) if detail is None else _obj(list(detail)),
    })
    return rank_findings(df.astype(FINDING_DTYPES)[FINDING_COLUMNS])


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_findings()
    return rank_findings(pd.concat(frames, ignore_index=True).astype(FINDING_DTYPES))


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.2f}"


def _norm_ref(values: pd.Series) -> np.ndarray:
    """Order references as text ("100123"), None for missing; ints and floats without their ".0"."""
    s = values
    if pd.api.types.is_numeric_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce")
        out = np.full(len(s), None, dtype=object)
        ok = num.notna().to_numpy()
        out[ok] = num[ok].astype("int64").astype(str).to_numpy()
        return out
    arr = _obj(s).copy()
    na = pd.isna(arr)
    arr[~na] = [str(v).strip() for v in arr[~na]] if (~na).sum() < 200_000 else \
        pd.Series(arr[~na]).astype(str).str.strip().to_numpy(dtype=object)
    arr[na] = None
    arr[arr == ""] = None
    return arr


# ------------------------------------------------------------------------------------------- ranking


def rank_findings(findings: pd.DataFrame, sell_through: pd.DataFrame | None = None) -> pd.DataFrame:
    """Set risk_rank: dense rank (1 = highest) of the commercial-risk weight.

    weight = value_at_risk_base, and for stock drift x (1 + sell-through), where sell-through =
    units_sold_recent / (units_sold_recent + max(on-hand, 0)) from ``sell_through`` (location_id, sku,
    units_sold_recent; absent -> 0).
    """
    if findings.empty:
        return findings
    w = findings["value_at_risk_base"].to_numpy(dtype=float).copy()
    if sell_through is not None and len(sell_through):
        drift = findings["finding_type"].isin(DRIFT_TYPES).to_numpy()
        if drift.any():
            st = sell_through.groupby(["location_id", "sku"], as_index=False, sort=False)["units_sold_recent"].sum()
            sub = findings.loc[drift, ["location_id", "sku", "quantity_pos"]]
            joined = sub.merge(st, how="left", on=["location_id", "sku"])
            units = joined["units_sold_recent"].fillna(0).clip(lower=0).to_numpy(dtype=float)
            on_hand = joined["quantity_pos"].astype("float64").fillna(0).clip(lower=0).to_numpy()
            denom = units + on_hand
            rate = np.divide(units, denom, out=np.zeros_like(units), where=denom > 0)
            w[drift] = w[drift] * (1.0 + rate)
    out = findings.copy()
    out["risk_rank"] = pd.Series(np.round(w, 6)).rank(method="dense", ascending=False).astype("int64").to_numpy()
    return out


def sort_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Deterministic order: value_at_risk_base desc, then risk_rank, type and keys."""
    if findings.empty:
        return findings.reset_index(drop=True)
    keys = ["value_at_risk_base", "risk_rank", "finding_type", "location_id", "sku", "order_ref",
            "transaction_id", "tax_rate"]
    return findings.sort_values(keys, ascending=[False] + [True] * 7, kind="mergesort",
                                na_position="last").reset_index(drop=True)


# ------------------------------------------------------------------------------------------- SKU sets


def pos_known_skus(*, pos_catalog: pd.DataFrame | None = None, pos_stock: pd.DataFrame | None = None,
                   pos_sale_lines: pd.DataFrame | None = None,
                   pos_movements: pd.DataFrame | None = None) -> pd.Index:
    """Every SKU the POS knows: in its catalog, stock snapshot, sale lines or stock movements (as given)."""
    parts = [pd.unique(_obj(df["sku"])) for df in (pos_catalog, pos_stock, pos_sale_lines, pos_movements)
             if df is not None and len(df)]
    if not parts:
        return pd.Index([], dtype=object)
    return pd.Index(pd.unique(np.concatenate(parts)))


def centra_skus(centra_catalog: pd.DataFrame) -> tuple[pd.Index, pd.Index]:
    """(all SKUs, active SKUs) of the Centra catalog."""
    skus = _obj(centra_catalog["sku"])
    active = centra_catalog["is_active"].fillna(False).astype(bool).to_numpy()
    return pd.Index(pd.unique(skus)), pd.Index(pd.unique(skus[active]))


def _allowed(uniques: np.ndarray, centra_catalog: pd.DataFrame | None,
             pos_known: Collection[str] | pd.Index | None) -> np.ndarray:
    """Per unique SKU: comparable (active in Centra and known to the POS, for the inputs given)."""
    ok = np.ones(len(uniques), dtype=bool)
    if centra_catalog is not None:
        ok &= pd.Index(uniques).isin(centra_skus(centra_catalog)[1])
    if pos_known is not None:
        ok &= pd.Index(uniques).isin(pd.Index(pos_known))
    return ok


# ------------------------------------------------------------------------------------------- stock drift


def stock_drift(business_date: str, pos_stock: pd.DataFrame, centra_stock: pd.DataFrame,
                locations: pd.DataFrame, prices: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                centra_catalog: pd.DataFrame | None = None,
                pos_known: Collection[str] | pd.Index | None = None) -> pd.DataFrame:
    """POS on-hand vs Centra physical per (store, SKU) at the day's cut-off.

    pos_stock: business_date, location_id | fulfillment_node_id, sku, on_hand.
    centra_stock: business_date, warehouse_id, sku, physical (store warehouses only; the DC is ignored).
    A key missing on one side counts as 0 there. diff = physical - on_hand; diff > units tolerance ->
    stock_drift_oversell, diff < -tolerance -> stock_drift_lost_sales; value = |diff| x the store's
    price-list price (0 when the store has no price). SKUs that are orphans are not drift: with
    ``centra_catalog`` only SKUs active in Centra are compared, with ``pos_known`` only SKUs the POS knows.
    """
    pos, cen = _day(pos_stock, business_date), _day(centra_stock, business_date)
    pl, cl = _loc_codes(pos, locations), _wh_codes(cen, locations)
    pk, ck = pl >= 0, cl >= 0
    (ps, cs), uniq = _factorize(pos["sku"].to_numpy()[pk], cen["sku"].to_numpy()[ck])
    width = len(uniq) + 1
    keys = np.concatenate([pl[pk] * width + ps, cl[ck] * width + cs])
    kcodes, ukeys = pd.factorize(keys)
    npos = int(pk.sum())
    nk = len(ukeys)
    qp = np.bincount(kcodes[:npos], weights=pos["on_hand"].to_numpy(dtype=float)[pk], minlength=nk)
    qc = np.bincount(kcodes[npos:], weights=cen["physical"].to_numpy(dtype=float)[ck], minlength=nk)
    diff = qc - qp
    loc, sku_code = ukeys // width, ukeys % width
    sel = _over(diff, tolerance.units) & _allowed(uniq, centra_catalog, pos_known)[sku_code]
    if not sel.any():
        return empty_findings()
    loc, skus, qp, qc, diff = loc[sel], uniq[sku_code[sel]], qp[sel], qc[sel], diff[sel]
    price = _price_of(loc, skus, locations, prices)
    value = np.abs(diff) * np.nan_to_num(price)
    detail = [f"on_hand={int(a)};physical={int(b)};unit_price={_fmt(p)}" for a, b, p in zip(qp, qc, price, strict=True)]
    detail = np.asarray(detail, dtype=object)
    out = []
    for ft, mask in ((m.STOCK_DRIFT_OVERSELL, diff > 0), (m.STOCK_DRIFT_LOST_SALES, diff < 0)):
        if mask.any():
            out.append(_findings(ft, business_date, locations, loc[mask], value=value[mask], sku=skus[mask],
                                 quantity_pos=qp[mask], quantity_commerce=qc[mask],
                                 amount_pos=qp[mask] * np.nan_to_num(price[mask]),
                                 amount_commerce=qc[mask] * np.nan_to_num(price[mask]), detail=detail[mask]))
    return _concat(out)


# ------------------------------------------------------------------------------------------- sync


def sync_failures(business_date: str, pos_movements: pd.DataFrame, centra_changes: pd.DataFrame,
                  locations: pd.DataFrame, prices: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                  exclude_description_prefixes: Iterable[str] = DEFAULT_EXCLUDED_CHANGE_PREFIXES,
                  skip_counted: bool = True, centra_catalog: pd.DataFrame | None = None,
                  pos_known: Collection[str] | pd.Index | None = None) -> pd.DataFrame:
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
    pos, cen = _day(pos_movements, business_date), _day(centra_changes, business_date)
    prefixes = tuple(p.lower() for p in exclude_description_prefixes)
    if prefixes and len(cen):
        dcodes, duniq = pd.factorize(_obj(cen["description"]))
        excl = np.array([str(d).lower().startswith(prefixes) for d in duniq], dtype=bool)
        keep = ~excl[dcodes] if len(duniq) else np.ones(len(cen), dtype=bool)
        cen = cen[keep]
    pl, cl = _loc_codes(pos, locations), _wh_codes(cen, locations)
    pk, ck = pl >= 0, cl >= 0
    counted = (pos["movement_type"] == "count").to_numpy()
    (ps, cs), uniq = _factorize(pos["sku"].to_numpy()[pk], cen["sku"].to_numpy()[ck])
    width = len(uniq) + 1
    keys = np.concatenate([pl[pk] * width + ps, cl[ck] * width + cs])
    kcodes, ukeys = pd.factorize(keys)
    npos, nk = int(pk.sum()), len(ukeys)
    pcodes = kcodes[:npos]
    delta = ~counted[pk]
    pos_qty = pos["quantity"].to_numpy(dtype=float)[pk]
    pnet = np.bincount(pcodes[delta], weights=pos_qty[delta], minlength=nk)
    pn = np.bincount(pcodes[delta], minlength=nk)
    cnet = np.bincount(kcodes[npos:], weights=cen["quantity"].to_numpy(dtype=float)[ck], minlength=nk)
    cn = np.bincount(kcodes[npos:], minlength=nk)
    diff = cnet - pnet
    loc, sku_code = ukeys // width, ukeys % width
    sel = _over(diff, tolerance.units) & _allowed(uniq, centra_catalog, pos_known)[sku_code]
    if skip_counted and counted.any():
        sel &= np.bincount(pcodes[~delta], minlength=nk) == 0
    if not sel.any():
        return empty_findings()
    loc, skus, pnet, cnet, diff, pn, cn = loc[sel], uniq[sku_code[sel]], pnet[sel], cnet[sel], diff[sel], pn[sel], cn[sel]
    price = np.nan_to_num(_price_of(loc, skus, locations, prices))
    moved = np.sign(pnet) * cnet
    missing = (pnet != 0) & (moved >= 0) & (moved < np.abs(pnet))
    detail = np.asarray([f"pos_net={int(a)};commerce_net={int(b)};pos_movements={int(c)};commerce_changes={int(d)}"
                         for a, b, c, d in zip(pnet, cnet, pn, cn, strict=True)], dtype=object)
    out = []
    for ft, mask in ((m.SYNC_MISSING_IN_COMMERCE, missing), (m.SYNC_UNEXPECTED_IN_COMMERCE, ~missing)):
        if mask.any():
            out.append(_findings(ft, business_date, locations, loc[mask], value=np.abs(diff[mask]) * price[mask],
                                 sku=skus[mask], quantity_pos=pnet[mask], quantity_commerce=cnet[mask],
                                 amount_pos=pnet[mask] * price[mask], amount_commerce=cnet[mask] * price[mask],
                                 detail=detail[mask]))
    return _concat(out)


# ------------------------------------------------------------------------------------------- orphans


def _per_location(df: pd.DataFrame | None, locations: pd.DataFrame, skus: pd.Index,
                  cols: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Rows of ``df`` whose SKU is in ``skus``, with their store code (unmapped rows dropped)."""
    if df is None or not len(df) or not len(skus):
        return pd.DataFrame({"loc": np.array([], dtype=np.int64), "sku": np.array([], dtype=object)})
    hit = pd.Index(skus).get_indexer(_obj(df["sku"])) >= 0
    sub = df[hit]
    codes = _loc_codes(sub, locations) if "warehouse_id" not in sub.columns else _wh_codes(sub, locations)
    out = pd.DataFrame({"loc": codes, "sku": _obj(sub["sku"])})
    for name, col in (cols or {}).items():
        out[name] = sub[col].to_numpy() if isinstance(col, str) else col[hit]
    return out[out["loc"] >= 0]


def orphan_skus(business_date: str, centra_catalog: pd.DataFrame, locations: pd.DataFrame,
                prices: pd.DataFrame, *, pos_catalog: pd.DataFrame | None = None,
                pos_stock: pd.DataFrame | None = None, pos_sale_lines: pd.DataFrame | None = None,
                pos_movements: pd.DataFrame | None = None, centra_stock: pd.DataFrame | None = None,
                pos_known: pd.Index | None = None, report_unstocked_commerce_skus: bool = True) -> pd.DataFrame:
    """SKUs one side has and the other does not know (or has inactive).

    centra_catalog: sku, is_active. pos_catalog: sku. pos_stock: location_id | fulfillment_node_id, sku,
    on_hand. pos_sale_lines: location_id | fulfillment_node_id, sku, kind, quantity, unit_price, discount.
    pos_movements: location_id | fulfillment_node_id, sku. centra_stock: warehouse_id, sku, physical.

    POS side (SKU known to the POS but absent from the Centra catalog -> orphan_sku_pos_unknown_in_commerce,
    present but inactive -> orphan_sku_pos_inactive_in_commerce): one finding per store where the POS has
    it on hand (on_hand != 0), sold/returned it or moved it on the day; value = max(on_hand, 0) x unit price
    + the day's sold value (unit_price x qty - discount of sale lines), unit price = the store's price-list
    price, else the day's average POS sale price there, else 0. A SKU in the POS catalog with no such store
    activity gets one SKU-level finding (location null, value 0).
    Commerce side (SKU active in Centra, unknown to the POS -> orphan_sku_commerce_unknown_in_pos): one
    finding per store warehouse where Centra has physical != 0 (value = physical x price), else one
    SKU-level finding with value 0 (``report_unstocked_commerce_skus``).
    """
    stock, lines = _day(pos_stock, business_date), _day(pos_sale_lines, business_date)
    moves, cstock = _day(pos_movements, business_date), _day(centra_stock, business_date)
    cat = _day(pos_catalog, business_date)
    known = pos_known if pos_known is not None else pos_known_skus(
        pos_catalog=cat, pos_stock=stock, pos_sale_lines=lines, pos_movements=moves)
    all_c, active_c = centra_skus(centra_catalog)
    unknown = known[~known.isin(all_c)]
    inactive = known[known.isin(all_c) & ~known.isin(active_c)]
    pos_orphans = unknown.append(inactive)
    out: list[pd.DataFrame] = []
    if len(pos_orphans):
        parts = [_per_location(stock, locations, pos_orphans, {"on_hand": "on_hand"})]
        if lines is not None and len(lines):
            sale = (lines["kind"] == "sale").to_numpy()
            qty = lines["quantity"].to_numpy(dtype=float)
            gross = lines["unit_price"].to_numpy(dtype=float) * qty
            parts.append(_per_location(lines, locations, pos_orphans, {
                "sold": np.where(sale, qty, 0.0), "sold_gross": np.where(sale, gross, 0.0),
                "sold_value": np.where(sale, gross - lines["discount"].to_numpy(dtype=float), 0.0),
                "lines": np.ones(len(lines))}))
        parts.append(_per_location(moves, locations, pos_orphans, {"moves": np.ones(len(moves)) if moves is not None
                                                                    else np.array([])}))
        act = pd.concat(parts, ignore_index=True)
        for c in ("on_hand", "sold", "sold_gross", "sold_value", "lines", "moves"):
            if c not in act.columns:
                act[c] = 0.0
        act = act.fillna(0.0).groupby(["loc", "sku"], as_index=False, sort=True).sum()
        act = act[(act["on_hand"] != 0) | (act["lines"] > 0) | (act["moves"] > 0)]
        loc = act["loc"].to_numpy(dtype=np.int64)
        skus = _obj(act["sku"])
        price = _price_of(loc, skus, locations, prices)
        avg = np.divide(act["sold_gross"].to_numpy(), act["sold"].to_numpy(),
                        out=np.full(len(act), np.nan), where=act["sold"].to_numpy() > 0)
        unit = np.where(np.isnan(price), avg, price)
        on_hand = act["on_hand"].to_numpy(dtype=float)
        value = np.clip(on_hand, 0, None) * np.nan_to_num(unit) + act["sold_value"].to_numpy(dtype=float)
        qc = None
        if cstock is not None and len(cstock):
            c = _per_location(cstock, locations, pos_orphans, {"physical": "physical"})
            c = c.groupby(["loc", "sku"], as_index=False, sort=False)["physical"].sum()
            qc = act[["loc", "sku"]].merge(c, how="left", on=["loc", "sku"])["physical"].fillna(0).to_numpy()
        is_unknown = pd.Index(skus).isin(unknown)
        detail = np.asarray([f"units_sold={int(s)};sold_value={v:.2f};unit_price={_fmt(u)}"
                             for s, v, u in zip(act["sold"], act["sold_value"], unit, strict=True)], dtype=object)
        for ft, mask in ((m.ORPHAN_POS_UNKNOWN, is_unknown), (m.ORPHAN_POS_INACTIVE, ~is_unknown)):
            if mask.any():
                out.append(_findings(ft, business_date, locations, loc[mask], value=value[mask], sku=skus[mask],
                                     quantity_pos=on_hand[mask], quantity_commerce=None if qc is None else qc[mask],
                                     amount_pos=value[mask], detail=detail[mask]))
        if cat is not None and len(cat):
            cat_orphans = pd.Index(pd.unique(_obj(cat["sku"])))
            cat_orphans = cat_orphans[cat_orphans.isin(pos_orphans) & ~cat_orphans.isin(pd.Index(skus))]
            cat_orphans = cat_orphans.sort_values()
            unk = cat_orphans.isin(unknown)
            for ft, mask in ((m.ORPHAN_POS_UNKNOWN, unk), (m.ORPHAN_POS_INACTIVE, ~unk)):
                if mask.any():
                    k = int(mask.sum())
                    out.append(_findings(ft, business_date, locations, np.full(k, -1), value=np.zeros(k),
                                         sku=_obj(cat_orphans[mask]), detail=["in the POS catalog; no store "
                                                                              "stock or activity on the day"] * k))
    commerce_orphans = active_c[~active_c.isin(known)]
    if len(commerce_orphans):
        c = _per_location(cstock, locations, commerce_orphans, {"physical": "physical"}) \
            if cstock is not None else _per_location(None, locations, commerce_orphans)
        if "physical" in c.columns and len(c):
            c = c.groupby(["loc", "sku"], as_index=False, sort=True)["physical"].sum()
            c = c[c["physical"] != 0]
        if len(c):
            loc, skus = c["loc"].to_numpy(dtype=np.int64), _obj(c["sku"])
            phys = c["physical"].to_numpy(dtype=float)
            price = _price_of(loc, skus, locations, prices)
            out.append(_findings(m.ORPHAN_COMMERCE_UNKNOWN, business_date, locations, loc,
                                 value=np.abs(phys) * np.nan_to_num(price), sku=skus, quantity_pos=np.zeros(len(c)),
                                 quantity_commerce=phys, amount_commerce=phys * np.nan_to_num(price),
                                 detail=[f"physical={int(p)};unit_price={_fmt(u)}" for p, u in zip(phys, price,
                                                                                                   strict=True)]))
        if report_unstocked_commerce_skus:
            rest = commerce_orphans[~commerce_orphans.isin(pd.Index(c["sku"]) if len(c) else pd.Index([]))]
            rest = rest.sort_values()
            if len(rest):
                k = len(rest)
                out.append(_findings(m.ORPHAN_COMMERCE_UNKNOWN, business_date, locations, np.full(k, -1),
                                     value=np.zeros(k), sku=_obj(rest),
                                     detail=["active in Centra; no store warehouse stock"] * k))
    return _concat(out)


# ------------------------------------------------------------------------------------------- store sales


def _line_frame(lines: pd.DataFrame, locations: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    codes = _loc_codes(lines, locations)
    keep = codes >= 0
    return (lines if keep.all() else lines[keep]), codes[keep]


def derive_tax_rates(lines: pd.DataFrame, loc_codes: np.ndarray, locations: pd.DataFrame,
                     tax_rates: Iterable[float] | None, tolerance: Tolerance) -> np.ndarray:
    """Tax rate of each sale line: the store country's rate when the line's tax matches it (within the
    tax tolerance), else the estate rate nearest to tax / (gross - discount - tax); the country rate when
    that base is ~0."""
    rates = np.array(sorted(set(float(r) for r in (tax_rates or ())) | set(locations["tax_rate"].astype(float))))
    country = locations["tax_rate"].to_numpy(dtype=float)[loc_codes]
    qty = lines["quantity"].to_numpy(dtype=float)
    gross = lines["unit_price"].to_numpy(dtype=float) * qty
    disc = lines["discount"].to_numpy(dtype=float)
    tax = lines["tax"].to_numpy(dtype=float)
    expected = (gross - disc) * country / (1.0 + country)
    consistent = ~_over(tax - expected, tolerance.money + tolerance.tax_rounding_per_unit * np.abs(qty))
    base = gross - disc - tax
    derived = np.divide(tax, base, out=np.full(len(tax), np.nan), where=np.abs(base) > 0.005)
    idx = np.clip(np.searchsorted(rates, derived), 1, max(len(rates) - 1, 1))
    lo, hi = rates[idx - 1], rates[np.minimum(idx, len(rates) - 1)]
    nearest = np.where(np.abs(derived - lo) <= np.abs(hi - derived), lo, hi)
    return np.where(consistent | np.isnan(derived), country, nearest)


def store_sales(business_date: str, pos_sale_lines: pd.DataFrame, downstream: pd.DataFrame,
                locations: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                tax_rates: Iterable[float] | None = None) -> pd.DataFrame:
    """Store sales of the day vs what was recorded downstream, per (store, business_date, tax_rate).

    pos_sale_lines: business_date, location_id | fulfillment_node_id, transaction_id, kind, quantity,
        unit_price, discount, tax, net_amount (kind='sale' rows are used).
    downstream: location_id | fulfillment_node_id, business_date, tax_rate, count, gross, discount, tax, net.
    POS side per group: count = distinct transactions, gross = sum(unit_price x quantity), discount, tax,
    net = sum(net_amount); tax_rate per line from :func:`derive_tax_rates`. A group on one side only counts
    0 on the other. A finding when the counts differ or any amount differs by more than the money
    tolerance; value = the largest absolute amount difference. Downstream rows of unknown stores are ignored.
    """
    lines = _day(pos_sale_lines, business_date)
    lines = lines[(lines["kind"] == "sale").to_numpy()]
    lines, loc = _line_frame(lines, locations)
    rate = derive_tax_rates(lines, loc, locations, tax_rates, tolerance)
    rate_key = np.rint(rate * 10_000).astype(np.int64)
    gkey = loc * 100_000 + rate_key
    gcodes, gkeys = pd.factorize(gkey)
    tcodes, _ = pd.factorize(_obj(lines["transaction_id"]))
    pairs = pd.unique(gcodes.astype(np.int64) * (int(tcodes.max(initial=0)) + 1) + tcodes)
    ng = len(gkeys)
    qty = lines["quantity"].to_numpy(dtype=float)
    pos = pd.DataFrame({
        "loc": gkeys // 100_000, "rate_key": gkeys % 100_000,
        "count": np.bincount(pairs // (int(tcodes.max(initial=0)) + 1), minlength=ng),
        "gross": np.bincount(gcodes, weights=lines["unit_price"].to_numpy(dtype=float) * qty, minlength=ng),
        "discount": np.bincount(gcodes, weights=lines["discount"].to_numpy(dtype=float), minlength=ng),
        "tax": np.bincount(gcodes, weights=lines["tax"].to_numpy(dtype=float), minlength=ng),
        "net": np.bincount(gcodes, weights=lines["net_amount"].to_numpy(dtype=float), minlength=ng),
    })
    ds = _day(downstream, business_date)
    dloc = _loc_codes(ds, locations)
    ds = pd.DataFrame({
        "loc": dloc, "rate_key": np.rint(ds["tax_rate"].to_numpy(dtype=float) * 10_000).astype(np.int64),
        **{c: ds[c].to_numpy(dtype=float) for c in ("count", "gross", "discount", "tax", "net")},
    })[dloc >= 0]
    ds = ds.groupby(["loc", "rate_key"], as_index=False, sort=False).sum()
    j = pos.merge(ds, how="outer", on=["loc", "rate_key"], suffixes=("_pos", "_ds")).fillna(0.0)
    j = j.sort_values(["loc", "rate_key"], kind="mergesort")
    measures = ("gross", "discount", "tax", "net")
    diffs = np.column_stack([j[f"{c}_ds"].to_numpy() - j[f"{c}_pos"].to_numpy() for c in measures])
    bad = _over(diffs, tolerance.money).any(axis=1) | (j["count_ds"].to_numpy() != j["count_pos"].to_numpy())
    j, diffs = j[bad], diffs[bad]
    if not len(j):
        return empty_findings()
    detail = [";".join(f"{c}_diff={d:.2f}" for c, d in zip(measures, row, strict=True)) for row in diffs]
    return _findings(m.STORE_SALES_MISMATCH, business_date, locations, j["loc"].to_numpy(dtype=np.int64),
                     value=np.abs(diffs).max(axis=1), tax_rate=j["rate_key"].to_numpy() / 10_000,
                     quantity_pos=j["count_pos"].to_numpy(), quantity_commerce=j["count_ds"].to_numpy(),
                     amount_pos=j["gross_pos"].to_numpy(), amount_commerce=j["gross_ds"].to_numpy(), detail=detail)


# ------------------------------------------------------------------------------------------- returns


def returns_and_refunds(business_date: str, pos_sale_lines: pd.DataFrame, locations: pd.DataFrame,
                        tolerance: Tolerance = DEFAULT_TOLERANCE, *, centra_returns: pd.DataFrame | None = None,
                        centra_return_lines: pd.DataFrame | None = None,
                        store_sale_transaction_ids: Iterable[str] | None = None,
                        store_returns_only: bool = True) -> pd.DataFrame:
    """Store returns vs Centra returns and refunds.

    pos_sale_lines: business_date, transaction_id, kind, location_id | fulfillment_node_id, sku, quantity,
        tax, net_amount, original_order_ref (all supplied days; returns of ``business_date`` are judged).
    centra_return_lines: return_id, order_number, sku, quantity, line_value (incl. tax), tax_percent (25.0);
        None = Centra returns unknown: only return_without_order_ref is judged.
    centra_returns (optional): return_id, refunded, return_warehouse_id.
    store_sale_transaction_ids: ids of known store sales (the supplied sale lines' ids are added).

    A return line is a return of a store sale, and skipped, when its original_order_ref or its own
    transaction_id is a known store sale. Other return lines of the day: ref null -> return_without_order_ref
    (value = refund). With a ref, per (order, sku) cumulated over the supplied window (POS: every supplied
    return line with that ref; Centra: every supplied return line of that order, so partial and repeated
    returns add up): no Centra line -> return_missing_in_commerce (value = POS refund); quantities differ or
    refund amount (POS net_amount + tax vs Centra line_value of refunded returns) differs beyond tolerance
    -> refund_amount_mismatch (value = |amount diff|); else tax (POS tax vs line_value x r/(1+r)) differs
    -> refund_tax_mismatch (value = |tax diff|). With ``store_returns_only`` Centra returns whose
    return_warehouse_id is set and is not a store warehouse (online returns to the DC) are ignored.
    """
    lines = pos_sale_lines
    kind = lines["kind"].to_numpy()
    store_ids = pd.Index(pd.unique(_obj(lines["transaction_id"])[kind == "sale"]))
    if store_sale_transaction_ids is not None:
        store_ids = store_ids.append(pd.Index(list(store_sale_transaction_ids), dtype=object)).unique()
    ret = lines[kind == "return"]
    if not len(ret):
        return empty_findings()
    ref = _norm_ref(ret["original_order_ref"]) if "original_order_ref" in ret.columns else np.full(len(ret), None)
    store_origin = pd.Index(ref).isin(store_ids) | pd.Index(_obj(ret["transaction_id"])).isin(store_ids)
    today = (ret["business_date"] == business_date).to_numpy() if "business_date" in ret.columns \
        else np.ones(len(ret), dtype=bool)
    loc = _loc_codes(ret, locations)
    refund = ret["net_amount"].to_numpy(dtype=float) + ret["tax"].to_numpy(dtype=float)
    qty = ret["quantity"].to_numpy(dtype=float)
    no_ref = pd.isna(ref)
    out: list[pd.DataFrame] = []
    sel = today & no_ref & ~store_origin
    if sel.any():
        order = np.lexsort((_obj(ret["sku"])[sel].astype(str), _obj(ret["transaction_id"])[sel].astype(str)))
        idx = np.flatnonzero(sel)[order]
        out.append(_findings(m.RETURN_WITHOUT_ORDER_REF, business_date, locations, loc[idx], value=refund[idx],
                             location_ids=_obj(ret["location_id"])[idx] if "location_id" in ret.columns else None,
                             sku=_obj(ret["sku"])[idx], transaction_id=_obj(ret["transaction_id"])[idx],
                             quantity_pos=qty[idx], amount_pos=refund[idx],
                             detail=[f"refund_tax={t:.2f}" for t in ret["tax"].to_numpy(dtype=float)[idx]]))
    linked = ~no_ref & ~store_origin
    refs_today = pd.unique(ref[linked & today])
    if len(refs_today) and centra_return_lines is not None:
        keep = linked & pd.Index(ref).isin(refs_today)
        p = pd.DataFrame({"order_ref": ref[keep], "sku": _obj(ret["sku"])[keep], "qty": qty[keep],
                          "amount": refund[keep], "tax": ret["tax"].to_numpy(dtype=float)[keep],
                          "today": today[keep], "loc": loc[keep],
                          "transaction_id": _obj(ret["transaction_id"])[keep]})
        p = p.sort_values(["order_ref", "sku", "today", "transaction_id"], ascending=[True, True, False, True],
                          kind="mergesort")
        pg = p.groupby(["order_ref", "sku"], sort=True).agg(
            qty=("qty", "sum"), amount=("amount", "sum"), tax=("tax", "sum"), any_today=("today", "max"),
            loc=("loc", "first"), transaction_id=("transaction_id", "first"),
            returns=("transaction_id", "nunique")).reset_index()
        pg = pg[pg["any_today"]]
        cg = _centra_refunds(centra_return_lines, centra_returns, locations, store_returns_only, refs_today)
        j = pg.merge(cg, how="left", on=["order_ref", "sku"])
        found = j["c_lines"].fillna(0).to_numpy() > 0
        cq = j["c_qty"].fillna(0).to_numpy(dtype=float)
        ca = j["c_amount"].fillna(0).to_numpy(dtype=float)
        ct = j["c_tax"].fillna(0).to_numpy(dtype=float)
        pq, pa, pt = (j[c].to_numpy(dtype=float) for c in ("qty", "amount", "tax"))
        amount_bad = found & (_over(cq - pq, tolerance.units) | _over(ca - pa, tolerance.money))
        tax_bad = found & ~amount_bad & _over(ct - pt, tolerance.money + tolerance.tax_rounding_per_unit * pq)
        lc = j["loc"].to_numpy(dtype=np.int64)
        keys = {"sku": _obj(j["sku"]), "order_ref": _obj(j["order_ref"]), "transaction_id": _obj(j["transaction_id"])}
        detail = np.asarray([f"pos_returns={int(a)};commerce_returns={int(b)};commerce_refunded={int(c)};"
                             f"pos_tax={d:.2f};commerce_tax={e:.2f}"
                             for a, b, c, d, e in zip(j["returns"], j["c_returns"].fillna(0),
                                                      j["c_refunded"].fillna(0), pt, ct, strict=True)], dtype=object)
        for ft, mask, val, a_pos, a_com in (
                (m.RETURN_MISSING_IN_COMMERCE, ~found, pa, pa, np.zeros(len(j))),
                (m.REFUND_AMOUNT_MISMATCH, amount_bad, ca - pa, pa, ca),
                (m.REFUND_TAX_MISMATCH, tax_bad, ct - pt, pt, ct)):
            if mask.any():
                out.append(_findings(ft, business_date, locations, lc[mask], value=val[mask],
                                     **{k: v[mask] for k, v in keys.items()}, quantity_pos=pq[mask],
                                     quantity_commerce=cq[mask], amount_pos=a_pos[mask],
                                     amount_commerce=a_com[mask], detail=detail[mask]))
    return _concat(out)


def _centra_refunds(lines: pd.DataFrame | None, headers: pd.DataFrame | None, locations: pd.DataFrame,
                    store_returns_only: bool, refs: np.ndarray) -> pd.DataFrame:
    cols = ["order_ref", "sku", "c_qty", "c_amount", "c_tax", "c_lines", "c_returns", "c_refunded"]
    if lines is None or not len(lines):
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("order_ref", "sku") else float) for c in cols})
    ref = _norm_ref(lines["order_number"])
    keep = pd.Index(ref).isin(refs)
    cl = lines[keep]
    c = pd.DataFrame({"order_ref": ref[keep], "sku": _obj(cl["sku"]), "return_id": _obj(cl["return_id"]),
                      "qty": cl["quantity"].to_numpy(dtype=float), "value": cl["line_value"].to_numpy(dtype=float),
                      "rate": cl["tax_percent"].to_numpy(dtype=float) / 100.0})
    c["refunded"] = True
    if headers is not None and len(headers):
        h = headers.drop_duplicates("return_id", keep="last").set_index("return_id")
        hit = h.reindex(c["return_id"])
        if "refunded" in h.columns:
            c["refunded"] = hit["refunded"].fillna(False).astype(bool).to_numpy()
        if store_returns_only and "return_warehouse_id" in h.columns:
            wh = pd.to_numeric(hit["return_warehouse_id"], errors="coerce").to_numpy(dtype=float)
            store_wh = np.isin(wh, locations["warehouse_id"].to_numpy(dtype=float))
            c = c[np.isnan(wh) | store_wh]
    c["amount"] = np.where(c["refunded"], c["value"], 0.0)
    c["tax"] = np.where(c["refunded"], c["value"] * c["rate"] / (1.0 + c["rate"]), 0.0)
    g = c.groupby(["order_ref", "sku"], sort=False).agg(
        c_qty=("qty", "sum"), c_amount=("amount", "sum"), c_tax=("tax", "sum"), c_lines=("qty", "size"),
        c_returns=("return_id", "nunique"), c_refunded=("refunded", "sum")).reset_index()
    return g[cols]


# ------------------------------------------------------------------------------------------- click & collect


def click_collect(business_date: str, pickups: pd.DataFrame, centra_orders: pd.DataFrame | None,
                  locations: pd.DataFrame, fx_to_base: Mapping[str, float] | None = None, *,
                  terminal_statuses: Collection[str] = ("SHIPPED",)) -> pd.DataFrame:
    """Pickups completed in a store whose online order is not in its terminal state in Centra.

    pickups: order_number, location_id | fulfillment_node_id, completed_at (the day's completions, as given).
    centra_orders: order_number, status, grand_total, currency (latest row per order wins).
    Not in ``terminal_statuses`` (or not found) -> click_collect_open, value = the order's grand total in
    the store's currency (converted through fx_to_base when the order currency differs; 0 when not found).
    """
    if not len(pickups):
        return empty_findings()
    pk = pickups.reset_index(drop=True)
    ref = _norm_ref(pk["order_number"])
    if centra_orders is not None and len(centra_orders):
        o = pd.DataFrame({"order_ref": _norm_ref(centra_orders["order_number"]),
                          "status": _obj(centra_orders["status"]),
                          "grand_total": centra_orders["grand_total"].to_numpy(dtype=float),
                          "order_currency": _obj(centra_orders["currency"])})
        o = o.drop_duplicates("order_ref", keep="last")
    else:
        o = pd.DataFrame(columns=["order_ref", "status", "grand_total", "order_currency"])
    j = pd.DataFrame({"order_ref": ref}).merge(o, how="left", on="order_ref")
    status = j["status"].to_numpy(dtype=object)
    found = ~pd.isna(status)
    open_ = ~(found & pd.Index(status).isin(list(terminal_statuses)))
    if not open_.any():
        return empty_findings()
    loc = _loc_codes(pk, locations)
    fx = dict(fx_to_base or {})
    store_cur = np.where(loc >= 0, _obj(locations["currency"])[np.clip(loc, 0, None)], None)
    ocur = j["order_currency"].to_numpy(dtype=object)
    total = j["grand_total"].to_numpy(dtype=float)
    rate = np.array([1.0 if (s is None or o_ == s) else fx.get(o_, np.nan) / fx.get(s, np.nan)
                     for o_, s in zip(ocur, store_cur, strict=True)], dtype=float)
    value = np.where(found, total * np.where(np.isnan(rate), 1.0, rate), 0.0)
    detail = [f"status={s if f else 'MISSING'};order_total={_fmt(t)} {c if f else ''};completed_at={w}".strip()
              for s, f, t, c, w in zip(status, found, total, ocur,
                                       pk["completed_at"] if "completed_at" in pk.columns else [""] * len(pk),
                                       strict=True)]
    idx = np.flatnonzero(open_)
    idx = idx[np.argsort(ref[idx].astype(str), kind="mergesort")]
    return _findings(m.CLICK_COLLECT_OPEN, business_date, locations, loc[idx], value=value[idx],
                     location_ids=_obj(pk["location_id"])[idx] if "location_id" in pk.columns else None,
                     order_ref=ref[idx], amount_commerce=value[idx], detail=np.asarray(detail, dtype=object)[idx],
                     currency=ocur[idx], fx=np.array([fx.get(c, np.nan) for c in ocur[idx]], dtype=float))


# ------------------------------------------------------------------------------------------- sale lines


def sale_line_checks(business_date: str, pos_sale_lines: pd.DataFrame, locations: pd.DataFrame,
                     prices: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                     allowed_discount_rates: Iterable[float] | None = None) -> pd.DataFrame:
    """Line-level checks of the day's store sale lines (kind='sale').

    pos_sale_lines: business_date, transaction_id, location_id | fulfillment_node_id, sku, kind, quantity,
        unit_price (incl. tax), discount, tax, original_order_ref (optional).
    - price_off_pricelist: |unit_price - the store's price-list price| > money tolerance (lines whose SKU
      has no price are skipped); value = |unit diff| x quantity.
    - line_tax_mismatch: |tax - (unit_price x quantity - discount) x r/(1+r)| > money + rounding x quantity,
      r = the store country's rate; value = |tax diff|.
    - line_discount_mismatch: discount < 0 or > unit_price x quantity (beyond money tolerance), or, with
      ``allowed_discount_rates`` (fractions, 0 always allowed), discount not within money tolerance of
      gross x an allowed rate; expected = the discount clipped to [0, gross] / the nearest allowed amount,
      value = |discount - expected|.
    """
    lines = _day(pos_sale_lines, business_date)
    lines = lines[(lines["kind"] == "sale").to_numpy()]
    lines, loc = _line_frame(lines, locations)
    if not len(lines):
        return empty_findings()
    qty = lines["quantity"].to_numpy(dtype=float)
    unit = lines["unit_price"].to_numpy(dtype=float)
    disc = lines["discount"].to_numpy(dtype=float)
    tax = lines["tax"].to_numpy(dtype=float)
    gross = unit * qty
    rate = locations["tax_rate"].to_numpy(dtype=float)[loc]
    expected_tax = (gross - disc) * rate / (1.0 + rate)
    out = []
    sku, tid = _obj(lines["sku"]), _obj(lines["transaction_id"])
    oref = _norm_ref(lines["original_order_ref"]) if "original_order_ref" in lines.columns else None

    def emit(ft: FindingType, mask: np.ndarray, value: np.ndarray, a_pos: np.ndarray, a_com: np.ndarray,
             detail: list[str], tax_rate: np.ndarray | None = None) -> None:
        idx = np.flatnonzero(mask)
        out.append(_findings(ft, business_date, locations, loc[idx], value=value[idx], sku=sku[idx],
                             transaction_id=tid[idx], order_ref=None if oref is None else oref[idx],
                             tax_rate=None if tax_rate is None else tax_rate[idx], quantity_pos=qty[idx],
                             amount_pos=a_pos[idx], amount_commerce=a_com[idx],
                             detail=detail))

    # price list
    price = _price_of(loc, sku, locations, prices)
    bad = ~np.isnan(price) & _over(unit - np.nan_to_num(price), tolerance.money)
    if bad.any():
        emit(m.PRICE_OFF_PRICELIST, bad, np.abs(unit - price) * qty, gross, price * qty,
             [f"unit_price={u:.2f};list_price={p:.2f}" for u, p in zip(unit[bad], price[bad], strict=True)])
    # tax
    bad = _over(tax - expected_tax, tolerance.money + tolerance.tax_rounding_per_unit * np.abs(qty))
    if bad.any():
        emit(m.LINE_TAX_MISMATCH, bad, tax - expected_tax, tax, expected_tax,
             [f"tax={t:.2f};expected={e:.2f};rate={r}" for t, e, r in zip(tax[bad], expected_tax[bad], rate[bad],
                                                                          strict=True)], tax_rate=rate)
    # discount
    expected_disc = np.clip(disc, 0.0, np.maximum(gross, 0.0))
    reason = np.where(disc < 0, "negative", np.where(disc > gross, "exceeds_gross", ""))
    if allowed_discount_rates is not None:
        allowed = np.array(sorted(set(float(r) for r in allowed_discount_rates) | {0.0}))
        share = np.divide(disc, gross, out=np.zeros(len(disc)), where=gross > 0)
        idx = np.clip(np.searchsorted(allowed, share), 1, max(len(allowed) - 1, 1))
        lo, hi = allowed[idx - 1], allowed[np.minimum(idx, len(allowed) - 1)]
        nearest = np.where(np.abs(share - lo) <= np.abs(hi - share), lo, hi) * gross
        in_range = (disc >= 0) & (disc <= gross)
        expected_disc = np.where(in_range, nearest, expected_disc)
        reason = np.where(in_range, "rate_not_allowed", reason)
    bad = _over(disc - expected_disc, tolerance.money)
    if bad.any():
        emit(m.LINE_DISCOUNT_MISMATCH, bad, disc - expected_disc, disc, expected_disc,
             [f"discount={d:.2f};gross={g:.2f};reason={r}" for d, g, r in zip(disc[bad], gross[bad], reason[bad],
                                                                              strict=True)])
    return _concat(out)
