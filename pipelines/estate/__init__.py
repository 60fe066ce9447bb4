"""The estate: stores, warehouses, markets, price lists and catalog the pipeline maps between."""

from pipelines.estate.model import (
    CentraConfig,
    Estate,
    Location,
    Market,
    Pricelist,
    Product,
    Size,
    Store,
    Variant,
    Warehouse,
    load_estate,
)

__all__ = [
    "CentraConfig",
    "Estate",
    "Location",
    "Market",
    "Pricelist",
    "Product",
    "Size",
    "Store",
    "Variant",
    "Warehouse",
    "load_estate",
]
