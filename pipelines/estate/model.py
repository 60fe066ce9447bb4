"""Typed view of the estate file (JSON, see README "The estate file").

The estate is configuration, not data: it says which NewStore fulfillment node is which Centra
warehouse, which market and price list a store sells in, and what the catalog is. Production code
reads it to map between platforms; the simulators read the same file to build their world.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pipelines.domain.erp.mapping import ErpMapping, mapping_from_dict


@dataclass(frozen=True)
class Warehouse:
    id: int
    name: str


@dataclass(frozen=True)
class Pricelist:
    id: int
    name: str
    currency: str
    store_id: int
    countries: tuple[str, ...]


@dataclass(frozen=True)
class Market:
    id: int
    name: str
    store_id: int
    countries: tuple[str, ...]
    allocation_rule_id: int
    pricelist_id: int


@dataclass(frozen=True)
class AllocationRule:
    id: int
    name: str
    warehouse_ids: tuple[int, ...]


@dataclass(frozen=True)
class CentraStore:
    id: int
    name: str
    type: str


@dataclass(frozen=True)
class CentraConfig:
    stores: tuple[CentraStore, ...]
    warehouses: tuple[Warehouse, ...]
    allocation_rules: tuple[AllocationRule, ...]
    pricelists: tuple[Pricelist, ...]
    markets: tuple[Market, ...]


@dataclass(frozen=True)
class Location:
    """A stock-holding place: a store or the distribution centre, known to both platforms."""

    id: str
    name: str
    kind: str  # "store" | "dc"
    country: str
    currency: str
    timezone: str
    newstore_node_id: str
    centra_warehouse_id: int
    centra_market_id: int | None = None
    centra_pricelist_id: int | None = None


Store = Location


@dataclass(frozen=True)
class CommercetoolsChannel:
    """A commercetools Channel: a stock location's supply channel (`location_id` set) or the web shop's price
    channel (roles `ProductDistribution`)."""

    key: str
    name: str
    roles: tuple[str, ...]
    location_id: str | None = None


@dataclass(frozen=True)
class CommercetoolsStore:
    """A commercetools Store: one per Centra-style market (country group), selling from supply channels."""

    key: str
    name: str
    market_id: int
    countries: tuple[str, ...]
    languages: tuple[str, ...]
    distribution_channel_keys: tuple[str, ...]
    supply_channel_keys: tuple[str, ...]


@dataclass(frozen=True)
class CommercetoolsConfig:
    """How the estate looks in commercetools: the project, its channels and stores. Prices come from the estate's
    price lists (one per currency, per country it covers, on the web channel)."""

    project_key: str
    channels: tuple[CommercetoolsChannel, ...]
    stores: tuple[CommercetoolsStore, ...]
    price_channel_key: str = "web"

    @cached_property
    def channel_of_location(self) -> dict[str, str]:
        return {c.location_id: c.key for c in self.channels if c.location_id}

    @cached_property
    def location_of_channel(self) -> dict[str, str]:
        return {c.key: c.location_id for c in self.channels if c.location_id}

    @cached_property
    def store_of_market(self) -> dict[int, CommercetoolsStore]:
        return {s.market_id: s for s in self.stores}


@dataclass(frozen=True)
class Size:
    size_id: int  # Centra ProductSize id
    size: str
    sku: str
    ean: str
    active: bool = True


@dataclass(frozen=True)
class Variant:
    variant_id: int
    variant_number: str
    name: str
    prices: dict[int, float]  # pricelist id -> unit price incl. tax
    sizes: tuple[Size, ...]


@dataclass(frozen=True)
class Product:
    product_id: int
    product_number: str
    name: str
    variants: tuple[Variant, ...]
    bundle: bool = False  # the commerce platform sells it as a bundle of other products (the ERP explodes it)


@dataclass(frozen=True)
class SizeRef:
    """A size with its product and variant, as looked up by SKU."""

    product: Product
    variant: Variant
    size: Size


@dataclass
class Estate:
    name: str
    seed: int
    base_currency: str
    business_timezone: str
    fx_to_base: dict[str, float]
    tax_rates: dict[str, float]
    centra: CentraConfig
    locations: tuple[Location, ...]
    catalog: tuple[Product, ...]
    initial_stock: dict[str, dict[str, int]] = field(default_factory=dict)  # node id -> sku -> qty
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    commerce_platform: str = "centra"  # "centra" | "commercetools": which commerce platform the retailer runs
    commercetools: CommercetoolsConfig | None = None

    @property
    def stores(self) -> tuple[Location, ...]:
        return tuple(loc for loc in self.locations if loc.kind == "store")

    @property
    def distribution_centre(self) -> Location:
        return next(loc for loc in self.locations if loc.kind == "dc")

    @cached_property
    def by_node(self) -> dict[str, Location]:
        return {loc.newstore_node_id: loc for loc in self.locations}

    @cached_property
    def by_location_id(self) -> dict[str, Location]:
        return {loc.id: loc for loc in self.locations}

    def location_of(self, ref: str | None) -> Location | None:
        """A location by NewStore fulfillment node id or by store/location id."""
        if not ref:
            return None
        return self.by_node.get(ref) or self.by_location_id.get(ref)

    @cached_property
    def by_warehouse(self) -> dict[int, Location]:
        return {loc.centra_warehouse_id: loc for loc in self.locations}

    @cached_property
    def by_sku(self) -> dict[str, SizeRef]:
        return {
            s.sku: SizeRef(p, v, s) for p in self.catalog for v in p.variants for s in v.sizes
        }

    @cached_property
    def by_ean(self) -> dict[str, SizeRef]:
        return {ref.size.ean: ref for ref in self.by_sku.values()}

    @cached_property
    def pricelists(self) -> dict[int, Pricelist]:
        return {p.id: p for p in self.centra.pricelists}

    @cached_property
    def markets(self) -> dict[int, Market]:
        return {m.id: m for m in self.centra.markets}

    def price(self, sku: str, pricelist_id: int) -> float:
        return self.by_sku[sku].variant.prices[pricelist_id]

    def to_base(self, amount: float, currency: str) -> float:
        return round(amount * self.fx_to_base[currency], 2)

    def skus(self) -> list[str]:
        return list(self.by_sku)

    @cached_property
    def erp(self) -> ErpMapping | None:
        """The ERP mapping (the estate's `erp` section); None when the retailer runs no ERP."""
        bundles = frozenset(s.sku for p in self.catalog if p.bundle for v in p.variants for s in v.sizes)
        return mapping_from_dict(self.raw.get("erp"), bundles)


def _tuple(items: list[Any], cls: type, **conv: Any) -> tuple:
    out = []
    for item in items:
        data = dict(item)
        for key, fn in conv.items():
            if key in data:
                data[key] = fn(data[key])
        out.append(cls(**data))
    return tuple(out)


def estate_from_dict(data: dict[str, Any]) -> Estate:
    c = data["centra"]
    centra = CentraConfig(
        stores=_tuple(c["stores"], CentraStore),
        warehouses=_tuple(c["warehouses"], Warehouse),
        allocation_rules=_tuple(c["allocation_rules"], AllocationRule, warehouse_ids=tuple),
        pricelists=_tuple(c["pricelists"], Pricelist, countries=tuple),
        markets=_tuple(c["markets"], Market, countries=tuple),
    )
    catalog = tuple(
        Product(
            product_id=p["product_id"],
            product_number=p["product_number"],
            name=p["name"],
            bundle=bool(p.get("bundle", False)),
            variants=tuple(
                Variant(
                    variant_id=v["variant_id"],
                    variant_number=v["variant_number"],
                    name=v["name"],
                    prices={int(k): float(x) for k, x in v["prices"].items()},
                    sizes=_tuple(v["sizes"], Size),
                )
                for v in p["variants"]
            ),
        )
        for p in data["catalog"]
    )
    return Estate(
        name=data["name"],
        seed=data["seed"],
        base_currency=data["base_currency"],
        business_timezone=data["business_timezone"],
        fx_to_base={k: float(v) for k, v in data["fx_to_base"].items()},
        tax_rates={k: float(v) for k, v in data["tax_rates"].items()},
        centra=centra,
        locations=_tuple(data["locations"], Location),
        catalog=catalog,
        initial_stock=data.get("initial_stock", {}),
        raw=data,
        commerce_platform=data.get("commerce_platform", "centra"),
        commercetools=_commercetools(data.get("commercetools")),
    )


COMMERCE_PLATFORMS = ("centra", "commercetools")


def _commercetools(data: dict[str, Any] | None) -> CommercetoolsConfig | None:
    if not data:
        return None
    return CommercetoolsConfig(
        project_key=data["project_key"],
        channels=_tuple(data["channels"], CommercetoolsChannel, roles=tuple),
        stores=_tuple(data["stores"], CommercetoolsStore, countries=tuple, languages=tuple,
                      distribution_channel_keys=tuple, supply_channel_keys=tuple),
        price_channel_key=data.get("price_channel_key", "web"),
    )


def load_estate(path: str | Path) -> Estate:
    with open(path, encoding="utf-8") as fh:
        return estate_from_dict(json.load(fh))
