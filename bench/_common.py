"""Shared plumbing of the stock sync benchmarks: a simulated estate trading live, a real Dagster
daemon driving the sync, and the figures (latency, lost, double-applied, mismatches, rate use).

`--platform commercetools` (`make_stack(..., commerce="commercetools")`): the estate's commerce platform is the
commercetools simulator. Its figures come from the simulator too: `CommercetoolsProbe` records every inventory entry
update the simulator applied that carries a stock-sync marker (the batch it says it carries, and when), which stands
in for Centra's stock-change ledger; stock is each store supply channel's `quantityOnStock`.

Everything runs on loopback; every process started here is stopped here (by its own pid).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pipelines.devstack as devstack  # noqa: E402
from pipelines.connectors.commercetools.markers import MARKER_FIELD  # noqa: E402
from pipelines.domain.sync.stats import percentile  # noqa: E402
from pipelines.domain.timeutil import parse_time, utc_text  # noqa: E402
from pipelines.simulators.estate_gen import write_estate  # noqa: E402
from pipelines.sync.batches import DESCRIPTION_PREFIX  # noqa: E402

PLATFORMS = ("centra", "commercetools")

SAFETY_STOCK = 1
#: The Centra mutation fields the stock sync sends (pipelines/connectors/centra/queries.py).
SYNC_MUTATIONS = ("setStock", "changeStock")


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    """The benchmark's result: the last stdout line, one JSON object."""
    print(json.dumps(result, sort_keys=True), flush=True)


# ------------------------------------------------------------------ estate and stack


def scarce_estate_writer(scarce_share: float, seed: int):  # noqa: ANN201
    """`write_estate` wrapper: a share of SKUs is sold out at the DC and thin in stores (end of
    season), so some store sales really threaten an oversell online."""

    def write(path: Path, **kwargs: Any) -> Path:
        write_estate(path, **kwargs)
        data = json.loads(path.read_text())
        rng = random.Random(seed)
        skus = [s["sku"] for p in data["catalog"] for v in p["variants"] for s in v["sizes"]]
        scarce = set(rng.sample(skus, int(len(skus) * scarce_share)))
        for node, stock in data["initial_stock"].items():
            for sku in scarce:
                stock[sku] = 0 if node.startswith("DC") else rng.randint(0, 2)
        path.write_text(json.dumps(data))
        return path

    return write


def make_stack(home: Path, *, sizes: int, stores: int, seed: int = 7, scarce_share: float = 0.0,
               **kwargs: Any) -> devstack.Stack:
    """`devstack.Stack` (`commerce="commercetools"` among the keywords for that platform, with its probe
    installed before anything writes)."""
    if home.exists():
        shutil.rmtree(home)
    original = devstack.write_estate
    if scarce_share > 0:
        devstack.write_estate = scarce_estate_writer(scarce_share, seed)
    try:
        stack = devstack.Stack(home, sizes=sizes, stores=stores, seed=seed, **kwargs)
    finally:
        devstack.write_estate = original
    if stack.commercetools is not None:
        CommercetoolsProbe.install(stack)
    return stack


# ------------------------------------------------------------------ commercetools as the oracle


