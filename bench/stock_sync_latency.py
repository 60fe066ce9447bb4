"""Store sale -> online stock latency through the whole product, at a Centra rate-limit tier.

    python bench/stock_sync_latency.py            # 50 stores, 20 POS stock events/s for 5 minutes
    python bench/stock_sync_latency.py --quick    # 10 stores, 5 events/s for 40 s (a few minutes in all)
    python bench/stock_sync_latency.py --hourly-drained   # the steady state of a long peak (hourly quota used up)
    python bench/stock_sync_latency.py --tier enterprise --rtt-ms 600 --window 300
    python bench/stock_sync_latency.py --platform commercetools --stores 50 --rate 1   # the design load on commercetools

Centra is simulated at `--tier` (growth, the default; enhanced, high_volume, enterprise: its rate
limits) with every GraphQL response delayed by `--rtt-ms` (default 300 ms; real round trips to
Centra's API take about 0.3-0.6 s). Each sync run lives `--window` seconds (PIPELINES_SYNC_RUN_WINDOW_S,
default 900) before handing over to its successor.

The simulated estate runs in this process (Centra and NewStore simulators, intake, ground truth); a
real `dagster-daemon` (the repository's dagster.yaml and workspace.yaml, SQLite instance) evaluates
stock_sync_sensor and launches stock_sync_job runs as their own processes, exactly as in
production. POS events (sales, goods receipts, counts) are generated live at R events/s across the
stores; NewStore's event stream delivers them to the intake. Latency per movement = the time of the
Centra stock change that carried it (its ledger createdAt; for a movement netted to nothing or
absorbed by a count: when our run settled it) minus the POS event time. A movement is critical when
it leaves the SKU's true online stock (DC + stores of the market's allocation rule) at or below the
safety stock (1); a share of SKUs is sold out at the DC (`--scarce`) so that this happens.

The measured window runs from the start of trading until every movement has settled (`window_s`).
Over it, from the Centra simulator (the oracle, not the product's own reports): `centra_mutations`,
the MUTATION_COUNT tokens its rate limiter charged for the sync's setStock/changeStock fields
(`centra_stock_changes`: the sync's entries in Centra's stock ledger, a cross-check; a setStock that
changed nothing leaves none), and `quota_share` = centra_mutations / (the tier's ONE_HOUR
MUTATION_COUNT quota x window_s / 3600). From the daemon's instance: `sync_runs` launched and
`sensor_ticks` in the window, and both scaled to an hour (`sync_runs_per_hour`, `sensor_ticks_per_hour`);
a run started before the window and still alive in it is not counted.

`--platform commercetools`: the estate's commerce platform is the commercetools simulator (every answer delayed
`--rtt-ms`; `--tier`, `--hourly-drained` do not apply: commercetools publishes no request quota). The same JSON:
a movement's time in commercetools is the `lastModifiedAt` of the inventory entry update that carried its batch
(`_common.CommercetoolsProbe`, from the simulator); `centra_mutations` and `centra_stock_changes` are then the
sync's applied inventory entry writes, `mutation_quota_per_hour` the request budget the sync keeps to
(COMMERCETOOLS_REQUESTS_PER_S x 3600) and `quota_share` the writes' share of it; `http_409` counts the simulator's
409 answers to inventory updates (`http_429`: the sync's own rate-limited count, as on Centra).

Also measured: the bytes one sync run adds to the Dagster instance (daemon-launched runs on SQLite,
and in-process runs on SQLite and PostgreSQL, with what the retention job leaves). The last stdout
line is one JSON object.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PLATFORMS,
    SYNC_MUTATIONS,
    PosTrader,
    dagster_daemon,
    dir_bytes,
    emit,
    instance_storage,
    latency_figures,
    log,
    make_stack,
    mismatched,
    wait_settled,
)

from pipelines.simulators.centra.ratelimit import MUTATION_COUNT, TIERS  # noqa: E402
from pipelines.simulators.newstore import EmitterConfig  # noqa: E402
from pipelines.sync.batches import DESCRIPTION_PREFIX  # noqa: E402


def sync_runs(dagster_home: Path) -> tuple[int, int, int]:
    """(stock_sync_job runs, stock_sync_sensor ticks, bytes of the tick storage) in the daemon's instance."""
    out = []
    for db, sql in ((dagster_home / "history" / "runs.db", "SELECT COUNT(*) FROM runs WHERE pipeline_name = 'stock_sync_job'"),
                    (dagster_home / "schedules" / "schedules.db",
                     "SELECT COUNT(*) FROM job_ticks WHERE tick_body LIKE '%stock_sync_sensor%'")):
        try:
            with sqlite3.connect(db, timeout=30) as conn:
                out.append(int(conn.execute(sql).fetchone()[0]))
        except sqlite3.Error:
            out.append(0)
    out.append(dir_bytes(dagster_home / "schedules"))
    return out[0], out[1], out[2]


