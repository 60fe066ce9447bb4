"""Kiosk take-home units NewStore's on-hand does not know of yet (pure; no Dagster, no I/O).

A take-home sale paid at a Cloudshelf kiosk leaves the store with the customer, but the store system (NewStore)
never records it: our stock sync deducts the store's Centra warehouse (`pipelines.sync.kiosk_movements`), and
NewStore's on-hand stays that much too high until the store next counts the key. A count measures the shelf, so
kiosk units sold before it are in it already; only the units sold after the key's latest *real* count are still
missing from NewStore's on-hand. (A resync correction is a synthetic count, `movement_type` count with event
`stock_resync`: it sets Centra from NewStore's own figure and measures nothing; the callers leave it out.)

- :func:`uncounted_units`: per key, the kiosk units sold after the key's latest count (all of them when the key was
  never counted), as of a moment.
- :func:`shelf_on_hand`: what the shelf really holds = max(0, NewStore on-hand - those units); the full resync sets
  Centra to it (`pipelines.sync.resync`), the reconciliation compares Centra with it
  (`pipelines.domain.reconciliation.rules.kiosk_stock`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import TypeVar

from pipelines.domain.timeutil import parse_time

K = TypeVar("K", bound=Hashable)


def uncounted_units(sales: Iterable[tuple[K, str | datetime, int]], counts: Iterable[tuple[K, str | datetime]],
                    *, at: str | datetime | None = None) -> dict[K, int]:
    """Kiosk units per key sold strictly after the key's latest count, both at or before ``at`` (None: all).

    sales: (key, time, units) with units > 0 for units that left the store (a kiosk sale row's quantity is
    negative: pass its negation). counts: (key, time) of the real counts (resync corrections left out). A sale at
    the very instant of a count is taken as counted (the count's shelf already lacks it). Keys with no uncounted
    units are absent.
    """
    limit = parse_time(at) if at is not None else None
    latest: dict[K, datetime] = {}
    for key, when in counts:
        t = parse_time(when)
        if limit is not None and t > limit:
            continue
        if key not in latest or t > latest[key]:
            latest[key] = t
    out: dict[K, int] = {}
    for key, when, units in sales:
        t = parse_time(when)
        if limit is not None and t > limit:
            continue
        counted = latest.get(key)
        if counted is not None and t <= counted:
            continue
        out[key] = out.get(key, 0) + int(units)
    return {k: v for k, v in out.items() if v}


def shelf_on_hand(on_hand: int, uncounted: int) -> int:
    """What the shelf holds: NewStore's on-hand less the kiosk units it does not know of, never below 0."""
    return max(0, int(on_hand) - int(uncounted))
