"""The tenant's data and plumbing, shared by every area of :class:`~.state.NewStoreState`: the records it
holds, the lock, deterministic ids, event publication and the lookups every area needs."""

from __future__ import annotations

import copy
import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipelines.estate.model import Estate, Location

from .common import D, EventSink, iso
from .records import FulfillmentRequest, Integration, Order, StockRecord
from .views import external_identifiers


class StateCore:
    """Constructor, records and plumbing of the simulated tenant (the areas are mixins on top)."""

    def __init__(self, estate: Estate, *, tenant: str = "nordlys", clock: Callable[[], datetime] | None = None,
                 seed: int = 0, emitter: EventSink | None = None, count_chunk_size: int = 100,
                 safety_stock: int = 0, conflict_mode: str = "error", max_items_per_order: int = 500,
                 late_publication_rate: float = 0.0, late_publication_s: float = 0.0) -> None:
        if conflict_mode not in ("error", "first_response"):
            raise ValueError("conflict_mode must be 'error' or 'first_response'")
        self.estate = estate
        self.tenant = tenant
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.count_chunk_size = max(1, count_chunk_size)
        # Late publication (knob): this share of events gets a `published_at` this many seconds after
        # the fact (NewStore's SLA is <= 15 min, but replays and halted streams publish hours late).
        self.late_publication_rate = late_publication_rate
        self.late_publication_s = late_publication_s
        self.conflict_mode = conflict_mode
        self.max_items_per_order = max_items_per_order
        self._emitter = emitter
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._lt = 0
        self._pos_seq = 0
        self._stock: dict[tuple[str, str], StockRecord] = {}
        for node, per_sku in estate.initial_stock.items():
            for sku, qty in per_sku.items():
                self._stock[(node, sku)] = StockRecord(on_hand=int(qty), safety_stock=safety_stock)
        self._default_safety = safety_stock
        self._orders: dict[str, Order] = {}
        self._by_external: dict[str, str] = {}
        self._injections: dict[str, tuple[str, dict[str, Any]]] = {}  # external_id -> (fingerprint, response)
        self._frs: dict[str, FulfillmentRequest] = {}
        self._frs_by_order: dict[str, list[str]] = {}
        self._returns: dict[str, list[dict[str, Any]]] = {}  # order id -> returns
        self._integrations: dict[str, Integration] = {}
        self._events: list[tuple[datetime, dict[str, Any]]] = []
        self._stores_by_id = {loc.id: loc for loc in estate.stores}
        self._pos_only_skus: set[str] = set()

    # -- plumbing ------------------------------------------------------------------------------------

    def attach_emitter(self, emitter: EventSink | None) -> None:
        with self._lock:
            self._emitter = emitter

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _at(self, at: datetime | None) -> datetime:
        if at is None:
            at = self.clock()
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    def _next_lt(self) -> int:
        self._lt += 1
        return self._lt

    def _node(self, node_id: str) -> Location:
        loc = self.estate.by_node.get(node_id)
        if loc is None:
            raise KeyError(f"unknown fulfillment node {node_id!r}")
        return loc

    def _sku(self, sku: str) -> None:
        if sku not in self.estate.by_sku and sku not in self._pos_only_skus:
            raise KeyError(f"unknown sku {sku!r}")

    def _rec(self, node_id: str, sku: str) -> StockRecord:
        rec = self._stock.get((node_id, sku))
        if rec is None:
            rec = self._stock[(node_id, sku)] = StockRecord(safety_stock=self._default_safety)
        return rec

    def _rate(self, country: str) -> Decimal:
        return D(self.estate.tax_rates.get(country, 0.0))

    def _ids(self, sku: str) -> dict[str, str | None]:
        return external_identifiers(self.estate, sku)

    def order_id_of(self, external_id: str) -> str | None:
        """World API: the NewStore id of an injected order, by its external id (None if not injected)."""
        with self._lock:
            return self._by_external.get(external_id)

    def _order_by_any_id(self, order_id: str) -> Order | None:
        """An order by its NewStore id, else by its external id."""
        return self._orders.get(order_id) or self._orders.get(self._by_external.get(order_id, ""))

    def _cancel_dispatched(self, order_id: str, item_ids: set[str] | None = None) -> None:
        """Fulfillment-request items of an order still waiting at the node (all, or only ``item_ids``)
        become ``cancelled``."""
        for fr_id in self._frs_by_order.get(order_id, []):
            for fi in self._frs[fr_id].items:
                if (item_ids is None or fi.item_id in item_ids) and fi.status == "dispatched":
                    fi.status = "cancelled"

    def _publish(self, name: str, payload: dict[str, Any], at: datetime) -> dict[str, Any]:
        published = at
        if self.late_publication_rate > 0 and self._rng.random() < self.late_publication_rate:
            published = at + timedelta(seconds=self.late_publication_s)
        envelope = {"tenant": self.tenant, "name": name, "published_at": iso(published), "payload": payload}
        self._events.append((at, envelope))
        if self._emitter is not None:
            for integ in self._integrations.values():
                if integ.accepts(at):
                    self._emitter.enqueue(envelope, integ.target())
        return envelope

    # -- ground truth ---------------------------------------------------------------------------------

    def events_published(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every event ever published (deep copies), optionally only one event name."""
        with self._lock:
            return [copy.deepcopy(e) for _, e in self._events if name is None or e["name"] == name]
