"""The click-and-collect rule: pickups completed in a store whose online order is still open."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import empty_findings
from pipelines.domain.reconciliation.rules.frames import _col, _concat, _findings, _fmt, _norm_ref
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys, _obj


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
