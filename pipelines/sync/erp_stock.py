"""ERP stock to the commerce platform's DC warehouse (issue 15): the ERP owns the distribution centre's inventory.

Like the full resync (`pipelines.sync.resync.queue_corrections`), a difference is queued as a synthetic count
(`movement_type` count, event `erp_stock_resync`) at the moment the ERP's stock was read, and the regular stock sync
sends it within the same rate budget (the governor, the exactly-once batches). The comparison, under the sync lock:

* the ERP's on hand per item (`ErpSystem.stock()`), mapped back to commerce SKUs through `estate.erp.item_of` (an
  ERP item two SKUs map to is ambiguous and left alone; bundles are skipped: their stock is their components');
* the commerce platform's physical stock in the DC warehouse (`estate.erp.dc_location_id`, default the estate's
  distribution centre), read through `StockTarget.physical(..., governor)`.

It never undoes what is still travelling. Keys with queued or in-flight movements, or with a movement in the last
`quiet_s` seconds, are left alone (as the resync does); so are keys the ERP shipped in that window
(`ErpSystem.shipments_modified_since`): the ERP lowered its inventory when it posted the shipment, the commerce
platform lowers its physical stock only when the fulfilment flow completes the shipment there. The next run takes
them. An item the ERP does not report is not touched; a negative ERP inventory counts as 0.

The sync lock: the always-on stock sync holds it for its whole window, so a scheduled run would nearly always find
it taken. `beside_running_sync=True` (the job) then compares without it, which is safe here: a correction is an
absolute count stamped at the ERP read, the sync nets it by event time against whatever else that key has
(`pipelines.domain.sync.netting`), and keys with queued or in-flight rows are left alone; a stale physical read can
only make a run queue a count that sets the key to the ERP's figure it already has, or skip one the next run takes.

The DC is sent whatever `SyncConfig.location_kinds` says: that setting decides which POS (NewStore) locations' events
the sync decodes (`pipelines.sync.queue._decode` keeps the others as `skipped`), it is applied only when a movement
is queued; the sync sends every pending row of any warehouse. So the counts are queued `pending` for the DC's
warehouse directly. When the DC is also a synced POS kind, NewStore's DC events and the ERP both move the DC's
stock: the report says so (`dc_synced_from_pos`), the ERP's counts still win at each resync.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from pipelines.connectors.centra import CentraClient
from pipelines.domain.erp.mapping import ErpMapping
from pipelines.domain.erp.ports import ErpSystem
from pipelines.domain.sync.governor import Governor
from pipelines.domain.timeutil import utc_text
from pipelines.estate import Estate
from pipelines.estate.model import Location
from pipelines.sync.centra_io import target_of
from pipelines.sync.config import SyncConfig
from pipelines.sync.lock import SyncBusy, sync_lock
from pipelines.sync.queue import _synced, ingest
from pipelines.sync.resync import _active_keys, count_correction, queue_corrected
from pipelines.sync.target import StockTarget

ERP_STOCK_EVENT = "erp_stock_resync"

ItemKey = tuple[str, str | None]  # (ERP item number, variant code)


@dataclass
class ErpStockReport:
    read_at: str = ""
    dc_location_id: str = ""
    warehouse_id: int = 0
    keys_compared: int = 0
    differing: int = 0
    corrections_queued: int = 0
    skipped_active: int = 0  # queued, in flight or recent movements
    skipped_shipped: int = 0  # shipped in the ERP within the quiet window
    bundles_skipped: int = 0
    ambiguous_items: int = 0  # ERP items more than one SKU maps to
    not_in_erp: int = 0  # SKUs the ERP reports no stock for
    shipments_read: int = 0
    commerce_requests: int = 0
    units_off: int = 0
    dc_synced_from_pos: bool = False
    locked: bool = False  # compared under the sync lock (False: beside the running always-on sync)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "samples"}


def dc_location(estate: Estate, mapping: ErpMapping) -> Location:
    """The warehouse whose stock the ERP owns: `erp.dc_location_id`, default the estate's distribution centre."""
    if mapping.dc_location_id:
        loc = estate.location_of(mapping.dc_location_id)
        if loc is None:
            raise ValueError(f"erp.dc_location_id {mapping.dc_location_id!r} is not a location of the estate")
        return loc
    return estate.distribution_centre


