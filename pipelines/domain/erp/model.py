"""What the flows and the reconciliation know of an ERP's documents, independent of which ERP it is.

Money on sales documents is tax included (the commerce platform's prices are), in the document's ERP currency.
"""

from __future__ import annotations

from dataclasses import dataclass

ITEM = "Item"
ACCOUNT = "Account"  # a G/L account line (shipping charged to the customer)


@dataclass(frozen=True)
class ErpOrderLine:
    sequence: int  # the line's number on its document (Business Central: `sequence`)
    line_type: str  # ITEM | ACCOUNT
    number: str  # item number (ITEM) or G/L account number (ACCOUNT)
    variant_code: str | None
    quantity: float
    unit_price: float  # tax included, before the line discount
    discount_amount: float  # tax included, for the whole line
    tax_code: str
    amount_including_tax: float
    tax_amount: float
    shipped_quantity: float = 0.0
    description: str = ""


@dataclass(frozen=True)
class ErpOrder:
    order_id: str
    number: str
    external_ref: str  # the commerce order's reference (Centra: the order number): the idempotency key
    currency: str  # the ERP's currency code ("" = the company's local currency)
    customer_number: str
    order_date: str  # YYYY-MM-DD
    status: str
    total_including_tax: float
    total_tax: float
    discount_amount: float
    fully_shipped: bool
    lines: tuple[ErpOrderLine, ...] = ()


@dataclass(frozen=True)
class ErpShipmentLine:
    sequence: int  # the order line's sequence this shipment line ships
    number: str  # item number
    variant_code: str | None
    quantity: float


@dataclass(frozen=True)
class ErpShipment:
    shipment_id: str
    number: str
    order_number: str
    external_ref: str  # the commerce order's reference, carried from the sales order
    posting_date: str  # YYYY-MM-DD
    tracking_number: str | None
    carrier: str | None  # the shipping agent
    modified_at: str | None  # when the ERP last changed it (UTC ISO): the poll's cursor
    lines: tuple[ErpShipmentLine, ...] = ()


@dataclass(frozen=True)
class ErpStockLevel:
    number: str  # item number
    variant_code: str | None
    on_hand: int


@dataclass(frozen=True)
class ErpItem:
    number: str
    variant_code: str | None  # None: the item itself


@dataclass(frozen=True)
class LedgerEntry:
    """A posted general-ledger entry (what a posted journal leaves behind)."""

    document_number: str
    posting_date: str
    account_number: str
    debit: float
    credit: float
    description: str = ""
