"""The kiosk rules (Cloudshelf kiosks, issue 14): the day's kiosk orders and take-home sales against Centra's own
records, and what the kiosks showed at the cut-off against Centra's stock.

Inputs are the raw datasets: ``kiosk_orders`` = the `cloudshelf_orders` partition (one row per order line: order_id,
line_id, status, location_id, fulfilment_kind take_home | delivery, sku, quantity, unit_price, line_total, currency,
third_party_id, created_at; `pipelines.domain.kiosk.orders_frame`), Centra's orders, stock-change ledger and stock
snapshot, the POS movements, and what we last published to the kiosks (`kiosk_stock_levels`).

- :func:`kiosk_orders_vs_commerce`: ``kiosk_order_missing_in_commerce`` and ``kiosk_order_total_mismatch``;
- :func:`kiosk_sales_not_deducted`: ``kiosk_sale_not_deducted``;
- :func:`kiosk_availability`: ``kiosk_availability_oversell`` / ``kiosk_availability_lost_sales``.

Sign conventions as every finding (model.py): the kiosk is the "pos" side, Centra the "commerce" side.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipelines.domain.kiosk.orders_frame import DELIVERY, PAID_STATUSES, TAKE_HOME, kiosk_orders
from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance, empty_findings
from pipelines.domain.reconciliation.rules.frames import _EPS, _concat, _findings, _fmt, _norm_ref
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys, _obj

#: The description prefix of every change our stock sync makes in Centra (`pipelines.sync.batches.DESCRIPTION_PREFIX`,
#: "pipelines-stock-sync <batch id>"; a test keeps the two equal: domain code does not import the sync).
SYNC_DESCRIPTION_PREFIX = "pipelines-stock-sync"
#: Paid and not refunded in full: the customer's money is still with the retailer, so a missing order is at risk.
OPEN_PAID_STATUSES = ("PAID", "PARTIALLY_REFUNDED")


def _store_codes(k: KeySpace, df: pd.DataFrame) -> np.ndarray:
    return k.store(df) if len(df) else np.empty(0, dtype=np.int64)


def _fx(fx_to_base: Mapping[str, float] | None, currencies: np.ndarray) -> np.ndarray:
    fx = dict(fx_to_base or {})
    return np.array([fx.get(c, np.nan) for c in currencies], dtype=float)


def kiosk_orders_vs_commerce(business_date: str, kiosk_lines: pd.DataFrame, centra_orders: pd.DataFrame | None,
                             locations: pd.DataFrame, fx_to_base: Mapping[str, float] | None = None,
                             tolerance: Tolerance = DEFAULT_TOLERANCE, *, keys: KeySpace | None = None) -> pd.DataFrame:
    """Paid kiosk delivery orders (endless aisle) of the day against the Centra orders made for them.

    kiosk_lines: the day's `cloudshelf_orders` rows. centra_orders: order_number, external_id, status, grand_total,
    shipping_total (optional), currency: the day's `centra_orders` plus, when the loader adds them, the current state
    of the orders the kiosk orders name (an order created in Centra after midnight is found so).

    Matching: a kiosk order is matched by its ``third_party_id`` (the Centra order number the order flow wrote back as
    `newThirdPartyId`) to ``order_number``, else by its own id to the Centra order's ``external_id`` (the order flow
    creates the Centra order with external id = the Cloudshelf order GlobalId, so an order whose number was never
    written back is still found).

    - ``kiosk_order_missing_in_commerce``: a delivery order in PAID or PARTIALLY_REFUNDED (REFUNDED in full puts no
      money at risk) with no Centra order; value = the kiosk total.
    - ``kiosk_order_total_mismatch``: a matched order whose Centra goods value (grand_total - shipping_total, in the
      kiosk order's currency through fx_to_base when Centra's differs) differs from the kiosk total (sum of the
      lines' quantity x price) by more than the money tolerance; value = |difference|. A CANCELLED Centra order is
      not compared (the kiosk order is then voided by the order flow's status back).
    """
    if kiosk_lines is None or not len(kiosk_lines):
        return empty_findings()
    k = _keys(keys, locations, None)
    o = kiosk_orders(kiosk_lines)
    o = o[(o["fulfilment_kind"] == DELIVERY) & o["status"].isin(PAID_STATUSES)].reset_index(drop=True)
    if not len(o):
        return empty_findings()
    c = centra_orders if centra_orders is not None else pd.DataFrame(
        columns=["order_number", "external_id", "status", "grand_total", "shipping_total", "currency"])
    c = c.reset_index(drop=True)
    numbers = _norm_ref(c["order_number"]) if len(c) else np.empty(0, dtype=object)
    externals = _obj(c["external_id"]) if "external_id" in c.columns and len(c) else np.full(len(c), None)
    goods = (pd.to_numeric(c["grand_total"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
             - (pd.to_numeric(c["shipping_total"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
                if "shipping_total" in c.columns else 0.0)) if len(c) else np.empty(0)
    by_number: dict[str, int] = {}
    by_external: dict[str, int] = {}
    for i, (num, ext) in enumerate(zip(numbers, externals, strict=True)):  # the latest row of an order wins
        if num is not None:
            by_number[num] = i
        if ext is not None and not (isinstance(ext, float) and np.isnan(ext)) and str(ext):
            by_external[str(ext)] = i
    tp = _norm_ref(o["third_party_id"].astype(object))
    match = np.array([by_number.get(t, by_external.get(str(oid), -1)) if t is not None else by_external.get(str(oid), -1)
                      for t, oid in zip(tp, o["order_id"], strict=True)], dtype=np.int64)
    total = o["total"].to_numpy(dtype=float)
    cur = _obj(o["currency"])
    loc = _store_codes(k, o)
    status = o["status"].to_numpy(dtype=object)
    fx = dict(fx_to_base or {})
    out = []

    missing = (match < 0) & pd.Index(status).isin(OPEN_PAID_STATUSES)
    if missing.any():
        idx = np.flatnonzero(missing)
        detail = [f"kiosk_status={status[i]};kiosk_total={_fmt(total[i])} {cur[i]};centra_order_number="
                  f"{tp[i] or 'none'};created_at={o['created_at'].iloc[i]}" for i in idx]
        out.append(_findings(m.KIOSK_ORDER_MISSING_IN_COMMERCE, business_date, locations, loc[idx], value=total[idx],
                             location_ids=_obj(o["location_id"])[idx], order_ref=tp[idx],
                             transaction_id=_obj(o["order_id"])[idx], amount_pos=total[idx], detail=detail,
                             currency=cur[idx], fx=_fx(fx, cur[idx])))

    hit = np.flatnonzero(match >= 0)
    if len(hit):
        j = match[hit]
        c_status = _obj(c["status"])[j]
        c_cur = _obj(c["currency"])[j]
        k_cur = cur[hit]
        rate = np.array([1.0 if (a == b or a is None) else fx.get(a, np.nan) / fx.get(b, np.nan)
                         for a, b in zip(c_cur, k_cur, strict=True)], dtype=float)
        c_goods = np.round(goods[j] * np.where(np.isnan(rate), 1.0, rate), 2)
        diff = c_goods - total[hit]
        bad = (np.abs(diff) > tolerance.money + _EPS) & (c_status != "CANCELLED")
        if bad.any():
            sel = hit[bad]
            detail = [f"kiosk_total={_fmt(total[i])} {cur[i]};centra_goods={_fmt(g)} {cc};centra_status={s}"
                      for i, g, cc, s in zip(sel, c_goods[bad], c_cur[bad], c_status[bad], strict=True)]
            out.append(_findings(m.KIOSK_ORDER_TOTAL_MISMATCH, business_date, locations, loc[sel],
                                 value=diff[bad], location_ids=_obj(o["location_id"])[sel],
                                 order_ref=numbers[j[bad]], transaction_id=_obj(o["order_id"])[sel],
                                 amount_pos=total[sel], amount_commerce=c_goods[bad], detail=detail,
                                 currency=cur[sel], fx=_fx(fx, cur[sel])))
    return _concat(out)


def _take_home_units(kiosk_lines: pd.DataFrame) -> pd.DataFrame:
    """Paid take-home units and their value per (location_id, sku)."""
    t = kiosk_lines[(kiosk_lines["fulfilment_kind"] == TAKE_HOME) & kiosk_lines["status"].isin(PAID_STATUSES)
                    & kiosk_lines["sku"].notna() & kiosk_lines["location_id"].notna()]
    if not len(t):
        return pd.DataFrame(columns=["location_id", "sku", "units", "value", "orders"])
    g = t.assign(value=t["line_total"].astype(float)).groupby(["location_id", "sku"], as_index=False).agg(
        units=("quantity", "sum"), value=("value", "sum"), orders=("order_id", "nunique"))
    return g


def kiosk_sales_not_deducted(business_date: str, kiosk_lines: pd.DataFrame, centra_changes: pd.DataFrame,
                             locations: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                             pos_movements: pd.DataFrame | None = None,
                             sync_prefix: str = SYNC_DESCRIPTION_PREFIX,
                             keys: KeySpace | None = None) -> pd.DataFrame:
    """Paid take-home kiosk units of the day that never left the store's warehouse in Centra.

    Exact matching is not possible from Centra's records: the stock sync nets a batch's movements per (warehouse,
    size) into one `changeStock` line (a till sale, a kiosk sale and a return of the same SKU become one change), and
    the change's description names the batch, not the movements. So totals are compared per (store, SKU) over the
    day: Centra's net change of the store's warehouse by our sync (``centra_changes`` rows of the day whose
    description starts with ``sync_prefix``) should equal the POS's net deltas (``pos_movements``, as the sync rule
    reads them; absent: 0) minus the kiosk's paid take-home units K. The shortfall S = sync_net - (pos_net - K) > 0
    is what Centra did not deduct; min(S, K) units are reported (the kiosk's share; a larger shortfall is the sync
    rule's). Keys with a POS count on the day are not compared (a count's delta is unknowable). A sale late in the
    day whose deduction lands after midnight shows here, as in the sync rule. value = units x the kiosk's average
    unit price of the key.
    """
    if kiosk_lines is None or not len(kiosk_lines):
        return empty_findings()
    th = _take_home_units(kiosk_lines)
    if not len(th):
        return empty_findings()
    k = _keys(keys, locations, None)
    th = th.assign(store=_store_codes(k, th))
    th = th[th["store"] >= 0]
    if not len(th):
        return empty_findings()
    wanted = pd.MultiIndex.from_arrays([th["store"].to_numpy(), th["sku"].astype(object).to_numpy()])

    def sums(store: np.ndarray, sku: np.ndarray, qty: np.ndarray) -> tuple[pd.Series, pd.Series]:
        idx = pd.MultiIndex.from_arrays([store, sku])
        keep = idx.isin(wanted)
        s = pd.Series(qty[keep], index=idx[keep])
        return s.groupby(level=[0, 1]).sum(), s.groupby(level=[0, 1]).size()

    cm = k.day(centra_changes, business_date)
    cstore = k.store_by_warehouse(centra_changes) if len(centra_changes) else np.empty(0, np.int64)
    desc = centra_changes["description"].astype(str).str.startswith(sync_prefix).to_numpy(dtype=bool) \
        if len(centra_changes) else np.empty(0, bool)
    sel = cm & desc & (cstore >= 0)
    c_net, c_n = sums(cstore[sel], _obj(centra_changes["sku"])[sel],
                      centra_changes["quantity"].to_numpy(dtype=float)[sel])
    p_net = pd.Series(dtype=float)
    counted = pd.Series(dtype=float)
    if pos_movements is not None and len(pos_movements):
        pm = k.day(pos_movements, business_date)
        pstore = k.store(pos_movements)
        is_count = k.eq(pos_movements, "movement_type", "count")
        base = pm & (pstore >= 0)
        p_net, _ = sums(pstore[base & ~is_count], _obj(pos_movements["sku"])[base & ~is_count],
                        pos_movements["quantity"].to_numpy(dtype=float)[base & ~is_count])
        _, counted = sums(pstore[base & is_count], _obj(pos_movements["sku"])[base & is_count],
                          np.ones(int((base & is_count).sum())))
    key = list(zip(th["store"], th["sku"], strict=True))
    units = th["units"].to_numpy(dtype=float)
    sync_net = np.array([c_net.get(x, 0.0) for x in key], dtype=float)
    changes = np.array([c_n.get(x, 0) for x in key], dtype=float)
    pos_net = np.array([p_net.get(x, 0.0) for x in key], dtype=float)
    was_counted = np.array([counted.get(x, 0) > 0 for x in key], dtype=bool)
    shortfall = sync_net - (pos_net - units)
    missing = np.minimum(np.maximum(shortfall, 0.0), units)
    bad = (missing > tolerance.units + _EPS) & ~was_counted
    if not bad.any():
        return empty_findings()
    price = th["value"].to_numpy(dtype=float) / np.where(units > 0, units, 1.0)
    b = np.flatnonzero(bad)
    detail = [f"kiosk_units={int(units[i])};kiosk_orders={int(th['orders'].iloc[i])};pos_net={int(pos_net[i])};"
              f"sync_net={int(sync_net[i])};sync_changes={int(changes[i])};unit_price={_fmt(price[i])}" for i in b]
    return _concat([_findings(
        m.KIOSK_SALE_NOT_DEDUCTED, business_date, locations, th["store"].to_numpy()[b], value=missing[b] * price[b],
        sku=th["sku"].to_numpy(dtype=object)[b], quantity_pos=-units[b], quantity_commerce=-(units[b] - missing[b]),
        amount_pos=units[b] * price[b], amount_commerce=(units[b] - missing[b]) * price[b], detail=detail)])


def kiosk_availability(business_date: str, kiosk_levels: pd.DataFrame, centra_stock: pd.DataFrame,
                       kiosk_warehouses: pd.DataFrame, locations: pd.DataFrame, prices: pd.DataFrame | None = None, *,
                       safety_stock: int = 0, keys: KeySpace | None = None) -> pd.DataFrame:
    """What the kiosks showed at the cut-off against what Centra had to sell, per published (location, SKU).

    kiosk_levels: location_id, sku, quantity, published_at (`kiosk_stock_levels`: the quantity last published to
        Cloudshelf). A pair published after the snapshot was taken is not judged (what the kiosk showed at the
        cut-off is not recorded); a pair never published is the SKU audit's (`kiosk_sku_audit`), not this rule's.
    centra_stock: the day's `centra_stock_snapshot` (snapshot_at, warehouse_id, sku, free_to_allocate).
    kiosk_warehouses: location_id, warehouse_id: the warehouses a kiosk location's quantity reads (its own and the
        other warehouses of its market's allocation rule, `pipelines.domain.kiosk.availability`).

    Centra's quantity = the sum of max(0, free_to_allocate) over those warehouses (the publisher's formula). The kiosk
    shows a variant in stock when the quantity exceeds the organisation's ``safety_stock`` (Cloudshelf's isInStock).
    Shown in stock but Centra's quantity <= safety_stock: ``kiosk_availability_oversell``; shown out of stock but
    Centra's quantity > safety_stock: ``kiosk_availability_lost_sales``. A quantity that differs while both sides agree
    on in/out of stock is no finding (the shopper sees the same). value = |published - Centra| units x the store's
    price-list price.
    """
    if kiosk_levels is None or not len(kiosk_levels) or centra_stock is None or not len(centra_stock):
        return empty_findings()
    k = _keys(keys, locations, prices)
    snap = centra_stock[k.day(centra_stock, business_date)] if "business_date" in centra_stock.columns \
        else centra_stock
    if not len(snap):
        return empty_findings()
    taken = pd.to_datetime(snap["snapshot_at"], utc=True, errors="coerce").min() \
        if "snapshot_at" in snap.columns else pd.NaT
    lv = kiosk_levels.copy()
    if not pd.isna(taken):
        published = pd.to_datetime(lv["published_at"], utc=True, errors="coerce")
        lv = lv[published.notna() & (published <= taken)]
    kw = kiosk_warehouses[["location_id", "warehouse_id"]].astype({"warehouse_id": "int64"}).drop_duplicates()
    lv = lv[lv["location_id"].isin(kw["location_id"])]
    if not len(lv):
        return empty_findings()
    free = snap.assign(free=snap["free_to_allocate"].astype(float).clip(lower=0))[["warehouse_id", "sku", "free"]]
    free = free.astype({"warehouse_id": "int64"}).groupby(["warehouse_id", "sku"], as_index=False)["free"].sum()
    pairs = lv[["location_id", "sku"]].drop_duplicates().merge(kw, on="location_id")
    have = pairs.merge(free, on=["warehouse_id", "sku"], how="left").fillna({"free": 0.0})
    centra = have.groupby(["location_id", "sku"], as_index=False)["free"].sum()
    j = lv[["location_id", "sku", "quantity"]].merge(centra, on=["location_id", "sku"], how="left").fillna({"free": 0.0})
    shown = j["quantity"].to_numpy(dtype=float) > safety_stock
    has = j["free"].to_numpy(dtype=float) > safety_stock
    over, lost = shown & ~has, ~shown & has
    if not (over | lost).any():
        return empty_findings()
    j = j.reset_index(drop=True)
    loc = _store_codes(k, j)
    price = np.nan_to_num(k.price(loc, k.sku(j)))
    diff = j["free"].to_numpy(dtype=float) - j["quantity"].to_numpy(dtype=float)
    out = []
    for ft, mask in ((m.KIOSK_AVAILABILITY_OVERSELL, over), (m.KIOSK_AVAILABILITY_LOST_SALES, lost)):
        if mask.any():
            idx = np.flatnonzero(mask)
            detail = [f"kiosk_quantity={int(j['quantity'].iloc[i])};centra_available={int(j['free'].iloc[i])};"
                      f"safety_stock={int(safety_stock)}" for i in idx]
            out.append(_findings(ft, business_date, locations, loc[idx], value=np.abs(diff[idx]) * price[idx],
                                 location_ids=_obj(j["location_id"])[idx], sku=_obj(j["sku"])[idx],
                                 quantity_pos=j["quantity"].to_numpy(dtype=float)[idx],
                                 quantity_commerce=j["free"].to_numpy(dtype=float)[idx],
                                 amount_pos=j["quantity"].to_numpy(dtype=float)[idx] * price[idx],
                                 amount_commerce=j["free"].to_numpy(dtype=float)[idx] * price[idx], detail=detail))
    return _concat(out)
