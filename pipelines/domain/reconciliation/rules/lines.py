"""Line-level checks of the day's store sale lines: price list, tax and discount."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, FindingType, Tolerance, empty_findings
from pipelines.domain.reconciliation.rules.frames import _concat, _findings, _nearest, _norm_ref, _over
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys, _obj


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
    expected_disc = _expected_discount(disc, gross, allowed_discount_rates)
    bad = _over(disc - expected_disc, tolerance.money)
    if bad.any():
        reason = np.where(disc[bad] < 0, "negative", np.where(disc[bad] > gross[bad], "exceeds_gross",
                                                              "rate_not_allowed"))
        emit(m.LINE_DISCOUNT_MISMATCH, bad, disc - expected_disc, disc, expected_disc,
             [f"discount={d:.2f};gross={g:.2f};reason={r}" for d, g, r in zip(disc[bad], gross[bad], reason,
                                                                              strict=True)])
    return _concat(out)


def _expected_discount(disc: np.ndarray, gross: np.ndarray, allowed_rates: Iterable[float] | None) -> np.ndarray:
    """The discount clipped to [0, gross]; with ``allowed_rates`` (0 always allowed), an in-range discount's
    nearest allowed amount (gross x rate)."""
    expected = np.clip(disc, 0.0, np.maximum(gross, 0.0))
    if allowed_rates is None:
        return expected
    allowed = np.array(sorted(set(float(r) for r in allowed_rates) | {0.0}))
    share = np.divide(disc, gross, out=np.zeros(len(disc)), where=gross > 0)
    return np.where((disc >= 0) & (disc <= gross), _nearest(allowed, share) * gross, expected)
