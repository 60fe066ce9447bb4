"""NewStore's Import API in the fake: import jobs that fetch a zip of JSON files from a URL and fill the
tenant's product catalog (products and price books). Sources per field: ``PROVENANCE.md``, section
"Import API / catalog".

* ``POST /v0/d/import`` ``{provider, name, source_uri, entities, full, shop, locale}`` -> ``201 {"id"}``;
  the job is ``created``. More than ``max_open_jobs`` open jobs (``max_open_product_jobs`` for jobs with
  the ``products`` entity), or a job sooner than ``min_job_spacing_s`` after the previous one, is a 429
  with ``Retry-After``.
* ``POST /v0/d/import/{id}/start`` ``{transformed_uri?}`` -> the job, ``processing``. After
  ``processing_delay_s`` the fake fetches ``transformed_uri`` (else ``source_uri``) over HTTP, reads every
  ``*.json`` in the zip and imports it: a file whose ``head`` has ``pricebook`` is a price book, any other
  a product file. Entities are validated one by one; a rejected one is listed in the job's ``errors``
  and the rest of the file is imported. The job ends ``finished`` (or ``failed`` with ``reason`` when the
  file cannot be fetched or read, or a head lacks ``catalog``/``locale``).
* ``GET /v0/d/import/{id}`` -> the job (``import_id, entities, source, provider, source_uri,
  transformed_uri, revision, name, received_at, completed_at, state, reason, full, errors``).

World API (sim-only, for tests and generators): :meth:`ImportService.products`, :meth:`ImportService.prices`,
:meth:`ImportService.jobs`; knobs on :class:`ImportKnobs` (``app.state.imports.knobs``).
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines.estate.model import Estate

from .common import ZERO_DECIMAL_CURRENCIES, SimError, iso
from .framework import ApiBase

DOCUMENTED_JOB_SPACING_S = 300.0
"""NewStore: "if an import job needs to be broken down into multiple imports, ensure that each new import
job is run after a 5 minute interval" (developers/guides/catalog-integration/importdata)."""

OPEN_STATES = ("created", "processing")
KNOWN_ENTITIES = ("products", "categories", "prices", "availabilities")
_FORBIDDEN_ID_CHARS = ("=", "%")


@dataclass
class ImportKnobs:
    """Behaviour of the Import API; defaults are the documented values where there is one."""

    max_open_jobs: int = 20  # REF §1.3 "≤20 open jobs"
    max_open_product_jobs: int = 10  # REF §1.3 "(10 for products)"
    min_job_spacing_s: float = 0.0  # documented: DOCUMENTED_JOB_SPACING_S; small default for tests
    processing_delay_s: float = 0.0  # REF §1.3 "usually minutes"
    currencies: frozenset[str] | None = None  # configured currencies; None: the currencies of the estate's stores
    validate_ean: bool = True  # ASSUMPTION: an ``ean13`` identifier must be 13 digits with a valid check digit
    require_title: bool = True  # ASSUMPTION: a product without a title is rejected
    fetch_timeout_s: float = 10.0


@dataclass
class ImportJob:
    id: str
    name: str
    provider: str
    source_uri: str
    entities: tuple[str, ...]
    full: bool
    shop: str | None
    locale: str | None
    revision: int
    received_at: str
    state: str = "created"
    transformed_uri: str | None = None
    completed_at: str | None = None
    reason: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"import_id": self.id, "entities": list(self.entities), "source": self.transformed_uri or self.source_uri,
                "provider": self.provider, "source_uri": self.source_uri, "transformed_uri": self.transformed_uri,
                "revision": self.revision, "name": self.name, "received_at": self.received_at,
                "completed_at": self.completed_at, "state": self.state, "reason": self.reason, "full": self.full,
                "errors": [dict(e) for e in self.errors]}


