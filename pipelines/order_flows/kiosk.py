"""The kiosk order flow (key: the Cloudshelf order's GlobalId): a kiosk order becomes a stock deduction or a
Centra order, and the Centra order's fulfilment flows back to the kiosk (decisions:
`pipelines.domain.flows.kiosk`; docs: Issue 14 design).

Triggers (`pipelines.order_flows.cloudshelf_events`): a landed Cloudshelf order delivery (webhook, or the
once-a-minute poll that finds dropped ones), and any Centra order event of a Centra order made for a kiosk order.
A delivery is a poke: the flow reads the order by id from Cloudshelf (`order(id)`: status, lines, the session's
location and fulfilment method) and takes only the customer's details from the landed payload.

- Not paid yet (DRAFT_BASKET, PLACED) or VOIDED before payment: nothing to do (`waiting_for_payment`).
- Take-home (the session's fulfilment method is the take-home option): one negative `sale` per line into the stock
  sync's queue (`pipelines.sync.kiosk_movements`), keyed by (order, line): deducted in the store's Centra
  warehouse exactly once, whatever the number of deliveries or re-runs.
- Delivery (endless aisle): the Centra order made for it before is looked up (our `kiosk_orders` row, else
  Centra by external id = the Cloudshelf order id: a crash between Centra's success and our commit), else it is
  created through the commerce port (guest, the store's market and price list, the mapped shipping option).
  Then the status goes back (`upsertOrders`): PAID with `newThirdPartyId` = the Centra order number, the lines'
  fulfilment `customAttributes` when Centra ships, VOIDED on a cancellation, (PARTIALLY_)REFUNDED on refunds;
  only what changed since the last send (`kiosk_orders.sent_state`).

Problems are exception records at once (runner): `shipping_option_unmapped`, `store_market_unmapped`,
`endless_aisle_incomplete`, `commerce_order_rejected`, `kiosk_order_unmapped`, `kiosk_status_rejected`. A blocked
order keeps the settings' fingerprint; `start` (each flows run) sets it pending again once the settings differ,
so fixing the shipping map is enough for it to be created. A new delivery for the order re-triggers it too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import Engine

from pipelines.connectors.cloudshelf import ids
from pipelines.connectors.cloudshelf.errors import CloudshelfUserError
from pipelines.domain.flows import kiosk as k
from pipelines.domain.flows.exceptions import (
    COMMERCE_ORDER_REJECTED,
    KIOSK_ORDER_UNMAPPED,
    KIOSK_STATUS_REJECTED,
    Problem,
)
from pipelines.domain.flows.ports import CommerceRejected
from pipelines.domain.timeutil import utc_text
from pipelines.estate import Estate
from pipelines.order_flows.context import FlowContext, FlowResult
from pipelines.order_flows.names import KIOSK_ORDER
from pipelines.store import kiosk_orders as state
from pipelines.sync.config import SyncConfig
from pipelines.sync.kiosk_movements import queue_kiosk_sales

DEFAULT_ORDER_SUBJECT = "OrderPaid"  # ASSUMPTION (simulator knob `order_subject`): Cloudshelf documents ProductUpsert


class KioskPlatform(Protocol):
    """The kiosk platform as the flow uses it (Cloudshelf: `CloudshelfKiosk`)."""

    def order(self, order_id: str) -> k.KioskOrder | None: ...

    def upsert_order(self, order_input: dict[str, Any]) -> None: ...

    def orders_since(self, updated_after: str) -> list[k.KioskOrder]: ...

    def register_webhook(self, subject: str, url: str) -> str | None: ...


def kiosk_order_of(order: Any) -> k.KioskOrder:
    """The connector's `KioskOrder` (pipelines.connectors.cloudshelf.client) as the domain reads it."""
    return k.KioskOrder(
        order_id=order.id, status=order.status, location_id=ids.location_of(order.location_id),
        fulfilment_method=order.fulfilment_method, currency=order.currency, created_at=order.created_at or None,
        updated_at=order.updated_at or None, third_party_id=order.third_party_id,
        lines=tuple(k.KioskLine(line_id=ln.id, sku=ln.sku, quantity=ln.quantity, unit_price=ln.price,
                                currency=ln.currency) for ln in order.lines))