class CommercetoolsProbe:
    """Every stock-sync write the commercetools simulator applied: a wrapper around its state's inventory entry
    create/update (the simulator's HTTP routes call them under its lock). An update counts once it is applied,
    whatever the HTTP answer was (an injected 5xx after execution included), so a batch applied twice shows up
    as two writes with its description in the marker. Other writers (the concurrent-writer knob, orders) do not
    go through these methods."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, datetime]] = []  # (batch description, lastModifiedAt) per applied write
        self.answers: Counter[tuple[str, str, int]] = Counter()  # (method, resource, status) of every API answer

    @classmethod
    def install(cls, stack: devstack.Stack) -> CommercetoolsProbe:
        probe = cls()
        state = stack.commercetools.state  # type: ignore[union-attr]
        update, create, record_request = state.update_inventory, state.create_inventory, state.record_request

        def record(method: str, resource: str, path: str, status: int) -> None:
            probe.answers[(method, resource, status)] += 1
            record_request(method, resource, path, status)

        def update_inventory(ident: str, body: Any) -> dict[str, Any]:
            doc = update(ident, body)
            actions = {a.get("action") for a in (body or {}).get("actions", []) if isinstance(a, dict)}
            if actions & {"setCustomField", "setCustomType"}:
                probe._record(doc)
            return doc

        def create_inventory(draft: dict[str, Any]) -> dict[str, Any]:
            doc = create(draft)
            probe._record(doc)
            return doc

        state.update_inventory = update_inventory
        state.create_inventory = create_inventory
        state.record_request = record
        stack.commercetools_probe = probe  # type: ignore[attr-defined]
        return probe

    def _record(self, doc: dict[str, Any]) -> None:
        marker = ((doc.get("custom") or {}).get("fields") or {}).get(MARKER_FIELD)
        if not marker:
            return
        version, sep, description = marker.partition(":")  # `<version>:<description>` (commercetools_io)
        if not (sep and version.isdigit()):
            description = marker
        if description.startswith(DESCRIPTION_PREFIX):
            self.writes.append((description, parse_time(doc["lastModifiedAt"])))


def _ct_on_stock(stack: devstack.Stack) -> dict[tuple[str, str], int]:
    """(supply channel id, sku) -> quantityOnStock of every entry, in one read of the simulator's state (its
    per-entry world API scans every entry)."""
    state = stack.commercetools.state  # type: ignore[union-attr]
    with state.lock:
        state._settle()
        return {(d["supplyChannel"]["id"], d["sku"]): int(d["quantityOnStock"])
                for d in state.docs["inventory"].values() if d.get("supplyChannel")}


def store_stock(stack: devstack.Stack, store: Any, sku: str) -> int:
    """The store's stock in the commerce platform (Centra physical; commercetools the store channel's
    quantityOnStock)."""
    if stack.commercetools is not None:
        return stack.commercetools.state.stock(store.id, sku)[0]
    return stack.centra.state.stock_of(store.centra_warehouse_id, sku)["physical"]


# ------------------------------------------------------------------ live POS trading


@dataclass
class Generated:
    key: tuple[str, str, str]  # (estate location id, sku, event time to the millisecond)
    at: datetime
    kind: str
    critical: bool


@dataclass
class PosTrader:
    """Stock-affecting POS events at `rate` per second across the stores, recorded in the ground truth.

    Mix: sales (1-3 SKUs), goods receipts, stock counts (20 SKUs). A movement is *critical* when it
    leaves the SKU's true online stock (DC free-to-allocate + on-hand of the stores in the market's
    allocation rule) at or below the safety stock.
    """

    stack: devstack.Stack
    rate: float
    seed: int = 3
    mix: tuple[float, float, float] = (0.9, 0.07, 0.03)  # sale, receipt, count
    generated: list[Generated] = field(default_factory=list)
    events: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.estate = self.stack.estate
        self.rules: dict[int, list[tuple[int, ...]]] = {}
        ct = self.estate.commercetools if self.stack.commercetools is not None else None
        if ct is None:
            for rule in self.estate.centra.allocation_rules:
                for w in rule.warehouse_ids:
                    self.rules.setdefault(w, []).append(tuple(rule.warehouse_ids))
        else:  # a commercetools Store sells from its supply channels
            locations = self.estate.by_location_id
            for store in ct.stores:
                group = tuple(locations[ct.location_of_channel[k]].centra_warehouse_id
                              for k in store.supply_channel_keys if k in ct.location_of_channel)
                for w in group:
                    self.rules.setdefault(w, []).append(group)
        self.by_wid = self.estate.by_warehouse
        self._lock = threading.Lock()

    def online_after(self, wid: int, sku: str) -> int:
        ns = self.stack.newstore.state
        ct = self.stack.commercetools.state if self.stack.commercetools is not None else None
        totals = []
        for rule in self.rules.get(wid, [(wid,)]):
            total = 0
            for w in rule:
                loc = self.by_wid[w]
                if ct is not None:  # DC: its entry's availableQuantity; a store: the POS on hand
                    total += ct.stock(loc.id, sku)[1] if loc.kind == "dc" else ns.on_hand(loc.newstore_node_id, sku)
                    continue
                st = self.stack.centra.state.stock_of(w, sku)
                total += st["fta"] if loc.kind == "dc" else ns.on_hand(loc.newstore_node_id, sku) - st["allocated"]
            totals.append(total)
        return min(totals)

    def one(self, at: datetime) -> None:
        store = self.rng.choice(self.estate.stores)
        node, trader, ns = store.newstore_node_id, self.stack.trader, self.stack.newstore.state
        r = self.rng.random()
        if r < self.mix[0]:
            skus = trader._pick_stocked(node, self.rng.choice((1, 1, 1, 2, 2, 3)))
            if not skus:
                return
            items = [{"sku": s, "quantity": 1, "unit_price": self.estate.price(s, store.centra_pricelist_id),
                      "discount": 0.0} for s in skus]
            order = ns.record_store_sale(node, items, at=at)
            for s in skus:
                self.stack.truth.movement(at, node, s, -1, "sale", str(order["id"]))
            self._record(at, store.id, skus, "sale", store.centra_warehouse_id)
        elif r < self.mix[0] + self.mix[1]:
            sku = self.rng.choice(self.estate.skus())
            qty = self.rng.randint(1, 4)
            ns.receive_stock(node, {sku: qty}, at=at)
            self.stack.truth.movement(at, node, sku, qty, "receipt", f"rcv:{node}:{at.isoformat()}")
            self._record(at, store.id, [sku], "receipt", store.centra_warehouse_id)
        else:
            skus = self.rng.sample(self.estate.skus(), 20)
            counts = {s: max(0, ns.on_hand(node, s) - (1 if self.rng.random() < 0.1 else 0)) for s in skus}
            ns.count_stock(node, counts, at=at)
            for s, q in counts.items():
                self.stack.truth.count(at, node, s, q, f"count:{node}:{at.isoformat()}")
            self._record(at, store.id, skus, "count", store.centra_warehouse_id)
        self.events += 1

    def one_now(self) -> None:
        at = datetime.now(UTC)
        self.one(at.replace(microsecond=at.microsecond // 1000 * 1000))  # NewStore keeps milliseconds

    def _record(self, at: datetime, location: str, skus: list[str], kind: str, wid: int) -> None:
        stamp = utc_text(at)[:23]
        with self._lock:
            for s in skus:
                critical = kind == "sale" and self.online_after(wid, s) <= SAFETY_STOCK
                self.generated.append(Generated((location, s, stamp), at, kind, critical))

    def run(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Poisson arrivals at `rate` per second for `seconds` (event time = wall clock)."""
        end = time.monotonic() + seconds
        nxt = time.monotonic()
        while time.monotonic() < end and not (stop and stop.is_set()):
            nxt += self.rng.expovariate(self.rate)
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.one_now()


