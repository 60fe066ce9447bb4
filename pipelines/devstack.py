"""`pipelines-dev`: the whole product on one machine with simulated platforms.

Starts the Centra and NewStore simulators, the intake service (the simulators deliver their event
stream and webhooks to it), the trading generator (a few days of history, then live trading) and
Dagster (`dagster dev`: webserver + daemon) on the embedded defaults, then prints the UI address.
Everything lives under PIPELINES_HOME/devstack (default ./data/devstack) and starts fresh each time:
the simulated platforms keep their world in memory.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.newstore import NewStoreClient
from pipelines.estate import load_estate
from pipelines.intake.app import IntakeConfig, create_intake_app
from pipelines.simulators.centra import CentraSimulator
from pipelines.simulators.estate_gen import write_estate
from pipelines.simulators.ground_truth import GroundTruth
from pipelines.simulators.newstore import EmitterConfig, NewStoreSimulator
from pipelines.simulators.serving import BackgroundServer
from pipelines.simulators.trading import TradingConfig, TradingGenerator
from pipelines.store import make_engine, migrate

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("pipelines.devstack")


class Stack:
    """The simulated estate and intake, running in this process (used by the CLI, tests and benchmarks)."""

    def __init__(self, home: Path, *, sizes: int = 2000, stores: int = 12, seed: int = 7,
                 centra_port: int | None = None, newstore_port: int | None = None, intake_port: int | None = None,
                 trading: TradingConfig | None = None, database_url: str | None = None,
                 emitter_config: EmitterConfig | None = None, centra_options: dict | None = None):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.estate_file = write_estate(home / "estate.json", sizes=sizes, stores=stores, seed=seed)
        self.estate = load_estate(self.estate_file)
        self.database_url = database_url or f"sqlite:///{home / 'pipelines.sqlite'}"
        self.engine = make_engine(self.database_url)
        migrate(self.engine)
        self.secrets = {
            "CENTRA_API_TOKEN": secrets.token_urlsafe(24),
            "CENTRA_WEBHOOK_SECRET": secrets.token_urlsafe(24),
            "NEWSTORE_CLIENT_ID": "pipelines",
            "NEWSTORE_CLIENT_SECRET": secrets.token_urlsafe(24),
            "NEWSTORE_EVENTSTREAM_API_KEY": secrets.token_urlsafe(24),
        }
        self.tenant = "nordlys-sandbox"
        self.intake = BackgroundServer(create_intake_app(self.engine, IntakeConfig(
            newstore_api_key=self.secrets["NEWSTORE_EVENTSTREAM_API_KEY"],
            centra_webhook_secret=self.secrets["CENTRA_WEBHOOK_SECRET"])), port=intake_port)
        self.centra = CentraSimulator(
            self.estate, tokens=[self.secrets["CENTRA_API_TOKEN"]],
            webhook_url=f"http://{self.intake.host}:{self.intake.port}/centra/webhooks",
            webhook_secret=self.secrets["CENTRA_WEBHOOK_SECRET"], webhook_options={"retries": 3},
            **(centra_options or {}))
        self.newstore = NewStoreSimulator(
            self.estate, tenant=self.tenant, seed=seed,
            clients={self.secrets["NEWSTORE_CLIENT_ID"]: self.secrets["NEWSTORE_CLIENT_SECRET"]},
            emitter_config=emitter_config)
        self.centra_server = BackgroundServer(self.centra.app, port=centra_port)
        self.newstore_server = BackgroundServer(self.newstore.app, port=newstore_port)
        self.truth = GroundTruth(home / "ground_truth.sqlite", self.estate.business_timezone)
        self.trader = TradingGenerator(self.estate, self.centra.state, self.newstore.state, self.truth,
                                       trading or TradingConfig())
        self._stop = threading.Event()
        self._live: threading.Thread | None = None

    def start(self) -> Stack:
        self.intake.start()
        self.centra_server.start()
        self.newstore_server.start()
        self.newstore.start()
        if self.centra.webhooks is not None:
            self.centra.webhooks.start()
        # Register the event stream over the API, as an integrator does against a real tenant.
        with self.newstore_client() as client:
            client.register_eventstream("pipelines-intake", f"{self.intake.url}/newstore/events",
                                        self.secrets["NEWSTORE_EVENTSTREAM_API_KEY"])
        return self

    def newstore_client(self) -> NewStoreClient:
        return NewStoreClient(self.newstore_server.url, self.tenant, self.secrets["NEWSTORE_CLIENT_ID"],
                              self.secrets["NEWSTORE_CLIENT_SECRET"])

    def centra_client(self) -> CentraClient:
        return CentraClient(self.centra_server.url, self.secrets["CENTRA_API_TOKEN"])

    def env(self) -> dict[str, str]:
        """Environment for Dagster processes: where the platforms are, and their (simulated) credentials."""
        return {
            "PIPELINES_HOME": str(self.home),
            "PIPELINES_DATABASE_URL": self.database_url,
            "PIPELINES_ESTATE_FILE": str(self.estate_file),
            "PIPELINES_BUSINESS_TIMEZONE": self.estate.business_timezone,
            "CENTRA_API_URL": self.centra_server.url,
            "NEWSTORE_API_URL": self.newstore_server.url,
            "NEWSTORE_TENANT": self.tenant,
            **self.secrets,
        }

    def simulate(self, start: datetime, end: datetime, timeout: float = 300) -> dict[str, int]:
        """Trade from start to end, then wait until every event and webhook has been delivered."""
        stats = self.trader.simulate(start, end)
        self.flush(timeout)
        return stats

    def flush(self, timeout: float = 300) -> None:
        self.newstore.flush(timeout)
        if self.centra.webhooks is not None:
            self.centra.webhooks.flush(timeout)

    def history(self, days: int) -> dict[str, int]:
        """Trade the last `days` days up to now."""
        now = datetime.now(UTC)
        return self.simulate(now - timedelta(days=days), now)

    def trade_live(self, speed: float = 1.0) -> None:
        self._live = threading.Thread(target=self.trader.run_live, args=(self._stop,),
                                      kwargs={"speed": speed}, name="trading", daemon=True)
        self._live.start()

    def stop(self) -> None:
        self._stop.set()
        if self._live:
            self._live.join(timeout=10)
        self.newstore.stop()
        if self.centra.webhooks is not None:
            self.centra.webhooks.stop()
        for srv in (self.newstore_server, self.centra_server, self.intake):
            srv.stop()
        self.truth.close()
        self.engine.dispose()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _dagster_home(home: Path) -> Path:
    dh = home / "dagster_home"
    dh.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", dh / "dagster.yaml")
    return dh


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="pipelines-dev", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, default=2000, help="catalog size (product sizes); up to 100000")
    ap.add_argument("--stores", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--history-days", type=int, default=3, help="days of trading simulated before going live")
    ap.add_argument("--speed", type=float, default=1.0, help="multiplier on live trading rates")
    ap.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    ap.add_argument("--centra-port", type=int, default=8081)
    ap.add_argument("--newstore-port", type=int, default=8082)
    ap.add_argument("--intake-port", type=int, default=8090)
    ap.add_argument("--no-dagster", action="store_true", help="run only the simulated estate and the intake")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    # Started in the background by a non-interactive shell, SIGINT arrives ignored, and the children
    # (dagster dev maps SIGTERM onto its SIGINT handler) would inherit that and never stop: reinstate it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    home = Path(os.environ.get("PIPELINES_HOME", REPO / "data")).resolve() / "devstack"
    if home.exists():
        shutil.rmtree(home)
    stack = Stack(home, sizes=args.sizes, stores=args.stores, seed=args.seed, centra_port=args.centra_port,
                  newstore_port=args.newstore_port, intake_port=args.intake_port).start()
    print(f"Centra simulator   {stack.centra_server.url}/graphql", flush=True)
    print(f"NewStore simulator {stack.newstore_server.url}", flush=True)
    print(f"Intake service     {stack.intake.url}", flush=True)
    print(f"Simulating {args.history_days} day(s) of trading across {len(stack.estate.stores)} stores...", flush=True)
    stats = stack.history(args.history_days)
    print(f"History done: {stats}", flush=True)
    stack.trade_live(args.speed)

    proc = None
    if not args.no_dagster:
        env = {**os.environ, **stack.env(), "DAGSTER_HOME": str(_dagster_home(home))}
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(args.port)], cwd=REPO, env=env)
        _wait_for(f"http://127.0.0.1:{args.port}/server_info", proc)
        print(f"\nDagster UI: http://127.0.0.1:{args.port}  (Ctrl-C stops everything)\n", flush=True)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.is_set() and (proc is None or proc.poll() is None):
            stopping.wait(1)
    except KeyboardInterrupt:
        pass
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.stop()


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dagster dev exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"Dagster UI did not come up at {url}")


if __name__ == "__main__":
    main()
