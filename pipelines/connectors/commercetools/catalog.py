"""commercetools' catalog as one read, in the shape of Centra's (`pipelines.connectors.centra.catalog.CentraCatalog`),
so the catalog export to NewStore (`pipelines/defs/catalog`) is written once.

- Sizes: one per product variant with an SKU (`CommercetoolsReads.product_sizes`); the EAN from the variant's `ean`
  (or `gtin`) attribute when the product type has one, else the estate's mapping.
- Prices: a variant's embedded `prices[]` (`value`, `country`, `channel`) mapped to the estate's price lists: a price
  counts for the price list of its currency whose countries include its `country` (a price without a country for
  every price list of its currency), on the estate's web price channel or on no channel; the most specific wins
  (country + channel over country over none). Prices on other channels (a store's own) are not the web price.
- Price lists: the estate's (`commercetools` has none: prices live on variants).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipelines.connectors.centra.catalog import CentraCatalog
from pipelines.connectors.centra.models import CentraPricelist, CentraVariantPrice
from pipelines.connectors.commercetools.client import CommercetoolsClient
from pipelines.connectors.commercetools.reads import CommercetoolsReads, money
from pipelines.estate import Estate

EAN_ATTRIBUTES = ("ean", "gtin")


def _specificity(price: dict[str, Any], web_channel_id: str | None) -> int | None:
    """2: country and web channel; 1: country only (or channel only); 0: neither; None: another channel's price."""
    channel = (price.get("channel") or {}).get("id")
    if channel is not None and channel != web_channel_id:
        return None
    return int(price.get("country") is not None) + int(channel is not None)


def read_catalog(client: CommercetoolsClient, estate: Estate) -> CentraCatalog:
    """Sizes, variant prices per estate price list, and the estate's price lists (see module docstring)."""
    if estate.commercetools is None:
        raise ValueError("the estate has no commercetools section")
    channel = client.channel_by_key(estate.commercetools.price_channel_key)
    web_channel_id = channel["id"] if channel else None
    reads = CommercetoolsReads(client, estate)
    products = list(client.products())
    sizes = {s.sku: s for s in reads.product_sizes(products)}
    pricelists = estate.centra.pricelists
    best: dict[tuple[int, int], tuple[int, float, str]] = {}  # (pricelist, variant) -> (specificity, price, currency)
    for product in products:
        for v in [product.get("masterVariant") or {}, *(product.get("variants") or [])]:
            size = sizes.get(v.get("sku") or "")
            if size is None:
                continue
            ean = next((a.get("value") for a in v.get("attributes") or [] if a.get("name") in EAN_ATTRIBUTES), None)
            if ean:
                sizes[size.sku] = replace(size, ean=str(ean))
            for price in v.get("prices") or []:
                rank = _specificity(price, web_channel_id)
                value = price.get("value") or {}
                if rank is None or not value.get("currencyCode"):
                    continue
                for pl in pricelists:
                    country = price.get("country")
                    if pl.currency != value["currencyCode"] or (country is not None and country not in pl.countries):
                        continue
                    key = (pl.id, size.variant_id)
                    if key not in best or rank > best[key][0]:
                        best[key] = (rank, money(value), pl.currency)
    return CentraCatalog(
        sizes=tuple(sizes.values()),
        prices=tuple(CentraVariantPrice(pl, variant, currency, price)
                     for (pl, variant), (_, price, currency) in sorted(best.items())),
        pricelists=tuple(CentraPricelist(p.id, p.name, p.currency, p.store_id, p.countries) for p in pricelists))

