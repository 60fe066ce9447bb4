"""The daily store sales journal materialised for real (`dg.materialize` of `erp_sales_journal` and `erp_store_sales`)
against the Business Central simulator through the production adapter (`BusinessCentralErp`), on SQLite and
PostgreSQL. Oracles: the simulator's posted G/L entries (ground truth) checked against amounts computed by hand, and
the reconciliation's store-sales rule over the day's POS lines and the read-back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from pipelines.defs.erp.journal import erp_sales_journal, erp_store_sales
from pipelines.defs.resources import (
    BusinessCentralResource,
    EstateResource,
    ReconciliationSettings,
    StoreOfRecord,
)
from pipelines.domain.reconciliation.reference import build_reference
from pipelines.domain.reconciliation.rules.store_sales import store_sales
from pipelines.estate import Estate, load_estate
from pipelines.simulators.businesscentral import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    BusinessCentralSimulator,
    BusinessCentralState,
)
from pipelines.simulators.erp_world import seed_company
from pipelines.simulators.estate_gen import generate_estate
from pipelines.store import make_engine
from pipelines.store.partitions import read_partition, replace_partitions

DAY = "2026-11-20"
TENANT, ENV = "t1", "production"


@dataclass
class World:
    engine: Engine
    estate: Estate
    estate_path: Path
    bc: BusinessCentralSimulator
    company_id: str
    db_url: str

    def resources(self, *, configured: bool = True) -> dict[str, Any]:
        bc = BusinessCentralResource(api_url=self.bc.url, tenant=TENANT, environment=ENV, client_id=DEFAULT_CLIENT_ID,
                                     client_secret=DEFAULT_CLIENT_SECRET, company_id=self.company_id) \
            if configured else BusinessCentralResource()
        return {"store": StoreOfRecord(database_url=self.db_url), "estate": EstateResource(path=str(self.estate_path)),
                "businesscentral": bc, "reconciliation_settings": ReconciliationSettings()}

    def materialize(self, *assets: dg.AssetsDefinition, **kw: Any) -> dict[str, dict[str, Any]]:
        result = dg.materialize(list(assets), resources=self.resources(**kw), partition_key=DAY, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        out = {}
        for a in assets:
            (mat,) = result.asset_materializations_for_node(a.key.path[-1])
            out[a.key.path[-1]] = {k: v.value for k, v in mat.metadata.items()}
        return out

    def gl(self) -> list[dict[str, Any]]:
        return list(self.bc.state.company(self.company_id).sets["generalLedgerEntries"].values())

    def gl_by_account(self, document: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for e in self.gl():
            if e["documentNumber"] == document:
                out[e["accountNumber"]] = round(out.get(e["accountNumber"], 0.0) + e["debitAmount"] - e["creditAmount"],
                                                2)
        return out


def _store_accounts(estate: Estate) -> tuple[str, str]:
    a, b = estate.stores[0].id, estate.stores[1].id
    return a, b


def _line(estate: Estate, store: int, tid: str, line_no: int, kind: str, qty: int, unit: float, disc: float,
          tax: float, net: float) -> dict[str, Any]:
    loc = estate.stores[store]
    sku = estate.skus()[line_no]
    return {"transaction_id": tid, "line_no": line_no, "kind": kind, "fulfillment_node_id": loc.newstore_node_id,
            "location_id": loc.id, "sku": sku, "ean": None, "sku_known": True, "quantity": qty, "unit_price": unit,
            "discount": disc, "tax": tax, "net_amount": net, "currency": loc.currency,
            "event_time": f"{DAY}T10:00:00.000000Z", "original_order_ref": None, "original_transaction_id": None,
            "source_event": f"ev-{tid}-{line_no}"}


def _land_sales(world: World) -> pd.DataFrame:
    """The day's POS sale lines (25 % VAT, prices include tax; net_amount excludes it, as the POS decoder writes)."""
    e = world.estate
    lines = pd.DataFrame([
        _line(e, 0, "T1", 1, "sale", 2, 100.0, 0.0, 40.0, 160.0),
        _line(e, 0, "T2", 1, "sale", 1, 250.0, 50.0, 40.0, 160.0),
        _line(e, 1, "T3", 1, "sale", 1, 80.0, 0.0, 16.0, 64.0),
        _line(e, 1, "T4", 2, "return", 1, 80.0, 0.0, 16.0, 64.0),  # a return is no sale
    ])
    replace_partitions(world.engine, DAY, {"pos_sale_lines": lines})
    return lines.assign(business_date=DAY)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    data = generate_estate(sizes=24, stores=3, seed=11, erp=True)
    path = tmp_path / "estate.json"
    path.write_text(json.dumps(data))
    estate = load_estate(path)
    state = BusinessCentralState()
    company = seed_company(state, estate)
    engine = make_engine(db_url)
    with BusinessCentralSimulator(state, tenant=TENANT, environment=ENV) as sim:
        try:
            yield World(engine, estate, path, sim, company.company_id, db_url)
        finally:
            engine.dispose()


