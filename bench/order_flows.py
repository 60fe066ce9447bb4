"""Order flows through the whole product, under duplicate and unordered delivery, beside the stock sync.

    python bench/order_flows.py              # design: 10 stores, 0.1 flow scenarios/s (360/h) beside 2 POS stock events/s, 5 min
    python bench/order_flows.py --rate 0.5   # stress: 1,800 scenarios/h, beyond the flows' share of Centra's Growth budget
    python bench/order_flows.py --quick      # 4 stores, 30 s of scenarios at 0.5/s (under two minutes in all)

The simulated estate runs in this process (Centra at `--tier`, GROWTH by default, every GraphQL answer
delayed `--rtt-ms`; NewStore; the intake); a real `dagster-daemon` on the repository's dagster.yaml and
workspace.yaml evaluates every sensor and launches the runs as their own processes, as in production:
`order_flows_sensor` -> `order_flows_job`, and the always-on stock sync, which shares Centra's rate-limit
budget with the flows while POS stock events arrive at `--stock-rate`.

NewStore's event stream duplicates 20 % of deliveries, re-publishes 10 % with a changed envelope and
shuffles them in windows of 4; Centra's webhook plugin sends 20 % of its batches twice. Scenarios (the
world's side only: customers and stores; the product does the integration):
- store_return: an online order shipped from Centra is returned in a store (NewStore `return.processed`,
  one or two lines, sometimes partial); 5 % carry no order reference (expected: an exception).
  Done when Centra holds a refunded return for it; time = Centra's REFUND entry - the return's publication.
- pickup_order: a click-and-collect order placed in Centra (allocated from a store). Done when NewStore
  holds the injected order; time = NewStore's order creation - the Centra order's creation.
- pickup_handover: the store hands the order over 3 s after it arrives (`items_completed`). Done when the
  Centra order is SHIPPED with no customer e-mail; time = the last shipment's shippedAt - the handover.
- ship_from_store: a delivery order placed in Centra, allocated from a store. Done when NewStore holds it
  for that store (after the live stock check); time = NewStore's order creation - the Centra order's creation.
- store_shipment: that store ships it with a tracking number 3 s after it arrives. Done when the Centra order
  is SHIPPED with the tracking and the customer e-mailed; time = shippedAt - the store's shipment.
- endless_aisle: a store takes a home-delivery order at the till (NewStore `order.opened`). Done when Centra
  holds the order (Order API); time = Centra's order creation - the till.
`--platform commercetools`: the estate's commerce platform is the commercetools simulator (every answer delayed
`--rtt-ms`; `--tier` does not apply) and the flows read and write it (triggers: its Messages, pulled by
commercetools_messages_sensor). The same scenarios through its world API: online orders are checkouts in the
market's commercetools Store (`ReserveOnOrder`; store_return from the DC's supply channel, ship_from_store from the
store's), shipped with a tracked Delivery; a click-and-collect order is imported (`POST /orders/import`, the
simulator's checkout has no shipping-method choice) with shipping method "Click & Collect" and its line on the
store's supply channel. Done, from the simulator: store_return = the order's returnInfo for that store return
(`returnTrackingId`) has every item Refunded, time = its Refund transaction's timestamp; pickup_handover /
store_shipment = a Delivery on the order (shipment state Shipped; for store_shipment with the store's tracking id),
time = the Delivery's createdAt; endless_aisle = an order whose orderNumber is the till's order id, time = its
createdAt; a ship-from-store order is re-routed when its effective supply channel (the newest `syncInfo` channel)
left the store. Duplicates: returnInfo entries / Refund transactions beyond one per store return, Deliveries
beyond one per handover or shipment, orders beyond one per till order.

`--platform cloudshelf`: the kiosk legs of issue 14 instead (bench/kiosk_legs.py; a Centra estate whose stores
have Cloudshelf kiosks, 50 stores and 1 POS stock event/s by default; `--quick` 4 stores, 25 s): kiosk order ->
Centra order, the last unit sold in a store -> hidden on that store's kiosk, take-home kiosk sales deducted in
Centra exactly once, under duplicated and reordered Cloudshelf webhooks. `--rate` is then kiosk orders per
second (0.2); `--sizes`, `--last-units`, `--take-home`, `--warmup` apply to it only.

    python bench/order_flows.py --platform cloudshelf            # 50 stores x 300 sizes, 5 min (run it alone)
    python bench/order_flows.py --platform cloudshelf --quick    # 4 stores x 120 sizes, 25 s of kiosk orders

`--platform erp`: the ERP legs of issue 15 instead (bench/erp_legs.py; a Centra estate with Business Central behind
it, 10 stores by default, `--quick` 6 stores and 40 s): a confirmed Centra order -> its ERP sales order, an ERP
shipment -> the completed Centra shipment with its tracking, under a slow ERP (20 % of answers), 429 storms, forced
412s and lost POST answers; then the day's reconciliation (every ERP finding 0). `--rate` is then web orders per
second (0.2); `--faults` injects an unmapped tax rate, a currency mismatch, an unmapped bundle and a dropped
shipment and reports whether each was found with the right value.

    python bench/order_flows.py --platform erp                   # 10 stores x 400 sizes, 5 min (run it alone)
    python bench/order_flows.py --platform erp --quick --faults  # 6 stores x 120 sizes, 40 s, the four faults

Per flow: `events` (scenarios), `completed` (a ship-from-store order re-routed by the live check counts when
Centra's allocation left the store: `rerouted`), `exceptions` (work the flow could not do and holds as an
exception; exceptions about work done anyway, such as a re-route, do not count), `lost` (neither done nor held
by the end), `duplicated` (Centra returns beyond one per store return and shipment, units shipped beyond the
order, NewStore orders beyond one per online order), `p50_s`, `p95_s`. Completion, duplicates and times are read
from the simulators (the oracle); only the held exceptions come from the product's `order_flow_work`. The last
stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import erp_legs  # noqa: E402
import kiosk_legs  # noqa: E402
from _common import PLATFORMS, PosTrader, dagster_daemon, emit, log, make_stack  # noqa: E402
from sqlalchemy import text  # noqa: E402

from pipelines.domain.flows.ship_from_store import external_id as sfs_external_id  # noqa: E402
from pipelines.domain.flows.ship_from_store import locations_of  # noqa: E402
from pipelines.domain.sync.stats import percentile  # noqa: E402
from pipelines.domain.timeutil import parse_time  # noqa: E402
from pipelines.estate import Location  # noqa: E402
from pipelines.simulators.commercetools import CtError  # noqa: E402
from pipelines.simulators.newstore import EmitterConfig  # noqa: E402
from pipelines.simulators.newstore.endless_aisle import take_endless_aisle_order  # noqa: E402

TIERS = ("GROWTH", "ENHANCED", "HIGH_VOLUME", "ENTERPRISE")
PICKUP = "Click & Collect"


@dataclass
class Scenarios:
    """The world's side of each flow, recorded as it happens (what the product must then do)."""

    stack: Any
    seed: int = 5
    no_ref_share: float = 0.05
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)  # NewStore return id -> facts
    pickups: dict[int, dict[str, Any]] = field(default_factory=dict)  # Centra order number -> facts
    deliveries: dict[int, dict[str, Any]] = field(default_factory=dict)  # ship-from-store: number -> facts
    aisle: dict[str, dict[str, Any]] = field(default_factory=dict)  # NewStore order id -> facts

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()
        self.ct = self.stack.commercetools.state if self.stack.commercetools is not None else None

    def _free(self, store: Any, sku: str) -> int:
        if self.ct is not None:
            return self.ct.stock(store.id, sku)[1]
        return self.stack.centra.state.stock_of(store.centra_warehouse_id, sku)["fta"]

    def _stocked(self, store: Any, qty: int) -> str | None:
        ns = self.stack.newstore.state
        skus = self.stack.estate.skus()
        for _ in range(40):
            sku = self.rng.choice(skus)
            if self._free(store, sku) >= qty and ns.atp(store.newstore_node_id, sku) >= qty:
                return sku
        return None

    # -- commercetools: the web shop's side through the simulator's world API ---------------------------

    def _ct_checkout(self, store: Any, lines: list[tuple[str, int]], email: str,
                     supply: str | None = None) -> dict[str, Any] | None:
        key = self.stack.estate.commercetools.store_of_market[store.centra_market_id].key
        try:
            return self.ct.place_order(key, lines, email, supply_channel_key=supply)
        except CtError:  # OutOfStock at the supply channel: no order to make
            return None

    def _ct_pickup_order(self, store: Any, sku: str) -> dict[str, Any]:
        """A click-and-collect order, imported (the simulator's checkout has no shipping-method choice)."""
        price = self.stack.estate.price(sku, store.centra_pricelist_id)
        cents = round(price * 100)
        amount = {"currencyCode": store.currency, "centAmount": cents}
        key = self.stack.estate.commercetools.store_of_market[store.centra_market_id].key
        order = self.ct.import_order({
            "orderNumber": f"CC{int(time.time() * 1000)}{self.rng.randint(100, 999)}", "totalPrice": amount,
            "customerEmail": "collector@example.com", "country": store.country, "store": {"typeId": "store", "key": key},
            "orderState": "Open", "paymentState": "Paid", "inventoryMode": "None",
            "shippingAddress": {"country": store.country, "email": "collector@example.com"},
            "shippingInfo": {"shippingMethodName": PICKUP, "price": {**amount, "centAmount": 0},
                             "shippingRate": {"price": {**amount, "centAmount": 0}}},
            "lineItems": [{"name": {"en": sku}, "variant": {"sku": sku}, "quantity": 1, "price": {"value": amount},
                           "supplyChannel": {"typeId": "channel", "key": store.id}}]})
        payment = self.ct.create_payment({"amountPlanned": amount, "transactions": [
            {"type": "Charge", "amount": amount, "state": "Success"}]})
        return self.ct.update_order(order["id"], {"version": order["version"], "actions": [
            {"action": "addPayment", "payment": {"typeId": "payment", "id": payment["id"]}}]})

    def store_return(self) -> None:
        if self.ct is not None:
            return self._ct_store_return()
        centra, ns, estate = self.stack.centra.state, self.stack.newstore.state, self.stack.estate
        store = self.rng.choice(estate.stores)
        skus = self.rng.sample(estate.skus(), self.rng.choice((1, 2)))
        lines = [(s, self.rng.choice((1, 2))) for s in skus]
        order = centra.place_order(store.centra_market_id, lines, email="shopper@example.com")
        number = int(order["number"])
        try:
            centra.ship_order(number)
        except Exception:  # noqa: BLE001 - nothing allocatable (sold out): no return to make
            return
        back = [(s, self.rng.randint(1, q)) for s, q in lines]  # partial returns included
        items = [{"sku": s, "quantity": q, "refund_amount": round(estate.price(s, store.centra_pricelist_id) * q, 2),
                  "item_condition": self.rng.choice(("sellable", "sellable", "damaged"))} for s, q in back]
        no_ref = self.rng.random() < self.no_ref_share
        at = datetime.now(UTC)
        ret = ns.record_return(store.newstore_node_id, items, original_external_order_ref=None if no_ref else str(number))
        with self.lock:
            self.returns[str(ret["id"])] = {"order": number, "at": at, "no_ref": no_ref}

    def _ct_store_return(self) -> None:
        ns, estate = self.stack.newstore.state, self.stack.estate
        store = self.rng.choice(estate.stores)
        skus = self.rng.sample(estate.skus(), self.rng.choice((1, 2)))
        lines = [(s, self.rng.choice((1, 2))) for s in skus]
        order = self._ct_checkout(store, lines, "shopper@example.com")
        if order is None:
            return
        self.ct.ship_order(order["id"])
        number = str(order["orderNumber"])
        back = [(s, self.rng.randint(1, q)) for s, q in lines]  # partial returns included
        items = [{"sku": s, "quantity": q, "refund_amount": round(estate.price(s, store.centra_pricelist_id) * q, 2),
                  "item_condition": self.rng.choice(("sellable", "sellable", "damaged"))} for s, q in back]
        no_ref = self.rng.random() < self.no_ref_share
        at = datetime.now(UTC)
        ret = ns.record_return(store.newstore_node_id, items, original_external_order_ref=None if no_ref else number)
        with self.lock:
            self.returns[str(ret["id"])] = {"order": number, "at": at, "no_ref": no_ref}

    def _store_with_stock(self) -> tuple[Location, str] | None:
        """A random store and a SKU it has a unit of (None: the store has nothing to sell)."""
        store = self.rng.choice(self.stack.estate.stores)
        sku = self._stocked(store, 1)
        return None if sku is None else (store, sku)

    def pickup(self) -> None:
        centra = self.stack.centra.state
        if (picked := self._store_with_stock()) is None:
            return
        store, sku = picked
        if self.ct is not None:
            number: int | str = str(self._ct_pickup_order(store, sku)["orderNumber"])
        else:
            order = centra.place_order(store.centra_market_id, [(sku, 1)], email="collector@example.com",
                                       allocate_from=(store.centra_warehouse_id,), shipping_option=PICKUP)
            number = int(order["number"])
        with self.lock:
            self.pickups[number] = {"at": datetime.now(UTC), "store": store, "handed_at": None}

    def ship_from_store(self) -> None:
        centra = self.stack.centra.state
        if (picked := self._store_with_stock()) is None:
            return
        store, sku = picked
        if self.ct is not None:
            placed = self._ct_checkout(store, [(sku, 1)], "delivery@example.com", supply=store.id)
            if placed is None:
                return
            number: int | str = str(placed["orderNumber"])
        else:
            order = centra.place_order(store.centra_market_id, [(sku, 1)], email="delivery@example.com",
                                       allocate_from=(store.centra_warehouse_id,), shipping_option="Standard")
            number = int(order["number"])
        with self.lock:
            self.deliveries[number] = {"at": datetime.now(UTC), "store": store, "shipped_at": None}

    def endless_aisle(self) -> None:
        estate, ns = self.stack.estate, self.stack.newstore.state
        store = self.rng.choice(estate.stores)
        sku = self.rng.choice(estate.skus())
        at = datetime.now(UTC)
        order = take_endless_aisle_order(
            ns, store.newstore_node_id, [{"sku": sku, "quantity": 1,
                                          "unit_price": estate.price(sku, store.centra_pricelist_id)}],
            service_level="STANDARD", customer_email="aisle@example.com",
            shipping_address={"first_name": "Ada", "last_name": "Aisle", "address_line_1": "Storgatan 1",
                              "city": "Stockholm", "zip_code": "11122", "country": store.country})
        with self.lock:
            self.aisle[str(order["id"])] = {"at": at}

    def stores_ship_arrived(self, after_s: float = 3.0) -> None:
        """Stores ship the delivery orders that reached them `after_s` ago, with a tracking number."""
        ns = self.stack.newstore.state
        now = datetime.now(UTC)
        with self.lock:
            waiting = [(n, d) for n, d in self.deliveries.items() if d["shipped_at"] is None]
        for number, d in waiting:
            oid = ns.order_id_of(sfs_external_id(str(number), locations_of([d["store"]])[0]))
            if oid is None:
                continue
            d.setdefault("arrived_at", now)
            d["store_order"] = oid
            if (now - d["arrived_at"]).total_seconds() < after_s:
                continue
            frs = ns.fulfillment_requests(oid)["fulfillment_requests"]
            items = [{"item_id": i["item_id"], "state": "shipped"} for fr in frs for i in fr["items"]
                     if i["status"] == "dispatched"]
            if frs and items:
                d["shipped_at"] = datetime.now(UTC)
                ns.set_items_states(frs[0]["fulfillment_request_id"], {
                    "line_items": items, "carrier": "PostNord", "tracking_code": f"PN{number}"})

    def hand_over_arrived(self, after_s: float = 3.0) -> None:
        """Customers collect orders that reached their store `after_s` ago."""
        ns = self.stack.newstore.state
        now = datetime.now(UTC)
        with self.lock:
            waiting = [(n, p) for n, p in self.pickups.items() if p["handed_at"] is None]
        for number, p in waiting:
            oid = ns.order_id_of(str(number))
            if oid is None:
                continue
            p.setdefault("arrived_at", now)
            if (now - p["arrived_at"]).total_seconds() < after_s:
                continue
            frs = ns.fulfillment_requests(oid)["fulfillment_requests"]
            items = [{"item_id": i["item_id"], "state": "shipped"} for fr in frs for i in fr["items"]
                     if i["status"] == "dispatched"]
            if frs and items:
                p["handed_at"] = datetime.now(UTC)
                ns.set_items_states(frs[0]["fulfillment_request_id"], {"line_items": items})

    def run(self, seconds: float, rate: float, stop: threading.Event) -> int:
        end, nxt, made = time.monotonic() + seconds, time.monotonic(), 0
        while time.monotonic() < end and not stop.is_set():
            nxt += self.rng.expovariate(rate)
            while time.monotonic() < nxt:
                self.hand_over_arrived()
                self.stores_ship_arrived()
                time.sleep(min(0.5, max(0.0, nxt - time.monotonic())))
            self.rng.choice((self.store_return, self.pickup, self.ship_from_store, self.endless_aisle))()
            made += 1
        return made


