"""`CentraClient`: transport, reads and stock mutations (see the package docstring)."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import httpx

from pipelines.connectors.centra.decode import (
    as_utc,
    code_of,
    dt_arg,
    id_of,
    order_from_node,
    return_from_node,
    size_from_node,
    stock_changes_from_node,
    stock_from_row,
    utc_iso,
    val,
)
from pipelines.connectors.centra.errors import CentraGraphQLError, CentraUserError
from pipelines.connectors.centra.models import (
    CentraMarket,
    CentraOrder,
    CentraPricelist,
    CentraReturn,
    CentraSize,
    CentraStock,
    CentraStockChange,
    CentraVariantPrice,
    CentraWarehouse,
    RateLimit,
    StockChangeResult,
)
from pipelines.connectors.centra.queries import (
    M_CHANGE_STOCK,
    M_SET_STOCK,
    Q_MARKETS,
    Q_ORDERS,
    Q_PRICELISTS,
    Q_PRODUCT_SIZES,
    Q_RATE_LIMITS,
    Q_RETURNS,
    Q_STOCK,
    Q_STOCK_CHANGES,
    Q_VARIANT_PRICES,
    Q_WAREHOUSES,
)
from pipelines.connectors.errors import ConnectorError, RateLimited, TransientError
from pipelines.connectors.paging import paginate
from pipelines.connectors.pool import PooledClient
from pipelines.connectors.retry import (
    RETRYABLE_STATUSES,
    raise_for_status,
    retrying,
    transient_from_transport,
)

log = logging.getLogger("pipelines.connectors.centra")

PAGE_LIMIT = 200  # Centra's maximum `limit` for list queries ("Limit must be in range 1 - 200")
INTERVAL_SECONDS = {"TEN_SECONDS": 10, "ONE_HOUR": 3600}

_COMMENT = re.compile(r"#[^\n]*")


def _is_mutation(query: str) -> bool:
    return re.match(r"\s*mutation\b", _COMMENT.sub("", query)) is not None


class CentraClient(PooledClient):
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

    # -- pagination (request shapes; the loop is `pipelines.connectors.paging.paginate`)

    def _pages(self, query: str, field: str, variables: dict[str, Any], limit: int = PAGE_LIMIT, *,
               max_items: int | None = None) -> Iterator[dict[str, Any]]:
        """A `limit`/`page` list, page 1 on; a page shorter than `limit` is the last."""
        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            return self.execute(query, {**variables, "limit": limit, "page": page})[field], page + 1

        return paginate(fetch, 1, page_size=limit, max_items=max_items, what=f"Centra {field}")

    def _relay(self, query: str, field: str, variables: dict[str, Any], first: int) -> Iterator[dict[str, Any]]:
        """A Relay connection (`first`/`after`), followed while `pageInfo` says there is more."""
        def fetch(after: str | None) -> tuple[list[dict[str, Any]], str | None]:
            conn = self.execute(query, {**variables, "first": first, "after": after})[field]
            info = conn.get("pageInfo") or {}
            more = info.get("hasNextPage") and info.get("endCursor")
            return [edge["node"] for edge in conn.get("edges") or []], info["endCursor"] if more else None

        return paginate(fetch, None, what=f"Centra {field}")

    # -- reference data

    def rate_limits(self) -> list[RateLimit]:
        rows = self.execute(Q_RATE_LIMITS)["rateLimits"]
        return [RateLimit(r["type"], r["intervalSeconds"], INTERVAL_SECONDS.get(r["intervalSeconds"], 0), r["quota"],
                          r["usedQuota"], r["remainingQuota"]) for r in rows]

    def warehouses(self) -> list[CentraWarehouse]:
        return [CentraWarehouse(w["id"], w["name"], code_of(w.get("country")))
                for w in self.execute(Q_WAREHOUSES)["warehouses"]]

    def markets(self) -> list[CentraMarket]:
        return [CentraMarket(m["id"], m["name"], id_of(m.get("store")), id_of(m.get("allocationRule")),
                             tuple(c["code"] for c in m.get("assignedToCountries") or []))
                for m in self.execute(Q_MARKETS)["markets"]]

    def pricelists(self) -> list[CentraPricelist]:
        return [CentraPricelist(p["id"], p["name"], code_of(p.get("currency")), id_of(p.get("store")),
                                tuple(c["code"] for c in p.get("assignedToCountries") or []))
                for p in self.execute(Q_PRICELISTS)["pricelists"]]

    def product_sizes(self, *, first: int = 100) -> list[CentraSize]:
        return [size_from_node(node) for node in self._relay(Q_PRODUCT_SIZES, "productSizeConnection", {}, first)]

    def variant_prices(self, *, page_size: int = PAGE_LIMIT) -> list[CentraVariantPrice]:
        out = []
        for variant in self._pages(Q_VARIANT_PRICES, "productVariants", {}, page_size):
            for p in variant.get("prices") or []:
                price = p.get("price") or {}
                out.append(CentraVariantPrice(id_of(p.get("pricelist")), variant["id"], code_of(price.get("currency")),
                                              val(price)))
        return out

    # -- stock

    def stock(self, warehouse_ids: list[int] | None = None, *, limit: int = PAGE_LIMIT) -> list[CentraStock]:
        """Stock rows of every (or the given) warehouse; pages until each warehouse runs out."""
        where = {"warehouseId": list(warehouse_ids)} if warehouse_ids else None
        wanted = set(warehouse_ids) if warehouse_ids else None

        def fetch(page: int) -> tuple[list[CentraStock], int | None]:
            # One request reads page `page` of every warehouse's nested stock list.
            warehouses = self.execute(Q_STOCK, {"where": where, "limit": limit, "page": page})["warehouses"]
            selected = [w for w in warehouses if wanted is None or w["id"] in wanted]
            more = any(len(w.get("stock") or []) >= limit for w in selected)
            return [stock_from_row(w["id"], s) for w in selected for s in w.get("stock") or []], \
                page + 1 if more else None

        return list(paginate(fetch, 1, what="Centra warehouses.stock"))

    def stock_changes(self, *, description_contains: str | None = None, created_from: datetime | None = None,
                      created_to: datetime | None = None, first: int = 100) -> list[CentraStockChange]:
        """Ledger lines, optionally created in [created_from, created_to) (Centra's DateRange includes
        both ends, so the upper bound is trimmed here)."""
        where: dict[str, Any] = {}
        if description_contains:
            where["search"] = description_contains
        if created_from is not None or created_to is not None:
            where["createdAt"] = {k: dt_arg(v) for k, v in (("from", created_from), ("to", created_to))
                                  if v is not None}
        upper = datetime.fromisoformat(dt_arg(created_to)) if created_to is not None else None
        out = []
        for node in self._relay(Q_STOCK_CHANGES, "stockChangeConnection", {"where": where or None}, first):
            if upper is not None and datetime.fromisoformat(utc_iso(node["createdAt"]) or "") >= upper:
                continue
            out += stock_changes_from_node(node)
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
        where = {"createdAt": {"from": dt_arg(start), "to": dt_arg(end)}}
        end_utc = as_utc(end)
        orders = (order_from_node(node) for node in self._pages(Q_ORDERS, "orders", {"where": where}, page_size))
        # DateRange is inclusive at `to`; keep the window half-open.
        return [o for o in orders if datetime.fromisoformat(o.created_at) < end_utc]

    def order(self, number: int) -> CentraOrder | None:
        rows = self.execute(Q_ORDERS, {"where": {"number": [number]}, "limit": 1, "page": 1})["orders"]
        return order_from_node(rows[0]) if rows else None

    def orders_by_numbers(self, numbers: Iterable[int], *, batch_size: int = PAGE_LIMIT) -> dict[int, CentraOrder]:
        """The orders with these numbers, by number; numbers Centra does not know are absent.

        `OrderFilter.number` takes a list: each request asks for up to `batch_size` numbers
        (`orders(where: {number: [...]}, limit: 200, page: n)`), so n numbers cost about n / 200
        requests. A batch larger than a page is read page by page.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        wanted = sorted(set(numbers))
        out: dict[int, CentraOrder] = {}
        for i in range(0, len(wanted), batch_size):
            batch = wanted[i:i + batch_size]
            for node in self._pages(Q_ORDERS, "orders", {"where": {"number": batch}}, max_items=len(batch)):
                order = order_from_node(node)
                out[order.number] = order
        return out

    def returns_between(self, start: datetime, end: datetime, *, page_size: int = PAGE_LIMIT) -> list[CentraReturn]:
        """Returns created in [start, end) (pages of `page_size`, max 200)."""
        where = {"createdAt": {"from": dt_arg(start), "to": dt_arg(end)}}
        end_utc = as_utc(end)
        returns = (return_from_node(r) for r in self._pages(Q_RETURNS, "returns", {"where": where}, page_size))
        return [r for r in returns if datetime.fromisoformat(r.created_at) < end_utc]
