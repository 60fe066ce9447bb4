"""NewStore's real wire format decoded into stock movements and sale lines (pure functions).

Payloads are written as NewStore sends them (pipelines/simulators/newstore/PROVENANCE.md): the oracle is
the documented field meaning (`count` is what is physically there, `stock_on_hand` what was on record;
`price_method` says whether prices contain the tax), not our decoder.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.domain.bounds import INT32_MAX, INT63_MAX, MAX_ID_CHARS, MAX_SKU_CHARS
from pipelines.domain.newstore_events import business_key, decode_store_sale, event_time_of
from pipelines.domain.pos_lines import build_pos_lines
from pipelines.domain.stock_movements import (
    NoContext,
    OrderNotLanded,
    build_movements,
    decode_movements,
)
from pipelines.intake.verify import parse_newstore_event

T = "2026-03-02T10:00:00.000000Z"


class Orders(NoContext):
    """A fixed set of landed orders and cancellations."""

    def __init__(self, orders: dict[str, dict[str, Any]] | None = None,
                 cancelled: dict[str, set[str]] | None = None) -> None:
        self.orders, self.cancelled = orders or {}, cancelled or {}

    def order(self, order_id: str) -> dict[str, Any] | None:
        return self.orders.get(order_id)

    def cancelled_items(self, order_id: str) -> set[str]:
        return self.cancelled.get(order_id, set())


def item(sku: str, n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"i{n}", "product_id": sku, "list_price": 100.0, "item_discounts": 0.0, "order_discounts": 0.0,
            "tax": 20.0, "quantity": 1, "status": "completed", "external_identifiers": {"sku": sku},
            "shipping_service_level": "IN_STORE_HANDOVER", **extra}


def sale(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": "o1", "channel_type": "store", "channel": "ST-SE01", "currency": "SEK", "placed_at": T,
            "price_method": "tax_included", "items": items, **extra}


def moves(name: str, payload: dict[str, Any], context: Any = None) -> dict[tuple[str, str, str], int]:
    return {(m.fulfillment_node_id, m.sku, m.movement_type): m.quantity
            for m in decode_movements("k", name, T, payload, context)}


# ---------------------------------------------------------------- counts, receipts, returns


def test_a_cycle_count_sets_what_was_counted_not_what_was_on_record() -> None:
    payload = {"fulfillment_location_id": "SE01", "chunk_number": 1, "total_chunks": 2,
               "items": [{"product_id": "A", "stock_on_hand": 7, "count": 5},
                         {"product_id": "B", "stock_on_hand": 0, "count": 0}]}
    assert moves("inventory_count.items_counted", payload) == {("SE01", "A", "count"): 5, ("SE01", "B", "count"): 0}


def test_a_receipt_is_at_its_location_and_dated_when_processed_not_when_published() -> None:
    payload = {"id": "t1", "chunk_number": 1, "asn_id": "asn", "shipment_ref": "shp", "fulfillment_location_id": "SE02",
               "processed_at": "2026-03-01T22:30:00Z", "items": [{"product_id": "A", "quantity": 3},
                                                                {"product_id": "A", "quantity": 2}]}
    assert moves("inventory_transaction.items_received", payload) == {("SE02", "A", "receipt"): 5}
    # Published after midnight: the business time is still the evening before.
    assert event_time_of("inventory_transaction.items_received", payload, "2026-03-02T01:00:00Z") \
        == "2026-03-01T22:30:00.000000Z"


def test_a_return_restocks_sellable_items_only_at_the_store_that_took_it() -> None:
    payload = {"id": "r1", "order_id": "o1", "returned_at": T, "return_location_id": "SE03", "items": [
        {"id": "x1", "product_id": "A", "quantity": 2, "item_condition": "sellable"},
        {"id": "x2", "product_id": "B", "quantity": 1, "item_condition": "damaged"}]}
    assert moves("return.processed", payload) == {("SE03", "A", "return"): 2}


def test_a_return_dated_on_d_and_published_on_d_plus_1_lands_on_d() -> None:
    body = {"tenant": "t", "name": "return.processed", "published_at": "2026-03-02T03:00:00.000Z",
            "payload": {"id": "r9", "returned_at": "2026-03-01T20:15:00.000Z", "return_location_id": "SE01",
                        "items": []}}
    import json

    assert parse_newstore_event(json.dumps(body).encode()).event_time == "2026-03-01T20:15:00.000000Z"


# ---------------------------------------------------------------- sales, cancellations, fulfilment


def test_cancelled_items_never_decrement_stock() -> None:
    payload = sale([item("A", 1), item("A", 2, status="cancelled"), item("B", 3), item("C", 4)])
    context = Orders(cancelled={"o1": {"i3"}})  # an order.items_cancelled for i3 landed already
    assert moves("order.opened", payload, context) == {("ST-SE01", "A", "sale"): -1, ("ST-SE01", "C", "sale"): -1}
    # The cancellation itself moves nothing: the units never left the shelf.
    assert moves("order.items_cancelled", {"id": "o1", "items": [{"id": "i3", "product_id": "B"}]}, context) == {}


def test_endless_aisle_items_of_a_store_order_leave_when_shipped_not_at_the_till() -> None:
    payload = sale([item("A", 1), item("B", 2, shipping_service_level="STANDARD")])
    assert moves("order.opened", payload) == {("ST-SE01", "A", "sale"): -1}


def _completed(service_level: str, order_id: str = "o1") -> dict[str, Any]:
    return {"id": "fr1", "order_id": order_id, "logical_timestamp": 41, "fulfillment_location_id": "SE02",
            "associate_id": None, "service_level": service_level,
            "items": [{"id": "i2", "product_id": "B"}, {"id": "i3", "product_id": "B"}]}


def test_ship_from_store_completion_takes_the_units_out_of_the_fulfilling_store() -> None:
    store_order = Orders({"o1": sale([])})
    got = decode_movements("k", "fulfillment_request.items_completed", T, _completed("STANDARD"), store_order)
    assert [(m.fulfillment_node_id, m.sku, m.movement_type, m.quantity, m.logical_timestamp) for m in got] \
        == [("SE02", "B", "shipment", -2, 41)]


def test_a_till_sales_fulfilment_request_does_not_count_twice() -> None:
    assert moves("fulfillment_request.items_completed", _completed("IN_STORE_HANDOVER"), Orders({"o1": sale([])})) == {}


def test_a_commerce_platform_order_shipped_from_a_store_is_left_to_the_platform() -> None:
    web = Orders({"o1": {"id": "o1", "channel_type": "web", "channel": "centra"}})
    assert moves("fulfillment_request.items_completed", _completed("IN_STORE_PICKUP"), web) == {}


def test_a_completion_whose_order_has_not_landed_becomes_an_exception_not_a_guess(small_estate) -> None:
    with pytest.raises(OrderNotLanded):
        decode_movements("k", "fulfillment_request.items_completed", T, _completed("STANDARD"), NoContext())
    df, problems = build_movements([("k", "fulfillment_request.items_completed", T, {"payload": _completed("X")})],
                                   small_estate, "2026-03-02")
    assert df.empty and [p.type for p in problems] == ["fulfilment_order_unknown"]


# ---------------------------------------------------------------- price method


def test_tax_excluded_prices_do_not_have_their_tax_subtracted_again() -> None:
    # 100.00 excl. 25 % VAT: the customer pays 125.00, of which 25.00 tax; the net is 100.00.
    excl = sale([dict(item("A", 1), list_price=100.0, tax=25.0)], price_method="tax_excluded")
    (line,) = decode_store_sale(excl, T)
    assert (line.unit_price, line.tax, line.net_amount) == (100.0, 25.0, 100.0)
    # 125.00 incl. 25 % VAT: tax 25.00, net 100.00.
    incl = sale([dict(item("A", 1), list_price=125.0, tax=25.0)], price_method="tax_included")
    (line,) = decode_store_sale(incl, T)
    assert (line.unit_price, line.tax, line.net_amount) == (125.0, 25.0, 100.0)


# ---------------------------------------------------------------- bounds


def _sale_event(sku: str, **item_fields: Any) -> tuple[str, str, str, dict[str, Any]]:
    return ("bad", "order.opened", T, {"payload": sale([dict(item(sku, 1), **item_fields)])})


@pytest.mark.parametrize(("fields", "moves_stock"), [
    ({"quantity": float("inf")}, True), ({"quantity": INT32_MAX + 1}, True), ({"quantity": 1.5}, True),
    ({"quantity": True}, True), ({"product_id": "S" * (MAX_SKU_CHARS + 1), "external_identifiers": {}}, True),
    ({"list_price": float("inf")}, False),
], ids=["inf", "int32+1", "fraction", "bool", "sku129", "price-inf"])
def test_an_out_of_bounds_value_is_one_undecodable_event_and_the_rest_flow_on(small_estate, fields,
                                                                              moves_stock) -> None:
    store, sku = small_estate.stores[0], small_estate.skus()[0]
    bad = _sale_event(sku, **fields)
    bad[3]["payload"]["channel"] = store.id
    good = ("good", "order.opened", T, {"payload": dict(sale([item(sku, 1)]), id="o2", channel=store.id)})
    df, problems = build_movements([bad, good], small_estate, "2026-03-02")
    if moves_stock:
        assert [p.type for p in problems] == ["undecodable_event"]
        assert list(df["source_event"]) == ["good"]
    else:  # a price is not a stock matter: the movement stands
        assert problems == [] and list(df["source_event"]) == ["bad", "good"]
    lines, line_problems = build_pos_lines([bad, good], small_estate, "2026-03-02")
    assert [p.type for p in line_problems] == ["undecodable_event"] and list(lines["source_event"]) == ["good"]


def test_bounds_hold_at_the_boundary() -> None:
    ok = decode_movements("k", "inventory_transaction.items_received", T, {
        "id": "t", "fulfillment_location_id": "N" * MAX_ID_CHARS, "logical_timestamp": INT63_MAX,
        "items": [{"product_id": "S" * MAX_SKU_CHARS, "quantity": INT32_MAX},
                  {"product_id": "B", "quantity": -INT32_MAX - 1}]})
    assert [m.quantity for m in ok] == [INT32_MAX, -INT32_MAX - 1] and ok[0].logical_timestamp == INT63_MAX
    for bad in ({"logical_timestamp": INT63_MAX + 1}, {"logical_timestamp": -1},
                {"fulfillment_location_id": "N" * (MAX_ID_CHARS + 1)}):
        payload = {"id": "t", "fulfillment_location_id": "SE01", "items": [{"product_id": "A", "quantity": 1}], **bad}
        with pytest.raises(ValueError):
            decode_movements("k", "inventory_transaction.items_received", T, payload)


# ---------------------------------------------------------------- business identity


def test_a_redelivery_with_a_changed_envelope_or_extra_fields_has_the_same_identity() -> None:
    import json

    payload = {"id": "fr1", "order_id": "o1", "logical_timestamp": 7, "fulfillment_location_id": "SE01",
               "service_level": "STANDARD", "items": [{"id": "i1", "product_id": "A"}]}
    first = {"tenant": "t", "name": "fulfillment_request.items_completed", "published_at": "2026-03-02T10:00:00Z",
             "payload": payload}
    again = {**first, "published_at": "2026-03-02T14:00:00Z", "republished": True,
             "payload": {**payload, "associate_id": "a-9"}}
    keys = [parse_newstore_event(json.dumps(e).encode()).dedup_key for e in (first, again)]
    assert keys[0] == keys[1]
    # ... while another completion of the same request (next item, next logical timestamp) is another fact.
    other = {**first, "payload": {**payload, "logical_timestamp": 8, "items": [{"id": "i2", "product_id": "A"}]}}
    assert parse_newstore_event(json.dumps(other).encode()).dedup_key != keys[0]


def test_count_chunks_are_distinct_facts_and_a_redelivered_chunk_is_not() -> None:
    chunk = {"fulfillment_location_id": "SE01", "chunk_number": 1, "total_chunks": 2,
             "items": [{"product_id": "A", "stock_on_hand": 3, "count": 2}]}
    name = "inventory_count.items_counted"
    assert business_key(name, chunk) == business_key(name, {**chunk, "extra": 1})
    assert business_key(name, chunk) != business_key(name, {**chunk, "chunk_number": 2})
    assert business_key(name, chunk) != business_key(
        name, {**chunk, "items": [{"product_id": "A", "stock_on_hand": 3, "count": 1}]})

