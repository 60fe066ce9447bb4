"""`KioskPublisher`: the commerce platform's catalogue and each store's availability, published to Cloudshelf.

- `publish_locations()`: the kiosk stores as Cloudshelf locations (`upsertLocations`: `id` = the GlobalId
  `gid://external/Store/<location id>`, `displayName`, `countryCode`), those changed since their last publish.
- `publish_catalog(catalog)`: products and variants (`upsertProducts`, `upsertProductVariants`; inputs from
  `pipelines.domain.kiosk.catalog`), the SKUs whose inputs changed since their last publish (all with `full`); then
  the stock levels of newly published SKUs.
- `refresh_availability()`: reads the commerce platform's free-to-allocate for every kiosk SKU in the warehouses
  the kiosks sell from (the stock sync's `StockTarget.stock_view`: one page of every warehouse per request), and
  pushes the quantities that differ from those last published (`upsertStockLevels`). Online orders allocate stock
  in Centra without passing the sync: this is what catches them (every PIPELINES_KIOSK_REFRESH_S).
- `after_sync(keys)`: the always-on stock sync's hook (`StockSync(after_commit=...)`): the (warehouse, SKU) keys a
  pass committed; the (location, SKU) pairs they touch are re-read and what changed is pushed, so a store sale that
  takes the last unit off the shelf hides it on that store's kiosk within the sync's own latency.

Quantities: `pipelines.domain.kiosk.availability`. What was published: `pipelines.store.kiosk` (a value is recorded
only once Cloudshelf took it, so a failed push is sent again by the next refresh). A stock level is only sent for a
location and a SKU already published (Cloudshelf refuses a level for an unknown variant or location).

Two publishers (the sync's hook and the refresh) may overlap; each reads the commerce platform after the other's
write, so the last to read is right, and a value pushed out of order is corrected by the next refresh.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from pipelines.connectors.cloudshelf import CloudshelfClient, CloudshelfUserError, ids
from pipelines.connectors.cloudshelf.client import M_UPSERT_VARIANTS
from pipelines.domain.kiosk.availability import (
    KioskLocation,
    Pair,
    affected,
    catalog_pricelist,
    changes,
    kiosk_locations,
    quantities,
    stock_keys,
)
from pipelines.domain.kiosk.catalog import fingerprint, kiosk_variants, plan_catalog
from pipelines.estate import Estate
from pipelines.store import kiosk as state
from pipelines.sync.target import StockTarget

log = logging.getLogger("pipelines.kiosk")

#: Products per `upsertProducts` call, and products (with their variants) per `upsertProductVariants` call
#: (ASSUMPTION: Cloudshelf documents no batch limit; the client's `max_batch` is the same guess for stock levels).
PRODUCTS_PER_CALL = 100


@dataclass(frozen=True)
class KioskConfig:
    """Which locations have kiosks (None: the estate's stores; PIPELINES_KIOSK_LOCATIONS)."""

    locations: tuple[str, ...] | None = None


@dataclass
class AvailabilityReport:
    pairs: int = 0  # (location, SKU) pairs looked at
    keys_read: int = 0  # (warehouse, SKU) stock read from the commerce platform
    requests: int = 0  # commerce platform requests
    changed: int = 0  # levels that differed from the last published
    sent: int = 0  # levels Cloudshelf acknowledged
    hidden: int = 0  # changed levels now at 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "keys_read": self.keys_read, "commerce_requests": self.requests,
                "changed": self.changed, "sent": self.sent, "now_zero": self.hidden, "errors": len(self.errors)}


@dataclass
class CatalogReport:
    locations_sent: int = 0
    products_sent: int = 0
    variants_sent: int = 0
    unchanged: int = 0
    not_purchasable: int = 0
    rejected: int = 0
    pricelist_id: int | None = None
    availability: AvailabilityReport | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"locations_sent": self.locations_sent, "products_sent": self.products_sent,
                "variants_sent": self.variants_sent, "variants_unchanged": self.unchanged,
                "variants_not_purchasable": self.not_purchasable, "variants_rejected": self.rejected,
                "pricelist_id": self.pricelist_id if self.pricelist_id is not None else "none",
                "stock_levels_sent": self.availability.sent if self.availability else 0}


