"""The platform interfaces the customer sync (`pipelines.customers.sync`) is written against.

A commerce platform (`CommerceCustomers`; commercetools in `pipelines/connectors/commercetools/customers.py`) and a
store system (`StoreCustomers`; NewStore in `pipelines/connectors/newstore/customers.py`) each read and write
customers as :class:`pipelines.domain.customers.Customer`. Both sides have the same shape; they are two protocols
so a platform implements the side it is and the sync names which side it talks to.

Writes are safe to repeat: ``create`` finds a customer an earlier, interrupted call already made (commercetools by
the key derived from ``link_id``, NewStore by its get-or-create on e-mail) instead of making a second one;
``update`` carries the record's ``version`` and raises :class:`StaleCustomer` when the platform holds a newer
state (the sync re-reads it on its next pass). A write the platform refuses raises :class:`CustomerWriteRefused`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pipelines.domain.customers import Customer


class StaleCustomer(Exception):
    """The platform's record changed since it was read (version / last_updated_at mismatch)."""


class CustomerWriteRefused(Exception):
    """The platform refused a customer write; ``evidence`` holds its answer."""

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence = dict(evidence or {})


@dataclass(frozen=True)
class HistoryLine:
    """One order line as the customer paid it (money in the order's currency, tax included)."""

    line_id: str
    sku: str
    quantity: int
    total: float  # what the line cost, tax included, after discounts
    list_unit_price: float  # the unit price before discounts, tax included
    tax_rate: float  # 0.25


@dataclass(frozen=True)
class HistoryOrder:
    """An online order of a customer, for the store system's order history (store staff see it)."""

    order_ref: str  # the order number: the store system's external id
    customer_id: str | None  # the commerce platform's customer id
    email: str
    placed_at: str
    currency: str
    country: str | None
    lines: tuple[HistoryLine, ...]
    shipping_price: float = 0.0  # tax included
    shipping_tax: float = 0.0
    address: Mapping[str, str] | None = None  # address_line_1, zip_code, city, country
    modified_at: str | None = None

    @property
    def total(self) -> float:
        return round(sum(ln.total for ln in self.lines) + self.shipping_price, 2)


class _Customers(Protocol):
    platform: str  # "commercetools", "newstore": names the platform in evidence and metadata

    def changed_since(self, cursor: str | None) -> Iterator[Customer]:
        """Customers created or changed at or after ``cursor`` (ISO-8601 UTC; None: all)."""
        ...

    def get(self, customer_id: str) -> Customer | None: ...

    def find_by_email(self, email: str) -> list[Customer]:
        """Every customer whose e-mail equals ``email`` (normalised); more than one is a data problem."""
        ...

    def create(self, values: Mapping[str, str | None], *, link_id: str) -> Customer:
        """Create a customer from synced field values (see :data:`pipelines.domain.customers.SYNCED_FIELDS`);
        ``link_id`` is the other platform's id of the customer."""
        ...

    def update(self, current: Customer, values: Mapping[str, str | None]) -> Customer:
        """Set synced fields (None clears) on ``current``; returns the record after the write."""
        ...


class CommerceCustomers(_Customers, Protocol):
    """The commerce platform's customers (the online accounts)."""

    def orders_since(self, cursor: str | None, *, email: str | None = None) -> Iterator[HistoryOrder]:
        """Orders created or changed at or after ``cursor`` (None: all) that carry an order number and an e-mail;
        with ``email``, only that customer's."""
        ...


class StoreCustomers(_Customers, Protocol):
    """The store system's customer profiles (what store staff see)."""

    def add_to_history(self, order: HistoryOrder) -> bool:
        """Put an online order into the customer's order history; False when the store system already holds an
        order with that reference (imported before, or handed to a store by an order flow)."""
        ...
