"""The Import API connector against the NewStore fake over loopback HTTP: a job's life, per-entity errors,
the file fetched from the URL we serve, and the 429 wait giving up when its budget is spent."""

from __future__ import annotations

import httpx
import pytest

from pipelines.connectors.errors import RateLimited
from pipelines.connectors.newstore import imports
from pipelines.domain.catalog_export import zip_files
from pipelines_tests.newstore_fixtures import fixture_ns_estate, fixture_ns_served  # noqa: F401


def test_a_job_imports_the_served_file_and_reports_refused_entities(ns_served) -> None:  # noqa: ANN001
    """Kills: the start not pointing NewStore at the file; per-entity errors lost in reading the status;
    one bad entity failing the whole file."""
    files = {"products.json": {"head": {"catalog": "c", "locale": "en-US"}, "items": [
        {"product_id": "A-1", "title": "A", "external_identifiers": [{"type": "ean13", "value": "4006381333931"}]},
        {"product_id": "B-1", "title": "B", "external_identifiers": [{"type": "ean13", "value": "4006381333932"}]}]},
        "prices.json": {"head": {"catalog": "c", "locale": "en-US", "pricebook": "pb", "currency": "SEK"},
                        "items": [{"product_id": "A-1", "value": 10.5}, {"product_id": "B-1", "value": 3}]}}
    with ns_served.client() as client, imports.served_file(zip_files(files), "c.zip") as served:
        job = imports.create_job(client, name="t", source_uri=served.url, entities=["products", "prices"])
        assert imports.job_status(client, job).state == "created"
        imports.start_job(client, job)
        status = imports.wait_for_job(client, job, timeout_s=20, poll_s=0.05)
    assert served.fetches == 1
    assert status.state == "finished" and status.done
    assert {(e.entity, e.product_id, e.error_code) for e in status.errors} == {
        ("products", "B-1", "invalid_ean"), ("prices", "B-1", "unknown_product")}
    sim = ns_served.sim.app.state.imports
    assert set(sim.products()) == {"A-1"}
    assert {k: {p: str(v) for p, v in b["prices"].items()} for k, b in sim.prices().items()} == {"pb": {"A-1": "10.5"}}


def test_a_429_outlasting_the_wait_budget_is_raised(ns_served) -> None:  # noqa: ANN001
    """Kills: waiting forever (or not at all) on NewStore's job spacing."""
    sim = ns_served.sim.app.state.imports
    sim.knobs.min_job_spacing_s = 300.0  # the documented 5 minutes
    sim.job_created_now()
    slept: list[float] = []
    with ns_served.client(max_attempts=1) as client, pytest.raises(RateLimited):
        imports.create_job(client, name="t", source_uri="http://127.0.0.1:9/x.zip", entities=["products"],
                           wait_budget_s=600.0, sleep=slept.append, clock=lambda: 1000.0 + sum(slept))
    assert slept and all(290 <= s <= 301 for s in slept)  # waited Retry-After, then gave up at the budget
    assert len(slept) == 2


def test_an_unreachable_file_fails_the_job(ns_served) -> None:  # noqa: ANN001
    """Kills: a job reported finished although NewStore could not fetch its file."""
    with ns_served.client() as client:
        job = imports.create_job(client, name="t", source_uri="http://127.0.0.1:9/x.zip", entities=["products"])
        imports.start_job(client, job)
        status = imports.wait_for_job(client, job, timeout_s=20, poll_s=0.05)
    assert status.state == "failed" and "could not fetch" in (status.reason or "")
    assert httpx.get(f"{ns_served.url}/v0/d/import/{job}").status_code == 401  # the API needs a token
