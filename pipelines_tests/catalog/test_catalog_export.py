"""The catalog export for real: Centra and NewStore simulators over loopback HTTP (`pipelines.devstack.Stack`),
the asset `newstore_catalog_export` materialised by Dagster, the import file fetched by the NewStore fake
from the URL the run serves it at, SQLite and PostgreSQL as the store of record. Oracles: the Centra simulator's catalog
and NewStore's catalog as its import filled it (sim-only world reads), never the export's own code."""

from __future__ import annotations

import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from sqlalchemy import text

from pipelines.defs.catalog import newstore_catalog_export
from pipelines.defs.resources import (
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    NewStoreResource,
    StoreOfRecord,
)
from pipelines.devstack import Stack
from pipelines.simulators.newstore.imports import ImportService
from pipelines.store import catalog_export as export_state


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path: Path):
    url = None
    if request.param == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"catalog_{abs(hash(str(tmp_path)))}")
    with Stack(tmp_path / "stack", sizes=60, stores=3, seed=11, database_url=url) as s:
        yield s


def imports_of(stack: Stack) -> ImportService:
    return stack.newstore.app.state.imports


def resources(stack: Stack) -> dict[str, Any]:
    env = stack.env()
    return {"store": StoreOfRecord(database_url=stack.database_url),
            "estate": EstateResource(path=str(stack.estate_file)),
            "centra": CentraResource(base_url=env["CENTRA_API_URL"], token=env["CENTRA_API_TOKEN"]),
            "commercetools": CommercetoolsResource(),
            "newstore": NewStoreResource(base_url=env["NEWSTORE_API_URL"], tenant=env["NEWSTORE_TENANT"],
                                         client_id=env["NEWSTORE_CLIENT_ID"],
                                         client_secret=env["NEWSTORE_CLIENT_SECRET"])}


def export(stack: Stack, *, full: bool = False, **config: Any) -> dict[str, Any]:
    run_config = {"ops": {"newstore_catalog_export": {"config": {"full": full, "poll_s": 0.05, **config}}}}
    result = dg.materialize([newstore_catalog_export], resources=resources(stack), run_config=run_config)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def store_pricelists(stack: Stack) -> dict[int, str]:
    """Centra price list id -> currency, for the price lists the estate's stores sell from."""
    currency = {p.id: p.currency for p in stack.estate.centra.pricelists}
    return {loc.centra_pricelist_id: currency[loc.centra_pricelist_id] for loc in stack.estate.stores}


def centra_truth(stack: Stack) -> dict[str, dict[str, Any]]:
    """What NewStore should hold, straight from the Centra simulator's state."""
    books = store_pricelists(stack)
    out = {}
    for ref in stack.centra.state.sizes.values():
        out[ref.size.sku] = {"ean": ref.size.ean,
                             "prices": {f"centra-{pl}": Decimal(str(ref.variant.prices[pl])).quantize(Decimal("0.01"))
                                        for pl in books if pl in ref.variant.prices}}
    return out


def newstore_catalog(stack: Stack) -> dict[str, dict[str, Any]]:
    sim = imports_of(stack)
    books = sim.prices()
    out = {}
    for pid, product in sim.products().items():
        eans = [i["value"] for i in product["external_identifiers"] if i["type"] == "ean13"]
        out[pid] = {"ean": eans[0] if eans else None,
                    "prices": {name: b["prices"][pid] for name, b in books.items() if pid in b["prices"]}}
    return out


def exceptions(stack: Stack) -> list[dict[str, Any]]:
    with stack.engine.connect() as conn:
        rows = conn.execute(text("SELECT exception_key, sku, occurrences, message, owner_team FROM exceptions "
                                 "WHERE exception_type = 'catalog_sku_rejected'")).all()
    return [dict(r._mapping) for r in rows]


def test_full_export_makes_newstores_catalog_equal_centras(stack: Stack) -> None:
    """Kills: a SKU, EAN or per-market price lost or altered between Centra and NewStore; a price book
    missing for a store's price list; the file not fetched and imported by NewStore."""
    meta = export(stack, full=True)
    assert meta["mode"] == "full" and meta["rejected"] == 0 and meta["job_id"]
    truth = centra_truth(stack)
    assert meta["products_sent"] == len(truth) == 60
    assert newstore_catalog(stack) == truth
    (job,) = imports_of(stack).jobs()
    assert job["state"] == "finished" and job["errors"] == [] and job["entities"] == ["products", "prices"]


def test_incremental_sends_only_the_changed_skus_and_a_rerun_sends_nothing(stack: Stack) -> None:
    """Kills: incremental resending everything (or nothing) after a price change; fingerprints not kept, so
    an idempotent re-run creates another import job."""
    export(stack, full=True)
    pl = next(iter(store_pricelists(stack)))
    variant = next(v for v in stack.centra.state.variants.values() if pl in v.prices)
    variant.prices[pl] = round(variant.prices[pl] + 10.5, 2)
    changed = {s.sku for s in variant.sizes}

    meta = export(stack)
    assert meta["mode"] == "incremental" and meta["products_sent"] == len(changed)
    skus = export_state.sku_states(stack.engine)
    assert {sku for sku, row in skus.items() if row["import_id"] == meta["job_id"]} == changed
    assert newstore_catalog(stack) == centra_truth(stack)

    jobs_before = len(imports_of(stack).jobs())
    again = export(stack)
    assert again["products_sent"] == 0 and again["job_id"] is None
    assert len(imports_of(stack).jobs()) == jobs_before == 2


