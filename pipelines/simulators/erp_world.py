"""The ERP in the simulated world: a Business Central company seeded from the estate, the web shop's orders as the
world places them when an ERP owns fulfilment, and the warehouse staff who post the shipments.

- `seed_company(state, estate)`: one BC company holding what the estate's `erp` section (the mapping the product
  reads) says the ERP holds: an item per catalogue SKU numbered as the mapping names it (by default the SKU; an item
  variant where the mapping names one) with the DC's initial stock as its inventory; bundle products are NOT items
  (their components are); a customer per commerce market, numbered as `erp.customers` says, in the currency the
  mapping gives the market's currency; the tax codes of `erp.tax_codes` with their percent; the G/L accounts the
  shipping line and the store sales journal use.
- `ErpCentraTrading`: the trading generator's web shop on Centra when an ERP owns fulfilment: a web order
  (allocated from the DC) is confirmed when placed (its payment is authorised at checkout), so it becomes verified
  for the product's order-to-ERP flow; the trading generator's own "ship it in Centra" does nothing for it (the
  ERP user ships it and the product's fulfilment flow tells Centra). Returns of web orders to the DC are left out
  (a BC sales return order is outside issue 15). Click-and-collect orders are the stores' business, as before.
- `ErpUser`: the warehouse. It ships the open or released sales orders it finds (the world's web orders only, by
  default every order) after a delay drawn from `ship_after_s`, a share of them (`partial_share`, orders of two units
  or more) in two shipments, each with a package tracking number and a shipping agent code, through the simulator's
  world API `state.ship_order` (a posted sales shipment). `late_share`/`late_s` post a share of the shipments with
  late publication (the simulator's `published_late_s`). `shipments` records what was posted and when (the
  benchmarks' oracle).

Field sources and assumptions: `pipelines/simulators/businesscentral/PROVENANCE.md`; the shipping agent codes and
tracking number shapes here are ASSUMPTION (BC's Shipping Agent table is configuration; any code of up to 10
characters; Package Tracking No. is free text).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.estate.model import Estate, Location
from pipelines.simulators.businesscentral.state import BcError, BusinessCentralState
from pipelines.simulators.trading import CentraTrading

log = logging.getLogger(__name__)

COMPANY_NAME = "Nordlys Lifestyle AB"
#: Shipping agent codes the warehouse uses (ASSUMPTION: BC Shipping Agent codes are set up per company).
CARRIERS = ("DHL", "POSTNORD", "UPS")


# ------------------------------------------------------------------ seeding


@dataclass(frozen=True)
class SeededCompany:
    company_id: str
    customers: dict[int, str]  # commerce market id -> ERP customer number
    items: dict[str, str]  # ERP item number -> item id
    variants: dict[tuple[str, str], str]  # (item number, variant code) -> item variant id
    inventory: dict[str, int]  # ERP item number -> the inventory it was seeded with
    tax_codes: dict[str, float]  # ERP tax code -> percent
    accounts: tuple[str, ...]  # G/L accounts seeded


def company_accounts(estate: Estate) -> dict[str, str]:
    """The G/L accounts the estate's ERP mapping posts to (number -> name)."""
    mapping = estate.erp
    if mapping is None:
        return {}
    out: dict[str, str] = {}
    if mapping.shipping_account:
        out[mapping.shipping_account] = "Freight charged to customers"
    journal = mapping.sales_journal
    if journal is not None:
        out[journal.revenue_account] = "Sales, retail stores"
        out[journal.discount_account] = "Discounts granted"
        out[journal.vat_account] = "Sales VAT"
        out[journal.default_balancing_account] = "Cash, stores"
        for location_id, account in journal.balancing_accounts.items():
            out[account] = f"Cash, {location_id}"
    return out


def _set_tax_percent(state: BusinessCentralState, code: str, percent: float) -> None:
    """The simulator's VAT setup for one tax code (its `tax_percents` knob: VAT posting setup is configuration, not
    API; see PROVENANCE.md)."""
    state.tax_percents[code] = percent
    if code not in state.tax_codes:
        state.tax_codes = (*state.tax_codes, code)


