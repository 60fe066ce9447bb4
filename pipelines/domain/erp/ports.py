"""The ERP interface the order-to-cash flows, the ERP stock resync, the store sales journal and the ERP datasets
are written against. Business Central implements it in `pipelines/connectors/businesscentral/erp.py`.

Writes are idempotent on a key the caller passes: a sales order on `external_ref` (looked up before creating,
and created with its lines in one request, so a crash never leaves half an order), a journal on its
`document_number` (ledger entries with that number mean it is posted).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from pipelines.domain.erp.model import ErpItem, ErpOrder, ErpShipment, ErpStockLevel, LedgerEntry


@dataclass(frozen=True)
class ErpAddress:
    name: str | None
    address1: str | None
    address2: str | None
    city: str | None
    zip_code: str | None
    state: str | None
    country: str | None  # ISO-3166 alpha-2


@dataclass(frozen=True)
class ErpOrderLineRequest:
    line_type: str  # model.ITEM | model.ACCOUNT
    number: str  # item number or G/L account number
    variant_code: str | None
    quantity: int
    unit_price: float  # tax included, before the line discount (the commerce platform's own figure)
    discount_amount: float  # tax included, whole line (the commerce platform's own figure)
    tax_code: str
    description: str


@dataclass(frozen=True)
class ErpOrderRequest:
    external_ref: str  # the commerce order's reference: the ERP finds the order again by it
    customer_number: str
    currency: str  # the ERP currency code ("" = local currency)
    order_date: str  # YYYY-MM-DD
    ship_to: ErpAddress | None
    lines: tuple[ErpOrderLineRequest, ...]


@dataclass(frozen=True)
class JournalLineRequest:
    account_number: str
    amount: float  # signed: positive debits the account, negative credits it
    tax_code: str
    description: str


@dataclass(frozen=True)
class JournalRequest:
    """One posting of a general journal: lines balanced against `balancing_account` on `posting_date`."""

    document_number: str  # the idempotency key (the ERP's document number; at most 20 characters)
    posting_date: str
    description: str
    balancing_account: str
    lines: tuple[JournalLineRequest, ...]


class ErpRejected(Exception):
    """The ERP refused a write (nothing was written); `evidence` holds its answer."""

    def __init__(self, message: str, evidence: dict | None = None):
        super().__init__(message)
        self.evidence = evidence or {}


class ErpSystem(Protocol):
    # -- sales orders ------------------------------------------------------------------------------------------
    def orders_by_external_ref(self, external_ref: str) -> tuple[ErpOrder, ...]: ...

    def create_order(self, request: ErpOrderRequest) -> ErpOrder: ...  # all lines or nothing (ErpRejected)

    def orders_between(self, start_date: str, end_date: str) -> Iterator[ErpOrder]: ...  # by order date, inclusive

    def customer_currency(self, customer_number: str) -> str | None: ...  # None: no such customer

    # -- shipments ---------------------------------------------------------------------------------------------
    def shipments_modified_since(self, since: str | None) -> Iterator[ErpShipment]: ...  # oldest change first

    def shipments_between(self, start_date: str, end_date: str) -> Iterator[ErpShipment]: ...  # by posting date

    # -- items and stock ---------------------------------------------------------------------------------------
    def items(self) -> tuple[ErpItem, ...]: ...  # every item and item variant

    def stock(self, numbers: Iterable[str] | None = None) -> tuple[ErpStockLevel, ...]: ...  # on hand

    # -- general journal ---------------------------------------------------------------------------------------
    def post_journal(self, request: JournalRequest) -> bool: ...  # False: already posted (its entries exist)

    def ledger_entries(self, start_date: str, end_date: str,
                       document_prefix: str | None = None) -> tuple[LedgerEntry, ...]: ...
