"""In-memory commercetools project built from an estate: the records, the message log and the world API.

:class:`CommercetoolsState` is assembled from one mixin per area: ``core`` (records, lock, versions, messages,
faults, counters), ``catalog`` (channels, stores, products, tax categories, Types), ``inventory``, ``orders``
(carts, orders, payments, world checkout/shipping), ``customers`` and ``messages`` (query, subscriptions).
All public methods are thread-safe (one re-entrant lock).

World API (no HTTP): ``place_order``, ``ship_order``, ``stock``, ``set_stock``, ``inventory_entry``,
``message_count``, ``all_messages``, ``fail_next``, ``concurrent_writer``, ``subscription_queue``,
``request_count`` / ``requests`` / ``updates`` / ``request_log``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pipelines.estate.model import Estate

from .common import CtError
from .messages import DeliveryKnobs, MessagesMixin

__all__ = ["CommercetoolsState", "CtError", "DeliveryKnobs"]


class CommercetoolsState(MessagesMixin):
    def __init__(self, estate: Estate, *, project_key: str | None = None,
                 clock: Callable[[], datetime] | None = None, seed: int = 0, publication_lag_s: float = 0.0,
                 retention_days: int = 15, inventory_lag_s: float = 0.0, with_total_default: bool = True,
                 burst_rate: float = 0.0, burst_length: int = 3, delivery: DeliveryKnobs | None = None,
                 order_number_prefix: str = "") -> None:
        if estate.commercetools is None:
            raise ValueError("the estate has no commercetools section")
        super().__init__(project_key or estate.commercetools.project_key, clock=clock, seed=seed,
                         publication_lag_s=publication_lag_s, retention_days=retention_days,
                         inventory_lag_s=inventory_lag_s, with_total_default=with_total_default,
                         burst_rate=burst_rate, burst_length=burst_length)
        self.estate = estate
        self.order_number_prefix = order_number_prefix  # the project's numbering scheme (world orders)
        self._init_inventory()
        self._init_orders()
        self._init_messages(delivery)
        with self.lock:
            self._build_catalog(estate)
            self._build_inventory()