# ------------------------------------------------------------------ Dagster daemon


@contextmanager
def dagster_daemon(stack: devstack.Stack, home: Path, extra_env: dict[str, str] | None = None) -> Iterator[Path]:
    """`dagster-daemon run` on the repository's dagster.yaml (SQLite instance under `home`)."""
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, **stack.env(), "DAGSTER_HOME": str(dagster_home), **(extra_env or {})}
    exe = Path(sys.executable).parent / "dagster-daemon"
    logf = open(home / "daemon.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(exe), "run", "-w", str(ROOT / "workspace.yaml")], cwd=ROOT, env=env,
                            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield dagster_home
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)  # the daemon's own process group (started above)
            proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        logf.close()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------ figures


def settled_movements(engine: Any) -> dict[tuple[str, str, str], tuple[str, str | None, str]]:
    """(estate location id, sku, event time ms) -> (status, batch_id, applied_at) of every queued movement.

    Keyed by the estate location, not the fulfillment node id: a sale's node is the store's location
    id while a receipt's or count's is its NewStore node id; the queue maps both onto `location_id`."""
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT location_id, sku, event_time, status, batch_id, applied_at FROM stock_sync_movements "
            "WHERE event_name <> 'stock_resync' AND location_id IS NOT NULL")).all()
    return {(r[0], r[1], r[2][:23]): (r[3], r[4], r[5]) for r in rows}