def exceptions_by_flow(stack: Any) -> Counter:
    """Work items each flow could not do (held as an exception). Exceptions raised about work that was done
    anyway (a re-route, a price off the price list) do not count: they must not hide a lost order."""
    with stack.engine.connect() as conn:
        flows = conn.execute(text("SELECT flow FROM order_flow_work WHERE status = 'exception'")).scalars().all()
    return Counter(flows)


def figures(s: Scenarios) -> dict[str, Any]:
    if s.ct is not None:
        return ct_figures(s)
    centra, ns = s.stack.centra.state, s.stack.newstore.state
    exc = exceptions_by_flow(s.stack)
    out: dict[str, Any] = {}
    lags, done, dup = [], 0, 0
    for rid, r in s.returns.items():
        ours = [x for x in centra.returns.values() if x.external_id and str(x.external_id).split("/")[0] == rid]
        dup += max(0, len(ours) - len({x.shipment_id for x in ours}))
        refunds = [p for x in ours for p in x.refund_history if p.entry_type == "REFUND"]
        if ours and len(refunds) >= len(ours):
            done += 1
            lags.append((max(p.created_at for p in refunds) - r["at"]).total_seconds())
    expected_exc = sum(1 for r in s.returns.values() if r["no_ref"])
    out["store_return"] = _row(len(s.returns), done, exc.get("store_return", 0), dup, lags, expected_exc)
    lags_i, lags_h, injected, shipped, dup_i, dup_h = [], [], 0, 0, 0, 0
    for number, p in s.pickups.items():
        injected, dup_i = _count_pickup_injection(ns, str(number), p["at"], lags_i, injected, dup_i)
        order = centra.orders[number]
        ships = [x for x in centra.shipments.values() if x.order_number == number]
        dup_h += max(0, sum(ln.quantity for x in ships for ln in x.lines) - sum(ln.ordered for ln in order.lines))
        if p["handed_at"] is not None and order.status == "SHIPPED" and not any(x.emails_sent for x in ships):
            shipped += 1
            lags_h.append((max(x.shipped_at for x in ships) - p["handed_at"]).total_seconds())
    handed = sum(1 for p in s.pickups.values() if p["handed_at"] is not None)
    out["pickup_order"] = _row(len(s.pickups), injected, exc.get("pickup_order", 0), dup_i, lags_i, 0)
    out["pickup_handover"] = _row(handed, shipped, exc.get("pickup_handover", 0), dup_h, lags_h, 0)
    out.update(_sfs_figures(s, exc))
    lags_a, created, dup_a = [], 0, 0
    for oid, a in s.aisle.items():
        made = [o for o in centra.orders.values() if o.external_id == oid]
        dup_a += max(0, len(made) - 1)
        if made:
            created += 1
            lags_a.append((min(o.created_at for o in made) - a["at"]).total_seconds())
    out["endless_aisle"] = _row(len(s.aisle), created, exc.get("endless_aisle", 0), dup_a, lags_a, 0)
    return out


