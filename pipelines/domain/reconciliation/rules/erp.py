"""The ERP rules (issue 15: an ERP behind the commerce platform): Centra's orders of the day against the ERP's sales
orders, the ERP's shipments against what Centra shows, the ERP's on-hand against Centra's DC stock, and the commerce
SKUs the ERP has no item for (family ``erp``).

Inputs are the frames the loader reads (sql/migrations/0001_core.sql for Centra's, 0018_erp_datasets.sql for the
ERP's):

- ``centra_orders``: business_date, order_id, order_number, status, currency, grand_total, tax_total,
  discount_total, shipping_total. The loader appends Centra's *current* state of older orders (click-and-collect,
  kiosk) to it: those rows carry no ``order_id``/``tax_total`` and are not orders of the day, so they are left out.
- ``erp_orders``: business_date, order_id, order_number, external_ref, currency, customer_number,
  total_including_tax, total_tax, discount_amount, line_count (the ERP's sales orders whose order date is the day;
  every row given is searched, so a loader may add a neighbouring day's orders).
- ``erp_shipments``: business_date, shipment_id, shipment_number, external_ref, units, value, tracking_number,
  carrier, in_commerce, and optionally currency (the ERP document's currency code).
- ``erp_stock``: sku, on_hand (bundles excluded); ``centra_stock``: the `centra_stock_snapshot` rows (warehouse_id,
  sku, physical).
- ``erp_items``: number, variant_code (None: the item itself); ``centra_catalog``: sku, is_active; the estate's
  :class:`~pipelines.domain.erp.mapping.ErpMapping`; ``order_lines`` (optional): `centra_order_lines` (order_number,
  sku, quantity, line_value, currency).

ERP currency codes: "" (or null) is the ERP company's local currency; ``expected_currency`` is the estate's
``erp.currencies`` (commerce currency -> ERP code), read backwards to name an ERP amount's commerce currency.

Sign conventions (model.py): for orders Centra is the "pos" side (the source) and the ERP the "commerce" side (the
downstream record); for shipments and DC stock the ERP is the "pos" side (the master) and Centra the "commerce" side.
Findings of orders and shipments have no store (location null) and are valued in the commerce order's currency,
converted to the base currency through ``fx_to_base`` like the other order rules; DC stock drift is valued in the base
currency at the DC location (``dc_location_id``).

- :func:`erp_orders_vs_commerce`: ``erp_order_missing``, ``erp_order_duplicated``, ``erp_order_total_mismatch``,
  ``erp_order_tax_mismatch``, ``erp_order_discount_mismatch``, ``erp_order_currency_mismatch``;
- :func:`erp_shipments_not_in_commerce`: ``erp_shipment_not_in_commerce``;
- :func:`erp_stock_drift`: ``erp_stock_drift``;
- :func:`erp_mapping_orphans`: ``erp_mapping_orphan``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from pipelines.domain.erp.mapping import ErpMapping
from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance, empty_findings
from pipelines.domain.reconciliation.rules.frames import _EPS, _concat, _findings, _fmt, _norm_ref

#: Centra order statuses due in the ERP: the order is confirmed (the order flow's verification rule needs at least
#: that) and not cancelled. PENDING is not yet verified; CANCELLED never goes to the ERP.
DUE_STATUSES: tuple[str, ...] = ("CONFIRMED", "PROCESSING", "SHIPPED", "ARCHIVED")
LOCAL = "local"  # the detail's word for the ERP code "" (the ERP company's local currency)
NONE = "none"
#: the findings of this module have no store: no store row to take a currency or fx from.
_NO_STORES = pd.DataFrame(columns=["location_id", "currency", "fx_to_base"])


def _no_store(n: int) -> np.ndarray:
    return np.full(n, -1, dtype=np.int64)


def _fx(fx_to_base: Mapping[str, float] | None, currencies: np.ndarray) -> np.ndarray:
    fx = dict(fx_to_base or {})
    return np.array([fx.get(c, np.nan) if isinstance(c, str) else np.nan for c in currencies], dtype=float)


def _nums(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.zeros(len(df))
    return pd.to_numeric(df[col], errors="coerce").fillna(0.0).to_numpy(dtype=float)


def _text(v: object) -> str | None:
    """A text cell, stripped; None for null or blank."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    s = str(v).strip()
    return s or None


