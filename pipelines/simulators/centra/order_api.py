"""Centra's Order API (REST) on the simulated tenant: `POST <base>/order` (create order) and `GET <base>/orders`.

Source: the Order API reference in `centrahq/api-documentation` @3a2b757f
(`pages/05.api-references/06.order-api/02.api-reference/101.create-order/docs.md`, `104.get-orders`,
`01.api-plugin-settings`, and `01.api-intro` for the `API-Authorization` header). centra.md §4 ("Creating
orders from outside"): the GraphQL Integration API has no create-order mutation; imports use this API.

The order is placed through the same world state as `CentraState.place_order` (allocation per the market's
allocation rule, the stock ledger, the `order insert` webhook), so GraphQL reads see it. Every behaviour the docs
leave open is an ASSUMPTION in PROVENANCE.md ("REST Order API") with its knob: an attribute of `OrderApi`
(`app.state.order_api`), changeable while serving. Forced failures (`state.fail_next`) apply here too.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .ratelimit import retry_after_value
from .records import ForcedFailure, PaymentRec, _utc
from .state import CentraState

# Error codes of the create-order reference ("## Error example").
PRODUCT_UNAVAILABLE, STOCK_ERROR, EMPTY, MISSING_FIELDS, NUMBER_EXISTS, CUSTOMER_FAILED, GENERAL = (
    -1, -2, -3, -4, -5, -6, -7)
GUEST_CUSTOMER_BASE = 900_000  # ids of auto-created (guest) customers, apart from registered ones
_PAYMENT_STATUS = {0: "PENDING", 1: "SUCCESS", 2: "FAILED"}


class OrderApiError(Exception):
    def __init__(self, code: int, msg: str):
        super().__init__(msg)
        self.code, self.msg = code, msg


def shipping_uri(name: str) -> str:
    """A shipping option's URI from its name (as `shippingPriceGroup.shippingOption.uri` shows it)."""
    return "-".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())


@dataclass
class CreatedVia:
    """What the Order API keeps of a created order that the GraphQL order has no field for (sim-only)."""

    other_comment: str | None = None
    send_email: bool | None = None
    shipping_list: str | None = None
    emails_sent: list[str] = field(default_factory=list)