class CloudshelfKiosk:
    """`KioskPlatform` over a `CloudshelfClient`."""

    def __init__(self, client: Any):
        self.client = client

    def order(self, order_id: str) -> k.KioskOrder | None:
        found = self.client.order(order_id)
        return kiosk_order_of(found) if found is not None else None

    def upsert_order(self, order_input: dict[str, Any]) -> None:
        self.client.upsert_orders([order_input])

    def orders_since(self, updated_after: str) -> list[k.KioskOrder]:
        return [kiosk_order_of(o) for o in self.client.orders_since(updated_after)]

    def register_webhook(self, subject: str, url: str) -> str | None:
        return self.client.register_webhook(subject, url).get("id")


@dataclass
class KioskRuntime:
    """What the kiosk flow needs beyond the flow context: Cloudshelf, the estate (stores, SKUs) and the stock
    sync's config (which locations are synced), and where Cloudshelf should deliver order webhooks."""

    platform: KioskPlatform
    estate: Estate
    sync_config: SyncConfig = field(default_factory=SyncConfig)
    webhook_url: str | None = None  # the intake's /cloudshelf/webhooks URL with its ?key=
    order_subject: str = DEFAULT_ORDER_SUBJECT


def webhook_url(base: str | None, key: str | None) -> str | None:
    """The URL registered with Cloudshelf: the intake's `/cloudshelf/webhooks` with `?key=<secret>`."""
    if not base:
        return None
    if not key:
        return base
    return f"{base}{'&' if '?' in base else '?'}key={quote(key, safe='')}"


def fingerprint(ctx: FlowContext) -> str:
    """The settings a blocked kiosk order depends on (kiosk settings, the stores' terms)."""
    terms = sorted((s, t.market_id, t.pricelist_id) for s, t in ctx.settings.store_terms.items())
    return hashlib.sha256(f"{ctx.settings.kiosk.fingerprint()}|{terms}".encode()).hexdigest()[:32]


def start(ctx: FlowContext) -> dict[str, Any]:
    """At the start of a flows run: register our webhook with Cloudshelf once (recorded: Cloudshelf's
    registerWebhook is not idempotent) and retry orders blocked under other settings."""
    rt: KioskRuntime | None = ctx.kiosk
    if rt is None:
        return {}
    out: dict[str, Any] = {"requeued": state.requeue_blocked(ctx.engine, KIOSK_ORDER, fingerprint(ctx))}
    hook = ensure_webhook(ctx.engine, rt)
    if hook is not None:
        out["registered"] = hook
    return out


def ensure_webhook(engine: Engine, rt: KioskRuntime) -> str | None:
    """Register our webhook with Cloudshelf unless it is recorded as registered (Cloudshelf's registerWebhook is
    not idempotent); the new webhook's id, else None. Called by every flows run and by the minute poll, so kiosk
    orders come by webhook even before any other flow has run."""
    if not rt.webhook_url or state.webhook_registered(engine, rt.order_subject, rt.webhook_url):
        return None
    hook = rt.platform.register_webhook(rt.order_subject, rt.webhook_url)
    state.record_webhook(engine, rt.order_subject, rt.webhook_url, hook)
    return hook or ""


def _outcome(action: str, **kw: Any) -> dict[str, Any]:
    return {"action": action, **{key: v for key, v in kw.items() if v is not None}}


def _blocked(ctx: FlowContext, order: k.KioskOrder, problem: Problem, **kw: Any) -> FlowResult:
    state.save(ctx.engine, order.order_id, blocked_problem=problem.kind.name, blocked_fingerprint=fingerprint(ctx))
    return FlowResult("exception", _outcome("blocked", problem=problem.kind.name, store=order.location_id, **kw),
                      problems=[problem], blocked=True)