def _erp_code(v: object) -> str:
    """An ERP currency code; null is the local currency ("")."""
    return (_text(v) or "").upper()


def _word(v: object) -> str:
    """A value for a key=value detail: ';' and '=' replaced, blank -> "none"."""
    s = _text(v)
    return NONE if s is None else s.replace(";", ",").replace("=", "-")


def _code_word(code: str | None) -> str:
    return "unmapped" if code is None else (LOCAL if code == "" else code)


def day_orders(centra_orders: pd.DataFrame | None, business_date: str,
               statuses: Collection[str] = DUE_STATUSES) -> pd.DataFrame:
    """Centra's orders of the day due in the ERP, one row per order: ref (the order number as text), status,
    currency, grand_total, tax_total, discount_total, shipping_total. Rows of another business_date, and the
    loader's current-state rows of older orders (no order_id or no tax_total), are left out."""
    cols = ["ref", "status", "currency", "grand_total", "tax_total", "discount_total", "shipping_total"]
    if centra_orders is None or not len(centra_orders):
        return pd.DataFrame(columns=cols)
    c = centra_orders
    keep = np.ones(len(c), dtype=bool)
    if "business_date" in c.columns:
        keep &= (c["business_date"].astype(str) == business_date).to_numpy()
    for col in ("order_id", "tax_total"):
        if col in c.columns:
            keep &= c[col].notna().to_numpy()
    c = c[keep]
    out = pd.DataFrame({
        "ref": _norm_ref(c["order_number"]),
        "status": [str(s).strip().upper() for s in c["status"]],
        "currency": [_text(x) for x in c["currency"]],
        "grand_total": _nums(c, "grand_total"), "tax_total": _nums(c, "tax_total"),
        "discount_total": _nums(c, "discount_total"), "shipping_total": _nums(c, "shipping_total")}, columns=cols)
    out = out[out["ref"].notna() & out["status"].isin(list(statuses))]
    return out.drop_duplicates("ref", keep="first").sort_values("ref", kind="mergesort").reset_index(drop=True)


def _erp_rows(erp_orders: pd.DataFrame) -> pd.DataFrame:
    """The ERP orders with a text ref, sorted by ref then ERP number (the first of a ref is the one kept)."""
    e = pd.DataFrame({
        "ref": [_text(x) for x in erp_orders["external_ref"]] if len(erp_orders) else [],
        "number": [_text(x) or "" for x in erp_orders["order_number"]] if len(erp_orders) else [],
        "currency": [_erp_code(x) for x in erp_orders["currency"]] if len(erp_orders) else [],
        "total": _nums(erp_orders, "total_including_tax"), "tax": _nums(erp_orders, "total_tax"),
        "discount": _nums(erp_orders, "discount_amount")})
    e = e[e["ref"].notna()]
    return e.sort_values(["ref", "number"], kind="mergesort").reset_index(drop=True)


def _blocked_by(blocked: pd.DataFrame | None) -> dict[str, str]:
    """order ref -> the exception types the order-to-ERP flow holds it under, sorted and joined by ','."""
    if blocked is None or not len(blocked):
        return {}
    b = pd.DataFrame({"ref": _norm_ref(blocked["order_ref"]), "type": [_text(x) for x in blocked["exception_type"]]})
    b = b[b["ref"].notna() & b["type"].notna()]
    return {r: ",".join(sorted(set(g["type"]))) for r, g in b.groupby("ref", sort=False)}