def seed_company(state: BusinessCentralState, estate: Estate, *, name: str = COMPANY_NAME,
                 company_id: str | None = None) -> SeededCompany:
    """A BC company holding what the estate's `erp` section says the ERP holds (see the module docstring)."""
    mapping = estate.erp
    if mapping is None:
        raise ValueError("the estate has no erp section (generate it with erp=True)")
    company = state.add_company(name, company_id)
    cid = company.id
    dc = estate.location_of(mapping.dc_location_id) or estate.distribution_centre
    local = dc.currency
    dc_stock = estate.initial_stock.get(dc.newstore_node_id, {})
    local_pl = next((p.id for p in estate.centra.pricelists if p.currency == local), None)
    tax_local = estate.tax_rates.get(dc.country, 0.0)

    tax_codes = {code: float(key) for key, code in mapping.tax_codes.items()}
    for code, percent in tax_codes.items():
        _set_tax_percent(state, code, percent)
    wanted = set(mapping.currencies.values())
    state.currencies = tuple(dict.fromkeys((*state.currencies, *sorted(wanted))))

    items: dict[str, str] = {}
    variants: dict[tuple[str, str], str] = {}
    inventory: dict[str, int] = {}
    for product in estate.catalog:
        if product.bundle:
            continue  # the ERP holds the components, not the bundle
        for variant in product.variants:
            for size in variant.sizes:
                ref = mapping.item_of(size.sku)
                inventory[ref.number] = inventory.get(ref.number, 0) + int(dc_stock.get(size.sku, 0))
                if ref.number not in items:
                    price = variant.prices.get(local_pl, 0.0) if local_pl is not None else 0.0
                    items[ref.number] = state.add_item(
                        cid, ref.number, f"{product.name} {variant.name} {size.size}"[:100],
                        unit_price=round(price / (1 + tax_local), 2))["id"]
                if ref.variant_code and (ref.number, ref.variant_code) not in variants:
                    variants[(ref.number, ref.variant_code)] = state.add_item_variant(
                        cid, items[ref.number], ref.variant_code, f"{variant.name} {size.size}")["id"]
    for number, quantity in inventory.items():  # the DC's stock: the world's opening balance in the ERP
        state.set_inventory(cid, number, quantity)

    customers: dict[int, str] = {}
    for market in estate.centra.markets:
        number = mapping.customer(market.id)
        if number is None:
            continue
        currency = estate.pricelists[market.pricelist_id].currency
        code = mapping.currency(currency)
        country = market.countries[0] if market.countries else ""
        state.add_customer(cid, {"number": number, "displayName": f"Web shop {country or market.name}",
                                 "currencyCode": code if code is not None else currency,
                                 "email": f"webshop-{country.lower() or market.id}@nordlys.example"})
        customers[market.id] = number

    seeded = tuple(state.add_account(cid, number, display_name=title)["number"]
                   for number, title in company_accounts(estate).items())
    return SeededCompany(company_id=cid, customers=customers, items=items, variants=variants, inventory=inventory,
                         tax_codes=tax_codes, accounts=seeded)


# ------------------------------------------------------------------ the web shop's orders with an ERP


class ErpCentraTrading(CentraTrading):
    """Centra as the trading generator's web shop when an ERP owns fulfilment (see the module docstring)."""

    def __init__(self, centra: Any, estate: Estate) -> None:
        super().__init__(centra)
        self.dc_warehouse = estate.distribution_centre.centra_warehouse_id
        self.web_orders: dict[str, datetime] = {}  # Centra order number (the ERP's external ref) -> confirmed at
        self.lock = threading.Lock()
        self.skipped_returns = 0

    def _ships_from_dc(self, allocate_from: tuple[int, ...] | None) -> bool:
        return allocate_from is None or tuple(allocate_from) == (self.dc_warehouse,)

    def place_order(self, market: Any, lines: list[tuple[str, int]], email: str, at: datetime,
                    allocate_from: tuple[int, ...] | None, **kwargs: Any) -> int | None:
        number = super().place_order(market, lines, email, at, allocate_from, **kwargs)
        if number is not None and self._ships_from_dc(allocate_from) and "shipping_option" not in kwargs:
            self.state.confirm_order(number)
            with self.lock:
                self.web_orders[str(number)] = at
        return number

    def is_web_order(self, external_ref: str) -> bool:
        with self.lock:
            return external_ref in self.web_orders

    def ship(self, number: int, at: datetime) -> None:
        if self.is_web_order(str(number)):
            return  # the ERP's warehouse ships it; the product's fulfilment flow tells Centra
        super().ship(number, at)

    def return_online(self, number: int, lines: list, at: datetime, restock_location: Location) -> None:
        if self.is_web_order(str(number)):
            self.skipped_returns += 1  # a return into the ERP's DC is a BC sales return order: not modelled
            return
        super().return_online(number, lines, at, restock_location)

    def mirror_store_return(self, number: int, lines: list, at: datetime) -> None:
        order = self.state.orders.get(int(number))
        if order is not None and not any(ln.shipped for ln in order.lines):
            self.skipped_returns += 1  # not shipped by the ERP yet: nothing to return
            return
        super().mirror_store_return(number, lines, at)