def _count_pickup_injection(ns: Any, external_id: str, at: datetime, lags: list[float], injected: int,
                            dup: int) -> tuple[int, int]:
    """A pickup handed to NewStore under `external_id`: counted, its units injected more than once, its lag."""
    oid = ns.order_id_of(external_id)
    if oid is None:
        return injected, dup
    frs = ns.fulfillment_requests(oid)["fulfillment_requests"]
    got = ns.get_order(oid, "internal")
    created = got.get("created_at") or got.get("placed_at")
    if created:
        lags.append((parse_time(created) - at).total_seconds())
    return injected + 1, dup + max(0, sum(len(fr["items"]) for fr in frs) - 1)


def _sfs_figures(s: Scenarios, exc: Counter) -> dict[str, Any]:
    centra, ns = s.stack.centra.state, s.stack.newstore.state
    lags_i, lags_s, injected, rerouted, shipped, dup_i, dup_s = [], [], 0, 0, 0, 0, 0
    for number, d in s.deliveries.items():
        oid = ns.order_id_of(sfs_external_id(str(number), locations_of([d["store"]])[0]))
        order = centra.orders[number]
        moved = {a.warehouse_id for ln in order.lines for a in ln.allocations if a.quantity > 0}
        if oid is None and moved and d["store"].centra_warehouse_id not in moved:
            rerouted += 1  # the live check failed: Centra's allocation moved on (another store or the DC)
        elif oid is not None:
            injected += 1
            got = ns.get_order(oid, "internal")
            created = got.get("created_at") or got.get("placed_at")
            if created:
                lags_i.append((parse_time(created) - d["at"]).total_seconds())
        ships = [x for x in centra.shipments.values() if x.order_number == number]
        dup_s += max(0, sum(ln.quantity for x in ships for ln in x.lines) - sum(ln.ordered for ln in order.lines))
        tracked = [x for x in ships if x.tracking_number == f"PN{number}" and x.is_shipped]
        if d["shipped_at"] is not None and order.status == "SHIPPED" and tracked:
            shipped += 1
            lags_s.append((max(x.shipped_at for x in tracked) - d["shipped_at"]).total_seconds())
    store_shipped = sum(1 for d in s.deliveries.values() if d["shipped_at"] is not None)
    sfs_exc = exc.get("ship_from_store", 0)
    row = _row(len(s.deliveries), injected + rerouted, sfs_exc, dup_i, lags_i, 0)
    row["rerouted"] = rerouted
    return {"ship_from_store": row,
            "store_shipment": _row(store_shipped, shipped, 0, dup_s, lags_s, 0)}


