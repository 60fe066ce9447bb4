"""The Centra side of the sync: send a batch, find a batch in the ledger, read stock for priorities."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from pipelines.connectors.centra import CentraClient, StockChangeResult
from pipelines.domain.sync.model import ADD, REMOVE, SET
from pipelines.sync.batches import Batch

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
