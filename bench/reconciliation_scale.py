"""Daily reconciliation at scale: 1M (location, SKU) stock rows per side + 1M sale lines, known differences.

    python bench/reconciliation_scale.py            # full: 50 stores x 20,000 SKUs, 1,000,000 sale lines
    python bench/reconciliation_scale.py --quick    # 10 stores x 10,000 SKUs, 100,000 sale lines

Inputs are generated deterministically with numpy (seeded) from a generated estate, shaped like the raw
tables (all their columns; string values are shared objects, as a dictionary-encoded read would give).
Besides the stock rows and sale lines there are 0.5M POS movements and 0.5M Centra ledger changes, returns,
orders and pickups. A known set of discrepancies of every finding type is injected and its expected
findings (type, keys, value) recorded; clean rows must produce nothing. The world stays consistent: an
injected sync fault (a Centra change dropped or foreign) also moves Centra's stock snapshot off the store's, so
its key has a stock drift finding as well; a movement lost from the landed POS stream while Centra's ledger
has it and the snapshots agree is a pos_stream_gap.

Measurement: the inputs are pickled once; ``reconcile`` and the datacompy comparison each run ``--repeat``
times, every run in a fresh child process that loads the pickle (median wall time reported). Peak RSS is
the child's own VmHWM, reset after loading (so: inputs resident + the run's working memory;
``peak_rss_with_load_mib`` keeps the unpickling transient). ru_maxrss is not used: through exec it
inherits the parent's (the generator's) high-water mark. datacompy does the stock comparison (location,
SKU), the sale-line comparison against the price list and recomputed tax (transaction, line) and the
store-day totals against downstream; its preparation (joins) is included in its time. ``ratio`` =
datacompy time / our whole reconcile (all 17 finding types injected); ``ratio_same_scope`` = datacompy time / our
time for the same comparisons (prepare + stock drift + store sales + line checks).

Timing on small VMs is noisy: numpy madvises arrays >= 4 MiB as transparent huge pages, and with the
kernel's THP defrag set to "madvise" the first touch of fresh memory can stall on compaction (a cold run
varies by ~0.2 s). NUMPY_MADVISE_HUGEPAGE=0 in the environment (inherited by both contenders' child
processes) removes that variance; the default leaves the environment as it is.

datacompy is imported from the environment; if it is missing, set DATACOMPY_SITE to a site-packages
folder that has it (appended to sys.path, after the project's own packages). The last stdout line is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.domain.reconciliation import ReconciliationInputs, Tolerance, build_reference, reconcile  # noqa: E402
from pipelines.estate.model import estate_from_dict  # noqa: E402
from pipelines.simulators.estate_gen import generate_estate  # noqa: E402

DAY, PREV = "2026-11-24", "2026-11-23"
KEY = ["finding_type", "location_id", "sku", "order_ref", "transaction_id", "tax_rate"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rss_mib() -> float:
    """Peak resident set size of this process: VmHWM of its own memory. (ru_maxrss is not used: after
    fork/vfork + exec it also carries the parent's high-water mark, i.e. the generator's.)"""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ------------------------------------------------------------------------------------------- generation


class Expected:
    """Expected findings, appended per injected discrepancy."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, ftype: str, n: int, *, location_id=None, sku=None, order_ref=None, transaction_id=None,  # noqa: ANN001
            tax_rate=None, value=None) -> None:  # noqa: ANN001
        if n == 0:
            return
        def col(v: object) -> np.ndarray:
            return np.full(n, None, dtype=object) if v is None else np.asarray(v, dtype=object)

        self.parts.append(pd.DataFrame({
            "finding_type": ftype, "location_id": col(location_id), "sku": col(sku), "order_ref": col(order_ref),
            "transaction_id": col(transaction_id),
            "tax_rate": np.full(n, np.nan) if tax_rate is None else np.asarray(tax_rate, dtype=float),
            "value_at_risk": np.round(np.abs(np.asarray(value, dtype=float)), 2)}))

    def frame(self) -> pd.DataFrame:
        return pd.concat(self.parts, ignore_index=True)


