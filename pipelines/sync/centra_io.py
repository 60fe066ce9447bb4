"""The Centra side of the sync: send a batch, find a batch in the ledger, read stock for priorities.

`CentraStockTarget` is Centra's `StockTarget` (`pipelines.sync.target`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from pipelines.connectors.centra import CentraClient, CentraGraphQLError, CentraUserError, StockChangeResult
from pipelines.connectors.errors import RateLimited
from pipelines.domain.sync.governor import Governor, RateLimitRow
from pipelines.domain.sync.model import ADD, REMOVE, SET
from pipelines.estate import Estate
from pipelines.sync.batches import Batch
from pipelines.sync.target import Key, SendResult, StockRejected, StockTarget

Q_SYNC_STOCK = """
query SyncStock($warehouses: [Int!], $where: StockFilter, $limit: Int!, $page: Int!) {
  warehouses(where: {id: $warehouses}) {
    id
    stock(where: $where, limit: $limit, page: $page) { productSize { SKU } physicalQuantity freeToAllocateQuantity }
  }
}"""
STOCK_PAGE = 200


def send(client: CentraClient, batch: Batch) -> StockChangeResult:
    """One mutation: changeStock removals or additions, or setStock (absolute PHYSICAL)."""
    if batch.operation == SET:
        return client.set_stock(batch.warehouse_id, dict(batch.lines), batch.description)
    if batch.operation in (REMOVE, ADD):
        return client.change_stock(batch.warehouse_id, {s: batch.signed(s) for s in batch.lines}, batch.description)
    raise ValueError(f"unknown operation {batch.operation!r}")


def find_applied(client: CentraClient, batch: Batch) -> tuple[tuple[int, ...], str] | None:
    """The batch's stock change in Centra's ledger (ids, createdAt), or None when absent.

    Deltas must match line for line. A setStock that changed nothing leaves no ledger entry, so
    an absent setStock is simply resent (it is absolute, and the keys are locked to the batch).
    """
    changes = [c for c in client.stock_changes(description_contains=batch.description)
               if c.description == batch.description]
    if not changes:
        return None
    if batch.operation != SET:
        found = {(c.warehouse_id, c.sku, c.quantity) for c in changes}
        expected = {(batch.warehouse_id, s, batch.signed(s)) for s in batch.lines}
        if found != expected:
            return None
    ids = tuple(sorted({c.stock_change_id for c in changes}))
    return ids, max(c.created_at for c in changes)


_LIST_INDEX = re.compile(r"productSizes\[(\d+)\]")


def failing_skus(errors: list[dict[str, Any]], batch: Batch) -> set[str]:
    """The SKUs Centra's errors name: by `productSizes` index in a userError's `path`, by
    `productSizes[i]` in a GraphQL error's message (variable coercion errors carry no path), or by SKU
    in the message."""
    skus = list(batch.lines)  # the order the connector sent them in
    out: set[str] = set()
    for e in errors:
        path = [str(p) for p in e.get("path") or []]
        if "productSizes" in path:
            idx = path.index("productSizes") + 1
            if idx < len(path) and path[idx].isdigit() and int(path[idx]) < len(skus):
                out.add(skus[int(path[idx])])
                continue
        message = str(e.get("message") or "")
        indexed = {int(i) for i in _LIST_INDEX.findall(message) if int(i) < len(skus)}
        if indexed:
            out |= {skus[i] for i in indexed}
            continue
        out |= {s for s in skus if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", message)}
    return out


def stock_view(client: CentraClient, keys: Iterable[tuple[int, str]], size_ids: dict[str, int],
               on_request: Callable[[], None] = lambda: None) -> dict[tuple[int, str], tuple[int, int]]:
    """(warehouse, SKU) -> (physical, free to allocate) for the given keys, in few requests (one page
    of every warehouse per request); `on_request` is called before each one (the rate budget)."""
    keys = list(keys)
    warehouses = sorted({w for w, _ in keys})
    sizes = sorted({size_ids[s] for _, s in keys if s in size_ids})
    out: dict[tuple[int, str], tuple[int, int]] = {}
    if not warehouses or not sizes:
        return out
    page = 1
    where: dict[str, Any] = {"warehouseId": warehouses, "productSizeId": sizes}
    while True:
        on_request()
        data = client.execute(Q_SYNC_STOCK, {"warehouses": warehouses, "where": where, "limit": STOCK_PAGE,
                                             "page": page})
        more = False
        for w in data["warehouses"]:
            rows = w.get("stock") or []
            more = more or len(rows) >= STOCK_PAGE
            for r in rows:
                out[(w["id"], r["productSize"]["SKU"])] = (r["physicalQuantity"], r["freeToAllocateQuantity"])
        if not more:
            return out
        page += 1


Q_PHYSICAL = """
query ResyncStock($warehouses: [Int!], $limit: Int!, $page: Int!) {
  warehouses(where: {id: $warehouses}) { id stock(limit: $limit, page: $page) { productSize { SKU } physicalQuantity } }
}"""


def centra_physical(client: CentraClient, warehouse_ids: list[int], governor: Governor,
                    sleep: Callable[[float], None] = time.sleep) -> tuple[dict[tuple[int, str], int], int]:
    """Physical stock of the given warehouses, one warehouse and page per request, paced by `governor`."""
    out: dict[tuple[int, str], int] = {}
    requests = 0
    for wid in warehouse_ids:
        page = 1
        while True:
            wait = governor.seconds_until_request()
            if wait > 0:
                sleep(wait)
            try:
                data = client.execute(Q_PHYSICAL, {"warehouses": [wid], "limit": STOCK_PAGE, "page": page})
            except RateLimited as exc:
                governor.on_rate_limited(exc.retry_after)
                continue
            finally:
                governor.spend(requests=1)
                requests += 1
            rows = [r for w in data["warehouses"] if w["id"] == wid for r in w.get("stock") or []]
            for r in rows:
                out[(wid, r["productSize"]["SKU"])] = int(r["physicalQuantity"])
            if len(rows) < STOCK_PAGE:
                break
            page += 1
    return out, requests


class CentraStockTarget(StockTarget):
    """Centra's stock through the Integration API: changeStock/setStock per warehouse, the stock-change ledger
    found by the batch's description."""

    platform = "Centra"

    def __init__(self, client: CentraClient, estate: Estate) -> None:
        self.client = client
        self.estate = estate
        self.size_ids = {sku: ref.size.size_id for sku, ref in estate.by_sku.items()}

    def rate_limits(self) -> list[RateLimitRow]:
        return list(self.client.rate_limits())

    def send(self, batch: Batch) -> SendResult:
        try:
            result = send(self.client, batch)
        except CentraUserError as exc:
            raise self._rejected(batch, str(exc), exc.user_errors, spent=True) from exc
        except CentraGraphQLError as exc:
            if exc.status != 400:
                raise
            # Centra refused the request before executing it (HTTP 400: a variable it cannot coerce, such as an
            # Int overflow), so nothing was applied and it cost a request, not a mutation.
            raise self._rejected(batch, str(exc), exc.errors, spent=False) from exc
        return SendResult(result.stock_change_ids, result.mutations)

    def _rejected(self, batch: Batch, message: str, errors: list[dict[str, Any]], *, spent: bool) -> StockRejected:
        culprits = failing_skus(errors, batch)
        unknown = {s for s in culprits if "not found" in message.lower() or s not in self.size_ids}
        return StockRejected(message, errors, culprits, unknown=unknown, mutation_spent=spent)

    def find_applied(self, batch: Batch) -> tuple[tuple[int | str, ...], str] | None:
        return find_applied(self.client, batch)

    def stock_view(self, keys: Iterable[Key], on_request: Callable[[], None]) -> dict[Key, tuple[int, int]]:
        return stock_view(self.client, keys, self.size_ids, on_request)

    def physical(self, warehouse_ids: list[int], governor: Governor,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[dict[Key, int], int]:
        return centra_physical(self.client, warehouse_ids, governor, sleep)

    def selling_groups(self) -> dict[int, list[tuple[int, ...]]]:
        out: dict[int, list[tuple[int, ...]]] = {}
        for rule in self.estate.centra.allocation_rules:
            for w in rule.warehouse_ids:
                out.setdefault(w, []).append(tuple(rule.warehouse_ids))
        return out


def target_of(client: CentraClient | StockTarget, estate: Estate) -> StockTarget:
    """A `StockTarget` as is; a bare Centra client wrapped (tests and tools that hold a `CentraClient`)."""
    return client if isinstance(client, StockTarget) else CentraStockTarget(client, estate)
