"""Intake throughput: signed webhooks from a loopback load generator, then an audit of the database.

    python bench/intake_throughput.py --quick                 # 5,000 deliveries, SQLite
    python bench/intake_throughput.py                         # 50,000 deliveries, SQLite
    python bench/intake_throughput.py --quick --postgres      # a throwaway PostgreSQL server
    python bench/intake_throughput.py --database-url URL      # an existing (idle, migrated or empty) database

The intake runs as its documented command (`python -m pipelines.intake.server`, i.e. `pipelines-intake`)
in a child process on a free loopback port, with `--workers` uvicorn workers. The load generator (this
process, one httpx AsyncClient, `--concurrency` deliveries in flight over keep-alive connections) sends
a deterministic, shuffled plan: 60 % NewStore events (Bearer api key, ~1 KB JSON order.opened) and 40 %
Centra webhooks (form-encoded `payload=`, 1-5 events, `X-Centra-Signature` computed at send time); 10 %
of the deliveries are re-sends of an earlier delivery (duplicates) and ~1 % are malformed (wrong api
key, missing/bad/stale signature, not JSON, wrong content type, wrong shape). A delivery answered 5xx
or not answered is retried (at most 5 attempts), as the platforms do.

Figures: `events_per_s` = events in well-formed deliveries (duplicates included) / wall time of the load
phase; `ack_p50_ms` / `ack_p99_ms` = per-request latency (send to complete response) over every request
of the load phase. The audit counts rows in the database (deltas, so an existing database works if
nothing else writes to it meanwhile): `stored` (new inbox rows; must equal the unique events sent),
`duplicates_refused` (events the intake answered as duplicates; must equal the duplicate events sent),
`quarantined` (new quarantine rows; must equal the malformed deliveries sent), `lost` = unique events
sent - stored. The exit status is 1 when the audit fails. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.intake.verify import centra_signature  # noqa: E402
from pipelines.simulators.serving import free_port  # noqa: E402
from pipelines.store import make_engine, migrate  # noqa: E402

API_KEY = "bench-api-key-" + "k" * 24
SECRET = "bench-webhook-secret-" + "s" * 24
MALFORMED_KINDS = ("bad_api_key", "missing_api_key", "missing_signature", "bad_signature", "stale_signature",
                   "not_json", "wrong_content_type", "bad_shape")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Delivery:
    kind: str  # "newstore" | "centra" | "malformed:<what>"
    path: str
    body: bytes
    headers: dict[str, str]
    events: int  # events carried (0 for malformed)
    duplicate: bool = False
    sign: str | None = None  # "good" | "bad" | "stale": Centra signature computed at send time

    def request_headers(self) -> dict[str, str]:
        if self.sign is None:
            return self.headers
        t = int(time.time()) - (3600 if self.sign == "stale" else 0)
        secret = SECRET if self.sign != "bad" else "not-the-secret"
        return {**self.headers, "X-Centra-Signature": f"t={t},v1={centra_signature(secret, str(t), self.body)}"}


def _newstore(run: str, n: int, rng: random.Random) -> Delivery:
    items = [{"id": f"{run}-{n}-{i}", "product_id": f"P{rng.randrange(1000, 9999)}BLK{rng.choice('SML')}",
              "external_identifiers": {"sku": f"SKU{rng.randrange(10**6)}", "ean": f"735{rng.randrange(10**9):010d}"},
              "list_price": round(rng.uniform(100, 1500), 2), "tax": round(rng.uniform(20, 300), 2), "quantity": 1,
              "shipping_service_level": "IN_STORE_HANDOVER"} for i in range(rng.randint(1, 3))]
    minute = n % 1440
    doc = {"tenant": "bench", "name": "order.opened", "published_at": f"2026-11-24T{minute // 60:02d}:{minute % 60:02d}:00Z",
           "payload": {"id": f"{run}-o-{n}", "external_id": f"POS-{run}-{n}", "channel_type": "store",
                       "channel": f"ST-SE{rng.randrange(1, 13):02d}", "price_method": "tax_included", "currency": "SEK",
                       "placed_at": f"2026-11-24T{minute // 60:02d}:{minute % 60:02d}:{n % 60:02d}Z",
                       "items": items}}
    return Delivery("newstore", "/newstore/events", json.dumps(doc, separators=(",", ":")).encode(),
                    {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}, 1)


def _centra_body(events: list[dict]) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps({"events": events}, separators=(",", ":"))}).encode()


def _centra(run: str, n: int, rng: random.Random) -> Delivery:
    events = [{"type": rng.choice(("order", "shipment", "return")), "action": rng.choice(("insert", "update")),
               "date": f"2026-11-24 10:{n % 60:02d}:{i:02d}.{n % 10**6:06d}", "id": f"{run}-{n}-{i}"}
              for i in range(rng.randint(1, 5))]
    return Delivery("centra", "/centra/webhooks", _centra_body(events),
                    {"Content-Type": "application/x-www-form-urlencoded"}, len(events), sign="good")


def _malformed(run: str, n: int, what: str, rng: random.Random) -> Delivery:
    ns, ce = _newstore(run, 10**9 + n, rng), _centra(run, 10**9 + n, rng)
    kind = f"malformed:{what}"
    if what == "bad_api_key":
        return Delivery(kind, ns.path, ns.body, {**ns.headers, "Authorization": "Bearer wrong"}, 0)
    if what == "missing_api_key":
        return Delivery(kind, ns.path, ns.body, {"Content-Type": "application/json"}, 0)
    if what == "not_json":
        return Delivery(kind, ns.path, ns.body[: len(ns.body) // 2], ns.headers, 0)
    if what == "wrong_content_type":
        return Delivery(kind, ns.path, ns.body, {**ns.headers, "Content-Type": "text/plain"}, 0)
    if what == "bad_shape":
        return Delivery(kind, ce.path, _centra_body({"not": "a list"}), ce.headers, 0, sign="good")  # type: ignore[arg-type]
    sign = {"missing_signature": None, "bad_signature": "bad", "stale_signature": "stale"}[what]
    return Delivery(kind, ce.path, ce.body, ce.headers, 0, sign=sign)


def build_plan(requests: int, seed: int, duplicate_rate: float = 0.10, malformed_rate: float = 0.01) -> list[Delivery]:
    """`requests` deliveries: originals, re-sends of earlier originals (duplicates) and malformed ones."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]  # unique keys per run: the same database can be benchmarked again
    n_dup = round(requests * duplicate_rate)
    n_bad = max(len(MALFORMED_KINDS), round(requests * malformed_rate))
    originals = [(_newstore if rng.random() < 0.6 else _centra)(run, i, rng) for i in range(requests - n_dup - n_bad)]
    bad = [_malformed(run, i, MALFORMED_KINDS[i % len(MALFORMED_KINDS)], rng) for i in range(n_bad)]
    plan: list[Delivery] = originals + bad
    rng.shuffle(plan)
    # Each duplicate is inserted after its original (somewhere later in the plan, sometimes right after).
    for _ in range(n_dup):
        i = rng.randrange(len(plan))
        while plan[i].events == 0 or plan[i].duplicate:
            i = rng.randrange(len(plan))
        orig = plan[i]
        dup = Delivery(orig.kind, orig.path, orig.body, orig.headers, orig.events, duplicate=True, sign=orig.sign)
        plan.insert(rng.randint(i + 1, min(len(plan), i + 200)), dup)
    return plan