class ImportRefused(SimError):
    """A 429 from the Import API; ``retry_after`` goes out as the ``Retry-After`` header."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(429, "too_many_requests", message)
        self.retry_after = retry_after


def ean13_valid(value: str) -> bool:
    """13 digits whose last one is the GS1 check digit of the first 12."""
    if len(value) != 13 or not value.isdigit():
        return False
    digits = [int(c) for c in value]
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == digits[12]


class ImportService:
    """Jobs and the catalog they fill. Thread-safe; the import itself runs on a worker thread per job."""

    def __init__(self, estate: Estate, *, clock: Callable[[], datetime] | None = None,
                 knobs: ImportKnobs | None = None) -> None:
        self.estate = estate
        self.clock = clock or (lambda: datetime.now(UTC))
        self.knobs = knobs or ImportKnobs()
        self._lock = threading.RLock()
        self._jobs: dict[str, ImportJob] = {}
        self._last_created: float | None = None
        self._revision = 0
        self._products: dict[str, dict[str, Any]] = {}  # product_id -> product item as imported (+ catalog, locale)
        self._pricebooks: dict[str, dict[str, Any]] = {}  # name -> {"currency", "catalog", "prices": {pid: Decimal}}
        self._workers: list[threading.Thread] = []

    # -- knobs / world API -----------------------------------------------------------------------------

    def configured_currencies(self) -> frozenset[str]:
        if self.knobs.currencies is not None:
            return frozenset(self.knobs.currencies)
        return frozenset(loc.currency for loc in self.estate.stores)

    def products(self) -> dict[str, dict[str, Any]]:
        """Sim-only: the catalog's products by product id (deep copies)."""
        with self._lock:
            return json.loads(json.dumps(self._products))

    def prices(self) -> dict[str, dict[str, Any]]:
        """Sim-only: price books by name: ``{"currency": str, "prices": {product_id: Decimal}}``."""
        with self._lock:
            return {name: {"currency": b["currency"], "prices": dict(b["prices"])} for name, b in self._pricebooks.items()}

    def jobs(self) -> list[dict[str, Any]]:
        """Sim-only: every job as ``GET /v0/d/import/{id}`` shows it, oldest first."""
        with self._lock:
            return [j.view() for j in self._jobs.values()]

    def job_created_now(self) -> None:
        """Sim-only: the spacing between jobs counts from now (as if a job had just been created)."""
        with self._lock:
            self._last_created = time.monotonic()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Sim-only: wait until no import worker is running."""
        deadline = time.monotonic() + timeout
        for worker in list(self._workers):
            worker.join(max(0.0, deadline - time.monotonic()))
        return all(not w.is_alive() for w in self._workers)

    # -- API -------------------------------------------------------------------------------------------

    def create_job(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SimError(400, "bad_request", "The request body must be a JSON object.")
        missing = [k for k in ("provider", "name", "source_uri", "entities") if not body.get(k)]
        if missing:
            raise SimError(400, "bad_request", f"'{missing[0]}' is a required property.")
        entities = body["entities"]
        if not isinstance(entities, list) or not all(e in KNOWN_ENTITIES for e in entities):
            raise SimError(400, "bad_request", f"'entities' must be a list of {', '.join(KNOWN_ENTITIES)}.")
        full = bool(body.get("full", False))
        if full and "availabilities" in entities:
            raise SimError(400, "bad_request", "A full import does not support the availabilities entity.")
        with self._lock:
            now = time.monotonic()
            if self._last_created is not None and self.knobs.min_job_spacing_s > 0:
                wait = self._last_created + self.knobs.min_job_spacing_s - now
                if wait > 0:
                    raise ImportRefused("Import jobs must be at least "
                                        f"{self.knobs.min_job_spacing_s:g}s apart.", wait)
            open_jobs = [j for j in self._jobs.values() if j.state in OPEN_STATES]
            if len(open_jobs) >= self.knobs.max_open_jobs:
                raise ImportRefused(f"Too many open import jobs ({len(open_jobs)}).", 1.0)
            if "products" in entities and sum("products" in j.entities for j in open_jobs) >= \
                    self.knobs.max_open_product_jobs:
                raise ImportRefused("Too many open product import jobs.", 1.0)
            self._revision += 1
            job = ImportJob(id=str(uuid.uuid4()), name=str(body["name"]), provider=str(body["provider"]),
                            source_uri=str(body["source_uri"]), entities=tuple(entities), full=full,
                            shop=body.get("shop"), locale=body.get("locale"), revision=self._revision,
                            received_at=iso(self.clock()))
            self._jobs[job.id] = job
            self._last_created = now
            return {"id": job.id}

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise SimError(404, "not_found", f"Import job '{job_id}' not found.")
            return job.view()

    def start_job(self, job_id: str, body: Any) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise SimError(404, "not_found", f"Import job '{job_id}' not found.")
            if job.state != "created":
                raise SimError(409, "conflict", f"Import job '{job_id}' was started already ({job.state}).")
            uri = body.get("transformed_uri") if isinstance(body, dict) else None
            job.transformed_uri = str(uri) if uri else None
            job.state = "processing"
            worker = threading.Thread(target=self._run, args=(job,), name=f"ns-import:{job.id[:8]}", daemon=True)
            self._workers = [w for w in self._workers if w.is_alive()] + [worker]
            view = job.view()
        worker.start()
        return view

    # -- processing ------------------------------------------------------------------------------------

    def _finish(self, job: ImportJob, state: str, reason: str | None = None) -> None:
        with self._lock:
            job.state, job.reason, job.completed_at = state, reason, iso(self.clock())

    def _run(self, job: ImportJob) -> None:
        if self.knobs.processing_delay_s > 0:
            time.sleep(self.knobs.processing_delay_s)
        url = job.transformed_uri or job.source_uri
        try:
            resp = httpx.get(url, timeout=self.knobs.fetch_timeout_s, follow_redirects=True)
        except httpx.HTTPError as exc:
            self._finish(job, "failed", f"could not fetch {url}: {type(exc).__name__}")
            return
        if resp.status_code != 200:
            self._finish(job, "failed", f"could not fetch {url}: HTTP {resp.status_code}")
            return
        try:
            files = _read_zip(resp.content)
        except ValueError as exc:
            self._finish(job, "failed", str(exc))
            return
        for name, doc in files:
            head = doc.get("head") if isinstance(doc, dict) else None
            if not isinstance(head, dict) or not (head.get("catalog") or head.get("shop")) or not head.get("locale"):
                self._finish(job, "failed", f"{name}: head.catalog and head.locale are required")
                return
        products = [(n, d) for n, d in files if "pricebook" not in d["head"]]
        books = [(n, d) for n, d in files if "pricebook" in d["head"]]
        with self._lock:
            if "products" in job.entities:
                for _, doc in products:
                    self._import_products(job, doc)
            if "prices" in job.entities:
                for _, doc in books:
                    self._import_prices(job, doc)
        self._finish(job, "finished")

    def _reject(self, job: ImportJob, entity: str, product_id: Any, code: str, message: str,
                pricebook: str | None = None) -> None:
        error: dict[str, Any] = {"entity": entity, "product_id": product_id, "error_code": code, "message": message}
        if pricebook is not None:
            error["pricebook"] = pricebook
        job.errors.append(error)

    def _product_error(self, item: Any) -> tuple[str, str] | None:
        if not isinstance(item, dict):
            return "invalid_entity", "a product must be a JSON object"
        pid = item.get("product_id")
        if not isinstance(pid, str) or not pid:
            return "missing_field", "'product_id' is a required property"
        if any(c in pid for c in _FORBIDDEN_ID_CHARS):
            return "invalid_product_id", "'product_id' must not contain '=' or '%'"
        if self.knobs.require_title and not item.get("title"):
            return "missing_field", "'title' is a required property"
        for ident in item.get("external_identifiers") or []:
            if not isinstance(ident, dict) or not ident.get("type") or not isinstance(ident.get("value"), str):
                return "invalid_external_identifier", "an external identifier needs 'type' and 'value'"
            if self.knobs.validate_ean and ident["type"] == "ean13" and not ean13_valid(ident["value"]):
                return "invalid_ean", f"'{ident['value']}' is not a valid EAN-13"
        return None

    def _import_products(self, job: ImportJob, doc: dict[str, Any]) -> None:
        head = doc["head"]
        catalog, locale = head.get("catalog") or head.get("shop"), head["locale"]
        seen: set[str] = set()
        for item in doc.get("items") or []:
            error = self._product_error(item)
            pid = item.get("product_id") if isinstance(item, dict) else None
            if error is not None:
                self._reject(job, "products", pid, *error)
                continue
            self._products[pid] = {**json.loads(json.dumps(item)), "catalog": catalog, "locale": locale}
            seen.add(pid)
        if job.full:  # documented: a full import deletes what the file does not contain
            for pid in [p for p, rec in self._products.items() if rec["catalog"] == catalog and p not in seen]:
                del self._products[pid]

    def _import_prices(self, job: ImportJob, doc: dict[str, Any]) -> None:
        head = doc["head"]
        name, currency = str(head["pricebook"]), str(head.get("currency") or "")
        book_ok = currency in self.configured_currencies()
        exponent = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
        book = self._pricebooks.get(name)
        if book_ok and (book is None or book["currency"] != currency):
            book = self._pricebooks[name] = {"currency": currency, "catalog": head.get("catalog") or head.get("shop"),
                                             "prices": {}}
        seen: set[str] = set()
        for item in doc.get("items") or []:
            pid = item.get("product_id") if isinstance(item, dict) else None
            if not book_ok:
                self._reject(job, "prices", pid, "currency_not_configured",
                             f"currency '{currency}' is not configured for this tenant", name)
                continue
            if not isinstance(pid, str) or pid not in self._products:
                self._reject(job, "prices", pid, "unknown_product", f"product '{pid}' is not in the catalog", name)
                continue
            try:
                value = Decimal(str(item.get("value")))
            except (InvalidOperation, ValueError):
                self._reject(job, "prices", pid, "invalid_price", "'value' must be a number", name)
                continue
            if not value.is_finite() or value < 0 or -value.as_tuple().exponent > exponent:
                self._reject(job, "prices", pid, "invalid_price",
                             f"{value} is not a valid {currency} amount ({exponent} decimals at most)", name)
                continue
            assert book is not None
            book["prices"][pid] = value
            seen.add(pid)
        if job.full and book is not None:
            for pid in [p for p in book["prices"] if p not in seen]:
                del book["prices"][pid]


def _read_zip(content: bytes) -> list[tuple[str, dict[str, Any]]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise ValueError("the import file is not a zip archive") from None
    out = []
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            try:
                doc = json.loads(archive.read(info))
            except ValueError:
                raise ValueError(f"{info.filename}: not valid JSON") from None
            out.append((info.filename, doc))
    if not out:
        raise ValueError("the import file holds no JSON file")
    return out


class ImportHandlers(ApiBase):
    """The Import API routes (mixed into the app beside ``AuthHandlers`` and ``RestHandlers``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.imports = ImportService(self.state.estate, clock=self.state.clock)

    async def create_import(self, request: Request, body: Any) -> Any:
        try:
            return 201, self.imports.create_job(body)
        except ImportRefused as exc:
            request.state.retry_after = exc.retry_after
            raise

    async def start_import(self, request: Request, body: Any) -> Any:
        return self.imports.start_job(request.path_params["id"], body)

    async def get_import(self, request: Request, body: Any) -> Any:
        return self.imports.get_job(request.path_params["id"])

    def import_routes(self) -> list[Route]:
        a = self.api

        def with_retry_after(endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
            async def wrapped(request: Request) -> Response:
                response = await endpoint(request)
                retry_after = getattr(request.state, "retry_after", None)
                if response.status_code == 429 and retry_after is not None:
                    response.headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
                return response
            return wrapped

        return [
            Route("/v0/d/import", with_retry_after(a(self.create_import)), methods=["POST"]),
            Route("/v0/d/import/{id}", a(self.get_import), methods=["GET"]),
            Route("/v0/d/import/{id}/start", a(self.start_import), methods=["POST"]),
        ]
