"""Shared by the ERP stock and journal tests: an estate with an `erp` section, and a small in-memory ERP behind the
`ErpSystem` port (the stock, shipments and general ledger parts), used where the Business Central simulator and its
adapter (`pipelines.connectors.businesscentral.erp`) do not cover what a test needs."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pipelines.domain.erp.model import ErpShipment, ErpStockLevel, LedgerEntry
from pipelines.domain.erp.ports import JournalRequest
from pipelines.estate import Estate
from pipelines.estate.model import estate_from_dict

SALES_JOURNAL = {"revenue_account": "3000", "discount_account": "3050", "vat_account": "2610",
                 "default_balancing_account": "1900"}


def erp_estate(estate_dict: dict, *, bundle_product: int | None = 1, variant_sku: str | None = None,
               erp: dict | None = None) -> Estate:
    """The estate with an `erp` section: every SKU its own ERP item, except `variant_sku` (an item variant) and
    the sizes of the `bundle_product`-th product (a bundle of the first product's first size)."""
    data = copy.deepcopy(estate_dict)
    section: dict = {"tax_codes": {"25": "STANDARD", "12": "REDUCED", "0": "ZERO"}, "customers": {},
                     "currencies": {}, "items": {}, "bundles": {},
                     "sales_journal": {**SALES_JOURNAL, "balancing_accounts": {}}}
    if bundle_product is not None:
        product = data["catalog"][bundle_product]
        product["bundle"] = True
        component = data["catalog"][0]["variants"][0]["sizes"][0]["sku"]
        for v in product["variants"]:
            for s in v["sizes"]:
                section["bundles"][s["sku"]] = [{"sku": component, "quantity": 2}]
    if variant_sku is not None:
        section["items"][variant_sku] = {"item": f"IT-{variant_sku[:6]}", "variant": variant_sku[6:]}
    data["erp"] = {**section, **(erp or {})}
    return estate_from_dict(data)


@dataclass
class FakeErp:
    """Stock, shipments and the general ledger of an ERP (the parts of `ErpSystem` the stock resync and the sales
    journal use). A posted journal leaves one ledger entry per line and one for its balancing account."""

    levels: dict[tuple[str, str | None], int] = field(default_factory=dict)
    shipments: list[ErpShipment] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    posted: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def stock(self, numbers: Iterable[str] | None = None) -> tuple[ErpStockLevel, ...]:
        self.calls.append("stock")
        wanted = set(numbers) if numbers is not None else None
        return tuple(ErpStockLevel(n, v, q) for (n, v), q in self.levels.items() if wanted is None or n in wanted)

    def shipments_modified_since(self, since: str | None) -> Iterator[ErpShipment]:
        self.calls.append("shipments")
        yield from sorted((s for s in self.shipments if since is None or (s.modified_at or "") >= since),
                          key=lambda s: s.modified_at or "")

    def post_journal(self, request: JournalRequest) -> bool:
        if any(e.document_number == request.document_number for e in self.ledger):
            return False
        total = 0.0
        for line in request.lines:
            self.ledger.append(LedgerEntry(request.document_number, request.posting_date, line.account_number,
                                           max(line.amount, 0.0), max(-line.amount, 0.0), line.description))
            total += line.amount
        self.ledger.append(LedgerEntry(request.document_number, request.posting_date, request.balancing_account,
                                       round(max(-total, 0.0), 2), round(max(total, 0.0), 2), request.description))
        self.posted.append(request.document_number)
        return True

    def ledger_entries(self, start_date: str, end_date: str,
                       document_prefix: str | None = None) -> tuple[LedgerEntry, ...]:
        return tuple(e for e in self.ledger if start_date <= e.posting_date <= end_date
                     and (document_prefix is None or e.document_number.startswith(document_prefix)))
