"""The reconciliation rules: one function per finding family, DataFrames in, findings (FINDING_COLUMNS) out.

Inputs are frames as read from the store-of-record tables (sql/migrations/0001_core.sql); only the columns
each rule names are read (object or category dtype for strings). Every rule:

- uses rows of ``business_date`` when the frame has that column (refund matching excepted, see
  :func:`returns_and_refunds`);
- maps rows to *stores* through the reference ``locations`` frame (``location_id``, else
  ``fulfillment_node_id``; Centra stock rows by ``warehouse_id``); rows of other places (the DC, unmapped
  nodes) are ignored;
- reports a difference only when it is strictly larger than the :class:`Tolerance`.

Large frames are never copied: a :class:`KeySpace` turns SKUs and stores into integer codes and row masks
once per frame (shared by all rules of one run when the engine passes one), and the rules work on
arrays with bincount/merge; Python loops only run over the (few) finding rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import (
    DEFAULT_TOLERANCE,
    FINDING_DTYPES,
    FindingType,
    Tolerance,
    empty_findings,
)

_EPS = 1e-9
_DENSE_LIMIT = 1 << 24  # largest dense (store x SKU) or (price list x SKU) array, in elements

#: Centra ledger descriptions that are not store movements (the simulator writes "Order N allocation",
#: "Order N cancelled", "Shipment N"): online allocations and ship-from-store shipments.
DEFAULT_EXCLUDED_CHANGE_PREFIXES: tuple[str, ...] = ("Order ", "Shipment ")
DRIFT_TYPES = (m.STOCK_DRIFT_OVERSELL.name, m.STOCK_DRIFT_LOST_SALES.name)


def _obj(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _is_cat(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype)


class KeySpace:
    """Integer codes of one reconciliation run: SKUs in one shared code space, stores as rows of
    ``locations``, memoised per frame (by identity; the frames are kept alive meanwhile), and the
    price-list lookup as a dense (price list x SKU) table."""

    def __init__(self, locations: pd.DataFrame, prices: pd.DataFrame | None = None):
        self.locations = locations
        self.prices = prices
        self._index = pd.Index([], dtype=object)
        self._memo: dict[tuple, Any] = {}
        self._frames: dict[int, pd.DataFrame] = {}
        self._loc_index = pd.Index(_obj(locations["location_id"]))
        self._node_index = pd.Index(_obj(locations["fulfillment_node_id"]))
        self._wh_index = pd.Index(locations["warehouse_id"].to_numpy(dtype=np.int64))
        self._price: tuple[np.ndarray, int, np.ndarray | None, np.ndarray, np.ndarray] | None = None
        if prices is not None and len(prices):
            self.price(np.empty(0, np.int64), np.empty(0, np.int64))  # price-list SKUs get the first codes

    # -- SKUs
    @property
    def n_skus(self) -> int:
        return len(self._index)

    @property
    def skus(self) -> np.ndarray:
        return _obj(self._index)

    def encode(self, values: Any) -> np.ndarray:
        """Codes of SKU values in the shared space (unseen SKUs get new codes; nulls -1)."""
        if isinstance(values, pd.Series) and _is_cat(values):
            cats = self.encode(_obj(values.cat.categories))
            codes = values.cat.codes.to_numpy()
            return np.where(codes >= 0, cats[np.clip(codes, 0, None)], -1) if len(cats) else np.full(len(codes), -1)
        arr = _obj(values)
        if not len(self._index):
            codes, uniq = pd.factorize(arr)
            self._index = pd.Index(_obj(uniq))
            return codes.astype(np.int64)
        codes = self._index.get_indexer(arr).astype(np.int64)
        miss = codes < 0
        if miss.any():
            new_codes, new_uniq = pd.factorize(arr[miss])
            if len(new_uniq):
                at = np.flatnonzero(miss)
                ok = new_codes >= 0
                codes[at[ok]] = new_codes[ok] + len(self._index)
                self._index = self._index.append(pd.Index(_obj(new_uniq)))
        return codes

    def presence(self, codes: np.ndarray, size: int | None = None) -> np.ndarray:
        """Boolean array over the codes (current ones, or the first ``size``): True for the given codes."""
        out = np.zeros(self.n_skus if size is None else size, dtype=bool)
        codes = codes[(codes >= 0) & (codes < len(out))]
        out[codes] = True
        return out

    # -- per-frame memo
    def _key(self, df: pd.DataFrame, *parts: Any) -> tuple:
        self._frames[id(df)] = df
        return (id(df), *parts)

    def sku(self, df: pd.DataFrame, col: str = "sku") -> np.ndarray:
        key = self._key(df, "sku", col)
        if key not in self._memo:
            self._memo[key] = self.encode(df[col])
        return self._memo[key]

    def eq(self, df: pd.DataFrame, col: str, value: Any) -> np.ndarray:
        """Row mask ``df[col] == value`` (all rows when the column is absent or value is None)."""
        if value is None or col not in df.columns:
            return np.ones(len(df), dtype=bool)
        key = self._key(df, "eq", col, value)
        if key not in self._memo:
            s = df[col]
            mask = None
            if s.dtype == object:  # numpy's elementwise compare is ~4x faster than the pandas one here
                mask = np.asarray(s.to_numpy() == value)
            if mask is None or mask.shape != (len(s),) or mask.dtype != bool:
                mask = (s == value).to_numpy(dtype=bool)
            self._memo[key] = mask
        return self._memo[key]

    def col(self, df: pd.DataFrame, name: str) -> np.ndarray:
        """A numeric column as float64, memoised."""
        key = self._key(df, "col", name)
        if key not in self._memo:
            self._memo[key] = df[name].to_numpy(dtype=float)
        return self._memo[key]

    def day(self, df: pd.DataFrame, business_date: str | None) -> np.ndarray:
        return self.eq(df, "business_date", business_date)

    def codes(self, df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
        """(codes, uniques) of any column, memoised (not the shared SKU space)."""
        key = self._key(df, "codes", col)
        if key not in self._memo:
            s = df[col]
            if _is_cat(s):
                self._memo[key] = (s.cat.codes.to_numpy().astype(np.int64), _obj(s.cat.categories))
            else:
                c, u = pd.factorize(_obj(s))
                self._memo[key] = (c.astype(np.int64), _obj(u))
        return self._memo[key]

    def _lookup(self, index: pd.Index, s: pd.Series) -> np.ndarray:
        if _is_cat(s):
            cats = index.get_indexer(s.cat.categories)
            codes = s.cat.codes.to_numpy()
            return np.where(codes >= 0, cats[np.clip(codes, 0, None)], -1).astype(np.int64) if len(cats) \
                else np.full(len(s), -1, dtype=np.int64)
        if pd.api.types.is_numeric_dtype(s.dtype) and index.dtype == object:
            s = s.astype(object)
        return index.get_indexer(_obj(s) if index.dtype == object else s.to_numpy()).astype(np.int64)

    def store(self, df: pd.DataFrame) -> np.ndarray:
        """Store code per row by location_id, else fulfillment_node_id; -1 for non-stores."""
        key = self._key(df, "store")
        if key not in self._memo:
            codes = self._lookup(self._loc_index, df["location_id"]) if "location_id" in df.columns \
                else np.full(len(df), -1, dtype=np.int64)
            if "fulfillment_node_id" in df.columns:
                miss = codes < 0
                if miss.any():
                    codes[miss] = self._lookup(self._node_index, df["fulfillment_node_id"])[miss]
            self._memo[key] = codes
        return self._memo[key]

    def store_by_warehouse(self, df: pd.DataFrame, col: str = "warehouse_id") -> np.ndarray:
        """Store code per row by Centra warehouse id; -1 for non-store warehouses."""
        key = self._key(df, "warehouse", col)
        if key not in self._memo:
            s = df[col]
            whs = self._wh_index.to_numpy()
            top = int(whs.max(initial=0))
            if pd.api.types.is_integer_dtype(s.dtype) and not _is_cat(s) and whs.min(initial=0) >= 0 \
                    and top < _DENSE_LIMIT:
                lut = np.full(top + 2, -1, dtype=np.int64)  # last slot: ids outside the table
                lut[whs] = np.arange(len(whs))
                w = s.to_numpy(dtype=np.int64)
                self._memo[key] = lut[np.where((w >= 0) & (w <= top), w, top + 1)]
            else:
                w = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
                self._memo[key] = self._wh_index.get_indexer(w).astype(np.int64)
        return self._memo[key]

    # -- prices
    def price(self, store: np.ndarray, sku: np.ndarray) -> np.ndarray:
        """The store's price-list price of each (store code, SKU code); NaN when there is none."""
        out = np.full(len(store), np.nan)
        if self.prices is None or not len(self.prices):
            return out
        if self._price is None:
            pcodes = self.encode(self.prices["sku"])
            pl_index = pd.Index(pd.unique(self.prices["pricelist_id"].to_numpy(dtype=np.int64)))
            loc_pl = pl_index.get_indexer(pd.to_numeric(self.locations["pricelist_id"], errors="coerce")
                                          .to_numpy(dtype=float)).astype(np.int64)
            width = self.n_skus
            pkey = pl_index.get_indexer(self.prices["pricelist_id"].to_numpy(dtype=np.int64)) * width + pcodes
            pval = self.prices["price"].to_numpy(dtype=float)
            if len(pl_index) * width <= _DENSE_LIMIT:
                table = np.full(len(pl_index) * width, np.nan)
                table[pkey] = pval
                self._price = (loc_pl, width, table, np.empty(0, np.int64), np.empty(0))
            else:
                ukey, first = np.unique(pkey, return_index=True)
                self._price = (loc_pl, width, None, ukey, pval[first])
        loc_pl, width, table, ukey, uval = self._price
        row_pl = np.where(store >= 0, loc_pl[np.clip(store, 0, None)], -1)
        ok = (row_pl >= 0) & (sku >= 0) & (sku < width)
        key = row_pl[ok] * width + sku[ok]
        if table is not None:
            out[ok] = table[key]
        elif len(ukey):
            pos = np.clip(np.searchsorted(ukey, key), 0, len(ukey) - 1)
            hit = ukey[pos] == key
            vals = np.full(len(key), np.nan)
            vals[hit] = uval[pos[hit]]
            out[ok] = vals
        return out