def kiosk_order(ctx: FlowContext, order_id: str) -> FlowResult:
    from pipelines.order_flows.cloudshelf_events import customer_of, latest_event_id

    rt: KioskRuntime | None = ctx.kiosk
    if rt is None:
        return FlowResult("skipped", _outcome("cloudshelf_not_configured"))
    order = rt.platform.order(order_id)
    if order is None:
        return FlowResult("skipped", _outcome("order_not_found"))
    settings = ctx.settings.kiosk
    kind = k.classify(order, settings)
    state.save(ctx.engine, order_id, kind=kind, location_id=order.location_id,
               fulfilment_method=order.fulfilment_method, kiosk_status=order.status)
    if kind == k.TAKE_HOME and order.status in k.RESTOCK_STATUSES:
        return _restock(ctx, rt, order, latest_event_id(ctx.engine, order_id))
    if not k.is_paid(order):
        return FlowResult("skipped", _outcome("waiting_for_payment", status=order.status, kind=kind))
    unknown = [ln.line_id for ln in order.lines if not ln.sku and ln.quantity > 0]
    store = rt.estate.location_of(order.location_id) if order.location_id else None
    if store is None or unknown:
        why = ([] if store is not None else [f"its location {order.location_id!r} is not an estate store"]) + (
            [f"line(s) {', '.join(unknown)} name no variant of ours"] if unknown else [])
        problem = Problem(KIOSK_ORDER_UNMAPPED, f"kiosk order {order_id}: {'; '.join(why)}",
                          {"order": order_id, "location": order.location_id, "lines": unknown, "kind": kind})
        return _blocked(ctx, order, problem, kind=kind)
    if kind == k.TAKE_HOME:
        return _take_home(ctx, rt, order, latest_event_id(ctx.engine, order_id))
    return _delivery(ctx, rt, order, customer_of(ctx.engine, order_id))


def _take_home(ctx: FlowContext, rt: KioskRuntime, order: k.KioskOrder, inbox_id: int) -> FlowResult:
    moves, _ = k.take_home_movements(order)
    new = queue_kiosk_sales(ctx.engine, rt.estate, moves, inbox_event_id=inbox_id, order_id=order.order_id,
                            config=rt.sync_config)
    state.save(ctx.engine, order.order_id, movements=len(moves), blocked_problem=None, blocked_fingerprint=None)
    return FlowResult("done", _outcome("deducted" if new else "deducted_already", store=order.location_id,
                                       units=-sum(m.quantity for m in moves), movements=len(moves), new=new),
                      wrote=new > 0)


def _restock(ctx: FlowContext, rt: KioskRuntime, order: k.KioskOrder, inbox_id: int) -> FlowResult:
    """A take-home sale voided or refunded at the kiosk: its units back into the store's warehouse through the stock
    sync. A refunded order was paid, so its sale is queued too (both idempotent: the sale may come after, or never
    have been seen); a voided one only restocks what was deducted (a basket voided unpaid deducted nothing)."""
    row = state.get(ctx.engine, order.order_id) or {}
    if order.status != "REFUNDED" and not row.get("movements"):
        return FlowResult("skipped", _outcome("nothing_deducted", status=order.status))
    sale, _ = k.take_home_movements(order)
    moves = [*sale, *k.restock_movements(order)]
    new = queue_kiosk_sales(ctx.engine, rt.estate, moves, inbox_event_id=inbox_id, order_id=order.order_id,
                            config=rt.sync_config)
    state.save(ctx.engine, order.order_id, movements=len(moves))
    return FlowResult("done", _outcome("restocked" if new else "restocked_already", store=order.location_id,
                                       status=order.status, units=sum(m.quantity for m in moves if m.quantity > 0),
                                       new=new), wrote=new > 0)


