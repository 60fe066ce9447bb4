"""The commercetools side of the sync: one inventory entry per (SKU, supply channel), written exactly once.

commercetools has no multi-entry stock write and no stock-change ledger with a description, so:
- a batch carries one line (`max_lines = 1`): one entry, one update request, atomic;
- the update that changes the quantity also writes `<version it makes>:<batch description>` into the entry's custom
  field `lastSyncBatch` (a custom Type this adapter creates once, `MARKER_TYPE`; the version lets the reconciliation
  tie the marker to the `InventoryEntryQuantitySet` message of the same write). After a crash between commercetools'
  success and our commit, the entry itself says whether the batch is in: its marker equals the batch's
  description. The key stays locked to the unresolved batch, so no later batch of ours can overwrite the marker
  first; other writers (orders, people) change quantities but not the marker;
- `version` is optimistic concurrency: a 409 `ConcurrentModification` means someone else wrote the entry
  between our read and our write. A relative action (`addQuantity`/`removeQuantity`) is resent with the new
  version after checking the marker; an absolute one (`changeQuantity`) is re-read first as well (the re-read
  is what tells us whether our write is already in). A 502/503 or a lost answer is handled the same way: re-read,
  and resend only when the marker is not there. Bounded attempts with jitter, then the batch stays prepared and
  the next pass looks it up.
- SKUs outside the estate's catalogue (the product master) are refused before any write (`StockRejected`).

commercetools publishes no global request limit (reference §3.6: bursts answer 502/503, ramp gradually), so the
governor gets the budget this adapter is configured with (`requests_per_s`) as its buckets.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from pipelines.connectors.commercetools import (
    CommercetoolsClient,
    CommercetoolsError,
    ConcurrentModification,
    DuplicateField,
    ResourceNotFound,
)
from pipelines.connectors.commercetools.markers import MARKER_FIELD, MARKER_TYPE, marker_value, parse_marker
from pipelines.connectors.commercetools.predicates import in_list, lit
from pipelines.connectors.errors import RateLimited, TransientError
from pipelines.domain.sync.governor import MUTATIONS, REQUESTS, Governor, RateLimitRow
from pipelines.domain.sync.model import SET
from pipelines.estate import Estate
from pipelines.sync.batches import Batch
from pipelines.sync.target import Key, SendResult, StockRejected, StockTarget

log = logging.getLogger("pipelines.sync.commercetools")

#: Attempts per line when other writers keep changing the entry (409s), before the batch is left prepared.
CONFLICT_ATTEMPTS = 6
EXPECT_AT_MOST = 500  # entries read ahead with one pass's stock view (5 requests at most)
SKUS_PER_QUERY = 100  # keeps a `sku in (...)` predicate well inside URL limits
_FIELD_DEFINITION = {"name": MARKER_FIELD, "label": {"en": "Last sync batch"}, "required": False,
                     "type": {"name": "String"}, "inputHint": "SingleLine"}


class BudgetRow:
    """A rate bucket for the governor, from this adapter's configured budget."""

    def __init__(self, type_: str, interval_seconds: int, quota: int) -> None:
        self.type = type_
        self.interval_seconds = interval_seconds
        self.quota = quota
        self.remaining_quota = quota


class StillConflicting(TransientError):
    """Other writers kept changing the entry; the outcome of our last write is unknown until looked up."""