def place_order_taxed(centra: Any, market_id: int, lines: list[tuple[str, int]], tax_percent: float, *,
                      email: str, confirm: bool = True) -> int:
    """A Centra web order whose lines are taxed at `tax_percent` (e.g. a reduced rate the estate's ERP mapping lacks:
    the fault "unmapped tax code"). Placed, re-taxed before anything reads it, then confirmed. Returns its number."""
    with centra.lock:
        number = int(centra.place_order(market_id, lines, email=email)["number"])
        order = centra.orders[number]
        for line in order.lines:
            line.tax_percent = round(float(tax_percent), 2)
    if confirm:
        centra.confirm_order(number)
    return number


# ------------------------------------------------------------------ world-side faults


def unmap_bundle(estate_file: Path, sku: str | None = None) -> str:
    """Remove one bundle's entry from the estate file's `erp.bundles` (the fault "bundle without a mapping"); the
    product reads the file anew. Returns the bundle SKU."""
    data = json.loads(Path(estate_file).read_text(encoding="utf-8"))
    bundles = data["erp"]["bundles"]
    sku = sku or sorted(bundles)[0]
    del bundles[sku]
    tmp = Path(estate_file).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(estate_file)
    return sku


def set_customer_currency(state: BusinessCentralState, company_id: str, customer_number: str,
                          currency_code: str) -> None:
    """Someone changes an ERP customer's currency (the fault "currency mismatch": the market's web orders no longer
    match the customer they are sold to)."""
    with state.lock:
        for customer in state.company(company_id).sets["customers"].values():
            if customer["number"] == customer_number:
                customer["currencyCode"] = currency_code
                state.touch(customer)
                return
    raise KeyError(customer_number)


# ------------------------------------------------------------------ the warehouse


@dataclass
class ErpUserConfig:
    seed: int = 15
    ship_after_s: tuple[float, float] = (5.0, 20.0)  # from when the user first sees the order
    partial_share: float = 0.25  # orders of two units or more shipped in two shipments
    second_after_s: tuple[float, float] = (5.0, 20.0)  # the rest, after the first shipment
    carriers: tuple[str, ...] = CARRIERS
    late_share: float = 0.0  # shipments posted with late publication (the simulator's knob)
    late_s: float = 0.0  # how late (seconds)


@dataclass
class PostedShipment:
    shipment_id: str
    number: str
    order_id: str
    order_number: str
    external_ref: str
    posted_at: datetime  # wall clock (UTC) when it was posted
    tracking_number: str
    carrier: str
    quantities: dict[int, float]  # order line sequence -> quantity shipped
    part: int  # 1, or 2 for the rest of a partial
    late_s: float = 0.0


@dataclass
class _Plan:
    order_id: str
    due: datetime
    first: dict[int, float] | None  # None: everything outstanding in one shipment
    part: int = 1


