"""Fulfilment area of the NewStore tenant: routing items to a node (fulfillment requests and
allocations) and the node's answers (``set_items_states``: ship or reject)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .common import SimError, iso
from .core import StateCore
from .records import Allocation, FrItem, FulfillmentRequest, Order, OrderItem


class FulfilmentMixin(StateCore):
    def _route(self, order: Order, group: list[OrderItem], at: datetime, *, pinned: str | None = None) -> None:
        """Assign items to one node (pinned, else DC, else first store by id with ATP), allocate, emit."""
        if not group:
            return
        need: dict[str, int] = {}
        for item in group:
            need[item.product_id] = need.get(item.product_id, 0) + 1
        excluded = set().union(*(i.rejected_nodes for i in group))
        node = pinned
        if node is None:
            dc = self.estate.distribution_centre.newstore_node_id
            candidates = [dc] + sorted(loc.newstore_node_id for loc in self.estate.stores)
            candidates = [n for n in candidates if n not in excluded]
            node = next((n for n in candidates
                         if all(self._rec(n, sku).atp >= q for sku, q in need.items())), None)
            if node is None:
                if excluded:
                    for item in group:
                        item.status = "on_hold"
                    return
                node = dc
        fr = FulfillmentRequest(id=self._uuid(), order_id=order.id, fulfillment_node_id=node,
                                service_level=group[0].service_level, created_at=at,
                                items=[FrItem(i.id, i.product_id) for i in group])
        for item in group:
            item.status = "in_fulfillment"
            item.fulfillment_node_id = node
            self._rec(node, item.product_id).allocations[item.id] = Allocation(order.id, item.id, iso(at))
        self._frs[fr.id] = fr
        self._frs_by_order.setdefault(order.id, []).append(fr.id)
        self._publish("fulfillment_request.assigned", {
            "id": fr.id, "order_id": order.id, "logical_timestamp": self._next_lt(),
            "fulfillment_location_id": node, "service_level": fr.service_level, "created_at": iso(at),
            "items": [{"id": i.id, "product_id": i.product_id} for i in group],
        }, at)

    # -- fulfillment requests (REST) ----------------------------------------------------------------------

    def fulfillment_requests(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            frs = [self._frs[f] for f in self._frs_by_order.get(order_id, [])]
            return {"fulfillment_requests": [fr.to_json() for fr in sorted(frs, key=lambda f: f.created_at)]}

    def acknowledge_fulfillment_request(self, ffr_id: str) -> None:
        """Store/DC accepted the request (status dispatched -> acknowledged)."""
        with self._lock:
            self._frs[ffr_id].acknowledged = True

    def set_items_states(self, ffr_id: str, body: Any, *, at: datetime | None = None) -> None:
        """``POST /v0/fulfillment_request/{id}/set_items_states``: ship or reject items (no mixing)."""
        if not isinstance(body, dict) or not isinstance(body.get("line_items"), list) or not body["line_items"]:
            raise SimError(400, "bad_request", "'line_items' is a required non-empty array")
        with self._lock:
            at = self._at(at)
            fr = self._frs.get(ffr_id)
            if fr is None:
                raise SimError(404, "fulfillment_request_not_found", f"Fulfillment request {ffr_id!r} not found.")
            state, targets = self._line_item_targets(fr, body["line_items"])
            order = self._orders[fr.order_id]
            if state == "shipped":
                self._ship_items(fr, order, targets, body, at)
            else:
                self._reject_items(fr, order, targets, body, at)

    def _line_item_targets(self, fr: FulfillmentRequest, line_items: list[Any]) -> tuple[str, list[FrItem]]:
        """The one state asked for (shipped | rejected) and the request's items it applies to."""
        states = set()
        targets: list[FrItem] = []
        by_id = {i.item_id: i for i in fr.items}
        for li in line_items:
            if not isinstance(li, dict) or li.get("state") not in ("shipped", "rejected") or not li.get("item_id"):
                raise SimError(400, "bad_request", "each line item needs item_id and state shipped|rejected")
            fi = by_id.get(li["item_id"])
            if fi is None:
                raise SimError(400, "item_not_found",
                               f"Item {li['item_id']!r} is not part of fulfillment request {fr.id!r}.")
            if fi.status != "dispatched":
                code = "already_shipped" if fi.status == "shipped" else "item_in_final_state"
                raise SimError(400, code, f"Item {fi.item_id!r} is already {fi.status}.")
            states.add(li["state"])
            targets.append(fi)
        if len(states) > 1:
            raise SimError(400, "mixed_states", "Shipping and rejecting items in one call is not allowed.")
        return states.pop(), targets

    def _ship_items(self, fr: FulfillmentRequest, order: Order, targets: list[FrItem], body: dict[str, Any],
                    at: datetime) -> None:
        """Items leave the node: allocation and on_hand go down; one event per item, order.completed last."""
        oitems = {i.id: i for i in order.items}
        node = fr.fulfillment_node_id
        for fi in targets:
            fi.status, fi.carrier, fi.tracking_code = "shipped", body.get("carrier"), body.get("tracking_code")
            rec = self._rec(node, fi.product_id)
            rec.allocations.pop(fi.item_id, None)
            rec.on_hand -= 1
            oitems[fi.item_id].status = "complete"
            self._publish("fulfillment_request.items_completed", {
                "id": fr.id, "order_id": order.id, "logical_timestamp": self._next_lt(),
                "fulfillment_location_id": node, "associate_id": body.get("associate_id"),
                "service_level": fr.service_level,
                "items": [{"id": fi.item_id, "product_id": fi.product_id}],
            }, at)
        if order.status == "closed":
            self._publish_completed(order, at)

    def _publish_completed(self, order: Order, at: datetime) -> None:
        """`order.completed`: every item of the order is done (shipped, handed over or cancelled)."""
        self._publish("order.completed", {
            "id": order.id, "external_id": order.external_id, "logical_timestamp": self._next_lt(),
            "completed_at": iso(at),
            "items": [{"id": i.id, "product_id": i.product_id, "status": i.status} for i in order.items],
        }, at)

    def _reject_items(self, fr: FulfillmentRequest, order: Order, targets: list[FrItem], body: dict[str, Any],
                      at: datetime) -> None:
        """The node cannot fulfil: allocations are freed and, once the request is settled, its rejected
        items are routed again (never back to a node that rejected them)."""
        oitems = {i.id: i for i in order.items}
        node = fr.fulfillment_node_id
        for fi in targets:
            fi.status = "rejected"
            self._rec(node, fi.product_id).allocations.pop(fi.item_id, None)
            oitems[fi.item_id].rejected_nodes.add(node)
            oitems[fi.item_id].status = "pending"
        self._publish("fulfillment_request.items_failed", {
            "id": fr.id, "order_id": order.id, "logical_timestamp": self._next_lt(),
            "fulfillment_location_id": node, "reason": body.get("reason"), "failed_at": iso(at),
            "items": [{"id": fi.item_id, "product_id": fi.product_id} for fi in targets],
        }, at)
        if all(fi.status != "dispatched" for fi in fr.items):
            rejected = [oitems[fi.item_id] for fi in fr.items
                        if fi.status == "rejected" and oitems[fi.item_id].status == "pending"]
            self._route(order, rejected, at)
