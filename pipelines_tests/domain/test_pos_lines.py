"""Decoding NewStore events into POS lines, with exception records for what cannot be mapped."""

from __future__ import annotations

from pipelines.domain.pos_lines import build_pos_lines


def _sale(order_id: str, node: str, skus: list[str], price: float = 100.0, discount: float = 0.0) -> dict:
    items = [{"id": f"{order_id}-{i}", "product_id": sku, "list_price": price, "tax": 20.0,
              "item_discounts": [{"price_adjustment": discount}] if discount else [], "order_discounts": [],
              "quantity": 1, "status": "completed", "external_identifiers": {"sku": sku, "ean13": "0"},
              "shipping_service_level": "IN_STORE_HANDOVER"} for i, sku in enumerate(skus)]
    return {"payload": {"id": order_id, "channel_type": "store", "channel": node, "store_id": node,
                        "currency": "SEK", "placed_at": "2026-03-01T10:00:00Z", "items": items}}


def test_units_of_one_sku_become_one_line(small_estate) -> None:
    store = small_estate.stores[0]
    sku = small_estate.skus()[0]
    df, problems = build_pos_lines(
        [("k1", "order.opened", "2026-03-01T10:00:00.000000Z", _sale("o1", store.newstore_node_id, [sku, sku], discount=10))],
        small_estate, "2026-03-01")
    assert problems == []
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.quantity, row.unit_price, row.discount, row.tax, row.net_amount) == (2, 100.0, 20.0, 40.0, 140.0)
    assert row.location_id == store.id and bool(row.sku_known)


def test_unknown_sku_and_unmapped_store_become_exceptions_not_drops(small_estate) -> None:
    store = small_estate.stores[0]
    events = [
        ("k1", "order.opened", "2026-03-01T10:00:00.000000Z", _sale("o1", store.newstore_node_id, ["NOPE-1"])),
        ("k2", "order.opened", "2026-03-01T11:00:00.000000Z", _sale("o2", "XX99", [small_estate.skus()[1]])),
    ]
    df, problems = build_pos_lines(events, small_estate, "2026-03-01")
    assert len(df) == 2  # kept, flagged
    assert sorted(p.type for p in problems) == ["unknown_sku", "unmapped_location"]
    assert {p.owner_team for p in problems} == {"ecommerce", "integration"}


def test_redelivered_transaction_counts_once_and_web_orders_ignored(small_estate) -> None:
    store = small_estate.stores[0]
    sku = small_estate.skus()[0]
    sale = _sale("o1", store.newstore_node_id, [sku])
    web = _sale("w1", store.newstore_node_id, [sku])
    web["payload"]["channel_type"] = "web"
    events = [("k1", "order.opened", "t1", sale), ("k1b", "order.opened", "t2", sale), ("k3", "order.opened", "t3", web)]
    df, _ = build_pos_lines(events, small_estate, "2026-03-01")
    assert df["transaction_id"].tolist() == ["o1"]


def test_return_of_online_order_keeps_reference(small_estate) -> None:
    store = small_estate.stores[0]
    sku = small_estate.skus()[2]
    ret = {"payload": {"id": "r1", "order_id": None, "return_location_id": store.newstore_node_id, "currency": "SEK",
                       "returned_at": "2026-03-01T12:00:00Z",
                       "extended_attributes": [{"name": "online_order_number", "value": "1042"}],
                       "items": [{"product_id": sku, "quantity": 1, "refund_amount": 125.0, "refund_tax": 25.0,
                                  "refund_excl_tax": 100.0}]}}
    df, problems = build_pos_lines([("k", "return.processed", "2026-03-01T12:00:00.000000Z", ret)], small_estate, "d")
    assert problems == []
    row = df.iloc[0]
    assert (row.kind, row.original_order_ref, row.unit_price, row.tax, row.net_amount) == ("return", "1042", 125.0, 25.0, 100.0)
    assert row.original_transaction_id is None
