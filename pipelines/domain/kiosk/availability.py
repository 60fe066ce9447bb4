"""What a Cloudshelf kiosk at a store may sell, per (store location, SKU).

A shopper at the kiosk can take a unit home from the store's shelf or have it shipped by the web shop, so the kiosk
quantity is what the store's own warehouse can give plus what the store market's allocation rule can ship:

    quantity(L, sku) = free(W_L, sku) + sum(free(W, sku) for W in rule(market(L)) if W != W_L)

with `free` the commerce platform's free-to-allocate (Centra's `freeToAllocateQuantity`; negative or unknown counts
as 0). Cloudshelf compares the quantity with the organisation's safety stock to show the variant in stock or not
(`StockLevelInput.quantity`, Cloudshelf's generated types).

`kiosk_locations` reads the estate (a location's market -> its allocation rule -> the rule's warehouses, as
`estate.centra.allocation_rules` models them and the stock sync's `selling_groups` reads them); `affected` says
which (location, SKU) pairs a change of (warehouse, SKU) touches, `stock_keys` which (warehouse, SKU) stock the
quantities of those pairs need, `quantities` computes them and `changes` keeps only what differs from what was last
published (only changes go out).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Pair = tuple[str, str]  # (estate location id, SKU)
Key = tuple[int, str]  # (warehouse id, SKU)


class _Location(Protocol):
    id: str
    name: str
    kind: str
    country: str
    currency: str
    centra_warehouse_id: int
    centra_market_id: int | None
    centra_pricelist_id: int | None


class _Market(Protocol):
    id: int
    allocation_rule_id: int


class _Rule(Protocol):
    id: int
    warehouse_ids: tuple[int, ...]


@dataclass(frozen=True)
class KioskLocation:
    """A store with a kiosk: its own warehouse, the other warehouses its market's allocation rule ships from, and
    the price list it sells from."""

    location_id: str
    name: str
    country: str
    currency: str
    warehouse_id: int
    rule_warehouse_ids: tuple[int, ...]  # the rule's warehouses other than the store's own
    pricelist_id: int | None

    @property
    def warehouses(self) -> tuple[int, ...]:
        return (self.warehouse_id, *self.rule_warehouse_ids)


def kiosk_locations(locations: Sequence[_Location], markets: Mapping[int, _Market], rules: Iterable[_Rule],
                    only: Sequence[str] | None = None) -> list[KioskLocation]:
    """The kiosk locations: the estate's stores (kind "store"), or exactly the location ids in `only`
    (PIPELINES_KIOSK_LOCATIONS; an id the estate does not know is a ValueError, never skipped silently).

    A location whose market is unknown (or has no market) ships nothing online: its kiosk sells the shelf only."""
    by_id = {loc.id: loc for loc in locations}
    if only:
        unknown = [i for i in only if i not in by_id]
        if unknown:
            raise ValueError(f"kiosk locations not in the estate: {', '.join(unknown)}")
        chosen = [by_id[i] for i in dict.fromkeys(only)]
    else:
        chosen = [loc for loc in locations if loc.kind == "store"]
    rule_warehouses = {r.id: tuple(r.warehouse_ids) for r in rules}
    out = []
    for loc in chosen:
        market = markets.get(loc.centra_market_id) if loc.centra_market_id is not None else None
        rule = rule_warehouses.get(market.allocation_rule_id, ()) if market is not None else ()
        others = tuple(dict.fromkeys(w for w in rule if w != loc.centra_warehouse_id))
        out.append(KioskLocation(loc.id, loc.name, loc.country, loc.currency, loc.centra_warehouse_id, others,
                                 loc.centra_pricelist_id))
    return out


def readers(locations: Iterable[KioskLocation]) -> dict[int, list[str]]:
    """Warehouse -> the kiosk locations whose quantity reads it (its own store, and every store whose rule ships
    from it)."""
    out: dict[int, list[str]] = defaultdict(list)
    for loc in locations:
        for w in loc.warehouses:
            out[w].append(loc.location_id)
    return dict(out)


def affected(locations: Iterable[KioskLocation], keys: Iterable[Key]) -> set[Pair]:
    """The (location, SKU) pairs whose kiosk quantity a change of these (warehouse, SKU) keys can change."""
    by_warehouse = readers(locations)
    return {(loc, sku) for w, sku in keys for loc in by_warehouse.get(w, ())}


def stock_keys(locations: Iterable[KioskLocation], pairs: Iterable[Pair]) -> set[Key]:
    """The (warehouse, SKU) stock the quantities of `pairs` are computed from."""
    by_id = {loc.location_id: loc for loc in locations}
    return {(w, sku) for loc_id, sku in pairs if loc_id in by_id for w in by_id[loc_id].warehouses}


def quantities(locations: Iterable[KioskLocation], pairs: Iterable[Pair],
               free: Mapping[Key, int]) -> dict[Pair, int]:
    """The kiosk quantity of each pair (module docstring); a key `free` lacks counts as 0 (nothing to sell)."""
    by_id = {loc.location_id: loc for loc in locations}
    out: dict[Pair, int] = {}
    for loc_id, sku in pairs:
        loc = by_id.get(loc_id)
        if loc is None:
            continue
        out[(loc_id, sku)] = sum(max(0, int(free.get((w, sku), 0))) for w in loc.warehouses)
    return out


def changes(wanted: Mapping[Pair, int], published: Mapping[Pair, int]) -> dict[Pair, int]:
    """The pairs whose quantity differs from the one last published (never published counts as different)."""
    return {pair: qty for pair, qty in wanted.items() if published.get(pair) != qty}


def catalog_pricelist(locations: Iterable[KioskLocation]) -> int | None:
    """The price list the kiosk catalogue's prices come from: Cloudshelf keeps one price per variant for the
    organisation, so the price list most kiosk locations sell from (ties: the lowest id). ASSUMPTION (Cloudshelf's
    ProductVariantInput has one currentPrice/originalPrice): an estate whose kiosks sell in several currencies runs
    one Cloudshelf organisation per currency."""
    counts = Counter(loc.pricelist_id for loc in locations if loc.pricelist_id is not None)
    if not counts:
        return None
    return min(counts, key=lambda pl: (-counts[pl], pl))
