"""Starlette app serving the simulated Cloudshelf ingest API at `POST /graphql` (schema: schema.graphql).

Request pipeline: auth (`Authorization: token <key>`, scheme case-insensitive as the SFCC connector sends
`Token`; a missing or unknown key -> 401 JSON `{"errors": [{"message"}]}`, an ASSUMPTION) -> rate limit (token
bucket of `requests_per_s`, burst `requests_per_s`; an empty bucket -> 429 with `Retry-After` in whole seconds,
an ASSUMPTION: Cloudshelf documents no limits) -> JSON body / parse / validate (400 + standard `errors`) ->
execution under the state lock (200; `userErrors` in the payloads). Lists page by keyset cursors (opaque
base64 of the sort key and id), `first` default `default_page_size`.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio.to_thread
from graphql import GraphQLError, GraphQLSchema, build_schema, execute_sync, parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pipelines.simulators.cloudshelf.state import (
    Cloudshelf,
    CloudshelfState,
    Location,
    Order,
    OrderLine,
    Product,
    StockLevel,
    Variant,
    Webhook,
    iso,
)
from pipelines.simulators.cloudshelf.webhooks import is_loopback

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def load_schema(order_subject: str) -> GraphQLSchema:
    """schema.graphql with `order_subject` added to WebhookSubject (ASSUMPTION, see PROVENANCE.md)."""
    if not _NAME.match(order_subject):
        raise ValueError(f"order_subject must be a GraphQL name, not {order_subject!r}")
    text = SCHEMA_FILE.read_text()
    if order_subject != "ProductUpsert":
        text = text.replace("enum WebhookSubject { ProductUpsert }", f"enum WebhookSubject {{ ProductUpsert {order_subject} }}")
    return build_schema(text)


class TokenBucket:
    """`rate` tokens a second, at most `burst`; `take()` -> 0 when allowed, else seconds until a token."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self.clock = clock
        self.tokens = self.burst
        self.at = clock()
        self.lock = threading.Lock()

    def take(self) -> float:
        if self.rate <= 0:
            return 0.0
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


def _errors(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}


