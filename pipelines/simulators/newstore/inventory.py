"""Inventory area of the NewStore tenant: stock ground truth, stock movements of the world (receipts,
adjustments, cycle counts) and the inventory, location and store endpoints."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .common import ADJUSTMENT_EVENT, SimError, iso
from .core import StateCore
from .records import Reservation, StockRecord


class InventoryMixin(StateCore):
    # -- ground truth ---------------------------------------------------------------------------------

    def on_hand(self, node_id: str, sku: str) -> int:
        with self._lock:
            rec = self._stock.get((node_id, sku))
            return rec.on_hand if rec else 0

    def atp(self, node_id: str, sku: str) -> int:
        with self._lock:
            rec = self._stock.get((node_id, sku))
            return rec.atp if rec else 0

    def stock_record(self, node_id: str, sku: str) -> dict[str, int]:
        """on_hand, allocations, reservations, safety_stock and atp of one (node, sku)."""
        with self._lock:
            rec = self._stock.get((node_id, sku)) or StockRecord(safety_stock=self._default_safety)
            return {"on_hand": rec.on_hand, "allocations": len(rec.allocations),
                    "reservations": len(rec.reservations), "safety_stock": rec.safety_stock, "atp": rec.atp}

    def set_safety_stock(self, node_id: str, sku: str, qty: int) -> None:
        with self._lock:
            self._rec(node_id, sku).safety_stock = int(qty)

    def reserve(self, node_id: str, sku: str, quantity: int = 1, *, at: datetime | None = None,
                expires_at: datetime | None = None) -> list[str]:
        """Add reservations (e.g. a cart hold); returns the reservation item ids."""
        with self._lock:
            at = self._at(at)
            rec = self._rec(node_id, sku)
            order_uuid, out = self._uuid(), []
            for _ in range(quantity):
                item = self._uuid()
                rec.reservations[item] = Reservation(order_uuid, item, iso(at), iso(expires_at or at))
                out.append(item)
            return out

    def release_reservations(self, node_id: str, sku: str, item_ids: Iterable[str]) -> None:
        with self._lock:
            rec = self._rec(node_id, sku)
            for item in item_ids:
                rec.reservations.pop(item, None)

    def register_pos_product(self, sku: str, node_id: str | None = None, on_hand: int = 0) -> None:
        """A product that exists only in the POS catalog (created locally in the store), not in the
        estate's commerce catalog: what an "unknown SKU" looks like from the commerce side."""
        with self._lock:
            self._pos_only_skus.add(sku)
            if node_id is not None:
                self._rec(node_id, sku).on_hand += int(on_hand)

    # -- world API (trading generator) ----------------------------------------------------------------

    def receive_stock(self, node_id: str, items: Mapping[str, int], *, at: datetime | None = None,
                      asn_id: str | None = None, shipment_ref: str | None = None) -> list[dict[str, Any]]:
        """Goods received at a node (an ASN): on_hand += qty; emits inventory_transaction.items_received in
        chunks of ``count_chunk_size`` items (one ``id``, ``chunk_number`` 1..n). Returns the payloads."""
        with self._lock:
            at = self._at(at)
            self._node(node_id)
            for sku, qty in items.items():
                self._sku(sku)
                self._rec(node_id, sku).on_hand += int(qty)
            txn, asn = self._uuid(), asn_id or self._uuid()
            out = []
            for n, chunk in enumerate(self._chunks(list(items)), start=1):
                payload = {"id": txn, "chunk_number": n, "asn_id": asn, "shipment_ref": shipment_ref or f"SHP-{asn[:8]}",
                           "fulfillment_location_id": node_id, "processed_at": iso(at),
                           "items": [{"product_id": sku, "quantity": int(items[sku])} for sku in chunk]}
                out.append(copy.deepcopy(self._publish("inventory_transaction.items_received", payload, at)["payload"]))
            return out

    def adjust_stock(self, node_id: str, items: Mapping[str, int], *, at: datetime | None = None) -> dict[str, Any]:
        """Reason-coded stock adjustment: on_hand += delta (signed); emits :data:`ADJUSTMENT_EVENT`.

        ASSUMPTION (PROVENANCE.md): NewStore documents reason-coded adjustments but not the event they
        leave as; name and payload here are modelled on ``inventory_transaction.items_received``.
        """
        with self._lock:
            at = self._at(at)
            self._node(node_id)
            for sku, delta in items.items():
                self._sku(sku)
                self._rec(node_id, sku).on_hand += int(delta)
            payload = {"id": self._uuid(), "chunk_number": 1, "fulfillment_location_id": node_id,
                       "processed_at": iso(at),
                       "items": [{"product_id": sku, "quantity": int(q)} for sku, q in items.items()]}
            return copy.deepcopy(self._publish(ADJUSTMENT_EVENT, payload, at)["payload"])

    def count_stock(self, node_id: str, counts: Mapping[str, int], *, at: datetime | None = None) -> list[dict[str, Any]]:
        """A cycle count: sets on_hand; emits inventory_count.items_counted in chunks of
        ``count_chunk_size`` items. Each item carries ``stock_on_hand`` (on record before the count) and
        ``count`` (physically there). The payload has no id and no time of its own: consumers date it by
        ``published_at``. Returns the payloads."""
        with self._lock:
            at = self._at(at)
            self._node(node_id)
            for sku in counts:
                self._sku(sku)
            before = {sku: self._rec(node_id, sku).on_hand for sku in counts}
            for sku, qty in counts.items():
                self._rec(node_id, sku).on_hand = int(qty)
            chunks = self._chunks(list(counts))
            out = []
            for n, chunk in enumerate(chunks, start=1):
                payload = {
                    "fulfillment_location_id": node_id,
                    "chunk_number": n,
                    "total_chunks": len(chunks),
                    "items": [{"product_id": s, "stock_on_hand": before[s], "count": int(counts[s])} for s in chunk],
                }
                out.append(copy.deepcopy(self._publish("inventory_count.items_counted", payload, at)["payload"]))
            return out

    def _chunks(self, skus: list[str]) -> list[list[str]]:
        size = self.count_chunk_size
        return [skus[i:i + size] for i in range(0, len(skus), size)] or [[]]

    # -- inventory (REST) ----------------------------------------------------------------------------------

    def locations(self) -> dict[str, Any]:
        return {"locations": [{"id": loc.newstore_node_id, "is_inventory_master": True, "is_enabled": True,
                               "type": "dc" if loc.kind == "dc" else "store"} for loc in self.estate.locations]}

    def stores(self, limit: int, start_at: str | None = None) -> dict[str, Any]:
        ids = sorted(self._stores_by_id)
        start = 0
        if start_at:
            if start_at not in self._stores_by_id:
                raise SimError(400, "bad_request", f"invalid start_at {start_at!r}")
            start = ids.index(start_at)
        page = ids[start:start + limit]
        out: dict[str, Any] = {"items": [self.store(i) for i in page]}
        if start + limit < len(ids):
            out["next_page_key"] = ids[start + limit]
        return out

    def store(self, store_id: str) -> dict[str, Any]:
        loc = self._stores_by_id.get(store_id)
        if loc is None:
            raise SimError(404, "store_not_found", f"Store {store_id!r} not found.")
        return {"id": loc.id, "tenant": self.tenant, "country_code": loc.country, "multi_cashbox": False,
                "config": {"auto_report_types": [], "report_types": ["day-report"], "timezone": loc.timezone}}

    def stocked_products(self, limit: int, offset: int) -> dict[str, Any]:
        with self._lock:
            keys = sorted(self._stock)
            rows = []
            for node, sku in keys[offset:offset + limit]:
                rec = self._stock[(node, sku)]
                rows.append({"sku": sku, "product_id": sku, "fulfillment_node_id": node, "on_hand": rec.on_hand,
                             "atp": rec.atp, "allocations": len(rec.allocations),
                             "reservations": len(rec.reservations), "safety_stock": rec.safety_stock})
            return {"items": rows, "pagination": {"limit": limit, "offset": offset, "count": len(rows),
                                                  "total": len(keys)}}

    def atp_by_keys(self, keys: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            out = []
            for k in keys:
                rec = self._stock.get((str(k["fulfillment_node_id"]), str(k["product_id"])))
                out.append({"product_id": k["product_id"], "fulfillment_node_id": k["fulfillment_node_id"],
                            "atp": rec.atp if rec else 0})
            return {"items": out}

    def stock_insights(self, product_id: str, node_id: str) -> dict[str, Any]:
        with self._lock:
            rec = self._stock.get((node_id, product_id)) or StockRecord()
            return {
                "product_id": product_id, "fulfillment_node_id": node_id,
                "allocations": [vars(a).copy() for a in list(rec.allocations.values())[:1000]],
                "reservations": [vars(r).copy() for r in list(rec.reservations.values())[:1000]],
                "future_allocations": [],
            }