def _keys(keys: KeySpace | None, locations: pd.DataFrame, prices: pd.DataFrame | None) -> KeySpace:
    return keys if keys is not None else KeySpace(locations, prices)


def _group(space: int, parts: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Union of integer keys over several parts, ascending, and per part the sum of its weights (count
    when None) per key."""
    rows = sum(len(k) for k, _ in parts)
    if space <= max(_DENSE_LIMIT // 4, 4 * rows):
        present = np.zeros(space, dtype=bool)
        for k, _ in parts:
            present[k] = True
        ukeys = np.flatnonzero(present)
        sums = [np.bincount(k, weights=w, minlength=space)[ukeys].astype(float) for k, w in parts]
        return ukeys, sums
    allk = np.concatenate([k for k, _ in parts]) if parts else np.empty(0, np.int64)
    ukeys, inv = np.unique(allk, return_inverse=True)
    sums, start = [], 0
    for k, w in parts:
        sums.append(np.bincount(inv[start:start + len(k)], weights=w, minlength=len(ukeys)).astype(float))
        start += len(k)
    return ukeys, sums


def _col(df: pd.DataFrame, name: str, mask: np.ndarray | None = None, dtype: Any = float) -> np.ndarray:
    a = df[name].to_numpy(dtype=dtype)
    return a if mask is None else _take(a, mask)


def _take(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """a[mask], without a copy when every row is kept (the usual case: one day, stores only)."""
    return a if mask.all() else a[mask]


def _pair_key(store: np.ndarray, sku: np.ndarray, width: int) -> np.ndarray:
    key = store * width
    key += sku
    return key


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
    return df


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_findings()
    return sort_findings(rank_findings(pd.concat(frames, ignore_index=True).astype(FINDING_DTYPES)))


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
            sub = findings.loc[drift, ["location_id", "sku", "quantity_pos"]]
            st = sell_through[sell_through["sku"].isin(pd.unique(sub["sku"])).to_numpy()]
            st = st.groupby(["location_id", "sku"], as_index=False, sort=False, observed=True)["units_sold_recent"].sum()
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
                   pos_sale_lines: pd.DataFrame | None = None, pos_movements: pd.DataFrame | None = None,
                   business_date: str | None = None, keys: KeySpace | None = None) -> pd.Index:
    """Every SKU the POS knows on the day: in its catalog, stock snapshot, sale lines or stock movements."""
    frames = [df for df in (pos_catalog, pos_stock, pos_sale_lines, pos_movements) if df is not None and len(df)]
    if not frames:
        return pd.Index([], dtype=object)
    k = keys if keys is not None else KeySpace(pd.DataFrame(columns=["location_id", "fulfillment_node_id",
                                                                       "warehouse_id"]))
    for df in frames:
        k.sku(df)
    present = np.zeros(k.n_skus, dtype=bool)
    for df in frames:
        present[k.sku(df)[k.day(df, business_date)]] = True
    return pd.Index(k.skus[present])


def _catalog_masks(k: KeySpace, centra_catalog: pd.DataFrame, business_date: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(known to Centra, active in Centra) over the current SKU codes."""
    day = k.day(centra_catalog, business_date)
    codes = k.sku(centra_catalog)[day]
    active = centra_catalog["is_active"].fillna(False).astype(bool).to_numpy()[day]
    return k.presence(codes), k.presence(codes[active])


def _comparable(k: KeySpace, business_date: str | None, centra_catalog: pd.DataFrame | None,
                pos_known: Collection[str] | None) -> np.ndarray | None:
    """Per SKU code: comparable (active in Centra and known to the POS, for the inputs given); None = all."""
    if centra_catalog is None and pos_known is None:
        return None
    known = k.encode(_obj(list(pos_known))) if pos_known is not None else None
    active = _catalog_masks(k, centra_catalog, business_date)[1] if centra_catalog is not None else None
    ok = np.ones(k.n_skus, dtype=bool)
    if active is not None:
        ok[: len(active)] &= active
        ok[len(active):] = False
    if known is not None:
        ok &= k.presence(known)
    return ok


def _allowed(ok: np.ndarray | None, codes: np.ndarray) -> np.ndarray:
    if ok is None:
        return np.ones(len(codes), dtype=bool)
    inside = (codes >= 0) & (codes < len(ok))
    out = np.zeros(len(codes), dtype=bool)
    out[inside] = ok[codes[inside]]
    return out


# ------------------------------------------------------------------------------------------- stock drift


def stock_drift(business_date: str, pos_stock: pd.DataFrame, centra_stock: pd.DataFrame,
                locations: pd.DataFrame, prices: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                centra_catalog: pd.DataFrame | None = None, pos_known: Collection[str] | None = None,
                keys: KeySpace | None = None) -> pd.DataFrame:
    """POS on-hand vs Centra physical per (store, SKU) at the day's cut-off.

    pos_stock: business_date, location_id | fulfillment_node_id, sku, on_hand.
    centra_stock: business_date, warehouse_id, sku, physical (store warehouses only; the DC is ignored).
    A key missing on one side counts as 0 there. diff = physical - on_hand; diff > units tolerance ->
    stock_drift_oversell, diff < -tolerance -> stock_drift_lost_sales; value = |diff| x the store's
    price-list price (0 when the store has no price). SKUs that are orphans are not drift: with
    ``centra_catalog`` only SKUs active in Centra are compared, with ``pos_known`` only SKUs the POS knows.
    """
    k = _keys(keys, locations, prices)
    ps_all, cs_all = k.store(pos_stock), k.store_by_warehouse(centra_stock)
    pm = k.day(pos_stock, business_date) & (ps_all >= 0)
    cm = k.day(centra_stock, business_date) & (cs_all >= 0)
    psku, csku = _take(k.sku(pos_stock), pm), _take(k.sku(centra_stock), cm)
    ok = _comparable(k, business_date, centra_catalog, pos_known)
    width = k.n_skus + 1
    ukeys, (qp, qc) = _group(len(locations) * width, [
        (_pair_key(_take(ps_all, pm), psku, width), _col(pos_stock, "on_hand", pm, None)),
        (_pair_key(_take(cs_all, cm), csku, width), _col(centra_stock, "physical", cm, None))])
    diff = qc - qp
    sel = np.flatnonzero(_over(diff, tolerance.units))
    sel = sel[_allowed(ok, ukeys[sel] % width)]
    if not len(sel):
        return empty_findings()
    loc, sku, qp, qc, diff = ukeys[sel] // width, ukeys[sel] % width, qp[sel], qc[sel], diff[sel]
    price = k.price(loc, sku)
    p0 = np.nan_to_num(price)
    detail = np.asarray([f"on_hand={int(a)};physical={int(b)};unit_price={_fmt(p)}"
                         for a, b, p in zip(qp, qc, price, strict=True)], dtype=object)
    out = []
    for ft, mask in ((m.STOCK_DRIFT_OVERSELL, diff > 0), (m.STOCK_DRIFT_LOST_SALES, diff < 0)):
        if mask.any():
            out.append(_findings(ft, business_date, locations, loc[mask], value=np.abs(diff[mask]) * p0[mask],
                                 sku=k.skus[sku[mask]], quantity_pos=qp[mask], quantity_commerce=qc[mask],
                                 amount_pos=qp[mask] * p0[mask], amount_commerce=qc[mask] * p0[mask],
                                 detail=detail[mask]))
    return _concat(out)


# ------------------------------------------------------------------------------------------- sync


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
    out = []
    for ft, mask in ((m.SYNC_MISSING_IN_COMMERCE, missing), (m.SYNC_UNEXPECTED_IN_COMMERCE, ~missing)):
        if mask.any():
            out.append(_findings(ft, business_date, locations, loc[mask], value=np.abs(diff[mask]) * price[mask],
                                 sku=k.skus[sku[mask]], quantity_pos=pnet[mask], quantity_commerce=cnet[mask],
                                 amount_pos=pnet[mask] * price[mask], amount_commerce=cnet[mask] * price[mask],
                                 detail=detail[mask]))
    return _concat(out)


# ------------------------------------------------------------------------------------------- orphans


def _rows_of(k: KeySpace, df: pd.DataFrame | None, business_date: str | None, wanted: np.ndarray,
             by_warehouse: bool = False) -> np.ndarray:
    """Indices of the day's store rows of ``df`` whose SKU code is flagged in ``wanted``."""
    if df is None or not len(df):
        return np.empty(0, dtype=np.int64)
    store = k.store_by_warehouse(df) if by_warehouse else k.store(df)
    return np.flatnonzero(k.day(df, business_date) & (store >= 0) & _allowed(wanted, k.sku(df)))


def orphan_skus(business_date: str, centra_catalog: pd.DataFrame, locations: pd.DataFrame,
                prices: pd.DataFrame, *, pos_catalog: pd.DataFrame | None = None,
                pos_stock: pd.DataFrame | None = None, pos_sale_lines: pd.DataFrame | None = None,
                pos_movements: pd.DataFrame | None = None, centra_stock: pd.DataFrame | None = None,
                pos_known: Collection[str] | None = None, report_unstocked_commerce_skus: bool = True,
                keys: KeySpace | None = None) -> pd.DataFrame:
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
    k = _keys(keys, locations, prices)
    d = business_date
    pos_frames = [f for f in (pos_catalog, pos_stock, pos_sale_lines, pos_movements) if f is not None and len(f)]
    for f in pos_frames + ([centra_stock] if centra_stock is not None else []):
        k.sku(f)
    in_c, active_c = _catalog_masks(k, centra_catalog, d)
    n = k.n_skus
    if pos_known is not None:
        known = k.presence(k.encode(_obj(list(pos_known))))
        n = k.n_skus
    else:
        known = k.presence(np.concatenate([k.sku(f)[k.day(f, d)] for f in pos_frames])) if pos_frames \
            else np.zeros(n, dtype=bool)
    in_c, active_c, known = (np.pad(a, (0, n - len(a))) for a in (in_c, active_c, known))
    unknown = known & ~in_c
    orphan = unknown | (known & in_c & ~active_c)
    out: list[pd.DataFrame] = []
    if orphan.any():
        parts = []
        if pos_stock is not None:
            i = _rows_of(k, pos_stock, d, orphan)
            parts.append(pd.DataFrame({"loc": k.store(pos_stock)[i], "sku": k.sku(pos_stock)[i],
                                       "on_hand": k.col(pos_stock, "on_hand")[i]}))
        if pos_sale_lines is not None and len(pos_sale_lines):
            i = _rows_of(k, pos_sale_lines, d, orphan)
            sale = k.eq(pos_sale_lines, "kind", "sale")[i]
            qty = k.col(pos_sale_lines, "quantity")[i]
            gross = k.col(pos_sale_lines, "unit_price")[i] * qty
            parts.append(pd.DataFrame({
                "loc": k.store(pos_sale_lines)[i], "sku": k.sku(pos_sale_lines)[i], "sold": np.where(sale, qty, 0.0),
                "sold_gross": np.where(sale, gross, 0.0),
                "sold_value": np.where(sale, gross - k.col(pos_sale_lines, "discount")[i], 0.0), "lines": 1.0}))
        if pos_movements is not None and len(pos_movements):
            i = _rows_of(k, pos_movements, d, orphan)
            parts.append(pd.DataFrame({"loc": k.store(pos_movements)[i], "sku": k.sku(pos_movements)[i], "moves": 1.0}))
        act = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"loc": [], "sku": []})
        for c in ("on_hand", "sold", "sold_gross", "sold_value", "lines", "moves"):
            if c not in act.columns:
                act[c] = 0.0
        act = act.fillna(0.0).groupby(["loc", "sku"], as_index=False, sort=True).sum()
        act = act[(act["on_hand"] != 0) | (act["lines"] > 0) | (act["moves"] > 0)]
        loc, sku = act["loc"].to_numpy(dtype=np.int64), act["sku"].to_numpy(dtype=np.int64)
        price = k.price(loc, sku)
        sold = act["sold"].to_numpy(dtype=float)
        avg = np.divide(act["sold_gross"].to_numpy(dtype=float), sold, out=np.full(len(act), np.nan), where=sold > 0)
        unit = np.where(np.isnan(price), avg, price)
        on_hand = act["on_hand"].to_numpy(dtype=float)
        value = np.clip(on_hand, 0, None) * np.nan_to_num(unit) + act["sold_value"].to_numpy(dtype=float)
        qc = None
        if centra_stock is not None and len(centra_stock):
            i = _rows_of(k, centra_stock, d, orphan, by_warehouse=True)
            c = pd.DataFrame({"loc": k.store_by_warehouse(centra_stock)[i], "sku": k.sku(centra_stock)[i],
                              "physical": k.col(centra_stock, "physical")[i]})
            c = c.groupby(["loc", "sku"], as_index=False, sort=False)["physical"].sum()
            qc = act[["loc", "sku"]].merge(c, how="left", on=["loc", "sku"])["physical"].fillna(0).to_numpy()
        is_unknown = unknown[sku]
        detail = np.asarray([f"units_sold={int(s)};sold_value={v:.2f};unit_price={_fmt(u)}"
                             for s, v, u in zip(sold, act["sold_value"], unit, strict=True)], dtype=object)
        for ft, mask in ((m.ORPHAN_POS_UNKNOWN, is_unknown), (m.ORPHAN_POS_INACTIVE, ~is_unknown)):
            if mask.any():
                out.append(_findings(ft, business_date, locations, loc[mask], value=value[mask],
                                     sku=k.skus[sku[mask]], quantity_pos=on_hand[mask],
                                     quantity_commerce=None if qc is None else qc[mask], amount_pos=value[mask],
                                     detail=detail[mask]))
        if pos_catalog is not None and len(pos_catalog):
            listed = k.presence(k.sku(pos_catalog)[k.day(pos_catalog, d)], n) & orphan
            listed[sku] = False
            for ft, flag in ((m.ORPHAN_POS_UNKNOWN, listed & unknown), (m.ORPHAN_POS_INACTIVE, listed & ~unknown)):
                if flag.any():
                    names = np.sort(k.skus[np.flatnonzero(flag)].astype(str)).astype(object)
                    out.append(_findings(ft, business_date, locations, np.full(len(names), -1),
                                         value=np.zeros(len(names)), sku=names,
                                         detail=["in the POS catalog; no store stock or activity on the day"] * len(names)))
    commerce = active_c & ~known
    if commerce.any():
        stocked = np.zeros(n, dtype=bool)
        if centra_stock is not None and len(centra_stock):
            i = _rows_of(k, centra_stock, d, commerce, by_warehouse=True)
            c = pd.DataFrame({"loc": k.store_by_warehouse(centra_stock)[i], "sku": k.sku(centra_stock)[i],
                              "physical": k.col(centra_stock, "physical")[i]})
            c = c.groupby(["loc", "sku"], as_index=False, sort=True)["physical"].sum()
            c = c[c["physical"] != 0]
            if len(c):
                loc, sku = c["loc"].to_numpy(dtype=np.int64), c["sku"].to_numpy(dtype=np.int64)
                stocked[sku] = True
                phys = c["physical"].to_numpy(dtype=float)
                price = k.price(loc, sku)
                out.append(_findings(m.ORPHAN_COMMERCE_UNKNOWN, business_date, locations, loc,
                                     value=np.abs(phys) * np.nan_to_num(price), sku=k.skus[sku],
                                     quantity_pos=np.zeros(len(c)), quantity_commerce=phys,
                                     amount_commerce=phys * np.nan_to_num(price),
                                     detail=[f"physical={int(p)};unit_price={_fmt(u)}"
                                             for p, u in zip(phys, price, strict=True)]))
        rest = commerce & ~stocked
        if report_unstocked_commerce_skus and rest.any():
            names = np.sort(k.skus[np.flatnonzero(rest)].astype(str)).astype(object)
            out.append(_findings(m.ORPHAN_COMMERCE_UNKNOWN, business_date, locations, np.full(len(names), -1),
                                 value=np.zeros(len(names)), sku=names,
                                 detail=["active in Centra; no store warehouse stock"] * len(names)))
    return _concat(out)


