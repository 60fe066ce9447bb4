"""Orders area of the Centra tenant: placing DTC orders (the world API; Centra has no create-order
mutation), confirming, locking, updating (line cancellation) and cancelling them, and shipping a
whole order in one go (`ship_order`)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from . import views
from .records import MutationError, OrderLineRec, OrderRec, PaymentRec, _utc
from .shipments import ShipmentsMixin


class OrdersMixin(ShipmentsMixin):
    def place_order(self, market_id: int, lines: list[tuple[str, int]], *, email: str,
                    created_at: datetime | None = None, unit_prices: dict[str, float] | None = None,
                    external_id: str | None = None, shipping: float = 0.0,
                    allocate_from: tuple[int, ...] | None = None, shipping_option: str | None = None) -> dict[str, Any]:
        """Create a PENDING DTC order, allocating stock per the market's allocation rule (or only from the
        `allocate_from` warehouses, as for a click-and-collect order picked up in a store).
        `shipping_option` names one of the tenant's shipping options (default: the first), e.g. a pickup
        option; `shippingPriceGroup.shippingOption` shows it.

        Prices come from the market's pricelist (tax-included); `unit_prices` overrides the charged
        unit price per SKU (unitOriginalPrice stays the list price). Unallocatable units become demand.
        """
        with self.lock:
            market, pricelist, country = self._order_terms(market_id, lines)
            option_id = self.shipping_option_id(shipping_option)
            tax = self.estate.tax_rates.get(country, 0.0)
            at = _utc(created_at) if created_at else self.now()
            number = self._next_order_number
            self._next_order_number += 1
            customer_id = self.customers.setdefault(email.lower(), len(self.customers) + 1)
            order = OrderRec(
                id=hashlib.md5(f"{self.estate.seed}:order:{number}".encode()).hexdigest(),
                number=number, status="PENDING", created_at=at, updated_at=at, order_date=at,
                store_id=market.store_id, market_id=market.id, pricelist_id=pricelist.id,
                currency=pricelist.currency, country=country,
                currency_base_rate=self.estate.fx_to_base.get(pricelist.currency, 1.0),
                email=email, customer_id=customer_id, external_id=external_id, lines=[],
                shipping_value=round(float(shipping), 2), allocate_from=allocate_from, shipping_option_id=option_id)
            for sku, qty in lines:
                ref = self.size_by_sku[sku]
                list_price = round(ref.variant.prices[pricelist.id], 2)
                price = round(float(unit_prices[sku]), 2) if unit_prices and sku in unit_prices else list_price
                order.lines.append(OrderLineRec(self._next("order_line"), number, ref, int(qty), list_price, price,
                                                round(tax * 100, 2)))
            moves: list[tuple[int, int, int, int]] = []
            for line in order.lines:
                got = self._allocate(order, line, line.ordered, moves)
                self._add_demand(order, line, line.ordered - got)
            self.orders[number] = order
            self.orders_by_id[order.id] = order
            for line in order.lines:
                self.order_lines[line.id] = line
            order.payment_history.append(PaymentRec(self._next("payment"), at, "AUTH", "SUCCESS",
                                                    self.order_grand_total(order), order.currency,
                                                    f"auth-{number}"))
            if moves:
                self._ledger(f"Order {number} allocation", "ALLOCATION", moves, at=at, order_number=number)
            self._emit("order", "insert", number)
            return self.order_summary(number)

    def _order_terms(self, market_id: int, lines: list[tuple[str, int]]) -> tuple[Any, Any, str]:
        """The market, its pricelist and country, after checking the market and every line (ValueError)."""
        market = self.markets.get(market_id)
        if market is None:
            raise ValueError(f"unknown market {market_id}")
        if not lines:
            raise ValueError("an order needs at least one line")
        pricelist = self.pricelists[market.pricelist_id]
        country = market.countries[0]
        for sku, qty in lines:
            ref = self.size_by_sku.get(sku)
            if ref is None:
                raise ValueError(f"unknown SKU {sku!r}")
            if qty <= 0:
                raise ValueError(f"quantity for {sku} must be positive")
            if pricelist.id not in ref.variant.prices:
                raise ValueError(f"{sku} has no price in pricelist {pricelist.id}")
        return market, pricelist, country

    def order_summary(self, number: int) -> dict[str, Any]:
        with self.lock:
            o = self.orders[number]
            return views.order_summary(o, self.order_grand_total(o))

    get_order = order_summary

    def order_grand_total(self, order: OrderRec, *, including_tax: bool = True) -> float:
        total = 0.0
        for ln in order.lines:
            value = ln.unit_price * ln.quantity
            total += value if including_tax else value / (1 + ln.tax_percent / 100)
        rate = self.estate.tax_rates.get(order.country, 0.0)
        total += order.shipping_value if including_tax else order.shipping_value / (1 + rate)
        return round(total, 2)

    def confirm_order(self, number: int) -> OrderRec:
        with self.lock:
            order = self._require_order(number)
            if order.status != "PENDING":
                raise MutationError(f"Order {number} is {order.status}; only PENDING orders can be confirmed",
                                    ["input", "order"])
            order.status = "CONFIRMED"
            self._touch(order)
            self._emit("order", "update", number)
            return order

    def set_orders_lock(self, numbers: list[int], is_locked: bool) -> list[OrderRec]:
        with self.lock:
            orders = [self._require_order(n) for n in numbers]
            for o in orders:
                o.is_locked = is_locked
                self._touch(o)
                self._emit("order", "update", o.number)
            return orders

    def update_order(self, number: int, *, is_on_hold: bool | None = None, external_id: str | None = None,
                     internal_comment: str | None = None, cancellation_comment: str | None = None,
                     cancel_lines: list[tuple[int, int, bool]] | None = None, email: str | None = None,
                     first_name: str | None = None, last_name: str | None = None,
                     shipping_address: dict[str, Any] | None = None, billing_address: dict[str, Any] | None = None,
                     customer_id: int | None = None, shipping_cost: float | None = None,
                     is_internal: bool | None = None) -> OrderRec:
        """updateDirectToConsumerOrder; `cancel_lines` items are (line id, qty, remove_from_stock). Address
        dicts use the input's camelCase keys and update the given fields only. `shipping_cost` (CONFIRMED
        orders only) may only lower the shipping (AD-dtc "Shipping Cost Update")."""
        with self.lock:
            order = self._require_order(number)
            if order.status in ("CANCELLED", "ARCHIVED"):
                raise MutationError(f"Order {number} is {order.status} and cannot be updated", ["order"])
            errors = []
            plan = []
            for i, (line_id, qty, remove) in enumerate(cancel_lines or []):
                line = next((ln for ln in order.lines if ln.id == line_id), None)
                if line is None:
                    errors.append({"message": f"Order line {line_id} does not belong to order {number}",
                                   "path": ["input", "cancelLines", str(i), "line"]})
                    continue
                cancellable = line.quantity - line.shipped - sum(a.reserved for a in line.allocations)
                if qty <= 0 or qty > cancellable:
                    errors.append({"message": f"Quantity {qty} for line {line_id} must be in range 1 - {cancellable}",
                                   "path": ["input", "cancelLines", str(i), "quantity"]})
                    continue
                plan.append((line, qty, remove))
            if shipping_cost is not None:
                if order.status != "CONFIRMED":
                    errors.append({"message": f"Order {number} is {order.status}; the shipping cost can only be "
                                              "changed on CONFIRMED orders", "path": ["input", "shippingCost"]})
                elif shipping_cost < 0 or shipping_cost > order.shipping_value + 1e-9:
                    errors.append({"message": f"Shipping cost {shipping_cost} must be between 0 and the current "
                                              f"{order.shipping_value}", "path": ["input", "shippingCost"]})
            if customer_id is not None and customer_id not in self.customers.values():
                errors.append({"message": f"Customer {customer_id} not found", "path": ["input", "customer"]})
            if errors:
                raise MutationError("", errors=errors)
            moves: list[tuple[int, int, int, int]] = []
            for line, qty, remove in plan:
                self._release(order, line, qty, remove_from_stock=remove, moves=moves)
                line.cancelled += qty
            if moves:
                self._ledger(f"Order {number} cancelled lines", "RELEASE", moves, order_number=number)
            if is_on_hold is not None:
                order.is_on_hold = is_on_hold
            if external_id is not None:
                order.external_id = external_id
            if internal_comment is not None:
                order.internal_comment = internal_comment
            if cancellation_comment is not None:
                order.cancellation_comment = cancellation_comment
            if email is not None:
                order.email = email
            if first_name is not None:
                order.first_name = first_name
            if last_name is not None:
                order.last_name = last_name
            if shipping_address:
                order.shipping_address = {**(order.shipping_address or {}), **shipping_address}
            if billing_address:
                order.billing_address = {**(order.billing_address or {}), **billing_address}
            if customer_id is not None:
                order.customer_id = customer_id
            if shipping_cost is not None:
                order.shipping_value = round(float(shipping_cost), 2)
                for sid in order.shipment_ids:
                    if self.shipments[sid].shipping_value and not self.shipments[sid].is_captured:
                        self.shipments[sid].shipping_value = order.shipping_value
            if is_internal is not None:
                order.is_internal = is_internal
            if plan:
                self._settle_status(order)
            self._touch(order)
            self._emit("order", "update", number)
            return order

    def cancel_order(self, number: int | None = None, *, id: str | None = None, comment: str | None = None,  # noqa: A002
                     remove_from_stock: bool = False) -> OrderRec:
        with self.lock:
            order = self._require_order(number, id)
            if order.status in ("SHIPPED", "CANCELLED", "ARCHIVED"):
                raise MutationError(f"Order {order.number} is {order.status} and cannot be cancelled", ["id"])
            shipments = [self.shipments[s] for s in order.shipment_ids]
            if order.is_captured or any(s.is_shipped or s.is_captured for s in shipments):
                raise MutationError(f"Order {order.number} has shipped or captured shipments; create a return "
                                    "and refund instead", ["id"])
            for s in shipments:  # drop open shipments, un-reserving their allocations
                self._drop_shipment(s)
            moves: list[tuple[int, int, int, int]] = []
            for line in order.lines:
                unshipped = line.quantity - line.shipped
                if unshipped > 0:
                    self._release(order, line, unshipped, remove_from_stock=remove_from_stock, moves=moves)
            if moves:
                self._ledger(f"Order {order.number} cancelled", "RELEASE", moves, order_number=order.number)
            order.status = "CANCELLED"
            order.cancellation_comment = comment
            self._touch(order)
            self._emit("order", "update", order.number)
            return order

    def ship_order(self, number: int, at: datetime | None = None) -> dict[str, Any]:
        """Confirm if PENDING, create a captured shipment of everything allocatable (demand is
        re-tried first), complete it. Raises `MutationError` when nothing can be shipped."""
        with self.lock:
            order = self.orders[number]
            if order.status == "PENDING":
                self.confirm_order(number)
            shipment = self.create_shipment(number, None, created_at=at, is_good_to_go=True, capture=True,
                                            allocate_demand=True)
            self.complete_shipment(shipment.id, shipped_at=at)
            return {"number": number, "status": order.status, "shipment_id": shipment.id,
                    "shipment_number": shipment.number}
