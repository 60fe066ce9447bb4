"""The silent-sync-failure rule: the day's net POS stock deltas vs Centra's stock-change ledger, judged
against NewStore's own stock.

The POS deltas come from NewStore's event stream, and so does everything the stock sync sends to Centra: a
lost (or late-dated) event is invisible to both. NewStore's stock per location and SKU (``pos_stock_snapshot``,
read from its API) does not share the stream's failure, so where the two ledgers differ but NewStore's stock
agrees with Centra's over the day, Centra is right and the stream is what is incomplete
(:data:`~pipelines.domain.reconciliation.model.POS_STREAM_GAP`): never a "revert Centra" finding. With the
previous cut-off's snapshots too, the day's own sync failure is the change of (Centra - NewStore) over the
day, which also finds a loss both ledgers missed. Recovered store transactions (``pos_transaction_recoveries``)
are landed as their streamed event, so they are in the POS deltas already.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance, empty_findings
from pipelines.domain.reconciliation.rules import kiosk_stock
from pipelines.domain.reconciliation.rules.catalog import _allowed, _comparable
from pipelines.domain.reconciliation.rules.frames import (
    _col,
    _group,
    _over,
    _pair_findings,
    _pair_key,
    _take,
)
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys

#: Centra ledger descriptions that are not store movements (the simulator writes "Order N allocation",
#: "Order N cancelled", "Shipment N"): online allocations and ship-from-store shipments.
DEFAULT_EXCLUDED_CHANGE_PREFIXES: tuple[str, ...] = ("Order ", "Shipment ")


def _excluded(descriptions: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    codes, uniq = pd.factorize(descriptions)
    width = max(len(p) for p in prefixes)
    flags = np.array([str(d)[:width].lower().startswith(prefixes) for d in uniq], dtype=bool)
    return flags[codes] if len(uniq) else np.zeros(len(descriptions), dtype=bool)


def sync_failures(business_date: str, pos_movements: pd.DataFrame, centra_changes: pd.DataFrame,
                  locations: pd.DataFrame, prices: pd.DataFrame, tolerance: Tolerance = DEFAULT_TOLERANCE, *,
                  exclude_description_prefixes: Iterable[str] = DEFAULT_EXCLUDED_CHANGE_PREFIXES,
                  skip_counted: bool = True, centra_catalog: pd.DataFrame | None = None,
                  pos_known: Collection[str] | None = None, keys: KeySpace | None = None,
                  pos_stock: pd.DataFrame | None = None, centra_stock: pd.DataFrame | None = None,
                  pos_stock_before: pd.DataFrame | None = None, centra_stock_before: pd.DataFrame | None = None,
                  see_stream_loss: bool = True, kiosk_units: pd.DataFrame | None = None,
                  kiosk_uncounted: pd.DataFrame | None = None) -> pd.DataFrame:
    """Silent sync failures: the day's net POS stock deltas vs Centra's ledger, per (store, SKU), judged against
    NewStore's own stock.

    pos_movements: business_date, location_id | fulfillment_node_id, sku, movement_type, quantity (signed
        deltas; movement_type 'count' rows are absolute and not summed).
    centra_changes: business_date, warehouse_id, sku, quantity (signed), description.

    Ledger rule: pos_net = sum of the day's POS deltas, commerce_net = sum of the day's Centra changes in
    the store's warehouse whose description does not start (case-insensitively) with one of
    ``exclude_description_prefixes`` (online allocations, shipments). With ``skip_counted`` keys with a POS
    count on the day are not compared (a count's Centra delta is unknowable from the POS; the cut-off
    drift covers them). diff = commerce_net - pos_net; |diff| > units tolerance is a difference:
    sync_missing_in_commerce when the POS moved and Centra moved less in the same direction (0 included),
    otherwise sync_unexpected_in_commerce (Centra moved without a POS delta, more, or the other way).
    value = |diff| x price-list price. Orphan SKUs are skipped as in :func:`stock_drift`.

    Evidence that does not share the event stream's failure, NewStore's stock (``pos_stock``: location_id |
    fulfillment_node_id, sku, on_hand) and Centra's (``centra_stock``: warehouse_id, sku, physical) at the
    day's cut-off, and optionally at the previous cut-off (``pos_stock_before``, ``centra_stock_before``; all
    their rows are read). A key has evidence when its store has rows in each snapshot given (a key absent from
    a snapshot of such a store counts as 0 there, as in :func:`stock_drift`); without evidence the ledger
    rule alone decides.

    - With both cut-offs: the day's own sync difference is dd = (physical - on_hand) now minus before, i.e.
      how much more Centra moved than NewStore's own stock. A ledger difference with |dd| <= tolerance is
      pos_stream_gap (Centra followed NewStore; the stream lost or misdated the store's movement); one with
      |dd| > tolerance is a sync finding of diff = dd: quantity_commerce = commerce_net and quantity_pos =
      commerce_net - dd (what the store really moved, the stream's own gap taken out), typed by the ledger rule
      on those. With ``see_stream_loss``, a key whose ledgers agree (a loss invisible to both, since both read
      the stream) but |dd| > tolerance is such a finding too.
    - With the day's cut-off only: a ledger difference whose key has |physical - on_hand| <= tolerance is
      pos_stream_gap (no drift left to explain).

    The detail then carries ``newstore_on_hand``, ``centra_physical`` and, with the previous cut-off,
    ``newstore_change`` and ``centra_change``.

    Kiosk take-home sales (`rules.kiosk_stock`) are explained movements: ``kiosk_units`` (location_id, sku, units:
    the day's paid take-home units K) count as POS deltas of -K (pos_net stays the stream's in the detail, which adds
    ``kiosk_units``), and ``kiosk_uncounted`` (location_id, sku, units, units_before) turns NewStore's on-hand of
    each cut-off into the shelf (on-hand less the kiosk units it does not know of; the detail's newstore_on_hand
    is then the shelf). Of a resulting shortfall (Centra deducted less), the units `kiosk_sale_not_deducted`
    reports (`rules.kiosk`: min(S, K), S from our sync's own changes; keys not counted on the day) are taken out
    here, of a positive ledger difference and of a positive dd alike, so no unit is reported twice and a foreign
    change is never taken for the kiosk's.
    """
    k = _keys(keys, locations, prices)
    ps_all, cs_all = k.store(pos_movements), k.store_by_warehouse(centra_changes)
    pm = k.day(pos_movements, business_date) & (ps_all >= 0)
    cm = k.day(centra_changes, business_date) & (cs_all >= 0)
    prefixes = tuple(p.lower() for p in exclude_description_prefixes)
    if prefixes and cm.any():
        cm = cm.copy()
        cm[cm] = ~_excluded(_col(centra_changes, "description", cm, object), prefixes)
    counted = k.eq(pos_movements, "movement_type", "count")
    dm, cnt = pm & ~counted, pm & counted
    ok = _comparable(k, business_date, centra_catalog, pos_known)
    kiosk_stock.encode(k, kiosk_units, kiosk_uncounted)
    n_loc, width = len(locations), k.n_skus + 1
    pkey = _pair_key(ps_all, k.sku(pos_movements), width)
    ckey = _pair_key(_take(cs_all, cm), _take(k.sku(centra_changes), cm), width)
    dkey = _take(pkey, dm)
    ledger = [(dkey, _col(pos_movements, "quantity", dm, None)), (dkey, None),
              (ckey, _col(centra_changes, "quantity", cm, None)), (ckey, None), (pkey[cnt], None)]
    now = _Snapshots.of(k, business_date, pos_stock, centra_stock, width, n_loc)
    before = _Snapshots.of(k, None, pos_stock_before, centra_stock_before, width, n_loc) if now else None
    snaps = [now, before] if before else [now] if now else []
    kparts = kiosk_stock.parts(k, kiosk_units, "units", width)
    if kparts:  # our sync's own changes: what the kiosk rule judges the kiosk units by
        own = kiosk_stock.sync_changes(_col(centra_changes, "description", cm, object)) if cm.any() \
            else np.zeros(0, dtype=bool)
        kparts.append((ckey[own], _col(centra_changes, "quantity", cm, None)[own]))
    uparts = [kiosk_stock.parts(k, kiosk_uncounted, c, width) for c in ("units", "units_before")[:len(snaps)]]
    ukeys, sums = _group(n_loc * width, ledger + [p for s in snaps for p in s.parts] + kparts
                         + [p for u in uparts for p in u])
    extra = iter(sums[5 + 2 * len(snaps):])
    kq = next(extra) if kparts else np.zeros(len(ukeys))
    snet = next(extra) if kparts else np.zeros(len(ukeys))
    for i, u in enumerate(uparts):  # NewStore's on-hand at each cut-off -> the shelf
        if u:
            sums[5 + 2 * i] = kiosk_stock.shelf(sums[5 + 2 * i], next(extra))
    pnet, pn, cnet, cn, nc = sums[:5]
    pstream, kshare = pnet, kq
    if kparts:
        kshare = np.where(nc > 0, 0.0, kiosk_stock.kiosk_share(snet - (pnet - kq), kq))  # the kiosk rule's units
        pnet = pnet - kq  # the kiosk's take-home units moved the store's stock as POS deltas would
        pnet = pnet + kiosk_stock.kiosk_share(cnet - pnet, kshare)
    loc_all = ukeys // width
    diff = cnet - pnet
    over = _over(diff, tolerance.units)
    gap = loss = dated = np.zeros(len(ukeys), dtype=bool)
    if now:
        on_hand, physical = sums[5], sums[6]
        known = now.known[loc_all]
        moved = _over(physical - on_hand, tolerance.units)  # the day's cut-off alone: drift left
        if before:  # a store in both cut-offs: what each side moved over the day
            dated = known & before.known[loc_all]
            dd = (physical - on_hand) - (sums[8] - sums[7])
            if kparts:
                dd = dd - kiosk_stock.kiosk_share(dd, kshare)
            moved = np.where(dated, _over(dd, tolerance.units), moved)
            loss = dated & moved & ~over if see_stream_loss else loss
        gap = known & over & ~moved
    sel = np.flatnonzero(over | loss)
    sel = sel[_allowed(ok, ukeys[sel] % width)]
    if skip_counted:
        sel = sel[nc[sel] == 0]
    if not len(sel):
        return empty_findings()
    loc, sku = loc_all[sel], ukeys[sel] % width
    pnet, cnet, diff, pn, cn, gap = pnet[sel], cnet[sel], diff[sel], pn[sel], cn[sel], gap[sel]
    detail = [f"pos_net={int(a)};commerce_net={int(b)};pos_movements={int(c)};commerce_changes={int(d)}"
              + (f";kiosk_units={int(q)}" if q > 0 else "")
              for a, b, c, d, q in zip(pstream[sel], cnet, pn, cn, kq[sel], strict=True)]
    if now:
        on_hand, physical, kn, dt = sums[5][sel], sums[6][sel], known[sel], dated[sel]
        ns_change = on_hand - sums[7][sel] if before else on_hand
        c_change = physical - sums[8][sel] if before else physical
        detail = [d + (f";newstore_on_hand={int(a)};centra_physical={int(b)}" if e else "")
                  + (f";newstore_change={int(x)};centra_change={int(y)}" if t else "")
                  for d, a, b, e, x, y, t in zip(detail, on_hand, physical, kn, ns_change, c_change, dt, strict=True)]
        judged = dt & ~gap  # the day's own sync difference: dd, against Centra's ledger net
        if judged.any():
            diff = np.where(judged, dd[sel], diff)
            pnet = np.where(judged, cnet - diff, pnet)
    price = np.nan_to_num(k.price(loc, sku))
    moved_dir = np.sign(pnet) * cnet
    missing = (pnet != 0) & (moved_dir >= 0) & (moved_dir < np.abs(pnet))
    split = ((m.SYNC_MISSING_IN_COMMERCE, missing & ~gap), (m.SYNC_UNEXPECTED_IN_COMMERCE, ~missing & ~gap),
             (m.POS_STREAM_GAP, gap))
    return _pair_findings(business_date, locations, split, loc, k.skus[sku], pnet, cnet, diff, price,
                          np.asarray(detail, dtype=object))


class _Snapshots:
    """NewStore's and Centra's stock at one cut-off as `_group` parts (on_hand, physical), and per store
    whether both snapshots hold rows of it (else its keys have no evidence)."""

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray]], known: np.ndarray):
        self.parts, self.known = parts, known

    @classmethod
    def of(cls, k: KeySpace, business_date: str | None, pos_stock: pd.DataFrame | None,
           centra_stock: pd.DataFrame | None, width: int, n_locations: int) -> _Snapshots | None:
        if pos_stock is None or centra_stock is None:
            return None
        ps_all, cs_all = k.store(pos_stock), k.store_by_warehouse(centra_stock)
        pm = k.day(pos_stock, business_date) & (ps_all >= 0) if business_date else ps_all >= 0
        cm = k.day(centra_stock, business_date) & (cs_all >= 0) if business_date else cs_all >= 0
        ps, cs = _take(ps_all, pm), _take(cs_all, cm)
        parts = [(_pair_key(ps, _take(k.sku(pos_stock), pm), width), _col(pos_stock, "on_hand", pm, None)),
                 (_pair_key(cs, _take(k.sku(centra_stock), cm), width), _col(centra_stock, "physical", cm, None))]
        known = (np.bincount(ps.astype(np.int64), minlength=n_locations) > 0) & \
            (np.bincount(cs.astype(np.int64), minlength=n_locations) > 0)
        return cls(parts, known)