def encode_cursor(key: Any, ident: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([key, ident]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[Any, str] | None:
    try:
        key, ident = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return key, str(ident)
    except (ValueError, TypeError):
        return None


def _kv(items: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    return [{"key": kv["key"], "value": kv["value"]} for kv in items]


def _metadata(items: Iterable[dict[str, Any]], owner: str) -> list[dict[str, Any]]:
    return [{"id": m.get("id") or f"{owner}/metadata/{m['namespace']}/{m['key']}", "data": m["data"],
             "key": m["key"], "namespace": m["namespace"]} for m in items]


class Views:
    """Turn state records into the dicts graphql-core resolves (nested fields lazily, as callables)."""

    def __init__(self, state: CloudshelfState) -> None:
        self.state = state

    def product(self, p: Product) -> dict[str, Any]:
        return {"id": p.id, "displayName": p.display_name, "handle": p.handle, "description": p.description,
                "productType": p.product_type, "vendor": p.vendor, "tags": list(p.tags),
                "metadata": _metadata(p.metadata, p.id), "remoteUpdatedAt": p.remote_updated_at,
                "createdAt": iso(p.created_at), "updatedAt": iso(p.updated_at),
                "productVariants": lambda *_a, **_k: [self.variant(self.state.variants[v]) for v in p.variant_ids
                                                      if v in self.state.variants]}

    def variant(self, v: Variant) -> dict[str, Any]:
        return {"id": v.id, "sku": v.sku, "displayName": v.display_name, "currentPrice": v.current_price,
                "originalPrice": v.original_price, "availableToPurchase": v.available_to_purchase,
                "isInStock": v.is_in_stock, "barcode": v.barcode, "inventoryPolicy": v.inventory_policy,
                "attributes": _kv(v.attributes), "position": v.position, "metadata": _metadata(v.metadata, v.id),
                "metaimages": [{"id": f"{v.id}/metaimage/{i}", "url": m["url"],
                                "preferredImage": bool(m.get("preferredImage"))} for i, m in enumerate(v.metaimages)],
                "createdAt": iso(v.created_at), "updatedAt": iso(v.updated_at),
                "product": lambda *_a, **_k: self.product(self.state.products[v.product_id]),
                "stockLevels": lambda *_a, **_k: [self.stock_level(s) for (_, vid), s in self.state.stock.items()
                                                  if vid == v.id]}

    def stock_level(self, s: StockLevel) -> dict[str, Any]:
        return {"id": s.id, "isInStock": s.quantity > self.state.safety_stock,
                "createdAt": iso(s.created_at), "updatedAt": iso(s.updated_at),
                "location": lambda *_a, **_k: self.location(self.state.locations[s.location_id]),
                "productVariant": lambda *_a, **_k: self.variant(self.state.variants[s.variant_id])}

    def location(self, loc: Location) -> dict[str, Any]:
        return {"id": loc.id, "displayName": loc.display_name, "address": loc.address,
                "countryCode": loc.country_code, "fulfillsOnlineOrders": loc.fulfills_online_orders,
                "metadata": _metadata(loc.metadata, loc.id), "createdAt": iso(loc.created_at),
                "updatedAt": iso(loc.updated_at),
                "stockLevels": lambda *_a, **_k: [self.stock_level(s) for (lid, _), s in self.state.stock.items()
                                                  if lid == loc.id]}

    def line(self, ln: OrderLine) -> dict[str, Any]:
        return {"id": ln.id, "productVariantId": ln.variant_id, "productId": ln.product_id,
                "productName": ln.product_name, "productVariantName": ln.variant_name, "quantity": ln.quantity,
                "price": ln.price, "currencyCode": ln.currency, "customAttributes": _kv(ln.custom_attributes),
                "platformProvidedId": None, "platformProvidedProductId": ln.product_id,
                "platformProvidedProductVariantId": ln.variant_id,
                "createdAt": iso(ln.created_at), "updatedAt": iso(ln.updated_at)}

    def order(self, o: Order) -> dict[str, Any]:
        s = o.session
        session = None if s is None else {
            "id": s.id, "locationId": s.location_id, "locationName": s.location_name,
            "fulfilmentMethod": s.fulfilment_method, "basketCurrencyCode": s.currency, "basketValue": s.basket_value,
            "createdAt": iso(s.created_at), "updatedAt": iso(s.updated_at)}
        return {"id": o.id, "thirdPartyId": o.third_party_id, "status": o.status, "discountCode": o.discount_code,
                "createdAt": iso(o.created_at), "updatedAt": iso(o.updated_at),
                "lines": [self.line(ln) for ln in o.lines], "session": session}

    def cloudshelf(self, c: Cloudshelf) -> dict[str, Any]:
        return {"id": c.id, "displayName": c.display_name, "createdAt": iso(c.created_at),
                "updatedAt": iso(c.updated_at)}

    @staticmethod
    def webhook(w: Webhook) -> dict[str, Any]:
        return {"id": w.id, "subject": w.subject, "url": w.url, "createdAt": iso(w.created_at),
                "updatedAt": iso(w.created_at)}


def page(items: list[Any], *, key: Callable[[Any], Any], ident: Callable[[Any], str], view: Callable[[Any], Any],
         first: int | None, after: str | None, desc: bool, default_size: int) -> dict[str, Any]:
    """A keyset page: items in (key, id) order (reversed when `desc`), those after the `after` cursor."""
    ordered = sorted(items, key=lambda it: (key(it), ident(it)), reverse=desc)
    if after:
        mark = decode_cursor(after)
        if mark is None:
            raise GraphQLError(f"invalid cursor {after!r}")
        mark_key = (mark[0], mark[1])
        ordered = [it for it in ordered if ((key(it), ident(it)) < mark_key if desc else (key(it), ident(it)) > mark_key)]
    size = default_size if first is None else max(0, int(first))
    chosen, more = ordered[:size], len(ordered) > size
    edges = [{"cursor": encode_cursor(key(it), ident(it)), "node": view(it)} for it in chosen]
    return {"edges": edges, "totalCount": len(items),
            "pageInfo": {"endCursor": edges[-1]["cursor"] if edges else None, "hasNextPage": more,
                         "hasPreviousPage": bool(after), "startCursor": edges[0]["cursor"] if edges else None}}


class Root:
    """Query and mutation fields (graphql-core's default resolver calls these with `info` and the arguments)."""

    def __init__(self, state: CloudshelfState, default_page_size: int) -> None:
        self.state = state
        self.views = Views(state)
        self.default_page_size = default_page_size

    # queries

    def order(self, _info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002 - the GraphQL argument's name
        o = self.state.orders.get(id)
        return self.views.order(o) if o else None

    def orders(self, _info: Any, first: int | None = None, after: str | None = None, sortBy: dict | None = None,  # noqa: N803
               **_: Any) -> dict[str, Any]:
        field, direction = next(iter((sortBy or {"createdAt": "ASC"}).items()), ("createdAt", "ASC"))
        attr = {"createdAt": "created_at", "updatedAt": "updated_at", "id": "id"}[field]
        return page(list(self.state.orders.values()), key=lambda o: iso(o.created_at) if attr == "created_at" else
                    iso(o.updated_at) if attr == "updated_at" else o.id, ident=lambda o: o.id, view=self.views.order,
                    first=first, after=after, desc=direction == "DESC", default_size=self.default_page_size)

    def product(self, _info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        p = self.state.products.get(id)
        return self.views.product(p) if p else None

    def products(self, _info: Any, first: int | None = None, after: str | None = None, sortBy: dict | None = None,  # noqa: N803
                 **_: Any) -> dict[str, Any]:
        field, direction = next(iter((sortBy or {"id": "ASC"}).items()), ("id", "ASC"))
        keyf: Callable[[Product], str] = {"createdAt": lambda p: iso(p.created_at),
                                          "updatedAt": lambda p: iso(p.updated_at)}.get(field, lambda p: p.id)
        return page(list(self.state.products.values()), key=keyf, ident=lambda p: p.id, view=self.views.product,
                    first=first, after=after, desc=direction == "DESC", default_size=self.default_page_size)

    def location(self, _info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        loc = self.state.locations.get(id)
        return self.views.location(loc) if loc else None

    # mutations

    def upsertProducts(self, _info: Any, input: list[dict]) -> dict[str, Any]:  # noqa: A002,N802
        done, errors = self.state.upsert_products(input)
        return {"products": [self.views.product(p) for p in done], "userErrors": errors}

    def upsertProductVariants(self, _info: Any, inputs: list[dict]) -> dict[str, Any]:  # noqa: N802
        done, errors = self.state.upsert_variants(inputs)
        return {"productVariants": [self.views.variant(v) for v in done], "userErrors": errors}

    def upsertStockLevels(self, _info: Any, input: list[dict]) -> dict[str, Any]:  # noqa: A002,N802
        done, errors = self.state.upsert_stock_levels(input)
        return {"stockLevels": [self.views.stock_level(s) for s in done], "userErrors": errors}

    def upsertLocations(self, _info: Any, input: list[dict]) -> dict[str, Any]:  # noqa: A002,N802
        done, errors = self.state.upsert_locations(input)
        return {"locations": [self.views.location(loc) for loc in done], "userErrors": errors}

    def upsertCloudshelves(self, _info: Any, input: list[dict]) -> dict[str, Any]:  # noqa: A002,N802
        done, errors = self.state.upsert_cloudshelves(input)
        return {"cloudshelves": [self.views.cloudshelf(c) for c in done], "userErrors": errors}

    def deleteProducts(self, _info: Any, ids: list[str]) -> dict[str, Any]:  # noqa: N802
        done, errors = self.state.delete_products(ids)
        return {"products": [self.views.product(p) for p in done], "userErrors": errors}

    def upsertOrders(self, _info: Any, input: list[dict]) -> dict[str, Any]:  # noqa: A002,N802
        done, errors = self.state.upsert_orders(input)
        return {"orders": [self.views.order(o) for o in done], "userErrors": errors}

    def createPaidOrder(self, _info: Any, input: dict) -> dict[str, Any]:  # noqa: A002,N802
        order, message = self.state.create_paid_order(input)
        return {"success": order is not None, "message": message,
                "order": {"id": order.id, "taxLines": []} if order is not None else None}

    def registerWebhook(self, _info: Any, inputs: list[dict]) -> dict[str, Any]:  # noqa: N802
        done, errors = self.state.register_webhooks(inputs, is_loopback)
        return {"webhooks": [self.views.webhook(w) for w in done], "userErrors": errors}


class CloudshelfGraphQL:
    """The request handler. `tokens`: accepted API keys. `requests_per_s` (0: unlimited) may change while
    serving (`set_rate`). `requests` counts answered requests by outcome (sim accounting). `fail_next`: HTTP
    statuses answered, one per request, before anything is executed (a test knob for 5xx; sim-only)."""

    def __init__(self, state: CloudshelfState, tokens: Iterable[str], *, requests_per_s: float = 20.0,
                 default_page_size: int = 50) -> None:
        self.state = state
        self.tokens = frozenset(tokens)
        if not self.tokens:
            raise ValueError("configure at least one API key")
        self.schema = load_schema(state.order_subject)
        self.root = Root(state, default_page_size)
        self.bucket = TokenBucket(requests_per_s)
        self.requests: dict[str, int] = {"ok": 0, "unauthorized": 0, "rate_limited": 0, "bad_request": 0,
                                         "forced": 0}
        self.fail_next: list[int] = []

    def set_rate(self, requests_per_s: float) -> None:
        self.bucket = TokenBucket(requests_per_s)

    async def __call__(self, request: Request) -> Response:
        body = await request.body()
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "token" or key.strip() not in self.tokens:
            self.requests["unauthorized"] += 1
            return JSONResponse(_errors("Unauthorized: missing or invalid API key"), status_code=401)
        wait = self.bucket.take()
        if wait > 0:
            self.requests["rate_limited"] += 1
            return JSONResponse(_errors("Too many requests"), status_code=429,
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if self.fail_next:
            self.requests["forced"] += 1
            return JSONResponse(_errors("Simulated failure"), status_code=self.fail_next.pop(0))
        return await anyio.to_thread.run_sync(self._process, body)

    def _process(self, body: bytes) -> Response:
        try:
            data = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            self.requests["bad_request"] += 1
            return JSONResponse(_errors("Request body is not valid JSON"), status_code=400)
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            self.requests["bad_request"] += 1
            return JSONResponse(_errors("The request must be a JSON object with a 'query'"), status_code=400)
        variables = data.get("variables") or {}
        try:
            document = parse(data["query"])
        except GraphQLError as exc:
            self.requests["bad_request"] += 1
            return JSONResponse({"errors": [exc.formatted]}, status_code=400)
        errors = validate(self.schema, document)
        if errors:
            self.requests["bad_request"] += 1
            return JSONResponse({"errors": [e.formatted for e in errors]}, status_code=400)
        with self.state.lock:
            result = execute_sync(self.schema, document, root_value=self.root, variable_values=variables,
                                  operation_name=data.get("operationName"))
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        self.requests["ok"] += 1
        return JSONResponse(payload)


def create_app(state: CloudshelfState, *, tokens: Iterable[str], requests_per_s: float = 20.0,
               default_page_size: int = 50) -> Starlette:
    handler = CloudshelfGraphQL(state, tokens, requests_per_s=requests_per_s, default_page_size=default_page_size)

    async def graphql_endpoint(request: Request) -> Response:
        return await handler(request)

    async def not_allowed(request: Request) -> Response:
        return PlainTextResponse("Use POST /graphql", status_code=405)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/graphql", graphql_endpoint, methods=["POST"]),
                            Route("/graphql", not_allowed, methods=["GET"]),
                            Route("/health", health, methods=["GET"])])
    app.state.cloudshelf = state
    app.state.graphql = handler
    return app
