"""The kiosk legs of bench/order_flows.py (`--platform cloudshelf`): a Centra estate whose stores have Cloudshelf
kiosks (the devstack's `kiosks=True`), at the design load of issue 14 (50 stores, 1 POS stock event/s).

The estate, the intake and the simulators (Centra at `--tier` with `--rtt-ms` round trips, NewStore, Cloudshelf)
run in this process; a real `dagster-daemon` runs the product: the always-on stock sync with its kiosk hook
(pipelines/defs/kiosk/sync_hook.py), the kiosk availability refresh, the order flows (webhook registration, kiosk
orders) and the Cloudshelf orders poll. The catalogue, the locations and the first stock levels are published
before the daemon starts, as the devstack does before its history (`Stack._kiosk_publisher`).

Cloudshelf's order webhooks are redelivered (`duplicate_rate` 0.2) and shuffled (`reorder` 4). Measured, from the
simulators (the oracle; only held exceptions come from the product's `order_flow_work`):
- kiosk_order_to_centra: delivery-method kiosk orders ("home-standard", "home-express" with an e-mail and the
  address attributes of the kiosk form) placed through the Cloudshelf world API. Done when Centra holds an order
  whose external id is the kiosk order's GlobalId; time = that Centra order's creation - the kiosk order.
  Duplicated: Centra orders beyond one per kiosk order.
- last_unit_hidden: (store, SKU) pairs set up so that the store's kiosk availability is exactly the store
  warehouse's last unit (Centra free-to-allocate 1 there and 0 in every other warehouse of the market's allocation
  rule; NewStore on hand 1), published and visible; the store sells it at the POS (NewStore world API). Time = the
  first poll (every 0.1 s) seeing `cloudshelf.visible(location, sku)` False - the sale. `centra_p95_s`: the same
  sales' Centra stock change (the sync's ledger entry) - the sale, and `kiosk_after_centra_p95_s` hidden - that
  change (the sync's kiosk hook, or the refresh), to split the latency. `centra_number_on_kiosk_order`: kiosk
  orders whose Cloudshelf `thirdPartyId` is their Centra order's number (the status sent back).
- take_home: take-home kiosk orders (one line, a SKU reserved for that store and line). Deducted exactly once when
  the stock sync's negative Centra stock changes of (store warehouse, SKU) sum to minus the line's quantity;
  less (none, or part of it) = lost, more = duplicated.
The SKUs of the last-unit and take-home pairs are kept out of the POS trading (sales, receipts, counts) so that
nothing else changes them. `lost` and `duplicated` are the sums over the three legs (0 expected).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import PosTrader, dagster_daemon, log, make_stack
from sqlalchemy import text

from pipelines.connectors.cloudshelf import ids
from pipelines.domain.sync.stats import percentile
from pipelines.order_flows.names import KIOSK_ORDER
from pipelines.simulators.newstore import EmitterConfig
from pipelines.sync.batches import DESCRIPTION_PREFIX

TAKE_HOME = "take-home"
DELIVERY_METHODS = ("home-standard", "home-express")  # the simulator's DELIVERY acquisition options
ORDER_SUBJECT = "OrderPaid"  # the simulator's `order_subject` default, which the product registers
TARGET_ORDER_P95_S = 30.0
TARGET_HIDDEN_P95_S = 5.0
CLOUDSHELF_REQUESTS_PER_S = 20.0  # the simulator's default `requests_per_s` (restored after the setup)


class _TradedEstate:
    """The estate as `PosTrader` sees it: the reserved SKUs are never received or counted."""

    def __init__(self, estate: Any, reserved: set[str]) -> None:
        self._estate = estate
        self._skus = [s for s in estate.skus() if s not in reserved]

    def skus(self) -> list[str]:
        return self._skus

    def __getattr__(self, name: str) -> Any:
        return getattr(self._estate, name)


@dataclass
class KioskLegs:
    """The world's side of the kiosk legs (shoppers at the kiosks, sales at the tills), recorded as it happens."""

    stack: Any
    seed: int = 14
    last_unit: list[dict[str, Any]] = field(default_factory=list)  # {store, sku, loc, sold_at, hidden_at}
    take_home: list[dict[str, Any]] = field(default_factory=list)  # {store, sku, qty, order, at}
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)  # kiosk order gid -> {at, store}
    reserved: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()
        self.cs = self.stack.cloudshelf
        self.centra = self.stack.centra.state
        self.ns = self.stack.newstore.state
        self.estate = self.stack.estate
        self.pending_lu: list[dict[str, Any]] = []  # set up, not sold yet
        self.pending_th: list[dict[str, Any]] = []

    # -- setup (before the catalogue is published) ------------------------------------------------------

    def rule_warehouses(self, store: Any) -> set[int]:
        """The warehouses a store's kiosk sells from: its own and its market's allocation rule's (the design)."""
        est = self.estate
        rule_id = est.markets[store.centra_market_id].allocation_rule_id
        rule = next((r for r in est.centra.allocation_rules if r.id == rule_id), None)
        return {store.centra_warehouse_id, *(rule.warehouse_ids if rule else ())}

    def _set_centra(self, wid: int, sku: str, physical: int) -> None:
        size_id = self.estate.by_sku[sku].size.size_id
        self.centra.apply_stock_set("bench setup: kiosk last unit", wid, [(size_id, physical)])

    def _set_on_hand(self, node: str, sku: str, qty: int) -> None:
        """NewStore's on hand, set silently (no event): the setup of the world, not a movement."""
        with self.ns._lock:
            self.ns._rec(node, sku).on_hand = int(qty)

    def setup(self, last_unit_pairs: int, take_home_lines: int) -> None:
        """Reserve SKUs: each last-unit pair gets its own SKU, left with one unit in its store and none elsewhere in
        the market's rule; each take-home line gets its own (store, SKU) with stock in the store."""
        stores = list(self.estate.stores)
        by_wid = self.estate.by_warehouse
        skus = list(self.estate.skus())
        self.rng.shuffle(skus)
        pool = iter(skus)
        for i in range(last_unit_pairs):
            store = stores[i % len(stores)]
            sku = next(s for s in pool if self.centra.stock_of(store.centra_warehouse_id, s)["allocated"] == 0)
            for wid in self.rule_warehouses(store):
                allocated = self.centra.stock_of(wid, sku)["allocated"]
                qty = 1 if wid == store.centra_warehouse_id else allocated  # free to allocate: 1 here, 0 elsewhere
                self._set_centra(wid, sku, qty)
                loc = by_wid.get(wid)
                if loc is not None and loc.kind == "store":
                    self._set_on_hand(loc.newstore_node_id, sku, qty)
            self.reserved.add(sku)
            self.pending_lu.append({"store": store, "sku": sku, "loc": ids.location_gid(store.id)})
        for i in range(take_home_lines):
            store = stores[(i * 7 + 3) % len(stores)]
            sku = next(s for s in pool if self.centra.stock_of(store.centra_warehouse_id, s)["fta"] >= 3)
            self.reserved.add(sku)
            self.pending_th.append({"store": store, "sku": sku, "loc": ids.location_gid(store.id),
                                    "qty": self.rng.choice((1, 1, 2))})
        self.stack.trader._skus = [s for s in self.stack.trader._skus if s not in self.reserved]

    def check_published(self) -> dict[str, int]:
        """Keep the pairs whose kiosk state is what the setup meant (a last unit visible with level 1; a take-home
        SKU visible); the others are dropped and counted."""
        before = len(self.pending_lu), len(self.pending_th)
        self.pending_lu = [p for p in self.pending_lu
                           if self.cs.visible(p["loc"], p["sku"]) and self.cs.stock_level(p["loc"], p["sku"]) == 1]
        self.pending_th = [p for p in self.pending_th if self.cs.visible(p["loc"], p["sku"])]
        return {"last_unit_unpublished": before[0] - len(self.pending_lu),
                "take_home_unpublished": before[1] - len(self.pending_th)}

    # -- the world during trading -----------------------------------------------------------------------

    def sell_last_unit(self) -> bool:
        if not self.pending_lu:
            return False
        p = self.pending_lu.pop(0)
        store, sku = p["store"], p["sku"]
        now = datetime.now(UTC)
        at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # NewStore keeps milliseconds
        p["sold_at"] = time.time()
        p["sold_dt"] = at
        self.ns.record_store_sale(store.newstore_node_id, [
            {"sku": sku, "quantity": 1, "unit_price": self.estate.price(sku, store.centra_pricelist_id),
             "discount": 0.0}], at=at)
        with self.lock:
            self.last_unit.append(p)
        return True

    def watch(self, stop: threading.Event) -> None:
        """Poll what the shoppers see: when each sold last unit is hidden on its store's kiosk."""
        while not stop.is_set():
            with self.lock:
                waiting = [p for p in self.last_unit if p.get("hidden_at") is None]
            for p in waiting:
                if not self.cs.visible(p["loc"], p["sku"]):
                    p["hidden_at"] = time.time()
            stop.wait(0.1)

    def take_home_order(self) -> bool:
        if not self.pending_th:
            return False
        p = self.pending_th.pop(0)
        p["at"] = datetime.now(UTC)
        p["order"] = self.cs.kiosk_order(p["loc"], [(ids.variant_gid(p["sku"]), p["qty"])], fulfilment_method=TAKE_HOME)
        with self.lock:
            self.take_home.append(p)
        return True

    def delivery_order(self) -> None:
        store = self.rng.choice(self.estate.stores)
        loc = ids.location_gid(store.id)
        lines = []
        for _ in range(40):
            sku = self.rng.choice(self.estate.skus())
            if sku not in self.reserved and (v := self.cs.variant(sku)) is not None and v.available_to_purchase:
                lines.append((ids.variant_gid(sku), self.rng.choice((1, 1, 2))))
                if len(lines) >= self.rng.choice((1, 1, 2)):
                    break
        if not lines:
            return
        n = len(self.deliveries) + 1
        attributes = {"firstName": "Kiosk", "lastName": f"Shopper {n}", "address1": f"Storgatan {n}",
                      "city": "Stockholm", "zip": "11122", "countryCode": store.country}
        at = datetime.now(UTC)
        gid = self.cs.kiosk_order(loc, lines, fulfilment_method=self.rng.choice(DELIVERY_METHODS),
                                  email=f"kiosk{n}@example.com", attributes=attributes)
        with self.lock:
            self.deliveries[gid] = {"at": at, "store": store.id}

    def run(self, seconds: float, rate: float, stop: threading.Event) -> dict[str, int]:
        """Kiosk orders at `rate` per second (take-home while reserved lines last, else delivery), and the last
        units sold evenly over the first two thirds of `seconds` (so each has time to be hidden)."""
        start = time.monotonic()
        end, nxt = start + seconds, start
        lu_total = len(self.pending_lu)
        lu_every = (seconds * 2 / 3) / max(1, lu_total)
        lu_next = start + 1.0
        made = {"delivery": 0, "take_home": 0, "last_unit": 0}
        while time.monotonic() < end and not stop.is_set():
            nxt += self.rng.expovariate(rate)
            while time.monotonic() < min(nxt, end):
                if time.monotonic() >= lu_next and self.sell_last_unit():
                    made["last_unit"] += 1
                    lu_next += lu_every
                time.sleep(min(0.1, max(0.0, nxt - time.monotonic())))
            if time.monotonic() >= end:
                break
            if self.pending_th and self.rng.random() < 0.4 and self.take_home_order():
                made["take_home"] += 1
            else:
                self.delivery_order()
                made["delivery"] += 1
        while self.pending_lu and not stop.is_set():  # what the window left: sold now
            made["last_unit"] += int(self.sell_last_unit())
        while self.pending_th and not stop.is_set():  # and the take-home lines not ordered yet
            made["take_home"] += int(self.take_home_order())
        return made


