"""In-store return of an online order: what to write to the commerce platform, and whether the money agrees.

The store system (NewStore) took the goods back and refunded the customer; the online order lives in the
commerce platform. `plan_return` matches the returned items to the order's shipped lines (partial returns
included) and groups them per shipment, because a commerce return belongs to one shipment. It never guesses:
an item whose SKU or quantity the order cannot take back holds the whole return as a finance exception.

Stock is not moved by the commerce return: the store system restocks a sellable item into the store's own
stock (and the stock sync carries that movement to the store's warehouse online) and writes a damaged one
off, so a restock here as well would count the unit twice. `refund_problems` compares what the store
refunded (per item, and the refund request and payout) with what the commerce platform refunded for the
same lines: its unit prices after discounts, tax pro-rated from each line's rate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pipelines.domain.flows.exceptions import (
    REFUND_AMOUNT_MISMATCH,
    REFUND_TAX_MISMATCH,
    RETURN_LINES_UNMATCHED,
    Problem,
)
from pipelines.domain.flows.model import CommerceOrder, CommerceReturn, StoreRefund, StoreReturn
from pipelines.domain.flows.ports import ReturnRequest

CENT = 0.01


@dataclass(frozen=True)
class ReturnPlan:
    to_create: tuple[ReturnRequest, ...]  # the commerce returns not written yet
    ours: tuple[CommerceReturn, ...]  # the commerce returns already written for this store return
    expected_refund: float  # the returned lines' value, tax included, after discounts
    expected_tax: float


def is_ours(store_return_id: str, external_id: str | None) -> bool:
    return bool(external_id) and (external_id == store_return_id or str(external_id).startswith(store_return_id + "/"))


def _external_id(store_return_id: str, index: int, groups: int) -> str:
    return store_return_id if groups == 1 else f"{store_return_id}/{index + 1}"


def plan_return(ret: StoreReturn, order: CommerceOrder) -> ReturnPlan | Problem:
    """The commerce returns that record `ret` on `order`, or the problem that stops it."""
    ours = tuple(r for r in order.returns if is_ours(ret.return_id, r.external_id))
    returned_elsewhere: dict[str, int] = defaultdict(int)  # shipment line -> units returned by other returns
    for r in order.returns:
        if r not in ours:
            for ln in r.lines:
                if ln.shipment_line_id:
                    returned_elsewhere[ln.shipment_line_id] += ln.quantity
    wanted: dict[str, int] = defaultdict(int)
    for item in ret.items:
        wanted[item.sku] += item.quantity
    allocations: dict[str, list[tuple[str, int]]] = defaultdict(list)  # shipment id -> (shipment line, qty)
    value = tax = 0.0
    short: dict[str, dict[str, int]] = {}
    for sku, qty in sorted(wanted.items()):
        left = qty
        for line in (ln for ln in order.lines if ln.sku == sku):
            for shipment in sorted((s for s in order.shipments if s.completed), key=lambda s: s.shipment_id):
                for sl in shipment.lines:
                    if left == 0 or sl.order_line_id != line.line_id:
                        continue
                    take = min(left, sl.quantity - returned_elsewhere[sl.shipment_line_id])
                    if take <= 0:
                        continue
                    allocations[shipment.shipment_id].append((sl.shipment_line_id, take))
                    left -= take
                    value += take * line.unit_price
                    tax += take * line.unit_price * line.tax_percent / (100.0 + line.tax_percent)
        if left:
            short[sku] = {"requested": qty, "returnable": qty - left}
    if short:
        return Problem(RETURN_LINES_UNMATCHED,
                       f"store return {ret.return_id}: order {order.ref} cannot take back "
                       + ", ".join(f"{s} x{v['requested']} (returnable {v['returnable']})" for s, v in short.items()),
                       {"order": order.ref, "store_return": ret.return_id, "unmatched": short,
                        "order_lines": [{"sku": ln.sku, "quantity": ln.quantity, "shipped": ln.shipped_quantity,
                                         "returned": ln.returned_quantity} for ln in order.lines]})
    groups = sorted(allocations)
    requests = tuple(
        ReturnRequest(order_ref=order.ref, shipment_id=sid, lines=tuple(allocations[sid]),
                      external_id=_external_id(ret.return_id, i, len(groups)),
                      comment=f"Returned in store {ret.location_id} (store return {ret.return_id})",
                      returned_at=ret.returned_at)
        for i, sid in enumerate(groups))
    written = {r.external_id for r in ours}
    return ReturnPlan(tuple(r for r in requests if r.external_id not in written), ours,
                      round(value, 2), round(tax, 2))


def refund_problems(ret: StoreReturn, commerce: tuple[CommerceReturn, ...], refund: StoreRefund,
                    order_ref: str) -> list[Problem]:
    """Mismatches between the store's refund and the commerce platform's for the same returned lines."""
    online_amount = round(sum(r.grand_total for r in commerce), 2)
    online_tax = round(sum(r.tax_total for r in commerce), 2)
    tolerance = CENT * max(1, len(ret.items)) + 1e-9  # a cent per item, exactly (not 0.01000000000001)
    store_amount = round(sum(i.refund_amount for i in ret.items), 2)
    evidence = {"order": order_ref, "store_return": ret.return_id, "currency": ret.currency,
                "commerce_refund": online_amount, "commerce_tax": online_tax,
                "store_item_refunds": store_amount, "store_refund_requested": refund.requested,
                "store_refunded": refund.refunded,
                "commerce_returns": [r.return_id for r in commerce]}
    problems = []
    amounts = {"items": store_amount, "requested": refund.requested, "refunded": refund.refunded}
    off = {k: v for k, v in amounts.items() if v is not None and abs(v - online_amount) > tolerance}
    if off:
        problems.append(Problem(
            REFUND_AMOUNT_MISMATCH,
            f"store return {ret.return_id} of order {order_ref}: store refunded "
            + ", ".join(f"{k} {v:.2f}" for k, v in off.items())
            + f" {ret.currency}; the order's lines are worth {online_amount:.2f}", evidence))
    taxes = [i.refund_tax for i in ret.items]
    if taxes and all(t is not None for t in taxes):
        store_tax = round(sum(t for t in taxes if t is not None), 2)
        # The tax the order's rates give on what the store refunded: a wrong amount is not also a wrong tax.
        due = online_tax * store_amount / online_amount if online_amount else online_tax
        if abs(store_tax - due) > tolerance:
            problems.append(Problem(
                REFUND_TAX_MISMATCH,
                f"store return {ret.return_id} of order {order_ref}: store refunded tax {store_tax:.2f} "
                f"{ret.currency}; the order's line tax rates give {due:.2f}", {**evidence, "store_tax": store_tax}))
    return problems
