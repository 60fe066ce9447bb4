"""Typed client for Centra's GraphQL Integration API (`POST <base_url>/graphql`).

Going live needs only the tenant's base URL and an Integration API token. Errors: 401/403 ->
`AuthError`; 429 -> retried after `Retry-After`; 5xx/499/transport -> retried with backoff and
jitter (queries and idempotent mutations only); GraphQL `errors` -> `CentraGraphQLError`;
non-empty mutation `userErrors` -> `CentraUserError` (userWarnings are logged and returned).

`change_stock`/`transfer_stock` are not idempotent: when one fails ambiguously (5xx or a dropped
connection after sending) the client looks in the stock-change ledger for a change with the same
description and exactly the same lines before resending, so use a unique description per batch
(e.g. include a batch id); that also makes batches easy to find with `stock_changes()`.

Typed results are frozen dataclasses; timestamps are ISO-8601 strings in UTC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from pipelines.connectors.errors import ConnectorError, RateLimited, TransientError
from pipelines.connectors.retry import (
    RETRYABLE_STATUSES,
    raise_for_status,
    retrying,
    transient_from_transport,
)

log = logging.getLogger(__name__)

PAGE_LIMIT = 200  # Centra's maximum `limit` for list queries ("Limit must be in range 1 - 200")
INTERVAL_SECONDS = {"TEN_SECONDS": 10, "ONE_HOUR": 3600}


# ------------------------------------------------------------------ errors


class CentraGraphQLError(ConnectorError):
    """The response carried GraphQL `errors` (HTTP 400 for invalid operations, 200 for resolver errors)."""

    def __init__(self, errors: list[dict[str, Any]], *, status: int | None = None,
                 data: dict[str, Any] | None = None) -> None:
        messages = "; ".join(str(e.get("message", e)) for e in errors[:5]) or "unknown GraphQL error"
        super().__init__(f"Centra GraphQL error (HTTP {status}): {messages}", status=status)
        self.errors = errors
        self.data = data

    @property
    def categories(self) -> set[str]:
        return {str((e.get("extensions") or {}).get("category")) for e in self.errors if e.get("extensions")}


class CentraUserError(ConnectorError):
    """A mutation answered with non-empty `userErrors` (nothing to retry: fix the input)."""

    def __init__(self, user_errors: list[dict[str, Any]], *, user_warnings: list[dict[str, Any]] | None = None,
                 data: dict[str, Any] | None = None) -> None:
        messages = "; ".join(f"{e.get('message')} (path {'.'.join(map(str, e.get('path') or []))})"
                             for e in user_errors[:5])
        super().__init__(f"Centra rejected the mutation: {messages}")
        self.user_errors = user_errors
        self.user_warnings = user_warnings or []
        self.data = data
        #: stock changes already applied by earlier requests of the same call (see `change_stock`)
        self.applied_stock_change_ids: tuple[int, ...] = ()


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class RateLimit:
    type: str
    interval: str
    interval_seconds: int
    quota: int
    used_quota: int
    remaining_quota: int


@dataclass(frozen=True)
class CentraWarehouse:
    id: int
    name: str
    country: str | None


@dataclass(frozen=True)
class CentraMarket:
    id: int
    name: str
    store_id: int
    allocation_rule_id: int | None
    countries: tuple[str, ...]


@dataclass(frozen=True)
class CentraPricelist:
    id: int
    name: str
    currency: str
    store_id: int
    countries: tuple[str, ...]


@dataclass(frozen=True)
class CentraSize:
    size_id: int
    sku: str
    ean: str | None
    product_id: int
    product_number: str
    product_name: str
    product_status: str
    variant_id: int
    variant_number: str
    variant_name: str
    size_name: str | None
    is_active: bool


@dataclass(frozen=True)
class CentraVariantPrice:
    pricelist_id: int
    variant_id: int
    currency: str
    price: float


@dataclass(frozen=True)
class CentraStock:
    warehouse_id: int
    size_id: int
    sku: str
    physical: int
    allocated: int
    free_to_allocate: int
    demand: int


@dataclass(frozen=True)
class CentraOrderLine:
    line_id: int
    sku: str | None
    ean: str | None
    product_number: str | None
    quantity: int
    cancelled_quantity: int
    returned_quantity: int
    unit_price: float
    unit_original_price: float
    discount_percent: float
    tax_percent: float
    line_value: float


@dataclass(frozen=True)
class CentraOrder:
    id: str
    number: int
    status: str
    created_at: str
    store_id: int | None
    market_id: int | None
    pricelist_id: int | None
    currency: str | None
    country: str | None
    currency_base_rate: float | None
    email: str | None
    external_id: str | None
    grand_total: float
    tax_total: float
    discount_total: float
    shipping_total: float
    lines: tuple[CentraOrderLine, ...]


@dataclass(frozen=True)
class CentraReturnLine:
    line_id: int
    order_line_id: int | None
    sku: str | None
    quantity: int
    unit_price: float
    line_value: float
    tax_percent: float | None


@dataclass(frozen=True)
class CentraReturn:
    id: int
    order_number: int | None
    order_id: str | None
    created_at: str
    status: str
    currency: str | None
    grand_total: float
    tax_total: float
    refunded: bool
    refund_amount: float
    refunded_at: str | None
    return_warehouse_id: int | None
    external_id: str | None
    lines: tuple[CentraReturnLine, ...]


@dataclass(frozen=True)
class CentraStockChange:
    """One ledger line: `quantity` is the signed physical delta, `fta_delta` the free-to-allocate one."""

    id: int
    stock_change_id: int
    created_at: str
    description: str
    warehouse_id: int | None
    size_id: int | None
    sku: str | None
    quantity: int
    fta_delta: int | None


@dataclass(frozen=True)
class StockChangeResult:
    stock_change_ids: tuple[int, ...]
    warnings: tuple[str, ...] = ()
    mutations: int = 0
    deduplicated: bool = False  # found in the ledger after an ambiguous failure instead of (re)applied


# ------------------------------------------------------------------ queries

Q_RATE_LIMITS = "query RateLimits { rateLimits { type intervalSeconds quota usedQuota remainingQuota } }"
Q_WAREHOUSES = "query Warehouses { warehouses { id name country { code } } }"
Q_MARKETS = ("query Markets { markets { id name store { id } allocationRule { id } "
             "assignedToCountries { code } } }")
Q_PRICELISTS = ("query Pricelists { pricelists { id name currency { code } store { id } "
                "assignedToCountries { code } } }")
Q_PRODUCT_SIZES = """
query ProductSizes($first: Int!, $after: String) {
  productSizeConnection(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id SKU EAN sizeNumber isActive size { name }
      productVariant { id variantNumber name product { id productNumber name status } }
    } }
  }
}"""
Q_VARIANT_PRICES = """
query VariantPrices($limit: Int!, $page: Int!) {
  productVariants(limit: $limit, page: $page) {
    id prices { pricelist { id } price { value currency { code } } }
  }
}"""
Q_STOCK = """
query Stock($where: StockFilter, $limit: Int!, $page: Int!) {
  warehouses {
    id
    stock(where: $where, limit: $limit, page: $page) {
      productSize { id SKU }
      physicalQuantity allocatedQuantity freeToAllocateQuantity demandQuantity
    }
  }
}"""
_ORDER_FIELDS = """
fragment OrderFields on Order {
  id number status createdAt currencyBaseRate externalId
  store { id } market { id } pricelist { id } country { code }
  shippingAddress { email country { code } }
  ... on DirectToConsumerOrder { customer { email } }
  grandTotal(includingTax: true) { value currency { code } }
  totals { taxIncluded { value } taxAdded { value } discounts { value } shipping { value } }
  lines(includeFullyCancelled: true) {
    id productNumber quantity cancelledQuantity returnedQuantity discountPercent taxPercent
    unitPrice(includingTax: true) { value }
    unitOriginalPrice(includingTax: true) { value }
    lineValue(includingTax: true) { value }
    productSize { SKU EAN }
  }
}"""
Q_ORDERS = """
query Orders($where: OrderFilter, $limit: Int!, $page: Int!) {
  orders(where: $where, sort: [number_ASC], limit: $limit, page: $page) { ...OrderFields }
}""" + _ORDER_FIELDS
Q_RETURNS = """
query Returns($where: ReturnFilter, $limit: Int!, $page: Int!) {
  returns(where: $where, limit: $limit, page: $page) {
    id returnStatus createdAt externalId
    returnWarehouse { id }
    order { id number }
    grandTotal(includingTax: true) { value currency { code } }
    totals { taxIncluded { value } taxAdded { value } }
    refundPaymentHistory { createdAt entryType status value { value } }
    lines {
      id quantity
      unitPrice(includingTax: true) { value }
      lineValue(includingTax: true) { value }
      orderLine { id taxPercent productSize { SKU } }
    }
  }
}"""
Q_STOCK_CHANGES = """
query StockChanges($first: Int!, $after: String, $where: StockChangeFilter) {
  stockChangeConnection(first: $first, after: $after, where: $where) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id createdAt description
      lines { id deliveredQuantity freeToAllocateQuantity warehouse { id } productSize { id SKU } }
    } }
  }
}"""
_PAYLOAD = "userErrors { message path } userWarnings { message path }"
M_SET_STOCK = ("mutation SetStock($input: StockSetInput!) { setStock(input: $input) { "
               f"stockChanges {{ id }} {_PAYLOAD} }} }}")


M_CHANGE_STOCK = ("mutation ChangeStock($input: StockChangeInput!) { changeStock(input: $input) { "
                  f"stockChange {{ id }} {_PAYLOAD} }} }}")


# ------------------------------------------------------------------ helpers


def _utc_iso(value: str | None) -> str | None:
    """Centra timestamp (ISO-8601 with offset, or naive = UTC) -> ISO-8601 UTC string."""
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.isoformat()


def _dt_arg(dt: datetime) -> str:
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.isoformat(timespec="seconds" if dt.microsecond == 0 else "microseconds")


def _val(node: dict[str, Any] | None, default: float = 0.0) -> float:
    return float(node["value"]) if node and node.get("value") is not None else default


def _id(node: dict[str, Any] | None) -> Any:
    return node.get("id") if node else None


def _code(node: dict[str, Any] | None) -> str | None:
    return node.get("code") if node else None


_COMMENT = re.compile(r"#[^\n]*")


def _is_mutation(query: str) -> bool:
    return re.match(r"\s*mutation\b", _COMMENT.sub("", query)) is not None


def verify_webhook_signature(secret: str, header: str | None, raw_body: str | bytes, *,
                             tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """Verify `X-Centra-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw_body}")>`."""
    if not header:
        return False
    body = raw_body.decode() if isinstance(raw_body, bytes) else raw_body
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def parse_webhook_events(raw_body: str | bytes) -> list[dict[str, Any]]:
    """Events of a webhook body (`payload=<urlencoded JSON>`); IDs only, re-fetch the objects."""
    body = raw_body.decode() if isinstance(raw_body, bytes) else raw_body
    payload = urllib.parse.parse_qs(body).get("payload", ["{}"])[0]
    return list(json.loads(payload).get("events", []))


# ------------------------------------------------------------------ client


class CentraClient:
    """Thin typed client. Use as a context manager or call `close()`."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, max_attempts: int = 6,
                 max_wait_s: float = 60.0, backoff_base_s: float = 0.5,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s
        self.last_extensions: dict[str, Any] = {}
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                     "User-Agent": "pipelines-centra-connector/0.1"})

    def __repr__(self) -> str:  # never show the token
        return f"CentraClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CentraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport

    def execute(self, query: str, variables: dict[str, Any] | None = None, *,
                operation_name: str | None = None, idempotent: bool | None = None) -> dict[str, Any]:
        """Run one operation and return its `data`.

        Mutations are treated as non-idempotent unless `idempotent=True` (then 5xx are retried too).
        Mutation payloads with non-empty `userErrors` raise `CentraUserError`.
        """
        is_mutation = _is_mutation(query)
        body: dict[str, Any] = {"query": query, "variables": variables or {}}
        if operation_name:
            body["operationName"] = operation_name
        safe = (not is_mutation) if idempotent is None else idempotent
        policy = retrying(max_attempts=self.max_attempts, max_wait_s=self.max_wait_s, base_delay_s=self.backoff_base_s,
                          idempotent=safe, logger=log)
        data = policy(self._post, body)
        if is_mutation:
            self._check_payloads(data)
        return data

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post("/graphql", json=body)
        except httpx.TransportError as exc:
            raise transient_from_transport(exc) from exc
        if response.status_code in (200, 400):
            try:
                payload = response.json()
            except ValueError as exc:
                if response.status_code == 200:
                    raise TransientError("Centra returned a non-JSON 200 response", status=200,
                                         body=response.text[:500], request_sent=True) from exc
                raise ConnectorError("Centra answered HTTP 400", status=400, body=response.text[:500]) from exc
            self.last_extensions = payload.get("extensions") or {}
            if payload.get("errors"):
                raise CentraGraphQLError(payload["errors"], status=response.status_code, data=payload.get("data"))
            if response.status_code == 400:
                raise ConnectorError("Centra answered HTTP 400", status=400, body=response.text[:500])
            return payload.get("data") or {}
        raise_for_status(response, retry_statuses=RETRYABLE_STATUSES)
        raise ConnectorError(f"unexpected HTTP {response.status_code} from Centra", status=response.status_code)

    @staticmethod
    def _check_payloads(data: dict[str, Any]) -> None:
        errors: list[dict[str, Any]] = []
        warnings: list[dict[str, Any]] = []
        for key, payload in data.items():
            if not isinstance(payload, dict):
                continue
            for err in payload.get("userErrors") or []:
                errors.append({**err, "field": key})
            for warn in payload.get("userWarnings") or []:
                warnings.append({**warn, "field": key})
                log.warning("Centra userWarning on %s: %s (path %s)", key, warn.get("message"), warn.get("path"))
        if errors:
            raise CentraUserError(errors, user_warnings=warnings, data=data)

    # -- reference data

    def rate_limits(self) -> list[RateLimit]:
        rows = self.execute(Q_RATE_LIMITS)["rateLimits"]
        return [RateLimit(r["type"], r["intervalSeconds"], INTERVAL_SECONDS.get(r["intervalSeconds"], 0), r["quota"],
                          r["usedQuota"], r["remainingQuota"]) for r in rows]

    def warehouses(self) -> list[CentraWarehouse]:
        return [CentraWarehouse(w["id"], w["name"], _code(w.get("country")))
                for w in self.execute(Q_WAREHOUSES)["warehouses"]]

    def markets(self) -> list[CentraMarket]:
        return [CentraMarket(m["id"], m["name"], _id(m.get("store")), _id(m.get("allocationRule")),
                             tuple(c["code"] for c in m.get("assignedToCountries") or []))
                for m in self.execute(Q_MARKETS)["markets"]]

    def pricelists(self) -> list[CentraPricelist]:
        return [CentraPricelist(p["id"], p["name"], _code(p.get("currency")), _id(p.get("store")),
                                tuple(c["code"] for c in p.get("assignedToCountries") or []))
                for p in self.execute(Q_PRICELISTS)["pricelists"]]

    def product_sizes(self, *, first: int = 100) -> list[CentraSize]:
        out = []
        for node in self._relay(Q_PRODUCT_SIZES, "productSizeConnection", {}, first):
            variant = node.get("productVariant") or {}
            product = variant.get("product") or {}
            out.append(CentraSize(
                size_id=node["id"], sku=node["SKU"], ean=node.get("EAN"), product_id=product.get("id"),
                product_number=product.get("productNumber"), product_name=product.get("name"),
                product_status=product.get("status"), variant_id=variant.get("id"),
                variant_number=variant.get("variantNumber"), variant_name=variant.get("name"),
                size_name=(node.get("size") or {}).get("name") or node.get("sizeNumber"),
                is_active=bool(node.get("isActive"))))
        return out

    def variant_prices(self, *, page_size: int = PAGE_LIMIT) -> list[CentraVariantPrice]:
        out = []
        for variant in self._pages(Q_VARIANT_PRICES, "productVariants", {}, page_size):
            for p in variant.get("prices") or []:
                price = p.get("price") or {}
                out.append(CentraVariantPrice(_id(p.get("pricelist")), variant["id"], _code(price.get("currency")),
                                              _val(price)))
        return out

    # -- stock

    def stock(self, warehouse_ids: list[int] | None = None, *, limit: int = PAGE_LIMIT) -> list[CentraStock]:
        """Stock rows of every (or the given) warehouse; pages until each warehouse runs out."""
        where = {"warehouseId": list(warehouse_ids)} if warehouse_ids else None
        wanted = set(warehouse_ids) if warehouse_ids else None
        out: list[CentraStock] = []
        page = 1
        while True:
            warehouses = self.execute(Q_STOCK, {"where": where, "limit": limit, "page": page})["warehouses"]
            more = False
            for w in warehouses:
                if wanted is not None and w["id"] not in wanted:
                    continue
                rows = w.get("stock") or []
                more = more or len(rows) >= limit
                for s in rows:
                    size = s.get("productSize") or {}
                    out.append(CentraStock(w["id"], size.get("id"), size.get("SKU"), s["physicalQuantity"],
                                           s["allocatedQuantity"], s["freeToAllocateQuantity"], s["demandQuantity"]))
            if not more:
                return out
            page += 1

    def stock_changes(self, *, description_contains: str | None = None, created_from: datetime | None = None,
                      created_to: datetime | None = None, first: int = 100) -> list[CentraStockChange]:
        """Ledger lines, optionally created in [created_from, created_to) (Centra's DateRange includes
        both ends, so the upper bound is trimmed here)."""
        where: dict[str, Any] = {}
        if description_contains:
            where["search"] = description_contains
        if created_from is not None or created_to is not None:
            where["createdAt"] = {k: _dt_arg(v) for k, v in (("from", created_from), ("to", created_to))
                                  if v is not None}
        upper = datetime.fromisoformat(_dt_arg(created_to)) if created_to is not None else None
        out = []
        for node in self._relay(Q_STOCK_CHANGES, "stockChangeConnection", {"where": where or None}, first):
            if upper is not None and datetime.fromisoformat(_utc_iso(node["createdAt"]) or "") >= upper:
                continue
            for ln in node.get("lines") or []:
                size = ln.get("productSize") or {}
                out.append(CentraStockChange(ln["id"], node["id"], _utc_iso(node["createdAt"]) or "",
                                             node["description"], _id(ln.get("warehouse")), size.get("id"),
                                             size.get("SKU"), int(ln.get("deliveredQuantity") or 0),
                                             ln.get("freeToAllocateQuantity")))
        return out

    def change_stock(self, warehouse_id: int, deltas: dict[str, int], description: str) -> StockChangeResult:
        """Apply signed per-SKU deltas to one warehouse.

        Two `changeStock` mutations in two requests: first the removals (`outFromWarehouse`), then
        the additions (`intoWarehouse`), so a rejected removal (e.g. stock would go negative)
        applies nothing. If the additions are then rejected, the removals stay applied and the
        `CentraUserError` lists them in `applied_stock_change_ids`.
        """
        out = {sku: -q for sku, q in deltas.items() if q < 0}
        into = {sku: q for sku, q in deltas.items() if q > 0}
        parts = []
        if out:
            parts.append(({"outFromWarehouse": {"id": warehouse_id}}, out,
                          {(warehouse_id, s, -q) for s, q in out.items()}))
        if into:
            parts.append(({"intoWarehouse": {"id": warehouse_id}}, into,
                          {(warehouse_id, s, q) for s, q in into.items()}))
        ids: list[int] = []
        warnings: list[str] = []
        deduplicated = False
        for where, quantities, expected in parts:
            variables = {"input": {**where, "description": description,
                                   "productSizes": [{"productSize": {"SKU": s}, "deliveredQuantity": q}
                                                    for s, q in quantities.items()]}}
            try:
                part = self._stock_mutation(variables, description, expected)
            except CentraUserError as exc:
                exc.applied_stock_change_ids = tuple(ids)
                raise
            ids += part.stock_change_ids
            warnings += part.warnings
            deduplicated = deduplicated or part.deduplicated
        return StockChangeResult(tuple(ids), tuple(warnings), len(parts), deduplicated)

    def transfer_stock(self, from_warehouse_id: int, to_warehouse_id: int, quantities: dict[str, int],
                       description: str) -> StockChangeResult:
        """Move positive quantities between warehouses in one `changeStock` (both warehouse fields)."""
        moves = {s: q for s, q in quantities.items() if q > 0}
        if not moves:
            return StockChangeResult(())
        variables = {"input": {"outFromWarehouse": {"id": from_warehouse_id},
                               "intoWarehouse": {"id": to_warehouse_id}, "description": description,
                               "productSizes": [{"productSize": {"SKU": s}, "deliveredQuantity": q}
                                                for s, q in moves.items()]}}
        expected = {(from_warehouse_id, s, -q) for s, q in moves.items()} | {
            (to_warehouse_id, s, q) for s, q in moves.items()}
        return self._stock_mutation(variables, description, expected)

    def set_stock(self, warehouse_id: int, quantities: dict[str, int], description: str) -> StockChangeResult:
        """Absolute PHYSICAL quantities (idempotent, so it is retried like a query)."""
        if not quantities:
            return StockChangeResult(())
        variables = {"input": {"warehouse": {"id": warehouse_id}, "description": description,
                               "stockQuantityType": "PHYSICAL",
                               "productSizes": [{"productSize": {"SKU": s}, "quantity": q}
                                                for s, q in quantities.items()]}}
        data = self.execute(M_SET_STOCK, variables, idempotent=True)
        payload = data["setStock"]
        return StockChangeResult(tuple(sc["id"] for sc in payload.get("stockChanges") or []),
                                 tuple(w["message"] for w in payload.get("userWarnings") or []), 1)

    def _stock_mutation(self, variables: dict[str, Any], description: str,
                        expected: set[tuple[int, str, int]]) -> StockChangeResult:
        """One changeStock; after an ambiguous failure, resend only if the ledger lacks it."""
        attempt = 0
        while True:
            attempt += 1
            try:
                data = self.execute(M_CHANGE_STOCK, variables)
            except RateLimited:
                raise  # the retry budget is spent; a 429 was never applied
            except TransientError as exc:
                applied = self._find_in_ledger(description, expected)
                if applied:
                    log.warning("stock mutation %r failed ambiguously (%s) but is in the ledger; not resending",
                                description, exc)
                    return StockChangeResult(applied, (), 1, True)
                if attempt >= self.max_attempts:
                    raise
                delay = random.uniform(0, min(30.0, self.backoff_base_s * 2 ** (attempt - 1)))
                log.warning("stock mutation %r failed (%s); not in the ledger, resending in %.2fs",
                            description, exc, delay)
                time.sleep(delay)
                continue
            payload = data["changeStock"]
            return StockChangeResult((payload["stockChange"]["id"],) if payload.get("stockChange") else (),
                                     tuple(w["message"] for w in payload.get("userWarnings") or []), 1)

    def _find_in_ledger(self, description: str, expected: set[tuple[int, str, int]]) -> tuple[int, ...]:
        """Stock changes with exactly this description and these (warehouse, SKU, signed qty) lines."""
        by_change: dict[int, set[tuple[int, str, int]]] = {}
        for c in self.stock_changes(description_contains=description):
            if c.description == description:
                by_change.setdefault(c.stock_change_id, set()).add((c.warehouse_id, c.sku, c.quantity))
        return tuple(sorted(i for i, lines in by_change.items() if lines == expected))

    # -- orders and returns

    def orders_between(self, start: datetime, end: datetime, *, page_size: int = PAGE_LIMIT) -> list[CentraOrder]:
        """Orders created in [start, end), oldest number first (pages of `page_size`, max 200)."""
        where = {"createdAt": {"from": _dt_arg(start), "to": _dt_arg(end)}}
        end_utc = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
        out = []
        for node in self._pages(Q_ORDERS, "orders", {"where": where}, page_size):
            order = self._order(node)
            # DateRange is inclusive at `to`; keep the window half-open.
            if datetime.fromisoformat(order.created_at) < end_utc:
                out.append(order)
        return out

    def order(self, number: int) -> CentraOrder | None:
        rows = self.execute(Q_ORDERS, {"where": {"number": [number]}, "limit": 1, "page": 1})["orders"]
        return self._order(rows[0]) if rows else None

    @staticmethod
    def _order(o: dict[str, Any]) -> CentraOrder:
        totals = o.get("totals") or {}
        grand = o.get("grandTotal") or {}
        address = o.get("shippingAddress") or {}
        email = (o.get("customer") or {}).get("email") or address.get("email")
        lines = tuple(
            CentraOrderLine(
                line_id=ln["id"], sku=(ln.get("productSize") or {}).get("SKU"),
                ean=(ln.get("productSize") or {}).get("EAN"), product_number=ln.get("productNumber"),
                quantity=int(ln.get("quantity") or 0), cancelled_quantity=int(ln.get("cancelledQuantity") or 0),
                returned_quantity=int(ln.get("returnedQuantity") or 0), unit_price=_val(ln.get("unitPrice")),
                unit_original_price=_val(ln.get("unitOriginalPrice")),
                discount_percent=float(ln.get("discountPercent") or 0.0),
                tax_percent=float(ln.get("taxPercent") or 0.0), line_value=_val(ln.get("lineValue")))
            for ln in o.get("lines") or [])
        return CentraOrder(
            id=o["id"], number=o["number"], status=o["status"], created_at=_utc_iso(o["createdAt"]) or "",
            store_id=_id(o.get("store")), market_id=_id(o.get("market")), pricelist_id=_id(o.get("pricelist")),
            currency=_code(grand.get("currency")), country=_code(o.get("country")) or _code(address.get("country")),
            currency_base_rate=o.get("currencyBaseRate"), email=email, external_id=o.get("externalId"),
            grand_total=_val(grand), tax_total=round(_val(totals.get("taxIncluded")) + _val(totals.get("taxAdded")), 2),
            discount_total=abs(_val(totals.get("discounts"))), shipping_total=_val(totals.get("shipping")),
            lines=lines)

    def returns_between(self, start: datetime, end: datetime, *, page_size: int = PAGE_LIMIT) -> list[CentraReturn]:
        """Returns created in [start, end) (pages of `page_size`, max 200)."""
        where = {"createdAt": {"from": _dt_arg(start), "to": _dt_arg(end)}}
        end_utc = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
        out = []
        for r in self._pages(Q_RETURNS, "returns", {"where": where}, page_size):
            created = _utc_iso(r["createdAt"]) or ""
            if datetime.fromisoformat(created) >= end_utc:
                continue
            refunds = [p for p in r.get("refundPaymentHistory") or []
                       if p.get("entryType") == "REFUND" and p.get("status") == "SUCCESS"]
            grand = r.get("grandTotal") or {}
            totals = r.get("totals") or {}
            lines = tuple(
                CentraReturnLine(ln["id"], _id(ln.get("orderLine")),
                                 ((ln.get("orderLine") or {}).get("productSize") or {}).get("SKU"),
                                 int(ln.get("quantity") or 0), _val(ln.get("unitPrice")), _val(ln.get("lineValue")),
                                 (ln.get("orderLine") or {}).get("taxPercent"))
                for ln in r.get("lines") or [])
            out.append(CentraReturn(
                id=r["id"], order_number=(r.get("order") or {}).get("number"), order_id=_id(r.get("order")),
                created_at=created, status=r.get("returnStatus"), currency=_code(grand.get("currency")),
                grand_total=_val(grand),
                tax_total=round(_val(totals.get("taxIncluded")) + _val(totals.get("taxAdded")), 2),
                refunded=bool(refunds), refund_amount=round(sum(abs(_val(p.get("value"))) for p in refunds), 2),
                refunded_at=max((_utc_iso(p["createdAt"]) or "" for p in refunds), default=None),
                return_warehouse_id=_id(r.get("returnWarehouse")), external_id=r.get("externalId"), lines=lines))
        return out

    # -- pagination

    def _pages(self, query: str, field: str, variables: dict[str, Any],
               limit: int = PAGE_LIMIT) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            rows = self.execute(query, {**variables, "limit": limit, "page": page})[field]
            yield from rows
            if len(rows) < limit:
                return
            page += 1

    def _relay(self, query: str, field: str, variables: dict[str, Any], first: int) -> Iterator[dict[str, Any]]:
        after: str | None = None
        while True:
            conn = self.execute(query, {**variables, "first": first, "after": after})[field]
            for edge in conn.get("edges") or []:
                yield edge["node"]
            info = conn.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                return
            after = info["endCursor"]
