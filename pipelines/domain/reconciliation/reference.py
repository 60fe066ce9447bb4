"""Small reference frames built from the estate: the stores and their price lists."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipelines.estate import Estate

LOCATION_COLUMNS = ["location_id", "fulfillment_node_id", "warehouse_id", "currency", "country", "pricelist_id",
                    "tax_rate", "fx_to_base"]
PRICE_COLUMNS = ["pricelist_id", "sku", "price"]


@dataclass(frozen=True)
class Reference:
    """The reference data of a reconciliation.

    locations: one row per *store* (the DC is not a POS location), columns LOCATION_COLUMNS; tax_rate is
        the store country's rate as a fraction (0.25), fx_to_base multiplies a store-currency amount into
        the base currency.
    prices: unit prices incl. tax per (pricelist_id, sku), columns PRICE_COLUMNS.
    fx_to_base: every currency's rate to the base currency (orders may be in a non-store currency).
    tax_rates: every tax rate of the estate, ascending (store-sales tax-rate derivation snaps to these).
    """

    locations: pd.DataFrame
    prices: pd.DataFrame
    base_currency: str = "EUR"
    fx_to_base: dict[str, float] = field(default_factory=dict)
    tax_rates: tuple[float, ...] = ()

    @classmethod
    def of(cls, locations: pd.DataFrame, prices: pd.DataFrame, base_currency: str = "EUR",
           fx_to_base: dict[str, float] | None = None, tax_rates: tuple[float, ...] | None = None) -> Reference:
        """From hand-built frames; fx and tax rates default to those of the locations."""
        locations = normalise_locations(locations)
        fx = dict(fx_to_base or {}) or dict(zip(locations["currency"], locations["fx_to_base"], strict=True))
        rates = tax_rates if tax_rates is not None else tuple(sorted(set(locations["tax_rate"].astype(float))))
        return cls(locations, normalise_prices(prices), base_currency, fx, tuple(float(r) for r in rates))


def normalise_locations(df: pd.DataFrame) -> pd.DataFrame:
    out = df[LOCATION_COLUMNS].copy()
    out["location_id"] = out["location_id"].astype(str)
    out["fulfillment_node_id"] = out["fulfillment_node_id"].astype(str)
    out["warehouse_id"] = out["warehouse_id"].astype("int64")
    out["pricelist_id"] = out["pricelist_id"].astype("Int64")
    out["tax_rate"] = out["tax_rate"].astype(float)
    out["fx_to_base"] = out["fx_to_base"].astype(float)
    return out.reset_index(drop=True)


def normalise_prices(df: pd.DataFrame) -> pd.DataFrame:
    out = df[PRICE_COLUMNS].copy()
    out["pricelist_id"] = out["pricelist_id"].astype("int64")
    out["sku"] = out["sku"].astype(str)
    out["price"] = out["price"].astype(float)
    return out.reset_index(drop=True)


def locations_frame(estate: Estate) -> pd.DataFrame:
    """The estate's stores as LOCATION_COLUMNS."""
    rows = [{
        "location_id": loc.id, "fulfillment_node_id": loc.newstore_node_id, "warehouse_id": loc.centra_warehouse_id,
        "currency": loc.currency, "country": loc.country, "pricelist_id": loc.centra_pricelist_id,
        "tax_rate": float(estate.tax_rates.get(loc.country, 0.0)), "fx_to_base": float(estate.fx_to_base[loc.currency]),
    } for loc in estate.stores]
    return normalise_locations(pd.DataFrame(rows, columns=LOCATION_COLUMNS))


def prices_frame(estate: Estate) -> pd.DataFrame:
    """Every (pricelist, SKU) price of the catalog, as PRICE_COLUMNS."""
    pl, skus, prices = [], [], []
    for product in estate.catalog:
        for variant in product.variants:
            for pricelist_id, price in variant.prices.items():
                for size in variant.sizes:
                    pl.append(pricelist_id)
                    skus.append(size.sku)
                    prices.append(price)
    return normalise_prices(pd.DataFrame({"pricelist_id": pl, "sku": skus, "price": prices}))


def build_reference(estate: Estate) -> Reference:
    """The reference frames of an estate."""
    return Reference(
        locations=locations_frame(estate),
        prices=prices_frame(estate),
        base_currency=estate.base_currency,
        fx_to_base=dict(estate.fx_to_base),
        tax_rates=tuple(sorted(set(float(r) for r in estate.tax_rates.values()))),
    )
