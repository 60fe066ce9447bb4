"""The commerce platform as the stock sync sees it: the port every platform's stock adapter implements.

The sync (netting, governing, batching, the exactly-once protocol of `batches`) is written once against
`StockTarget`. An adapter (`centra_io.CentraStockTarget`, `commercetools_io.CommercetoolsStockTarget`) turns a
batch into the platform's writes and finds a batch again after a crash between the platform's success and our
commit, each in the platform's own way (Centra: its stock-change ledger by description; commercetools: a marker
written on each inventory entry in the same update as the quantity).

Keys are (warehouse id, SKU): the warehouse id is the estate location's stock-location number
(`Location.centra_warehouse_id`); an adapter maps it to the platform's own stock location.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pipelines.domain.sync.governor import Governor, RateLimitRow
from pipelines.sync.batches import Batch

Key = tuple[int, str]


class StockRejected(Exception):
    """The platform refused a batch for good (nothing to retry as is). `skus`: the lines its answer names;
    `unknown`: those it does not know at all; `mutation_spent`: whether the refusal used a mutation of the
    budget (Centra's HTTP 400 is refused before execution)."""

    def __init__(self, message: str, errors: Sequence[dict[str, Any]], skus: set[str], *,
                 unknown: set[str] | None = None, mutation_spent: bool = True) -> None:
        super().__init__(message)
        self.errors = list(errors)
        self.skus = skus
        self.unknown = unknown or set()
        self.mutation_spent = mutation_spent


class SendResult:
    """What the platform confirmed for a batch: its own ids of the change (for the ledger) and how many
    mutations it cost."""

    def __init__(self, change_ids: Sequence[int | str], mutations: int = 1) -> None:
        self.change_ids = tuple(change_ids)
        self.mutations = mutations


class StockTarget(ABC):
    """One commerce platform's stock, as the sync writes and reads it (see module docstring)."""

    #: The platform's name as people read it in messages and exceptions.
    platform: str
    #: The most lines one write can carry (None: the sync's `max_lines` alone decides).
    max_lines: int | None = None

    @abstractmethod
    def rate_limits(self) -> list[RateLimitRow]:
        """The platform's budget buckets now (what the governor mirrors)."""

    @abstractmethod
    def send(self, batch: Batch) -> SendResult:
        """Apply the batch. Raises `StockRejected` (refused for good), `RateLimited` (not applied), or a transient
        error when the outcome is unknown (the batch stays prepared and is looked up with `find_applied`)."""

    @abstractmethod
    def find_applied(self, batch: Batch) -> tuple[tuple[int | str, ...], str] | None:
        """The batch's change ids and time when the platform has applied all of it, else None (then it is resent:
        `send` must not apply a line twice that the platform already has)."""

    @abstractmethod
    def stock_view(self, keys: Iterable[Key], on_request: Callable[[], None]) -> dict[Key, tuple[int, int]]:
        """(on hand, free to sell online) per key, in few requests; `on_request` before each (the rate budget)."""

    def expect(self, keys: Iterable[Key]) -> None:  # noqa: B027 - optional hook, a no-op by default
        """The keys this pass is about to write. A platform that must read a key before writing it (commercetools:
        the entry's version) can fold those reads into the pass's next `stock_view` request."""

    @abstractmethod
    def physical(self, warehouse_ids: list[int], governor: Governor,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[dict[Key, int], int]:
        """On-hand stock of whole warehouses (the resync), paced by `governor`; and the requests it took."""

    @abstractmethod
    def selling_groups(self) -> dict[int, list[tuple[int, ...]]]:
        """Warehouse -> the warehouse groups it sells online through (Centra: allocation rules; commercetools:
        stores' supply channels). Free-to-sell stock is summed over a group to rank oversell risks."""