# ------------------------------------------------------------------ figures (from the simulators)


def _stats(lags: list[float], prefix: str) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)
    return {f"{prefix}_p50_s": r(percentile(lags, 50)) if lags else None,
            f"{prefix}_p95_s": r(percentile(lags, 95)) if lags else None,
            f"{prefix}_max_s": r(max(lags)) if lags else None}


def _sync_changes(k: KioskLegs) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """The stock sync's Centra ledger lines per (warehouse, SKU) of the reserved SKUs."""
    out: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for c in k.centra.stock_changes():
        if c["sku"] in k.reserved and str(c["description"]).startswith(DESCRIPTION_PREFIX):
            out.setdefault((c["warehouse_id"], c["sku"]), []).append(c)
    return out


def kiosk_exceptions(stack: Any) -> int:
    with stack.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM order_flow_work WHERE flow = :f AND status = 'exception'"),
                                {"f": KIOSK_ORDER}).scalar() or 0)


def figures(k: KioskLegs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by_external: dict[str, list[Any]] = {}
    for o in list(k.centra.orders.values()):
        if o.external_id:
            by_external.setdefault(str(o.external_id), []).append(o)
    lags, done, dup, back = [], 0, 0, 0
    for gid, d in k.deliveries.items():
        made = by_external.get(gid, [])
        dup += max(0, len(made) - 1)
        if made:
            done += 1
            lags.append((min(o.created_at for o in made) - d["at"]).total_seconds())
            kiosk = k.cs.order(gid)
            back += int(kiosk is not None and kiosk.third_party_id == str(made[0].number))
    exc = kiosk_exceptions(k.stack)
    out["kiosk_order_to_centra"] = {"events": len(k.deliveries), "completed": done, "exceptions": exc,
                                    "lost": max(0, len(k.deliveries) - done - exc), "duplicated": dup,
                                    "centra_number_on_kiosk_order": back, **_stats(lags, "p")}
    changes = _sync_changes(k)
    hidden, centra_lags, after_centra = [], [], []
    for p in k.last_unit:
        if p.get("hidden_at") is not None:
            hidden.append(p["hidden_at"] - p["sold_at"])
        mine = changes.get((p["store"].centra_warehouse_id, p["sku"]), [])
        if mine:
            centra_at = min(c["created_at"] for c in mine)
            centra_lags.append((centra_at - p["sold_dt"]).total_seconds())
            if p.get("hidden_at") is not None:
                after_centra.append(p["hidden_at"] - centra_at.timestamp())
    out["last_unit_hidden"] = {"events": len(k.last_unit), "hidden": len(hidden),
                               "lost": len(k.last_unit) - len(hidden), **_stats(hidden, "p"),
                               **_stats(centra_lags, "centra"), **_stats(after_centra, "kiosk_after_centra")}
    once = lost = dup = 0
    for p in k.take_home:  # the sync's deductions of the pair (a later setStock from a count would add, not deduct)
        deducted = -sum(min(0, int(c["quantity"])) for c in changes.get((p["store"].centra_warehouse_id, p["sku"]), []))
        if deducted == p["qty"]:
            once += 1
        elif deducted < p["qty"]:
            lost += 1
        else:
            dup += 1
    out["take_home"] = {"lines": len(k.take_home), "deducted_once": once, "lost": lost, "duplicated": dup}
    return out


def settled(k: KioskLegs) -> bool:
    f = figures(k)
    return (f["kiosk_order_to_centra"]["lost"] == 0 and f["last_unit_hidden"]["lost"] == 0
            and f["take_home"]["lost"] == 0)


def webhook_registered(k: KioskLegs) -> bool:
    return bool(k.cs.state.urls_for(ORDER_SUBJECT))


def sync_done(stack: Any) -> int:
    with stack.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM stock_sync_movements WHERE status = 'done'")).scalar() or 0)


def publish_kiosks(stack: Any, tier: str) -> None:
    """The devstack's start with kiosks: catalogue, locations and stock levels to Cloudshelf (the product's
    `KioskPublisher`), with Centra's and Cloudshelf's limits lifted for the setup and restored after."""
    stack.centra.state.set_rate_limits(tier="ENTERPRISE")
    stack.cloudshelf.set_rate(0)
    try:
        with stack._history_target() as target, stack._kiosk_publisher(target) as publisher:
            if publisher is None:
                raise SystemExit("the kiosk catalogue could not be published (see the log)")
    finally:
        stack.centra.state.set_rate_limits(tier=tier)
        stack.cloudshelf.set_rate(CLOUDSHELF_REQUESTS_PER_S)


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """The cloudshelf platform of bench/order_flows.py; returns the result (the caller emits it)."""
    stores = args.stores or (4 if args.quick else 50)
    rate = args.rate or (0.4 if args.quick else 0.2)  # kiosk orders per second
    stock_rate = args.stock_rate or 1.0
    seconds = args.seconds or (25.0 if args.quick else 300.0)
    sizes = args.sizes or (120 if args.quick else 300)
    lu_pairs = args.last_units or (4 if args.quick else 40)
    th_lines = args.take_home or (4 if args.quick else 25)
    tier = args.tier.upper()
    log(f"kiosks: {stores} stores x {sizes} sizes; {rate}/s kiosk orders, {stock_rate}/s POS stock events for "
        f"{seconds:g}s; {lu_pairs} last units, {th_lines} take-home lines; Centra {tier}, {args.rtt_ms:g} ms; "
        f"home {home}")
    stack = make_stack(home / "stack", sizes=sizes, stores=stores, seed=5,
                       emitter_config=EmitterConfig(backoff_initial=0.01),
                       centra_options={"tier": tier, "response_delay_s": args.rtt_ms / 1000}, kiosks=True,
                       cloudshelf_options={"webhook_options": {"duplicate_rate": 0.2, "reorder": 4, "seed": 14,
                                                               "backoff_s": 0.5}})
    result: dict[str, Any] = {"platform": "cloudshelf", "stores": stores, "sizes": sizes, "kiosk_rate_per_s": rate,
                              "stock_rate_per_s": stock_rate, "seconds": seconds, "tier": tier, "rtt_ms": args.rtt_ms,
                              "webhook_duplicate_rate": 0.2, "webhook_reorder": 4}
    with stack:
        legs = KioskLegs(stack)
        legs.setup(lu_pairs, th_lines)
        t_pub = time.monotonic()
        publish_kiosks(stack, tier)
        result["publish_s"] = round(time.monotonic() - t_pub, 1)
        result.update(legs.check_published())
        log(f"published in {result['publish_s']}s; {len(legs.pending_lu)} last units and {len(legs.pending_th)} "
            "take-home lines ready")
        stop = threading.Event()
        trader = PosTrader(stack, stock_rate)
        trader.estate = _TradedEstate(stack.estate, legs.reserved)
        with dagster_daemon(stack, home, {"PIPELINES_SYNC_SAFETY_STOCK": "1"}):
            log("daemon started; warming up (POS trading; our webhook registered by an order flows run)")
            pos = threading.Thread(target=trader.run, args=(seconds + args.warmup + 600, stop), daemon=True)
            pos.start()
            t_warm = time.monotonic()
            while time.monotonic() - t_warm < args.warmup and not (webhook_registered(legs) and sync_done(stack)):
                time.sleep(0.5)
            result["warmup_s"] = round(time.monotonic() - t_warm, 1)
            result["webhook_registered_at_start"] = webhook_registered(legs)
            if not webhook_registered(legs):
                log(f"our webhook is not registered after {args.warmup:g}s: kiosk orders wait for the poll")
            watcher = threading.Thread(target=legs.watch, args=(stop,), daemon=True)
            watcher.start()
            log("trading at the kiosks")
            t0 = time.monotonic()
            made = legs.run(seconds, rate, stop)
            log(f"made {made} in {time.monotonic() - t0:.0f}s; settling")
            result["made"] = made
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline and not settled(legs):
                time.sleep(1.0)
            result["settle_after_trading_s"] = round(time.monotonic() - t0 - seconds, 1)
            stop.set()
            pos.join(timeout=10)
            watcher.join(timeout=5)
        f = figures(legs)
        result["legs"] = f
        result["pos_stock_events"] = trader.events
        hooks = legs.cs.webhooks
        result["webhook_deliveries"] = len(hooks.deliveries)
        result["webhook_duplicates"] = sum(1 for d in hooks.deliveries if d.duplicate)
        result["webhook_gave_up"] = sum(1 for d in hooks.deliveries if d.gave_up)
        with stack.engine.connect() as conn:
            result["sync_http_429"] = int(conn.execute(text(
                "SELECT COALESCE(SUM(rate_limited), 0) FROM stock_sync_runs")).scalar() or 0)
    order, hidden, th = f["kiosk_order_to_centra"], f["last_unit_hidden"], f["take_home"]
    result["kiosk_order_to_centra_p50_s"] = order["p_p50_s"]
    result["kiosk_order_to_centra_p95_s"] = order["p_p95_s"]
    result["kiosk_order_to_centra_max_s"] = order["p_max_s"]
    result["last_unit_hidden_p50_s"] = hidden["p_p50_s"]
    result["last_unit_hidden_p95_s"] = hidden["p_p95_s"]
    result["last_unit_hidden_max_s"] = hidden["p_max_s"]
    result["last_unit_centra_p95_s"] = hidden["centra_p95_s"]
    result["last_unit_kiosk_after_centra_p95_s"] = hidden["kiosk_after_centra_p95_s"]
    result["take_home_deducted_once"] = th["deducted_once"]
    result["lost"] = order["lost"] + hidden["lost"] + th["lost"]
    result["duplicated"] = order["duplicated"] + th["duplicated"]
    result["targets_met"] = bool(
        order["events"] and hidden["events"] and th["lines"]
        and order["p_p95_s"] is not None and order["p_p95_s"] <= TARGET_ORDER_P95_S
        and hidden["p_p95_s"] is not None and hidden["p_p95_s"] <= TARGET_HIDDEN_P95_S
        and result["lost"] == 0 and result["duplicated"] == 0 and order["exceptions"] == 0)
    return result