def centra_batches(stack: devstack.Stack) -> tuple[dict[str, datetime], int, int]:
    """Our batches in Centra's ledger: description -> created_at, descriptions applied twice,
    and the most mutations within any 10 s window. On commercetools: the probe's applied writes."""
    seen: dict[str, set[int]] = {}
    first: dict[str, datetime] = {}
    if stack.commercetools is not None:
        probe: CommercetoolsProbe = stack.commercetools_probe  # type: ignore[attr-defined]
        for n, (description, at) in enumerate(list(probe.writes)):
            seen.setdefault(description, set()).add(n)
            first[description] = min(first.get(description, at), at)
    else:
        for c in stack.centra.state.stock_changes():
            if not c["description"].startswith(DESCRIPTION_PREFIX):
                continue
            seen.setdefault(c["description"], set()).add(c["stock_change_id"])
            first[c["description"]] = min(first.get(c["description"], c["created_at"]), c["created_at"])
    twice = sum(1 for ids in seen.values() if len(ids) > 1)
    times = sorted(first.values())
    peak, lo = 0, 0
    for hi, t in enumerate(times):
        while (t - times[lo]).total_seconds() >= 10:
            lo += 1
        peak = max(peak, hi - lo + 1)
    return first, twice, peak


def latency_figures(stack: devstack.Stack, generated: list[Generated]) -> dict[str, Any]:
    from sqlalchemy import text

    queued = settled_movements(stack.engine)
    with stack.engine.connect() as conn:
        descriptions = dict(conn.execute(text("SELECT batch_id, description FROM stock_sync_batches")).all())
    centra_at, twice, peak = centra_batches(stack)
    all_lags, critical_lags, lost = [], [], 0
    for g in generated:
        row = queued.get(g.key)
        if row is None or row[0] not in ("done", "superseded"):
            lost += 1
            continue
        status, batch_id, applied_at = row
        when = centra_at.get(descriptions.get(batch_id, ""), None) if batch_id else None
        when = when or parse_time(applied_at)
        lag = (when - g.at).total_seconds()
        all_lags.append(lag)
        if g.critical:
            critical_lags.append(lag)

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {"movements": len(generated), "critical_movements": len(critical_lags), "lost": lost,
            "double_applied": twice, "mutations_per_10s_max": peak,
            "critical_p50_s": r(percentile(critical_lags, 50)), "critical_p95_s": r(percentile(critical_lags, 95)),
            "all_p50_s": r(percentile(all_lags, 50)), "all_p95_s": r(percentile(all_lags, 95)),
            "all_p99_s": r(percentile(all_lags, 99))}


def mismatched(stack: devstack.Stack) -> list[tuple[str, str, int, int]]:
    """Store (warehouse, SKU) pairs whose stock in the commerce platform (Centra physical, commercetools the store
    channel's quantityOnStock) differs from the ground truth."""
    out = []
    on_stock = _ct_on_stock(stack) if stack.commercetools is not None else None
    for store in stack.estate.stores:
        node = store.newstore_node_id
        channel = stack.commercetools.state.channel_id(store.id) if on_stock is not None else None
        for sku in stack.estate.skus():
            want = max(0, stack.truth.expected_stock(node, sku, stack.estate.initial_stock[node][sku]))
            have = on_stock.get((channel, sku), 0) if on_stock is not None else store_stock(stack, store, sku)
            if want != have:
                out.append((node, sku, want, have))
    return out