# ------------------------------------------------------------------------------------------- store sales


def _derive_rates(qty: np.ndarray, unit: np.ndarray, disc: np.ndarray, tax: np.ndarray, country: np.ndarray,
                  rates: np.ndarray, tolerance: Tolerance) -> np.ndarray:
    gross = unit * qty
    expected = (gross - disc) * country / (1.0 + country)
    consistent = ~_over(tax - expected, tolerance.money + tolerance.tax_rounding_per_unit * np.abs(qty))
    out = country.copy()
    odd = np.flatnonzero(~consistent)
    if len(odd):
        base = gross[odd] - disc[odd] - tax[odd]
        derived = np.divide(tax[odd], base, out=np.full(len(odd), np.nan), where=np.abs(base) > 0.005)
        idx = np.clip(np.searchsorted(rates, derived), 1, max(len(rates) - 1, 1))
        lo, hi = rates[idx - 1], rates[np.minimum(idx, len(rates) - 1)]
        nearest = np.where(np.abs(derived - lo) <= np.abs(hi - derived), lo, hi)
        out[odd] = np.where(np.isnan(derived), out[odd], nearest)
    return out


def _rates(locations: pd.DataFrame, tax_rates: Iterable[float] | None) -> np.ndarray:
    return np.array(sorted(set(float(r) for r in (tax_rates or ())) | set(locations["tax_rate"].astype(float))))


