"""The ERP order-to-cash flows (issue 15): verified commerce orders become ERP sales orders (`erp_order`, key: the
commerce order's reference), and the ERP's shipments become commerce shipments with tracking (`erp_shipment`,
key: the ERP shipment's id). Decisions: `pipelines.domain.erp.orders` / `.shipments`; state:
`pipelines.store.erp_orders`; the ERP through the `pipelines.domain.erp.ports.ErpSystem` port.

Order to ERP (triggered by every Centra order event; the flow decides whether the order is due):
- no ERP configured -> skipped; already posted (our `erp_order_postings` row) -> done without a call.
- the order read with what the ERP needs (`order_for_erp`: price-list prices, shipping, payment history; a
  commerce platform without it -> skipped); cancelled (or every line cancelled) -> skipped (never posted); not verified under `ErpSettings.order_rule` -> skipped (its next order
  event re-runs it).
- planned (`plan_order`): any problem -> blocked with every problem recorded, nothing written; the row keeps the
  mapping fingerprint and `start` sets it pending again once the estate's mapping differs.
- idempotent on the external reference: `orders_by_external_ref` first (one found: it was created before a crash
  or a lost response -> recorded; two or more: recorded as duplicated for the reconciliation), else
  `create_order` (one deep insert: the lines with the order or nothing; a refusal -> `erp_order_rejected`).

Fulfilment back (`erp_shipment`: the shipment as polled and landed in the inbox, `erp_orders.poll_shipments`):
- already applied -> done without a call; no posting for its external reference, or another ERP order than the
  one posted -> `erp_shipment_unmatched` (set pending again when the order's posting is recorded later).
- its lines mapped back through the posting's line map, counting all the ERP's landed shipments of the order
  (`map_shipment`: bundles ship whole); in the commerce platform: the shipment carrying our marker
  `erp:<shipment number>` (a crash after the write) -> completed if it is not yet, else done without a write; an
  uncompleted shipment of exactly those lines -> completed with carrier and tracking; else created with the marker
  and completed with carrier and tracking (`ship_tracked`, the customer notified).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.domain.erp import exceptions as x
from pipelines.domain.erp.mapping import ErpMapping
from pipelines.domain.erp.model import ErpOrder, ErpShipment
from pipelines.domain.erp.orders import ErpFacts, OrderPlan, plan_order, verified
from pipelines.domain.erp.ports import ErpRejected, ErpSystem
from pipelines.domain.erp.shipments import map_shipment
from pipelines.domain.flows.exceptions import Problem
from pipelines.domain.flows.model import CommerceOrder, CommerceShipment
from pipelines.domain.flows.ports import ShipRequest
from pipelines.order_flows.context import FlowContext, FlowResult
from pipelines.order_flows.names import ERP_ORDER, ERP_SHIPMENT
from pipelines.store import erp_orders as state
from pipelines.store import order_flows as work

MARKER_PREFIX = "erp:"


@dataclass
class ErpRuntime:
    """What the ERP flows need beyond the flow context: the ERP, the estate's mapping, the order rule, and the list
    price of a SKU in a commerce price list (bundles are split by it). ERP items and customers' currencies are
    read once per flows run (`start` forgets them)."""

    erp: ErpSystem
    mapping: ErpMapping
    list_price: Callable[[str, str | None], float | None]
    order_rule: str = "confirmed_authorised"
    business_timezone: str = "UTC"  # the ERP order's date is the business day the commerce order was placed on
    shipment_poll_s: float = 5.0  # a flows run polls the ERP's shipments this often itself (`poll_in_run`)
    shipment_overlap_s: float = 300.0
    _polled_at: float = 0.0
    _forgot_at: float = 0.0
    _items: frozenset[tuple[str, str | None]] | None = None
    _currencies: dict[str, str | None] = field(default_factory=dict)

    def facts(self) -> ErpFacts:
        if self._items is None:
            self._items = frozenset((i.number, i.variant_code) for i in self.erp.items())
        return ErpFacts(items=self._items, customer_currency=self._customer_currency)

    def _customer_currency(self, number: str) -> str | None:
        if number not in self._currencies:
            self._currencies[number] = self.erp.customer_currency(number)
        return self._currencies[number]

    def forget(self, now: float, every_s: float = 60.0) -> None:
        """Read the ERP's items and customers afresh at the next need, at most every `every_s` (a flows run calls
        this each pass, every second)."""
        if now - self._forgot_at >= every_s:
            self._forgot_at = now
            self._items = None
            self._currencies.clear()


def estate_list_price(estate: Any) -> Callable[[str, str | None], float | None]:
    """`ErpRuntime.list_price` over the estate's catalog (None: the SKU has no price in that price list)."""
    def price(sku: str, pricelist_id: str | None) -> float | None:
        if pricelist_id is None or not str(pricelist_id).isdigit():
            return None
        try:
            return float(estate.price(sku, int(pricelist_id)))
        except KeyError:
            return None
    return price


