"""The returns rule: store returns vs Centra returns and refunds."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance, empty_findings
from pipelines.domain.reconciliation.rules.frames import _col, _concat, _findings, _norm_ref, _over
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys, _obj


def returns_and_refunds(business_date: str, pos_sale_lines: pd.DataFrame, locations: pd.DataFrame,
                        tolerance: Tolerance = DEFAULT_TOLERANCE, *, centra_returns: pd.DataFrame | None = None,
                        centra_return_lines: pd.DataFrame | None = None,
                        store_sale_transaction_ids: Iterable[str] | None = None,
                        unjudged_transaction_ids: Iterable[str] | None = None,
                        store_returns_only: bool = True, keys: KeySpace | None = None) -> pd.DataFrame:
    """Store returns vs Centra returns and refunds.

    pos_sale_lines: business_date, transaction_id, kind, location_id | fulfillment_node_id, sku, quantity,
        tax, net_amount, original_order_ref (all supplied days; returns of ``business_date`` are judged).
    centra_return_lines: return_id, order_number, sku, quantity, line_value (incl. tax), tax_percent (25.0);
        None = Centra returns unknown: only return_without_order_ref is judged.
    centra_returns (optional): return_id, refunded, return_warehouse_id.
    store_sale_transaction_ids: ids of known store sales (the supplied sale lines' ids are added).
    unjudged_transaction_ids: return transactions not to judge (their original sale is not known, see
        `return_origins`): no finding, whatever they reference.

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
    store_origin = _store_origin(k, lines, ref, tid, store_sale_transaction_ids, unjudged_transaction_ids)
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
        pg = _pos_refunds(pd.DataFrame({
            "order_ref": ref[keep], "sku": sku[keep], "qty": qty[keep], "amount": refund[keep], "tax": rtax[keep],
            "today": today[keep], "loc": loc[keep], "transaction_id": tid[keep]}))
        cg = _centra_refunds(centra_return_lines, centra_returns, locations, store_returns_only, refs_today)
        out += _refund_findings(business_date, locations, tolerance, pg.merge(cg, how="left", on=["order_ref", "sku"]))
    return _concat(out)


def _store_origin(k: KeySpace, lines: pd.DataFrame, ref: np.ndarray, tid: np.ndarray,
                  store_sale_transaction_ids: Iterable[str] | None,
                  unjudged_transaction_ids: Iterable[str] | None) -> np.ndarray:
    """Per return line: not to judge, because its ref or its own id is a known store sale (a supplied sale
    line's or one of ``store_sale_transaction_ids``), or it is one of ``unjudged_transaction_ids``."""
    candidates = pd.unique(np.concatenate([ref[~pd.isna(ref)], tid]))
    sale_rows = k.eq(lines, "kind", "sale") & lines["transaction_id"].isin(candidates).to_numpy()
    known = [] if store_sale_transaction_ids is None else list(store_sale_transaction_ids)
    unjudged = [] if unjudged_transaction_ids is None else list(unjudged_transaction_ids)
    sales = pd.Index(pd.unique(_obj(lines["transaction_id"])[sale_rows])).append(pd.Index(known, dtype=object))
    return pd.Index(ref).isin(sales) | pd.Index(tid).isin(sales) | pd.Index(tid).isin(unjudged)


def _pos_refunds(p: pd.DataFrame) -> pd.DataFrame:
    """The POS return lines per (order_ref, sku) over the window, of the groups with a return of the day;
    loc and transaction_id of the group's first return of the day."""
    p = p.sort_values(["order_ref", "sku", "today", "transaction_id"], ascending=[True, True, False, True],
                      kind="mergesort")
    pg = p.groupby(["order_ref", "sku"], sort=True).agg(
        qty=("qty", "sum"), amount=("amount", "sum"), tax=("tax", "sum"), any_today=("today", "max"),
        loc=("loc", "first"), transaction_id=("transaction_id", "first"),
        returns=("transaction_id", "nunique")).reset_index()
    return pg[pg["any_today"]]


def _refund_findings(business_date: str, locations: pd.DataFrame, tolerance: Tolerance,
                     j: pd.DataFrame) -> list[pd.DataFrame]:
    """return_missing_in_commerce / refund_amount_mismatch / refund_tax_mismatch of the POS refunds joined
    (left) with Centra's (see :func:`returns_and_refunds`)."""
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
    out: list[pd.DataFrame] = []
    for ft, mask, val, a_pos, a_com in (
            (m.RETURN_MISSING_IN_COMMERCE, ~found, pa, pa, np.zeros(len(j))),
            (m.REFUND_AMOUNT_MISMATCH, amount_bad, ca - pa, pa, ca),
            (m.REFUND_TAX_MISMATCH, tax_bad, ct - pt, pt, ct)):
        if mask.any():
            out.append(_findings(ft, business_date, locations, lc[mask], value=val[mask],
                                 **{c: v[mask] for c, v in ids.items()}, quantity_pos=pq[mask],
                                 quantity_commerce=cq[mask], amount_pos=a_pos[mask],
                                 amount_commerce=a_com[mask], detail=detail[mask]))
    return out


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