def ct_figures(s: Scenarios) -> dict[str, Any]:
    """`figures` read from the commercetools simulator (see the module docstring)."""
    ct, ns = s.ct, s.stack.newstore.state
    exc = exceptions_by_flow(s.stack)
    orders = {str(o.get("orderNumber")): o for o in ct.all("orders") if o.get("orderNumber")}
    payments = {p["id"]: p for p in ct.all("payments")}
    out: dict[str, Any] = {}
    lags, done, dup = [], 0, 0
    for rid, r in s.returns.items():
        order = orders.get(r["order"]) or {}
        infos = [i for i in order.get("returnInfo", []) if i.get("returnTrackingId") == rid]
        refunds = [t for ref in (order.get("paymentInfo") or {}).get("payments", [])
                   for t in payments.get(ref["id"], {}).get("transactions", [])
                   if t["type"] == "Refund" and t.get("interactionId") == rid and t["state"] == "Success"]
        dup += max(0, len(infos) - 1) + max(0, len(refunds) - 1)
        if infos and refunds and all(i["paymentState"] == "Refunded" for info in infos for i in info["items"]):
            done += 1
            lags.append((min(parse_time(t["timestamp"]) for t in refunds) - r["at"]).total_seconds())
    expected_exc = sum(1 for r in s.returns.values() if r["no_ref"])
    out["store_return"] = _row(len(s.returns), done, exc.get("store_return", 0), dup, lags, expected_exc)

    def deliveries(order: dict[str, Any]) -> list[dict[str, Any]]:
        return list((order.get("shippingInfo") or {}).get("deliveries", []))

    lags_i, lags_h, injected, shipped, dup_i, dup_h = [], [], 0, 0, 0, 0
    for number, p in s.pickups.items():
        injected, dup_i = _count_pickup_injection(ns, str(number), p["at"], lags_i, injected, dup_i)
        order = orders[str(number)]
        ships = deliveries(order)
        dup_h += max(0, len(ships) - 1)
        if p["handed_at"] is not None and ships and order.get("shipmentState") in ("Shipped", "Delivered"):
            shipped += 1
            lags_h.append((max(parse_time(d["createdAt"]) for d in ships) - p["handed_at"]).total_seconds())
    handed = sum(1 for p in s.pickups.values() if p["handed_at"] is not None)
    out["pickup_order"] = _row(len(s.pickups), injected, exc.get("pickup_order", 0), dup_i, lags_i, 0)
    out["pickup_handover"] = _row(handed, shipped, exc.get("pickup_handover", 0), dup_h, lags_h, 0)

    channel_key = {c["id"]: c.get("key") for c in ct.all("channels")}
    lags_i, lags_s, injected, rerouted, shipped, dup_i, dup_s = [], [], 0, 0, 0, 0, 0
    for number, d in s.deliveries.items():
        oid = ns.order_id_of(sfs_external_id(str(number), locations_of([d["store"]])[0]))
        order = orders[str(number)]
        moved = [channel_key.get(i["channel"]["id"]) for i in order.get("syncInfo", []) if not i.get("externalId")]
        if oid is None and moved and moved[-1] != d["store"].id:
            rerouted += 1  # the live check failed: the order left the store
        elif oid is not None:
            injected += 1
            got = ns.get_order(oid, "internal")
            created = got.get("created_at") or got.get("placed_at")
            if created:
                lags_i.append((parse_time(created) - d["at"]).total_seconds())
        ships = deliveries(order)
        dup_s += max(0, len(ships) - 1)
        tracked = [x for x in ships for parcel in x.get("parcels", [])
                   if (parcel.get("trackingData") or {}).get("trackingId") == f"PN{number}"]
        if d["shipped_at"] is not None and order.get("shipmentState") in ("Shipped", "Delivered") and tracked:
            shipped += 1
            lags_s.append((max(parse_time(x["createdAt"]) for x in tracked) - d["shipped_at"]).total_seconds())
    store_shipped = sum(1 for d in s.deliveries.values() if d["shipped_at"] is not None)
    row = _row(len(s.deliveries), injected + rerouted, exc.get("ship_from_store", 0), dup_i, lags_i, 0)
    row["rerouted"] = rerouted
    out["ship_from_store"] = row
    out["store_shipment"] = _row(store_shipped, shipped, 0, dup_s, lags_s, 0)

    lags_a, created, dup_a = [], 0, 0
    for oid, a in s.aisle.items():
        made = [o for o in orders.values() if str(o.get("orderNumber")) == oid]
        dup_a += max(0, len(made) - 1)
        if made:
            created += 1
            lags_a.append((min(parse_time(o["createdAt"]) for o in made) - a["at"]).total_seconds())
    out["endless_aisle"] = _row(len(s.aisle), created, exc.get("endless_aisle", 0), dup_a, lags_a, 0)
    return out