def erp_orders_vs_commerce(business_date: str, centra_orders: pd.DataFrame | None, erp_orders: pd.DataFrame,
                           fx_to_base: Mapping[str, float] | None = None, tolerance: Tolerance = DEFAULT_TOLERANCE,
                           *, expected_currency: Mapping[str, str] | None = None,
                           blocked: pd.DataFrame | None = None,
                           statuses: Collection[str] = DUE_STATUSES) -> pd.DataFrame:
    """Centra's orders of the day due in the ERP (:func:`day_orders`: status in ``statuses``) against the ERP's
    sales orders, matched on the ERP order's ``external_ref`` = the Centra order number.

    - ``erp_order_missing``: no ERP order; value = the Centra grand total. The detail names the exception types
      ``blocked`` (order_ref, exception_type: the order-to-ERP flow's open exceptions) holds the order under.
    - ``erp_order_duplicated``: more than one; value = the totals of all but the first (by ERP number).
    - ``erp_order_currency_mismatch`` (with ``expected_currency``): the first ERP order's currency code is not the
      mapped code of the Centra currency (a Centra currency the mapping lacks is a mismatch too); value = the Centra
      grand total. Its amounts are then not compared (they are in another currency).
    - ``erp_order_total_mismatch`` / ``_tax_`` / ``_discount_``: the first ERP order's total including tax vs the
      grand total (shipping included on both sides), its tax vs tax_total, its discount vs discount_total, each
      beyond the money tolerance; value = |difference|.
    """
    c = day_orders(centra_orders, business_date, statuses)
    if not len(c):
        return empty_findings()
    e = _erp_rows(erp_orders if erp_orders is not None else pd.DataFrame(
        columns=["external_ref", "order_number", "currency", "total_including_tax", "total_tax", "discount_amount"]))
    e = e[e["ref"].isin(c["ref"])]
    firsts = e.drop_duplicates("ref", keep="first").set_index("ref")  # the kept order (the flow keeps it too)
    n_by_ref = e.groupby("ref", sort=False).size()
    sum_by_ref = e.groupby("ref", sort=False)["total"].sum()
    held = _blocked_by(blocked)
    refs = c["ref"].to_numpy(dtype=object)
    cur = c["currency"].to_numpy(dtype=object)
    grand = c["grand_total"].to_numpy(dtype=float)
    fx = _fx(fx_to_base, cur)
    n_erp = n_by_ref.reindex(refs).fillna(0).to_numpy(dtype=np.int64)
    out: list[pd.DataFrame] = []

    def emit(ft: m.FindingType, idx: np.ndarray, value: np.ndarray, detail: list[str], *,
             erp_numbers: np.ndarray | None = None, amount_pos: np.ndarray | None = None,
             amount_commerce: np.ndarray | None = None) -> None:
        if len(idx):
            out.append(_findings(ft, business_date, _NO_STORES,
                                 _no_store(len(idx)), value=value, order_ref=refs[idx], transaction_id=erp_numbers,
                                 amount_pos=amount_pos, amount_commerce=amount_commerce, detail=detail,
                                 currency=cur[idx], fx=fx[idx]))

    miss = np.flatnonzero(n_erp == 0)
    emit(m.ERP_ORDER_MISSING, miss, grand[miss],
         [f"status={c['status'].iat[i]};grand_total={_fmt(grand[i])} {cur[i]};blocked={held.get(refs[i], NONE)}"
          for i in miss], amount_pos=grand[miss], amount_commerce=np.zeros(len(miss)))

    hit = np.flatnonzero(n_erp > 0)
    first = firsts.reindex(refs[hit])
    numbers = first["number"].to_numpy(dtype=object)

    dup = np.flatnonzero(n_erp[hit] > 1)
    if len(dup):
        dref = refs[hit[dup]]
        every = sum_by_ref.reindex(dref).to_numpy(dtype=float)
        extra = np.round(every - first["total"].to_numpy(dtype=float)[dup], 2)
        listed = e[e["ref"].isin(dref)].groupby("ref", sort=False)["number"].agg(",".join)
        emit(m.ERP_ORDER_DUPLICATED, hit[dup], extra,
             [f"erp_orders={n_erp[hit[j]]};erp_numbers={listed[refs[hit[j]]]};extra_total={_fmt(x)} {cur[hit[j]]}"
              for j, x in zip(dup, extra, strict=True)],
             erp_numbers=numbers[dup], amount_pos=grand[hit[dup]], amount_commerce=every)

    comparable = np.ones(len(hit), dtype=bool)
    if expected_currency is not None and len(hit):
        want = {str(k).strip().upper(): _erp_code(v) for k, v in expected_currency.items()}
        exp = [want.get(str(cur[i]).upper()) if cur[i] is not None else None for i in hit]
        got = first["currency"].tolist()
        bad = np.array([x is None or x != g for x, g in zip(exp, got, strict=True)], dtype=bool)
        comparable = ~bad
        b = np.flatnonzero(bad)
        emit(m.ERP_ORDER_CURRENCY_MISMATCH, hit[b], grand[hit[b]],
             [f"centra_currency={cur[hit[j]]};expected={_code_word(exp[j])};erp_currency={_code_word(got[j])};"
              f"erp_order={numbers[j]}" for j in b], erp_numbers=numbers[b], amount_pos=grand[hit[b]])

    for ft, centra_col, erp_col, key in (
            (m.ERP_ORDER_TOTAL_MISMATCH, "grand_total", "total", "total"),
            (m.ERP_ORDER_TAX_MISMATCH, "tax_total", "tax", "tax"),
            (m.ERP_ORDER_DISCOUNT_MISMATCH, "discount_total", "discount", "discount")):
        if not len(hit):
            break
        a = c[centra_col].to_numpy(dtype=float)[hit]
        b_ = first[erp_col].to_numpy(dtype=float)
        diff = np.round(b_ - a, 2)
        sel = np.flatnonzero(comparable & (np.abs(diff) > tolerance.money + _EPS))
        emit(ft, hit[sel], diff[sel],
             [f"centra_{key}={_fmt(a[j])} {cur[hit[j]]};erp_{key}={_fmt(b_[j])} {cur[hit[j]]};erp_order={numbers[j]}"
              for j in sel], erp_numbers=numbers[sel], amount_pos=a[sel], amount_commerce=b_[sel])
    return _concat(out)


