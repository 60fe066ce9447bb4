"""The NewStore simulator's endless-aisle world API (`take_endless_aisle_order`): the order a store takes for
home delivery, as its events and REST view show it. Oracle: the estate (store, country, tax) and the arguments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.estate.model import Estate
from pipelines.simulators.newstore import NewStoreState
from pipelines.simulators.newstore.endless_aisle import take_endless_aisle_order
from pipelines_tests.newstore_fixtures import fixture_ns_estate  # noqa: F401

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_an_endless_aisle_order_is_a_store_order_whose_items_carry_the_delivery_service_level(
        ns_estate: Estate) -> None:
    """Kills: items published as IN_STORE_HANDOVER (the flows would take them for a till sale), the store's stock
    moving for goods it never had, NewStore routing the order to one of its own nodes."""
    state = NewStoreState(ns_estate)
    sku = ns_estate.skus()[0]
    before = state.on_hand("SE01", sku)
    address = {"first_name": "Ada", "last_name": "Lovelace", "address_line_1": "Storgatan 1", "city": "Stockholm",
               "zip_code": "11122", "country": "SE"}
    payload = take_endless_aisle_order(state, "SE01", [{"sku": sku, "quantity": 2, "unit_price": 500,
                                                        "discount": 50}],
                                       service_level="EXPRESS", customer_email="a@example.com",
                                       shipping_address=address, at=T0)
    assert payload["channel_type"] == "store" and payload["channel"] == "ST-SE01"
    assert payload["customer_email"] == "a@example.com"
    assert payload["shipping_address"]["address_line1"] == "Storgatan 1"
    assert payload["shipping_address"]["country"] == "SE"
    assert [(i["shipping_service_level"], i["status"], i["list_price"], i["item_discounts"]) for i in payload["items"]] \
        == [("EXPRESS", "pending", 500.0, 50.0)] * 2
    assert payload["grand_total"] == 900.0
    assert payload["tax_total"] == pytest.approx(2 * 450 * 0.25 / 1.25)  # SE VAT, tax included
    names = [e["name"] for e in state.events_published()]
    assert names == ["order.created", "order.opened"]
    assert state.on_hand("SE01", sku) == before
    assert state.fulfillment_requests(payload["id"]) == {"fulfillment_requests": []}