def start(ctx: FlowContext) -> dict[str, Any]:
    """At each pass of a flows run: forget the ERP's items and customers (at most once a minute), and set orders
    blocked under another mapping pending again."""
    rt: ErpRuntime | None = ctx.erp
    if rt is None:
        return {}
    rt.forget(ctx.now().timestamp())
    return {"requeued": state.requeue_blocked(ctx.engine, ERP_ORDER, rt.mapping.fingerprint)}


def poll_in_run(ctx: FlowContext) -> int:
    """A flows run reads the ERP's shipments itself every `shipment_poll_s` (the sensor does so only between runs):
    what lands is registered by the same pass, so a shipment waits for neither a sensor tick nor a new run. The
    inbox keeps each shipment version once, whoever polled it. Returns how many landed."""
    rt: ErpRuntime | None = ctx.erp
    now = ctx.now()
    if rt is None or now.timestamp() - rt._polled_at < rt.shipment_poll_s:
        return 0
    rt._polled_at = now.timestamp()
    return state.poll_shipments(ctx.engine, rt.erp, rt.shipment_overlap_s, now).landed


def _outcome(action: str, **kw: Any) -> dict[str, Any]:
    return {"action": action, **{k: v for k, v in kw.items() if v is not None}}


# -- order to ERP ----------------------------------------------------------------------------------------------------

def erp_order(ctx: FlowContext, ref: str) -> FlowResult:
    rt: ErpRuntime | None = ctx.erp
    if rt is None:
        return FlowResult("skipped", _outcome("erp_not_configured"))
    row = state.posting(ctx.engine, ref)
    if row is not None and row["status"] == state.POSTED:
        return FlowResult("done", _outcome("posted_already", erp_order=row["erp_order_number"]))
    read = getattr(ctx.commerce, "order_for_erp", None)
    if read is None:  # the ERP runs behind Centra (issue 15)
        return FlowResult("skipped", _outcome("commerce_platform_without_erp"))
    order: CommerceOrder | None = read(ref, rt.business_timezone)
    if order is None:
        return FlowResult("skipped", _outcome("order_not_found"))
    if order.status == "cancelled" or not any(ln.quantity > 0 for ln in order.lines):
        return FlowResult("skipped", _outcome("cancelled"))
    if not verified(order, rt.order_rule):
        return FlowResult("skipped", _outcome("not_verified", rule=rt.order_rule))
    plan = plan_order(order, rt.mapping, rt.facts(), rt.list_price)
    if not isinstance(plan, OrderPlan):
        return _blocked(ctx, rt, ref, plan)
    found = rt.erp.orders_by_external_ref(ref)
    action = "found" if found else "created"
    if found:
        erp_order_ = sorted(found, key=lambda o: o.number)[0]
    else:
        try:
            erp_order_ = rt.erp.create_order(plan.request)
        except ErpRejected as exc:
            problem = Problem(x.ERP_ORDER_REJECTED, f"commerce order {ref}: the ERP refused its sales order: {exc}",
                              {"order": ref, "value": order.grand_total, "currency": order.currency, **exc.evidence})
            return _blocked(ctx, rt, ref, [problem])
    if len(found) > 1:
        action = "duplicated"
    state.record_posted(ctx.engine, ref, erp_order_id=erp_order_.order_id, erp_order_number=erp_order_.number,
                        found=max(1, len(found)), customer_number=plan.request.customer_number,
                        currency=plan.request.currency, total_including_tax=erp_order_.total_including_tax,
                        fingerprint=rt.mapping.fingerprint, line_map=line_map(plan, erp_order_))
    state.requeue_shipments(ctx.engine, ERP_SHIPMENT, ref)  # shipments read before this record: applied now
    return FlowResult("done", _outcome(action, erp_order=erp_order_.number, lines=len(plan.request.lines),
                                       erp_orders=len(found) if len(found) > 1 else None),
                      wrote=action == "created")