def _delivery(ctx: FlowContext, rt: KioskRuntime, order: k.KioskOrder, customer: k.KioskCustomer) -> FlowResult:
    row = state.get(ctx.engine, order.order_id) or {}
    terms = ctx.settings.store_terms.get(order.location_id or "")
    existing = None
    if row.get("centra_order_ref"):
        existing = ctx.commerce.order(str(row["centra_order_ref"]))
    elif terms is not None:
        existing = ctx.commerce.order_by_external_id(order.order_id, terms.market_id)
    action = "created_already"
    if existing is None:
        request = k.order_request(order, customer, ctx.settings.store_terms, ctx.settings.kiosk)
        if isinstance(request, Problem):
            return _blocked(ctx, order, request, kind=k.DELIVERY)
        try:
            existing = ctx.commerce.create_order(request)
        except CommerceRejected as exc:
            problem = Problem(COMMERCE_ORDER_REJECTED, f"kiosk order {order.order_id} of store {order.location_id}: "
                              f"{exc}", {"order": order.order_id, "store": order.location_id, **exc.evidence})
            return _blocked(ctx, order, problem, kind=k.DELIVERY)
        action = "created"
    state.save(ctx.engine, order.order_id, centra_order_ref=existing.ref, centra_market_id=existing.market_id,
               blocked_problem=None, blocked_fingerprint=None)
    sent, problem = _send_status(ctx, order, existing, row.get("sent_state"))
    outcome = _outcome(action, commerce_order=existing.ref, store=order.location_id, market=existing.market_id,
                       shipping_option=existing.shipping_option if action == "created" else None,
                       status_sent=sent)
    if problem is not None:
        return FlowResult("exception", {**outcome, "problem": problem.kind.name}, wrote=action == "created",
                          problems=[problem], blocked=True)
    return FlowResult("done", outcome, wrote=action == "created" or sent is not None)


def _send_status(ctx: FlowContext, order: k.KioskOrder, centra: Any,
                 sent_state: str | None) -> tuple[str | None, Problem | None]:
    """Send the kiosk order's status when it differs from what was last sent; (status sent, problem)."""
    current = ctx.commerce.order(centra.ref) or centra
    read = getattr(ctx.commerce, "order_tracking", None)
    found = read(current.ref) if read is not None and any(ln.shipped_quantity for ln in current.lines) else None
    wanted = k.status_back(order, current, k.Tracking(*found) if found else None)
    if not k.changed(wanted, sent_state):
        return None, None
    try:
        ctx.kiosk.platform.upsert_order(k.status_input(order.order_id, wanted, sent_state))
    except CloudshelfUserError as exc:
        return None, Problem(KIOSK_STATUS_REJECTED, f"kiosk order {order.order_id}: Cloudshelf refused the status "
                             f"of Centra order {current.ref}: {exc}",
                             {"order": order.order_id, "commerce_order": current.ref, "errors": exc.errors})
    state.save(ctx.engine, order.order_id, sent_status=wanted.status, sent_state=wanted.as_json(),
               sent_at=utc_text(ctx.now()))
    return wanted.status, None


def blocked_orders(engine: Engine) -> int:
    """How many kiosk orders are blocked (for the asset's metadata)."""
    from sqlalchemy import func, select

    from pipelines.store.db import table

    tbl = table(engine, state.TABLE)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(tbl.c.blocked_problem.is_not(None))).scalar() or 0)


__all__ = ["KIOSK_ORDER", "CloudshelfKiosk", "KioskPlatform", "KioskRuntime", "blocked_orders", "kiosk_order",
           "kiosk_order_of", "kiosk_settings", "start", "webhook_url"]


def kiosk_settings(take_home: str | None, shipping_map: str | None, address_keys: str | None,
                   register_customer: bool = False) -> k.KioskSettings:
    """The kiosk settings from their texts (the maps: JSON objects or `NAME=value,...`; empty: the defaults)."""
    default = k.KioskSettings()
    return k.KioskSettings(take_home=take_home or default.take_home,
                           shipping_map=k.parse_map(shipping_map) if shipping_map else default.shipping_map,
                           address_keys=k.parse_map(address_keys) if address_keys else default.address_keys,
                           register_customer=register_customer)