def test_a_sku_newstore_refuses_is_one_exception_and_the_rest_import(stack: Stack) -> None:
    """Kills: one bad entity failing the whole import; a refusal lost (no exception) or reported twice
    (per entity instead of per SKU, or again on every run); the refused SKU re-sent while unchanged."""
    state = stack.centra.state
    bad = state.sizes[state.size_ids_sorted[7]]
    wrong = bad.size.ean[:-1] + str((int(bad.size.ean[-1]) + 1) % 10)  # check digit off by one
    state.sizes[bad.size.size_id] = replace(bad, size=replace(bad.size, ean=wrong))

    meta = export(stack, full=True)
    assert meta["rejected"] == 1 and meta["rejected_by_newstore"] == 1
    (exc,) = exceptions(stack)
    assert exc["sku"] == bad.size.sku and exc["owner_team"] == "ecommerce" and "invalid_ean" in exc["message"]
    catalog = newstore_catalog(stack)
    truth = centra_truth(stack)
    assert bad.size.sku not in catalog
    del truth[bad.size.sku]
    assert catalog == truth  # the other 59 imported, prices included

    again = export(stack)
    assert again["products_sent"] == 0
    (exc,) = exceptions(stack)
    assert exc["occurrences"] == 1


def test_a_sku_without_a_price_for_a_store_market_is_held_back(stack: Stack) -> None:
    """Kills: a SKU sent without the price of a store's market (NewStore would not offer it there); the
    hold not reported; the SKU not sent once Centra has the price."""
    pl = next(iter(store_pricelists(stack)))
    variant = next(v for v in stack.centra.state.variants.values() if pl in v.prices)
    price = variant.prices.pop(pl)
    held = {s.sku for s in variant.sizes}

    meta = export(stack, full=True)
    assert meta["held_back"] == len(held) and meta["products_sent"] == 60 - len(held)
    assert {e["sku"] for e in exceptions(stack)} == held
    assert not held & set(newstore_catalog(stack))

    variant.prices[pl] = price
    meta = export(stack)
    assert meta["products_sent"] == len(held)
    assert newstore_catalog(stack) == centra_truth(stack)


def test_a_429_on_too_many_open_jobs_is_waited_out(stack: Stack) -> None:
    """Kills: the export failing on NewStore's open-job limit instead of waiting for a slot."""
    sim = imports_of(stack)
    sim.knobs.max_open_product_jobs = 1
    with stack.newstore_client() as client:
        blocker = client._json("POST", "/v0/d/import", json={
            "provider": "other", "name": "blocker", "source_uri": "http://127.0.0.1:9/nothing.zip",
            "entities": ["products"]})["id"]

    def free_the_slot() -> None:  # the other job starts (its file cannot be fetched: it fails, and closes)
        httpx.post(f"{stack.newstore_server.url}/v0/d/import/{blocker}/start", json={},
                   headers={"Authorization": f"Bearer {stack.newstore_client()._access_token()}"}, timeout=10)

    with stack.newstore_client() as client:  # the limit as a client meets it: 429 with Retry-After
        token = client._access_token()
    refused = httpx.post(f"{stack.newstore_server.url}/v0/d/import", headers={"Authorization": f"Bearer {token}"},
                         json={"provider": "x", "name": "y", "source_uri": "http://127.0.0.1:9/z.zip",
                               "entities": ["products"]}, timeout=10)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1

    timer = threading.Timer(1.5, free_the_slot)
    timer.start()
    try:
        meta = export(stack, full=True)
    finally:
        timer.cancel()
    refusals = [x for x in stack.newstore.controls.exchanges() if x.path == "/v0/d/import" and x.status == 429]
    assert len(refusals) >= 2  # ours above, and at least one the export waited out
    assert meta["products_sent"] == 60 and newstore_catalog(stack) == centra_truth(stack)
    states = {j["name"]: j["state"] for j in sim.jobs()}
    assert states["blocker"] == "failed" and list(states.values()).count("finished") == 1


def test_a_429_on_job_spacing_is_waited_out(stack: Stack) -> None:
    """Kills: a second import job sent inside NewStore's minimum spacing without waiting (knob scaled down
    from the documented 5 minutes)."""
    sim = imports_of(stack)
    export(stack, full=True)
    variant = next(iter(stack.centra.state.variants.values()))
    for pl in variant.prices:
        variant.prices[pl] = round(variant.prices[pl] + 1, 2)
    sim.knobs.min_job_spacing_s = 3.0
    sim.job_created_now()  # the next job is due 3 s from now; the export asks well before
    meta = export(stack)
    assert meta["products_sent"] == len(variant.sizes)
    assert any(x.path == "/v0/d/import" and x.status == 429 for x in stack.newstore.controls.exchanges())
    assert [j["state"] for j in sim.jobs()] == ["finished", "finished"]
    assert newstore_catalog(stack) == centra_truth(stack)


def test_a_failed_import_fails_the_run_and_sends_again_next_time(stack: Stack) -> None:
    """Kills: a failed job recorded as delivered (its SKUs then never sent again)."""
    run_config = {"ops": {"newstore_catalog_export": {"config": {
        "full": True, "poll_s": 0.05, "file_public_base_url": "http://127.0.0.1:9"}}}}  # NewStore cannot reach it
    result = dg.materialize([newstore_catalog_export], resources=resources(stack), run_config=run_config,
                            raise_on_error=False)
    assert not result.success
    (job,) = imports_of(stack).jobs()
    assert job["state"] == "failed"
    assert export_state.sent_fingerprints(stack.engine) == {}
    meta = export(stack)
    assert meta["products_sent"] == 60 and newstore_catalog(stack) == centra_truth(stack)
