"""The commerce platform's catalogue as Cloudshelf's inputs (no Dagster, no I/O).

Centra is the product master (its sizes as `pipelines.connectors.centra.catalog` reads them, or commercetools'
variants landed as the same records). One Centra size is one Cloudshelf product variant, matched on its immutable
SKU; one Centra product is one Cloudshelf product. Field names are Cloudshelf's (`ProductInput`,
`ProductVariantInput` in Cloudshelf+Shopify_CSConnector `src/graphql/cloudshelf/generated/cloudshelf.ts`):

- product: `id` (GlobalId `gid://external/CentraProduct/<product id>`), `displayName`;
- variant: `id` (`gid://external/CentraVariant/<SKU>`), `sku`, `displayName` ("<colour> / <size>"),
  `currentPrice` = `originalPrice` = the variant's price in the kiosk price list (Centra's price list gives one price
  per variant; a discount is not modelled), `availableToPurchase` (the size and its product active, and priced in the
  kiosk price list), `barcode` (EAN), `attributes` (`Colour`, `Size`: key names of ours), `position`.

`isInStock` is not sent: per-location stock levels decide it (`availability`). A size that leaves the assortment
(inactive, unpriced) is kept on the kiosk with `availableToPurchase: false`, not deleted, so an order line still
finds its variant. The GlobalIds come from the caller's `ids` (`pipelines.connectors.cloudshelf.ids`, passed in:
the domain imports nothing outside it).

Incremental: each variant's inputs have a fingerprint; `plan_catalog` sends the variants whose fingerprint differs
from the one last published (with their products), or all with `full`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class Ids(Protocol):
    def product_gid(self, product_id: object) -> str: ...

    def variant_gid(self, sku: str) -> str: ...


class SizeLike(Protocol):
    sku: str
    ean: str | None
    product_id: int
    product_name: str
    product_status: str
    variant_id: int
    variant_name: str
    size_name: str | None
    is_active: bool


@dataclass(frozen=True)
class CatalogVariant:
    """One SKU as Cloudshelf takes it: its product's and its own input, and their fingerprint."""

    sku: str
    product_id: int
    product: dict[str, Any]
    variant: dict[str, Any]
    purchasable: bool
    fingerprint: str


@dataclass
class CatalogPlan:
    """What to send: products with their changed variants (`UpsertVariantsInput` per product), and the counts."""

    variants: list[CatalogVariant] = field(default_factory=list)  # to send
    unchanged: int = 0
    not_purchasable: int = 0

    @property
    def products(self) -> list[dict[str, Any]]:
        return list({v.product["id"]: v.product for v in self.variants}.values())

    def variant_inputs(self) -> list[dict[str, Any]]:
        """`UpsertVariantsInput`s: {productId, variants}, one per product, variants in position order."""
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for v in self.variants:
            grouped[v.product["id"]].append(v.variant)
        return [{"productId": pid, "variants": vs} for pid, vs in grouped.items()]

    @property
    def fingerprints(self) -> dict[str, str]:
        return {v.sku: v.fingerprint for v in self.variants}


def is_sellable(size: SizeLike) -> bool:
    """Active in the product master: the size and its product."""
    return bool(size.is_active) and str(size.product_status).upper() == "ACTIVE"


def fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def kiosk_variants(sizes: Iterable[SizeLike], prices: Mapping[int, Mapping[int, float]], pricelist_id: int | None,
                   ids: Ids, master: Mapping[str, Any] | None = None) -> list[CatalogVariant]:
    """Every size as a kiosk variant (module docstring). `prices`: variant id -> price list id -> price.
    `master`: the estate's SKUs (the product master); a size outside it is not published (None: all are)."""
    sizes = [s for s in sizes if master is None or s.sku in master]
    position: dict[int, int] = defaultdict(int)
    out = []
    for s in sorted(sizes, key=lambda s: (s.product_id, s.variant_id, s.sku)):
        price = prices.get(s.variant_id, {}).get(pricelist_id) if pricelist_id is not None else None
        purchasable = is_sellable(s) and price is not None
        position[s.product_id] += 1
        product = {"id": ids.product_gid(s.product_id), "displayName": s.product_name}
        variant: dict[str, Any] = {
            "id": ids.variant_gid(s.sku), "sku": s.sku,
            "displayName": " / ".join(p for p in (s.variant_name, s.size_name) if p) or s.sku,
            "availableToPurchase": purchasable, "position": position[s.product_id],
            "attributes": [{"key": k, "value": v} for k, v in (("Colour", s.variant_name), ("Size", s.size_name))
                           if v],
        }
        if price is not None:
            variant["currentPrice"] = variant["originalPrice"] = round(float(price), 2)
        if s.ean:
            variant["barcode"] = s.ean
        out.append(CatalogVariant(s.sku, s.product_id, product, variant, purchasable,
                                fingerprint({"product": product, "variant": variant})))
    return out


def plan_catalog(variants: Iterable[CatalogVariant], published: Mapping[str, str], *, full: bool = False) -> CatalogPlan:
    """The variants to send: those never published or changed since (`published`: SKU -> fingerprint), all with
    `full`."""
    plan = CatalogPlan()
    for v in variants:
        if not v.purchasable:
            plan.not_purchasable += 1
        if full or published.get(v.sku) != v.fingerprint:
            plan.variants.append(v)
        else:
            plan.unchanged += 1
    return plan