def derive_tax_rates(lines: pd.DataFrame, loc_codes: np.ndarray, locations: pd.DataFrame,
                     tax_rates: Iterable[float] | None, tolerance: Tolerance) -> np.ndarray:
    """Tax rate of each sale line: the store country's rate when the line's tax matches it (within the
    tax tolerance), else the estate rate nearest to tax / (gross - discount - tax); the country rate when
    that base is ~0."""
    return _derive_rates(_col(lines, "quantity"), _col(lines, "unit_price"), _col(lines, "discount"),
                         _col(lines, "tax"), locations["tax_rate"].to_numpy(dtype=float)[loc_codes],
                         _rates(locations, tax_rates), tolerance)


def store_sales(business_date: str, pos_sale_lines: pd.DataFrame, downstream: pd.DataFrame,
                locations: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                tax_rates: Iterable[float] | None = None, keys: KeySpace | None = None) -> pd.DataFrame:
    """Store sales of the day vs what was recorded downstream, per (store, business_date, tax_rate).

    pos_sale_lines: business_date, location_id | fulfillment_node_id, transaction_id, kind, quantity,
        unit_price, discount, tax, net_amount (kind='sale' rows are used).
    downstream: location_id | fulfillment_node_id, business_date, tax_rate, count, gross, discount, tax, net.
    POS side per group: count = distinct transactions, gross = sum(unit_price x quantity), discount, tax,
    net = sum(net_amount); tax_rate per line from :func:`derive_tax_rates`. A group on one side only counts
    0 on the other. A finding when the counts differ or any amount differs by more than the money
    tolerance; value = the largest absolute amount difference. Downstream rows of unknown stores are ignored.
    """
    k = _keys(keys, locations, None)
    store = k.store(pos_sale_lines)
    mask = k.day(pos_sale_lines, business_date) & k.eq(pos_sale_lines, "kind", "sale") & (store >= 0)
    loc = store[mask]
    qty, unit = k.col(pos_sale_lines, "quantity")[mask], k.col(pos_sale_lines, "unit_price")[mask]
    disc, tax = k.col(pos_sale_lines, "discount")[mask], k.col(pos_sale_lines, "tax")[mask]
    rates = _rates(locations, tax_rates)
    rate = _derive_rates(qty, unit, disc, tax, locations["tax_rate"].to_numpy(dtype=float)[loc], rates, tolerance)
    nr = len(rates)
    space = len(locations) * nr
    gcode = loc * nr + np.clip(np.searchsorted(rates, rate), 0, nr - 1)  # derived rates are members of rates
    tcodes, tuniq = k.codes(pos_sale_lines, "transaction_id")
    tcodes, nt = tcodes[mask], len(tuniq)
    owner = np.full(nt, -1, dtype=np.int64)  # one group per transaction; lines elsewhere counted apart
    owner[tcodes] = gcode
    count = np.bincount(owner[owner >= 0], minlength=space)
    other = gcode != owner[tcodes]
    if other.any():
        count += np.bincount(pd.unique(gcode[other] * nt + tcodes[other]) // nt, minlength=space)
    present = np.flatnonzero(np.bincount(gcode, minlength=space))
    sums = {c: np.bincount(gcode, weights=w, minlength=space)[present] for c, w in (
        ("gross", unit * qty), ("discount", disc), ("tax", tax),
        ("net", k.col(pos_sale_lines, "net_amount")[mask]))}
    pos = pd.DataFrame({"loc": present // nr, "rate_key": np.rint(rates[present % nr] * 10_000).astype(np.int64),
                        "count": count[present], **sums})
    dmask = k.day(downstream, business_date) & (k.store(downstream) >= 0)
    ds = pd.DataFrame({
        "loc": k.store(downstream)[dmask], "rate_key": np.rint(_col(downstream, "tax_rate", dmask) * 10_000).astype(np.int64),
        **{c: _col(downstream, c, dmask) for c in ("count", "gross", "discount", "tax", "net")},
    }).groupby(["loc", "rate_key"], as_index=False, sort=False).sum()
    j = pos.merge(ds, how="outer", on=["loc", "rate_key"], suffixes=("_pos", "_ds")).fillna(0.0)
    measures = ("gross", "discount", "tax", "net")
    diffs = np.column_stack([j[f"{c}_ds"].to_numpy() - j[f"{c}_pos"].to_numpy() for c in measures])
    bad = _over(diffs, tolerance.money).any(axis=1) | (j["count_ds"].to_numpy() != j["count_pos"].to_numpy())
    j, diffs = j[bad], diffs[bad]
    if not len(j):
        return empty_findings()
    detail = [";".join(f"{c}_diff={d:.2f}" for c, d in zip(measures, row, strict=True)) for row in diffs]
    return _concat([_findings(
        m.STORE_SALES_MISMATCH, business_date, locations, j["loc"].to_numpy(dtype=np.int64),
        value=np.abs(diffs).max(axis=1), tax_rate=j["rate_key"].to_numpy() / 10_000,
        quantity_pos=j["count_pos"].to_numpy(), quantity_commerce=j["count_ds"].to_numpy(),
        amount_pos=j["gross_pos"].to_numpy(), amount_commerce=j["gross_ds"].to_numpy(), detail=detail)])


# ------------------------------------------------------------------------------------------- returns


def returns_and_refunds(business_date: str, pos_sale_lines: pd.DataFrame, locations: pd.DataFrame,
                        tolerance: Tolerance = DEFAULT_TOLERANCE, *, centra_returns: pd.DataFrame | None = None,
                        centra_return_lines: pd.DataFrame | None = None,
                        store_sale_transaction_ids: Iterable[str] | None = None,
                        store_returns_only: bool = True, keys: KeySpace | None = None) -> pd.DataFrame:
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
    k = _keys(keys, locations, None)
    lines = pos_sale_lines
    ri = np.flatnonzero(k.eq(lines, "kind", "return"))
    if not len(ri):
        return empty_findings()
    ret = lines.iloc[ri]
    ref = _norm_ref(ret["original_order_ref"]) if "original_order_ref" in ret.columns else np.full(len(ri), None)
    tid = _obj(ret["transaction_id"])
    candidates = pd.unique(np.concatenate([ref[~pd.isna(ref)], tid]))
    sale_rows = k.eq(lines, "kind", "sale") & lines["transaction_id"].isin(candidates).to_numpy()
    sales = pd.Index(pd.unique(_obj(lines["transaction_id"])[sale_rows])).append(
        pd.Index(list(store_sale_transaction_ids or ()), dtype=object))
    store_origin = pd.Index(ref).isin(sales) | pd.Index(tid).isin(sales)
    today = k.day(lines, business_date)[ri]
    loc = k.store(lines)[ri]
    sku = _obj(ret["sku"])
    refund = _col(ret, "net_amount") + _col(ret, "tax")
    qty, rtax = _col(ret, "quantity"), _col(ret, "tax")
    no_ref = pd.isna(ref)
    out: list[pd.DataFrame] = []
    sel = today & no_ref & ~store_origin
    if sel.any():
        idx = np.flatnonzero(sel)
        out.append(_findings(m.RETURN_WITHOUT_ORDER_REF, business_date, locations, loc[idx], value=refund[idx],
                             location_ids=_obj(ret["location_id"])[idx] if "location_id" in ret.columns else None,
                             sku=sku[idx], transaction_id=tid[idx], quantity_pos=qty[idx], amount_pos=refund[idx],
                             detail=[f"refund_tax={t:.2f}" for t in rtax[idx]]))
    linked = ~no_ref & ~store_origin
    refs_today = pd.unique(ref[linked & today])
    if len(refs_today) and centra_return_lines is not None:
        keep = linked & pd.Index(ref).isin(refs_today)
        p = pd.DataFrame({"order_ref": ref[keep], "sku": sku[keep], "qty": qty[keep], "amount": refund[keep],
                          "tax": rtax[keep], "today": today[keep], "loc": loc[keep], "transaction_id": tid[keep]})
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
        cq, ca, ct = (j[c].fillna(0).to_numpy(dtype=float) for c in ("c_qty", "c_amount", "c_tax"))
        pq, pa, pt = (j[c].to_numpy(dtype=float) for c in ("qty", "amount", "tax"))
        amount_bad = found & (_over(cq - pq, tolerance.units) | _over(ca - pa, tolerance.money))
        tax_bad = found & ~amount_bad & _over(ct - pt, tolerance.money + tolerance.tax_rounding_per_unit * pq)
        lc = j["loc"].to_numpy(dtype=np.int64)
        ids = {"sku": _obj(j["sku"]), "order_ref": _obj(j["order_ref"]), "transaction_id": _obj(j["transaction_id"])}
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
                                     **{c: v[mask] for c, v in ids.items()}, quantity_pos=pq[mask],
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
                      "qty": _col(cl, "quantity"), "value": _col(cl, "line_value"),
                      "rate": _col(cl, "tax_percent") / 100.0})
    c["refunded"] = True
    if headers is not None and len(headers):
        h = headers.drop_duplicates("return_id", keep="last").set_index("return_id")
        hit = h.reindex(c["return_id"])
        if "refunded" in h.columns:
            c["refunded"] = hit["refunded"].astype("boolean").fillna(False).astype(bool).to_numpy()
        if store_returns_only and "return_warehouse_id" in h.columns:
            wh = pd.to_numeric(hit["return_warehouse_id"], errors="coerce").to_numpy(dtype=float)
            c = c[np.isnan(wh) | np.isin(wh, locations["warehouse_id"].to_numpy(dtype=float))]
    c["amount"] = np.where(c["refunded"], c["value"], 0.0)
    c["tax"] = np.where(c["refunded"], c["value"] * c["rate"] / (1.0 + c["rate"]), 0.0)
    g = c.groupby(["order_ref", "sku"], sort=False).agg(
        c_qty=("qty", "sum"), c_amount=("amount", "sum"), c_tax=("tax", "sum"), c_lines=("qty", "size"),
        c_returns=("return_id", "nunique"), c_refunded=("refunded", "sum")).reset_index()
    return g[cols]


