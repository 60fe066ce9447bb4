"""Stock area of the Centra tenant: `changeStock`/`setStock`, the stock ground truth and ledger of the
world API, and allocation of order lines (allocate, demand, release) per the market's allocation rule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .records import AllocationRec, MutationError, OrderLineRec, OrderRec, StockChangeRec, StockRecord
from .tenant import TenantCore
from .views import stock_change_rows, stock_quantities


class StockMixin(TenantCore):
    def apply_stock_change(self, description: str, items: list[tuple[int, int]], *, into: int | None = None,
                           out: int | None = None, unit_cost: float | None = None,
                           at: datetime | None = None) -> StockChangeRec:
        """changeStock: add to `into`, remove from `out`, or transfer; all items or none."""
        with self.lock:
            if not description or not description.strip():
                raise MutationError("Description is required", ["input", "description"])
            if into is None and out is None:
                raise MutationError("Either intoWarehouse or outFromWarehouse is required", ["input"])
            for wid, name in ((into, "intoWarehouse"), (out, "outFromWarehouse")):
                if wid is not None and wid not in self.warehouses:
                    raise MutationError(f"Warehouse {wid} not found", ["input", name])
            if into is not None and into == out:
                raise MutationError("intoWarehouse and outFromWarehouse must differ", ["input"])
            totals: dict[int, int] = {}
            for sid, qty in items:
                totals[sid] = totals.get(sid, 0) + qty
            errors = []
            if out is not None:
                for sid, qty in totals.items():
                    rec = self.stock_record(out, sid)
                    if rec.fta - qty < 0:
                        ref = self.sizes[sid]
                        errors.append({"message": f"Not enough free stock of {ref.size.sku} in warehouse {out}: "
                                                  f"free to allocate {rec.fta}, requested {qty}; stock cannot become negative",
                                       "path": ["input", "productSizes"]})
            if errors:
                raise MutationError("", errors=errors)
            moves = []
            for sid, qty in totals.items():
                if out is not None:
                    self.stock_record(out, sid).physical -= qty
                    moves.append((out, sid, -qty, -qty))
                if into is not None:
                    self.stock_record(into, sid).physical += qty
                    moves.append((into, sid, qty, qty))
            return self._ledger(description, "CHANGE", moves, at=at, unit_cost=unit_cost)

    def apply_stock_set(self, description: str, warehouse_id: int, items: list[tuple[int, int]], *,
                        unit_cost: float | None = None, at: datetime | None = None,
                        quantity_type: str = "PHYSICAL") -> StockChangeRec | None:
        """setStock: absolute physical quantities (PHYSICAL), or absolute free-to-allocate quantities
        (FREE_TO_ALLOCATE: physical becomes quantity + allocated, allocations untouched); None when
        nothing changed."""
        with self.lock:
            if not description or not description.strip():
                raise MutationError("Description is required", ["input", "description"])
            if warehouse_id not in self.warehouses:
                raise MutationError(f"Warehouse {warehouse_id} not found", ["input", "warehouse"])
            target = dict(items)
            if quantity_type == "FREE_TO_ALLOCATE":
                target = {sid: qty + self.stock_record(warehouse_id, sid).allocated if qty >= 0 else qty
                          for sid, qty in target.items()}
            errors = []
            for sid, qty in target.items():
                rec = self.stock_record(warehouse_id, sid)
                if qty < 0:
                    errors.append({"message": f"Quantity for {self.sizes[sid].size.sku} must not be negative",
                                   "path": ["input", "productSizes"]})
                elif qty < rec.allocated:
                    errors.append({"message": f"Physical quantity {qty} of {self.sizes[sid].size.sku} is below the "
                                              f"allocated quantity {rec.allocated}; stock cannot become negative",
                                   "path": ["input", "productSizes"]})
            if errors:
                raise MutationError("", errors=errors)
            moves = []
            for sid, qty in target.items():
                rec = self.stock_record(warehouse_id, sid)
                delta = qty - rec.physical
                if delta:
                    rec.physical = qty
                    moves.append((warehouse_id, sid, delta, delta))
            if not moves:
                return None
            return self._ledger(description, "SET", moves, at=at, unit_cost=unit_cost)

    def stock_of(self, warehouse_id: int, sku: str) -> dict[str, int]:
        """Quantities of one SKU in one warehouse: physical, allocated, fta, demand."""
        with self.lock:
            ref = self.size_by_sku[sku]
            return stock_quantities(self.stock.get((warehouse_id, ref.size.size_id), StockRecord()))

    def stock_changes(self) -> list[dict[str, Any]]:
        """The ledger flattened to one dict per line (oldest first)."""
        with self.lock:
            return stock_change_rows(self.stock_changes_log, self.sizes)

    # ------------------------------------------------------------ allocation

    def _allocate(self, order: OrderRec, line: OrderLineRec, qty: int, moves: list[tuple[int, int, int, int]]) -> int:
        """Allocate up to `qty` of `line` following the market's allocation rule; returns allocated."""
        market = self.markets[order.market_id]
        rule = self.allocation_rules.get(market.allocation_rule_id)
        warehouses = order.allocate_from or (rule.warehouse_ids if rule else tuple(self.warehouses))
        sid = line.ref.size.size_id
        left = qty
        for wid in warehouses:
            if left <= 0:
                break
            rec = self.stock_record(wid, sid)
            take = min(left, max(0, rec.fta))
            if take <= 0:
                continue
            rec.allocated += take
            left -= take
            alloc = next((a for a in line.allocations if a.warehouse_id == wid), None)
            if alloc is None:
                alloc = AllocationRec(self._next("allocation"), wid, 0)
                line.allocations.append(alloc)
            alloc.quantity += take
            moves.append((wid, sid, 0, -take))
        return qty - left

    def _demand_warehouse(self, order: OrderRec) -> int:
        rule = self.allocation_rules.get(self.markets[order.market_id].allocation_rule_id)
        return rule.warehouse_ids[0] if rule and rule.warehouse_ids else next(iter(self.warehouses))

    def _add_demand(self, order: OrderRec, line: OrderLineRec, qty: int) -> None:
        if qty:
            line.demand += qty
            self.stock_record(self._demand_warehouse(order), line.ref.size.size_id).demand += qty

    def _allocate_demand(self, order: OrderRec, lines: Iterable[OrderLineRec]) -> None:
        moves: list[tuple[int, int, int, int]] = []
        for line in lines:
            if line.demand > 0:
                got = self._allocate(order, line, line.demand, moves)
                if got:
                    line.demand -= got
                    self.stock_record(self._demand_warehouse(order), line.ref.size.size_id).demand -= got
        if moves:
            self._ledger(f"Order {order.number} allocation", "ALLOCATION", moves, order_number=order.number)

    def _release(self, order: OrderRec, line: OrderLineRec, qty: int, *, remove_from_stock: bool,
                 moves: list[tuple[int, int, int, int]]) -> None:
        """Cancel `qty` unshipped units of `line`: demand first, then unreserved allocations."""
        sid = line.ref.size.size_id
        from_demand = min(qty, line.demand)
        if from_demand:
            line.demand -= from_demand
            self.stock_record(self._demand_warehouse(order), sid).demand -= from_demand
        self._take_allocations(line.allocations, sid, qty - from_demand, remove=remove_from_stock, moves=moves)
        line.allocations = [a for a in line.allocations if a.quantity > 0]

    def _take_allocations(self, allocs: list[AllocationRec], sid: int, qty: int, *, remove: bool,
                          moves: list[tuple[int, int, int, int]]) -> list[tuple[int, int]]:
        """Take up to `qty` unreserved units off `allocs`, newest first: released to free-to-allocate, or
        removed from physical stock. Returns (warehouse id, units) taken."""
        taken = []
        left = qty
        for alloc in reversed(allocs):
            if left <= 0:
                break
            take = min(left, alloc.quantity - alloc.reserved)
            if take <= 0:
                continue
            alloc.quantity -= take
            left -= take
            rec = self.stock_record(alloc.warehouse_id, sid)
            rec.allocated -= take
            if remove:
                rec.physical -= take
                moves.append((alloc.warehouse_id, sid, -take, 0))
            else:
                moves.append((alloc.warehouse_id, sid, 0, take))
            taken.append((alloc.warehouse_id, take))
        return taken