def _row(events: int, completed: int, exceptions: int, duplicated: int, lags: list[float],
         expected_exceptions: int) -> dict[str, Any]:
    return {"events": events, "completed": completed, "exceptions": exceptions,
            "expected_exceptions": expected_exceptions, "lost": max(0, events - completed - exceptions),
            "duplicated": duplicated, "p50_s": round(percentile(lags, 50), 2) if lags else None,
            "p95_s": round(percentile(lags, 95), 2) if lags else None}


def settled(s: Scenarios) -> bool:
    f = figures(s)
    # Every order that reached its store was handed over or shipped there (a re-routed one left the stores).
    return all(v["lost"] == 0 for v in f.values()) and all(p["handed_at"] for p in s.pickups.values()) \
        and all(d["shipped_at"] or not d.get("arrived_at") for d in s.deliveries.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stores", type=int)
    ap.add_argument("--rate", type=float, help="flow scenarios per second")
    ap.add_argument("--stock-rate", type=float, help="POS stock events per second (the stock sync's load)")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--tier", default="growth", choices=[t.lower() for t in TIERS])
    ap.add_argument("--rtt-ms", type=float, default=300.0)
    ap.add_argument("--settle", type=float, default=240.0, help="seconds to wait for the last flows")
    ap.add_argument("--platform", choices=(*PLATFORMS, "cloudshelf", "erp"), default="centra",
                    help="the estate's commerce platform; cloudshelf: the kiosk legs on a Centra estate with kiosks; "
                         "erp: the ERP legs (Business Central behind Centra)")
    ap.add_argument("--faults", action="store_true",
                    help="erp: inject the four ERP faults and report whether the reconciliation finds each")
    ap.add_argument("--sizes", type=int, help="cloudshelf / erp: sizes in the estate (300 / 400; --quick 120)")
    ap.add_argument("--last-units", type=int, help="cloudshelf: last units sold in stores (40; --quick 4)")
    ap.add_argument("--take-home", type=int, help="cloudshelf: take-home kiosk order lines (25; --quick 4)")
    ap.add_argument("--warmup", type=float, default=120.0,
                    help="cloudshelf: seconds to wait for the first sync pass and our webhook's registration")
    args = ap.parse_args()
    if args.platform == "cloudshelf":
        emit(kiosk_legs.run(args, Path(tempfile.mkdtemp(prefix="bench-kiosks-"))))
        return
    if args.platform == "erp":
        emit(erp_legs.run(args, Path(tempfile.mkdtemp(prefix="bench-erp-"))))
        return
    stores = args.stores or (4 if args.quick else 10)
    rate = args.rate or (0.5 if args.quick else 0.1)
    stock_rate = args.stock_rate or (1.0 if args.quick else 2.0)
    seconds = args.seconds or (30.0 if args.quick else 300.0)
    home = Path(tempfile.mkdtemp(prefix="bench-flows-"))
    ct = args.platform == "commercetools"
    tier = "n/a" if ct else args.tier.upper()
    log(f"estate: {stores} stores; {rate}/s scenarios, {stock_rate}/s POS stock events for {seconds:g}s; "
        f"{args.platform} {tier}, {args.rtt_ms:g} ms; home {home}")
    delay = {"response_delay_s": args.rtt_ms / 1000}
    platform_options: dict[str, Any] = ({"commerce": "commercetools", "commercetools_options": delay} if ct else
                                        {"centra_options": {"tier": tier, **delay}})
    stack = make_stack(home / "stack", sizes=300, stores=stores, seed=5,
                       emitter_config=EmitterConfig(backoff_initial=0.01, duplicate_rate=0.2, redelivery_rate=0.1,
                                                    redelivery_shift_s=30, shuffle_window=4), **platform_options)
    stack.centra.webhooks.duplicate_rate = 0.2  # Centra's webhook plugin sends a fifth of its batches twice
    result: dict[str, Any] = {"stores": stores, "rate_per_s": rate, "stock_rate_per_s": stock_rate,
                              "seconds": seconds, "tier": tier, "rtt_ms": args.rtt_ms,
                              **({"platform": "commercetools"} if ct else {})}
    with stack:
        scen = Scenarios(stack)
        stop = threading.Event()
        with dagster_daemon(stack, home, {"PIPELINES_SYNC_SAFETY_STOCK": "1"}):
            log("daemon started; trading")
            stock = PosTrader(stack, stock_rate)
            t = threading.Thread(target=stock.run, args=(seconds, stop), daemon=True)
            t0 = time.monotonic()
            t.start()
            made = scen.run(seconds, rate, stop)
            t.join()
            log(f"made {made} scenarios and {stock.events} POS stock events in {time.monotonic() - t0:.0f}s")
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline and not settled(scen):
                scen.hand_over_arrived()
                scen.stores_ship_arrived()
                time.sleep(1.0)
            result["settle_after_trading_s"] = round(time.monotonic() - t0 - seconds, 1)
        result["flows"] = figures(scen)
        result["pos_stock_events"] = stock.events
        with stack.engine.connect() as conn:
            result["sync_http_429"] = int(conn.execute(text(
                "SELECT COALESCE(SUM(rate_limited), 0) FROM stock_sync_runs")).scalar() or 0)
            result["sync_movements_done"] = int(conn.execute(text(
                "SELECT COUNT(*) FROM stock_sync_movements WHERE status = 'done'")).scalar() or 0)
    emit(result)


if __name__ == "__main__":
    main()
