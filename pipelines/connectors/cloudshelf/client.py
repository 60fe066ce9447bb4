"""`CloudshelfClient`: the Cloudshelf ingest GraphQL API as the product uses it (docs: Issue 14 design).

Wire (reference newstore-commercetools-cloudshelf.md §2; Cloudshelf+CloudshelfConnector_SFCC
`cloudshelfHttpGraphQL.js`): one `POST <base_url>` (live `https://ingestapi.cloudshelf.ai/graphql`; a base URL
without a path gets `/graphql`), header `Authorization: token <key>`, body `{query, variables}`. Operation and
field names are Cloudshelf's generated types (Cloudshelf+Shopify_CSConnector
`src/graphql/cloudshelf/generated/cloudshelf.ts`).

Errors: 401/403 -> `AuthError` (never retried); 429 -> `RateLimited`, waited as its `Retry-After` says; 5xx and
transport errors -> `TransientError`, retried with backoff (`connectors.retry`): queries and the upserts (keyed by
id, so a resend is harmless) always, `registerWebhook` only when the request provably never left. Top-level
GraphQL `errors` -> `CloudshelfGraphQLError`; a mutation's `userErrors` -> `CloudshelfUserError` naming the
mutation and each `{code, message}`. The API key is never logged (not in `repr`, not in messages).

Stock levels go in chunks of `max_batch` inputs per `upsertStockLevels` (ASSUMPTION: Cloudshelf documents no
batch limit; default 100). Lists page with `first`/`after` (`page_size`, default 100: ASSUMPTION, no documented
maximum).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from pipelines.connectors.cloudshelf import ids
from pipelines.connectors.cloudshelf.errors import CloudshelfGraphQLError, CloudshelfUserError
from pipelines.connectors.errors import ConnectorError
from pipelines.connectors.pool import PooledClient
from pipelines.connectors.retry import raise_for_status, retrying, transient_from_transport

log = logging.getLogger("pipelines.connectors.cloudshelf")

#: Cloudshelf's ingest API (reference §2).
LIVE_URL = "https://ingestapi.cloudshelf.ai/graphql"
#: Inputs per `upsertStockLevels` call (ASSUMPTION: no documented limit).
MAX_BATCH = 100
#: `first` of a list query (ASSUMPTION: no documented maximum).
PAGE_SIZE = 100

USER_ERRORS = "userErrors { code message }"

M_UPSERT_PRODUCTS = f"""mutation UpsertProducts($input: [ProductInput!]!) {{
  upsertProducts(input: $input) {{ products {{ id }} {USER_ERRORS} }}
}}"""
M_UPSERT_VARIANTS = f"""mutation UpsertProductVariants($inputs: [UpsertVariantsInput!]!) {{
  upsertProductVariants(inputs: $inputs) {{ productVariants {{ id sku }} {USER_ERRORS} }}
}}"""
M_UPSERT_STOCK_LEVELS = f"""mutation UpsertStockLevels($input: [StockLevelInput!]!) {{
  upsertStockLevels(input: $input) {{ stockLevels {{ id }} {USER_ERRORS} }}
}}"""
M_UPSERT_LOCATIONS = f"""mutation UpsertLocations($input: [LocationInput!]!) {{
  upsertLocations(input: $input) {{ locations {{ id }} {USER_ERRORS} }}
}}"""
M_UPSERT_CLOUDSHELVES = f"""mutation UpsertCloudshelves($input: [CloudshelfInput!]!) {{
  upsertCloudshelves(input: $input) {{ cloudshelves {{ id displayName }} {USER_ERRORS} }}
}}"""
M_DELETE_PRODUCTS = f"""mutation DeleteProducts($ids: [GlobalId!]!) {{
  deleteProducts(ids: $ids) {{ products {{ id }} {USER_ERRORS} }}
}}"""
M_UPSERT_ORDERS = f"""mutation UpsertOrders($input: [OrderInput!]!) {{
  upsertOrders(input: $input) {{ orders {{ id status thirdPartyId }} {USER_ERRORS} }}
}}"""
M_REGISTER_WEBHOOK = f"""mutation RegisterWebhook($inputs: [WebhookRegisterInput!]!) {{
  registerWebhook(inputs: $inputs) {{ webhooks {{ id subject url }} {USER_ERRORS} }}
}}"""

_ORDER_FIELDS = """id thirdPartyId status createdAt updatedAt
    lines { id productVariantId productVariantName productId productName quantity price currencyCode
            platformProvidedProductVariantId customAttributes { key value } }
    session { id locationId fulfilmentMethod basketCurrencyCode basketValue }"""
Q_ORDER = f"""query Order($id: GlobalId!) {{ order(id: $id) {{ {_ORDER_FIELDS} }} }}"""
Q_ORDERS = f"""query Orders($first: Int, $after: String) {{
  orders(first: $first, after: $after, sortBy: {{updatedAt: DESC}}) {{
    edges {{ cursor node {{ {_ORDER_FIELDS} }} }}
    pageInfo {{ endCursor hasNextPage }}
    totalCount
  }}
}}"""
_PRODUCT_FIELDS = """id displayName
    productVariants { id sku displayName availableToPurchase isInStock currentPrice originalPrice }"""
Q_PRODUCTS = f"""query Products($first: Int, $after: String) {{
  products(first: $first, after: $after) {{
    edges {{ cursor node {{ {_PRODUCT_FIELDS} }} }}
    pageInfo {{ endCursor hasNextPage }}
    totalCount
  }}
}}"""
Q_PRODUCT = f"""query Product($id: GlobalId!) {{ product(id: $id) {{ {_PRODUCT_FIELDS} }} }}"""


@dataclass(frozen=True)
class KioskOrderLine:
    id: str
    variant_id: str | None
    sku: str | None  # from the variant GlobalId (ids.sku_of); None for a variant that is not ours
    product_id: str | None
    quantity: int
    price: float
    currency: str | None
    custom_attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KioskOrder:
    id: str
    third_party_id: str | None
    status: str
    created_at: str
    updated_at: str
    location_id: str | None  # the session's `locationId` (the Location GlobalId the product upserted)
    fulfilment_method: str | None
    currency: str | None
    lines: tuple[KioskOrderLine, ...]

    @property
    def store_id(self) -> str | None:
        """The estate location id of the order's location (None when it is not one of our GlobalIds)."""
        return ids.location_of(self.location_id)