def test_the_day_is_posted_per_store_and_rate_and_read_back_exactly(world: World) -> None:
    """Kills: documents on the wrong accounts or with wrong signs, the default balancing account used for a store
    that has its own, returns posted as sales, a re-run posting again (duplicate G/L entries), a read-back that does
    not reconcile with the POS, posted_at moved by a re-run."""
    lines = _land_sales(world)
    j = world.estate.erp.sales_journal
    a, b = _store_accounts(world.estate)
    meta = world.materialize(erp_sales_journal, erp_store_sales)
    assert meta["erp_sales_journal"]["posted"] == 2 and meta["erp_sales_journal"]["already_posted"] == 0
    assert meta["erp_store_sales"]["documents_in_erp"] == 2
    # Ground truth: the ERP's G/L, by account (debit positive), against amounts worked out by hand.
    assert world.gl_by_account("POS261120-001-2500") == {
        j.revenue_account: -370.0, j.discount_account: 50.0, j.vat_account: -80.0, j.balancing_account(a): 400.0}
    assert world.gl_by_account("POS261120-002-2500") == {
        j.revenue_account: -64.0, j.vat_account: -16.0, j.balancing_account(b): 80.0}
    assert j.balancing_account(a) != j.default_balancing_account
    sales = read_partition(world.engine, "erp_store_sales", DAY).sort_values("location_id")
    assert [tuple(r) for r in sales[["location_id", "tax_rate", "count", "gross", "discount", "tax", "net"]]
            .itertuples(index=False)] == [(a, 0.25, 2, 450.0, 50.0, 80.0, 320.0), (b, 0.25, 1, 80.0, 0.0, 16.0, 64.0)]
    ref = build_reference(world.estate)
    assert store_sales(DAY, lines, sales, ref.locations, tax_rates=ref.tax_rates).empty
    first = read_partition(world.engine, "erp_sales_postings", DAY)
    entries = len(world.gl())
    again = world.materialize(erp_sales_journal, erp_store_sales)
    assert again["erp_sales_journal"]["posted"] == 0 and again["erp_sales_journal"]["already_posted"] == 2
    assert len(world.gl()) == entries
    second = read_partition(world.engine, "erp_sales_postings", DAY)
    assert sorted(second["posted_at"]) == sorted(first["posted_at"])


def test_a_document_the_erp_lacks_is_absent_and_the_reconciliation_finds_it(world: World) -> None:
    """Kills: a read-back that echoes our own postings instead of the ERP's ledger (the missing store would then
    reconcile as if the ERP had its sales)."""
    lines = _land_sales(world)
    world.materialize(erp_sales_journal)
    company = world.bc.state.company(world.company_id)
    with world.bc.state.lock:  # the ERP lost the document (e.g. a company restored from a backup before it)
        for key in [k for k, e in company.sets["generalLedgerEntries"].items()
                    if e["documentNumber"] == "POS261120-002-2500"]:
            del company.sets["generalLedgerEntries"][key]
    meta = world.materialize(erp_store_sales)["erp_store_sales"]
    assert meta["documents_posted"] == 2 and meta["documents_in_erp"] == 1 and meta["missing_in_erp"] == 1
    sales = read_partition(world.engine, "erp_store_sales", DAY)
    a, b = _store_accounts(world.estate)
    assert list(sales["location_id"]) == [a]
    ref = build_reference(world.estate)
    found = store_sales(DAY, lines, sales, ref.locations, tax_rates=ref.tax_rates)
    assert [(r.finding_type, r.location_id) for r in found.itertuples()] == [("store_sales_mismatch", b)]


def test_a_document_the_erp_refuses_is_an_exception_and_no_posting(world: World, tmp_path: Path) -> None:
    """Kills: a refused document recorded as posted (the read-back would then hide nothing, but finance would believe
    it is in the ERP), one refusal stopping the other stores' documents, a refusal without an exception record."""
    data = json.loads(world.estate_path.read_text())
    a, b = _store_accounts(world.estate)
    data["erp"]["sales_journal"]["balancing_accounts"][b] = "9999"  # not in the ERP's chart of accounts
    world.estate_path.write_text(json.dumps(data))
    _land_sales(world)
    meta = world.materialize(erp_sales_journal, erp_store_sales)
    assert meta["erp_sales_journal"]["rejected"] == 1 and meta["erp_sales_journal"]["posted"] == 1
    assert list(read_partition(world.engine, "erp_sales_postings", DAY)["location_id"]) == [a]
    assert {e["documentNumber"] for e in world.gl()} == {"POS261120-001-2500"}
    with world.engine.connect() as conn:
        rows = conn.execute(text("SELECT exception_type, location_id, business_date FROM exceptions")).all()
    assert [tuple(r) for r in rows] == [("erp_sales_journal_rejected", b, DAY)]


def test_without_business_central_nothing_is_done(world: World) -> None:
    """Kills: assets that fail, or write empty days over real ones, when the ERP is not configured."""
    _land_sales(world)
    meta = world.materialize(erp_sales_journal, erp_store_sales, configured=False)
    assert "not configured" in meta["erp_sales_journal"]["skipped"]
    assert "not configured" in meta["erp_store_sales"]["skipped"]
    assert read_partition(world.engine, "erp_sales_postings", DAY).empty and not world.gl()
