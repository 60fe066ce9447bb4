"""Shipments area of the Centra tenant: `createShipment` (reserving allocations), `captureShipment`,
`updateShipment`, `completeShipment` (physical and allocated stock leave the warehouses) and the
order status that follows from them."""

from __future__ import annotations

from datetime import datetime

from .records import MutationError, OrderLineRec, OrderRec, PaymentRec, ShipmentLineRec, ShipmentRec, _utc
from .stock import StockMixin


class ShipmentsMixin(StockMixin):
    def _settle_status(self, order: OrderRec) -> None:
        if all(ln.cancelled >= ln.ordered for ln in order.lines):
            order.status = "CANCELLED"
        elif (order.shipment_ids and all(ln.shipped >= ln.quantity for ln in order.lines)
              and all(self.shipments[s].is_shipped for s in order.shipment_ids)):
            order.status = "SHIPPED"

    def create_shipment(self, number: int | None = None, lines: list[tuple[int, int]] | None = None, *,
                        id: str | None = None, created_at: datetime | None = None,  # noqa: A002
                        is_good_to_go: bool = False, is_paid: bool = False, capture: bool = False,
                        allocate_demand: bool = False, additional_message: str | None = None,
                        send_email: bool | None = None) -> ShipmentRec:
        """createShipment: `lines` = [(order line id, qty)], or None for everything allocated."""
        with self.lock:
            order = self._require_order(number, id)
            self._check_shippable(order)
            if allocate_demand:
                self._allocate_demand(order, order.lines)
            wanted = self._shipment_plan(order, lines)
            at = _utc(created_at) if created_at else self.now()
            sid = self._next("shipment")
            shipment = ShipmentRec(sid, f"{order.number}-{len(order.shipment_ids) + 1}", order.number, at, at, [],
                                   is_good_to_go=is_good_to_go, additional_message=additional_message,
                                   send_email=send_email)
            if not any(self.shipments[s].shipping_value for s in order.shipment_ids):
                shipment.shipping_value = order.shipping_value
            for line, qty in wanted:
                sl = self._reserve_shipment_line(sid, line, qty)
                shipment.lines.append(sl)
                self.shipment_lines[sl.id] = sl
            self.shipments[sid] = shipment
            order.shipment_ids.append(sid)
            if order.status == "CONFIRMED":
                order.status = "PROCESSING"
            if is_paid:
                shipment.is_paid, shipment.paid_at = True, at
            if order.is_captured:  # captureOrder took the whole total already
                shipment.is_captured, shipment.captured_at = True, at
                shipment.is_paid, shipment.paid_at = True, shipment.paid_at or at
                capture = False
            self._touch(order)
            self._emit("shipment", "create", sid)
            self._emit("order", "update", order.number)
            if capture:
                self.capture_shipment(sid)
            return shipment

    @staticmethod
    def _check_shippable(order: OrderRec) -> None:
        if order.status not in ("CONFIRMED", "PROCESSING"):
            raise MutationError(f"Order {order.number} is {order.status}; shipments need a CONFIRMED or "
                                "PROCESSING order", ["input", "order"])
        if order.is_on_hold:
            raise MutationError(f"Order {order.number} is on hold", ["input", "order"])

    @staticmethod
    def _shipment_plan(order: OrderRec, lines: list[tuple[int, int]] | None) -> list[tuple[OrderLineRec, int]]:
        """The (order line, qty) pairs to ship: everything shippable when `lines` is None, else the
        validated `lines` (all errors reported at once)."""
        if lines is None:
            wanted = [(ln, ln.shippable) for ln in order.lines if ln.shippable > 0]
        else:
            wanted, errors = [], []
            for i, (line_id, qty) in enumerate(lines):
                line = next((ln for ln in order.lines if ln.id == line_id), None)
                if line is None:
                    errors.append({"message": f"Order line {line_id} does not belong to order {order.number}",
                                   "path": ["input", "lines", str(i), "orderLine"]})
                elif qty <= 0 or qty > line.shippable:
                    errors.append({"message": f"Quantity {qty} for line {line_id} exceeds the allocated, "
                                              f"unshipped quantity {line.shippable}",
                                   "path": ["input", "lines", str(i), "quantity"]})
                else:
                    wanted.append((line, qty))
            if errors:
                raise MutationError("", errors=errors)
        if not wanted:
            raise MutationError(f"Order {order.number} has nothing allocated to ship", ["input", "lines"])
        return wanted

    def _reserve_shipment_line(self, shipment_id: int, line: OrderLineRec, qty: int) -> ShipmentLineRec:
        """A shipment line of `qty` units of `line`, reserving them from its allocations in order."""
        sl = ShipmentLineRec(self._next("shipment_line"), shipment_id, line.id, qty)
        left = qty
        for alloc in line.allocations:
            take = min(left, alloc.quantity - alloc.reserved)
            if take > 0:
                alloc.reserved += take
                sl.sources.append((alloc.id, alloc.warehouse_id, take))
                left -= take
        return sl

    def shipment_grand_total(self, shipment: ShipmentRec, *, including_tax: bool = True) -> float:
        total = 0.0
        for sl in shipment.lines:
            line = self.order_lines[sl.order_line_id]
            value = line.unit_price * sl.quantity
            total += value if including_tax else value / (1 + line.tax_percent / 100)
        order = self.orders[shipment.order_number]
        rate = self.estate.tax_rates.get(order.country, 0.0)
        total += shipment.shipping_value if including_tax else shipment.shipping_value / (1 + rate)
        return round(total, 2)

    def _require_shipment(self, shipment_id: int) -> ShipmentRec:
        shipment = self.shipments.get(int(shipment_id))
        if shipment is None:
            raise MutationError(f"Shipment {shipment_id} not found", ["id"])
        return shipment

    def capture_shipment(self, shipment_id: int) -> PaymentRec:
        with self.lock:
            shipment = self._require_shipment(shipment_id)
            if shipment.is_captured:
                raise MutationError(f"Shipment {shipment.number} is already captured", ["id"])
            order = self.orders[shipment.order_number]
            at = self.now()
            entry = PaymentRec(self._next("payment"), at, "CAPTURE", "SUCCESS", self.shipment_grand_total(shipment),
                               order.currency, f"capture-{shipment.number}")
            order.payment_history.append(entry)
            shipment.is_captured, shipment.captured_at = True, at
            shipment.is_paid, shipment.paid_at = True, shipment.paid_at or at
            shipment.updated_at = at
            return entry

    def capture_order(self, number: int | None = None, id: str | None = None) -> PaymentRec:  # noqa: A002
        """captureOrder: capture the whole order total (lines + shipping) before or without shipments; the
        order's open and later shipments count as captured. Rejected once anything was captured."""
        with self.lock:
            order = self._require_order(number, id)
            if order.status in ("CANCELLED", "ARCHIVED"):
                raise MutationError(f"Order {order.number} is {order.status} and cannot be captured", ["order"])
            if any(p.entry_type == "CAPTURE" and p.status == "SUCCESS" for p in order.payment_history):
                raise MutationError(f"Order {order.number} is already captured", ["order"])
            at = self.now()
            entry = PaymentRec(self._next("payment"), at, "CAPTURE", "SUCCESS", self.order_grand_total(order),
                               order.currency, f"capture-order-{order.number}")
            order.payment_history.append(entry)
            order.is_captured = True
            for sid in order.shipment_ids:
                s = self.shipments[sid]
                s.is_captured, s.captured_at = True, s.captured_at or at
                s.is_paid, s.paid_at = True, s.paid_at or at
            self._touch(order)
            self._emit("order", "update", order.number)
            return entry

    def update_shipment(self, shipment_id: int, *, is_paid: bool | None = None, is_good_to_go: bool | None = None,
                        additional_message: str | None = None) -> ShipmentRec:
        with self.lock:
            shipment = self._require_shipment(shipment_id)
            if is_paid is not None:
                shipment.is_paid = is_paid
                shipment.paid_at = self.now() if is_paid else None
            if is_good_to_go is not None:
                shipment.is_good_to_go = is_good_to_go
            if additional_message is not None:
                shipment.additional_message = additional_message
            shipment.updated_at = self.now()
            return shipment

    def complete_shipment(self, shipment_id: int, *, shipped_at: datetime | None = None,
                          carrier: str | None = None, service: str | None = None,
                          tracking_number: str | None = None, return_tracking_number: str | None = None,
                          packages: int | None = None, send_email: bool | None = None,
                          additional_message: str | None = None,
                          internal_shipping_cost: tuple[float, str] | None = None) -> ShipmentRec:
        """completeShipment: physical and allocated drop in the source warehouses. `send_email` (else the
        createShipment's, else the tenant's default) decides whether the shipping confirmation would be
        emailed: recorded in the sim-only `emails_sent`."""
        with self.lock:
            shipment = self._require_shipment(shipment_id)
            if shipment.is_shipped:
                raise MutationError(f"Shipment {shipment.number} is already completed", ["id"])
            order = self.orders[shipment.order_number]
            at = _utc(shipped_at) if shipped_at else self.now()
            if at > self.now():
                raise MutationError("shippedAt cannot be in the future", ["input", "shippedAt"])
            moves, sl_ids = [], []
            for sl in shipment.lines:
                line = self.order_lines[sl.order_line_id]
                sid = line.ref.size.size_id
                for alloc_id, wid, qty in sl.sources:
                    alloc = next(a for a in line.allocations if a.id == alloc_id)
                    alloc.quantity -= qty
                    alloc.reserved -= qty
                    rec = self.stock_record(wid, sid)
                    rec.physical -= qty
                    rec.allocated -= qty
                    moves.append((wid, sid, -qty, 0))
                    sl_ids.append(sl.id)
                line.allocations = [a for a in line.allocations if a.quantity > 0]
                line.shipped += sl.quantity
            shipment.shipped_at = at
            shipment.updated_at = self.now()
            shipment.carrier_name = carrier or shipment.carrier_name
            shipment.service_name = service or shipment.service_name
            shipment.tracking_number = tracking_number or shipment.tracking_number
            shipment.return_tracking_number = return_tracking_number or shipment.return_tracking_number
            shipment.number_of_packages = packages if packages is not None else max(1, shipment.number_of_packages)
            if additional_message is not None:
                shipment.additional_message = additional_message
            if internal_shipping_cost is not None:
                shipment.internal_shipping_cost = (round(float(internal_shipping_cost[0]), 2), internal_shipping_cost[1])
            email = next(v for v in (send_email, shipment.send_email, self.shipment_email_default) if v is not None)
            if email:
                shipment.emails_sent.append("shipment_confirmation")
            self._ledger(f"Shipment {shipment.number}", "SHIPMENT", moves, at=at, order_number=order.number,
                         shipment_lines=sl_ids)
            self._settle_status(order)
            self._touch(order)
            self._emit("order", "update", order.number)
            return shipment

    def _drop_shipment(self, shipment: ShipmentRec) -> None:
        order = self.orders[shipment.order_number]
        for sl in shipment.lines:
            line = self.order_lines[sl.order_line_id]
            for alloc_id, _wid, qty in sl.sources:
                alloc = next((a for a in line.allocations if a.id == alloc_id), None)
                if alloc is not None:
                    alloc.reserved -= qty
            self.shipment_lines.pop(sl.id, None)
        order.shipment_ids.remove(shipment.id)
        self.shipments.pop(shipment.id, None)
