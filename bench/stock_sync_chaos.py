"""Exactly once in effect under faults: 10,000 POS movements through the stock sync while everything
goes wrong, then Centra's physical stock is compared with the ground truth for every (warehouse, SKU).

    python bench/stock_sync_chaos.py            # 10,000 movements, 10 stores
    python bench/stock_sync_chaos.py --quick    # 2,000 movements (under two minutes)
    python bench/stock_sync_chaos.py --platform commercetools [--quick]

Faults: NewStore's event stream delivers 10 % of events twice and reorders them (shuffle windows,
random delays); Centra answers 429 storms (bursts of 429 with Retry-After) and 5xx bursts (500/502/
503, half of them *after* applying the mutation, like a gateway timing out after the backend
committed); and one sync run is killed (a separate process, `os._exit`) right after Centra accepted
its mutation and before our commit. Sync runs follow each other like the sensor would request them
(`--window` seconds each, the next one `--restart-delay` seconds after a run ends, here in this
process except for the killed one). Centra's Growth tier rate limits stay on.

`--platform commercetools`: the estate's commerce platform is the commercetools simulator. Faults there: 502/503
bursts (half of them after the update was applied), 409 storms (the simulator's concurrent-writer knob: for a few
seconds another writer changes most entries between our read and our write, so our update meets
ConcurrentModification and is resent with the new version), and the same kill after commercetools applied a batch
and before our commit. Its figures come from the simulator: double_applied = a batch whose marker two applied
updates carried (`_common.CommercetoolsProbe`), mismatched_skus = store channel quantityOnStock != ground truth.

Figures: movements, lost (movements never settled), double_applied (a batch found twice in Centra's
ledger), mismatched_skus (store warehouse x SKU where Centra physical != ground truth), recovery_s
(from the kill to the killed batch being settled from Centra's ledger without a resend, including
the `--restart-delay` before the next run starts). The last
stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PLATFORMS,
    PosTrader,
    centra_batches,
    emit,
    latency_figures,
    log,
    make_stack,
    mismatched,
)

from pipelines.connectors.centra import CentraClient  # noqa: E402
from pipelines.connectors.commercetools import CommercetoolsClient  # noqa: E402
from pipelines.estate import load_estate  # noqa: E402
from pipelines.simulators.newstore import EmitterConfig  # noqa: E402
from pipelines.store import make_engine  # noqa: E402
from pipelines.sync import StockSync, SyncBusy, SyncConfig  # noqa: E402
from pipelines.sync.centra_io import CentraStockTarget  # noqa: E402
from pipelines.sync.commercetools_io import CommercetoolsStockTarget  # noqa: E402
from pipelines.sync.queue import work_state  # noqa: E402
from pipelines.sync.target import StockTarget  # noqa: E402

CONFIG = SyncConfig(settle_s=2.0, poll_s=0.2)


def open_target(spec: dict, estate) -> tuple[StockTarget, object]:  # noqa: ANN001
    """The sync's target for the bench's platform (one attempt per request, as in production), and its client."""
    if spec["platform"] == "commercetools":
        client = CommercetoolsClient(spec["ct_url"], spec["ct_url"], spec["ct_project"], spec["ct_client_id"],
                                     spec["ct_client_secret"], max_attempts=1)
        return CommercetoolsStockTarget(client, estate), client
    client = CentraClient(spec["centra_url"], spec["token"], max_attempts=1)
    return CentraStockTarget(client, estate), client


def worker(spec: dict) -> None:
    """A sync run that dies right after the platform accepted its first batch (before our commit)."""

    def die(batch) -> None:  # noqa: ANN001
        print(batch.batch_id, flush=True)
        os._exit(137)

    engine = make_engine(spec["database_url"])
    estate = load_estate(spec["estate"])
    target, _client = open_target(spec, estate)
    StockSync(engine, estate, target, CONFIG, after_accept=die).run(window_s=60)
    print("", flush=True)  # never accepted anything


class Chaos(threading.Thread):
    """429 storms and 5xx bursts on the Centra simulator until stopped (each one hits the next requests
    that arrive; a new one is only armed once the previous has been met)."""

    def __init__(self, state, seed: int = 5) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.state, self.rng, self.stop = state, random.Random(seed), threading.Event()
        self.storms = self.bursts = self.after_execute = 0
        self.storms_409 = 0

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(3, 8)):
            if self.state._forced:  # the previous storm has not hit a request yet: don't stack them up
                continue
            if self.rng.random() < 0.5:
                self.state.fail_next(429, count=self.rng.randint(3, 12), retry_after=self.rng.randint(1, 3))
                self.storms += 1
            else:
                after = self.rng.random() < 0.5
                self.state.fail_next(self.rng.choice((500, 502, 503)), count=self.rng.randint(1, 4),
                                     after_execute=after)
                self.bursts += 1
                self.after_execute += int(after)


class CtChaos(Chaos):
    """On the commercetools simulator: 409 storms (another writer bumps the entry between our read and our write,
    with probability 0.5-0.9, for 2-5 s) and 502/503 bursts (half of them after the update was applied)."""

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(3, 8)):
            if self.state._faults:  # the previous burst has not hit a request yet
                continue
            if self.rng.random() < 0.5:
                self.state.concurrent_writer(self.rng.uniform(0.5, 0.9))  # delta 0: quantities stay the truth's
                self.storms_409 += 1
                self.stop.wait(self.rng.uniform(2, 5))
                self.state.concurrent_writer(0)
            else:
                after = self.rng.random() < 0.5
                self.state.fail_next(self.rng.choice((502, 503)), count=self.rng.randint(1, 4), after_execute=after)
                self.bursts += 1
                self.after_execute += int(after)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--movements", type=int)
    ap.add_argument("--stores", type=int, default=10)
    ap.add_argument("--sizes", type=int)
    ap.add_argument("--rate", type=float, default=60.0, help="POS events per second while generating")
    ap.add_argument("--window", type=float, default=10.0, help="seconds per sync run (its window)")
    ap.add_argument("--restart-delay", type=float, default=5.0,
                    help="pause before the next run (the sensor's interval; Dagster adds a few s of launch)")
    ap.add_argument("--platform", choices=PLATFORMS, default="centra", help="the estate's commerce platform")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    target = args.movements or (2000 if args.quick else 10_000)
    sizes = args.sizes or (300 if args.quick else 1000)
    home = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    emitter = EmitterConfig(duplicate_rate=0.1, shuffle_window=40, shuffle_linger=0.3, delay=1.0,
                            backoff_initial=0.01)
    ct = args.platform == "commercetools"
    stack = make_stack(home / "stack", sizes=sizes, stores=args.stores, seed=11, emitter_config=emitter,
                       **({"commerce": "commercetools"} if ct else {}))
    result: dict = {"target_movements": target, "stores": args.stores, "sizes": sizes,
                    "tier": "n/a" if ct else "GROWTH", "platform": args.platform,
                    "restart_delay_s": args.restart_delay, "window_s": args.window}
    with stack:
        env = stack.env()
        spec = {"platform": args.platform, "database_url": stack.database_url, "estate": str(stack.estate_file),
                "centra_url": env["CENTRA_API_URL"], "token": env["CENTRA_API_TOKEN"]}
        if ct:
            spec |= {"ct_url": env["COMMERCETOOLS_API_URL"], "ct_project": stack.commercetools.project_key,
                     "ct_client_id": env["COMMERCETOOLS_CLIENT_ID"],
                     "ct_client_secret": env["COMMERCETOOLS_CLIENT_SECRET"]}
        trader = PosTrader(stack, args.rate, seed=9, mix=(0.8, 0.1, 0.1))
        chaos = CtChaos(stack.commercetools.state) if ct else Chaos(stack.centra.state)
        stop_sync, pause, idle = threading.Event(), threading.Event(), threading.Event()
        runs = {"n": 0, "busy": 0}

        def sync_loop() -> None:
            while not stop_sync.is_set():
                if pause.is_set():
                    idle.set()
                    time.sleep(0.05)
                    continue
                idle.clear()
                target_, client = open_target(spec, stack.estate)
                try:
                    StockSync(stack.engine, stack.estate, target_, CONFIG).run(window_s=args.window, stop=pause)
                    runs["n"] += 1
                except SyncBusy:
                    runs["busy"] += 1
                finally:
                    client.close()
                stop_sync.wait(args.restart_delay)

        syncer = threading.Thread(target=sync_loop, daemon=True)
        chaos.start()
        syncer.start()
        log(f"generating {target} movements at {args.rate} events/s; home {home}")
        killed_batch, kill_at, recovered_at = None, 0.0, []
        while len(trader.generated) < target:
            trader.one_now()
            time.sleep(1.0 / args.rate)
            if killed_batch is None and len(trader.generated) >= target // 2:
                pause.set()
                idle.wait(120)  # the running run notices `pause` after its pass and ends
                proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                                      text=True, timeout=120)
                kill_at = time.monotonic()
                killed_batch = proc.stdout.strip() or "none"
                log(f"sync run killed after {args.platform} accepted batch {killed_batch} (exit {proc.returncode})")
                threading.Thread(target=_watch, args=(stack, killed_batch, recovered_at), daemon=True).start()
                time.sleep(args.restart_delay)  # the sensor requests the next run on its next tick
                pause.clear()
        log(f"generated {len(trader.generated)} movements ({trader.events} events); draining")
        stack.flush(300)
        deadline = time.monotonic() + 600
        quiet = 0
        while time.monotonic() < deadline and quiet < 3:
            quiet = quiet + 1 if not work_state(stack.engine).has_work else 0
            time.sleep(1.0)
        chaos.stop.set()
        stop_sync.set()
        syncer.join(timeout=args.window + 30)
        recovery_s = round(recovered_at[0] - kill_at, 2) if recovered_at else None
        figures = latency_figures(stack, trader.generated)
        _, twice, peak = centra_batches(stack)
        bad = mismatched(stack)
        result.update({
            "movements": len(trader.generated), "events": trader.events, "lost": figures["lost"],
            "double_applied": twice, "mismatched_skus": len(bad), "recovery_s": recovery_s,
            "killed_batch_recovered": recovery_s is not None, "mutations_per_10s_max": peak,
            "sync_runs": runs["n"] + 1, "storms_429": chaos.storms, "bursts_5xx": chaos.bursts,
            **({"storms_409": chaos.storms_409,
                "http_409": stack.commercetools_probe.answers[("POST", "inventory", 409)],
                "http_5xx": sum(n for (_m, _r, st), n in stack.commercetools_probe.answers.items() if st >= 500)}
               if ct else {}),
            "bursts_5xx_after_execute": chaos.after_execute,
            "duplicate_deliveries": sum(1 for d in stack.newstore.emitter.deliveries() if d.duplicate),
            "store_keys_compared": len(stack.estate.stores) * len(stack.estate.skus()),
            "mismatch_sample": bad[:5]})
    emit(result)


def _watch(stack, batch_id: str, out: list[float], timeout: float = 300) -> None:  # noqa: ANN001
    """Record when the killed batch is settled (status applied) by a later run."""
    from sqlalchemy import text

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with stack.engine.connect() as conn:
            status = conn.execute(text("SELECT status FROM stock_sync_batches WHERE batch_id = :b"),
                                  {"b": batch_id}).scalar()
        if status == "applied":
            out.append(time.monotonic())
            return
        time.sleep(0.05)


if __name__ == "__main__":
    main()