def line_map(plan: OrderPlan, order: ErpOrder) -> list[tuple[int, str | None, int]]:
    """(ERP line sequence, commerce line id, ERP units per commerce unit) of each ERP line: by position when the ERP
    order has the plan's lines, else each ERP line matched to the first unmatched planned line of the same type,
    number, variant and quantity (an order someone edited in the ERP)."""
    erp_lines = sorted(order.lines, key=lambda ln: ln.sequence)
    planned = list(zip(plan.request.lines, plan.origins, strict=True))
    same = len(erp_lines) == len(planned) and all(
        e.number == p.number and e.line_type == p.line_type for e, (p, _) in zip(erp_lines, planned, strict=True))
    if same:
        return [(e.sequence, o.line_id, o.per_unit) for e, (_, o) in zip(erp_lines, planned, strict=True)]
    out, free = [], list(planned)
    for e in erp_lines:
        hit = next((i for i, (p, _) in enumerate(free) if p.line_type == e.line_type and p.number == e.number
                    and (p.variant_code or None) == (e.variant_code or None) and float(p.quantity) == e.quantity),
                   None)
        if hit is not None:
            _, origin = free.pop(hit)
            out.append((e.sequence, origin.line_id, origin.per_unit))
    return out


def _blocked(ctx: FlowContext, rt: ErpRuntime, ref: str, problems: list[Problem]) -> FlowResult:
    state.record_blocked(ctx.engine, ref, [p.kind.name for p in problems], rt.mapping.fingerprint)
    return FlowResult("exception", _outcome("blocked", problems=sorted(p.kind.name for p in problems)),
                      problems=problems, blocked=True)


# -- fulfilment back -------------------------------------------------------------------------------------------------

def with_erp_orders(commerce: Callable[..., list[work.Trigger]]) -> Callable[..., list[work.Trigger]]:
    """The commerce platform's order triggers plus the ERP order flow's: every order event re-runs it (it decides
    whether the order is verified). Used only when an ERP is configured, so an estate without one has no ERP work."""

    def triggers(inbox_id: int, name: str, when: str | None, envelope: dict[str, Any]) -> list[work.Trigger]:
        found = commerce(inbox_id, name, when, envelope)
        refs = {t.work_key: t for t in found}
        return found + [work.Trigger(ERP_ORDER, ref, t.event, t.inbox_id, t.event_time)
                        for ref, t in refs.items()]
    return triggers


def erp_shipment_triggers(inbox_id: int, name: str, when: str | None, envelope: dict[str, Any]) -> list[work.Trigger]:
    """A landed ERP shipment (`erp.shipment`) -> the `erp_shipment` flow for it."""
    sid = envelope.get("shipment_id")
    if name != state.SHIPMENT_EVENT or not sid:
        return []
    return [work.Trigger(ERP_SHIPMENT, str(sid), name, inbox_id, when)]