# ------------------------------------------------------------------------------------------- click & collect


def click_collect(business_date: str, pickups: pd.DataFrame, centra_orders: pd.DataFrame | None,
                  locations: pd.DataFrame, fx_to_base: Mapping[str, float] | None = None, *,
                  terminal_statuses: Collection[str] = ("SHIPPED",), keys: KeySpace | None = None) -> pd.DataFrame:
    """Pickups completed in a store whose online order is not in its terminal state in Centra.

    pickups: order_number, location_id | fulfillment_node_id, completed_at (the day's completions, as given).
    centra_orders: order_number, status, grand_total, currency (latest row per order wins).
    Not in ``terminal_statuses`` (or not found) -> click_collect_open, value = the order's grand total in
    the store's currency (converted through fx_to_base when the order currency differs; 0 when not found).
    """
    if not len(pickups):
        return empty_findings()
    k = _keys(keys, locations, None)
    pk = pickups.reset_index(drop=True)
    ref = _norm_ref(pk["order_number"])
    if centra_orders is not None and len(centra_orders):
        o = pd.DataFrame({"order_ref": _norm_ref(centra_orders["order_number"]),
                          "status": _obj(centra_orders["status"]),
                          "grand_total": _col(centra_orders, "grand_total"),
                          "order_currency": _obj(centra_orders["currency"])})
        o = o[pd.Index(o["order_ref"]).isin(ref)].drop_duplicates("order_ref", keep="last")
    else:
        o = pd.DataFrame(columns=["order_ref", "status", "grand_total", "order_currency"])
    j = pd.DataFrame({"order_ref": ref}).merge(o, how="left", on="order_ref")
    status = j["status"].to_numpy(dtype=object)
    found = ~pd.isna(status)
    open_ = ~(found & pd.Index(status).isin(list(terminal_statuses)))
    if not open_.any():
        return empty_findings()
    loc = k.store(pk)
    fx = dict(fx_to_base or {})
    store_cur = np.where(loc >= 0, _obj(locations["currency"])[np.clip(loc, 0, None)], None)
    ocur = j["order_currency"].to_numpy(dtype=object)
    total = j["grand_total"].to_numpy(dtype=float)
    rate = np.array([1.0 if (s is None or o_ == s) else fx.get(o_, np.nan) / fx.get(s, np.nan)
                     for o_, s in zip(ocur, store_cur, strict=True)], dtype=float)
    value = np.where(found, total * np.where(np.isnan(rate), 1.0, rate), 0.0)
    when = pk["completed_at"].to_numpy(dtype=object) if "completed_at" in pk.columns else np.full(len(pk), "")
    detail = np.asarray([f"status={s if f else 'MISSING'};order_total={_fmt(t)} {c if f else ''};completed_at={w}"
                         for s, f, t, c, w in zip(status, found, total, ocur, when, strict=True)], dtype=object)
    idx = np.flatnonzero(open_)
    return _concat([_findings(
        m.CLICK_COLLECT_OPEN, business_date, locations, loc[idx], value=value[idx],
        location_ids=_obj(pk["location_id"])[idx] if "location_id" in pk.columns else None, order_ref=ref[idx],
        amount_commerce=value[idx], detail=detail[idx], currency=ocur[idx],
        fx=np.array([fx.get(c, np.nan) for c in ocur[idx]], dtype=float))])


