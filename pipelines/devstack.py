"""`pipelines-dev`: the whole product on one machine with simulated platforms.

Starts the Centra and NewStore simulators, the intake service (the simulators deliver their event
stream and webhooks to it), the trading generator (a few days of history, then live trading) and
Dagster (`dagster dev`: webserver + daemon) on the embedded defaults, then prints the UI address.
Everything lives under PIPELINES_HOME/devstack (default ./data/devstack) and starts fresh each time:
the simulated platforms keep their world in memory.

`--commerce commercetools` runs the estate on commercetools: its simulator starts too (on
--commercetools-port), the world trades online through it and the stock sync writes to it.

`--erp` puts an ERP behind Centra (issue 15): the Business Central simulator starts (on --bc-port) with a company
seeded from the estate (which gains its `erp` section and a few bundle products), the product reaches it through the
BUSINESSCENTRAL_* variables, web orders are confirmed when placed and shipped by the ERP's warehouse user during live
trading (the product's flows take them to the ERP and the shipments back to Centra).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from pipelines import dagster_warnings, logging_setup
from pipelines.connectors.businesscentral import BusinessCentralClient
from pipelines.connectors.centra import CentraClient
from pipelines.connectors.centra.catalog import read_catalog as read_centra_catalog
from pipelines.connectors.cloudshelf import CloudshelfClient
from pipelines.connectors.commercetools import CommercetoolsClient
from pipelines.connectors.commercetools.catalog import read_catalog as read_commercetools_catalog
from pipelines.connectors.newstore import NewStoreClient
from pipelines.domain.timeutil import business_date, day_window_utc
from pipelines.estate import load_estate
from pipelines.intake.app import IntakeConfig, create_intake_app
from pipelines.kiosk import KioskPublisher
from pipelines.simulators.businesscentral import BusinessCentralSimulator, BusinessCentralState
from pipelines.simulators.centra import CentraSimulator
from pipelines.simulators.cloudshelf import CloudshelfSimulator
from pipelines.simulators.commercetools import CommercetoolsSimulator
from pipelines.simulators.erp_world import (
    ErpCentraTrading,
    ErpUser,
    ErpUserConfig,
    SeededCompany,
    seed_company,
)
from pipelines.simulators.estate_gen import write_estate
from pipelines.simulators.ground_truth import GroundTruth
from pipelines.simulators.newstore import EmitterConfig, NewStoreSimulator
from pipelines.simulators.serving import BackgroundServer
from pipelines.simulators.trading import CentraTrading, CommercetoolsTrading, TradingConfig, TradingGenerator
from pipelines.store import make_engine, migrate
from pipelines.sync import StockSync, SyncConfig
from pipelines.sync.centra_io import CentraStockTarget
from pipelines.sync.commercetools_io import CommercetoolsStockTarget
from pipelines.sync.queue import work_state
from pipelines.sync.target import StockTarget

REPO = Path(__file__).resolve().parents[1]
COMMERCE_PLATFORMS = ("centra", "commercetools")
log = logging.getLogger("pipelines.devstack")


class Stack:
    """The simulated estate and intake, running in this process (used by the CLI, tests and benchmarks).

    `commerce` is the estate's commerce platform ("centra" or "commercetools"): the estate file is generated with
    it, the world trades online through that platform's simulator, and the stock sync writes to it. The Centra
    simulator starts either way (the intake and older tests expect it); with commercetools nothing writes to it.

    `kiosks=True` adds the Cloudshelf simulator (`self.cloudshelf`, served on `cloudshelf_port`; `cloudshelf_options`
    go to `CloudshelfSimulator`): an empty organisation the product fills (locations, catalogue, stock levels); its
    order webhooks go wherever the product registers them (the intake's `/cloudshelf/webhooks?key=...`).

    `erp=True` puts an ERP behind Centra: the estate gains its `erp` section and bundle products, the Business
    Central simulator (`self.bc`, served on `bc_port`; `bc_options` go to `BusinessCentralSimulator`) holds a company
    seeded from the estate (`self.erp_company`), the world's web orders are confirmed when placed and left for the
    ERP to ship (`erp_world.ErpCentraTrading`), and `self.erp_user` (`erp_world.ErpUser`, `erp_user` its config)
    ships them during live trading (`trade_live`) or when a caller runs it.
    """

    def __init__(self, home: Path, *, sizes: int = 2000, stores: int = 12, seed: int = 7,
                 centra_port: int | None = None, newstore_port: int | None = None, intake_port: int | None = None,
                 trading: TradingConfig | None = None, database_url: str | None = None,
                 emitter_config: EmitterConfig | None = None, centra_options: dict | None = None,
                 newstore_options: dict | None = None, commerce: str = "centra",
                 commercetools_port: int | None = None, commercetools_options: dict | None = None,
                 kiosks: bool = False, cloudshelf_port: int | None = None, cloudshelf_options: dict | None = None,
                 erp: bool = False, bc_port: int | None = None, bc_options: dict | None = None,
                 erp_user: ErpUserConfig | None = None):
        if commerce not in COMMERCE_PLATFORMS:
            raise ValueError(f"unknown commerce platform {commerce!r}; one of {', '.join(COMMERCE_PLATFORMS)}")
        if erp and commerce != "centra":
            raise ValueError("the ERP runs behind Centra (issue 15); not with commercetools")
        self.home = home
        self.commerce = commerce
        home.mkdir(parents=True, exist_ok=True)
        self.estate_file = write_estate(home / "estate.json", sizes=sizes, stores=stores, seed=seed,
                                        **({"commerce": commerce} if commerce != "centra" else {}),
                                        **({"erp": True} if erp else {}))
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
            "CENTRA_ORDER_API_KEY": secrets.token_urlsafe(24),
        }
        if commerce == "commercetools":
            self.secrets |= {"COMMERCETOOLS_CLIENT_ID": "pipelines",
                             "COMMERCETOOLS_CLIENT_SECRET": secrets.token_urlsafe(24)}
        if kiosks:
            self.secrets |= {"CLOUDSHELF_API_TOKEN": secrets.token_urlsafe(24),
                             "CLOUDSHELF_WEBHOOK_KEY": secrets.token_urlsafe(24)}
        if erp:
            self.secrets |= {"BUSINESSCENTRAL_CLIENT_ID": "pipelines",
                             "BUSINESSCENTRAL_CLIENT_SECRET": secrets.token_urlsafe(24)}
        self.tenant = "nordlys-sandbox"
        self.intake = BackgroundServer(create_intake_app(self.engine, IntakeConfig(
            newstore_api_key=self.secrets["NEWSTORE_EVENTSTREAM_API_KEY"],
            centra_webhook_secret=self.secrets["CENTRA_WEBHOOK_SECRET"],
            **({"cloudshelf_webhook_key": self.secrets["CLOUDSHELF_WEBHOOK_KEY"]} if kiosks else {}))),
            port=intake_port)
        self.centra = CentraSimulator(
            self.estate, tokens=[self.secrets["CENTRA_API_TOKEN"]],
            webhook_url=f"http://{self.intake.host}:{self.intake.port}/centra/webhooks",
            webhook_secret=self.secrets["CENTRA_WEBHOOK_SECRET"], webhook_options={"retries": 3},
            **(centra_options or {}))
        self.centra.app.state.order_api.api_keys = {self.secrets["CENTRA_ORDER_API_KEY"]}
        self.newstore = NewStoreSimulator(
            self.estate, tenant=self.tenant, seed=seed,
            clients={self.secrets["NEWSTORE_CLIENT_ID"]: self.secrets["NEWSTORE_CLIENT_SECRET"]},
            emitter_config=emitter_config, **(newstore_options or {}))
        self.centra_server = BackgroundServer(self.centra.app, port=centra_port)
        self.newstore_server = BackgroundServer(self.newstore.app, port=newstore_port)
        self.commercetools: CommercetoolsSimulator | None = None
        self.commercetools_server: BackgroundServer | None = None
        if commerce == "commercetools":
            project = self.estate.commercetools.project_key  # type: ignore[union-attr]  # always generated
            self.commercetools = CommercetoolsSimulator(
                self.estate, seed=seed, clients={self.secrets["COMMERCETOOLS_CLIENT_ID"]: (
                    self.secrets["COMMERCETOOLS_CLIENT_SECRET"], (f"manage_project:{project}",))},
                **(commercetools_options or {}))
            self.commercetools_server = BackgroundServer(self.commercetools.app, port=commercetools_port)
        self.cloudshelf: CloudshelfSimulator | None = None
        self.cloudshelf_server: BackgroundServer | None = None
        if kiosks:
            self.cloudshelf = CloudshelfSimulator(tokens=[self.secrets["CLOUDSHELF_API_TOKEN"]],
                                                  **(cloudshelf_options or {}))
            self.cloudshelf_server = BackgroundServer(self.cloudshelf.app, port=cloudshelf_port)
        self.bc: BusinessCentralSimulator | None = None
        self.bc_server: BackgroundServer | None = None
        self.erp_user: ErpUser | None = None
        self.erp_company: SeededCompany | None = None
        self.bc_tenant, self.bc_environment = "nordlys.onmicrosoft.com", "production"
        if erp:
            self.bc = BusinessCentralSimulator(
                BusinessCentralState(), tenant=self.bc_tenant, environment=self.bc_environment,
                client_id=self.secrets["BUSINESSCENTRAL_CLIENT_ID"],
                client_secret=self.secrets["BUSINESSCENTRAL_CLIENT_SECRET"], **(bc_options or {}))
            self.erp_company = seed_company(self.bc.state, self.estate)
            self.bc_server = BackgroundServer(self.bc.app, port=bc_port)
        self.truth = GroundTruth(home / "ground_truth.sqlite", self.estate.business_timezone)
        commerce_world: CentraTrading | CommercetoolsTrading
        if self.commercetools is not None:
            commerce_world = CommercetoolsTrading(self.commercetools.state, self.estate)
        elif self.bc is not None:
            commerce_world = ErpCentraTrading(self.centra.state, self.estate)
            self.erp_user = ErpUser(self.bc.state, self.erp_company.company_id, erp_user or ErpUserConfig(),
                                    ships=commerce_world.is_web_order)
        else:
            commerce_world = CentraTrading(self.centra.state)
        if trading is None:
            # kiosk shoppers trade live in a world with kiosks (two orders per store and opening hour)
            trading = TradingConfig(kiosk_orders_per_store_per_hour=2.0 if kiosks else 0.0)
        self.trader = TradingGenerator(self.estate, self.centra.state, self.newstore.state, self.truth,
                                       trading, commerce=commerce_world,
                                       kiosk=self.cloudshelf.state if self.cloudshelf is not None else None)
        self._stop = threading.Event()
        self._live: threading.Thread | None = None
        self._erp_thread: threading.Thread | None = None

    def start(self) -> Stack:
        self.intake.start()
        self.centra_server.start()
        self.newstore_server.start()
        if self.commercetools_server is not None:
            self.commercetools_server.start()
        if self.cloudshelf is not None and self.cloudshelf_server is not None:
            self.cloudshelf_server.start()
            self.cloudshelf.start()
        if self.bc_server is not None:
            self.bc_server.start()
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

    def commercetools_client(self, **kwargs: object) -> CommercetoolsClient:
        """A client of the commercetools simulator (the API host is also the auth host); `commerce="commercetools"`
        only."""
        if self.commercetools_server is None or self.commercetools is None:
            raise RuntimeError("this stack runs Centra as its commerce platform (Stack(commerce='commercetools'))")
        url = self.commercetools_server.url
        return CommercetoolsClient(url, url, self.commercetools.project_key, self.secrets["COMMERCETOOLS_CLIENT_ID"],
                                   self.secrets["COMMERCETOOLS_CLIENT_SECRET"], **kwargs)  # type: ignore[arg-type]

    def cloudshelf_client(self, **kwargs: object) -> CloudshelfClient:
        """A client of the Cloudshelf simulator (`kiosks=True` only)."""
        if self.cloudshelf_server is None:
            raise RuntimeError("this stack runs no kiosks (Stack(kiosks=True))")
        return CloudshelfClient(f"{self.cloudshelf_server.url}/graphql", self.secrets["CLOUDSHELF_API_TOKEN"],
                                **kwargs)  # type: ignore[arg-type]

    def bc_client(self, **kwargs: object) -> BusinessCentralClient:
        """A client of the Business Central simulator's seeded company (`erp=True` only)."""
        if self.bc_server is None or self.erp_company is None:
            raise RuntimeError("this stack runs no ERP (Stack(erp=True))")
        return BusinessCentralClient(self.bc_server.url, self.bc_tenant, self.bc_environment,
                                     self.secrets["BUSINESSCENTRAL_CLIENT_ID"],
                                     self.secrets["BUSINESSCENTRAL_CLIENT_SECRET"],
                                     company_id=self.erp_company.company_id, **kwargs)  # type: ignore[arg-type]

    def run_erp_user(self, tick_s: float = 1.0) -> None:
        """The ERP's warehouse ships the web orders on its own thread until `stop` (`erp=True` only; once)."""
        if self.erp_user is None or self._erp_thread is not None:
            return
        self._erp_thread = threading.Thread(target=self.erp_user.run, args=(self._stop, tick_s), name="erp-user",
                                            daemon=True)
        self._erp_thread.start()

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
            "PIPELINES_FLOW_CENTRA_ORDER_API_URL": f"{self.centra_server.url}/order-api",
            "PIPELINES_FLOW_CENTRA_EVENTS": "1",
            **({"COMMERCETOOLS_API_URL": self.commercetools_server.url,
                "COMMERCETOOLS_AUTH_URL": self.commercetools_server.url} if self.commercetools_server else {}),
            **({"CLOUDSHELF_API_URL": f"{self.cloudshelf_server.url}/graphql",
                "PIPELINES_FLOW_KIOSK_WEBHOOK_URL": f"{self.intake.url}/cloudshelf/webhooks"}
               if self.cloudshelf_server else {}),
            **({"BUSINESSCENTRAL_API_URL": self.bc_server.url, "BUSINESSCENTRAL_TENANT": self.bc_tenant,
                "BUSINESSCENTRAL_ENVIRONMENT": self.bc_environment,
                "BUSINESSCENTRAL_COMPANY_ID": self.erp_company.company_id}
               if self.bc_server is not None and self.erp_company is not None else {}),
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
        if self.cloudshelf is not None:
            self.cloudshelf.flush(timeout)

    #: Simulated time per history step: trading, delivery and the stock sync advance together.
    # An hour: changes stay on their business day; 15-minute steps took 1.6 times as long (270 sync runs).
    HISTORY_STEP = timedelta(hours=1)

    def history(self, days: float, progress: Callable[[str, float], None] | None = None) -> dict[str, int]:
        """Trade the last `days` days up to now, through the product, as live trading would have.

        Simulated time advances in steps of `HISTORY_STEP` (never across a business-day boundary).
        After each step the NewStore event stream is flushed into the intake, Centra's clock is set
        to the step's end and the product's own stock sync (`StockSync`, the code the Dagster sync
        runs) drains in process. So Centra's stock-change ledger dates each change within a step of its
        POS movement, on the same business day, and the Dagster sync started later continues from the
        inbox cursor with nothing left to apply. `progress(message, fraction)` is called per simulated
        hour. Returns the trading counters plus the sync's (`synced_movements`, `sync_mutations`).

        With commercetools as the estate's platform the sync writes to its simulator instead (whose clock is set
        the same way), at `HISTORY_CT_REQUESTS_PER_S`.

        With an ERP (`erp=True`) the history has no web orders: the ERP's side of an order (posted by the product's
        flows, shipped by the ERP's warehouse, the shipment applied back) runs only with the product running, so the
        ERP is connected at go-live; click-and-collect and the stores trade as usual.
        """
        end = datetime.now(UTC)
        start = end - timedelta(days=days)
        web_rate = self.trader.config.online_orders_per_hour
        if self.erp_user is not None:
            self.trader.config.online_orders_per_hour = 0.0
        state = self.centra.state
        real_clock = state.clock
        limiter = state.rate_limiter
        configured = {"tier": limiter.tier, "multiplier": limiter.multiplier, "overrides": dict(limiter.overrides),
                      "interval_scale": limiter.interval_scale, "enabled": limiter.enabled}
        # Centra's rate limiter runs on real time: days of simulated trading squeezed into seconds would
        # exhaust the Growth tier's hourly mutation quota many times over. While history runs the limits
        # are raised to 4 x Enterprise (2,000 mutations per 10 s; a larger multiplier overflows the
        # 32-bit quotas `rateLimits` reports); afterwards the configured tier is restored, with full
        # buckets, as the Dagster sync will find them.
        state.set_rate_limits(tier="ENTERPRISE", multiplier=4, overrides={})
        # commercetools publishes no request limit (the sync keeps to a configured budget): history sends at
        # HISTORY_CT_REQUESTS_PER_S, the Dagster sync later at COMMERCETOOLS_REQUESTS_PER_S.
        ct_state = self.commercetools.state if self.commercetools is not None else None
        ct_clock = ct_state.clock if ct_state is not None else None
        # The same settings as the Dagster sync, without the waits meant for a live inbox: every event of
        # a step has been delivered (committed) before the sync reads it. Nor the batching of non-critical
        # movements: it waits on the wall clock, so the last minute of the history (its events are stamped up to
        # now) would stay queued, and the platforms would disagree until the Dagster sync sends it.
        config = replace(SyncConfig.from_env(), settle_s=0.0, poll_s=0.0, batch_delay_s=None)
        totals = {"synced_movements": 0, "sync_mutations": 0}
        tz = self.estate.business_timezone
        hour, t = None, start
        try:
            with self._history_target() as target, self._kiosk_publisher(target) as kiosk:
                sync = StockSync(self.engine, self.estate, target, config,
                                 after_commit=kiosk.after_sync if kiosk is not None else None)
                while t < end:
                    # Steps on a grid (00:00, 00:15, ... UTC), cut at business-day boundaries.
                    grid = t + self.HISTORY_STEP - (t - datetime(2000, 1, 1, tzinfo=UTC)) % self.HISTORY_STEP
                    step_end = min(grid, day_window_utc(business_date(t, tz), tz)[1], end)
                    # Whatever the commerce platform stamps itself in this step (the trader sets each job's own
                    # time, the sync's stock changes take this one) falls on the step's business day.
                    state.clock = lambda at=step_end - timedelta(milliseconds=1): at
                    if ct_state is not None:
                        ct_state.clock = lambda at=step_end - timedelta(milliseconds=1): at
                    self.trader.simulate(t, step_end)
                    if not self.newstore.flush(300):
                        log.warning("history: events of the step to %s still undelivered after 300 s", step_end)
                    self._sync_history_step(sync, totals)
                    t = step_end
                    local = t.astimezone(ZoneInfo(tz))
                    if progress is not None and t < end and local.strftime("%Y-%m-%d %H") != hour:
                        hour = local.strftime("%Y-%m-%d %H")
                        progress(f"history: traded up to {local:%Y-%m-%d %H:%M} ({tz})", (t - start) / (end - start))
        finally:
            self.trader.config.online_orders_per_hour = web_rate
            state.clock = real_clock
            state.set_rate_limits(**configured)
            if ct_state is not None:
                ct_state.clock = ct_clock  # type: ignore[assignment]
        self.flush()  # Centra's webhooks (nothing in the sync waits for them)
        if progress is not None:
            progress(f"history: {days:g} day(s) traded, {totals['synced_movements']} stock movements synced", 1.0)
        return {**self.trader.stats, **totals}

    #: The request budget of the history's commercetools sync (the simulator has no limit; see `history`).
    HISTORY_CT_REQUESTS_PER_S = 500.0

    @contextmanager
    def _kiosk_publisher(self, target: StockTarget) -> Iterator[KioskPublisher | None]:
        """With kiosks: the catalogue and the stores published to Cloudshelf first, then a publisher whose
        `after_sync` the history's stock sync calls, as the Dagster sync does (pipelines/defs/kiosk/sync_hook.py).
        None without kiosks, or when the publish fails (logged; the Dagster kiosk_catalog job publishes later)."""
        if self.cloudshelf is None:
            yield None
            return
        with self.cloudshelf_client() as client:
            publisher = KioskPublisher(self.engine, self.estate, target, client)
            try:
                if self.commercetools is not None:
                    with self.commercetools_client() as ct:
                        catalog = read_commercetools_catalog(ct, self.estate)
                else:
                    with self.centra_client() as centra:
                        catalog = read_centra_catalog(centra)
                report = publisher.publish_catalog(catalog)
                log.info("kiosks: %s", report.as_dict())
            except Exception:  # noqa: BLE001 - the devstack runs on; the kiosk_catalog job publishes later
                log.warning("kiosks: the catalogue could not be published before the history", exc_info=True)
                yield None
                return
            yield publisher
            try:  # online orders allocated stock the sync never saw: what the Dagster refresh does
                log.info("kiosks: availability refreshed after the history: %s",
                         publisher.refresh_availability().as_dict())
            except Exception:  # noqa: BLE001 - the kiosk_availability_refresh sensor catches up
                log.warning("kiosks: the availability could not be refreshed after the history", exc_info=True)

    @contextmanager
    def _history_target(self) -> Iterator[StockTarget]:
        """The stock sync's target while history runs: the estate's commerce platform, one attempt per request."""
        if self.commercetools is not None:
            with self.commercetools_client(max_attempts=1) as client:
                yield CommercetoolsStockTarget(client, self.estate, requests_per_s=self.HISTORY_CT_REQUESTS_PER_S)
            return
        with CentraClient(self.centra_server.url, self.secrets["CENTRA_API_TOKEN"], max_attempts=1) as client:
            yield CentraStockTarget(client, self.estate)

    def _sync_history_step(self, sync: StockSync, totals: dict[str, int], max_runs: int = 50) -> None:
        """Run the stock sync (one pass per run) until nothing is waiting; records each run as `history`."""
        for _ in range(max_runs):
            if not work_state(self.engine).has_work:
                return
            report = sync.run(window_s=0, kind="history")
            totals["synced_movements"] += report.applied
            totals["sync_mutations"] += report.mutations
            if report.deferred or report.rate_limited or report.errors:
                time.sleep(min(1.0, max(0.05, sync.governor.seconds_until_mutation())))
        log.warning("history: the stock sync did not drain in %d runs; the Dagster sync takes over", max_runs)

    def trade_live(self, speed: float = 1.0) -> None:
        self._live = threading.Thread(target=self.trader.run_live, args=(self._stop,),
                                      kwargs={"speed": speed}, name="trading", daemon=True)
        self._live.start()
        self.run_erp_user()

    def stop(self) -> None:
        self._stop.set()
        if self._live:
            self._live.join(timeout=10)
        if self._erp_thread:
            self._erp_thread.join(timeout=10)
        self.newstore.stop()
        if self.centra.webhooks is not None:
            self.centra.webhooks.stop()
        if self.cloudshelf is not None:
            self.cloudshelf.stop()
        for srv in (self.newstore_server, self.centra_server, self.commercetools_server, self.cloudshelf_server,
                    self.bc_server, self.intake):
            if srv is not None:
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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows every option's default and the module docstring as written."""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="pipelines-dev", description=__doc__, formatter_class=_HelpFormatter,
        epilog="The console shows progress, the addresses, this process' INFO records and Dagster's\n"
               "warnings and errors. Everything, DEBUG and Dagster's own output included, goes to\n"
               "PIPELINES_HOME/devstack/devstack.log (default ./data/devstack/devstack.log).")
    ap.add_argument("--sizes", type=int, default=2000, help="catalog size (product sizes); up to 100000")
    ap.add_argument("--stores", type=int, default=12, help="number of stores in the generated estate")
    ap.add_argument("--seed", type=int, default=7, help="seed of the estate and of the trading generator")
    ap.add_argument("--history-days", type=int, default=3, help="days of trading simulated before going live")
    ap.add_argument("--speed", type=float, default=1.0, help="multiplier on live trading rates")
    ap.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    ap.add_argument("--centra-port", type=int, default=8081, help="Centra simulator port")
    ap.add_argument("--newstore-port", type=int, default=8082, help="NewStore simulator port")
    ap.add_argument("--intake-port", type=int, default=8090, help="intake service port")
    ap.add_argument("--commerce", choices=COMMERCE_PLATFORMS, default="centra",
                    help="the estate's commerce platform: the world trades online through it and the stock sync "
                         "writes to it (commercetools: its simulator on --commercetools-port)")
    ap.add_argument("--commercetools-port", type=int, default=8083, help="commercetools simulator port")
    ap.add_argument("--kiosks", action="store_true",
                    help="also run the Cloudshelf simulator (in-store kiosks) on --cloudshelf-port; the product fills it")
    ap.add_argument("--cloudshelf-port", type=int, default=8084, help="Cloudshelf simulator port")
    ap.add_argument("--erp", action="store_true",
                    help="put an ERP behind Centra: the Business Central simulator on --bc-port, seeded from the "
                         "estate; its warehouse ships the web orders during live trading")
    ap.add_argument("--bc-port", type=int, default=8085, help="Business Central simulator port")
    ap.add_argument("--no-dagster", action="store_true", help="run only the simulated estate and the intake")
    ap.add_argument("--dagster-console-level", default="warning", choices=["debug", "info", "warning", "error"],
                    help="lowest level of Dagster's own output (webserver, daemon, runs) shown on the console")
    return ap