def settled_count(stack) -> int:  # noqa: ANN001
    from sqlalchemy import text

    with stack.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM stock_sync_movements WHERE status = 'done'")).scalar() or 0)


def rate_limited(stack) -> int:  # noqa: ANN001
    from sqlalchemy import text

    with stack.engine.connect() as conn:
        return int(conn.execute(text("SELECT COALESCE(SUM(rate_limited), 0) FROM stock_sync_runs")).scalar() or 0)


def centra_mutation_use(stack) -> tuple[int, int]:  # noqa: ANN001
    """(MUTATION_COUNT tokens Centra's limiter charged for the sync's mutation fields so far, the sync's
    entries in Centra's stock ledger so far), both read from the simulator. commercetools: the sync's applied
    inventory entry writes (twice)."""
    if stack.commercetools is not None:
        writes = len(stack.commercetools_probe.writes)
        return writes, writes
    charged = stack.centra.app.state.graphql.mutations_charged
    ledger = len({c["stock_change_id"] for c in stack.centra.state.stock_changes()  # one row per line
                  if c["description"].startswith(DESCRIPTION_PREFIX)})
    return sum(charged[name] for name in SYNC_MUTATIONS), ledger


def hourly_mutation_quota(stack) -> int:  # noqa: ANN001
    """The ONE_HOUR MUTATION_COUNT quota Centra's limiter runs with now (tier x multiplier, overrides).
    commercetools: the request budget the sync keeps to, per hour."""
    if stack.commercetools is not None:
        from pipelines.defs.resources import CommercetoolsResource
        from pipelines.settings import commercetools

        return int(CommercetoolsResource(**commercetools()).requests_per_s * 3600)
    return next(int(r["quota"]) for r in stack.centra.state.rate_limiter.snapshot()
                if r["type"] == MUTATION_COUNT and r["interval_seconds"] == "ONE_HOUR")


