"""Faithful fake of a Cloudshelf organisation (in-store kiosks): the ingest GraphQL API, order webhooks and the
kiosk world. Every field's source or ASSUMPTION (with its knob) is in ``PROVENANCE.md`` beside this file.

The organisation starts empty: the product upserts locations, products, variants and stock levels. Tests and the
trading world act as shoppers through the world API (`kiosk_order`, `set_order_status`) and read what a shopper
sees (`visible`, `stock_level`, `variant`). Never imported by production code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from starlette.applications import Starlette

from pipelines.simulators.cloudshelf.app import create_app
from pipelines.simulators.cloudshelf.state import (
    DEFAULT_ACQUISITION_OPTIONS,
    CloudshelfInputError,
    CloudshelfState,
    Order,
    Variant,
)
from pipelines.simulators.cloudshelf.webhooks import Delivery, OrderWebhooks
from pipelines.simulators.serving import BackgroundServer, serve

__all__ = ["DEFAULT_ACQUISITION_OPTIONS", "CloudshelfInputError", "CloudshelfSimulator", "CloudshelfState",
           "Delivery", "OrderWebhooks"]

DEFAULT_TOKEN = "cloudshelf-sim-key"


class CloudshelfSimulator:
    """State + ASGI app + webhook sender.

    Knobs: `tokens` (accepted API keys), `requests_per_s` (token bucket; 429 + Retry-After past it; 0 = no limit),
    `safety_stock` (the organisation's), `order_subject` (webhook subject of order events), `default_currency`,
    `default_page_size`, `clock`; `webhook_options` go to `OrderWebhooks` (`delay_s`, `drop_rate`,
    `duplicate_rate`, `reorder`, `attempts`, `backoff_s`, `timeout_s`, `max_queue`, `seed`).
    """

    def __init__(self, *, tokens: Iterable[str] = (DEFAULT_TOKEN,), requests_per_s: float = 20.0,
                 safety_stock: int = 0, order_subject: str = "OrderPaid", default_currency: str = "SEK",
                 default_page_size: int = 50, clock: Callable[[], datetime] | None = None,
                 webhook_options: dict[str, Any] | None = None) -> None:
        self.state = CloudshelfState(safety_stock=safety_stock, order_subject=order_subject,
                                     default_currency=default_currency, clock=clock)
        self.app: Starlette = create_app(self.state, tokens=tokens, requests_per_s=requests_per_s,
                                         default_page_size=default_page_size)
        self.webhooks = OrderWebhooks(**(webhook_options or {})).attach(self.state)

    # -- serving

    def start(self) -> CloudshelfSimulator:
        """Start the webhook sender (the app is served by a `BackgroundServer`)."""
        self.webhooks.start()
        return self

    def stop(self) -> None:
        self.webhooks.stop()

    def flush(self, timeout: float = 30.0) -> bool:
        return self.webhooks.flush(timeout)

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int | None = None) -> Iterator[BackgroundServer]:
        self.start()
        try:
            with serve(self.app, host=host, port=port) as server:
                yield server
        finally:
            self.stop()

    def set_rate(self, requests_per_s: float) -> None:
        self.app.state.graphql.set_rate(requests_per_s)

    # -- the kiosk world

    def add_acquisition_option(self, internal_name: str, acquisition_type: str) -> None:
        self.state.add_acquisition_option(internal_name, acquisition_type)

    def kiosk_order(self, location_gid: str, lines: Sequence[tuple[str, int]], fulfilment_method: str = "take-home",
                    email: str | None = None, phone: str | None = None,
                    attributes: Iterable[tuple[str, str]] | dict[str, str] | None = None,
                    at: datetime | None = None, paid: bool = True, **kwargs: Any) -> str:
        """See `CloudshelfState.kiosk_order` (`currency`, `force`)."""
        return self.state.kiosk_order(location_gid, lines, fulfilment_method=fulfilment_method, email=email,
                                      phone=phone, attributes=attributes, at=at, paid=paid, **kwargs)

    def set_order_status(self, order_gid: str, status: str, at: datetime | None = None) -> None:
        self.state.set_order_status(order_gid, status, at=at)

    def visible(self, location_gid: str, sku: str) -> bool:
        return self.state.visible(location_gid, sku)

    def stock_level(self, location_gid: str, sku: str) -> int | None:
        return self.state.stock_level(location_gid, sku)

    def variant(self, sku: str) -> Variant | None:
        return self.state.variant(sku)

    def order(self, gid: str) -> Order | None:
        return self.state.order(gid)

    def orders(self) -> list[Order]:
        return self.state.all_orders()

    @property
    def deliveries(self) -> list[Delivery]:
        return self.webhooks.deliveries
