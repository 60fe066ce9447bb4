"""The trading generator: makes the simulated estate trade, and records the ground truth.

It drives the simulators' world APIs in-process (the world, not the integration): store sales and
returns happen in NewStore, online orders, shipments and returns in the estate's commerce platform (Centra, or
commercetools: one small adapter per platform, `CentraTrading` / `CommercetoolsTrading`). `simulate(start, end)`
produces a period's trading with past event times (history, tests); `run_live` keeps trading in
real time. Fault knobs inject the failures retailers suffer; each injected fault is recorded.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.connectors.cloudshelf.ids import location_gid, variant_gid
from pipelines.estate import Estate, Location
from pipelines.simulators.commercetools.common import CtError
from pipelines.simulators.ground_truth import GroundTruth

log = logging.getLogger(__name__)


@dataclass
class FaultConfig:
    """Rates in [0, 1], all off by default. Delivery faults are the event stream's own knobs."""

    unknown_sku: float = 0.0  # a store sale of a SKU the commerce catalog does not know
    missing_order_ref: float = 0.0  # an in-store return of an online order without its order reference
    wrong_price: float = 0.0  # a store sale at a price off the store's price list
    missing_centra_return: float = 0.0  # an in-store return of an online order never recorded in Centra
    refund_wrong_tax: float = 0.0  # an in-store refund of an online order with the wrong tax rate
    refund_wrong_amount: float = 0.0  # an in-store refund of an online order for 10 % less than Centra's
    line_wrong_tax: float = 0.0  # a store sale line taxed at the wrong rate
    uncollected_pickup_open: float = 0.0  # a click-and-collect pickup completed in store, order left open online


@dataclass
class TradingConfig:
    seed: int = 11
    store_sales_per_hour: float = 4.0  # per store, during opening hours
    opening_hours: tuple[int, int] = (9, 20)  # local time
    online_orders_per_hour: float = 12.0  # estate-wide
    store_return_share: float = 0.06  # share of store sales returned in store later
    online_return_share: float = 0.08  # share of shipped online orders returned to the DC
    online_return_in_store_share: float = 0.05  # share of shipped online orders returned in a store
    ship_after_hours: tuple[float, float] = (1.0, 20.0)
    return_after_days: tuple[float, float] = (1.0, 5.0)  # a returned online order comes back this long after shipping
    counts_per_store_per_day: float = 0.5
    click_collect_per_store_per_day: float = 1.0
    replenish_below: int = 1
    discount_share: float = 0.15
    # True: the world also plays today's integration (mirrors in-store returns of online orders into Centra,
    # injects click-and-collect orders into NewStore and ships them in Centra at handover). False: the customers
    # and stores only; the product's order flows do that work (pipelines/order_flows).
    world_integrates: bool = True
    pickup_option: str = "Click & Collect"  # the Centra shipping option of click-and-collect orders
    # Kiosk shoppers (live trading only, a world with Cloudshelf kiosks: `pipelines-dev --kiosks`): orders per store and
    # hour while it is open, a share of them for home delivery (the product creates the Centra order), the rest taken
    # home from the shelf (the product deducts Centra through the stock sync; the store system never hears of them).
    kiosk_orders_per_store_per_hour: float = 0.0
    kiosk_delivery_share: float = 0.5
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass(order=True)
class _Job:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


class CentraTrading:
    """The web shop on Centra (the Centra simulator's world API). Order numbers are Centra's (int)."""

    platform = "centra"  # the ground truth's platform name
    click_and_collect = True

    def __init__(self, centra: Any) -> None:
        self.state = centra  # simulators.centra state (world API)

    def place_order(self, market: Any, lines: list[tuple[str, int]], email: str, at: datetime,
                    allocate_from: tuple[int, ...] | None, **kwargs: Any) -> int | None:
        order = self.state.place_order(market.id, lines, email=email, created_at=at, allocate_from=allocate_from,
                                       **kwargs)
        return int(order["number"])

    def ship(self, number: int, at: datetime) -> None:
        self.state.ship_order(number, at=at)

    def return_online(self, number: int, lines: list, at: datetime, restock_location: Location) -> None:
        self.state.create_return(number, lines, at=at, restock_warehouse_id=restock_location.centra_warehouse_id,
                                 refund=True)

    def mirror_store_return(self, number: int, lines: list, at: datetime) -> None:
        self.state.create_return(number, lines, at=at, restock=False, refund=True)

    def free_to_sell(self, location: Location, sku: str) -> int:
        return self.state.stock_of(location.centra_warehouse_id, sku)["fta"]


