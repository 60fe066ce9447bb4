"""Kiosk transactions as finance posts them, and what the chosen posting mode has posted by a time (pure).

Cloudshelf is the record of the kiosk transactions; finance posts them to its ledger in one of two modes
(`PIPELINES_FINANCE_POSTING_MODE`, `ReconciliationSettings.posting_mode`):

- ``realtime``: each paid kiosk transaction is posted when it happens (at its `createdAt`): what is posted at any
  moment of the day equals what has traded so far; one posting per transaction.
- ``daily_batch``: one posting per store, business day and currency, after the day's cut-off (the end of the
  business day in the business timezone): simpler to reconcile (one figure per store, day and currency, matched once
  against the validated day), but nothing of the day is posted before the cut-off: intra-day reporting lags by up to
  a day (the first transaction of the day waits the longest).

A transaction is a kiosk order in a paid status (PAID, PARTIALLY_REFUNDED, REFUNDED: the customer paid; refunds are
postings of their own, not in this section), valued at the sum of its lines (quantity x price, as the kiosk charged),
take-home and delivery alike.

`day_summary` gives the finance report's kiosk section per (store, currency): the day's take-home and delivery
counts and amounts, the delivery amount Centra holds (the traded amount corrected by the day's kiosk order findings:
missing orders and total differences, which the reconciliation judged against Centra's own orders), and for the
mode: postings, amount posted intra-day (strictly before the cut-off), amount posted by the cut-off, what traded but
was not yet posted intra-day, and the longest wait of a transaction for its posting.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from pipelines.domain.kiosk.orders_frame import DELIVERY, PAID_STATUSES, TAKE_HOME, kiosk_orders
from pipelines.domain.timeutil import day_window_utc, parse_time

REALTIME, DAILY_BATCH = "realtime", "daily_batch"
POSTING_MODES = (REALTIME, DAILY_BATCH)
TRANSACTION_COLUMNS = ["order_id", "location_id", "fulfilment_kind", "currency", "amount", "created_at"]
POSTING_COLUMNS = ["location_id", "currency", "posted_at", "amount", "transactions"]
SUMMARY_COLUMNS = [
    "location_id", "currency", "take_home_count", "take_home_amount", "delivery_count", "delivery_amount",
    "traded_count", "traded_amount", "centra_missing_count", "centra_missing_amount", "centra_total_diff",
    "centra_delivery_amount", "posting_mode", "postings", "posted_intraday", "posted_by_cutoff",
    "unposted_intraday", "max_lag_s"]
MISSING_TYPE, TOTAL_TYPE = "kiosk_order_missing_in_commerce", "kiosk_order_total_mismatch"


def check_mode(mode: str) -> str:
    """The mode, or a ValueError naming the two modes."""
    if mode not in POSTING_MODES:
        raise ValueError(f"posting mode must be one of {', '.join(POSTING_MODES)}, not {mode!r}")
    return mode


def transactions(kiosk_lines: pd.DataFrame | None) -> pd.DataFrame:
    """The paid kiosk orders of the day's `cloudshelf_orders` lines as transactions (TRANSACTION_COLUMNS)."""
    o = kiosk_orders(kiosk_lines if kiosk_lines is not None else pd.DataFrame())
    o = o[o["status"].isin(PAID_STATUSES)]
    return o.rename(columns={"total": "amount"})[TRANSACTION_COLUMNS].reset_index(drop=True)


def cutoff(business_date: str, tz: str) -> datetime:
    """The day's cut-off: the end of the business day (UTC)."""
    return day_window_utc(business_date, tz)[1]


def postings(tx: pd.DataFrame, mode: str, cut: datetime) -> pd.DataFrame:
    """The postings of the day's transactions in `mode` (POSTING_COLUMNS; posted_at UTC datetimes): realtime one per
    transaction at its created_at; daily_batch one per (store, currency) at the cut-off."""
    check_mode(mode)
    if tx.empty:
        return pd.DataFrame(columns=POSTING_COLUMNS)
    if mode == REALTIME:
        out = tx.assign(posted_at=[parse_time(t) for t in tx["created_at"]], transactions=1)
        return out[POSTING_COLUMNS].reset_index(drop=True)
    g = tx.groupby(["location_id", "currency"], as_index=False, dropna=False).agg(
        amount=("amount", "sum"), transactions=("order_id", "size"))
    g["posted_at"] = cut
    g["amount"] = g["amount"].round(2)
    return g[POSTING_COLUMNS]