class OrderApi:
    """The Order API plugin of the simulated tenant. Knobs (ASSUMPTIONs, PROVENANCE.md "REST Order API"):
    `api_keys` (the plugin's shared secrets), `allow_order_create` (the plugin flag "Allow Order Create"),
    `base_path` (where `<base>` is mounted), `error_status` (HTTP status of a `status: "no"` answer),
    `send_email_default` (the store setting used when `sendEmail` is absent)."""

    def __init__(self, state: CentraState, *, api_keys: tuple[str, ...] = ("centra-order-api-key",),
                 allow_order_create: bool = True, base_path: str = "/order-api", error_status: int = 200,
                 send_email_default: bool = True) -> None:
        self.state = state
        self.api_keys = set(api_keys)
        self.allow_order_create = allow_order_create
        self.base_path = base_path.rstrip("/")
        self.error_status = error_status
        self.send_email_default = send_email_default
        self.created: dict[int, CreatedVia] = {}  # order number -> what only the Order API knows
        self._failures: deque[ForcedFailure] = deque()
        self.requests: list[dict[str, Any]] = []  # sim-only log of create requests (body, answer)

    def fail_next(self, status: int, count: int = 1, *, retry_after: int | None = 1,
                  after_execute: bool = False) -> None:
        """Answer the next `count` authenticated create requests with HTTP `status` (sim knob, like
        `CentraState.fail_next` but for this API only); `after_execute=True` creates the order first."""
        with self.state.lock:
            for _ in range(count):
                self._failures.append(ForcedFailure(status, retry_after, after_execute))

    def routes(self) -> list[Route]:
        return [Route(f"{self.base_path}/order", self._create, methods=["POST"]),
                Route(f"{self.base_path}/orders", self._orders, methods=["GET"])]

    # -- HTTP

    def _denied(self, request: Request) -> Response | None:
        key = request.headers.get("api-authorization", "").strip()
        if key not in self.api_keys:
            return JSONResponse({"status": "no", "msg": "Unauthorized: invalid API-Authorization"}, status_code=401)
        return None

    async def _create(self, request: Request) -> Response:
        body = await request.body()
        denied = self._denied(request)
        if denied is not None:
            return denied
        return await anyio.to_thread.run_sync(self._create_sync, body)

    def _create_sync(self, raw: bytes) -> Response:
        with self.state.lock:
            forced = self._failures.popleft() if self._failures else None
        forced = forced or self.state.take_forced_failure()
        if forced is not None and not forced.after_execute:
            return self._forced(forced.status, forced.retry_after)
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            body = None
        try:
            if not isinstance(body, dict):
                raise OrderApiError(GENERAL, "The request body must be a JSON object")
            if not self.allow_order_create:
                raise OrderApiError(GENERAL, "Order creation is not allowed for this API plugin")
            number = self.create_order(body)
            answer, status = {"status": "ok", "orders": [number]}, 200
        except OrderApiError as exc:
            answer, status = {"status": "no", "code": exc.code, "msg": exc.msg}, self.error_status
        self.requests.append({"body": body, "answer": answer})
        if forced is not None:
            return self._forced(forced.status, forced.retry_after)
        return JSONResponse(answer, status_code=status)

    def _forced(self, status: int, retry_after: int | None) -> Response:
        headers = ({"Retry-After": retry_after_value(float(retry_after or 0), self.state.retry_after_style)}
                   if status == 429 else {})
        return JSONResponse({"status": "no", "msg": f"Simulated failure (HTTP {status})"}, status_code=status,
                            headers=headers)

    async def _orders(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        q = request.query_params
        try:
            limit = int(q.get("limit", 20))
            offset = int(q.get("offset", 0))
            number = int(q["order"]) if q.get("order") else None
            customer = int(q["customer_id"]) if q.get("customer_id") else None
        except ValueError:
            return JSONResponse({"status": "no", "msg": "limit, offset, order and customer_id are integers"},
                                status_code=self.error_status)
        with self.state.lock:
            orders = sorted(self.state.orders.values(), key=lambda o: o.number)
            orders = [o for o in orders if (number is None or o.number == number)
                      and (customer is None or o.customer_id == customer)]
            rows = [self._order_view(o) for o in orders[offset:offset + max(0, limit)]]
        return JSONResponse({"status": "ok", "orders": rows})

    # -- the world

    def create_order(self, body: dict[str, Any]) -> int:
        """Validate and place the order (one lock: all or nothing); returns its number."""
        st = self.state
        with st.lock:
            plan = self._plan(body)
            saved = st._next_order_number
            known_customer = plan["email"].lower() in st.customers
            if plan["number"] is not None:
                st._next_order_number = plan["number"]
            try:
                summary = st.place_order(plan["market"].id, plan["lines"], email=plan["email"],
                                         created_at=plan["order_date"], unit_prices=None,
                                         shipping=plan["shipping_value"], shipping_option=plan["option"])
            finally:
                if plan["number"] is not None:
                    st._next_order_number = max(saved, plan["number"] + 1)
            order = st.orders[int(summary["number"])]
            if body.get("customerRegister") is not True and not known_customer:
                st.customers.pop(plan["email"].lower(), None)  # place_order registered it: a guest is not
            self._finish(order, plan, body)
            return order.number

    def _plan(self, body: dict[str, Any]) -> dict[str, Any]:
        st = self.state
        both = body.get("address") if isinstance(body.get("address"), dict) else None
        invoice = body.get("invoiceAddress") if isinstance(body.get("invoiceAddress"), dict) else both
        delivery = body.get("deliveryAddress") if isinstance(body.get("deliveryAddress"), dict) else both
        invoice, delivery = invoice or delivery, delivery or invoice
        if invoice is None:
            raise OrderApiError(MISSING_FIELDS, "Missing required field: address (invoiceAddress/deliveryAddress)")
        email = invoice.get("email") or delivery.get("email")
        if not email:
            raise OrderApiError(MISSING_FIELDS, "Missing required field: email")
        if not delivery.get("country") or not invoice.get("country"):
            raise OrderApiError(MISSING_FIELDS, "Missing required field: country")
        country = str(delivery["country"]).upper()
        products = body.get("products")
        if not products:
            raise OrderApiError(EMPTY, "Order is empty")
        if not isinstance(products, list):
            raise OrderApiError(MISSING_FIELDS, "products must be a list")
        market = self._market(body, country)
        pricelist = self._pricelist(body, market, country)
        lines, prices = [], []
        for i, p in enumerate(products):
            if not isinstance(p, dict) or not isinstance(p.get("qty"), int) or p["qty"] <= 0:
                raise OrderApiError(MISSING_FIELDS, f"products[{i}]: qty must be a positive integer")
            if not any(p.get(k) not in (None, "") for k in ("id", "ean", "sku")):
                raise OrderApiError(MISSING_FIELDS, f"products[{i}]: one of id, ean or sku is required")
            ref = (st.find_size(id=int(p["id"])) if p.get("id") not in (None, "") and str(p["id"]).isdigit()
                   else st.find_size(ean=str(p["ean"])) if p.get("ean") else st.find_size(sku=str(p.get("sku"))))
            if ref is None or pricelist.id not in ref.variant.prices:
                raise OrderApiError(PRODUCT_UNAVAILABLE, f"products[{i}]: product {p.get('sku') or p.get('ean') or p.get('id')} "
                                    f"is not available in pricelist {pricelist.id}")
            listed = round(float(ref.variant.prices[pricelist.id]), 2)
            unit = round(float(p["unitPrice"]), 2) if p.get("unitPrice") is not None else listed
            original = round(float(p["originalPrice"]), 2) if p.get("originalPrice") is not None else listed
            lines.append((ref.size.sku, p["qty"]))
            prices.append((unit, original, p.get("comment")))
        number = body.get("orderNumber")
        if number is not None:
            if not isinstance(number, int) or number <= 0:
                raise OrderApiError(MISSING_FIELDS, "orderNumber must be a positive integer")
            if number in st.orders:
                raise OrderApiError(NUMBER_EXISTS, f"An order with order number {number} already exists")
        option = None
        if body.get("shippingList"):
            option = next((n for n in st.shipping_options.values() if shipping_uri(n) == body["shippingList"]), None)
            if option is None:
                raise OrderApiError(GENERAL, f"Unknown shipping option {body['shippingList']!r}")
        customer_id = body.get("customerId")
        if customer_id is not None and customer_id not in st.customers.values():
            raise OrderApiError(CUSTOMER_FAILED, f"Customer {customer_id} not found")
        adjust = body.get("adjustStock", True) is not False
        if adjust:
            self._check_stock(market, lines)
        order_date = _parse_date(body.get("orderDate"), st.tzinfo) if body.get("orderDate") else None
        return {"market": market, "pricelist": pricelist, "country": country, "email": str(email), "lines": lines,
                "prices": prices, "number": number, "option": option, "invoice": invoice, "delivery": delivery,
                "customer_id": customer_id, "order_date": order_date,
                "shipping_value": float(body.get("shippingValue") or 0.0)}

    def _market(self, body: dict[str, Any], country: str) -> Any:
        st = self.state
        if body.get("marketId") is not None:
            market = st.markets.get(body["marketId"]) if isinstance(body["marketId"], int) else None
        elif body.get("market"):
            market = next((m for m in st.markets.values() if m.name == body["market"]), None)
        else:
            market = next((m for m in st.markets.values() if country in m.countries), None)
        if market is None:
            raise OrderApiError(GENERAL, f"No market for {body.get('marketId') or body.get('market') or country}")
        return market

    def _pricelist(self, body: dict[str, Any], market: Any, country: str) -> Any:
        st = self.state
        if body.get("pricelistId") is not None:
            found = st.pricelists.get(body["pricelistId"]) if isinstance(body["pricelistId"], int) else None
        elif body.get("pricelist"):
            found = next((p for p in st.pricelists.values() if p.name == body["pricelist"]), None)
        else:
            found = next((p for p in st.pricelists.values() if country in p.countries), None) \
                or st.pricelists.get(market.pricelist_id)
        if found is None:
            raise OrderApiError(GENERAL, f"No pricelist for {body.get('pricelistId') or body.get('pricelist') or country}")
        return found

    def _check_stock(self, market: Any, lines: list[tuple[str, int]]) -> None:
        st = self.state
        rule = st.allocation_rules.get(market.allocation_rule_id)
        warehouses = rule.warehouse_ids if rule else tuple(st.warehouses)
        wanted: dict[str, int] = {}
        for sku, qty in lines:
            wanted[sku] = wanted.get(sku, 0) + qty
        for sku, qty in wanted.items():
            sid = st.size_by_sku[sku].size.size_id
            free = sum(max(0, st.stock_record(w, sid).fta) for w in warehouses)
            if free < qty:
                raise OrderApiError(STOCK_ERROR, f"Stock error: {sku} has {free} free to allocate, {qty} ordered")

    def _finish(self, order: Any, plan: dict[str, Any], body: dict[str, Any]) -> None:
        """The fields `place_order` has no argument for: pricelist, prices, customer, addresses, comments,
        payment information (the order's own AUTH entry is replaced: Centra handles no payment here)."""
        st = self.state
        pricelist = plan["pricelist"]
        order.pricelist_id, order.currency = pricelist.id, pricelist.currency
        order.currency_base_rate = st.estate.fx_to_base.get(pricelist.currency, 1.0)
        if plan["country"] in plan["market"].countries and plan["country"] != order.country:
            order.country = plan["country"]
            rate = round(st.estate.tax_rates.get(order.country, 0.0) * 100, 2)
            for line in order.lines:
                line.tax_percent = rate
        for line, (unit, original, comment) in zip(order.lines, plan["prices"], strict=True):
            line.unit_price, line.unit_original_price, line.comment = unit, original, comment
        if body.get("customerRegister") is not True:
            # an auto-created customer of its own, not the registered one with the same e-mail
            order.customer_id = GUEST_CUSTOMER_BASE + st._next("order_api_guest")
        if plan["customer_id"] is not None:
            order.customer_id = plan["customer_id"]
        delivery, invoice = plan["delivery"], plan["invoice"]
        order.first_name = delivery.get("firstName") or invoice.get("firstName") or order.first_name
        order.last_name = delivery.get("lastName") or invoice.get("lastName") or order.last_name
        order.shipping_address = _address(delivery)
        order.billing_address = _address(invoice)
        if body.get("internalComment") is not None:
            order.internal_comment = str(body["internalComment"])
        order.is_internal = bool(body.get("internalOrder", False))
        order.payment_history = [p for p in order.payment_history if p.entry_type != "AUTH"]
        payment = body.get("payment") if isinstance(body.get("payment"), dict) else {}
        for kind, entry in (("AUTH", payment.get("auth")), ("CAPTURE", payment.get("capture"))):
            if isinstance(entry, dict):
                order.payment_history.append(PaymentRec(
                    st._next("payment"), order.created_at, kind, _PAYMENT_STATUS.get(entry.get("status"), "PENDING"),
                    round(float(entry.get("amount") or 0.0), 2), order.currency, str(entry.get("transaction") or ""),
                    payment_method=str(entry.get("method") or "external")))
        send = body.get("sendEmail")
        via = CreatedVia(other_comment=body.get("comment"), send_email=send,
                         shipping_list=body.get("shippingList"))
        if (self.send_email_default if send is None else bool(send)):
            via.emails_sent.append("order_confirmation")
        self.created[order.number] = via

    def _order_view(self, o: Any) -> dict[str, Any]:
        """One order as `GET <base>/orders` lists it (a subset of the documented fields)."""
        st = self.state
        via = self.created.get(o.number, CreatedVia())
        delivery = o.shipping_address or {}
        return {
            "orderId": str(o.number), "selectionId": o.id, "orderStatus": o.status.lower(),
            "orderDate": o.order_date.astimezone(st.tzinfo).strftime("%Y-%m-%d %H:%M:%S"),
            "orderCurrency": o.currency, "customerId": str(o.customer_id),
            "deliveryEmail": o.email, "deliveryCountry": o.country,
            "deliveryName": " ".join(x for x in (o.first_name, o.last_name) if x),
            "deliveryAddress": delivery.get("address1") or "", "deliveryCity": delivery.get("city") or "",
            "deliveryZipcode": delivery.get("zipCode") or "",
            "shippingList": shipping_uri(st.shipping_options[o.shipping_option_id]),
            "internalOrder": int(o.is_internal), "hold": int(o.is_on_hold),
            "shippingValue": o.shipping_value, "grandTotalValue": st.order_grand_total(o),
            "internalComment": o.internal_comment or "", "otherComment": via.other_comment or "",
            "marketId": o.market_id, "pricelistId": o.pricelist_id,
            "products": [{"lineId": str(ln.id), "sku": ln.ref.size.sku, "ean": ln.ref.size.ean, "qty": ln.quantity,
                          "originalPrice": ln.unit_original_price, "price": ln.unit_price,
                          "taxPercent": ln.tax_percent, "comment": ln.comment or ""} for ln in o.lines],
        }


def _address(a: dict[str, Any]) -> dict[str, Any]:
    """An Order API address as the GraphQL `Address` overrides (camelCase keys of `AddressInput`)."""
    pairs = (("firstName", "firstName"), ("lastName", "lastName"), ("address", "address1"),
             ("coaddress", "address2"), ("city", "city"), ("zipcode", "zipCode"), ("state", "stateOrProvince"),
             ("email", "email"), ("tele", "phoneNumber"), ("cell", "cellPhoneNumber"))
    return {dst: a[src] for src, dst in pairs if a.get(src) not in (None, "")}


def _parse_date(value: Any, tz: Any) -> datetime:
    """`date/datetime` ("Y-m-d" or "Y-m-d H:i:s"), in the organisation's timezone (the reference says so)."""
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise OrderApiError(GENERAL, f"Invalid orderDate {text!r}") from exc
    return _utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=tz))
