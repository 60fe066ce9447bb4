"""Store sale -> online stock latency through the whole product, at Centra's Growth rate-limit tier.

    python bench/stock_sync_latency.py            # 50 stores, 20 POS stock events/s for 5 minutes
    python bench/stock_sync_latency.py --quick    # 10 stores, 5 events/s for 40 s (under two minutes)
    python bench/stock_sync_latency.py --hourly-drained   # the steady state of a long peak (hourly quota used up)

The simulated estate runs in this process (Centra and NewStore simulators, intake, ground truth); a
real `dagster-daemon` (the repository's dagster.yaml and workspace.yaml, SQLite instance) evaluates
stock_sync_sensor and launches stock_sync_job runs as their own processes, exactly as in
production. POS events (sales, goods receipts, counts) are generated live at R events/s across the
stores; NewStore's event stream delivers them to the intake. Latency per movement = the time of the
Centra stock change that carried it (its ledger createdAt; for a movement netted to nothing or
absorbed by a count: when our run settled it) minus the POS event time. A movement is critical when
it leaves the SKU's true online stock (DC + stores of the market's allocation rule) at or below the
safety stock (1); a share of SKUs is sold out at the DC (`--scarce`) so that this happens.

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

from pipelines.simulators.newstore import EmitterConfig  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stores", type=int)
    ap.add_argument("--rate", type=float, help="POS stock events per second, estate-wide")
    ap.add_argument("--seconds", type=float, help="how long to trade")
    ap.add_argument("--sizes", type=int)
    ap.add_argument("--scarce", type=float, default=0.1, help="share of SKUs sold out at the DC")
    ap.add_argument("--drain", type=float, default=50.0, help="PIPELINES_SYNC_DRAIN_S for the runs")
    ap.add_argument("--storage-runs", type=int, default=20, help="runs for the in-process storage measurement")
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
    stack = make_stack(home / "stack", sizes=sizes, stores=stores, scarce_share=args.scarce,
                       emitter_config=EmitterConfig(backoff_initial=0.01))
    result: dict = {"stores": stores, "rate_per_s": rate, "seconds": seconds, "sizes": sizes, "tier": "GROWTH",
                    "drain_s": args.drain}
    with stack:
        trader = PosTrader(stack, rate)
        env = {"PIPELINES_SYNC_DRAIN_S": str(args.drain), "PIPELINES_SYNC_SAFETY_STOCK": "1"}
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
                stack.centra.state.rate_limiter.set_remaining("MUTATION_COUNT", "ONE_HOUR", 0)
                result["hourly_drained"] = True
            runs0, ticks0, tick_bytes0 = sync_runs(dagster_home)
            bytes0 = dir_bytes(dagster_home)
            log("trading")
            t0 = time.monotonic()
            trader.run(seconds)
            log(f"traded {trader.events} events ({len(trader.generated)} movements) in {time.monotonic() - t0:.0f}s")
            waited = wait_settled(stack, trader.generated, timeout=240)
            log(f"settled {waited:.0f}s after trading stopped")
            runs1, ticks1, tick_bytes1 = sync_runs(dagster_home)
            bytes1 = dir_bytes(dagster_home)
        result.update(latency_figures(stack, trader.generated))
        result["events"] = trader.events
        result["settle_after_trading_s"] = round(waited, 1)
        result["mismatched_skus"] = len(mismatched(stack))
        result["http_429"] = rate_limited(stack)
        runs = max(1, runs1 - runs0)
        result["sync_runs"] = runs1 - runs0
        result["sensor_ticks"] = ticks1 - ticks0
        result["tick_storage_bytes_growth"] = tick_bytes1 - tick_bytes0
        result["bytes_per_run_daemon_sqlite"] = round((bytes1 - bytes0) / runs)
        log("measuring instance storage per run (in process, SQLite and PostgreSQL)")
        result["storage_sqlite"] = instance_storage(stack, trader, "sqlite", storage_runs)
        try:
            result["storage_postgres"] = instance_storage(stack, trader, "postgres", storage_runs)
        except Exception as exc:  # noqa: BLE001 - no PostgreSQL binaries: report, don't fail
            result["storage_postgres"] = {"error": str(exc)[:200]}
    emit(result)


if __name__ == "__main__":
    main()