def sku_index(estate: Estate, mapping: ErpMapping) -> tuple[dict[ItemKey, str], int, int]:
    """(ERP item, variant) -> commerce SKU for every SKU of the catalog that is not a bundle; an item more than one
    SKU maps to is left out. Also: how many bundles were skipped, how many items were ambiguous."""
    seen: dict[ItemKey, list[str]] = {}
    bundles = 0
    for sku in estate.by_sku:
        if mapping.is_bundle(sku):
            bundles += 1
            continue
        ref = mapping.item_of(sku)
        seen.setdefault((ref.number, ref.variant_code or None), []).append(sku)
    index = {key: skus[0] for key, skus in seen.items() if len(skus) == 1}
    return index, bundles, len(seen) - len(index)


def queue_erp_stock(engine: Engine, estate: Estate, target: StockTarget | CentraClient, erp: ErpSystem,
                    config: SyncConfig | None = None, *, quiet_s: float = 300.0, governor: Governor | None = None,
                    beside_running_sync: bool = False,
                    now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> ErpStockReport:
    """Compare the ERP's on hand with the platform's DC physical stock and queue corrections under the sync lock,
    so no batch moves the platform's stock meanwhile. The always-on sync holds that lock for its whole window: with
    `beside_running_sync` the comparison then runs beside it instead of raising `SyncBusy` (see module docstring)."""
    mapping = estate.erp
    if mapping is None:
        raise ValueError("the estate has no erp section")
    target = target_of(target, estate)
    config = config or SyncConfig()
    governor = governor or Governor(config.rate_share)
    dc = dc_location(estate, mapping)
    wid = dc.centra_warehouse_id
    index, bundles, ambiguous = sku_index(estate, mapping)
    report = ErpStockReport(dc_location_id=dc.id, warehouse_id=wid, bundles_skipped=bundles,
                            ambiguous_items=ambiguous, dc_synced_from_pos=_synced(dc, config))
    with ExitStack() as stack:
        try:
            stack.enter_context(sync_lock(engine))
            report.locked = True
        except SyncBusy:
            if not beside_running_sync:
                raise
        governor.observe(target.rate_limits())
        read_at = now()
        report.read_at = utc_text(read_at)
        since = utc_text(read_at - timedelta(seconds=quiet_s))
        levels = erp.stock()
        physical, report.commerce_requests = target.physical([wid], governor)
        shipped: set[str] = set()  # read after the stock: a shipment posted meanwhile is left alone too
        for shipment in erp.shipments_modified_since(since):
            report.shipments_read += 1
            shipped.update(sku for line in shipment.lines
                           if (sku := index.get((line.number, line.variant_code or None))) is not None)
        ingest(engine, estate, config)  # what has landed counts as in flight, decoded or not
        active = {sku for w, sku in _active_keys(engine, since) if w == wid}
        on_hand: dict[str, int] = {}
        for level in levels:
            sku = index.get((level.number, level.variant_code or None))
            if sku is not None:
                on_hand[sku] = on_hand.get(sku, 0) + int(level.on_hand)
        report.not_in_erp = len(index) - len(on_hand)
        values = []
        for sku in sorted(on_hand):
            report.keys_compared += 1
            want, have = max(0, on_hand[sku]), physical.get((wid, sku), 0)
            if want == have:
                continue
            report.differing += 1
            if sku in active:
                report.skipped_active += 1
                continue
            if sku in shipped:
                report.skipped_shipped += 1
                continue
            report.units_off += abs(want - have)
            if len(report.samples) < 20:
                report.samples.append({"warehouse_id": wid, "sku": sku, "erp_on_hand": on_hand[sku],
                                       "commerce_physical": have})
            values.append(count_correction("erp_stock", ERP_STOCK_EVENT, report.read_at, dc, wid, sku, want))
        report.corrections_queued = queue_corrected(engine, values)
    return report