class KioskPublisher:
    """Publishes to one Cloudshelf organisation (see module docstring). `stock_target` is the stock sync's port to
    the commerce platform (read only here); `on_request` is called before each read of it (the sync's rate budget
    when the sync's hook calls)."""

    def __init__(self, engine: Engine, estate: Estate, stock_target: StockTarget | None, client: CloudshelfClient,
                 config: KioskConfig | None = None, *, on_request: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.estate = estate
        self.target = stock_target
        self.client = client
        self.config = config or KioskConfig()
        self.on_request = on_request or (lambda: None)
        self.locations: list[KioskLocation] = kiosk_locations(estate.locations, estate.markets,
                                                              estate.centra.allocation_rules, self.config.locations)
        self.pricelist_id = catalog_pricelist(self.locations)
        self._lock = threading.Lock()  # one push at a time per publisher

    # ------------------------------------------------------------------ locations and catalogue

    def location_inputs(self) -> dict[str, dict[str, Any]]:
        """Location id -> its `LocationInput`."""
        return {loc.location_id: {"id": ids.location_gid(loc.location_id), "displayName": loc.name,
                                  "countryCode": loc.country} for loc in self.locations}

    def publish_locations(self, *, full: bool = False) -> int:
        """Upsert the kiosk locations changed since their last publish; how many were sent."""
        inputs = self.location_inputs()
        prints = {k: fingerprint(v) for k, v in inputs.items()}
        known = {} if full else state.published_locations(self.engine)
        todo = [k for k in inputs if known.get(k) != prints[k]]
        if todo:
            self.client.upsert_locations([inputs[k] for k in todo])
            state.record_locations(self.engine, {k: prints[k] for k in todo})
        return len(todo)

    def publish_catalog(self, catalog: Any, *, full: bool = False) -> CatalogReport:
        """Locations, then the products and variants whose inputs changed (all with `full`), then the stock levels
        of SKUs published for the first time. `catalog`: the commerce platform's catalogue
        (`pipelines.connectors.centra.catalog.CentraCatalog`: sizes, variant prices, price lists)."""
        report = CatalogReport(pricelist_id=self.pricelist_id)
        report.locations_sent = self.publish_locations(full=full)
        prices: dict[int, dict[int, float]] = {}
        for p in catalog.prices:
            prices.setdefault(p.variant_id, {})[p.pricelist_id] = p.price
        variants = kiosk_variants(catalog.sizes, prices, self.pricelist_id, ids, master=self.estate.by_sku)
        published = state.published_variants(self.engine)
        plan = plan_catalog(variants, published, full=full)
        report.unchanged, report.not_purchasable = plan.unchanged, plan.not_purchasable
        by_product: dict[str, list[Any]] = {}
        for v in plan.variants:
            by_product.setdefault(v.product["id"], []).append(v)
        products = list(by_product)
        accepted: list[Any] = []
        for start in range(0, len(products), PRODUCTS_PER_CALL):
            chunk = products[start:start + PRODUCTS_PER_CALL]
            self.client.upsert_products([by_product[pid][0].product for pid in chunk])
            report.products_sent += len(chunk)
            accepted += self._upsert_variants({pid: by_product[pid] for pid in chunk}, report)
        state.record_variants(self.engine, accepted)
        report.variants_sent = len(accepted)
        new = {v.sku for v in accepted if v.sku not in published}
        if new:
            report.availability = self.refresh_availability(skus=new)
        return report

    def _upsert_variants(self, by_product: dict[str, list[Any]], report: CatalogReport) -> list[Any]:
        """One `upsertProductVariants` for these products' variants; the variants Cloudshelf took (userErrors
        are logged and counted; the refused variants are sent again by the next publish)."""
        inputs = [{"productId": pid, "variants": [v.variant for v in vs]} for pid, vs in by_product.items()]
        sent = [v for vs in by_product.values() for v in vs]
        payload = self.client.execute(M_UPSERT_VARIANTS, {"inputs": inputs}).get("upsertProductVariants") or {}
        errors = payload.get("userErrors") or []
        if not errors:
            return sent
        took = {ids.sku_of(v.get("id")) or v.get("sku") for v in payload.get("productVariants") or []}
        refused = [v for v in sent if v.sku not in took]
        report.rejected += len(refused)
        message = str(CloudshelfUserError("upsertProductVariants", list(errors)))
        report.errors.append(message)
        log.warning("kiosk catalogue: %d variant(s) refused: %s", len(refused), message)
        return [v for v in sent if v.sku in took]

    # ------------------------------------------------------------------ availability

    def published_pairs(self, skus: Iterable[str] | None = None) -> list[Pair]:
        """(location, SKU) pairs whose location and variant are both on Cloudshelf (`skus`: only these)."""
        locations = set(state.published_locations(self.engine))
        variants = set(state.published_variants(self.engine, None if skus is None else set(skus)))
        return [(loc.location_id, sku) for loc in self.locations if loc.location_id in locations
                for sku in sorted(variants)]

    def refresh_availability(self, skus: Iterable[str] | None = None) -> AvailabilityReport:
        """Every published pair (or those of `skus`): read, compare, push the differences."""
        pairs = self.published_pairs(skus)
        return self._publish(pairs, whole_table=skus is None)

    def after_sync(self, keys: set[tuple[int, str]]) -> AvailabilityReport:
        """The stock sync committed these (warehouse, SKU) keys: push the kiosk quantities they changed."""
        touched = affected(self.locations, keys)
        if not touched:
            return AvailabilityReport()
        published = set(self.published_pairs({sku for _, sku in touched}))
        return self._publish(sorted(touched & published), whole_table=False)

    def _publish(self, pairs: Sequence[Pair], *, whole_table: bool) -> AvailabilityReport:
        report = AvailabilityReport(pairs=len(pairs))
        if not pairs:
            return report
        if self.target is None:
            raise RuntimeError("the kiosk publisher has no commerce platform to read stock from")
        keys = stock_keys(self.locations, pairs)
        report.keys_read = len(keys)

        def on_request() -> None:
            report.requests += 1
            self.on_request()

        with self._lock:
            view = self.target.stock_view(keys, on_request)
            wanted = quantities(self.locations, pairs, {k: free for k, (_, free) in view.items()})
            last = state.published_levels(self.engine, None if whole_table else pairs)
            diff = changes(wanted, last)
            report.changed = len(diff)
            report.hidden = sum(1 for q in diff.values() if q <= 0)
            if diff:
                ordered = sorted(diff.items(), key=lambda kv: (kv[1] > 0, kv[0]))  # the zeros (oversell risks) first
                try:
                    report.sent = self.client.upsert_stock_levels(
                        [(ids.location_gid(loc), ids.variant_gid(sku), q) for (loc, sku), q in ordered])
                except CloudshelfUserError as exc:
                    report.errors.append(str(exc))
                    log.warning("kiosk stock levels refused: %s", exc)
                    return report
                state.record_levels(self.engine, diff)
        return report
