"""Python-dict views of Centra records served by the world API (`order_summary`, `stock_of`,
`stock_changes`, `create_return`). Pure functions of records; the GraphQL views live in `resolvers/`."""

from __future__ import annotations

from typing import Any

from pipelines.estate.model import SizeRef

from .records import OrderRec, ReturnRec, StockChangeRec, StockRecord


def stock_quantities(rec: StockRecord) -> dict[str, int]:
    """Quantities of one stock record: physical, allocated, fta, demand."""
    return {"physical": rec.physical, "allocated": rec.allocated, "fta": rec.fta, "demand": rec.demand}


def stock_change_rows(log: list[StockChangeRec], sizes: dict[int, SizeRef]) -> list[dict[str, Any]]:
    """The ledger flattened to one dict per line (oldest first)."""
    out = []
    for sc in log:
        for ln in sc.lines:
            out.append({"id": ln.id, "stock_change_id": sc.id, "created_at": sc.created_at,
                        "description": sc.description, "kind": sc.kind, "order_number": sc.order_number,
                        "warehouse_id": ln.warehouse_id, "size_id": ln.size_id,
                        "sku": sizes[ln.size_id].size.sku, "quantity": ln.delivered_quantity,
                        "fta_delta": ln.fta_delta})
    return out


def order_summary(o: OrderRec, grand_total: float) -> dict[str, Any]:
    """An order with its lines, as the trading generator sees it."""
    return {
        "id": o.id, "number": o.number, "status": o.status, "created_at": o.created_at,
        "market_id": o.market_id, "pricelist_id": o.pricelist_id, "currency": o.currency,
        "country": o.country, "email": o.email, "external_id": o.external_id,
        "grand_total": grand_total, "is_on_hold": o.is_on_hold,
        "shipment_ids": list(o.shipment_ids), "return_ids": list(o.return_ids),
        "lines": [{"id": ln.id, "sku": ln.ref.size.sku, "quantity": ln.quantity, "ordered": ln.ordered,
                   "cancelled": ln.cancelled, "shipped": ln.shipped, "returned": ln.returned,
                   "allocated": ln.allocated, "demand": ln.demand, "unit_price": ln.unit_price,
                   "unit_original_price": ln.unit_original_price, "tax_percent": ln.tax_percent,
                   "allocations": {a.warehouse_id: a.quantity for a in ln.allocations}}
                  for ln in o.lines],
    }


def return_summary(number: int, created: list[ReturnRec]) -> dict[str, Any]:
    """The result of `create_return`: the first return created, with `ids` listing all."""
    first = created[0]
    return {"id": first.id, "ids": [r.id for r in created], "order_number": number,
            "status": first.status, "grand_total": first.grand_total,
            "refunded": any(p.entry_type == "REFUND" for p in first.refund_history),
            "return_warehouse_id": first.return_warehouse_id}
