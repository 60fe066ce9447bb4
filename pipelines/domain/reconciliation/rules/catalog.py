"""SKU sets (what the POS knows, what Centra has active) and the orphan-SKU rule."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import FindingType
from pipelines.domain.reconciliation.rules.frames import _concat, _findings, _fmt
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys, _obj


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
    pos_frames = [f for f in (pos_catalog, pos_stock, pos_sale_lines, pos_movements) if f is not None and len(f)]
    for f in pos_frames + ([centra_stock] if centra_stock is not None else []):
        k.sku(f)
    in_c, active_c = _catalog_masks(k, centra_catalog, business_date)
    n = k.n_skus
    if pos_known is not None:
        known = k.presence(k.encode(_obj(list(pos_known))))
        n = k.n_skus
    else:
        known = k.presence(np.concatenate([k.sku(f)[k.day(f, business_date)] for f in pos_frames])) \
            if pos_frames else np.zeros(n, dtype=bool)
    in_c, active_c, known = (np.pad(a, (0, n - len(a))) for a in (in_c, active_c, known))
    unknown = known & ~in_c
    orphan = unknown | (known & in_c & ~active_c)
    out: list[pd.DataFrame] = []
    if orphan.any():
        out += _pos_orphans(k, business_date, locations, orphan, unknown, pos_catalog=pos_catalog,
                            pos_stock=pos_stock, pos_sale_lines=pos_sale_lines, pos_movements=pos_movements,
                            centra_stock=centra_stock)
    commerce = active_c & ~known
    if commerce.any():
        out += _commerce_orphans(k, business_date, locations, commerce, centra_stock,
                                 report_unstocked_commerce_skus)
    return _concat(out)


def _pos_activity(k: KeySpace, d: str, orphan: np.ndarray, pos_stock: pd.DataFrame | None,
                  pos_sale_lines: pd.DataFrame | None, pos_movements: pd.DataFrame | None) -> pd.DataFrame:
    """Per (store code, SKU code) of orphan SKUs with POS activity on the day: on_hand, sold units, sold
    gross and value, sale lines and movements."""
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
    return act[(act["on_hand"] != 0) | (act["lines"] > 0) | (act["moves"] > 0)]


def _centra_physical(k: KeySpace, centra_stock: pd.DataFrame, d: str, wanted: np.ndarray,
                     sort: bool) -> pd.DataFrame:
    """Centra physical per (store code, SKU code) of the day's store-warehouse rows of wanted SKUs."""
    i = _rows_of(k, centra_stock, d, wanted, by_warehouse=True)
    c = pd.DataFrame({"loc": k.store_by_warehouse(centra_stock)[i], "sku": k.sku(centra_stock)[i],
                      "physical": k.col(centra_stock, "physical")[i]})
    return c.groupby(["loc", "sku"], as_index=False, sort=sort)["physical"].sum()


def _pos_orphans(k: KeySpace, business_date: str, locations: pd.DataFrame, orphan: np.ndarray,
                 unknown: np.ndarray, *, pos_catalog: pd.DataFrame | None, pos_stock: pd.DataFrame | None,
                 pos_sale_lines: pd.DataFrame | None, pos_movements: pd.DataFrame | None,
                 centra_stock: pd.DataFrame | None) -> list[pd.DataFrame]:
    """The POS-side orphan findings (see :func:`orphan_skus`): per store with activity, then SKU-level."""
    out: list[pd.DataFrame] = []
    act = _pos_activity(k, business_date, orphan, pos_stock, pos_sale_lines, pos_movements)
    loc, sku = act["loc"].to_numpy(dtype=np.int64), act["sku"].to_numpy(dtype=np.int64)
    price = k.price(loc, sku)
    sold = act["sold"].to_numpy(dtype=float)
    avg = np.divide(act["sold_gross"].to_numpy(dtype=float), sold, out=np.full(len(act), np.nan), where=sold > 0)
    unit = np.where(np.isnan(price), avg, price)
    on_hand = act["on_hand"].to_numpy(dtype=float)
    value = np.clip(on_hand, 0, None) * np.nan_to_num(unit) + act["sold_value"].to_numpy(dtype=float)
    qc = None
    if centra_stock is not None and len(centra_stock):
        c = _centra_physical(k, centra_stock, business_date, orphan, sort=False)
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
        listed = k.presence(k.sku(pos_catalog)[k.day(pos_catalog, business_date)], len(orphan)) & orphan
        listed[sku] = False
        for ft, flag in ((m.ORPHAN_POS_UNKNOWN, listed & unknown), (m.ORPHAN_POS_INACTIVE, listed & ~unknown)):
            if flag.any():
                out.append(_sku_level(ft, business_date, locations, k.skus[np.flatnonzero(flag)],
                                      "in the POS catalog; no store stock or activity on the day"))
    return out


def _sku_level(ft: FindingType, business_date: str, locations: pd.DataFrame, skus: np.ndarray,
               detail: str) -> pd.DataFrame:
    """SKU-level findings (no store, value 0), SKUs in text order."""
    names = np.sort(skus.astype(str)).astype(object)
    return _findings(ft, business_date, locations, np.full(len(names), -1), value=np.zeros(len(names)),
                     sku=names, detail=[detail] * len(names))


def _commerce_orphans(k: KeySpace, business_date: str, locations: pd.DataFrame, commerce: np.ndarray,
                      centra_stock: pd.DataFrame | None, report_unstocked: bool) -> list[pd.DataFrame]:
    """The commerce-side orphan findings (see :func:`orphan_skus`): per stocked store warehouse, else
    SKU-level."""
    out: list[pd.DataFrame] = []
    stocked = np.zeros(len(commerce), dtype=bool)
    if centra_stock is not None and len(centra_stock):
        c = _centra_physical(k, centra_stock, business_date, commerce, sort=True)
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
    if report_unstocked and rest.any():
        out.append(_sku_level(m.ORPHAN_COMMERCE_UNKNOWN, business_date, locations, k.skus[np.flatnonzero(rest)],
                              "active in Centra; no store warehouse stock"))
    return out