def drain_hourly_quota(stack) -> None:  # noqa: ANN001
    """The steady state of a long peak: Centra's hourly mutation bucket is empty, and so is the sync's own
    share of it (in a long peak the sync has spent its share too; `stock_sync_rate_buckets`, the state the
    sync's runs share). Only the hourly refill is left, and the sync may take its share of that."""
    from sqlalchemy import text

    stack.centra.state.rate_limiter.set_remaining("MUTATION_COUNT", "ONE_HOUR", 0)
    with stack.engine.begin() as conn:
        drained = conn.execute(text(
            "UPDATE stock_sync_rate_buckets SET level = 0, at = :now "
            "WHERE kind = 'MUTATION_COUNT' AND interval_s = 3600"), {"now": time.time()}).rowcount
    if not drained:
        raise SystemExit("the sync has not recorded its hourly mutation bucket yet (stock_sync_rate_buckets)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stores", type=int)
    ap.add_argument("--rate", type=float, help="POS stock events per second, estate-wide")
    ap.add_argument("--seconds", type=float, help="how long to trade")
    ap.add_argument("--sizes", type=int)
    ap.add_argument("--scarce", type=float, default=0.1, help="share of SKUs sold out at the DC")
    ap.add_argument("--tier", default="growth", choices=[t.lower() for t in TIERS],
                    help="Centra rate-limit tier of the simulator (default growth)")
    ap.add_argument("--rtt-ms", type=float, default=300.0,
                    help="simulated round trip of every Centra GraphQL request, ms (default 300)")
    ap.add_argument("--window", type=float, default=900.0,
                    help="PIPELINES_SYNC_RUN_WINDOW_S: seconds a sync run lives before its successor takes over")
    ap.add_argument("--storage-runs", type=int, default=20, help="runs for the in-process storage measurement")
    ap.add_argument("--platform", choices=PLATFORMS, default="centra", help="the estate's commerce platform")
    ap.add_argument("--hourly-drained", action="store_true",
                    help="start trading with Centra's hourly mutation quota used up (the steady state after "
                         "~20 min of peak): only the hourly refill is left")
    args = ap.parse_args()
    stores = args.stores or (10 if args.quick else 50)
    rate = args.rate or (5.0 if args.quick else 20.0)
    seconds = args.seconds or (40.0 if args.quick else 300.0)
    sizes = args.sizes or (400 if args.quick else 2000)
    storage_runs = 5 if args.quick else args.storage_runs

    home = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    log(f"estate: {stores} stores x {sizes} sizes; {rate}/s for {seconds}s; home {home}")
    ct = args.platform == "commercetools"
    if ct and args.hourly_drained:
        raise SystemExit("--hourly-drained is Centra's hourly mutation quota; commercetools has none")
    tier = "n/a" if ct else args.tier.upper()
    if ct:
        log(f"commercetools: round trip {args.rtt_ms:g} ms; sync run window {args.window:g} s")
        platform_options: dict = {"commerce": "commercetools",
                                  "commercetools_options": {"response_delay_s": args.rtt_ms / 1000}}
    else:
        log(f"Centra: tier {tier}, round trip {args.rtt_ms:g} ms; sync run window {args.window:g} s")
        # The tier is the simulator's configured one (a constructor option, not a later switch), so it is
        # also what Stack.history restores after its temporary ENTERPRISE limits.
        platform_options = {"centra_options": {"tier": tier, "response_delay_s": args.rtt_ms / 1000}}
    stack = make_stack(home / "stack", sizes=sizes, stores=stores, scarce_share=args.scarce,
                       emitter_config=EmitterConfig(backoff_initial=0.01), **platform_options)
    if not ct and stack.centra.state.rate_limiter.tier != tier:
        raise SystemExit(f"the Centra simulator runs at {stack.centra.state.rate_limiter.tier}, not {tier}")
    result: dict = {"stores": stores, "rate_per_s": rate, "seconds": seconds, "sizes": sizes, "tier": tier,
                    "rtt_ms": args.rtt_ms, "run_window_s": args.window,
                    **({"platform": "commercetools"} if ct else {})}
    with stack:
        trader = PosTrader(stack, rate)
        env = {"PIPELINES_SYNC_RUN_WINDOW_S": str(args.window), "PIPELINES_SYNC_SAFETY_STOCK": "1"}
        with dagster_daemon(stack, home, env) as dagster_home:
            log("daemon started; warming up (first sensor tick and run)")
            trader.one(datetime.now(UTC))
            deadline = time.monotonic() + 180
            while settled_count(stack) == 0 and time.monotonic() < deadline:
                time.sleep(0.5)
            if settled_count(stack) == 0:
                raise SystemExit(f"no movement synced within 180 s; see {home / 'daemon.log'}")
            trader.generated.clear()
            if args.hourly_drained:
                drain_hourly_quota(stack)
                result["hourly_drained"] = True
            runs0, ticks0, tick_bytes0 = sync_runs(dagster_home)
            bytes0 = dir_bytes(dagster_home)
            mutations0, ledger0 = centra_mutation_use(stack)
            log("trading")
            t0 = time.monotonic()
            trader.run(seconds)
            log(f"traded {trader.events} events ({len(trader.generated)} movements) in {time.monotonic() - t0:.0f}s")
            # Long enough for the last additions (due 4 x the batching delay after their movement, then
            # queued behind a drained budget): a movement still pending after this counts as lost.
            waited = wait_settled(stack, trader.generated, timeout=900)
            window_s = time.monotonic() - t0
            mutations1, ledger1 = centra_mutation_use(stack)
            log(f"settled {waited:.0f}s after trading stopped")
            runs1, ticks1, tick_bytes1 = sync_runs(dagster_home)
            bytes1 = dir_bytes(dagster_home)
        result.update(latency_figures(stack, trader.generated))
        result["events"] = trader.events
        result["settle_after_trading_s"] = round(waited, 1)
        result["mismatched_skus"] = len(mismatched(stack))
        result["http_429"] = rate_limited(stack)
        if ct:
            result["http_409"] = stack.commercetools_probe.answers[("POST", "inventory", 409)]
        per_hour = 3600 / window_s
        quota = hourly_mutation_quota(stack)
        result["window_s"] = round(window_s, 1)
        result["centra_mutations"] = mutations1 - mutations0
        result["centra_stock_changes"] = ledger1 - ledger0
        result["mutation_quota_per_hour"] = quota
        result["quota_share"] = round((mutations1 - mutations0) / (quota * window_s / 3600), 4)
        runs = max(1, runs1 - runs0)
        result["sync_runs"] = runs1 - runs0
        result["sensor_ticks"] = ticks1 - ticks0
        result["sync_runs_per_hour"] = round((runs1 - runs0) * per_hour, 1)
        result["sensor_ticks_per_hour"] = round((ticks1 - ticks0) * per_hour, 1)
        result["tick_storage_bytes_growth"] = tick_bytes1 - tick_bytes0
        result["bytes_per_run_daemon_sqlite"] = round((bytes1 - bytes0) / runs)
        log("measuring instance storage per run (in process, SQLite and PostgreSQL)")
        try:
            result["storage_sqlite"] = instance_storage(stack, trader, "sqlite", storage_runs)
        except Exception as exc:  # noqa: BLE001 - report it with the latency figures rather than lose them
            result["storage_sqlite"] = {"error": str(exc)[:200]}
        try:
            result["storage_postgres"] = instance_storage(stack, trader, "postgres", storage_runs)
        except Exception as exc:  # noqa: BLE001 - no PostgreSQL binaries: report, don't fail
            result["storage_postgres"] = {"error": str(exc)[:200]}
    emit(result)


if __name__ == "__main__":
    main()
