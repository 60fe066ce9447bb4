"""Kiosk take-home sales in the stock rules (stock drift and the sync rule): explained movements, not differences.

A take-home sale paid at a Cloudshelf kiosk deducts the store's Centra warehouse through our stock sync
(`pipelines.sync.kiosk_movements`), but NewStore never records it: its on-hand stays too high until the store counts
the key, and its event stream has no delta for it. Without this, both stock rules read the kiosk's deductions as
unexplained: stock drift sees Centra below NewStore (lost sales), the sync rule sees Centra move without a POS delta.

- Stock drift and the sync rule's snapshot evidence compare Centra with the *shelf*: NewStore's on-hand less the
  kiosk units sold after the key's latest count (`pipelines.domain.kiosk.uncounted`, the same arithmetic as the full
  resync). ``kiosk_uncounted`` frame: location_id, sku, units (at the day's cut-off), units_before (at the previous
  cut-off; absent: 0). Without a loaded one, :func:`uncounted_on_day` derives it from the day's own frames: the day's
  paid take-home units after the key's last count of the day, and 0 at the previous cut-off. That is consistent for
  the sync rule (both cut-offs leave earlier days' units out alike) and a lower bound for stock drift (units sold on
  earlier days and not yet counted still show as drift).
- The sync rule's ledger counts the day's paid take-home units K (:func:`day_units`) as POS deltas. What Centra did
  not deduct of them is `kiosk_sale_not_deducted`'s (`rules.kiosk`: min(S, K) of the shortfall S of our sync's own
  changes, :func:`sync_changes`), so the sync rule takes exactly those units out (:func:`kiosk_share`): nothing is
  counted twice, and a foreign change in Centra is never taken for the kiosk's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.domain.kiosk.orders_frame import PAID_STATUSES, TAKE_HOME
from pipelines.domain.kiosk.uncounted import uncounted_units
from pipelines.domain.reconciliation.rules.frames import _pair_key
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys
from pipelines.domain.reconciliation.rules.kiosk import SYNC_DESCRIPTION_PREFIX

COLUMNS = ["location_id", "sku", "units", "units_before"]


def take_home_sales(kiosk_lines: pd.DataFrame | None, business_date: str | None = None) -> pd.DataFrame:
    """The paid take-home kiosk lines (of ``business_date`` when the frame has that column) with a store and a SKU:
    location_id, sku, created_at, units (as `rules.kiosk` selects them)."""
    cols = ["location_id", "sku", "created_at", "units"]
    if kiosk_lines is None or not len(kiosk_lines):
        return pd.DataFrame(columns=cols)
    t = kiosk_lines
    keep = (t["fulfilment_kind"] == TAKE_HOME) & t["status"].isin(PAID_STATUSES) & t["sku"].notna() \
        & t["location_id"].notna()
    if business_date is not None and "business_date" in t.columns:
        keep &= t["business_date"] == business_date
    t = t[keep]
    return pd.DataFrame({"location_id": t["location_id"].astype(object).to_numpy(),
                         "sku": t["sku"].astype(object).to_numpy(), "created_at": t["created_at"].to_numpy(),
                         "units": pd.to_numeric(t["quantity"], errors="coerce").fillna(0).to_numpy(dtype=float)},
                        columns=cols)


def day_units(kiosk_lines: pd.DataFrame | None, business_date: str | None = None) -> pd.DataFrame:
    """The day's paid take-home units per (location_id, sku)."""
    t = take_home_sales(kiosk_lines, business_date)
    return t.groupby(["location_id", "sku"], as_index=False)["units"].sum()[["location_id", "sku", "units"]]


def uncounted_on_day(business_date: str, kiosk_lines: pd.DataFrame | None, pos_movements: pd.DataFrame | None,
                     locations: pd.DataFrame, *, keys: KeySpace | None = None) -> pd.DataFrame:
    """``kiosk_uncounted`` from the day's frames alone: per (store, SKU), the day's paid take-home units sold after
    the key's last POS count of the day (pos_movements rows of the day with movement_type 'count', dated by
    event_time); units_before = 0."""
    sales = take_home_sales(kiosk_lines, business_date)
    if not len(sales):
        return pd.DataFrame(columns=COLUMNS)
    k = _keys(keys, locations, None)
    loc_ids = locations["location_id"].to_numpy(dtype=object)
    counts: list[tuple[tuple[str, str], str]] = []
    if pos_movements is not None and len(pos_movements) and "event_time" in pos_movements.columns:
        store = k.store(pos_movements)
        mask = k.day(pos_movements, business_date) & k.eq(pos_movements, "movement_type", "count") & (store >= 0)
        if mask.any():
            c = pd.DataFrame({"location_id": loc_ids[store[mask]], "sku": pos_movements["sku"].to_numpy()[mask],
                              "event_time": pos_movements["event_time"].to_numpy()[mask]})
            c = c.merge(sales[["location_id", "sku"]].drop_duplicates(), on=["location_id", "sku"])
            counts = [((a, s), t) for a, s, t in c.itertuples(index=False)]
    units = uncounted_units((((a, s), t, u) for a, s, t, u in sales.itertuples(index=False)), counts)
    rows = [(a, s, float(u), 0.0) for (a, s), u in units.items()]
    return pd.DataFrame(rows, columns=COLUMNS)


def encode(k: KeySpace, *frames: pd.DataFrame | None) -> None:
    """Give the frames' SKUs their codes in ``k`` (before a rule fixes its key width)."""
    for f in frames:
        if f is not None and len(f):
            k.sku(f)


def parts(k: KeySpace, frame: pd.DataFrame | None, column: str, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``frame[column]`` per (store, SKU) as one `_group` part (its store and SKU codes in ``k``); [] when the frame
    or the column is absent. Call :func:`encode` on the frame before ``width`` is fixed."""
    if frame is None or not len(frame) or column not in frame.columns:
        return []
    store = k.store(frame)
    ok = store >= 0
    sku = k.sku(frame)
    w = pd.to_numeric(frame[column], errors="coerce").fillna(0).to_numpy(dtype=float)
    return [(_pair_key(store[ok], sku[ok], width), w[ok])]


def shelf(on_hand: np.ndarray, uncounted: np.ndarray) -> np.ndarray:
    """NewStore's on-hand less the kiosk units it does not know of, never below 0 where there are such units (the
    full resync's target, `pipelines.domain.kiosk.uncounted.shelf_on_hand`)."""
    return np.where(uncounted > 0, np.maximum(on_hand - uncounted, 0.0), on_hand)


def sync_changes(descriptions: np.ndarray, prefix: str = SYNC_DESCRIPTION_PREFIX) -> np.ndarray:
    """Row mask: Centra changes our stock sync made (their description starts with ``prefix``, as `rules.kiosk`
    selects them)."""
    codes, uniq = pd.factorize(descriptions)
    flags = np.array([str(d).startswith(prefix) for d in uniq], dtype=bool)
    return flags[codes] if len(uniq) else np.zeros(len(descriptions), dtype=bool)


def kiosk_share(shortfall: np.ndarray, kiosk_units: np.ndarray) -> np.ndarray:
    """Of a shortfall S = Centra's net - (POS net - K) > 0 (Centra deducted less than the POS and the kiosk moved),
    the part `kiosk_sale_not_deducted` reports: min(S, K) for S > 0, else 0."""
    return np.clip(shortfall, 0.0, np.maximum(kiosk_units, 0.0))