@dataclass
class ErpUser:
    """The ERP's warehouse (see the module docstring). `step(now)` does what is due; `run(stop)` loops."""

    state: BusinessCentralState
    company_id: str
    config: ErpUserConfig = field(default_factory=ErpUserConfig)
    ships: Callable[[str], bool] | None = None  # which orders (by external ref) this warehouse ships; None: all
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    shipments: list[PostedShipment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.lock = threading.Lock()
        self._plans: dict[str, _Plan] = {}
        self._seq = 0
        self.errors = 0

    def _outstanding(self, order_id: str) -> list[dict[str, Any]]:
        return [ln for ln in self.state.order_lines(self.company_id, order_id)
                if ln["quantity"] - ln["shippedQuantity"] > 0]

    def _plan(self, order: dict[str, Any], now: datetime) -> _Plan:
        due = now + timedelta(seconds=self.rng.uniform(*self.config.ship_after_s))
        lines = self._outstanding(order["id"])
        items = [ln for ln in lines if ln["lineType"] == "Item"]
        units = sum(ln["quantity"] - ln["shippedQuantity"] for ln in items)
        first = None
        if units >= 2 and self.rng.random() < self.config.partial_share:
            want, first = int(units // 2), {}
            for ln in items:  # the first half of the units, in line order; the rest (and charges) later
                take = min(want, ln["quantity"] - ln["shippedQuantity"])
                if take > 0:
                    first[ln["sequence"]] = float(take)
                    want -= int(take)
        return _Plan(order["id"], due, first)

    def pending(self) -> int:
        """Orders this warehouse still has to ship (seen and not fully shipped)."""
        with self.lock:
            return len(self._plans)

    def step(self, now: datetime | None = None) -> list[PostedShipment]:
        """Plan newly seen orders, post the shipments that are due. Returns what was posted."""
        now = now or self.clock()
        with self.state.lock:
            orders = [dict(o) for o in self.state.company(self.company_id).sets["salesOrders"].values()
                      if not o["fullyShipped"] and o["status"] in ("Open", "Released")]
        posted: list[PostedShipment] = []
        with self.lock:
            for order in orders:
                if order["id"] in self._plans:
                    continue
                if self.ships is not None and not self.ships(order["externalDocumentNumber"]):
                    continue
                self._plans[order["id"]] = self._plan(order, now)
            for order_id, plan in sorted(self._plans.items(), key=lambda kv: kv[1].due):
                if plan.due > now:
                    continue
                shipment = self._post(plan, now)
                if shipment is None:
                    self._plans.pop(order_id, None)
                    continue
                posted.append(shipment)
                if plan.first is not None and plan.part == 1:
                    plan.part, plan.first = 2, None
                    plan.due = now + timedelta(seconds=self.rng.uniform(*self.config.second_after_s))
                else:
                    self._plans.pop(order_id, None)
        return posted

    def ship_now(self, order_id: str, *, late_s: float = 0.0) -> PostedShipment | None:
        """Post everything outstanding of one order at once (a fault scenario: `late_s` publishes it late)."""
        with self.lock:
            self._plans.pop(order_id, None)
            return self._post(_Plan(order_id, self.clock(), None), self.clock(), late_s=late_s)

    def _post(self, plan: _Plan, now: datetime, late_s: float | None = None) -> PostedShipment | None:
        if not self._outstanding(plan.order_id):
            return None
        self._seq += 1
        carrier = self.rng.choice(self.config.carriers)
        tracking = f"{carrier[:3]}{self._seq:06d}{self.rng.randrange(10**6):06d}"
        if late_s is None:
            late_s = self.config.late_s if self.rng.random() < self.config.late_share else 0.0
        kwargs: dict[str, Any] = {"package_tracking_number": tracking, "shipping_agent_code": carrier}
        if late_s:
            kwargs["published_late_s"] = late_s
        try:
            doc = self.state.ship_order(self.company_id, plan.order_id, plan.first, **kwargs)
        except (BcError, KeyError) as exc:  # the order changed under us (deleted, over-shipped): nothing posted
            log.warning("erp user: order %s not shipped: %s", plan.order_id, exc)
            self.errors += 1
            return None
        quantities = {int(ln["sequence"]): float(ln["quantity"]) for ln in self.state.company(
            self.company_id).sets["salesShipmentLines"].values() if ln["documentId"] == doc["id"]}
        shipment = PostedShipment(shipment_id=doc["id"], number=doc["number"], order_id=plan.order_id,
                                  order_number=doc["orderNumber"], external_ref=doc["externalDocumentNumber"],
                                  posted_at=now, tracking_number=tracking, carrier=carrier, quantities=quantities,
                                  part=plan.part, late_s=late_s)
        self.shipments.append(shipment)
        return shipment

    def run(self, stop: threading.Event, tick_s: float = 1.0) -> None:
        """Work until `stop` is set (the devstack's live trading, the benchmarks)."""
        while not stop.wait(tick_s):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the simulated warehouse keeps working; logged
                log.exception("erp user: step failed")

