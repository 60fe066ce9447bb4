"""What sibling events prove, and recovered payloads that decode to the streamed amounts (pure, known answers)."""

from __future__ import annotations

import pytest

from pipelines.domain.completeness import ORDER, RETURN, evidence_of, recovered_return, recovered_sale
from pipelines.domain.newstore_events import business_key, decode_return, decode_store_sale


def test_siblings_name_the_transaction_they_belong_to() -> None:
    """Kills: a fulfilment request's own id taken for the order, a refund without a return treated as a
    return, the carrying event counted as its own evidence."""
    fr = evidence_of("fulfillment_request.items_completed", {"id": "fr-1", "order_id": "o-1",
                                                             "fulfillment_location_id": "S01"})
    assert (fr.kind, fr.transaction_id, fr.order_id, fr.node) == (ORDER, "o-1", "o-1", "S01")
    created = evidence_of("order.created", {"id": "o-2", "channel": "S02", "grand_total": "199.90", "currency": "SEK"})
    assert (created.transaction_id, created.node, created.amount, created.currency) == ("o-2", "S02", 199.9, "SEK")
    refund = evidence_of("refund_request.issued", {"id": "rr-1", "return_id": "r-1", "order_id": "o-3",
                                                   "amount": 90, "currency": "DKK"})
    assert (refund.kind, refund.transaction_id, refund.order_id, refund.amount) == (RETURN, "r-1", "o-3", 90.0)
    assert evidence_of("refund_request.issued", {"id": "rr-2", "order_id": "o-3", "amount": 5}) is None
    assert evidence_of("order.opened", {"id": "o-4"}) is None
    assert evidence_of("return.processed", {"id": "r-2"}) is None
    assert evidence_of("order.completed", {"id": ""}) is None


@pytest.mark.parametrize(("tax_method", "net", "tax", "list_price"), [
    ("vat_included", 72.0, 18.0, 100.0),  # 100 incl. 25 % VAT, 10 off: 90 paid, 18 of it tax, 72 net
    ("vat_excluded", 90.0, 22.5, 100.0),  # 100 excl. VAT, 10 off: 90 net, 22.50 tax on top
])
def test_a_recovered_sale_decodes_to_the_orders_own_net_and_tax(tax_method, net, tax, list_price) -> None:
    """The sales order's documented price parts (net, discount, tax) give back the event's list price.
    Kills: tax added to the list price when prices exclude it (or left out when they include it), the
    discount dropped."""
    order = {"id": "o-1", "origin_id": "S01-0000042", "channel_type": "store", "store_id": "S01", "currency": "SEK",
             "placed_at": "2026-11-20T10:00:00Z", "tax_method": tax_method,
             "items": [{"id": "i-1", "product_id": "SKU-1", "status": "complete", "shipping_method": "IN_STORE_HANDOVER",
                        "price": {"net": net, "discount": 10.0, "tax": tax}}]}
    payload = recovered_sale(order)
    assert payload["items"][0]["list_price"] == list_price
    assert business_key("order.opened", payload) == "order.opened:o-1"
    (line,) = decode_store_sale(payload, "2026-11-20T10:00:00Z")
    assert (line.transaction_id, line.fulfillment_node_id, line.sku, line.quantity) == ("o-1", "S01", "SKU-1", 1)
    assert (line.unit_price, line.discount, line.tax, line.net_amount) == (list_price, 10.0, tax, net)


def test_a_recovered_return_keeps_its_refund_lines_and_online_order() -> None:
    record = {"id": "r-1", "returned_from": "S02", "returned_at": "2026-11-20T12:00:00Z", "currency": "DKK",
              "items": [{"id": "ri-1", "product_id": "SKU-9", "quantity": 1, "refund_amount": 250.0,
                         "refund_excl_tax": 200.0, "refund_tax": 50.0, "item_condition": "sellable"}]}
    payload = recovered_return(record, "o-7", "100042")
    assert business_key("return.processed", payload) == "return.processed:r-1"
    (line,) = decode_return(payload, payload["returned_at"])
    assert (line.kind, line.fulfillment_node_id, line.sku, line.unit_price, line.tax, line.net_amount) == \
        ("return", "S02", "SKU-9", 250.0, 50.0, 200.0)
    assert line.original_order_ref == "100042" and line.original_transaction_id == "o-7"