def _say(text: str) -> None:
    """A progress line: to the console as written, to the log file as a record."""
    print(text, flush=True)
    log.debug("%s", text.strip())


def _history(stack: Stack, days: int) -> dict[str, int]:
    """`stack.history(days)` with "day n of N" progress where `Stack.history` reports it."""
    if "progress" not in inspect.signature(Stack.history).parameters:
        return stack.history(days)
    progress = logging_setup.HistoryProgress(days)
    try:
        return stack.history(days, progress=progress)
    finally:
        progress.done()


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.erp and args.commerce != "centra":
        parser.error("--erp puts the ERP behind Centra: not with --commerce commercetools")

    # Started in the background by a non-interactive shell, SIGINT arrives ignored, and the children
    # (dagster dev maps SIGTERM onto its SIGINT handler) would inherit that and never stop: reinstate it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    home = Path(os.environ.get("PIPELINES_HOME", REPO / "data")).resolve() / "devstack"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    log_file = home / "devstack.log"  # after the wipe: this start's log only
    logging_setup.configure(log_file, dagster_console_level=logging.getLevelName(args.dagster_console_level.upper()))
    steps = 3 if args.no_dagster else 4
    _say(f"start [1/{steps}] simulated platforms and intake (full log: {log_file})")
    stack = Stack(home, sizes=args.sizes, stores=args.stores, seed=args.seed, centra_port=args.centra_port,
                  newstore_port=args.newstore_port, intake_port=args.intake_port, commerce=args.commerce,
                  commercetools_port=args.commercetools_port, kiosks=args.kiosks,
                  cloudshelf_port=args.cloudshelf_port, erp=args.erp, bc_port=args.bc_port).start()
    _say(f"  Centra simulator   {stack.centra_server.url}/graphql")
    if stack.commercetools_server is not None:
        _say(f"  commercetools sim. {stack.commercetools_server.url}/{stack.estate.commercetools.project_key}"  # type: ignore[union-attr]
             " (the commerce platform)")
    _say(f"  NewStore simulator {stack.newstore_server.url}")
    if stack.cloudshelf_server is not None:
        _say(f"  Cloudshelf sim.    {stack.cloudshelf_server.url}/graphql (kiosks)")
    if stack.bc_server is not None:
        _say(f"  Business Central   {stack.bc_server.url}/v2.0/{stack.bc_tenant}/{stack.bc_environment}/api/v2.0 "
             "(the ERP)")
    _say(f"  Intake service     {stack.intake.url}")
    _say(f"start [2/{steps}] simulating {args.history_days} day(s) of trading across "
         f"{len(stack.estate.stores)} stores ...")
    began = time.monotonic()
    stats = _history(stack, args.history_days)
    _say(f"  history done in {time.monotonic() - began:.0f} s: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    stack.trade_live(args.speed)

    proc = relay = None
    if not args.no_dagster:
        _say(f"start [3/{steps}] Dagster (webserver + daemon) ...")
        dagster_home = _dagster_home(home)
        env = {**os.environ, **stack.env(), "DAGSTER_HOME": str(dagster_home),
               # The beta/preview features in use, named in pipelines/dagster_warnings.py; nothing else hidden.
               "PYTHONWARNINGS": dagster_warnings.pythonwarnings(os.environ.get("PYTHONWARNINGS", ""))}
        # cwd is the instance folder: run from the repository, `dagster dev` reports the repository's
        # dagster.yaml (the template copied there) as "found but not used".
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "--log-level", "info",
             "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(args.port)],
            cwd=dagster_home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        relay = logging_setup.OutputFilter(proc.stdout)
        relay.start()
        _wait_for(f"http://127.0.0.1:{args.port}/server_info", proc, log_file=log_file)
        _say(f"start [4/{steps}] ready")
        print(f"\nDagster UI: http://127.0.0.1:{args.port}  (Ctrl-C stops everything)\n", flush=True)
    else:
        _say(f"start [3/{steps}] ready (no Dagster; Ctrl-C stops everything)")

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
        if relay is not None:
            relay.join(timeout=5)
        stack.stop()


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 180, log_file: Path | None = None) -> None:
    where = f" (see {log_file})" if log_file else ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dagster dev exited with {proc.returncode}{where}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"Dagster UI did not come up at {url} within {timeout:.0f} s{where}")


if __name__ == "__main__":
    main()