def erp_shipment(ctx: FlowContext, shipment_id: str) -> FlowResult:
    rt: ErpRuntime | None = ctx.erp
    if rt is None:
        return FlowResult("skipped", _outcome("erp_not_configured"))
    done = state.applied(ctx.engine, shipment_id)
    if done is not None:
        return FlowResult("done", _outcome("applied_already", commerce_shipment=done["commerce_shipment_id"]))
    landed = state.landed_shipments(ctx.engine, shipment_id=shipment_id)
    if not landed:
        return FlowResult("skipped", _outcome("shipment_not_landed"))
    shipment = landed[-1]
    ref = shipment.external_ref
    row = state.posting(ctx.engine, ref) if ref else None
    if row is None or row["status"] != state.POSTED or (row["erp_order_number"] and shipment.order_number
                                                         and row["erp_order_number"] != shipment.order_number):
        why = ("no order posted for its external reference" if row is None or row["status"] != state.POSTED
               else f"it ships ERP order {shipment.order_number}, the order was posted as {row['erp_order_number']}")
        return _unmatched(shipment, why)
    mapped = map_shipment(shipment, state.landed_shipments(ctx.engine, external_ref=ref), state.line_map_of(row))
    if mapped.unmapped:
        return _unmatched(shipment, "lines that map to no commerce order line", sequences=list(mapped.unmapped))
    if not mapped.lines:
        state.record_applied(ctx.engine, shipment, ref, None, [])
        return FlowResult("done", _outcome("nothing_completed", order=ref, shipment=shipment.number))
    order = ctx.commerce.order(ref)
    if order is None:
        return _unmatched(shipment, f"the commerce order {ref} is not found")
    marker = f"{MARKER_PREFIX}{shipment.number}"
    mine = next((s for s in order.shipments if s.message == marker), None)
    wanted = sorted(mapped.lines)
    action = "shipped"
    if mine is not None and mine.completed:
        state.record_applied(ctx.engine, shipment, ref, mine.shipment_id, wanted)
        return FlowResult("done", _outcome("shipped_already", order=ref, commerce_shipment=mine.shipment_id))
    pending = mine or next((s for s in order.shipments if not s.completed and _lines(s) == wanted), None)
    if pending is None:
        over = [{"line": lid, "units": n, "left": _left(order, lid)} for lid, n in wanted if n > _left(order, lid)]
        if over:
            return _unmatched(shipment, "more units than the commerce order has left to ship", lines=over)
        done_ = ctx.commerce.ship_tracked(ShipRequest(order_ref=ref, lines=tuple(wanted), marker=marker,
                                                      notify_customer=True),
                                          carrier=shipment.carrier, tracking_number=shipment.tracking_number)
    else:
        action = "completed"
        done_ = ctx.commerce.complete_tracked(pending.shipment_id, notify_customer=True, carrier=shipment.carrier,
                                              tracking_number=shipment.tracking_number)
    state.record_applied(ctx.engine, shipment, ref, done_.shipment_id, wanted)
    return FlowResult("done", _outcome(action, order=ref, shipment=shipment.number,
                                       commerce_shipment=done_.shipment_id, units=sum(n for _, n in wanted)),
                      wrote=True)


def _lines(s: CommerceShipment) -> list[tuple[str, int]]:
    units: dict[str, int] = {}
    for ln in s.lines:
        units[ln.order_line_id] = units.get(ln.order_line_id, 0) + ln.quantity
    return sorted(units.items())


def _left(order: CommerceOrder, line_id: str) -> int:
    ln = order.line(line_id)
    return 0 if ln is None else max(0, ln.quantity - ln.shipped_quantity)


def _unmatched(shipment: ErpShipment, why: str, **evidence: Any) -> FlowResult:
    problem = Problem(x.ERP_SHIPMENT_UNMATCHED, f"ERP shipment {shipment.number} of order {shipment.external_ref}: "
                      f"{why}", {"shipment": shipment.number, "shipment_id": shipment.shipment_id,
                                 "erp_order": shipment.order_number, "order": shipment.external_ref,
                                 "tracking_number": shipment.tracking_number, **evidence})
    return FlowResult("exception", _outcome("unmatched", shipment=shipment.number), problems=[problem], blocked=True)


__all__ = ["ERP_ORDER", "ERP_SHIPMENT", "ErpRuntime", "erp_order", "erp_shipment", "erp_shipment_triggers",
           "estate_list_price", "line_map", "start"]