def posted_as_of(posts: pd.DataFrame, as_of: datetime, *, inclusive: bool = True) -> pd.DataFrame:
    """Amount posted by `as_of` per (location_id, currency) (strictly before it when not `inclusive`)."""
    if posts.empty:
        return pd.DataFrame(columns=["location_id", "currency", "amount"])
    at = pd.Series(posts["posted_at"].tolist())
    mask = (at <= as_of) if inclusive else (at < as_of)
    sub = posts[mask.to_numpy()]
    return sub.groupby(["location_id", "currency"], as_index=False, dropna=False)["amount"].sum()


def _findings_by_store(findings: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["location_id", "currency", "centra_missing_count", "centra_missing_amount", "centra_total_diff"]
    if findings is None or findings.empty:
        return pd.DataFrame(columns=cols)
    f = findings[findings["finding_type"].isin([MISSING_TYPE, TOTAL_TYPE])]
    if f.empty:
        return pd.DataFrame(columns=cols)
    miss = f["finding_type"] == MISSING_TYPE
    f = f.assign(centra_missing_count=miss.astype(int),
                 centra_missing_amount=f["amount_pos"].astype(float).where(miss, 0.0).fillna(0.0),
                 centra_total_diff=f["amount_diff"].astype(float).where(~miss, 0.0).fillna(0.0))
    return f.groupby(["location_id", "currency"], as_index=False, dropna=False)[cols[2:]].sum()


def day_summary(kiosk_lines: pd.DataFrame | None, findings: pd.DataFrame | None, mode: str, business_date: str,
                tz: str) -> pd.DataFrame:
    """The kiosk section of the day's finance report, one row per (store, currency) that traded (SUMMARY_COLUMNS),
    sorted by store and currency. Money rounded to cents; max_lag_s: the longest time a transaction of the row waited
    for its posting (realtime 0; daily_batch the cut-off minus the first transaction)."""
    check_mode(mode)
    tx = transactions(kiosk_lines)
    if tx.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    cut = cutoff(business_date, tz)
    keys = ["location_id", "currency"]
    kinds = []
    for kind, name in ((TAKE_HOME, "take_home"), (DELIVERY, "delivery")):
        sub = tx[tx["fulfilment_kind"] == kind]
        kinds.append(sub.groupby(keys, as_index=False, dropna=False).agg(
            **{f"{name}_count": ("order_id", "size"), f"{name}_amount": ("amount", "sum")}))
    out = tx.groupby(keys, as_index=False, dropna=False).agg(
        traded_count=("order_id", "size"), traded_amount=("amount", "sum"),
        first_at=("created_at", "min"))
    for part in kinds:
        out = out.merge(part, on=keys, how="left")
    out = out.merge(_findings_by_store(findings), on=keys, how="left")
    posts = postings(tx, mode, cut)
    n_posts = posts.groupby(keys, as_index=False, dropna=False)["transactions"].size().rename(
        columns={"size": "postings"})
    intraday = posted_as_of(posts, cut, inclusive=False).rename(columns={"amount": "posted_intraday"})
    by_cut = posted_as_of(posts, cut, inclusive=True).rename(columns={"amount": "posted_by_cutoff"})
    for part in (n_posts, intraday, by_cut):
        out = out.merge(part, on=keys, how="left")
    for c in ("take_home_count", "delivery_count", "centra_missing_count", "postings"):
        out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0).astype("int64")
    for c in ("take_home_amount", "delivery_amount", "traded_amount", "centra_missing_amount", "centra_total_diff",
              "posted_intraday", "posted_by_cutoff"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float).fillna(0.0).round(2)
    out["centra_delivery_amount"] = (out["delivery_amount"] - out["centra_missing_amount"]
                                     + out["centra_total_diff"]).round(2)
    out["unposted_intraday"] = (out["traded_amount"] - out["posted_intraday"]).round(2)
    out["posting_mode"] = mode
    out["max_lag_s"] = [0.0 if mode == REALTIME else max(0.0, (cut - parse_time(t)).total_seconds())
                        for t in out["first_at"]]
    return out.sort_values(keys, kind="mergesort").reset_index(drop=True)[SUMMARY_COLUMNS]
