"""Allocation area of the Centra tenant: `allocateOrder` and `unallocateOrder`, which move an order's
allocation between warehouses (e.g. a ship-from-store order re-routed from one store to another or to the DC).

Documented (AD-dtc / AD-erp "Un-allocating order stock"; cd `graphql/orderallocateinput.html`,
`orderunallocateinput.html`, `stockpolicyactioninput.html`): `unallocateOrder` removes allocations of an order,
all of them or the given lines' quantities and/or the given warehouses only; only quantities not yet shipped can
be unallocated and asking for more gives a `userWarning`; exactly one `stockActionPolicy` says what happens to the
freed stock (`releaseItemsBackToWarehouse`, `removeItemsFromStock`, `sendItemsToDifferentWarehouse`).
`allocateOrder` allocates an order that is not locked, from the given warehouses in the given order (else the
allocation rule), the given lines' quantities or (empty) the whole order.

Assumptions (PROVENANCE.md "Allocation"): units not yet allocated are the line's open quantity (quantity −
shipped − allocated), its demand included; what no warehouse can cover stays unallocated with a `userWarning`;
units reserved by an uncompleted shipment cannot be unallocated; an unallocated unit is neither allocated nor
demand; `sendItemsToDifferentWarehouse` moves the units physically (out of the source, into the target, free there).
"""

from __future__ import annotations

from typing import Any

from .records import MutationError, OrderLineRec, OrderRec
from .stock import StockMixin

CLOSED = ("CANCELLED", "SHIPPED", "ARCHIVED")


class AllocationMixin(StockMixin):
    def _open_order(self, number: int, *, locked_ok: bool) -> OrderRec:
        order = self._require_order(number)
        if order.status in CLOSED:
            raise MutationError(f"Order {number} is {order.status}; its allocation cannot change", ["input", "order"])
        if order.is_locked and not locked_ok:
            raise MutationError(f"Order {number} is locked", ["input", "order"])
        return order

    def _lines_of(self, order: OrderRec, wanted: list[tuple[int, int]] | None,
                  field: str) -> list[tuple[OrderLineRec, int | None]]:
        if not wanted:
            return [(ln, None) for ln in order.lines]
        by_id = {ln.id: ln for ln in order.lines}
        out, errors = [], []
        for i, (line_id, qty) in enumerate(wanted):
            line = by_id.get(int(line_id))
            if line is None:
                errors.append({"message": f"Order line {line_id} does not belong to order {order.number}",
                               "path": ["input", field, str(i), "orderLine"]})
            elif qty <= 0:
                errors.append({"message": f"Quantity {qty} for line {line_id} must be positive",
                               "path": ["input", field, str(i), "quantity"]})
            else:
                out.append((line, int(qty)))
        if errors:
            raise MutationError("", errors=errors)
        return out

    def allocate_order(self, number: int, lines: list[tuple[int, int]] | None = None,
                       warehouses: tuple[int, ...] | None = None, *, locked_ok: bool = False,
                       comment: str | None = None) -> tuple[OrderRec, list[dict[str, Any]]]:
        """allocateOrder: (order, userWarnings). `lines` = [(order line id, qty)], None/empty = the whole order."""
        with self.lock:
            order = self._open_order(number, locked_ok=locked_ok)
            picked = self._lines_of(order, lines, "allocate")
            warnings: list[dict[str, Any]] = []
            moves: list[tuple[int, int, int, int]] = []
            saved = order.allocate_from
            order.allocate_from = tuple(warehouses) if warehouses else None
            try:
                for i, (line, qty) in enumerate(picked):
                    open_qty = line.quantity - line.shipped - line.allocated
                    want = open_qty if qty is None else min(qty, open_qty)
                    if qty is not None and qty > open_qty:
                        warnings.append({"message": f"Line {line.id} has only {open_qty} unallocated; "
                                                    f"{qty} requested", "path": ["input", "allocate", str(i)]})
                    got = self._allocate(order, line, want, moves) if want > 0 else 0
                    from_demand = min(got, line.demand)
                    if from_demand:
                        line.demand -= from_demand
                        self.stock_record(self._demand_warehouse(order), line.ref.size.size_id).demand -= from_demand
                    if got < want:
                        warnings.append({"message": f"Could not allocate {want - got} of line {line.id}: not enough "
                                                    "free stock", "path": ["input", "allocate"]})
            finally:
                order.allocate_from = saved
            if moves:
                self._ledger(comment or f"Order {number} allocation", "ALLOCATION", moves, order_number=number)
                self._touch(order)
                self._emit("order", "update", number)
            return order, warnings

    def unallocate_order(self, number: int, lines: list[tuple[int, int]] | None = None,
                         warehouses: tuple[int, ...] | None = None, *, release: bool = False,
                         remove: bool = False, send_to: int | None = None, locked_ok: bool = False,
                         comment: str | None = None) -> tuple[OrderRec, list[dict[str, Any]]]:
        """unallocateOrder: (order, userWarnings). Exactly one of `release`, `remove`, `send_to` (a warehouse)."""
        with self.lock:
            if sum((bool(release), bool(remove), send_to is not None)) != 1:
                raise MutationError("Exactly one stock action policy must be provided",
                                    ["input", "stockActionPolicy"])
            if send_to is not None and send_to not in self.warehouses:
                raise MutationError(f"Warehouse {send_to} not found",
                                    ["input", "stockActionPolicy", "sendItemsToDifferentWarehouse"])
            order = self._open_order(number, locked_ok=locked_ok)
            picked = self._lines_of(order, lines, "unallocate")
            only = set(warehouses) if warehouses else None
            warnings: list[dict[str, Any]] = []
            moves: list[tuple[int, int, int, int]] = []
            for i, (line, qty) in enumerate(picked):
                sid = line.ref.size.size_id
                allocs = [a for a in line.allocations if only is None or a.warehouse_id in only]
                free = sum(a.quantity - a.reserved for a in allocs)
                left = free if qty is None else min(qty, free)
                if qty is not None and qty > free:
                    warnings.append({"message": f"Line {line.id} has only {free} unshipped units allocated "
                                                f"there; {qty} requested", "path": ["input", "unallocate", str(i)]})
                for _, take in self._take_allocations(allocs, sid, left, remove=not release, moves=moves):
                    if send_to is not None:
                        self.stock_record(send_to, sid).physical += take
                        moves.append((send_to, sid, take, take))
                line.allocations = [a for a in line.allocations if a.quantity > 0]
            if moves:
                self._ledger(comment or f"Order {number} unallocation", "RELEASE", moves, order_number=number)
                self._touch(order)
                self._emit("order", "update", number)
            return order, warnings
