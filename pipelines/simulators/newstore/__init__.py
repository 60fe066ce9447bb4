"""Faithful fake of a NewStore tenant (REST API + event stream) built from an estate.

Contract highlights (deviations from the reference page / specs are listed here on purpose):

* Every event field has a source or is marked an assumption in ``PROVENANCE.md`` beside this file.
* Identifiers: fulfillment node id = ``Location.newstore_node_id``; NewStore store id = ``Location.id``;
  product id = SKU. A store order names its store in ``channel`` (the store id); inventory and
  fulfilment events name the node in ``fulfillment_location_id``.
* ``fulfill_order`` idempotency: same ``external_id`` + same payload -> the first response (200);
  a different payload -> **409** ``same_order_injection_with_different_data`` (``conflict_mode="error"``,
  default) or the first response (``conflict_mode="first_response"``, what the spec describes).
* Routing of injected orders: ``shipping_option.routing_strategy.fulfillment_node_id`` pins the node;
  pickup service levels (containing ``PICKUP``) with ``store_id`` go to that store; otherwise the DC, else
  the first store (by node id) with enough ATP, else the DC (allocation may exceed on-hand).
* ATP by keys is served at ``POST /v0/stock/atp`` (the real path was not captured).
* ``GET /v0/d/orders/{id}/returns`` answers ``{"returns": [...]}``; event-stream list answers
  ``{"integrations": [...]}`` (shapes not captured).
* In-store returns of online orders: ``return.processed.external_order_id`` carries the online order
  reference; ``order_id`` is null unless a NewStore order exists.
* Adjustments emit ``inventory_transaction.items_adjusted`` (name is an assumption).
* ``published_at`` of an event is its event time (``at``), not the wall-clock send time, unless the
  late-publication knob moves it on (``late_publication_rate``, ``late_publication_s``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pipelines.estate.model import Estate
from pipelines.simulators.serving import BackgroundServer, serve

from .app import DEFAULT_ENDPOINT_RATES, SimulatorControls, create_app
from .eventstream import Delivery, DeliveryTarget, EmitterConfig, EventStreamEmitter
from .state import ADJUSTMENT_EVENT, NewStoreState, SimError

__all__ = [
    "ADJUSTMENT_EVENT", "DEFAULT_ENDPOINT_RATES", "Delivery", "DeliveryTarget", "EmitterConfig",
    "EventStreamEmitter", "NewStoreSimulator", "NewStoreState", "SimError", "SimulatorControls", "create_app",
]


class NewStoreSimulator:
    """State + emitter + ASGI app in one object. ``with sim.serve() as srv: srv.url``."""

    def __init__(self, estate: Estate, *, tenant: str = "nordlys", clients: dict[str, str] | None = None,
                 seed: int = 0, emitter_config: EmitterConfig | None = None,
                 clock: Callable[[], datetime] | None = None, tenant_rate: float | None = 200.0,
                 endpoint_rates: dict[str, float] | None = None, token_ttl: int = 3600,
                 conflict_mode: str = "error", count_chunk_size: int = 100, safety_stock: int = 0,
                 late_publication_rate: float = 0.0, late_publication_s: float = 0.0) -> None:
        self.tenant = tenant
        self.clients = dict(clients or {"pipelines": "pipelines-secret"})
        self.emitter = EventStreamEmitter(emitter_config, seed=seed)
        self.state = NewStoreState(estate, tenant=tenant, clock=clock, seed=seed, emitter=self.emitter,
                                   count_chunk_size=count_chunk_size, safety_stock=safety_stock,
                                   conflict_mode=conflict_mode, late_publication_rate=late_publication_rate,
                                   late_publication_s=late_publication_s)
        self.controls = SimulatorControls(tenant_rate=tenant_rate, endpoint_rates=endpoint_rates,
                                          token_ttl=token_ttl)
        self.app = create_app(self.state, clients=self.clients, controls=self.controls)

    def start(self) -> NewStoreSimulator:
        """Start the event-stream emitter."""
        self.emitter.start()
        return self

    def stop(self) -> None:
        self.emitter.stop()

    def __enter__(self) -> NewStoreSimulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered, dropped or given up."""
        return self.emitter.flush(timeout)

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int | None = None) -> Iterator[BackgroundServer]:
        """Start the emitter and serve the app on a loopback port for the duration of the block."""
        self.start()
        try:
            with serve(self.app, host=host, port=port) as srv:
                yield srv
        finally:
            self.stop()
