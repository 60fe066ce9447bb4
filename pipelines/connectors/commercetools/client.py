"""`CommercetoolsClient`: OAuth, retries, the error envelope, keyset paging and the resources the product uses.

Wire (docs.commercetools.com/api; reference newstore-commercetools-cloudshelf.md §3): `{api_url}/{projectKey}/...`,
Bearer token from `{auth_url}/oauth/token` (see `auth`). A 401 (`invalid_token`: expired or revoked) drops the
token and resends once with a new one. 502/503/504, the other retryable statuses of `connectors.retry` and
transport errors are retried with exponential backoff and full jitter (`retry.retrying`): GETs (and DELETE/HEAD)
always, POSTs only when the request provably never reached the server (connect errors, 429) unless the caller says
`idempotent=True`. Errors: see `errors` (409 -> `ConcurrentModification.current_version`, 404 -> `ResourceNotFound`,
or None from the by-id/by-key getters).

Paging: a full read is an id keyset (`sort=id asc&withTotal=false&where=id > "<last>"`, `limit` at most 500) until a
page is shorter than `limit` (reference §3.7: offsets stop at 10,000). A caller-chosen `sort` pages by `offset`
instead (bounded by that cap).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from pipelines.connectors.commercetools.auth import TokenSource, scope_string
from pipelines.connectors.commercetools.errors import ResourceNotFound, client_error
from pipelines.connectors.commercetools.predicates import in_list, lit
from pipelines.connectors.paging import PaginationError, paginate
from pipelines.connectors.pool import PooledClient
from pipelines.connectors.retry import (
    RETRYABLE_STATUSES,
    raise_for_status,
    retrying,
    transient_from_transport,
)

log = logging.getLogger("pipelines.connectors.commercetools")
T = TypeVar("T")

#: commercetools' largest `limit` (reference §3.6).
MAX_LIMIT = 500
#: commercetools' largest `offset` (reference §3.6).
MAX_OFFSET = 10_000
#: SKUs per `sku in (...)` predicate (keeps the URL well under common 8 KiB limits).
SKU_BATCH = 100

Where = str | Sequence[str]


def _where_list(where: Where) -> list[str]:
    return [where] if isinstance(where, str) else [w for w in where if w]


def _key_path(resource: str, key: str) -> str:
    return f"{resource}/key={quote(str(key), safe='')}"


def product_projection(product: dict[str, Any], *, staged: bool = False) -> dict[str, Any]:
    """A `/products` Product as its ProductProjection (current data unless `staged`), with `published`."""
    master = product.get("masterData") or {}
    data = master.get("staged" if staged else "current") or {}
    meta = {k: v for k, v in product.items() if k != "masterData"}
    return {**meta, **data, "published": bool(master.get("published")),
            "hasStagedChanges": bool(master.get("hasStagedChanges"))}


class CommercetoolsClient(PooledClient):
    """Synchronous commercetools HTTP API client (thread-safe token cache, one connection pool)."""

    def __init__(self, api_url: str, auth_url: str, project_key: str, client_id: str, client_secret: str,
                 scopes: Iterable[str] = (), *, timeout: float = 10.0, max_attempts: int = 4,
                 sleep: Callable[[float], None] = time.sleep, max_wait_s: float = 60.0,
                 backoff_base_s: float = 0.5, clock: Callable[[], float] = time.monotonic,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.project_key = project_key
        self.base_url = f"{self.api_url}/{quote(project_key, safe='')}"
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout, transport=transport,
                                  headers={"Accept": "application/json",
                                           "User-Agent": "pipelines-commercetools-connector/0.1"})
        self.tokens = TokenSource(self._http, auth_url, client_id, client_secret,
                                  scope_string(scopes, project_key), clock=clock)

    def __repr__(self) -> str:  # never show the secret
        return f"CommercetoolsClient({self.base_url!r})"

    # -- transport

    def _retry(self, fn: Callable[[], T], *, idempotent: bool) -> T:
        policy = retrying(max_attempts=self.max_attempts, max_wait_s=self.max_wait_s,
                          base_delay_s=self.backoff_base_s, idempotent=idempotent, sleep=self._sleep, logger=log)
        return policy(fn)

    def _send_once(self, method: str, path: str, params: Any, body: Any, token: str) -> httpx.Response:
        try:
            return self._http.request(method, self.base_url + path, params=params, json=body,
                                      headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as exc:
            raise transient_from_transport(exc) from exc

    def request(self, method: str, path: str, *, params: Any = None, body: Any = None,
                idempotent: bool | None = None) -> dict[str, Any]:
        """One call (`path` below the project, e.g. `/inventory`); the answer's JSON object ({} when empty)."""
        safe = method.upper() != "POST" if idempotent is None else idempotent

        def once() -> httpx.Response:
            token = self.tokens.token()
            resp = self._send_once(method, path, params, body, token)
            if resp.status_code == 401:  # invalid_token: expired or revoked; a 401 was not processed
                self.tokens.invalidate(token)
                resp = self._send_once(method, path, params, body, self.tokens.token())
            self._check(resp)
            return resp

        resp = self._retry(once, idempotent=safe)
        return resp.json() if resp.content else {}

    @staticmethod
    def _check(resp: httpx.Response) -> None:
        status = resp.status_code
        if 400 <= status < 500 and status not in (401, 403) and status not in RETRYABLE_STATUSES:
            raise client_error(resp)
        raise_for_status(resp)

    def get(self, path: str, params: Any = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, params: Any = None, *, idempotent: bool = False) -> dict[str, Any]:
        return self.request("POST", path, params=params, body=body, idempotent=idempotent)

    def delete(self, path: str, params: Any) -> dict[str, Any]:
        return self.request("DELETE", path, params=params)

    def _or_none(self, path: str, params: Any = None) -> dict[str, Any] | None:
        try:
            return self.get(path, params)
        except ResourceNotFound:
            return None

    # -- queries

    def query(self, path: str, *, where: Where = (), sort: str | Sequence[str] | None = None,
              expand: Sequence[str] = (), limit: int = MAX_LIMIT) -> Iterator[dict[str, Any]]:
        """Every result of a query endpoint: id keyset when `sort` is None, else offset pages in that order."""
        limit = max(1, min(MAX_LIMIT, limit))
        preds = _where_list(where)
        extra = [("expand", e) for e in expand] + [("limit", limit), ("withTotal", "false")]
        if sort is None:
            def by_id(last: str | None) -> tuple[list[dict[str, Any]], str | None]:
                keyset = [f"id > {lit(last)}"] if last is not None else []
                params = [("where", w) for w in preds + keyset] + [("sort", "id asc")] + extra
                results = self.get(path, params).get("results") or []
                return results, (str(results[-1]["id"]) if results else None)

            return paginate(by_id, None, page_size=limit, what=f"commercetools {path}")
        sorts = [sort] if isinstance(sort, str) else list(sort)

        def by_offset(offset: int) -> tuple[list[dict[str, Any]], int | None]:
            params = [("where", w) for w in preds] + [("sort", s) for s in sorts] + extra + [("offset", offset)]
            results = self.get(path, params).get("results") or []
            nxt = offset + len(results)
            if nxt > MAX_OFFSET and len(results) >= limit:
                raise PaginationError(f"commercetools {path}: more than {MAX_OFFSET} results in `sort` order; "
                                      "narrow `where` or use the id keyset (sort=None)")
            return results, nxt

        return paginate(by_offset, 0, page_size=limit, what=f"commercetools {path}")

    def update(self, resource_path: str, id: str, version: int, actions: list[dict[str, Any]], *,  # noqa: A002
               idempotent: bool = False) -> dict[str, Any]:
        """`POST /{resource}/{id}` with `{version, actions}` (a stale version -> `ConcurrentModification`)."""
        return self.post(f"{resource_path}/{quote(str(id), safe='')}", {"version": int(version), "actions": actions},
                         idempotent=idempotent)

    # -- inventory

    def inventory_entries(self, *, skus: Iterable[str] | None = None,
                          channel_ids: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Inventory entries, optionally of these SKUs (batched `sku in (...)`) and/or supply channels."""
        channels: list[str | None] = [None] if channel_ids is None else list(dict.fromkeys(channel_ids))
        sku_list = None if skus is None else list(dict.fromkeys(skus))
        for channel in channels:
            base = [f"supplyChannel(id={lit(channel)})"] if channel is not None else []
            if sku_list is None:
                yield from self.query("/inventory", where=base)
                continue
            for i in range(0, len(sku_list), SKU_BATCH):
                yield from self.query("/inventory", where=[*base, in_list("sku", sku_list[i:i + SKU_BATCH])])

    def inventory_entry(self, entry_id: str) -> dict[str, Any] | None:
        return self._or_none(f"/inventory/{quote(entry_id, safe='')}")

    def inventory_by_key(self, key: str) -> dict[str, Any] | None:
        return self._or_none(_key_path("/inventory", key))

    def create_inventory_entry(self, draft: dict[str, Any]) -> dict[str, Any]:
        return self.post("/inventory", draft)

    def update_inventory_entry(self, entry_id: str, version: int, actions: list[dict[str, Any]]) -> dict[str, Any]:
        return self.update("/inventory", entry_id, version, actions)

    # -- channels, stores, products

    def channels(self) -> list[dict[str, Any]]:
        return list(self.query("/channels"))

    def channel_by_key(self, key: str) -> dict[str, Any] | None:
        return self._or_none(_key_path("/channels", key))

    def stores(self) -> list[dict[str, Any]]:
        return list(self.query("/stores"))

    def products(self) -> Iterator[dict[str, Any]]:
        """Every product as its current ProductProjection (`published` tells whether it is on sale), read from
        `/products` so unpublished products are included."""
        return (product_projection(p) for p in self.query("/products"))

    def product_by_key(self, key: str) -> dict[str, Any] | None:
        product = self._or_none(_key_path("/products", key))
        return product_projection(product) if product else None

    # -- orders

    def order(self, order_id: str) -> dict[str, Any] | None:
        return self._or_none(f"/orders/{quote(order_id, safe='')}")

    def order_by_number(self, number: str | int) -> dict[str, Any] | None:
        return self._or_none(f"/orders/order-number={quote(str(number), safe='')}")

    def orders(self, where: Where = ()) -> Iterator[dict[str, Any]]:
        return self.query("/orders", where=where)

    def update_order(self, order_id: str, version: int, actions: list[dict[str, Any]]) -> dict[str, Any]:
        return self.update("/orders", order_id, version, actions)

    def import_order(self, draft: dict[str, Any]) -> dict[str, Any]:
        return self.post("/orders/import", draft)

    def create_order_from_cart(self, cart_id: str, cart_version: int,
                               order_number: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"cart": {"typeId": "cart", "id": cart_id}, "version": int(cart_version)}
        if order_number is not None:
            body["orderNumber"] = str(order_number)
        return self.post("/orders", body)

    # -- payments

    def payment(self, payment_id: str) -> dict[str, Any] | None:
        return self._or_none(f"/payments/{quote(payment_id, safe='')}")

    def update_payment(self, payment_id: str, version: int, actions: list[dict[str, Any]]) -> dict[str, Any]:
        return self.update("/payments", payment_id, version, actions)

    def create_payment(self, draft: dict[str, Any]) -> dict[str, Any]:
        return self.post("/payments", draft)

    # -- customers

    def customers(self, where: Where = ()) -> Iterator[dict[str, Any]]:
        return self.query("/customers", where=where)

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        return self._or_none(f"/customers/{quote(customer_id, safe='')}")

    def customer_by_key(self, key: str) -> dict[str, Any] | None:
        return self._or_none(_key_path("/customers", key))

    def create_customer(self, draft: dict[str, Any]) -> dict[str, Any]:
        """`POST /customers` answers a CustomerSignInResult `{customer, cart?}`: the Customer is returned."""
        result = self.post("/customers", draft)
        return result.get("customer", result)

    def update_customer(self, customer_id: str, version: int, actions: list[dict[str, Any]]) -> dict[str, Any]:
        return self.update("/customers", customer_id, version, actions)

    # -- messages

    def messages(self, *, since: str | None, types: Iterable[str] = (), limit: int = MAX_LIMIT) -> list[dict[str, Any]]:
        """One page of messages created at or after `since` (ISO-8601 UTC), oldest first (`sort=createdAt asc`,
        then `id asc`). Pull again with `since` = the last `createdAt` seen: the boundary messages come again,
        and messages may appear late (published after their createdAt), so callers de-duplicate by `id`."""
        preds = []
        if since:
            preds.append(f"createdAt >= {lit(since)}")
        wanted = list(types)
        if wanted:
            preds.append(in_list("type", wanted))
        params = [("where", w) for w in preds] + [("sort", "createdAt asc"), ("sort", "id asc"),
                                                  ("limit", max(1, min(MAX_LIMIT, limit))), ("withTotal", "false")]
        return list(self.get("/messages", params).get("results") or [])