def _commerce_currency(erp_codes: list[str], expected_currency: Mapping[str, str] | None) -> list[str | None]:
    """The commerce currency of ERP currency codes through the mapping read backwards (None: not mapped back)."""
    back: dict[str, str] = {}
    for k, v in sorted((expected_currency or {}).items()):
        back.setdefault(_erp_code(v), str(k).strip().upper())
    return [back.get(code) for code in erp_codes]


def erp_shipments_not_in_commerce(business_date: str, erp_shipments: pd.DataFrame,
                                  fx_to_base: Mapping[str, float] | None = None, *,
                                  expected_currency: Mapping[str, str] | None = None,
                                  centra_orders: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ERP's shipments of the day (business_date rows) that Centra does not show (``in_commerce`` false or
    unknown): ``erp_shipment_not_in_commerce``, one per shipment; value = its ``value`` (the shipped lines' value).

    Currency: the shipment's ERP currency code mapped back to the commerce currency through ``expected_currency``;
    else (no code or no mapping) the currency of the Centra order it ships (``centra_orders`` by order number);
    else unknown (value_at_risk_base = value_at_risk).
    """
    if erp_shipments is None or not len(erp_shipments):
        return empty_findings()
    s = erp_shipments
    keep = np.ones(len(s), dtype=bool)
    if "business_date" in s.columns:
        keep &= (s["business_date"].astype(str) == business_date).to_numpy()
    shown = s["in_commerce"].map(lambda v: bool(v) if v is not None and not pd.isna(v) else False)
    keep &= ~shown.to_numpy(dtype=bool)
    s = s[keep]
    if not len(s):
        return empty_findings()
    s = s.sort_values("shipment_number", kind="mergesort").reset_index(drop=True)
    refs = np.array([_text(x) for x in s["external_ref"]], dtype=object)
    cur: list[str | None] = [None] * len(s)
    if "currency" in s.columns and expected_currency is not None:
        cur = _commerce_currency([_erp_code(x) for x in s["currency"]], expected_currency)
    if centra_orders is not None and len(centra_orders):
        by_ref = dict(zip(_norm_ref(centra_orders["order_number"]), (_text(x) for x in centra_orders["currency"]),
                          strict=True))
        cur = [c or by_ref.get(r) for c, r in zip(cur, refs, strict=True)]
    cur_a = np.array(cur, dtype=object)
    value = _nums(s, "value")
    units = _nums(s, "units")
    detail = [f"shipment={_word(r.shipment_number)};units={int(u)};value={_fmt(v)} {c or NONE};"
              f"carrier={_word(getattr(r, 'carrier', None))};tracking={_word(getattr(r, 'tracking_number', None))}"
              for r, u, v, c in zip(s.itertuples(index=False), units, value, cur, strict=True)]
    return _concat([_findings(
        m.ERP_SHIPMENT_NOT_IN_COMMERCE, business_date, _NO_STORES,
        _no_store(len(s)), value=value, order_ref=refs, transaction_id=s["shipment_number"].astype(object).to_numpy(),
        quantity_pos=units, quantity_commerce=np.zeros(len(s)), amount_pos=value, amount_commerce=np.zeros(len(s)),
        detail=detail, currency=cur_a, fx=_fx(fx_to_base, cur_a))])


def dc_unit_prices(prices: pd.DataFrame, locations: pd.DataFrame) -> pd.Series:
    """Per SKU, the lowest of its stores' price-list prices converted to the base currency (the DC sells to every
    market; the lowest is the value no market falls below). SKUs without a store price are absent."""
    if prices is None or not len(prices) or not len(locations):
        return pd.Series(dtype=float)
    pl = locations[["pricelist_id", "fx_to_base"]].dropna().drop_duplicates("pricelist_id")
    pl = pl.assign(pricelist_id=pl["pricelist_id"].astype("int64"))
    p = prices.assign(pricelist_id=prices["pricelist_id"].astype("int64")).merge(pl, on="pricelist_id")
    return (p["price"].astype(float) * p["fx_to_base"].astype(float)).groupby(p["sku"].astype(str)).min()


def erp_stock_drift(business_date: str, erp_stock: pd.DataFrame, centra_stock: pd.DataFrame, dc_warehouse_id: int,
                    prices: pd.DataFrame, locations: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                    base_currency: str | None = None, dc_location_id: str | None = None,
                    erp_mapping: ErpMapping | None = None, erp_items: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ERP's on-hand per commerce SKU vs Centra's physical stock in the DC warehouse (``centra_stock`` rows of
    the day with warehouse_id = ``dc_warehouse_id``) at the cut-off: ``erp_stock_drift`` where
    |physical - on_hand| exceeds the units tolerance (a SKU missing on one side counts as 0 there).

    Bundle SKUs (``erp_mapping``) are not compared (their stock is their components'); nor, with ``erp_items``,
    SKUs the ERP has no item for (they are mapping orphans, :func:`erp_mapping_orphans`). value = |diff| x the SKU's
    :func:`dc_unit_prices` price (0 without one), in the base currency; location = ``dc_location_id``. Not store drift
    (the type's ``drift`` is None): the stores' drift figures leave it out.
    """
    e = pd.DataFrame({"sku": erp_stock["sku"].astype(str).to_numpy() if len(erp_stock) else [],
                      "on_hand": _nums(erp_stock, "on_hand")}).groupby("sku")["on_hand"].sum()
    cs = centra_stock
    keep = np.ones(len(cs), dtype=bool)
    if "business_date" in cs.columns:
        keep &= (cs["business_date"].astype(str) == business_date).to_numpy()
    keep &= (pd.to_numeric(cs["warehouse_id"], errors="coerce") == int(dc_warehouse_id)).to_numpy()
    cs = cs[keep]
    c = pd.DataFrame({"sku": cs["sku"].astype(str).to_numpy(), "physical": _nums(cs, "physical")}
                     ).groupby("sku")["physical"].sum()
    j = pd.concat([e, c], axis=1).fillna(0.0).sort_index()
    if erp_mapping is not None:
        j = j[np.array([not erp_mapping.is_bundle(s) for s in j.index], dtype=bool)]
        if erp_items is not None:
            have = _item_set(erp_items)
            j = j[np.array([_has(have, erp_mapping, s) for s in j.index], dtype=bool)]
    diff = j["physical"].to_numpy(dtype=float) - j["on_hand"].to_numpy(dtype=float)
    sel = np.flatnonzero(np.abs(diff) > tolerance.units + _EPS)
    if not len(sel):
        return empty_findings()
    skus = j.index.to_numpy(dtype=object)[sel]
    unit = dc_unit_prices(prices, locations).reindex(skus).to_numpy(dtype=float)
    unit0 = np.nan_to_num(unit)
    on_hand, phys, d = j["on_hand"].to_numpy(dtype=float)[sel], j["physical"].to_numpy(dtype=float)[sel], diff[sel]
    ccy = base_currency or NONE
    detail = [f"erp_on_hand={int(a)};centra_physical={int(b)};unit_price={_fmt(u)} {ccy}"
              for a, b, u in zip(on_hand, phys, unit, strict=True)]
    n = len(sel)
    return _concat([_findings(
        m.ERP_STOCK_DRIFT, business_date, _NO_STORES,
        _no_store(n), value=np.abs(d) * unit0, location_ids=np.full(n, dc_location_id, dtype=object), sku=skus,
        quantity_pos=on_hand, quantity_commerce=phys, amount_pos=on_hand * unit0, amount_commerce=phys * unit0,
        detail=detail, currency=np.full(n, base_currency, dtype=object), fx=np.ones(n))])