@dataclass(frozen=True)
class KioskVariant:
    id: str
    sku: str | None
    display_name: str | None
    available_to_purchase: bool
    is_in_stock: bool
    current_price: float
    original_price: float


@dataclass(frozen=True)
class KioskProduct:
    id: str
    display_name: str
    variants: tuple[KioskVariant, ...]


def _endpoint(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url if urlsplit(url).path not in ("", "/") else f"{url}/graphql"


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _graphql_errors(resp: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = resp.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def order_from_node(node: dict[str, Any]) -> KioskOrder:
    session = node.get("session") or {}
    lines = []
    for line in node.get("lines") or []:
        variant = line.get("productVariantId") or line.get("platformProvidedProductVariantId")
        lines.append(KioskOrderLine(
            id=str(line["id"]), variant_id=variant, sku=ids.sku_of(variant), product_id=line.get("productId"),
            quantity=int(line.get("quantity") or 0), price=float(line.get("price") or 0.0),
            currency=line.get("currencyCode"),
            custom_attributes={kv["key"]: kv["value"] for kv in line.get("customAttributes") or []}))
    currency = session.get("basketCurrencyCode") or next((ln.currency for ln in lines if ln.currency), None)
    return KioskOrder(id=str(node["id"]), third_party_id=node.get("thirdPartyId"), status=str(node["status"]),
                      created_at=str(node.get("createdAt") or ""), updated_at=str(node.get("updatedAt") or ""),
                      location_id=session.get("locationId"), fulfilment_method=session.get("fulfilmentMethod"),
                      currency=currency, lines=tuple(lines))


def product_from_node(node: dict[str, Any]) -> KioskProduct:
    variants = tuple(KioskVariant(
        id=str(v["id"]), sku=v.get("sku"), display_name=v.get("displayName"),
        available_to_purchase=bool(v.get("availableToPurchase")), is_in_stock=bool(v.get("isInStock")),
        current_price=float(v.get("currentPrice") or 0.0), original_price=float(v.get("originalPrice") or 0.0))
        for v in node.get("productVariants") or [])
    return KioskProduct(id=str(node["id"]), display_name=str(node.get("displayName") or ""), variants=variants)


class CloudshelfClient(PooledClient):
    """Thin typed client of the Cloudshelf ingest API. Use as a context manager or call `close()`."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, max_attempts: int = 5,
                 max_wait_s: float = 60.0, backoff_base_s: float = 0.5, max_batch: int = MAX_BATCH,
                 page_size: int = PAGE_SIZE, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not token:
            raise ValueError("a Cloudshelf API token is required")
        self.url = _endpoint(base_url)
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s
        self.max_batch = max(1, int(max_batch))
        self.page_size = max(1, int(page_size))
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout, transport=transport, headers={
            "Authorization": f"token {token}", "Content-Type": "application/json", "Accept": "application/json",
            "User-Agent": "pipelines-cloudshelf-connector/0.1"})

    def __repr__(self) -> str:  # never show the key
        return f"CloudshelfClient({self.url!r})"

    # -- transport

    def execute(self, query: str, variables: dict[str, Any] | None = None, *,
                idempotent: bool | None = None) -> dict[str, Any]:
        """One GraphQL operation; its `data`. `idempotent` (default: True for queries, False for mutations)
        decides whether a failure after the request left is retried."""
        safe = (not query.lstrip().startswith("mutation")) if idempotent is None else idempotent
        body = {"query": query, "variables": variables or {}}

        def once() -> dict[str, Any]:
            try:
                resp = self._http.post(self.url, json=body)
            except httpx.TransportError as exc:
                raise transient_from_transport(exc) from exc
            if resp.status_code == 400:  # a query or variables the schema refuses: GraphQL `errors`
                errors = _graphql_errors(resp)
                if errors:
                    raise CloudshelfGraphQLError(f"Cloudshelf refused the request: {errors[0].get('message')}",
                                                 errors, status=400)
            raise_for_status(resp)
            try:
                payload = resp.json()
            except ValueError as exc:
                raise ConnectorError(f"Cloudshelf answered non-JSON (HTTP {resp.status_code})",
                                     status=resp.status_code, body=resp.text[:500]) from exc
            errors = payload.get("errors") if isinstance(payload, dict) else None
            if errors:
                first = errors[0].get("message") if isinstance(errors[0], dict) else errors[0]
                raise CloudshelfGraphQLError(f"Cloudshelf GraphQL error: {first}", list(errors),
                                             status=resp.status_code)
            return (payload.get("data") if isinstance(payload, dict) else None) or {}

        policy = retrying(max_attempts=self.max_attempts, max_wait_s=self.max_wait_s, base_delay_s=self.backoff_base_s,
                          idempotent=safe, sleep=self._sleep, logger=log)
        return policy(once)

    def _mutate(self, operation: str, query: str, variables: dict[str, Any], *,
                idempotent: bool = True) -> dict[str, Any]:
        payload = self.execute(query, variables, idempotent=idempotent).get(operation) or {}
        errors = payload.get("userErrors") or []
        if errors:
            raise CloudshelfUserError(operation, list(errors), payload)
        return payload

    # -- mutations

    def upsert_products(self, products: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """`upsertProducts(input: [ProductInput!]!)`; the upserted `{id}`s."""
        if not products:
            return []
        return self._mutate("upsertProducts", M_UPSERT_PRODUCTS, {"input": list(products)})["products"]

    def upsert_variants(self, product_gid: str, variants: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """`upsertProductVariants(inputs: [{productId, variants}])` for one product; the `{id sku}`s."""
        if not variants:
            return []
        inputs = [{"productId": product_gid, "variants": list(variants)}]
        return self._mutate("upsertProductVariants", M_UPSERT_VARIANTS, {"inputs": inputs})["productVariants"]

    def upsert_stock_levels(self, levels: Iterable[tuple[str, str, int]]) -> int:
        """`upsertStockLevels` for (location gid, variant gid, quantity) triples, `max_batch` per call; the
        number of stock levels Cloudshelf acknowledged. The first call with userErrors raises (earlier chunks
        stay applied: an upsert sets the value, so resending all is safe)."""
        inputs = [{"locationId": loc, "productVariantId": var, "quantity": int(qty)} for loc, var, qty in levels]
        done = 0
        for i in range(0, len(inputs), self.max_batch):
            payload = self._mutate("upsertStockLevels", M_UPSERT_STOCK_LEVELS, {"input": inputs[i:i + self.max_batch]})
            done += len(payload.get("stockLevels") or [])
        return done

    def upsert_locations(self, locations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not locations:
            return []
        return self._mutate("upsertLocations", M_UPSERT_LOCATIONS, {"input": list(locations)})["locations"]

    def upsert_cloudshelves(self, cloudshelves: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        if not cloudshelves:
            return []
        return self._mutate("upsertCloudshelves", M_UPSERT_CLOUDSHELVES, {"input": list(cloudshelves)})["cloudshelves"]

    def delete_products(self, product_gids: Sequence[str]) -> list[dict[str, Any]]:
        if not product_gids:
            return []
        return self._mutate("deleteProducts", M_DELETE_PRODUCTS, {"ids": list(product_gids)})["products"]

    def upsert_orders(self, orders: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """`upsertOrders(input: [OrderInput!]!)`; the orders' `{id status thirdPartyId}`."""
        if not orders:
            return []
        return self._mutate("upsertOrders", M_UPSERT_ORDERS, {"input": list(orders)})["orders"]

    def register_webhook(self, subject: str, url: str) -> dict[str, Any]:
        """`registerWebhook(inputs: [{subject, url}])`; the webhook `{id subject url}`. Not resent after a
        failure that may have reached Cloudshelf (a second registration would deliver twice)."""
        payload = self._mutate("registerWebhook", M_REGISTER_WEBHOOK, {"inputs": [{"subject": subject, "url": url}]},
                               idempotent=False)
        return (payload.get("webhooks") or [{}])[0]

    # -- queries

    def order(self, gid: str) -> KioskOrder | None:
        node = self.execute(Q_ORDER, {"id": gid}).get("order")
        return order_from_node(node) if node else None

    def _pages(self, query: str, root: str) -> Iterable[dict[str, Any]]:
        after: str | None = None
        seen: set[str] = set()
        while True:
            page = self.execute(query, {"first": self.page_size, "after": after}).get(root) or {}
            for edge in page.get("edges") or []:
                if edge.get("node") is not None:
                    yield edge["node"]
            info = page.get("pageInfo") or {}
            cursor = info.get("endCursor")
            if not info.get("hasNextPage") or not cursor or cursor in seen:
                return
            seen.add(cursor)
            after = cursor

    def orders_since(self, updated_after: str) -> list[KioskOrder]:
        """Orders updated at or after `updated_after` (ISO-8601), oldest update first: pages `orders` newest
        first until an older one. The boundary is inclusive: callers de-duplicate by id and status."""
        since = _parse_time(updated_after)
        found: list[KioskOrder] = []
        for node in self._pages(Q_ORDERS, "orders"):
            if _parse_time(node["updatedAt"]) < since:
                break
            found.append(order_from_node(node))
        return sorted(found, key=lambda o: (_parse_time(o.updated_at), o.id))

    def products(self) -> list[KioskProduct]:
        return [product_from_node(node) for node in self._pages(Q_PRODUCTS, "products")]

    def product(self, gid: str) -> KioskProduct | None:
        node = self.execute(Q_PRODUCT, {"id": gid}).get("product")
        return product_from_node(node) if node else None
