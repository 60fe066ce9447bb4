"""Faithful fake of a commercetools Composable Commerce project (HTTP API + OAuth + Messages) built from an estate.

Contract highlights (every emitted field's source or ASSUMPTION is in ``PROVENANCE.md`` beside this file):

* One host serves both the auth API (``/oauth/token``, ``/oauth/introspect``) and the project API
  (``/{projectKey}/...``): give the client the same base URL as ``api_url`` and ``auth_url``.
* The project is the estate's ``commercetools`` section: a supply channel per location (key = location id),
  the ``web`` price channel, a Store per market, a Product per estate product (variant sku/key = SKU), a
  TaxCategory ``standard``, an InventoryEntry per (sku, supply channel) with the estate's initial stock.
* Versions: +1 per update request (whatever the number of actions); a stale ``version`` -> 409
  ConcurrentModification with ``currentVersion``.
* Messages carry a per-resource ``sequenceNumber`` (+1 steps); order deductions of stock write no message.
* Token expiry is measured on the wall clock (``auth_clock`` to override), not on ``clock``: the trading world
  moves the state's clock back while it replays history, and tokens must not expire meanwhile.
* Knobs: ``token_ttl_s``, ``response_delay_s``, ``publication_lag_s``, ``retention_days``, ``inventory_lag_s``,
  ``burst_rate``/``burst_length`` (random 502/503/504 bursts), ``state.fail_next``, ``state.concurrent_writer``,
  subscription delivery (:class:`DeliveryKnobs`), ``with_total_default``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from pipelines.estate.model import Estate
from pipelines.simulators.serving import BackgroundServer, serve

from .app import AuthRegistry, create_app
from .common import CtError
from .state import CommercetoolsState, DeliveryKnobs

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "AuthRegistry", "CommercetoolsSimulator",
           "CommercetoolsState", "CtError", "DeliveryKnobs", "create_app"]

DEFAULT_CLIENT_ID = "pipelines"
DEFAULT_CLIENT_SECRET = "pipelines-secret"


class CommercetoolsSimulator:
    """State + ASGI app. ``with sim.serve() as srv: srv.url`` (API and auth URL)."""

    def __init__(self, estate: Estate, *, clients: dict[str, tuple[str, tuple[str, ...] | list[str]]] | None = None,
                 token_ttl_s: int = 172800, response_delay_s: float = 0.0, project_key: str | None = None,
                 clock: Callable[[], datetime] | None = None, seed: int = 0, publication_lag_s: float = 0.0,
                 retention_days: int = 15, inventory_lag_s: float = 0.0, with_total_default: bool = True,
                 burst_rate: float = 0.0, burst_length: int = 3, delivery: DeliveryKnobs | None = None,
                 auth_clock: Callable[[], datetime] | None = None, order_number_prefix: str = "") -> None:
        self.state = CommercetoolsState(estate, project_key=project_key, clock=clock, seed=seed,
                                        publication_lag_s=publication_lag_s, retention_days=retention_days,
                                        inventory_lag_s=inventory_lag_s, with_total_default=with_total_default,
                                        burst_rate=burst_rate, burst_length=burst_length, delivery=delivery,
                                        order_number_prefix=order_number_prefix)
        self.project_key = self.state.project_key
        default = {DEFAULT_CLIENT_ID: (DEFAULT_CLIENT_SECRET, (f"manage_project:{self.project_key}",))}
        self.clients = {cid: (secret, tuple(scopes)) for cid, (secret, scopes) in (clients or default).items()}
        self.auth = AuthRegistry(self.clients, token_ttl_s)
        if auth_clock is not None:  # token expiry runs on the wall clock unless a test gives one
            self.auth.clock = auth_clock
        self.app = create_app(self.state, self.auth, response_delay_s)

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int | None = None) -> Iterator[BackgroundServer]:
        with serve(self.app, host=host, port=port) as srv:
            yield srv