def _item_set(erp_items: pd.DataFrame) -> set[tuple[str, str | None]]:
    """(number, variant_code) of every ERP item (variant None) and item variant."""
    if not len(erp_items):
        return set()
    return {(str(n).strip(), _text(v)) for n, v in zip(erp_items["number"], erp_items["variant_code"], strict=True)
            if _text(n) is not None}


def _has(items: set[tuple[str, str | None]], mapping: ErpMapping, sku: str) -> bool:
    ref = mapping.item_of(sku)
    return (ref.number, ref.variant_code or None) in items


def _orphan_reason(items: set[tuple[str, str | None]], mapping: ErpMapping, sku: str) -> str | None:
    """Why an active commerce SKU cannot reach the ERP (a detail's key=value pairs), None when it can."""
    if mapping.is_bundle(sku):
        comps = mapping.bundles.get(sku)
        if not comps:
            return "reason=bundle_unmapped"
        lacking = sorted({c.sku for c in comps if not _has(items, mapping, c.sku)})
        return f"reason=bundle_component_missing;components={','.join(lacking)}" if lacking else None
    if _has(items, mapping, sku):
        return None
    ref = mapping.item_of(sku)
    if ref.variant_code and (ref.number, None) in items:
        return f"reason=no_erp_variant;item={_word(ref.number)};variant={_word(ref.variant_code)}"
    return f"reason=no_erp_item;item={_word(ref.number)};variant={_word(ref.variant_code)}"