def build(quick: bool, seed: int = 7) -> tuple[ReconciliationInputs, pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    NL, NS = (10, 10_000) if quick else (50, 20_000)  # noqa: N806
    n_lines = 100_000 if quick else 1_000_000
    K = 20 if quick else 100  # noqa: N806  injected discrepancies per type (about)
    exp = Expected()

    estate = estate_from_dict(generate_estate(sizes=NS, stores=NL, seed=seed, stock_per_store=(0, 0),
                                              stock_dc=(0, 0)))
    ref = build_reference(estate)
    locs = ref.locations
    loc_ids = locs["location_id"].to_numpy(dtype=object)
    nodes = locs["fulfillment_node_id"].to_numpy(dtype=object)
    whs = locs["warehouse_id"].to_numpy(dtype=np.int64)
    cur = locs["currency"].to_numpy(dtype=object)
    rate = locs["tax_rate"].to_numpy(dtype=float)
    skus = np.array(estate.skus(), dtype=object)
    pl_index = pd.Index(pd.unique(ref.prices["pricelist_id"]))
    P = np.full((len(pl_index), NS), np.nan)  # noqa: N806
    P[pl_index.get_indexer(ref.prices["pricelist_id"]), pd.Index(skus).get_indexer(ref.prices["sku"])] = ref.prices["price"]
    LP = P[pl_index.get_indexer(locs["pricelist_id"].astype("int64"))]  # noqa: N806  (store, sku) -> price

    # SKU roles: U unknown in Centra, I inactive in Centra, C active in Centra but unknown to the POS
    perm = rng.permutation(NS)
    ku, ki, kc = (1, 1, 2) if quick else (2, 2, 3)
    U, I, C = perm[:ku], perm[ku:ku + ki], perm[ku + ki:ku + ki + kc]  # noqa: N806, E741
    role = np.zeros(NS, dtype=np.int8)  # 0 comparable, 1 U, 2 I, 3 C
    role[U], role[I], role[C] = 1, 2, 3
    comparable = np.flatnonzero(role == 0)
    pos_known = np.flatnonzero(role != 3)
    prices = ref.prices[~ref.prices["sku"].isin(skus[U])].reset_index(drop=True)  # Centra has no price for U
    reference = type(ref)(locs, prices, ref.base_currency, ref.fx_to_base, ref.tax_rates)

    # ---------------------------------------------------------------- stock snapshots
    li = np.repeat(np.arange(NL), NS)
    si = np.tile(np.arange(NS), NL)
    on_hand = rng.integers(0, 8, NL * NS)
    physical = on_hand.copy()
    cmask = role[si] == 3
    physical[cmask] = rng.integers(0, 6, int(cmask.sum()))
    physical[si == C[0]] = 0  # one commerce-only SKU without any store stock -> SKU-level finding
    pos_rows = role[si] != 3
    cen_rows = role[si] != 1
    cand = rng.permutation(np.flatnonzero(role[si] == 0))
    over, lost, gone = cand[:K], cand[K:2 * K], cand[2 * K:4 * K]
    gone = gone[on_hand[gone] > 0][: K // 4]
    d = rng.integers(1, 5, K)
    physical[over] += d
    exp.add("stock_drift_oversell", K, location_id=loc_ids[li[over]], sku=skus[si[over]], value=d * LP[li[over], si[over]])
    d = rng.integers(1, 5, K)
    on_hand[lost] += d
    exp.add("stock_drift_lost_sales", K, location_id=loc_ids[li[lost]], sku=skus[si[lost]], value=d * LP[li[lost], si[lost]])
    cen_rows[gone] = False
    exp.add("stock_drift_lost_sales", len(gone), location_id=loc_ids[li[gone]], sku=skus[si[gone]],
            value=on_hand[gone] * LP[li[gone], si[gone]])

    snap_at = f"{DAY}T22:59:59.000000Z"
    pos_stock = pd.DataFrame({
        "business_date": DAY, "snapshot_at": snap_at, "fulfillment_node_id": nodes[li[pos_rows]],
        "location_id": loc_ids[li[pos_rows]], "sku": skus[si[pos_rows]], "on_hand": on_hand[pos_rows],
        "atp": on_hand[pos_rows], "allocations": 0, "safety_stock": 0})
    dc_si = np.flatnonzero(role != 1)
    c_li, c_si = li[cen_rows], si[cen_rows]
    centra_stock = pd.DataFrame({
        "business_date": DAY, "snapshot_at": snap_at,
        "warehouse_id": np.concatenate([whs[c_li], np.ones(len(dc_si), dtype=np.int64)]),
        "location_id": np.concatenate([loc_ids[c_li], np.full(len(dc_si), "DC01", dtype=object)]),
        "size_id": np.concatenate([c_si, dc_si]) + 1,
        "sku": np.concatenate([skus[c_si], skus[dc_si]]),
        "physical": np.concatenate([physical[cen_rows], rng.integers(0, 200, len(dc_si))]),
        "allocated": 0, "free_to_allocate": 0, "demand": 0})
    centra_stock["free_to_allocate"] = centra_stock["physical"]

    # ---------------------------------------------------------------- sale lines (today + some yesterday)
    n_txn = n_lines * 2 // 5
    txn = np.sort(rng.integers(0, n_txn, n_lines))
    first = np.searchsorted(txn, txn)
    line_no = np.arange(n_lines) - first + 1
    t_loc = rng.integers(0, NL, n_txn)
    loc = t_loc[txn]
    sku = pos_known[rng.integers(0, len(pos_known), n_lines)]
    qty = rng.integers(1, 4, n_lines)
    unit = np.round(np.where(np.isnan(LP[loc, sku]), P[0, sku], LP[loc, sku]), 2)
    r = rate[loc]
    gross = np.round(unit * qty, 2)
    disc = np.round(gross * rng.choice([0.0, 0.1, 0.2], n_lines, p=[0.7, 0.2, 0.1]), 2)
    tax = np.round((gross - disc) * r / (1 + r), 2)

    used = np.zeros(n_lines, dtype=bool)
    order = rng.permutation(np.flatnonzero(role[sku] == 0))

    def take(n: int, mask: np.ndarray | None = None) -> np.ndarray:
        ok = ~used[order] if mask is None else ~used[order] & mask[order]
        out = order[ok][:n]
        used[out] = True
        return out

    p_idx = take(K)  # price off the price list (tax stays consistent with the price charged)
    list_price = unit[p_idx].copy()
    unit[p_idx] = np.round(unit[p_idx] * 0.9, 2)
    gross[p_idx] = np.round(unit[p_idx] * qty[p_idx], 2)
    disc[p_idx] = 0.0
    tax[p_idx] = np.round(gross[p_idx] * r[p_idx] / (1 + r[p_idx]), 2)
    exp.add("price_off_pricelist", K, location_id=loc_ids[loc[p_idx]], sku=skus[sku[p_idx]],
            transaction_id=np.array([f"T{t:07d}" for t in txn[p_idx]], dtype=object),
            value=np.abs(unit[p_idx] - list_price) * qty[p_idx])
    t_idx = take(K, (qty == 1) & (gross - disc - tax >= 100))  # tax off by 3-5 cents
    tax[t_idx] += rng.choice([0.03, 0.04, 0.05], len(t_idx)) * rng.choice([-1, 1], len(t_idx))
    tax[t_idx] = np.round(tax[t_idx], 2)
    exp.add("line_tax_mismatch", len(t_idx), location_id=loc_ids[loc[t_idx]], sku=skus[sku[t_idx]],
            transaction_id=np.array([f"T{t:07d}" for t in txn[t_idx]], dtype=object), tax_rate=r[t_idx],
            value=tax[t_idx] - (gross[t_idx] - disc[t_idx]) * r[t_idx] / (1 + r[t_idx]))
    d_idx = take(K)
    neg = np.arange(len(d_idx)) % 2 == 0
    extra = np.round(gross[d_idx] * 0.05, 2)
    disc[d_idx] = np.where(neg, -extra, gross[d_idx] + extra)
    tax[d_idx] = np.round((gross[d_idx] - disc[d_idx]) * r[d_idx] / (1 + r[d_idx]), 2)
    exp.add("line_discount_mismatch", len(d_idx), location_id=loc_ids[loc[d_idx]], sku=skus[sku[d_idx]],
            transaction_id=np.array([f"T{t:07d}" for t in txn[d_idx]], dtype=object), value=extra)
    net = np.round(gross - disc - tax, 2)

    txn_ids = np.array([f"T{t:07d}" for t in range(n_txn)], dtype=object)
    ev_pool = np.array([f"{DAY}T{h:02d}:{m:02d}:00.000000Z" for h in range(8, 20) for m in range(60)], dtype=object)
    sale = pd.DataFrame({
        "business_date": DAY, "transaction_id": txn_ids[txn], "line_no": line_no, "kind": "sale",
        "fulfillment_node_id": nodes[loc], "location_id": loc_ids[loc], "sku": skus[sku], "ean": None,
        "sku_known": role[sku] != 1, "quantity": qty, "unit_price": unit, "discount": disc, "tax": tax,
        "net_amount": net, "currency": cur[loc], "event_time": ev_pool[txn % len(ev_pool)],
        "original_order_ref": None, "source_event": txn_ids[txn]})

    # yesterday's store sales (their returns today are store returns, not online ones)
    n_prev = 5 * K
    pv_loc = rng.integers(0, NL, n_prev)
    pv_sku = comparable[rng.integers(0, len(comparable), n_prev)]
    pv_ids = np.array([f"P{i:06d}" for i in range(n_prev)], dtype=object)

    def lines_frame(day: str, tid: np.ndarray, lloc: np.ndarray, lsku: np.ndarray, lqty: np.ndarray, kind: str,
                    refs: np.ndarray | None) -> pd.DataFrame:
        u = np.round(LP[lloc, lsku], 2)
        g = np.round(u * lqty, 2)
        t = np.round(g * rate[lloc] / (1 + rate[lloc]), 2)
        return pd.DataFrame({
            "business_date": day, "transaction_id": tid, "line_no": 1, "kind": kind, "fulfillment_node_id": nodes[lloc],
            "location_id": loc_ids[lloc], "sku": skus[lsku], "ean": None, "sku_known": True, "quantity": lqty,
            "unit_price": u, "discount": 0.0, "tax": t, "net_amount": np.round(g - t, 2), "currency": cur[lloc],
            "event_time": f"{day}T12:00:00.000000Z",
            "original_order_ref": refs if refs is not None else None, "source_event": tid})

    prev_sales = lines_frame(PREV, pv_ids, pv_loc, pv_sku, np.ones(n_prev, dtype=np.int64), "sale", None)
    store_returns = pd.concat([  # returns of store sales: by reference and on the sale's own transaction
        lines_frame(DAY, np.array([f"SR{i}" for i in range(K)], dtype=object), pv_loc[:K], pv_sku[:K],
                    np.ones(K, dtype=np.int64), "return", pv_ids[:K]),
        lines_frame(DAY, pv_ids[K:2 * K], pv_loc[K:2 * K], pv_sku[K:2 * K], np.ones(K, dtype=np.int64), "return", None),
    ], ignore_index=True)

    # ---------------------------------------------------------------- online orders returned in stores
    n_ord = 10 * K
    o_num = 100_000 + np.arange(n_ord)
    o_loc = rng.integers(0, NL, n_ord)
    o_sku = comparable[rng.integers(0, len(comparable), n_ord)]
    o_qty = rng.integers(1, 4, n_ord)
    o_ret = np.maximum(1, rng.integers(1, 4, n_ord) % (o_qty + 1))
    split = (o_ret >= 2) & (rng.random(n_ord) < 0.4)           # POS: 1 unit yesterday + the rest today
    old_only = np.zeros(n_ord, dtype=bool)
    old_only[rng.permutation(n_ord)[: K // 2]] = True           # returned yesterday only: not judged today
    split &= ~old_only
    centra_two = split & (rng.random(n_ord) < 0.5)              # Centra: two returns as well (else one)
    pos_parts, cen_heads, cen_lines = [], [], []
    # POS today / yesterday parts
    q_today = np.where(split, o_ret - 1, o_ret)
    for day, q, mask in ((DAY, q_today, ~old_only), (PREV, np.ones(n_ord, dtype=np.int64), split),
                         (PREV, o_ret, old_only)):
        i = np.flatnonzero(mask)
        pos_parts.append(lines_frame(day, np.array([f"R{o}-{day[-2:]}" for o in o_num[i]], dtype=object), o_loc[i],
                                     o_sku[i], q[i], "return", o_num[i].astype(str).astype(object)))
    pos_ret = pd.concat(pos_parts, ignore_index=True)

    def centra_return(rid: np.ndarray, i: np.ndarray, q: np.ndarray, wh: np.ndarray) -> None:
        price = np.round(LP[o_loc[i], o_sku[i]], 2)
        cen_heads.append(pd.DataFrame({
            "business_date": DAY, "return_id": rid, "order_number": o_num[i], "created_at": f"{DAY}T13:00:00Z",
            "status": "COMPLETED", "currency": cur[o_loc[i]], "grand_total": price * q, "tax_total": 0.0,
            "refunded": True, "refund_amount": price * q, "refunded_at": f"{DAY}T13:00:00Z",
            "return_warehouse_id": wh, "external_id": None, "line_count": 1}))
        cen_lines.append(pd.DataFrame({
            "business_date": DAY, "return_id": rid, "order_number": o_num[i], "line_id": rid, "sku": skus[o_sku[i]],
            "quantity": q, "unit_price": price, "line_value": np.round(price * q, 2),
            "tax_percent": np.round(rate[o_loc[i]] * 100, 3)}))

    i = np.flatnonzero(~centra_two)
    centra_return(np.array([f"ret-{o}-a" for o in o_num[i]], dtype=object), i, o_ret[i], whs[o_loc[i]])
    i = np.flatnonzero(centra_two)
    centra_return(np.array([f"ret-{o}-a" for o in o_num[i]], dtype=object), i, np.ones(len(i), dtype=np.int64),
                  whs[o_loc[i]])
    centra_return(np.array([f"ret-{o}-b" for o in o_num[i]], dtype=object), i, o_ret[i] - 1, whs[o_loc[i]])
    i = rng.permutation(n_ord)[:K]   # online returns of the same order lines, received at the DC: ignored
    centra_return(np.array([f"ret-{o}-dc" for o in o_num[i]], dtype=object), i, np.ones(len(i), dtype=np.int64),
                  np.ones(len(i), dtype=np.int64))
    heads = pd.concat(cen_heads, ignore_index=True)
    rlines = pd.concat(cen_lines, ignore_index=True)

    judged = rng.permutation(np.flatnonzero(~old_only))
    miss, amt, taxo = judged[:K], judged[K:2 * K], judged[2 * K:3 * K]
    stale = np.flatnonzero(old_only)[: K // 4]   # differences on returns not judged today
    o_price = np.round(LP[o_loc, o_sku], 2)
    pos_amt = np.round(o_price * o_ret, 2)   # POS cumulative refund per order (price x units)
    tday = np.array([f"R{o}-{DAY[-2:]}" for o in o_num], dtype=object)
    drop = np.isin(rlines["order_number"], o_num[np.concatenate([miss, stale])]) & ~rlines["return_id"].str.endswith("-dc")
    rlines, heads = rlines[~drop], heads[~heads["return_id"].isin(rlines.loc[drop, "return_id"])]
    exp.add("return_missing_in_commerce", K, location_id=loc_ids[o_loc[miss]], sku=skus[o_sku[miss]],
            order_ref=o_num[miss].astype(str), transaction_id=tday[miss],
            value=_pos_refund(pos_ret, o_num[miss]))
    first_line = ~rlines["return_id"].str.endswith("-dc") & rlines["return_id"].str.endswith("-a")
    hit = first_line & rlines["order_number"].isin(o_num[amt])
    rlines.loc[hit, "line_value"] = rlines.loc[hit, "line_value"] - 5.0
    exp.add("refund_amount_mismatch", K, location_id=loc_ids[o_loc[amt]], sku=skus[o_sku[amt]],
            order_ref=o_num[amt].astype(str), transaction_id=tday[amt], value=np.full(K, 5.0))
    hit = ~rlines["return_id"].str.endswith("-dc") & rlines["order_number"].isin(o_num[taxo])
    rlines.loc[hit, "tax_percent"] = rlines.loc[hit, "tax_percent"] - 6.0
    ct = (rlines[hit].assign(t=lambda x: x["line_value"] * (x["tax_percent"] / 100) / (1 + x["tax_percent"] / 100))
          .groupby("order_number")["t"].sum())
    pt = pos_ret.assign(o=pd.to_numeric(pos_ret["original_order_ref"])).groupby("o")["tax"].sum()
    exp.add("refund_tax_mismatch", K, location_id=loc_ids[o_loc[taxo]], sku=skus[o_sku[taxo]],
            order_ref=o_num[taxo].astype(str), transaction_id=tday[taxo],
            value=pt.reindex(o_num[taxo]).to_numpy() - ct.reindex(o_num[taxo]).to_numpy())
    del pos_amt
    nr_loc = rng.integers(0, NL, K)
    nr_sku = comparable[rng.integers(0, len(comparable), K)]
    no_ref = lines_frame(DAY, np.array([f"RX{i:05d}" for i in range(K)], dtype=object), nr_loc, nr_sku,
                         np.ones(K, dtype=np.int64), "return", None)
    exp.add("return_without_order_ref", K, location_id=loc_ids[nr_loc], sku=skus[nr_sku],
            transaction_id=no_ref["transaction_id"].to_numpy(), value=no_ref["net_amount"] + no_ref["tax"])

    sale_lines = pd.concat([sale, prev_sales, store_returns, pos_ret, no_ref], ignore_index=True)
    sale_lines["original_order_ref"] = sale_lines["original_order_ref"].astype(object)

    # ---------------------------------------------------------------- movements and Centra's ledger
    n_mov = n_lines // 2
    m_loc = rng.integers(0, NL, n_mov)
    m_sku = pos_known[rng.integers(0, len(pos_known), n_mov)]
    m_type = rng.choice(np.array(["sale", "return", "receipt", "adjustment"], dtype=object), n_mov,
                        p=[0.8, 0.08, 0.06, 0.06])
    m_qty = np.select([m_type == "sale", m_type == "return", m_type == "receipt"],
                      [-rng.integers(1, 4, n_mov), np.ones(n_mov, dtype=np.int64), rng.integers(1, 11, n_mov)],
                      rng.choice([-2, -1, 1, 2], n_mov))
    mkey = m_loc.astype(np.int64) * NS + m_sku
    kc_, cnt = np.unique(mkey, return_counts=True)
    single_sale = kc_[cnt == 1]
    free_keys = np.setdiff1d(np.arange(NL * NS, dtype=np.int64), kc_)
    counted = rng.choice(kc_, 2 * K, replace=False)
    ss = np.flatnonzero((m_type == "sale") & np.isin(mkey, single_sale) & ~np.isin(mkey, counted)
                        & (role[m_sku] == 0))
    # sync faults only on keys without an injected stock drift (a fault's drift is its own, below)
    drifted = np.zeros(NL * NS, dtype=bool)
    drifted[np.concatenate([over, lost, gone])] = True
    drop_m = rng.permutation(ss)
    drop_m = drop_m[~drifted[mkey[drop_m]]][:K]
    un_keys = rng.permutation(free_keys[role[free_keys % NS] == 0])
    un_keys = un_keys[~drifted[un_keys]][:K]
    un_qty = rng.choice([-2, -1, 1, 2], K)
    un_qty = np.where(on_hand[un_keys] + un_qty < 0, -un_qty, un_qty)  # Centra's stock stays >= 0
    exp.add("sync_missing_in_commerce", K, location_id=loc_ids[m_loc[drop_m]], sku=skus[m_sku[drop_m]],
            value=np.abs(m_qty[drop_m]) * LP[m_loc[drop_m], m_sku[drop_m]])
    exp.add("sync_unexpected_in_commerce", K, location_id=loc_ids[un_keys // NS], sku=skus[un_keys % NS],
            value=np.abs(un_qty) * LP[un_keys // NS, un_keys % NS])
    # A real sync failure leaves Centra's stock off the store's: the dropped sale is still on Centra's shelf
    # (oversell), the foreign change moved Centra's stock only; each is also that key's stock drift.
    cen_idx = np.flatnonzero(cen_rows)
    cen_cols = [centra_stock.columns.get_loc(c) for c in ("physical", "free_to_allocate") if c in centra_stock]
    for f_key, f_delta in ((mkey[drop_m], -m_qty[drop_m]), (un_keys, un_qty)):
        rows = np.searchsorted(cen_idx, f_key)
        assert (cen_idx[rows] == f_key).all(), "sync fault on a key without a Centra stock row"
        physical[f_key] += f_delta
        for j in cen_cols:
            centra_stock.iloc[rows, j] = centra_stock.iloc[rows, j].to_numpy() + f_delta
        f_loc, f_sku = f_key // NS, f_key % NS
        for ftype, sel in (("stock_drift_oversell", f_delta > 0), ("stock_drift_lost_sales", f_delta < 0)):
            exp.add(ftype, int(sel.sum()), location_id=loc_ids[f_loc[sel]], sku=skus[f_sku[sel]],
                    value=f_delta[sel] * LP[f_loc[sel], f_sku[sel]])
    # Pure stream gaps: the store's movement never reached the landed POS stream, Centra's ledger has it and
    # both snapshots agree (Centra followed the store): pos_stream_gap, never a sync finding. Own generator,
    # so the draws of everything else stay as they were.
    gap_ok = np.flatnonzero(np.isin(mkey, kc_[cnt == 1]) & ~np.isin(mkey, counted) & (role[m_sku] == 0)
                            & ~drifted[mkey] & (m_qty != 0))
    gap_ok = np.setdiff1d(gap_ok, drop_m)
    gap_m = np.random.default_rng([seed, 1]).permutation(gap_ok)[: K // 2]
    exp.add("pos_stream_gap", len(gap_m), location_id=loc_ids[m_loc[gap_m]], sku=skus[m_sku[gap_m]],
            value=np.abs(m_qty[gap_m]) * LP[m_loc[gap_m], m_sku[gap_m]])
    c_loc, c_sku = counted // NS, counted % NS
    movements = pd.DataFrame({
        "business_date": DAY, "movement_key": [f"mv{i:07d}" for i in range(n_mov + len(counted))],
        "event_name": np.concatenate([np.full(n_mov, "order.opened", dtype=object),
                                      np.full(len(counted), "inventory_count.items_counted", dtype=object)]),
        "event_time": ev_pool[np.arange(n_mov + len(counted)) % len(ev_pool)], "logical_timestamp": 1,
        "fulfillment_node_id": nodes[np.concatenate([m_loc, c_loc])],
        "location_id": loc_ids[np.concatenate([m_loc, c_loc])], "sku": skus[np.concatenate([m_sku, c_sku])],
        "sku_known": True, "movement_type": np.concatenate([m_type, np.full(len(counted), "count", dtype=object)]),
        "quantity": np.concatenate([m_qty, on_hand[counted]]), "source_event": "ev"})
    movements = movements.drop(index=gap_m).reset_index(drop=True)  # lost from the stream (Centra has them)
    keep = np.ones(n_mov, dtype=bool)
    keep[drop_m] = False
    keep &= role[m_sku] != 1
    desc = {"sale": "POS sale", "return": "POS return", "receipt": "POS receipt", "adjustment": "POS adjustment"}
    noise = 5 * K
    n_loc = rng.integers(0, NL, noise)
    n_sku = comparable[rng.integers(0, len(comparable), noise)]
    ch_wh = np.concatenate([whs[m_loc[keep]], whs[un_keys // NS], whs[c_loc], whs[n_loc], whs[n_loc], np.ones(noise, dtype=np.int64)])
    ch_sku = np.concatenate([m_sku[keep], un_keys % NS, c_sku, n_sku, n_sku, n_sku])
    ch_qty = np.concatenate([m_qty[keep], un_qty, rng.integers(-3, 4, len(counted)), -np.ones(noise, dtype=np.int64),
                             np.zeros(noise, dtype=np.int64), np.full(noise, 5)])
    ch_desc = np.concatenate([pd.Series(m_type[keep]).map(desc).to_numpy(dtype=object),
                              np.full(K, "Manual adjustment", dtype=object),
                              np.full(len(counted), "POS count", dtype=object),
                              np.array([f"Shipment {i}-1" for i in range(noise)], dtype=object),
                              np.array([f"Order {i} allocation" for i in range(noise)], dtype=object),
                              np.full(noise, "Supplier delivery", dtype=object)])
    changes = pd.DataFrame({
        "business_date": DAY, "change_id": [f"sc{i:07d}" for i in range(len(ch_wh))], "created_at": ev_pool[0],
        "warehouse_id": ch_wh, "location_id": None, "size_id": ch_sku + 1, "sku": skus[ch_sku], "quantity": ch_qty,
        "description": ch_desc})

    # ---------------------------------------------------------------- orphans (expected from the final frames)
    today_sales = sale[["location_id", "sku", "quantity", "unit_price", "discount"]]
    for ftype, group in (("orphan_sku_pos_unknown_in_commerce", U), ("orphan_sku_pos_inactive_in_commerce", I)):
        g_sk = skus[group]
        st = pos_stock[pos_stock["sku"].isin(g_sk)][["location_id", "sku", "on_hand"]]
        sl = today_sales[today_sales["sku"].isin(g_sk)]
        sl = sl.assign(g=sl["unit_price"] * sl["quantity"], v=sl["unit_price"] * sl["quantity"] - sl["discount"])
        sl = sl.groupby(["location_id", "sku"], as_index=False).agg(q=("quantity", "sum"), g=("g", "sum"), v=("v", "sum"))
        mv = movements[movements["sku"].isin(g_sk)].groupby(["location_id", "sku"], as_index=False).size()
        a = st.merge(sl, how="outer", on=["location_id", "sku"]).merge(mv, how="outer", on=["location_id", "sku"])
        a = a.fillna(0)
        a = a[(a["on_hand"] != 0) | (a["q"] > 0) | (a["size"] > 0)]
        lp = LP[pd.Index(loc_ids).get_indexer(a["location_id"]), pd.Index(skus).get_indexer(a["sku"])]
        if ftype.endswith("unknown_in_commerce"):
            lp = np.where(a["q"] > 0, a["g"] / a["q"].where(a["q"] > 0, 1), 0.0)
        exp.add(ftype, len(a), location_id=a["location_id"], sku=a["sku"], value=a["on_hand"] * lp + a["v"])
    cs = centra_stock[centra_stock["sku"].isin(skus[C]) & (centra_stock["warehouse_id"] != 1) & (centra_stock["physical"] != 0)]
    exp.add("orphan_sku_commerce_unknown_in_pos", len(cs), location_id=cs["location_id"], sku=cs["sku"],
            value=cs["physical"].to_numpy() * LP[pd.Index(loc_ids).get_indexer(cs["location_id"]),
                                                 pd.Index(skus).get_indexer(cs["sku"])])
    exp.add("orphan_sku_commerce_unknown_in_pos", 1, sku=[skus[C[0]]], value=[0.0])
    centra_catalog = pd.DataFrame({
        "business_date": DAY, "size_id": np.arange(NS) + 1, "sku": skus, "ean": None, "product_number": "P",
        "product_name": "Product", "product_status": "ACTIVE", "variant_number": "V", "variant_name": "Variant",
        "size_name": "M", "is_active": role != 2})[role != 1]
    retired = pd.DataFrame({"business_date": DAY, "size_id": NS + 1 + np.arange(K), "sku": [f"RETIRED-{i}" for i in range(K)],
                            "ean": None, "product_number": "P0", "product_name": "Old", "product_status": "INACTIVE",
                            "variant_number": "V", "variant_name": "Variant", "size_name": "M", "is_active": False})
    centra_catalog = pd.concat([centra_catalog, retired], ignore_index=True)
    pos_catalog = pd.DataFrame({"business_date": DAY, "sku": skus[pos_known], "product_id": skus[pos_known],
                                "locations": NL, "on_hand_total": 1})

    # ---------------------------------------------------------------- downstream (ERP) store sales
    s = sale.assign(gross=sale["unit_price"] * sale["quantity"],
                    tax_rate=rate[pd.Index(loc_ids).get_indexer(sale["location_id"])])
    ds = s.groupby(["location_id", "tax_rate"], as_index=False, sort=True).agg(
        count=("transaction_id", "nunique"), gross=("gross", "sum"), discount=("discount", "sum"),
        tax=("tax", "sum"), net=("net_amount", "sum"))
    ds.insert(1, "business_date", DAY)
    kinds = rng.permutation(len(ds))[: max(4, NL // 5)]
    drop_ds = []
    for j, row in enumerate(kinds):
        lid, tr = ds.loc[row, "location_id"], ds.loc[row, "tax_rate"]
        if j % 4 == 0:    # one transaction never posted
            ds.loc[row, ["count", "gross", "net"]] -= [1, 100.0, 80.0]
            exp.add("store_sales_mismatch", 1, location_id=[lid], tax_rate=[tr], value=[100.0])
        elif j % 4 == 1:  # the whole store-day never posted
            drop_ds.append(row)
            exp.add("store_sales_mismatch", 1, location_id=[lid], tax_rate=[tr], value=[ds.loc[row, "gross"]])
        elif j % 4 == 2:  # posted twice as a count only
            ds.loc[row, "count"] += 1
            exp.add("store_sales_mismatch", 1, location_id=[lid], tax_rate=[tr], value=[0.0])
        else:             # tax posted with a rounding error
            ds.loc[row, "tax"] += 0.5
            exp.add("store_sales_mismatch", 1, location_id=[lid], tax_rate=[tr], value=[0.5])
    ds = ds.drop(index=drop_ds).reset_index(drop=True)

    # ---------------------------------------------------------------- click and collect
    n_pick = 5 * K
    pk_num = 500_000 + np.arange(n_pick)
    pk_loc = rng.integers(0, NL, n_pick)
    pk_total = np.round(LP[pk_loc, comparable[rng.integers(0, len(comparable), n_pick)]], 2)
    status = np.full(n_pick, "SHIPPED", dtype=object)
    opened = rng.permutation(n_pick)[: K + K // 5]
    op, missing = opened[:K], opened[K:]
    status[op] = rng.choice(np.array(["PROCESSING", "CONFIRMED"], dtype=object), len(op))
    exp.add("click_collect_open", len(op), location_id=loc_ids[pk_loc[op]], order_ref=pk_num[op].astype(str),
            value=pk_total[op])
    exp.add("click_collect_open", len(missing), location_id=loc_ids[pk_loc[missing]],
            order_ref=pk_num[missing].astype(str), value=np.zeros(len(missing)))
    have = np.setdiff1d(np.arange(n_pick), missing)
    orders = pd.DataFrame({
        "business_date": PREV, "order_id": [f"o{n}" for n in np.concatenate([o_num, pk_num[have]])],
        "order_number": np.concatenate([o_num, pk_num[have]]),
        "status": np.concatenate([np.full(n_ord, "SHIPPED", dtype=object), status[have]]),
        "created_at": f"{PREV}T09:00:00Z", "store_id": 1, "market_id": 1, "pricelist_id": 1,
        "currency": np.concatenate([cur[o_loc], cur[pk_loc[have]]]), "country": None, "currency_base_rate": 1.0,
        "email": None, "external_id": None, "grand_total": np.concatenate([o_price * o_qty, pk_total[have]]),
        "tax_total": 0.0, "discount_total": 0.0, "shipping_total": 0.0, "line_count": 1})
    pickups = pd.DataFrame({"order_number": pk_num, "location_id": loc_ids[pk_loc], "completed_at": f"{DAY}T15:00:00Z"})

    st_rows = rng.permutation(NL * NS)[: NL * NS // 10]
    sell_through = pd.DataFrame({"location_id": loc_ids[st_rows // NS], "sku": skus[st_rows % NS],
                                 "units_sold_recent": rng.integers(0, 20, len(st_rows))})

    inputs = ReconciliationInputs(
        business_date=DAY, reference=reference, pos_sale_lines=sale_lines, pos_stock_snapshot=pos_stock,
        pos_catalog=pos_catalog, pos_stock_movements=movements, centra_orders=orders, centra_returns=heads,
        centra_return_lines=rlines, centra_stock_snapshot=centra_stock, centra_stock_changes=changes,
        centra_catalog=centra_catalog, downstream_sales=ds, pickups=pickups, sell_through=sell_through)
    info = {"stock_rows_pos": len(pos_stock), "stock_rows_centra": int((centra_stock["warehouse_id"] != 1).sum()),
            "sale_lines": len(sale_lines), "movements": len(movements), "stock_changes": len(changes)}
    return inputs, exp.frame(), info


def _pos_refund(pos_ret: pd.DataFrame, orders: np.ndarray) -> np.ndarray:
    g = pos_ret.assign(o=pd.to_numeric(pos_ret["original_order_ref"]), a=pos_ret["net_amount"] + pos_ret["tax"])
    return g.groupby("o")["a"].sum().reindex(orders).to_numpy()


# ------------------------------------------------------------------------------------------- checking


def _norm(df: pd.DataFrame) -> pd.DataFrame:
    out = df[KEY + ["value_at_risk"]].copy()
    for c in KEY[:-1]:
        out[c] = out[c].astype(object).where(out[c].notna(), "").astype(str)
    out["tax_rate"] = out["tax_rate"].astype(float).round(4).fillna(-1.0)
    return out


def compare_expected(findings: pd.DataFrame, expected: pd.DataFrame) -> dict:
    j = _norm(findings).merge(_norm(expected), how="outer", on=KEY, suffixes=("", "_exp"), indicator=True)
    both = j["_merge"] == "both"
    value_bad = both & ((j["value_at_risk"] - j["value_at_risk_exp"]).abs() > 0.0101)
    out = {"matched": int((both & ~value_bad).sum()), "missed": int((j["_merge"] == "right_only").sum()),
           "false_positives": int((j["_merge"] == "left_only").sum()), "value_mismatches": int(value_bad.sum())}
    bad = j[(j["_merge"] != "both") | value_bad]
    if len(bad):
        log("differences vs expected (first 10):\n" + bad.head(10).to_string())
    return out


# ------------------------------------------------------------------------------------------- datacompy


def _datacompy():  # noqa: ANN202
    try:
        import datacompy
    except ImportError:
        extra = os.environ.get("DATACOMPY_SITE")
        if not extra:
            return None
        sys.path.append(extra)
        try:
            import datacompy
        except ImportError:
            return None
    return getattr(datacompy, "PandasCompare", None) or datacompy.Compare


def run_datacompy(inputs: ReconciliationInputs) -> dict:
    """The stock comparison and the sales comparisons (lines vs price list and tax; store-day totals vs
    downstream) with datacompy, from the same input frames; preparation included in the time."""
    compare_cls = _datacompy()
    if compare_cls is None:
        return {"datacompy_wall_s": None, "datacompy_error": "datacompy not importable"}
    t0 = time.perf_counter()
    locs, prices = inputs.reference.locations, inputs.reference.prices
    pos = inputs.pos_stock_snapshot[["location_id", "sku", "on_hand"]].rename(columns={"on_hand": "qty"})
    cen = inputs.centra_stock_snapshot[["warehouse_id", "sku", "physical"]].merge(
        locs[["warehouse_id", "location_id"]], on="warehouse_id")[["location_id", "sku", "physical"]]
    cen = cen.rename(columns={"physical": "qty"})
    lines = inputs.pos_sale_lines
    lines = lines[(lines["kind"] == "sale") & (lines["business_date"] == inputs.business_date)]
    lines = lines[["transaction_id", "line_no", "location_id", "sku", "quantity", "unit_price", "discount", "tax",
                   "net_amount"]]
    ref = lines.merge(locs[["location_id", "pricelist_id", "tax_rate"]], on="location_id", how="left")
    ref = ref.merge(prices.rename(columns={"price": "list_price"}), on=["pricelist_id", "sku"], how="left")
    gross = ref["unit_price"] * ref["quantity"]
    expected = pd.DataFrame({
        "transaction_id": ref["transaction_id"], "line_no": ref["line_no"],
        "unit_price": ref["list_price"].fillna(ref["unit_price"]),
        "tax": ((gross - ref["discount"]) * ref["tax_rate"] / (1 + ref["tax_rate"])).round(2),
        "discount": ref["discount"].clip(lower=0).where(ref["discount"] <= gross, gross)})
    actual = lines[["transaction_id", "line_no", "unit_price", "tax", "discount"]]
    agg = ref.assign(gross=gross).groupby(["location_id", "tax_rate"], as_index=False).agg(
        count=("transaction_id", "nunique"), gross=("gross", "sum"), discount=("discount", "sum"),
        tax=("tax", "sum"), net=("net_amount", "sum"))
    ds = inputs.downstream_sales[["location_id", "tax_rate", "count", "gross", "discount", "tax", "net"]]
    t_prep = time.perf_counter()
    mism = {}
    for name, a, b, keys in (("stock", pos, cen, ["location_id", "sku"]),
                             ("sale_lines", actual, expected, ["transaction_id", "line_no"]),
                             ("store_sales", agg, ds, ["location_id", "tax_rate"])):
        t = time.perf_counter()
        c = compare_cls(a, b, join_columns=keys, abs_tol=0.01)
        n = len(c.all_mismatch()) + len(c.df1_unq_rows) + len(c.df2_unq_rows)
        mism[name] = int(n)
        log(f"datacompy {name}: {len(a):,} vs {len(b):,} rows, {n} differing rows, {time.perf_counter() - t:.2f}s")
    t1 = time.perf_counter()
    return {"datacompy_wall_s": round(t1 - t0, 3), "datacompy_compare_only_s": round(t1 - t_prep, 3),
            "datacompy_differences": mism}


# ------------------------------------------------------------------------------------------- child


def child(kind: str, inp: str, out: str) -> None:
    """In a fresh process: load the inputs, run ours (reconcile) or datacompy once, print figures as JSON."""
    with open(inp, "rb") as fh:
        inputs = pickle.load(fh)
    loaded, load_peak = current_rss_mib(), rss_mib()
    reset_peak()  # the unpickling transient is the bench's transport, not the reconciliation
    mem = {"rss_after_load_mib": round(loaded, 1), "peak_rss_with_load_mib": round(load_peak, 1)}
    if kind == "datacompy":
        res = run_datacompy(inputs)
        print(json.dumps({**res, "peak_rss_mib": round(rss_mib(), 1), **mem}))
        return
    t0 = time.perf_counter()
    res = reconcile(inputs, Tolerance())
    wall = time.perf_counter() - t0
    peak = rss_mib()
    with open(out, "wb") as fh:
        pickle.dump(res.findings, fh, protocol=pickle.HIGHEST_PROTOCOL)
    print(json.dumps({"wall_s": round(wall, 3), "peak_rss_mib": round(peak, 1), **mem, "timings_s": res.timings_s}))


def spawn(kind: str, inp: str, out: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, inp, out], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{kind} child failed with {proc.returncode}")
    for line in proc.stdout.splitlines()[:-1]:
        print(line, flush=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 stock rows and sale lines")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3, help="fresh child processes per contender (median reported)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "INPUTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    t = time.perf_counter()
    inputs, expected, info = build(args.quick, args.seed)
    log(f"generated inputs in {time.perf_counter() - t:.1f}s: {info}; {len(expected)} expected findings")
    runs, dcs = [], []
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp:
        inp, out = os.path.join(tmp, "inputs.pkl"), os.path.join(tmp, "findings.pkl")
        with open(inp, "wb") as fh:
            pickle.dump(inputs, fh, protocol=pickle.HIGHEST_PROTOCOL)
        del inputs
        log(f"inputs pickled ({os.path.getsize(inp) / 2**20:.0f} MiB); {args.repeat} run(s) of each in fresh processes")
        for i in range(args.repeat):
            runs.append(spawn("ours", inp, out))
            log(f"reconcile run {i + 1}: {runs[-1]['wall_s']}s, peak RSS {runs[-1]['peak_rss_mib']} MiB "
                f"(inputs loaded: {runs[-1]['rss_after_load_mib']} MiB); per rule {runs[-1]['timings_s']}")
            if i == 0:
                with open(out, "rb") as fh:
                    findings = pickle.load(fh)
                log("findings by type: " + json.dumps(findings["finding_type"].value_counts().sort_index().to_dict()))
                check = compare_expected(findings, expected)
                log(f"vs expected: {check}")
        for i in range(args.repeat):
            dcs.append(spawn("datacompy", inp, out))
            if dcs[-1].get("datacompy_wall_s") is None:
                log(f"datacompy: {dcs[-1].get('datacompy_error')}")
                break
            log(f"datacompy run {i + 1}: {dcs[-1]['datacompy_wall_s']}s (compare only "
                f"{dcs[-1]['datacompy_compare_only_s']}s), peak RSS {dcs[-1]['peak_rss_mib']} MiB")
    wall = float(np.median([r["wall_s"] for r in runs]))
    scope = float(np.median([sum(r["timings_s"].get(x, 0.0) for x in ("prepare", "stock_drift", "store_sales", "lines"))
                             for r in runs]))
    dc = {"datacompy_wall_s": None, "datacompy_error": dcs[-1].get("datacompy_error")}
    if dcs and dcs[-1].get("datacompy_wall_s") is not None:
        dc = {"datacompy_wall_s": float(np.median([d["datacompy_wall_s"] for d in dcs])),
              "datacompy_compare_only_s": float(np.median([d["datacompy_compare_only_s"] for d in dcs])),
              "datacompy_peak_rss_mib": max(d["peak_rss_mib"] for d in dcs),
              "datacompy_differences": dcs[-1]["datacompy_differences"]}
    dcw = dc["datacompy_wall_s"]
    result = {
        "mode": "quick" if args.quick else "full",
        "rows": info["stock_rows_pos"] + info["sale_lines"], **info,
        "wall_s": round(wall, 3), "wall_s_runs": [r["wall_s"] for r in runs],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "rss_inputs_mib": runs[0]["rss_after_load_mib"],
        "peak_rss_with_load_mib": max(r["peak_rss_with_load_mib"] for r in runs),
        "findings": len(findings), "expected_findings": len(expected), **check, **dc,
        "ratio": round(dcw / wall, 2) if dcw else None,
        "ratio_same_scope": round(dcw / scope, 2) if dcw else None,
        "cores": os.cpu_count(), "timings_s": runs[0]["timings_s"],
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