# ------------------------------------------------------------------------------------------- sale lines


def sale_line_checks(business_date: str, pos_sale_lines: pd.DataFrame, locations: pd.DataFrame,
                     prices: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                     allowed_discount_rates: Iterable[float] | None = None,
                     keys: KeySpace | None = None) -> pd.DataFrame:
    """Line-level checks of the day's store sale lines (kind='sale').

    pos_sale_lines: business_date, transaction_id, line_no, location_id | fulfillment_node_id, sku, kind,
        quantity, unit_price (incl. tax), discount, tax, original_order_ref (optional).
    - price_off_pricelist: |unit_price - the store's price-list price| > money tolerance (lines whose SKU
      has no price are skipped); value = |unit diff| x quantity.
    - line_tax_mismatch: |tax - (unit_price x quantity - discount) x r/(1+r)| > money + rounding x quantity,
      r = the store country's rate; value = |tax diff|.
    - line_discount_mismatch: discount < 0 or > unit_price x quantity (beyond money tolerance), or, with
      ``allowed_discount_rates`` (fractions, 0 always allowed), discount not within money tolerance of
      gross x an allowed rate; expected = the discount clipped to [0, gross] / the nearest allowed amount,
      value = |discount - expected|.
    """
    k = _keys(keys, locations, prices)
    store = k.store(pos_sale_lines)
    rows = np.flatnonzero(k.day(pos_sale_lines, business_date) & k.eq(pos_sale_lines, "kind", "sale") & (store >= 0))
    if not len(rows):
        return empty_findings()
    loc = store[rows]
    qty, unit = k.col(pos_sale_lines, "quantity")[rows], k.col(pos_sale_lines, "unit_price")[rows]
    disc, tax = k.col(pos_sale_lines, "discount")[rows], k.col(pos_sale_lines, "tax")[rows]
    gross = unit * qty
    rate = locations["tax_rate"].to_numpy(dtype=float)[loc]
    price = k.price(loc, k.sku(pos_sale_lines)[rows])
    out: list[pd.DataFrame] = []

    def emit(ft: FindingType, bad: np.ndarray, value: np.ndarray, a_pos: np.ndarray, a_com: np.ndarray,
             detail: Iterable[str], tax_rate: np.ndarray | None = None) -> None:
        idx = np.flatnonzero(bad)
        sub = pos_sale_lines.iloc[rows[idx]]
        line_no = sub["line_no"].to_numpy() if "line_no" in sub.columns else np.full(len(idx), "")
        oref = _norm_ref(sub["original_order_ref"]) if "original_order_ref" in sub.columns else None
        out.append(_findings(ft, business_date, locations, loc[idx], value=value[idx], sku=_obj(sub["sku"]),
                             transaction_id=_obj(sub["transaction_id"]), order_ref=oref,
                             tax_rate=None if tax_rate is None else tax_rate[idx], quantity_pos=qty[idx],
                             amount_pos=a_pos[idx], amount_commerce=a_com[idx],
                             detail=[f"line_no={n};{d}" for n, d in zip(line_no, detail, strict=True)]))

    bad = ~np.isnan(price) & _over(unit - np.nan_to_num(price), tolerance.money)
    if bad.any():
        emit(m.PRICE_OFF_PRICELIST, bad, np.abs(unit - price) * qty, gross, price * qty,
             [f"unit_price={u:.2f};list_price={p:.2f}" for u, p in zip(unit[bad], price[bad], strict=True)])
    expected_tax = (gross - disc) * rate / (1.0 + rate)
    bad = _over(tax - expected_tax, tolerance.money + tolerance.tax_rounding_per_unit * np.abs(qty))
    if bad.any():
        emit(m.LINE_TAX_MISMATCH, bad, tax - expected_tax, tax, expected_tax,
             [f"tax={t:.2f};expected={e:.2f};rate={r}" for t, e, r in zip(tax[bad], expected_tax[bad], rate[bad],
                                                                          strict=True)], tax_rate=rate)
    expected_disc = np.clip(disc, 0.0, np.maximum(gross, 0.0))
    if allowed_discount_rates is not None:
        allowed = np.array(sorted(set(float(r) for r in allowed_discount_rates) | {0.0}))
        share = np.divide(disc, gross, out=np.zeros(len(disc)), where=gross > 0)
        idx = np.clip(np.searchsorted(allowed, share), 1, max(len(allowed) - 1, 1))
        lo, hi = allowed[idx - 1], allowed[np.minimum(idx, len(allowed) - 1)]
        nearest = np.where(np.abs(share - lo) <= np.abs(hi - share), lo, hi) * gross
        expected_disc = np.where((disc >= 0) & (disc <= gross), nearest, expected_disc)
    bad = _over(disc - expected_disc, tolerance.money)
    if bad.any():
        reason = np.where(disc[bad] < 0, "negative", np.where(disc[bad] > gross[bad], "exceeds_gross",
                                                              "rate_not_allowed"))
        emit(m.LINE_DISCOUNT_MISMATCH, bad, disc - expected_disc, disc, expected_disc,
             [f"discount={d:.2f};gross={g:.2f};reason={r}" for d, g, r in zip(disc[bad], gross[bad], reason,
                                                                              strict=True)])
    return _concat(out)