class CommercetoolsTrading:
    """The web shop on commercetools (the commercetools simulator's world API and its state's update methods, as
    the shop front and the warehouse would write them). One commercetools Store per market (`web-<country>`),
    online orders from the DC's supply channel (`ReserveOnOrder`: a checkout the DC cannot serve fails with
    OutOfStock and is not placed). Order numbers are commercetools `orderNumber`s (str).

    Returns: `addReturnInfo` (shipment state Returned), a `Refund` transaction (Success) on the order's payment and
    return payment state Refunded; a return to the DC is also put back on stock (`addQuantity` on the DC's entry,
    return shipment state BackInStock). An in-store return mirrored into commercetools is not restocked there: the
    unit is back on the store's shelf and the stock sync carries it to the store's supply channel.
    Click-and-collect is not played on commercetools (`click_and_collect = False`): the estate's commercetools
    stores sell from the DC only, and a store-channel order would deduct the entry the stock sync owns."""

    platform = "commercetools"
    click_and_collect = False

    def __init__(self, state: Any, estate: Estate) -> None:
        if estate.commercetools is None:
            raise ValueError("the estate has no commercetools section")
        self.state = state  # simulators.commercetools state (world API)
        self.estate = estate
        self.config = estate.commercetools

    def place_order(self, market: Any, lines: list[tuple[str, int]], email: str, at: datetime,
                    allocate_from: tuple[int, ...] | None, **kwargs: Any) -> str | None:
        store = self.config.store_of_market[market.id]
        dc = self.estate.distribution_centre
        try:
            order = self.state.place_order(store.key, lines, email, created_at=at,
                                           supply_channel_key=self.config.channel_of_location[dc.id])
        except CtError as exc:
            if exc.code == "OutOfStock":
                return None
            raise
        return str(order["orderNumber"])

    def _order(self, number: str) -> dict[str, Any]:
        return self.state.get("orders", f"order-number={number}")

    def ship(self, number: str, at: datetime) -> None:
        self.state.ship_order(self._order(number)["id"], at=at)

    def _return(self, number: str, lines: list, at: datetime, back_in_stock: bool) -> None:
        with self.state.lock:
            order = self._order(number)
            by_sku = {li["variant"]["sku"]: li for li in order["lineItems"]}
            items = [{"lineItemId": by_sku[sku]["id"], "quantity": qty, "shipmentState": "Returned"}
                     for sku, qty in lines]
            order = self.state.update_order(order["id"], {"version": order["version"], "actions": [
                {"action": "addReturnInfo", "items": items, "returnDate": _iso(at)}]}, at=at)
            returned = order["returnInfo"][-1]["items"]
            actions = [{"action": "setReturnPaymentState", "returnItemId": r["id"], "paymentState": "Refunded"}
                       for r in returned]
            if back_in_stock:
                actions += [{"action": "setReturnShipmentState", "returnItemId": r["id"],
                             "shipmentState": "BackInStock"} for r in returned]
            self.state.update_order(order["id"], {"version": order["version"], "actions": actions}, at=at)
            cents = sum(by_sku[sku]["price"]["value"]["centAmount"] * qty for sku, qty in lines)
            currency = order["totalPrice"]["currencyCode"]
            for pay_ref in (order.get("paymentInfo") or {}).get("payments", [])[:1]:
                payment = self.state.get("payments", pay_ref["id"])
                self.state.update_payment(payment["id"], {"version": payment["version"], "actions": [
                    {"action": "addTransaction", "transaction": {
                        "type": "Refund", "amount": {"currencyCode": currency, "centAmount": cents},
                        "state": "Success", "timestamp": _iso(at)}}]}, at=at)
            if back_in_stock:
                for sku, qty in lines:
                    self._restock(sku, (by_sku[sku].get("supplyChannel") or {}).get("id"), qty)

    def _restock(self, sku: str, channel_id: str | None, qty: int) -> None:
        """`addQuantity` on the entry, resent with the new version on a 409 (the simulator's other-writer knob)."""
        for _ in range(20):
            entry = self.state._entry_for(sku, channel_id)
            if entry is None:
                return
            try:
                self.state.update_inventory(entry["id"], {"version": entry["version"], "actions": [
                    {"action": "addQuantity", "quantity": qty}]})
                return
            except CtError as exc:
                if exc.status != 409:
                    raise
        raise RuntimeError(f"restock of {sku} kept conflicting")

    def return_online(self, number: str, lines: list, at: datetime, restock_location: Location) -> None:
        self._return(number, lines, at, back_in_stock=True)

    def mirror_store_return(self, number: str, lines: list, at: datetime) -> None:
        self._return(number, lines, at, back_in_stock=False)

    def free_to_sell(self, location: Location, sku: str) -> int:
        return self.state.stock(self.config.channel_of_location[location.id], sku)[1]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TradingGenerator:
    def __init__(self, estate: Estate, centra: Any, newstore: Any, truth: GroundTruth,
                 config: TradingConfig | None = None, commerce: CentraTrading | CommercetoolsTrading | None = None,
                 kiosk: Any | None = None):
        self.estate = estate
        self.centra = centra  # simulators.centra state (world API)
        # The platform the world trades online through (Centra unless given).
        self.commerce = commerce or CentraTrading(centra)
        self.newstore = newstore  # simulators.newstore state (world API)
        self.kiosk = kiosk  # simulators.cloudshelf state (world API), with kiosks in the stores
        self.truth = truth
        self.config = config or TradingConfig()
        self.rng = random.Random(self.config.seed)
        self._seq = itertools.count()
        self._pending: list[_Job] = []  # follow-ups: shipments, returns
        self._skus = estate.skus()
        self._unknown = itertools.count(1)
        self._lock = threading.Lock()
        self._replenishing: set[tuple[str, str]] = set()
        # Units promised to click-and-collect orders, per (node, SKU), from the online order until the handover:
        # NewStore reserves them only once the order reaches it, and the store must not sell or lose them before.
        self._held: dict[tuple[str, str], int] = {}
        # Units kiosk shoppers took off the shelf that the store system does not know of, until a count finds them gone.
        self._kiosk_taken: dict[tuple[str, str], int] = {}
        self.stats: dict[str, int] = {}

    # ---- scheduling -------------------------------------------------------------------------
    def _push(self, at: datetime, kind: str, **data: Any) -> None:
        heapq.heappush(self._pending, _Job(at, next(self._seq), kind, data))

    def _bump(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def _arrivals(self, start: datetime, end: datetime, per_hour: float) -> list[datetime]:
        out, t = [], start
        if per_hour <= 0:
            return out
        while True:
            t = t + timedelta(hours=self.rng.expovariate(per_hour))
            if t >= end:
                return out
            out.append(t)

    def _store_open(self, store: Location, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(store.timezone))
        lo, hi = self.config.opening_hours
        return lo <= local.hour < hi

    def simulate(self, start: datetime, end: datetime, *, world_clock: bool = True) -> dict[str, int]:
        """Trade from start to end (UTC-aware), in event-time order. Returns counters.

        With `world_clock` (replaying the past: history, tests) both platforms' clocks read each job's
        own time while it runs, so whatever a platform stamps itself (Centra's refund, capture and
        completion times, webhook dates) is dated when it happened, not when it was simulated. Live
        trading leaves the clocks alone: its jobs are at most a tick old, and the platforms are serving
        the integration's requests meanwhile.
        """
        with self._lock:
            jobs: list[_Job] = []
            for store in self.estate.stores:
                for at in self._arrivals(start, end, self.config.store_sales_per_hour * 24 / max(
                        1, self.config.opening_hours[1] - self.config.opening_hours[0])):
                    if self._store_open(store, at):
                        jobs.append(_Job(at, next(self._seq), "store_sale", {"store": store}))
                days = (end - start).total_seconds() / 86400
                for _ in range(self._poisson(self.config.counts_per_store_per_day * days)):
                    at = start + (end - start) * self.rng.random()
                    jobs.append(_Job(at, next(self._seq), "count", {"store": store}))
                for at in self._arrivals(start, end, self.config.click_collect_per_store_per_day / 24):
                    jobs.append(_Job(at, next(self._seq), "click_collect", {"store": store}))
            for at in self._arrivals(start, end, self.config.online_orders_per_hour):
                jobs.append(_Job(at, next(self._seq), "online_order", {}))
            if self.kiosk is not None and not world_clock:  # the product's flows take kiosk orders as they come
                for store in self.estate.stores:
                    for at in self._arrivals(start, end, self.config.kiosk_orders_per_store_per_hour):
                        if self._store_open(store, at):
                            jobs.append(_Job(at, next(self._seq), "kiosk_order", {"store": store}))
            for job in jobs:
                heapq.heappush(self._pending, job)
            while self._pending and self._pending[0].at < end:
                job = heapq.heappop(self._pending)
                try:
                    if world_clock:
                        with _world_clock(self.commerce.state, job.at), _world_clock(self.newstore, job.at):
                            getattr(self, f"_do_{job.kind}")(job.at, **job.data)
                    else:
                        getattr(self, f"_do_{job.kind}")(job.at, **job.data)
                except Exception:  # a simulated world keeps trading; the failure is logged and counted
                    log.exception("trading job %s failed", job.kind)
                    self._bump(f"failed_{job.kind}")
            return dict(self.stats)

    def _poisson(self, lam: float) -> int:
        n, p, threshold = 0, 1.0, pow(2.718281828, -lam)
        while True:
            p *= self.rng.random()
            if p <= threshold:
                return n
            n += 1

    def run_live(self, stop: threading.Event, tick_s: float = 1.0, speed: float = 1.0) -> None:
        """Trade in real time until `stop` is set; `speed` multiplies the configured rates."""
        self.config.store_sales_per_hour *= speed
        self.config.online_orders_per_hour *= speed
        last = datetime.now(UTC)
        while not stop.wait(tick_s):
            now = datetime.now(UTC)
            self.simulate(last, now, world_clock=False)
            last = now

    # ---- store trading (NewStore) -------------------------------------------------------------
    def _pick_stocked(self, node: str, n: int) -> list[str]:
        picks: list[str] = []
        for _ in range(n * 8):
            sku = self.rng.choice(self._skus)
            if sku not in picks and self._sellable(node, sku):
                picks.append(sku)
                if len(picks) == n:
                    break
        return picks

    def _sellable(self, node: str, sku: str) -> bool:
        """A unit of `sku` the store may sell or lose: not held for a pickup, known to NewStore or not yet."""
        return (self.newstore.atp(node, sku) > self._kiosk_taken.get((node, sku), 0)
                and self.newstore.on_hand(node, sku) > self._held.get((node, sku), 0) + self._kiosk_taken.get((node, sku), 0))

    def _do_store_sale(self, at: datetime, store: Location) -> None:
        node = store.newstore_node_id
        faults = self.config.faults
        skus = self._pick_stocked(node, self.rng.choice((1, 1, 1, 2, 2, 3)))
        unknown = self.rng.random() < faults.unknown_sku
        if unknown:
            sku = f"POSONLY-{next(self._unknown):05d}"
            self.newstore.register_pos_product(sku, node, on_hand=1)
            skus.append(sku)
        if not skus:
            return
        items, total = [], 0.0
        for sku in skus:
            if sku in self.estate.by_sku:
                price = self.estate.price(sku, store.centra_pricelist_id)
            else:
                price = 49.0 if store.currency in ("EUR", "GBP") else 499.0
            unit = price
            if sku in self.estate.by_sku and self.rng.random() < faults.wrong_price:
                unit = round(price * self.rng.choice((0.8, 0.9, 1.1)), 2)
                self.truth.fault(at, "price_off_pricelist", node_id=node, sku=sku, value=round(unit - price, 2),
                                 currency=store.currency, list_price=price, sold_at=unit)
            discount = round(unit * 0.2, 2) if self.rng.random() < self.config.discount_share else 0.0
            item = {"sku": sku, "quantity": 1, "unit_price": unit, "discount": discount}
            if sku in self.estate.by_sku and self.rng.random() < faults.line_wrong_tax:
                right = self.estate.tax_rates[store.country]
                item["tax_rate"] = round(right - 0.06, 3)
                paid = unit - discount
                self.truth.fault(at, "line_tax_mismatch", node_id=node, sku=sku, currency=store.currency,
                                 value=round(paid * right / (1 + right) - paid * item["tax_rate"] / (1 + item["tax_rate"]), 2))
            items.append(item)
            total += unit - discount
        order = self.newstore.record_store_sale(node, items, at=at)
        ref = str(order.get("id"))
        for it in items:
            self.truth.movement(at, node, it["sku"], -it["quantity"], "sale", ref)
            if it["sku"] not in self.estate.by_sku:
                self.truth.fault(at, "unknown_sku", node_id=node, sku=it["sku"], ref=ref,
                                 value=it["unit_price"], currency=store.currency)
        self.truth.transaction(at, "store_sale", "newstore", node, ref, round(total, 2), store.currency,
                               items=items)
        self._bump("store_sales")
        for it in items:
            self._maybe_replenish(at, store, it["sku"])
        if self.rng.random() < self.config.store_return_share:
            back = at + timedelta(hours=self.rng.uniform(1, 48))
            self._push(back, "store_return", store=store, order_id=ref, item=items[0])

    def _maybe_replenish(self, at: datetime, store: Location, sku: str) -> None:
        """A store running low gets a transfer from the DC the next morning (a stock receipt in the POS)."""
        key = (store.newstore_node_id, sku)
        if sku not in self.estate.by_sku or key in self._replenishing:
            return
        if self.newstore.on_hand(*key) > self.config.replenish_below:
            return
        self._replenishing.add(key)
        local = at.astimezone(ZoneInfo(store.timezone))
        morning = (local + timedelta(days=1)).replace(hour=8, minute=self.rng.randint(0, 59), second=0, microsecond=0)
        self._push(morning.astimezone(UTC), "replenish", store=store, sku=sku, quantity=self.rng.randint(3, 6))

    def _do_replenish(self, at: datetime, store: Location, sku: str, quantity: int) -> None:
        node = store.newstore_node_id
        self._replenishing.discard((node, sku))
        (payload,) = self.newstore.receive_stock(node, {sku: quantity}, at=at)
        self.truth.movement(at, node, sku, quantity, "receipt", str(payload.get("id")))
        self._bump("replenishments")

    def _do_store_return(self, at: datetime, store: Location, order_id: str, item: dict[str, Any]) -> None:
        if not self._store_open(store, at):
            return
        node = store.newstore_node_id
        refund = round(item["unit_price"] - item["discount"], 2)
        ret = self.newstore.record_return(node, [{"sku": item["sku"], "quantity": 1, "refund_amount": refund}],
                                          at=at, order_id=order_id, restock=True)
        ref = str(ret.get("id"))
        self.truth.movement(at, node, item["sku"], 1, "return_restock", ref)
        self.truth.transaction(at, "store_return", "newstore", node, ref, -refund, store.currency, order_id=order_id)
        self._bump("store_returns")

    def _do_count(self, at: datetime, store: Location) -> None:
        node = store.newstore_node_id
        skus = self.rng.sample(self._skus, min(20, len(self._skus)))
        counts = {}
        for sku in skus:
            qty = self.newstore.on_hand(node, sku) - self._kiosk_taken.pop((node, sku), 0)  # the shelf, as counted
            # Shrinkage found by the count takes a free unit: a missing unit held for a pickup would be an
            # oversell (the commerce platform cannot go below what it allocated), a fault, not clean trading.
            if qty > 0 and self.rng.random() < 0.1 and self._sellable(node, sku):
                qty -= 1
            counts[sku] = max(0, qty)
        self.newstore.count_stock(node, counts, at=at)
        for sku, qty in counts.items():
            self.truth.count(at, node, sku, qty, f"count:{node}:{at.isoformat()}")
        self._bump("counts")

    # ---- kiosk shoppers (Cloudshelf) -------------------------------------------------------------
    def _do_kiosk_order(self, at: datetime, store: Location) -> None:
        node, loc = store.newstore_node_id, location_gid(store.id)
        skus = [s for s in self.rng.sample(self._skus, min(8, len(self._skus))) if self.kiosk.visible(loc, s)]
        if not skus:
            return
        sku = skus[0]
        n = next(self._seq)
        if self.rng.random() < self.config.kiosk_delivery_share:
            method = self.rng.choice(("home-standard", "home-express"))
            address = {"firstName": "Kiosk", "lastName": f"Shopper {n}", "address1": f"Storgatan {n % 90 + 1}",
                       "city": store.name, "zip": f"{11000 + n % 900}", "countryCode": store.country}
            gid = self.kiosk.kiosk_order(loc, [(variant_gid(sku), 1)], fulfilment_method=method,
                                         email=f"kiosk{n}@example.com", attributes=address, currency=store.currency)
            self.truth.transaction(at, "kiosk_delivery_order", "cloudshelf", node, gid, 0.0, store.currency)
            self._bump("kiosk_delivery_orders")
            return
        if not self._sellable(node, sku):
            return
        gid = self.kiosk.kiosk_order(loc, [(variant_gid(sku), 1)], currency=store.currency)
        self._kiosk_taken[(node, sku)] = self._kiosk_taken.get((node, sku), 0) + 1
        self.truth.movement(at, node, sku, -1, "kiosk_sale", gid)
        self._bump("kiosk_take_home_sales")

    # ---- online trading (the commerce platform) ------------------------------------------------
    def _do_online_order(self, at: datetime) -> None:
        market = self.rng.choice(self.estate.centra.markets)
        lines = [(sku, 1) for sku in self.rng.sample(self._skus, self.rng.choice((1, 1, 2)))]
        # Without the stand-in integration, online orders ship from the DC: the product's ship-from-store flow
        # would hand store-allocated ones to a store, which this world does not play (its tests do).
        dc = None if self.config.world_integrates else (self.estate.distribution_centre.centra_warehouse_id,)
        number = self.commerce.place_order(market, lines, f"shopper{next(self._seq)}@example.com", at, dc)
        if number is None:  # the platform refused the checkout (commercetools: OutOfStock at the DC)
            self._bump("online_orders_out_of_stock")
            return
        self.truth.transaction(at, "online_order", self.commerce.platform, None, str(number), 0.0,
                               self.estate.pricelists[market.pricelist_id].currency, market_id=market.id)
        self._bump("online_orders")
        self._push(at + timedelta(hours=self.rng.uniform(*self.config.ship_after_hours)), "ship",
                   number=number, market_id=market.id, lines=lines)

    def _do_ship(self, at: datetime, number: int | str, market_id: int, lines: list) -> None:
        self.commerce.ship(number, at)
        self._bump("shipments")
        r = self.rng.random()
        if r < self.config.online_return_share:
            self._push(at + timedelta(days=self.rng.uniform(*self.config.return_after_days)), "online_return", number=number, lines=lines)
        elif r < self.config.online_return_share + self.config.online_return_in_store_share:
            self._push(at + timedelta(days=self.rng.uniform(*self.config.return_after_days)), "online_return_in_store", number=number,
                       market_id=market_id, lines=lines)

    def _do_online_return(self, at: datetime, number: int | str, lines: list) -> None:
        self.commerce.return_online(number, lines[:1], at, self.estate.distribution_centre)
        self._bump("online_returns")

    def _next_opening(self, store: Location, at: datetime) -> datetime:
        """The store's next opening (local time, a few minutes after the doors open) after `at`."""
        local = at.astimezone(ZoneInfo(store.timezone))
        opens = local.replace(hour=self.config.opening_hours[0], minute=self.rng.randint(0, 59), second=0,
                              microsecond=0)
        return (opens if opens > local else opens + timedelta(days=1)).astimezone(UTC)

    def _do_online_return_in_store(self, at: datetime, number: int | str, market_id: int, lines: list,
                                   store: Location | None = None) -> None:
        market = self.estate.markets[market_id]
        stores = [s for s in self.estate.stores if s.country in market.countries] or list(self.estate.stores)
        store = store or self.rng.choice(stores)
        if not self._store_open(store, at):
            # The customer comes back when the store is open. (This used to re-date the return to 12:00
            # UTC of the same day: hours in the past, or in the future of the simulated time, and on the
            # previous business day after midnight local time, so its stock and refund landed on another
            # day in each platform.)
            self._push(self._next_opening(store, at), "online_return_in_store", number=number,
                       market_id=market_id, lines=lines, store=store)
            return
        sku, qty = lines[0]
        price = self.estate.price(sku, market.pricelist_id)
        faults = self.config.faults
        # At most one fault per return, so each has exactly one expected finding.
        draw = self.rng.random()
        edges = [faults.missing_order_ref, faults.refund_wrong_tax, faults.refund_wrong_amount,
                 faults.missing_centra_return]
        cum = [sum(edges[:i + 1]) for i in range(len(edges))]
        missing_ref = draw < cum[0]
        wrong_tax = cum[0] <= draw < cum[1]
        wrong_amount = cum[1] <= draw < cum[2]
        missing_in_centra = cum[2] <= draw < cum[3]
        item = {"sku": sku, "quantity": qty, "refund_amount": price * qty}
        if wrong_tax:
            item["tax_rate"] = round(self.estate.tax_rates[store.country] + 0.05, 3)
        if wrong_amount:
            item["refund_amount"] = round(price * qty * 0.9, 2)
        ret = self.newstore.record_return(
            store.newstore_node_id, [item], at=at,
            original_external_order_ref=None if missing_ref else str(number), restock=True)
        ref = str(ret.get("id"))
        if wrong_tax:
            self.truth.fault(at, "refund_tax_mismatch", node_id=store.newstore_node_id, sku=sku, ref=str(number),
                             currency=store.currency, return_id=ref)
        if wrong_amount:
            self.truth.fault(at, "refund_amount_mismatch", node_id=store.newstore_node_id, sku=sku, ref=str(number),
                             value=round(price * qty * 0.1, 2), currency=store.currency, return_id=ref)
        self.truth.movement(at, store.newstore_node_id, sku, qty, "return_restock", ref)
        self.truth.transaction(at, "online_return_in_store", "newstore", store.newstore_node_id, ref,
                               -price * qty, store.currency, order_number=number)
        if missing_ref:
            self.truth.fault(at, "return_without_order_ref", node_id=store.newstore_node_id, sku=sku, ref=ref,
                             value=price * qty, currency=store.currency, order_number=number)
        if not self.config.world_integrates:
            pass  # the product's store return flow writes it to Centra
        elif missing_in_centra:
            self.truth.fault(at, "return_missing_in_commerce", node_id=store.newstore_node_id, sku=sku, ref=ref,
                             value=price * qty, currency=store.currency, order_number=number)
        else:
            # The estate's current integration mirrors the return into Centra (flow 3) without a
            # Centra restock: the unit is back on the store's shelf, which the POS records and the
            # stock sync carries to the store's warehouse, so restocking here would count it twice.
            self.commerce.mirror_store_return(number, [(sku, qty)], at)
        self._bump("online_returns_in_store")

    # ---- click-and-collect (Centra order, picked up in a NewStore store) ------------------------
    def _do_click_collect(self, at: datetime, store: Location) -> None:
        if not self.commerce.click_and_collect:
            return
        node, wid = store.newstore_node_id, store.centra_warehouse_id
        skus = [s for s in self._pick_stocked(node, 3) if self.commerce.free_to_sell(store, s) > 0][:1]
        if not skus or store.centra_market_id is None:
            return
        sku = skus[0]
        number = self.commerce.place_order(self.estate.markets[store.centra_market_id], [(sku, 1)],
                                           f"collect{next(self._seq)}@example.com", at, (wid,),
                                           shipping_option=self.config.pickup_option)
        if number is None:
            return
        self._held[(node, sku)] = self._held.get((node, sku), 0) + 1
        price = self.estate.price(sku, store.centra_pricelist_id)
        if not self.config.world_integrates:  # the product's pickup flow hands it to the store
            self.truth.transaction(at, "click_collect_order", "centra", node, str(number), price, store.currency)
            self._bump("click_collect_orders")
            self._push(at + timedelta(hours=self.rng.uniform(2, 30)), "pickup", store=store, number=number,
                       ns_order_id=None, sku=sku, price=price)
            return
        rate = self.estate.tax_rates[store.country]
        body = {
            "external_id": str(number), "shop": "storefront", "shop_locale": "en-GB", "channel_type": "web",
            "channel_name": "centra", "currency": store.currency, "price_method": "tax_included",
            "placed_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "store_id": store.id,
            "customer_email": f"collect{number}@example.com",
            "shipping_address": {"address_line_1": store.name, "country": store.country},
            "shipments": [{"items": [{
                "external_item_id": f"{number}-1", "product_id": sku,
                "price": {"item_price": price, "item_list_price": price,
                          "item_tax_lines": [{"amount": round(price * rate / (1 + rate), 2), "rate": rate, "name": "VAT"}],
                          "item_discount_info": [], "item_order_discount_info": []}}],
                "shipping_option": {"service_level_identifier": "IN_STORE_PICKUP", "price": 0, "tax": 0}}],
            "payments": [{"type": "captured", "amount": price, "method": "credit_card", "processor": "adyen",
                          "correlation_ref": f"psp-{number}",
                          "processed_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}],
        }
        with _world_clock(self.newstore, at):
            injected = self.newstore.fulfill_order(body)
        self.truth.transaction(at, "click_collect_order", "centra", node, str(number), price, store.currency)
        self._bump("click_collect_orders")
        self._push(at + timedelta(hours=self.rng.uniform(2, 30)), "pickup", store=store, number=number,
                   ns_order_id=injected["id"], sku=sku, price=price)

    def _do_pickup(self, at: datetime, store: Location, number: int, ns_order_id: str, sku: str, price: float) -> None:
        if not self._store_open(store, at):
            self._push(at + timedelta(hours=1), "pickup", store=store, number=number, ns_order_id=ns_order_id,
                       sku=sku, price=price)
            return
        if ns_order_id is None:  # handed to the store by the product: the customer finds it there, or comes back
            ns_order_id = self.newstore.order_id_of(str(number))
            if ns_order_id is None:
                self._bump("pickups_not_in_store")
                self._push(at + timedelta(hours=1), "pickup", store=store, number=number, ns_order_id=None,
                           sku=sku, price=price)
                return
        frs = self.newstore.fulfillment_requests(ns_order_id)["fulfillment_requests"]
        fr = next(f for f in frs if any(i["status"] == "dispatched" for i in f["items"]))
        items = [{"item_id": i["item_id"], "state": "shipped"} for i in fr["items"] if i["status"] == "dispatched"]
        self.newstore.set_items_states(fr["fulfillment_request_id"], {"line_items": items}, at=at)
        # Both platforms take the unit out of the store: the POS at handover, Centra when the order ships.
        self.truth.movement(at, store.newstore_node_id, sku, -1, "pickup", str(number))
        self._held[(store.newstore_node_id, sku)] -= 1
        self._bump("pickups")
        if not self.config.world_integrates:
            return  # the product's handover flow ships it in Centra
        if self.rng.random() < self.config.faults.uncollected_pickup_open:
            self.truth.fault(at, "click_collect_open", node_id=store.newstore_node_id, sku=sku, ref=str(number),
                             value=price, currency=store.currency)
        else:
            self.commerce.ship(number, at)


@contextmanager
def _world_clock(state: Any, at: datetime) -> Iterator[None]:
    """Run a simulator API call as if at `at` (history mode replays the past)."""
    saved = state.clock
    state.clock = lambda: at
    try:
        yield
    finally:
        state.clock = saved
