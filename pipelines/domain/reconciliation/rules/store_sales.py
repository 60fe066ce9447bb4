"""The store-sales rule: the day's POS sales vs what was recorded downstream, per store and tax rate."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance, empty_findings
from pipelines.domain.reconciliation.rules.frames import _col, _concat, _findings, _nearest, _over
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys


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
        out[odd] = np.where(np.isnan(derived), out[odd], _nearest(rates, derived))
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
