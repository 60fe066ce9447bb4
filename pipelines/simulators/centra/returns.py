"""Returns and refunds area of the Centra tenant: `createReturn` (restocking per the stock action
policy), `completeReturn`, `refundReturn` and the world API's `create_return` by SKU."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .orders import OrdersMixin
from .records import (
    MutationError,
    OrderRec,
    PaymentRec,
    ReturnLineRec,
    ReturnRec,
    ShipmentLineRec,
    ShipmentRec,
    _utc,
)
from .views import return_summary


class ReturnsMixin(OrdersMixin):
    def create_return_for_shipment(self, shipment_id: int, lines: list[tuple[int, int]], *,
                                   policy: str = "release", warehouse_id: int | None = None,
                                   comment: str | None = None, external_id: str | None = None,
                                   created_at: datetime | None = None, shipping: float | None = None,
                                   shipping_from_shipment: bool = False, handling: float = 0.0,
                                   voucher: float = 0.0, return_cost: float = 0.0) -> ReturnRec:
        """createReturn. policy: "release" (back to source warehouses), "different" (`warehouse_id`)
        or "remove" (no restock). `lines` = [(shipment line id, qty)]."""
        with self.lock:
            shipment = self._returnable_shipment(shipment_id, lines, policy, warehouse_id)
            plan, ship_amount = self._return_plan(shipment, lines, shipping, shipping_from_shipment)
            order = self.orders[shipment.order_number]
            at = _utc(created_at) if created_at else self.now()
            rid = self._next("return")
            ret = ReturnRec(rid, order.number, shipment.id, at, [], comment=comment, external_id=external_id,
                            shipping=ship_amount, handling=round(handling, 2), voucher=round(voucher, 2),
                            return_cost=round(return_cost, 2))
            shipment.shipping_returned = round(shipment.shipping_returned + ship_amount, 2)
            moves: list[tuple[int, int, int, int]] = []
            for sl, qty in plan:
                line = self.order_lines[sl.order_line_id]
                rl = ReturnLineRec(self._next("return_line"), rid, sl.id, line.id, qty, line.unit_price,
                                   line.tax_percent)
                ret.lines.append(rl)
                self.return_lines[rl.id] = rl
                sl.returned += qty
                line.returned += qty
                if policy == "remove":
                    continue
                sid = line.ref.size.size_id
                for wid, q in self._restock_targets(order, sl, qty, policy, warehouse_id):
                    self.stock_record(wid, sid).physical += q
                    moves.append((wid, sid, q, q))
                    ret.return_warehouse_id = ret.return_warehouse_id or wid
            if moves:
                ret.returned_to_stock = True
                self._ledger(f"Return {rid} of order {order.number}", "RETURN", moves, at=at,
                             order_number=order.number)
            self.returns[rid] = ret
            order.return_ids.append(rid)
            self._touch(order)
            self._emit("return", "insert", rid)
            self._emit("order", "update", order.number)
            return ret

    def _returnable_shipment(self, shipment_id: int, lines: list[tuple[int, int]], policy: str,
                             warehouse_id: int | None) -> ShipmentRec:
        shipment = self.shipments.get(int(shipment_id))
        if shipment is None:
            raise MutationError(f"Shipment {shipment_id} not found", ["input", "shipment"])
        if not shipment.is_shipped:
            raise MutationError(f"Shipment {shipment.number} is not completed", ["input", "shipment"])
        if policy == "different" and warehouse_id not in self.warehouses:
            raise MutationError(f"Warehouse {warehouse_id} not found",
                                ["input", "returnStockActionPolicy", "sendItemsToDifferentWarehouse"])
        if not lines:
            raise MutationError("A return needs at least one line", ["input", "lines"])
        return shipment

    @staticmethod
    def _return_plan(shipment: ShipmentRec, lines: list[tuple[int, int]], shipping: float | None,
                     shipping_from_shipment: bool) -> tuple[list[tuple[ShipmentLineRec, int]], float]:
        """Validated (shipment line, qty) pairs and the shipping amount to return (all errors at once)."""
        errors, plan = [], []
        for i, (sl_id, qty) in enumerate(lines):
            sl = next((s for s in shipment.lines if s.id == sl_id), None)
            if sl is None:
                errors.append({"message": f"Shipment line {sl_id} does not belong to shipment {shipment.number}",
                               "path": ["input", "lines", str(i), "shipmentLine"]})
            elif qty <= 0 or qty > sl.quantity - sl.returned:
                errors.append({"message": f"Quantity {qty} for shipment line {sl_id} must be in range 1 - "
                                          f"{sl.quantity - sl.returned}",
                               "path": ["input", "lines", str(i), "quantity"]})
            else:
                plan.append((sl, qty))
        remaining_shipping = round(shipment.shipping_value - shipment.shipping_returned, 2)
        ship_amount = remaining_shipping if shipping_from_shipment else round(shipping or 0.0, 2)
        if ship_amount > remaining_shipping + 1e-9:
            errors.append({"message": f"Shipping cost {ship_amount} exceeds what remains on the shipment "
                                      f"({remaining_shipping})", "path": ["input", "shippingCost"]})
        if errors:
            raise MutationError("", errors=errors)
        return plan, ship_amount

    def _restock_targets(self, order: OrderRec, sl: ShipmentLineRec, qty: int, policy: str,
                         warehouse_id: int | None) -> list[tuple[int, int]]:
        """(warehouse, qty) to restock: `warehouse_id` ("different"), else the shipment line's sources."""
        targets: list[tuple[int, int]] = []
        if policy == "different":
            targets = [(int(warehouse_id), qty)]  # type: ignore[arg-type]
        else:
            left = qty
            for _alloc, wid, src_qty in sl.sources:
                take = min(left, src_qty)
                if take > 0:
                    targets.append((wid, take))
                    left -= take
            if left > 0:
                targets.append((sl.sources[0][1] if sl.sources else self._demand_warehouse(order), left))
        return targets

    def _require_return(self, return_id: int) -> ReturnRec:
        ret = self.returns.get(int(return_id))
        if ret is None:
            raise MutationError(f"Return {return_id} not found", ["id"])
        return ret

    def complete_return(self, return_id: int) -> ReturnRec:
        with self.lock:
            ret = self._require_return(return_id)
            if ret.status == "COMPLETED":
                raise MutationError(f"Return {return_id} is already completed", ["id"])
            ret.status, ret.completed_at = "COMPLETED", self.now()
            self._emit("order", "update", ret.order_number)
            return ret

    def refund_return(self, return_id: int) -> PaymentRec:
        """refundReturn: a REFUND payment entry for the return's grand total (negative value)."""
        with self.lock:
            ret = self._require_return(return_id)
            if any(p.entry_type == "REFUND" and p.status == "SUCCESS" for p in ret.refund_history):
                raise MutationError(f"Return {return_id} is already refunded", ["id"])
            order = self.orders[ret.order_number]
            entry = PaymentRec(self._next("payment"), self.now(), "REFUND", "SUCCESS", -ret.grand_total,
                               order.currency, f"refund-{return_id}")
            ret.refund_history.append(entry)
            order.payment_history.append(entry)
            self._emit("order", "update", ret.order_number)
            return entry

    def create_return(self, number: int, lines: list[tuple[str, int]], *, at: datetime | None = None,
                      restock_warehouse_id: int | None = None, refund: bool = True, restock: bool = True,
                      comment: str | None = None, external_id: str | None = None) -> dict[str, Any]:
        """Return SKUs of a shipped order: restock to the source warehouse (or `restock_warehouse_id`,
        or nowhere with `restock=False`), then complete and refund when `refund`.

        One return per shipment is created (Centra ties a return to one shipment); the result
        describes the first, with `ids` listing all.
        """
        with self.lock:
            order = self.orders[number]
            per_shipment: dict[int, list[tuple[int, int]]] = {}
            for sku, qty in lines:
                left = qty
                for sid in order.shipment_ids:
                    shipment = self.shipments[sid]
                    if not shipment.is_shipped:
                        continue
                    for sl in shipment.lines:
                        if left <= 0:
                            break
                        if self.order_lines[sl.order_line_id].ref.size.sku != sku:
                            continue
                        take = min(left, sl.quantity - sl.returned)
                        if take > 0:
                            per_shipment.setdefault(sid, []).append((sl.id, take))
                            left -= take
                if left > 0:
                    raise ValueError(f"order {number}: cannot return {qty} x {sku} (not enough shipped)")
            policy = "remove" if not restock else ("different" if restock_warehouse_id is not None else "release")
            created = []
            for sid, items in per_shipment.items():
                ret = self.create_return_for_shipment(sid, items, policy=policy, warehouse_id=restock_warehouse_id,
                                                      comment=comment, external_id=external_id, created_at=at)
                if refund:
                    self.complete_return(ret.id)
                    self.refund_return(ret.id)
                created.append(ret)
            return return_summary(number, created)