def erp_mapping_orphans(business_date: str, centra_catalog: pd.DataFrame, erp_items: pd.DataFrame,
                        erp_mapping: ErpMapping, fx_to_base: Mapping[str, float] | None = None, *,
                        order_lines: pd.DataFrame | None = None, centra_orders: pd.DataFrame | None = None,
                        statuses: Collection[str] = DUE_STATUSES) -> pd.DataFrame:
    """Active commerce SKUs (``centra_catalog`` rows of the day with is_active) the ERP cannot take:
    ``erp_mapping_orphan``, with the reason in the detail:

    - ``no_erp_item`` / ``no_erp_variant``: ``erp_mapping.item_of(sku)`` (number, variant) is not in ``erp_items``;
    - ``bundle_unmapped``: a bundle SKU (``erp_mapping.is_bundle``) without an ``erp.bundles`` entry;
    - ``bundle_component_missing``: a mapped bundle with a component whose item is not in ``erp_items``.

    value: 0 (nothing is lost while no order carries it) and no currency, unless order lines of the day
    (``order_lines`` rows of the day; with ``centra_orders``, only of orders :func:`day_orders` holds due) carry the
    SKU: then one finding per (SKU, line currency) with value = the sum of those lines' ``line_value``.
    """
    cat = centra_catalog
    keep = cat["is_active"].fillna(False).astype(bool).to_numpy()
    if "business_date" in cat.columns:
        keep &= (cat["business_date"].astype(str) == business_date).to_numpy()
    skus = sorted(set(cat.loc[keep, "sku"].astype(str)))
    items = _item_set(erp_items)
    reasons = {s: r for s in skus if (r := _orphan_reason(items, erp_mapping, s)) is not None}
    if not reasons:
        return empty_findings()
    carried = pd.DataFrame(columns=["sku", "currency", "value", "units", "orders"])
    if order_lines is not None and len(order_lines):
        ol = order_lines
        lk = ol["sku"].astype(str).isin(list(reasons)).to_numpy()
        if "business_date" in ol.columns:
            lk &= (ol["business_date"].astype(str) == business_date).to_numpy()
        if centra_orders is not None:
            due = set(day_orders(centra_orders, business_date, statuses)["ref"])
            lk &= np.array([r in due for r in _norm_ref(ol["order_number"])], dtype=bool)
        ol = ol[lk]
        if len(ol):
            carried = pd.DataFrame({"sku": ol["sku"].astype(str).to_numpy(),
                                    "currency": [_text(x) or NONE for x in ol["currency"]],
                                    "value": _nums(ol, "line_value"), "units": _nums(ol, "quantity"),
                                    "order": _norm_ref(ol["order_number"])}).groupby(
                ["sku", "currency"], as_index=False, sort=True).agg(
                value=("value", "sum"), units=("units", "sum"), orders=("order", "nunique"))
    rows = []
    seen = set(carried["sku"])
    for r in carried.itertuples(index=False):
        rows.append((r.sku, None if r.currency == NONE else r.currency, float(r.value), int(r.units), int(r.orders)))
    rows += [(s, None, 0.0, 0, 0) for s in sorted(reasons) if s not in seen]
    rows.sort(key=lambda t: (t[0], t[1] or ""))
    sku = np.array([t[0] for t in rows], dtype=object)
    cur = np.array([t[1] for t in rows], dtype=object)
    value = np.array([t[2] for t in rows], dtype=float)
    detail = [f"{reasons[s]};orders={o};units={u};line_value={_fmt(v)} {c or NONE}" for s, c, v, u, o in rows]
    return _concat([_findings(
        m.ERP_MAPPING_ORPHAN, business_date, _NO_STORES,
        _no_store(len(rows)), value=value, sku=sku, amount_pos=value, detail=detail, currency=cur,
        fx=_fx(fx_to_base, cur))])