@dataclass
class Outcome:
    latencies: list[float]
    statuses: dict[str, int]
    stored_acks: int = 0
    duplicate_acks: int = 0
    refused: int = 0
    retries: int = 0
    failed: int = 0
    unexpected: int = 0


class Connection:
    """A minimal HTTP/1.1 keep-alive client connection (the load generator's; see the module docstring)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body); status 0 when the connection failed (it is reopened on the next request)."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            self.writer.write(head.encode("latin-1") + b"\r\n" + body)
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            content = await self.reader.readexactly(int(fields.get("content-length", "0")))
            if fields.get("connection", "").lower() == "close":
                await self.close()
            return status, content
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            await self.close()
            return 0, b""


async def run_load(base_url: str, plan: list[Delivery], concurrency: int, progress_every: float = 5.0) -> Outcome:
    out = Outcome([], {})
    next_index = 0
    done = 0
    host, port = urllib.parse.urlsplit(base_url).hostname or "127.0.0.1", urllib.parse.urlsplit(base_url).port or 80
    connections = [Connection(host, port) for _ in range(concurrency)]
    for conn in connections:  # open the connections before timing
        await conn.request("GET", "/healthz")

    async def worker(conn: Connection) -> None:
        nonlocal next_index, done
        while next_index < len(plan):
            d = plan[next_index]
            next_index += 1
            for attempt in range(5):
                t0 = time.perf_counter()
                status, content = await conn.request("POST", d.path, d.body, d.request_headers())
                out.latencies.append(time.perf_counter() - t0)
                out.statuses[str(status)] = out.statuses.get(str(status), 0) + 1
                if status and status < 500:
                    break
                out.retries += 1
                await asyncio.sleep(0.05 * (attempt + 1))
            else:
                out.failed += 1
                continue
            if d.events and status == 200:
                doc = json.loads(content)
                if d.kind == "newstore":
                    new = 1 if doc["status"] == "stored" else 0
                    out.stored_acks += new
                    out.duplicate_acks += 1 - new
                else:
                    out.stored_acks += doc["stored"]
                    out.duplicate_acks += doc["duplicates"]
            elif not d.events and 400 <= status < 500:
                out.refused += 1
            else:
                out.unexpected += 1
            done += 1

    async def progress() -> None:
        start = time.perf_counter()
        while True:
            await asyncio.sleep(progress_every)
            log(f"  {done}/{len(plan)} deliveries answered ({done / (time.perf_counter() - start):.0f}/s)")

    ticker = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(worker(conn) for conn in connections))
    finally:
        ticker.cancel()
        for conn in connections:
            await conn.close()
    return out


def _run(coro):  # noqa: ANN001, ANN202
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return (conn.execute(text("SELECT count(*) FROM inbox_events")).scalar_one(),
                    conn.execute(text("SELECT count(*) FROM intake_quarantine")).scalar_one())
    finally:
        engine.dispose()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process and its live children (uvicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        pids = [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, IndexError):
        return None
    return total


@contextlib.contextmanager
def intake_process(url: str, workers: int, db_concurrency: int | None, workdir: Path, stats: dict):
    port = free_port()
    env = {**os.environ, "PIPELINES_DATABASE_URL": url, "PIPELINES_HOME": str(workdir),
           "NEWSTORE_EVENTSTREAM_API_KEY": API_KEY, "CENTRA_WEBHOOK_SECRET": SECRET,
           "PIPELINES_INTAKE_HOST": "127.0.0.1", "PIPELINES_INTAKE_PORT": str(port),
           "PIPELINES_INTAKE_WORKERS": str(workers), "PIPELINES_INTAKE_LOG_LEVEL": "warning",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if db_concurrency:
        env["PIPELINES_INTAKE_DB_CONCURRENCY"] = str(db_concurrency)
    logfile = (workdir / "intake.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.intake.server"], env=env, cwd=ROOT,
                            stdout=logfile, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"intake exited with {proc.returncode}: {(workdir / 'intake.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("intake did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        cpu = _cpu_seconds(proc.pid)  # the intake's own CPU (and its workers'), read before it stops
        if cpu is not None:
            stats["intake_cpu_s"] = round(cpu, 2)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()
        tail = (workdir / "intake.log").read_text().strip().splitlines()[-5:]
        problems = [line for line in tail if "ERROR" in line or "Traceback" in line]
        if problems:
            log("intake log tail: " + " | ".join(problems))


def bench(url: str, database: str, args: argparse.Namespace, workdir: Path) -> dict:
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    requests = args.requests or (5000 if args.quick else 50000)
    plan = build_plan(requests, args.seed)
    unique = sum(d.events for d in plan if not d.duplicate)
    dup_events = sum(d.events for d in plan if d.duplicate)
    malformed = sum(1 for d in plan if d.kind.startswith("malformed"))
    log(f"plan: {len(plan)} deliveries, {unique} unique events, {dup_events} duplicate events, "
        f"{malformed} malformed deliveries")
    inbox0, quarantine0 = counts(url)
    stats: dict = {}
    with intake_process(url, args.workers, args.db_concurrency, workdir, stats) as base:
        cpu0 = time.process_time()
        log(f"intake up at {base} ({args.workers} worker(s), {database}); load with concurrency {args.concurrency}")
        t0 = time.perf_counter()
        out = _run(run_load(base, plan, args.concurrency))
        wall = time.perf_counter() - t0
        load_cpu = time.process_time() - cpu0
    inbox1, quarantine1 = counts(url)
    stored, quarantined = inbox1 - inbox0, quarantine1 - quarantine0
    events = unique + dup_events
    result = {
        "events_per_s": round(events / wall, 1),
        "ack_p50_ms": round(pct(out.latencies, 0.50) * 1000, 2),
        "ack_p99_ms": round(pct(out.latencies, 0.99) * 1000, 2),
        "stored": stored,
        "duplicates_refused": out.duplicate_acks,
        "quarantined": quarantined,
        "lost": unique - stored,
        "concurrency": args.concurrency,
        "cores": os.cpu_count(),
        "database": database,
        "workers": args.workers,
        "deliveries": len(plan),
        "deliveries_per_s": round(len(plan) / wall, 1),
        "events": events,
        "duplicates_sent": dup_events,
        "malformed_sent": malformed,
        "retries": out.retries,
        "failed": out.failed,
        "unexpected": out.unexpected,
        "duration_s": round(wall, 2),
        "intake_cpu_s": stats.get("intake_cpu_s"),
        "loadgen_cpu_s": round(load_cpu, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "quick": bool(args.quick),
    }
    log(f"statuses: {dict(sorted(out.statuses.items()))}")
    checks = {
        "stored == unique events sent": stored == unique,
        "stored acks == unique events sent": out.stored_acks == unique,
        "duplicates refused == duplicate events sent": out.duplicate_acks == dup_events,
        "quarantined == malformed sent": quarantined == malformed,
        "every malformed delivery got a 4xx": out.refused == malformed,
        "no delivery failed": out.failed == 0 and out.unexpected == 0,
    }
    for name, ok in checks.items():
        log(f"audit: {name}: {'ok' if ok else 'FAILED'}")
    result["audit_ok"] = all(checks.values())
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5,000 deliveries instead of 50,000")
    ap.add_argument("--requests", type=int, default=None, help="number of deliveries (overrides --quick)")
    ap.add_argument("--database-url", default=None, help="benchmark against this database (default: fresh SQLite)")
    ap.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server (needs its binaries)")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the intake (default 1)")
    ap.add_argument("--db-concurrency", type=int, default=None, help="PIPELINES_INTAKE_DB_CONCURRENCY for the intake")
    ap.add_argument("--concurrency", type=int, default=16, help="deliveries in flight (default 16)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
        workdir = Path(tmp)
        if args.database_url:
            from pipelines.store.db import normalise_url

            url = args.database_url
            database = "postgresql" if normalise_url(url).startswith("postgresql") else url.split(":", 1)[0]
            result = bench(url, database, args, workdir)
        elif args.postgres:
            from pipelines_tests.pg_server import throwaway_postgres

            log("starting a throwaway PostgreSQL server")
            with throwaway_postgres() as url:
                result = bench(url, "postgresql", args, workdir)
        else:
            result = bench(f"sqlite:///{workdir / 'bench.sqlite'}", "sqlite", args, workdir)
    print(json.dumps(result), flush=True)
    return 0 if result["audit_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
