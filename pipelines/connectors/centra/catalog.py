"""Centra's catalog as one read: every product size (SKU, EAN, product, variant, status) with the variant's price
in every price list, and the price lists themselves. Built on :class:`CentraClient`'s existing reads
(``productSizeConnection``, ``productVariants.prices``, ``pricelists``); nothing new is asked of Centra."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.connectors.centra.client import CentraClient
from pipelines.connectors.centra.models import CentraPricelist, CentraSize, CentraVariantPrice


@dataclass(frozen=True)
class CentraCatalog:
    sizes: tuple[CentraSize, ...]
    prices: tuple[CentraVariantPrice, ...]
    pricelists: tuple[CentraPricelist, ...]


def read_catalog(client: CentraClient) -> CentraCatalog:
    """Sizes, variant prices and price lists, as Centra has them now."""
    return CentraCatalog(sizes=tuple(client.product_sizes()), prices=tuple(client.variant_prices()),
                         pricelists=tuple(client.pricelists()))