def wait_settled(stack: devstack.Stack, generated: list[Generated], timeout: float) -> float:
    """Wait until every generated movement is settled in the queue; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        queued = settled_movements(stack.engine)
        if all((row := queued.get(g.key)) is not None and row[0] in ("done", "superseded") for g in generated):
            break
        time.sleep(1.0)
    return time.monotonic() - start


# ------------------------------------------------------------------ Dagster storage per run


def _pg_bytes(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.text(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")).scalar()
    engine.dispose()
    return int(value or 0)


def _config_fields(job: Any) -> dict[str, set[str]]:
    """op name -> the config fields it takes."""
    return {node.name: set(node.config_field.config_type.fields) if node.config_field is not None else set()
            for node in job.graph.node_defs}


def one_pass_run_config(job: Any) -> dict[str, Any]:
    """Run config making each op of the sync job a single pass: its run length set to 0, whichever field
    it has (`drain_s` of the draining sync, `window_s` of the always-on one)."""
    ops: dict[str, Any] = {}
    for op, fields in _config_fields(job).items():
        name = next((n for n in ("drain_s", "window_s", "run_window_s") if n in fields), None)
        if name is not None:
            ops[op] = {"config": {name: 0.0}}
    return {"ops": ops} if ops else {}


def op_config(job: Any, op: str, wanted: dict[str, Any]) -> dict[str, Any]:
    """Run config for `op` of `job` with those of `wanted` that the op still takes."""
    fields = _config_fields(job).get(op, set())
    return {"ops": {op: {"config": {k: v for k, v in wanted.items() if k in fields}}}}


def instance_storage(stack: devstack.Stack, trader: PosTrader, kind: str, runs: int) -> dict[str, Any]:
    """Bytes one stock_sync_job run (executed in process, one pass, a few movements each) adds to a
    Dagster instance on SQLite or PostgreSQL, and what is left after the retention job pruned them."""
    import tempfile

    import dagster as dg

    from pipelines.defs.resources import (
        CentraResource,
        CommercetoolsResource,
        EstateResource,
        StoreOfRecord,
        SyncSettings,
    )
    from pipelines.defs.sync.jobs import stock_sync_job, stock_sync_retention_job

    env = stack.env()
    resources = {"store": StoreOfRecord(database_url=stack.database_url),
                 "estate": EstateResource(path=str(stack.estate_file)),
                 "centra": CentraResource(base_url=env["CENTRA_API_URL"], token=env["CENTRA_API_TOKEN"]),
                 "commercetools": CommercetoolsResource(**({
                     "api_url": env["COMMERCETOOLS_API_URL"], "auth_url": env["COMMERCETOOLS_AUTH_URL"],
                     "client_id": env["COMMERCETOOLS_CLIENT_ID"], "client_secret": env["COMMERCETOOLS_CLIENT_SECRET"]}
                     if "COMMERCETOOLS_API_URL" in env else {})),
                 "sync_settings": SyncSettings()}
    with contextlib.ExitStack() as stack_ctx:
        home = Path(stack_ctx.enter_context(tempfile.TemporaryDirectory()))
        if kind == "sqlite":
            shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
            size = lambda: dir_bytes(home)  # noqa: E731
        else:
            from pipelines_tests.pg_server import throwaway_postgres

            url = stack_ctx.enter_context(throwaway_postgres())
            host, port = url.split("@", 1)[1].split("/", 1)[0].split(":")
            os.environ.update({"DAGSTER_PG_HOST": host, "DAGSTER_PG_PORT": port, "DAGSTER_PG_USER": "postgres",
                               "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": "pipelines"})
            shutil.copy(ROOT / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
            size = lambda: _pg_bytes(url)  # noqa: E731
        instance = dg.DagsterInstance.from_config(str(home))
        stack_ctx.callback(instance.dispose)
        one_pass = one_pass_run_config(stock_sync_job)
        stock_sync_job.execute_in_process(instance=instance, resources=resources, run_config=one_pass)  # schema warm
        base = size()
        for _ in range(runs):
            for _ in range(3):
                trader.one(datetime.now(UTC))
            time.sleep(0.3)
            stock_sync_job.execute_in_process(instance=instance, resources=resources, run_config=one_pass)
        grown = size() - base
        events = sum(len(instance.all_logs(r.run_id)) for r in
                     instance.get_runs(filters=dg.RunsFilter(job_name="stock_sync_job"), limit=runs))
        prune = {"sync_run_hours": 0.0, "failed_run_days": 7.0, "tick_hours": 24.0, "store_days": 90.0}
        stock_sync_retention_job.execute_in_process(
            instance=instance, resources=resources,
            run_config=op_config(stock_sync_retention_job, "prune_stock_sync_history", prune))
        left = len(instance.get_runs(filters=dg.RunsFilter(job_name="stock_sync_job")))
        return {"bytes_per_run": round(grown / runs), "events_per_run": round(events / runs, 1),
                "bytes_after_prune_vs_before": size() - base, "sync_runs_left_after_prune": left}
