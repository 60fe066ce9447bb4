"""Shared NewStore test fixtures (import explicitly): a served simulator, a webhook receiver, payloads.

Fixtures are named ``ns_estate``, ``ns_served`` and ``receiver``; import their functions to use them::

    from pipelines_tests.newstore_fixtures import fixture_ns_estate, fixture_ns_served, fixture_receiver  # noqa: F401
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.connectors.newstore import NewStoreClient
from pipelines.estate.model import Estate, estate_from_dict
from pipelines.simulators.estate_gen import generate_estate
from pipelines.simulators.newstore import EmitterConfig, NewStoreSimulator
from pipelines.simulators.serving import BackgroundServer, serve

TENANT = "nordlys-test"
CLIENT_ID = "pipelines"
CLIENT_SECRET = "s3cret"
API_KEY = "hook-api-key"
FAST_EMITTER = EmitterConfig(backoff_initial=0.01, backoff_max=0.05, max_attempts=6, request_timeout=5.0)


def small_estate(seed: int = 11) -> Estate:
    return estate_from_dict(generate_estate(sizes=60, stores=3, seed=seed))


def make_simulator(estate: Estate, **kwargs: Any) -> NewStoreSimulator:
    """A simulator with test credentials and a fast-retrying emitter (override via kwargs)."""
    kwargs.setdefault("tenant", TENANT)
    kwargs.setdefault("clients", {CLIENT_ID: CLIENT_SECRET})
    kwargs.setdefault("emitter_config", FAST_EMITTER)
    return NewStoreSimulator(estate, **kwargs)


@dataclass
class ServedNewStore:
    sim: NewStoreSimulator
    server: BackgroundServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/auth/realms/{self.sim.tenant}/protocol/openid-connect/token"

    def client(self, **kwargs: Any) -> NewStoreClient:
        """A connector pointed at this simulator with short backoffs."""
        kwargs.setdefault("backoff_base_s", 0.01)
        kwargs.setdefault("max_wait_s", 20.0)
        return NewStoreClient(self.url, self.sim.tenant, CLIENT_ID, CLIENT_SECRET, **kwargs)

    def token(self) -> str:
        resp = httpx.post(self.token_url, data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                "client_secret": CLIENT_SECRET})
        resp.raise_for_status()
        return resp.json()["access_token"]

    def http(self) -> httpx.Client:
        """A raw httpx client with a valid bearer token."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=10)


@pytest.fixture(name="ns_estate", scope="session")
def fixture_ns_estate() -> Estate:
    return small_estate()


@pytest.fixture(name="ns_served")
def fixture_ns_served(ns_estate: Estate) -> Iterator[ServedNewStore]:
    """A fresh simulator (state, emitter, app) served on a loopback port."""
    sim = make_simulator(ns_estate)
    with sim.serve() as srv:
        yield ServedNewStore(sim, srv)


class EventReceiver:
    """A tiny webhook sink: checks ``Authorization: Bearer <api_key>``, records envelopes, can fail on purpose."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.events: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.fail_remaining = 0
        self.fail_status = 500
        self._lock = threading.Lock()
        self.server: BackgroundServer | None = None
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                self.statuses.append(403)
                return JSONResponse({"error": "wrong api key"}, status_code=403)
            if self.fail_remaining > 0:
                self.fail_remaining -= 1
                self.statuses.append(self.fail_status)
                return JSONResponse({"error": "boom"}, status_code=self.fail_status)
            self.events.append(json.loads(raw))
            self.statuses.append(200)
        return Response(status_code=200)

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self.fail_remaining, self.fail_status = n, status

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/hook"

    def names(self) -> list[str]:
        with self._lock:
            return [e["name"] for e in self.events]

    def received(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if name is None or e["name"] == name]


@pytest.fixture(name="receiver")
def fixture_receiver() -> Iterator[EventReceiver]:
    rec = EventReceiver()
    with serve(rec.app) as srv:
        rec.server = srv
        yield rec


def served_receiver() -> tuple[EventReceiver, Any]:
    """A receiver plus its ``serve()`` context manager (enter it yourself) for non-fixture use."""
    rec = EventReceiver()
    return rec, serve(rec.app)


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), ROUND_HALF_UP))


def injection_payload(estate: Estate, external_id: str, skus: list[str], *, node: str | None = None,
                      currency: str = "SEK", country: str = "SE", service_level: str = "STANDARD",
                      shipping_price: float = 49.0, payments: bool = True, store_id: str | None = None) -> dict[str, Any]:
    """A valid tax-included web order (one item per unit) as a Centra->NewStore connector would send."""
    pricelist = next(p.id for p in estate.centra.pricelists if p.currency == currency)
    rate = Decimal(str(estate.tax_rates.get(country, 0.25)))
    items, total = [], Decimal(str(shipping_price))
    for n, sku in enumerate(skus, start=1):
        price = Decimal(str(estate.price(sku, pricelist)))
        tax = price * rate / (1 + rate)
        total += price
        items.append({
            "external_item_id": f"{external_id}-{n}",
            "product_id": sku,
            "price": {"item_price": _money(price), "item_list_price": _money(price),
                      "item_tax_lines": [{"amount": _money(tax), "rate": float(rate), "name": "VAT",
                                          "country_code": country}],
                      "item_discount_info": [], "item_order_discount_info": []},
        })
    option: dict[str, Any] = {"service_level_identifier": service_level, "price": shipping_price,
                              "tax": _money(Decimal(str(shipping_price)) * rate / (1 + rate))}
    if node:
        option["routing_strategy"] = {"strategy": "fixed", "fulfillment_node_id": node}
    body: dict[str, Any] = {
        "external_id": external_id, "shop": "storefront", "shop_locale": "sv-SE", "channel_type": "web",
        "channel_name": "centra", "currency": currency, "price_method": "tax_included",
        "placed_at": "2026-03-01T10:00:00Z", "customer_email": "kund@example.com", "customer_name": "Kim Kund",
        "shipping_address": {"address_line_1": "Storgatan 1", "city": "Stockholm", "zip_code": "11122",
                             "country": country, "first_name": "Kim", "last_name": "Kund"},
        "billing_address": {"address_line_1": "Storgatan 1", "city": "Stockholm", "zip_code": "11122",
                            "country": country},
        "shipments": [{"items": items, "shipping_option": option}],
    }
    if store_id:
        body["store_id"] = store_id
    if payments:
        body["payments"] = [{"type": "captured", "amount": _money(total), "method": "credit_card",
                             "processor": "adyen", "correlation_ref": f"psp-{external_id}",
                             "processed_at": "2026-03-01T10:00:05Z"}]
    return body