class CommercetoolsStockTarget(StockTarget):
    """commercetools' inventory as the sync's `StockTarget` (see module docstring)."""

    platform = "commercetools"
    max_lines = 1

    def __init__(self, client: CommercetoolsClient, estate: Estate, *, requests_per_s: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if estate.commercetools is None:
            raise ValueError("the estate has no commercetools section")
        self.client = client
        self.estate = estate
        self.config = estate.commercetools
        self.requests_per_s = requests_per_s
        self.sleep = sleep
        self._channel_ids: dict[str, str] = {}
        self._channels_loaded = False
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}  # (channel id, sku) -> entry as last seen
        self._expected: dict[tuple[str, str], int] = {}  # (channel id, sku) -> warehouse: to read with the next view
        self._type_id: str | None = None
        self._types_with_field: set[str] = set()  # custom types (ours or the retailer's) that hold the marker

    # ------------------------------------------------------------------ mapping

    def channel_id(self, warehouse_id: int) -> str:
        loc = self.estate.by_warehouse[warehouse_id]
        key = self.config.channel_of_location[loc.id]
        if key not in self._channel_ids and not self._channels_loaded:
            # Every channel in one read (a pass over 50 stores: not 50 look-ups).
            self._channel_ids.update({c["key"]: c["id"] for c in self.client.channels() if c.get("key")})
            self._channels_loaded = True
        if key not in self._channel_ids:
            channel = self.client.channel_by_key(key)
            if channel is None:
                raise StockRejected(f"commercetools has no channel {key!r} for location {loc.id}", [], set())
            self._channel_ids[key] = channel["id"]
        return self._channel_ids[key]

    def selling_groups(self) -> dict[int, list[tuple[int, ...]]]:
        locations = self.estate.by_location_id
        out: dict[int, list[tuple[int, ...]]] = {}
        for store in self.config.stores:
            group = tuple(locations[self.config.location_of_channel[k]].centra_warehouse_id
                          for k in store.supply_channel_keys if k in self.config.location_of_channel)
            for w in group:
                if group not in out.setdefault(w, []):
                    out[w].append(group)
        return out

    def rate_limits(self) -> list[RateLimitRow]:
        per_10s = max(1, int(self.requests_per_s * 10))
        per_hour = max(1, int(self.requests_per_s * 3600))
        return [BudgetRow(t, s, q) for t in (REQUESTS, MUTATIONS) for s, q in ((10, per_10s), (3600, per_hour))]

    # ------------------------------------------------------------------ writes

    def send(self, batch: Batch) -> SendResult:
        if len(batch.lines) != 1:
            raise ValueError("a commercetools batch carries one line (max_lines = 1)")
        (sku,) = batch.lines
        if sku not in self.estate.by_sku:
            raise StockRejected(f"SKU {sku} is not in the product master; no inventory entry written",
                                [{"code": "UnknownSku", "sku": sku}], {sku}, unknown={sku})
        channel = self.channel_id(batch.warehouse_id)
        self._ensure_marker_type()
        requests = 0
        entry = self._entries.get((channel, sku))
        for attempt in range(CONFLICT_ATTEMPTS):
            if entry is None or (batch.operation == SET and attempt > 0):
                entry = self._read(channel, sku)
                requests += 1
            if entry is not None and _marker(entry) == batch.description:
                return SendResult([_change_id(entry)], max(1, requests))  # already in (a resend)
            try:
                requests += 1
                entry = self._write(entry, channel, sku, batch)
            except (ConcurrentModification, DuplicateField):
                # Someone else wrote (or created) the entry since we read it, or a lost answer's write of ours is
                # in: the re-read tells which (the marker).
                entry = None
                self.sleep(random.uniform(0, 0.05 * (attempt + 1)))
                continue
            except RateLimited:
                raise  # not applied; the governor waits
            except TransientError:
                # A 502/503 or a lost answer: the write may or may not be in. Versioned writes are safe to resend
                # after a re-read (a resend of an applied one would meet a newer version), so look and go on.
                entry = None
                self.sleep(min(2.0, 0.1 * 2 ** attempt) * random.uniform(0.5, 1.0))
                continue
            self._entries[(channel, sku)] = entry
            return SendResult([_change_id(entry)], requests)
        raise StillConflicting(f"entry {sku}@{channel} kept changing over {CONFLICT_ATTEMPTS} attempts")

    def _write(self, entry: dict[str, Any] | None, channel: str, sku: str, batch: Batch) -> dict[str, Any]:
        signed = batch.signed(sku)
        if entry is None:
            return self.client.create_inventory_entry({
                "sku": sku, "supplyChannel": {"typeId": "channel", "id": channel}, "quantityOnStock": signed,
                "custom": {"type": {"typeId": "type", "key": MARKER_TYPE},
                           "fields": {MARKER_FIELD: marker_value(1, batch.description)}}})
        if batch.operation == SET:
            actions: list[dict[str, Any]] = [{"action": "changeQuantity", "quantity": signed}]
        elif signed >= 0:
            actions = [{"action": "addQuantity", "quantity": signed}]
        else:
            actions = [{"action": "removeQuantity", "quantity": -signed}]
        value = marker_value(int(entry["version"]) + 1, batch.description)  # the version this update makes
        type_id = ((entry.get("custom") or {}).get("type") or {}).get("id")
        if type_id is None:
            actions.append({"action": "setCustomType", "type": {"typeId": "type", "key": MARKER_TYPE},
                            "fields": {MARKER_FIELD: value}})
        else:
            self._ensure_field_on(type_id)  # the retailer's own type on the entry: keep it, add our field
            actions.append({"action": "setCustomField", "name": MARKER_FIELD, "value": value})
        return self.client.update_inventory_entry(entry["id"], entry["version"], actions)

    def _read(self, channel: str, sku: str) -> dict[str, Any] | None:
        found = next(iter(self.client.inventory_entries(skus=[sku], channel_ids=[channel])), None)
        if found is not None:
            self._entries[(channel, sku)] = found
        return found

    def _ensure_marker_type(self) -> None:
        """The custom Type holding the batch marker on inventory entries (created once per project)."""
        if self._type_id is not None:
            return
        try:
            self._type_id = self.client.get(f"/types/key={MARKER_TYPE}")["id"]
        except ResourceNotFound:
            try:
                self._type_id = self.client.post("/types", {
                    "key": MARKER_TYPE, "name": {"en": "Stock sync marker"},
                    "description": {"en": "The last stock-sync batch applied to this entry (exactly-once lookups)"},
                    "resourceTypeIds": ["inventory-entry"],
                    "fieldDefinitions": [_FIELD_DEFINITION]})["id"]
            except DuplicateField:  # another process created it meanwhile
                self._type_id = self.client.get(f"/types/key={MARKER_TYPE}")["id"]
        self._types_with_field.add(self._type_id)

    def _ensure_field_on(self, type_id: str) -> None:
        """An entry already carries another custom type (the retailer's): `setCustomType` would drop its fields,
        so the marker field is added to that type (`addFieldDefinition`) once."""
        if type_id in self._types_with_field:
            return
        type_ = self.client.get(f"/types/{type_id}")
        if not any(f["name"] == MARKER_FIELD for f in type_.get("fieldDefinitions") or []):
            try:
                self.client.update("/types", type_id, type_["version"],
                                   [{"action": "addFieldDefinition", "fieldDefinition": _FIELD_DEFINITION}])
            except CommercetoolsError:
                # changed meanwhile (409), or the field added by another process (refused as a duplicate): fine
                # when the type now has the field
                type_ = self.client.get(f"/types/{type_id}")
                if not any(f["name"] == MARKER_FIELD for f in type_.get("fieldDefinitions") or []):
                    raise
        self._types_with_field.add(type_id)

    # ------------------------------------------------------------------ lookups and reads

    def find_applied(self, batch: Batch) -> tuple[tuple[int | str, ...], str] | None:
        (sku,) = batch.lines
        channel = self.channel_id(batch.warehouse_id)
        entry = self._read(channel, sku)
        if entry is None or _marker(entry) != batch.description:
            return None
        return (_change_id(entry),), entry.get("lastModifiedAt") or entry.get("createdAt") or ""

    def stock_view(self, keys: Iterable[Key], on_request: Callable[[], None]) -> dict[Key, tuple[int, int]]:
        """One query per `SKUS_PER_QUERY` keys, whatever their channels (`(supplyChannel(id=..) and sku in (..)) or
        ...`): the ranking read of a pass costs a round trip or two, not one per store."""
        wanted = {(self.channel_id(w), sku, w) for w, sku in keys}
        asked = {(c, sku) for c, sku, _ in wanted}
        # the entries this pass will write and has not read yet ride along (`expect`): one round trip fewer each
        pairs = sorted(wanted | {(c, sku, w) for (c, sku), w in self._expected.items() if (c, sku) not in asked})
        self._expected.clear()
        warehouse_of = {channel: w for channel, _, w in pairs}
        out: dict[Key, tuple[int, int]] = {}
        for start in range(0, len(pairs), SKUS_PER_QUERY):
            by_channel: dict[str, list[str]] = {}
            for channel, sku, _ in pairs[start:start + SKUS_PER_QUERY]:
                by_channel.setdefault(channel, []).append(sku)
            where = " or ".join(f"(supplyChannel(id={lit(channel)}) and {in_list('sku', skus)})"
                                for channel, skus in by_channel.items())
            on_request()
            for e in self.client.query("/inventory", where=[where]):
                channel = (e.get("supplyChannel") or {}).get("id")
                if channel not in by_channel:
                    continue
                self._entries[(channel, e["sku"])] = e
                if (channel, e["sku"]) in asked:
                    out[(warehouse_of[channel], e["sku"])] = (int(e["quantityOnStock"]), int(e["availableQuantity"]))
        return out

    def expect(self, keys: Iterable[Key]) -> None:
        for w, sku in keys:
            try:
                channel = self.channel_id(w)
            except StockRejected:
                continue  # no channel: the send refuses the batch with its reason
            if (channel, sku) not in self._entries and len(self._expected) < EXPECT_AT_MOST:
                self._expected[(channel, sku)] = w

    def physical(self, warehouse_ids: list[int], governor: Governor,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[dict[Key, int], int]:
        """Every entry of the warehouses' channels; one request per page of 500 (the keyset read), paced."""
        out: dict[Key, int] = {}
        requests = 0
        for wid in warehouse_ids:
            channel = self.channel_id(wid)
            for seen, e in enumerate(self.client.inventory_entries(channel_ids=[channel])):
                if seen % 500 == 0:
                    wait = governor.seconds_until_request()
                    if wait > 0:
                        sleep(wait)
                    governor.spend(requests=1)
                    requests += 1
                out[(wid, e["sku"])] = int(e["quantityOnStock"])
        return out, requests


def _marker(entry: dict[str, Any]) -> str | None:
    """The batch description of the entry's marker (without its version)."""
    parsed = parse_marker(((entry.get("custom") or {}).get("fields") or {}).get(MARKER_FIELD))
    return parsed[1] if parsed else None


def _change_id(entry: dict[str, Any]) -> str:
    return f"{entry['id']}@{entry['version']}"
