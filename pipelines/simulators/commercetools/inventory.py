"""InventoryEntry: create, update actions, delete, reservations and order deductions (lagging knob).

* ``availableQuantity`` = ``quantityOnStock`` - reserved (``ReserveOnCart`` carts); direct writes are strongly
  consistent. Order deductions (``TrackOnly``/``ReserveOnOrder``) take ``inventory_lag_s`` to show on the entry
  (RAML: "eventually consistent ... up to 10 seconds"); the availability check of a new order sees them at once.
* Messages: InventoryEntryCreated{inventoryEntry}, InventoryEntryDeleted{sku, supplyChannel?},
  InventoryEntryQuantitySet from add/remove/changeQuantity only (never from order deductions).
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from .catalog import CatalogMixin
from .common import CtError, duplicate, invalid_input, invalid_json, iso, parse_time, ref

_OPTIONAL_INT = ("minCartQuantity", "maxCartQuantity", "restockableInDays", "reservationExpirationInMinutes")


class InventoryMixin(CatalogMixin):
    def _init_inventory(self) -> None:
        self._reserved: dict[str, int] = {}
        self._pending: list[tuple[datetime, str, int]] = []  # (due, entry id, quantity) order deductions
        self._inv_index: dict[tuple[str, str | None], str] = {}

    def _build_inventory(self) -> None:
        ct = self.estate.commercetools
        assert ct is not None
        for ch in ct.channels:
            loc = self.estate.by_location_id.get(ch.location_id or "")
            if loc is None:
                continue
            stock = self.estate.initial_stock.get(loc.newstore_node_id, {})
            for sku, qty in stock.items():
                self._index_entry(self._new_doc("inventory", {
                    "sku": sku, "supplyChannel": ref("channel", self.channel_ids[ch.key]),
                    "quantityOnStock": int(qty), "availableQuantity": int(qty)}))

    def _entry_for(self, sku: str, channel_id: str | None) -> dict[str, Any] | None:
        """The entry of (sku, supply channel id or None), through the (sku, channel) index."""
        eid = self._inv_index.get((sku, channel_id))
        return self.docs["inventory"].get(eid) if eid else None

    @staticmethod
    def _entry_key(doc: dict[str, Any]) -> tuple[str, str | None]:
        return doc["sku"], (doc.get("supplyChannel") or {}).get("id")

    def _index_entry(self, doc: dict[str, Any]) -> None:
        self._inv_index[self._entry_key(doc)] = doc["id"]

    # -- create / delete -------------------------------------------------------------------------------

    def create_inventory(self, draft: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._settle()
            if not isinstance(draft, dict) or not isinstance(draft.get("sku"), str) \
                    or not isinstance(draft.get("quantityOnStock"), int):
                raise invalid_json("Request body does not contain valid JSON.")
            channel = None
            if draft.get("supplyChannel") is not None:
                channel = ref("channel", self._resolve("channels", draft["supplyChannel"], "channel")["id"])
            if self._entry_for(draft["sku"], channel and channel["id"]) is not None:
                # One entry per (sku, supplyChannel): reference §3.2.
                raise duplicate("sku", draft["sku"])
            if draft.get("key") and any(d.get("key") == draft["key"] for d in self.docs["inventory"].values()):
                raise duplicate("key", draft["key"])
            fields: dict[str, Any] = {"sku": draft["sku"], "quantityOnStock": draft["quantityOnStock"],
                                      "availableQuantity": draft["quantityOnStock"]}
            if draft.get("key"):
                fields["key"] = draft["key"]
            if channel:
                fields["supplyChannel"] = channel
            for name in _OPTIONAL_INT:
                if draft.get(name) is not None:
                    fields[name] = draft[name]
            if draft.get("expectedDelivery"):
                fields["expectedDelivery"] = iso(parse_time(draft["expectedDelivery"]))  # type: ignore[arg-type]
            if draft.get("stockLevels"):
                fields["stockLevels"] = dict(draft["stockLevels"])
            custom = self._custom_from_draft("inventory", draft.get("custom"))
            if custom:
                fields["custom"] = custom
            doc = self._new_doc("inventory", fields)
            self._index_entry(doc)
            self.updates["inventory"] += 1
            self._message("inventory", doc, "InventoryEntryCreated", {"inventoryEntry": copy.deepcopy(doc)})
            return copy.deepcopy(doc)

    def delete_inventory(self, ident: str, version: Any) -> dict[str, Any]:
        with self.lock:
            self._settle()
            doc = self._find("inventory", ident)
            self._check_version("inventory", doc, version)
            del self.docs["inventory"][doc["id"]]
            self._inv_index.pop(self._entry_key(doc), None)
            self.updates["inventory"] += 1
            gone = dict(doc, version=doc["version"] + 1)
            fields: dict[str, Any] = {"sku": doc["sku"]}
            if doc.get("supplyChannel"):
                fields["supplyChannel"] = doc["supplyChannel"]
            self._message("inventory", gone, "InventoryEntryDeleted", fields)
            return copy.deepcopy(doc)

    # -- updates ---------------------------------------------------------------------------------------

    def _quantity_change(self, entry: dict[str, Any], new_on_stock: int) -> list[tuple[str, dict[str, Any]]]:
        old_on, old_av = entry["quantityOnStock"], entry["availableQuantity"]
        entry["quantityOnStock"] = new_on_stock
        entry["availableQuantity"] = new_on_stock - self._reserved.get(entry["id"], 0)
        fields: dict[str, Any] = {"oldQuantityOnStock": old_on, "newQuantityOnStock": new_on_stock,
                                  "oldAvailableQuantity": old_av, "newAvailableQuantity": entry["availableQuantity"],
                                  "sku": entry["sku"]}
        if entry.get("supplyChannel"):
            fields["supplyChannel"] = entry["supplyChannel"]
        return [("InventoryEntryQuantitySet", fields)]

    def update_inventory(self, ident: str, body: Any, at: datetime | None = None) -> dict[str, Any]:
        """POST /inventory/{ident} ``{version, actions}``; ``at``: the change's time (world use; default now)."""
        with self.lock:
            self._settle()
            doc = self._find("inventory", ident)
            actions = _actions(body)
            self._check_version("inventory", doc, body.get("version"))
            new = copy.deepcopy(doc)
            messages: list[tuple[str, dict[str, Any]]] = []
            for action in actions:
                messages += self._inventory_action(new, action)
            if self._entry_key(new) != self._entry_key(doc):  # setSupplyChannel moved it
                self._inv_index.pop(self._entry_key(doc), None)
                self._index_entry(new)
            return copy.deepcopy(self._commit("inventory", doc, new, messages, at))

    def _inventory_action(self, e: dict[str, Any], a: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        name = a["action"]
        if name in ("addQuantity", "removeQuantity", "changeQuantity"):
            qty = a.get("quantity")
            if not isinstance(qty, int) or isinstance(qty, bool):
                raise invalid_json()
            target = {"addQuantity": e["quantityOnStock"] + qty, "removeQuantity": e["quantityOnStock"] - qty,
                      "changeQuantity": qty}[name]
            return self._quantity_change(e, target)
        if name == "setKey":
            key = a.get("key")
            if key and any(d.get("key") == key and d["id"] != e["id"] for d in self.docs["inventory"].values()):
                raise duplicate("key", key)
            _set(e, "key", key)
        elif name == "setSupplyChannel":
            channel = a.get("supplyChannel")
            cid = self._resolve("channels", channel, "channel")["id"] if channel else None
            other = self._entry_for(e["sku"], cid)
            if other is not None and other["id"] != e["id"]:
                raise duplicate("supplyChannel", cid)
            _set(e, "supplyChannel", ref("channel", cid) if cid else None)
        elif name == "setRestockableInDays":
            _set(e, "restockableInDays", a.get("restockableInDays"))
        elif name == "setExpectedDelivery":
            value = a.get("expectedDelivery")
            _set(e, "expectedDelivery", iso(parse_time(value)) if value else None)  # type: ignore[arg-type]
        elif name == "setInventoryLimits":
            lo, hi = a.get("minCartQuantity"), a.get("maxCartQuantity")
            if lo is not None and hi is not None and lo > hi:
                raise invalid_input("'minCartQuantity' must not be greater than 'maxCartQuantity'.")
            _set(e, "minCartQuantity", lo)
            _set(e, "maxCartQuantity", hi)
        elif name == "setReservationExpirationInMinutes":
            _set(e, "reservationExpirationInMinutes", a.get("reservationExpirationInMinutes"))
        elif name in ("setReorderPoint", "setSafetyStock"):
            levels = dict(e.get("stockLevels") or {})
            _set(levels, "reorderPoint" if name == "setReorderPoint" else "safetyStock", a.get("quantity"))
            _set(e, "stockLevels", levels or None)
        elif name in ("setCustomType", "setCustomField"):
            return self._custom_action("inventory", e, a, None)
        else:
            raise invalid_json(f"Request body does not contain valid JSON. Unknown action '{name}'.")
        return []

    # -- order effects ---------------------------------------------------------------------------------

    def _internal_available(self, entry: dict[str, Any]) -> int:
        return entry["availableQuantity"] - sum(q for _, eid, q in self._pending if eid == entry["id"])

    def _deduct(self, entry: dict[str, Any], qty: int, at: datetime, reserved: bool = False) -> None:
        if reserved:
            self._reserved[entry["id"]] = self._reserved.get(entry["id"], 0) - qty
            entry["availableQuantity"] += qty  # the reservation becomes the deduction below
        self._pending.append((at + timedelta(seconds=self.inventory_lag_s), entry["id"], qty))
        self._settle()

    def _settle(self) -> None:
        if not getattr(self, "_pending", None):
            return
        now = self.now()
        due = [p for p in self._pending if p[0] <= now]
        if not due:
            return
        self._pending = [p for p in self._pending if p[0] > now]
        for _, eid, qty in due:
            doc = self.docs["inventory"].get(eid)
            if doc is None:
                continue
            new = copy.deepcopy(doc)
            new["quantityOnStock"] -= qty
            new["availableQuantity"] -= qty
            # ASSUMPTION (knob-free): an order deduction is a change of the entry, so its version moves on.
            self._commit("inventory", doc, new, [])

    def _reserve(self, entry: dict[str, Any], qty: int) -> None:
        new = copy.deepcopy(entry)
        self._reserved[entry["id"]] = self._reserved.get(entry["id"], 0) + qty
        new["availableQuantity"] -= qty
        self._commit("inventory", entry, new, [])

    # -- world API -------------------------------------------------------------------------------------

    def stock(self, channel_key: str, sku: str) -> tuple[int, int]:
        """``(quantityOnStock, availableQuantity)`` as the API shows them now."""
        with self.lock:
            self._settle()
            entry = self._entry_for(sku, self.channel_id(channel_key))
            if entry is None:
                raise KeyError(f"no inventory entry for {sku!r} in {channel_key!r}")
            return entry["quantityOnStock"], entry["availableQuantity"]

    def set_stock(self, channel_key: str, sku: str, qty: int) -> dict[str, Any]:
        """Another writer sets ``quantityOnStock`` (a changeQuantity: version +1, InventoryEntryQuantitySet)."""
        with self.lock:
            self._settle()
            entry = self._entry_for(sku, self.channel_id(channel_key))
            if entry is None:
                raise KeyError(f"no inventory entry for {sku!r} in {channel_key!r}")
            new = copy.deepcopy(entry)
            messages = self._quantity_change(new, int(qty))
            saved, self.current_client = self.current_client, "other-writer"
            try:
                return copy.deepcopy(self._commit("inventory", entry, new, messages))
            finally:
                self.current_client = saved

    def inventory_entry(self, channel_key: str, sku: str) -> dict[str, Any] | None:
        with self.lock:
            self._settle()
            entry = self._entry_for(sku, self.channel_id(channel_key))
            return copy.deepcopy(entry) if entry else None


def _set(doc: dict[str, Any], name: str, value: Any) -> None:
    """commercetools "set" semantics: a missing/null value removes the field."""
    if value is None:
        doc.pop(name, None)
    else:
        doc[name] = value


def _actions(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("actions"), list):
        raise invalid_json()
    actions = body["actions"]
    if len(actions) > 500:
        raise invalid_input("Too many update actions: at most 500 per request.")
    for a in actions:
        if not isinstance(a, dict) or not isinstance(a.get("action"), str):
            raise invalid_json()
    return actions


__all__ = ["CtError", "InventoryMixin"]
