"""Centra GraphQL nodes -> typed results (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipelines.connectors.centra.models import (
    CentraOrder,
    CentraOrderLine,
    CentraReturn,
    CentraReturnLine,
    CentraSize,
    CentraStock,
    CentraStockChange,
)


def utc_iso(value: str | None) -> str | None:
    """Centra timestamp (ISO-8601 with offset, or naive = UTC) -> ISO-8601 UTC string."""
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.isoformat()


def as_utc(dt: datetime) -> datetime:
    """Naive = UTC; aware -> converted to UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def dt_arg(dt: datetime) -> str:
    """A datetime as a `DateTimeTz` argument (UTC, microseconds only when there are any)."""
    dt = as_utc(dt)
    return dt.isoformat(timespec="seconds" if dt.microsecond == 0 else "microseconds")


def val(node: dict[str, Any] | None, default: float = 0.0) -> float:
    return float(node["value"]) if node and node.get("value") is not None else default


def id_of(node: dict[str, Any] | None) -> Any:
    return node.get("id") if node else None


def code_of(node: dict[str, Any] | None) -> str | None:
    return node.get("code") if node else None


def _tax_total(totals: dict[str, Any]) -> float:
    return round(val(totals.get("taxIncluded")) + val(totals.get("taxAdded")), 2)


def size_from_node(node: dict[str, Any]) -> CentraSize:
    variant = node.get("productVariant") or {}
    product = variant.get("product") or {}
    return CentraSize(
        size_id=node["id"], sku=node["SKU"], ean=node.get("EAN"), product_id=product.get("id"),
        product_number=product.get("productNumber"), product_name=product.get("name"),
        product_status=product.get("status"), variant_id=variant.get("id"),
        variant_number=variant.get("variantNumber"), variant_name=variant.get("name"),
        size_name=(node.get("size") or {}).get("name") or node.get("sizeNumber"),
        is_active=bool(node.get("isActive")))


def stock_from_row(warehouse_id: int, row: dict[str, Any]) -> CentraStock:
    size = row.get("productSize") or {}
    return CentraStock(warehouse_id, size.get("id"), size.get("SKU"), row["physicalQuantity"],
                       row["allocatedQuantity"], row["freeToAllocateQuantity"], row["demandQuantity"])


def stock_changes_from_node(node: dict[str, Any]) -> list[CentraStockChange]:
    """The ledger lines of one `StockChange`."""
    created = utc_iso(node["createdAt"]) or ""
    out = []
    for ln in node.get("lines") or []:
        size = ln.get("productSize") or {}
        out.append(CentraStockChange(ln["id"], node["id"], created, node["description"], id_of(ln.get("warehouse")),
                                     size.get("id"), size.get("SKU"), int(ln.get("deliveredQuantity") or 0),
                                     ln.get("freeToAllocateQuantity")))
    return out


def order_from_node(o: dict[str, Any]) -> CentraOrder:
    totals = o.get("totals") or {}
    grand = o.get("grandTotal") or {}
    address = o.get("shippingAddress") or {}
    email = (o.get("customer") or {}).get("email") or address.get("email")
    lines = tuple(
        CentraOrderLine(
            line_id=ln["id"], sku=(ln.get("productSize") or {}).get("SKU"),
            ean=(ln.get("productSize") or {}).get("EAN"), product_number=ln.get("productNumber"),
            quantity=int(ln.get("quantity") or 0), cancelled_quantity=int(ln.get("cancelledQuantity") or 0),
            returned_quantity=int(ln.get("returnedQuantity") or 0), unit_price=val(ln.get("unitPrice")),
            unit_original_price=val(ln.get("unitOriginalPrice")),
            discount_percent=float(ln.get("discountPercent") or 0.0),
            tax_percent=float(ln.get("taxPercent") or 0.0), line_value=val(ln.get("lineValue")))
        for ln in o.get("lines") or [])
    return CentraOrder(
        id=o["id"], number=o["number"], status=o["status"], created_at=utc_iso(o["createdAt"]) or "",
        store_id=id_of(o.get("store")), market_id=id_of(o.get("market")), pricelist_id=id_of(o.get("pricelist")),
        currency=code_of(grand.get("currency")), country=code_of(o.get("country")) or code_of(address.get("country")),
        currency_base_rate=o.get("currencyBaseRate"), email=email, external_id=o.get("externalId"),
        grand_total=val(grand), tax_total=_tax_total(totals),
        discount_total=abs(val(totals.get("discounts"))), shipping_total=val(totals.get("shipping")),
        lines=lines)


def return_from_node(r: dict[str, Any]) -> CentraReturn:
    refunds = [p for p in r.get("refundPaymentHistory") or []
               if p.get("entryType") == "REFUND" and p.get("status") == "SUCCESS"]
    grand = r.get("grandTotal") or {}
    lines = tuple(
        CentraReturnLine(ln["id"], id_of(ln.get("orderLine")),
                         ((ln.get("orderLine") or {}).get("productSize") or {}).get("SKU"),
                         int(ln.get("quantity") or 0), val(ln.get("unitPrice")), val(ln.get("lineValue")),
                         (ln.get("orderLine") or {}).get("taxPercent"))
        for ln in r.get("lines") or [])
    return CentraReturn(
        id=r["id"], order_number=(r.get("order") or {}).get("number"), order_id=id_of(r.get("order")),
        created_at=utc_iso(r["createdAt"]) or "", status=r.get("returnStatus"), currency=code_of(grand.get("currency")),
        grand_total=val(grand), tax_total=_tax_total(r.get("totals") or {}),
        refunded=bool(refunds), refund_amount=round(sum(abs(val(p.get("value"))) for p in refunds), 2),
        refunded_at=max((utc_iso(p["createdAt"]) or "" for p in refunds), default=None),
        return_warehouse_id=id_of(r.get("returnWarehouse")), external_id=r.get("externalId"), lines=lines)
