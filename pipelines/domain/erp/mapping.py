"""The estate's `erp` section: how commerce SKUs, tax rates, currencies and markets map to the ERP.

```json
"erp": {
  "customers": {"<commerce market id>": "<ERP customer number>"},     # who a web order is sold to
  "currencies": {"SEK": "", "EUR": "EUR"},                            # commerce currency -> ERP code ("" = local)
  "tax_codes": {"25": "STANDARD", "12": "REDUCED", "0": "ZERO"},     # line tax percent -> ERP tax code
  "items": {"<sku>": {"item": "<item number>", "variant": "<variant code>"}},  # default: item number = SKU
  "bundles": {"<bundle sku>": [{"sku": "<component sku>", "quantity": 2}]},   # exploded into components
  "shipping_account": "<G/L account>",                               # the shipping charge line
  "dc_location_id": "<estate location id>",                          # the warehouse whose stock the ERP owns
  "sales_journal": {"revenue_account": "...", "discount_account": "...", "vat_account": "...",
                    "balancing_accounts": {"<store location id>": "<account>"}, "default_balancing_account": "..."}
}
```

A SKU the estate's catalog marks as a bundle (`"bundle": true` on its product) must have an entry in `bundles`;
any other SKU maps to `items[sku]`, or to the ERP item numbered like the SKU when `items` does not name it.
`fingerprint` changes when the mapping does: work blocked by a mapping gap is replayed once it changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ErpItemRef:
    number: str
    variant_code: str | None = None


@dataclass(frozen=True)
class BundleComponent:
    sku: str
    quantity: int


@dataclass(frozen=True)
class SalesJournalAccounts:
    revenue_account: str
    discount_account: str
    vat_account: str
    default_balancing_account: str
    balancing_accounts: dict[str, str] = field(default_factory=dict)

    def balancing_account(self, location_id: str) -> str:
        return self.balancing_accounts.get(location_id, self.default_balancing_account)


def rate_key(tax_percent: float) -> str:
    """The mapping's key of a tax percent: 25.0 -> "25", 12.5 -> "12.5"."""
    return f"{round(float(tax_percent), 3):g}"


@dataclass(frozen=True)
class ErpMapping:
    customers: dict[str, str]
    currencies: dict[str, str]
    tax_codes: dict[str, str]
    items: dict[str, ErpItemRef]
    bundles: dict[str, tuple[BundleComponent, ...]]
    bundle_skus: frozenset[str]  # SKUs the catalog marks as bundles (mapped or not)
    shipping_account: str | None
    dc_location_id: str | None
    sales_journal: SalesJournalAccounts | None
    fingerprint: str

    def item_of(self, sku: str) -> ErpItemRef:
        return self.items.get(sku) or ErpItemRef(sku)

    def tax_code(self, tax_percent: float) -> str | None:
        return self.tax_codes.get(rate_key(tax_percent))

    def currency(self, commerce_currency: str) -> str | None:
        return self.currencies.get(commerce_currency)

    def customer(self, market_id: str | None) -> str | None:
        return self.customers.get(str(market_id)) if market_id is not None else None

    def is_bundle(self, sku: str) -> bool:
        return sku in self.bundle_skus or sku in self.bundles


def mapping_from_dict(data: dict[str, Any] | None, bundle_skus: frozenset[str] = frozenset()) -> ErpMapping | None:
    """The mapping from the estate's `erp` section (None: the retailer runs no ERP)."""
    if not data:
        return None
    journal = data.get("sales_journal")
    return ErpMapping(
        customers={str(k): str(v) for k, v in (data.get("customers") or {}).items()},
        currencies={str(k): str(v) for k, v in (data.get("currencies") or {}).items()},
        tax_codes={rate_key(float(k)): str(v) for k, v in (data.get("tax_codes") or {}).items()},
        items={str(k): ErpItemRef(str(v["item"]), v.get("variant") or None)
               for k, v in (data.get("items") or {}).items()},
        bundles={str(k): tuple(BundleComponent(str(c["sku"]), int(c.get("quantity", 1))) for c in v)
                 for k, v in (data.get("bundles") or {}).items()},
        bundle_skus=frozenset(bundle_skus),
        shipping_account=data.get("shipping_account"),
        dc_location_id=data.get("dc_location_id"),
        sales_journal=SalesJournalAccounts(
            revenue_account=str(journal["revenue_account"]), discount_account=str(journal["discount_account"]),
            vat_account=str(journal["vat_account"]),
            default_balancing_account=str(journal["default_balancing_account"]),
            balancing_accounts={str(k): str(v) for k, v in (journal.get("balancing_accounts") or {}).items()},
        ) if journal else None,
        fingerprint=hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16],
    )
