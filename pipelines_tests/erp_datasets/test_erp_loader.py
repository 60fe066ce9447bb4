"""The reconciliation's loader fills the ERP inputs from the store of record (real SQLite and PostgreSQL, rows written
as the ERP assets, the ERP journal and the order flows write them): the day's rows only, the blocked orders with their
exception type, the DC's commerce warehouse, the store sales the ERP posted; and nothing at all without an ERP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from pipelines.defs.reconciliation.assets import erp_inputs, load_inputs
from pipelines.defs.resources import EstateResource, StoreOfRecord
from pipelines.domain.erp import exceptions as erp_exceptions
from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.reconciliation import reconcile
from pipelines.estate import load_estate
from pipelines.simulators.estate_gen import generate_estate
from pipelines.store import make_engine
from pipelines.store import order_flows as work
from pipelines.store.inbox import record_exceptions
from pipelines.store.partitions import replace_partitions

DAY, OTHER = "2026-12-01", "2026-11-30"
NOW = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)


def _estate_file(tmp_path: Path, **erp_changes: object) -> Path:
    data = generate_estate(sizes=24, stores=2, seed=11, erp=True)
    data["erp"].update(erp_changes)
    path = tmp_path / "estate.json"
    path.write_text(json.dumps(data))
    return path


def _write_day(engine, day: str, n: int) -> None:
    """`n` rows of each ERP table for `day`, as the assets write them."""
    replace_partitions(engine, day, {
        "erp_sales_orders": pd.DataFrame([
            {"order_id": f"o{day}{i}", "order_number": f"SO{i}", "external_ref": str(1000 + i), "currency": "",
             "customer_number": "WEB-SE", "status": "Open", "total_including_tax": 100.25 + i, "total_tax": 20.05,
             "discount_amount": 0.0, "line_count": 2} for i in range(n)]),
        "erp_shipments": pd.DataFrame([
            {"shipment_id": f"s{day}{i}", "shipment_number": f"SH{i}", "order_number": f"SO{i}",
             "external_ref": str(1000 + i), "units": 2, "value": 50.5, "currency": "", "tracking_number": f"T{i}",
             "carrier": "DHL", "in_commerce": i % 2 == 0, "checked_at": "2026-12-02T00:30:00.000000Z"}
            for i in range(n)]),
        "erp_stock_snapshot": pd.DataFrame([
            {"snapshot_at": "2026-12-01T23:00:00.000000Z", "sku": f"SKU{i}", "item_number": f"SKU{i}",
             "variant_code": None, "on_hand": 10 + i} for i in range(n)]),
        "erp_items": pd.DataFrame([{"number": f"SKU{i}", "variant_code": None} for i in range(n)]),
        "erp_store_sales": pd.DataFrame([
            {"location_id": "ST1", "tax_rate": 0.25, "count": 3, "gross": 400.0, "discount": 20.0, "tax": 76.0,
             "net": 304.0 + i} for i in range(n)]),
    })


def _block(engine, ref: str, kind=None, *, key: str | None = None, outcome: dict | None = None,
           flow: str = "erp_order") -> None:
    """A work item the flow runner finished as `exception` (its exception record written as the runner does)."""
    work.enqueue(engine, [work.Trigger(flow, ref, "order.updated", 1, None)], NOW)
    item = next(i for i in work.due(engine, NOW) if i.flow == flow and i.work_key == ref)
    if kind is not None:
        rec = ExceptionRecord.of(kind, f"{flow}:{ref}", "order_flows", "blocked")
        record_exceptions(engine, [rec])
        key = rec.key
    work.finish(engine, item, work.EXCEPTION, NOW, outcome=outcome or {"action": "blocked"}, exception_key=key)


def test_erp_inputs_read_the_day_and_the_blocked_orders(db_url: str, tmp_path: Path) -> None:
    """Kills: rows of another day read, in_commerce read as the database's 0/1 (or PostgreSQL's bool) instead of
    bool, a done work item or another flow's exception taken as blocked, the exception type not the record's (nor,
    without a record, the key's), money not read back as floats, the DC's location id passed instead of its
    commerce warehouse, and the store sales the ERP posted not becoming `downstream_sales`."""
    engine = make_engine(db_url)
    estate = load_estate(_estate_file(tmp_path))
    _write_day(engine, DAY, 3)
    _write_day(engine, OTHER, 5)
    _block(engine, "1001", erp_exceptions.ERP_TAX_CODE_UNMAPPED)
    _block(engine, "1002", key="erp_currency_mismatch:erp_order:1002")  # no exception record: the key says
    _block(engine, "1003", erp_exceptions.ERP_SKU_UNMAPPED, flow="pickup")  # another flow's
    work.enqueue(engine, [work.Trigger("erp_order", "1004", "order.updated", 1, None)], NOW)
    done = next(i for i in work.due(engine, NOW) if i.work_key == "1004")
    work.finish(engine, done, work.DONE, NOW, outcome={"action": "posted"})

    got = erp_inputs(engine, estate, DAY, True)

    assert sorted(got["erp_orders"]["order_number"]) == ["SO0", "SO1", "SO2"]
    assert set(got["erp_orders"]["business_date"]) == {DAY}
    assert got["erp_orders"].set_index("order_number").loc["SO2", "total_including_tax"] == pytest.approx(102.25)
    ships = got["erp_shipments"].set_index("shipment_number")
    assert ships["in_commerce"].tolist() == [True, False, True] and ships["in_commerce"].dtype == bool
    assert float(ships.loc["SH1", "value"]) == 50.5 and int(ships.loc["SH1", "units"]) == 2
    assert dict(zip(got["erp_stock"]["sku"], got["erp_stock"]["on_hand"].astype(int), strict=True)) == \
        {"SKU0": 10, "SKU1": 11, "SKU2": 12}
    assert len(got["erp_items"]) == 3
    assert got["erp_blocked"].sort_values("order_ref").values.tolist() == [
        ["1001", "erp_tax_code_unmapped"], ["1002", "erp_currency_mismatch"]]
    assert got["erp_dc_warehouse_id"] == estate.distribution_centre.centra_warehouse_id
    assert got["erp_expected_currency"] == estate.erp.currencies and got["erp_mapping"] is estate.erp
    sales = got["downstream_sales"]
    assert list(sales.columns) == ["location_id", "business_date", "tax_rate", "count", "gross", "discount", "tax",
                                   "net"]
    assert sorted(sales["net"].astype(float)) == [304.0, 305.0, 306.0] and set(sales["business_date"]) == {DAY}


def test_no_erp_no_inputs(tmp_path: Path) -> None:
    """Business Central not configured, or an estate without an `erp` section: every ERP input stays None (the rules
    are skipped, not run on empty frames that would report every order missing). Kills: the settings or the estate
    ignored."""
    engine = make_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    from pipelines.store import migrate

    migrate(engine)
    assert erp_inputs(engine, load_estate(_estate_file(tmp_path)), DAY, False) == {}
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(generate_estate(sizes=24, stores=2, seed=11)))
    assert erp_inputs(engine, load_estate(plain), DAY, True) == {}


def test_dc_location_id_names_the_warehouse(tmp_path: Path) -> None:
    """The mapping's dc_location_id picks the commerce warehouse compared with the ERP's stock; an unknown id is an
    error, not a silent fall-back to the DC. Kills: always the estate's DC."""
    engine = make_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    from pipelines.store import migrate

    migrate(engine)
    base = load_estate(_estate_file(tmp_path))
    store = base.stores[1]
    (tmp_path / "a").mkdir()
    est = load_estate(_estate_file(tmp_path / "a", dc_location_id=store.id))
    assert erp_inputs(engine, est, DAY, True)["erp_dc_warehouse_id"] == store.centra_warehouse_id
    (tmp_path / "b").mkdir()
    bad = load_estate(_estate_file(tmp_path / "b", dc_location_id="NOWHERE"))
    with pytest.raises(ValueError, match="NOWHERE"):
        erp_inputs(engine, bad, DAY, True)


def test_load_inputs_switches_the_store_sales_rule_on(tmp_path: Path) -> None:
    """The whole loader on a real store: with the ERP the store sales rule runs against what the ERP posted (a store
    sale the ERP's ledger lacks is `store_sales_mismatch`) and the ERP rules run (the ERP's 10 on hand against the DC
    warehouse's 7 in Centra is ERP stock drift); without it both are skipped. Kills: `downstream_sales` not loaded
    (the rule stays skipped as before issue 15), the ERP fields not passed, the wrong warehouse compared."""
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    engine = make_engine(url)
    from pipelines.store import migrate

    migrate(engine)
    path = _estate_file(tmp_path)
    est = load_estate(path)
    store = est.stores[0]
    sku = est.skus()[0]
    replace_partitions(engine, DAY, {"pos_sale_lines": pd.DataFrame([{
        "transaction_id": "T1", "line_no": 1, "kind": "sale", "fulfillment_node_id": store.newstore_node_id,
        "location_id": store.id, "sku": sku, "ean": None, "sku_known": True, "quantity": 1, "unit_price": 125.0,
        "discount": 0.0, "tax": 25.0, "net_amount": 100.0, "currency": store.currency,
        "event_time": "2026-12-01T10:00:00.000000Z", "original_order_ref": None, "original_transaction_id": None,
        "source_event": "e1"}])})
    dc = est.distribution_centre
    replace_partitions(engine, DAY, {
        "centra_stock_snapshot": pd.DataFrame([{
            "snapshot_at": "2026-12-01T23:00:00.000000Z", "warehouse_id": dc.centra_warehouse_id, "location_id": dc.id,
            "size_id": est.by_sku[sku].size.size_id, "sku": sku, "physical": 7, "allocated": 0, "free_to_allocate": 7,
            "demand": 0}]),
        "erp_stock_snapshot": pd.DataFrame([{"snapshot_at": "2026-12-01T23:00:00.000000Z", "sku": sku,
                                             "item_number": sku, "variant_code": None, "on_hand": 10}]),
        "erp_items": pd.DataFrame([{"number": sku, "variant_code": None}])})
    resources = (StoreOfRecord(database_url=url), EstateResource(path=str(path)))

    with_erp = reconcile(load_inputs(*resources, DAY, erp=True))
    without = reconcile(load_inputs(*resources, DAY, erp=False))

    assert "store_sales" not in with_erp.skipped and "erp_orders" not in with_erp.skipped
    assert "erp_orders" in with_erp.timings_s and "erp_stock" in with_erp.timings_s  # the ERP rules ran
    found = with_erp.findings[with_erp.findings["finding_type"] == "store_sales_mismatch"]
    assert found["location_id"].tolist() == [store.id]
    drift = with_erp.findings[with_erp.findings["finding_type"] == "erp_stock_drift"]
    assert drift[["sku", "quantity_diff"]].values.tolist() == [[sku, -3]]  # the DC's warehouse: 7 vs the ERP's 10
    assert "store_sales" in without.skipped and not any(k.startswith("erp") for k in without.timings_s)
    assert not without.findings["finding_type"].str.startswith("erp_").any()


def test_a_dataset_not_landed_stays_none_and_is_noted(tmp_path: Path) -> None:
    """An ERP dataset not landed for the day is None (its rules skipped) and one evidence note names it; the landed
    ones are read. Kills: an unlanded day read as an empty ERP (every commerce order `erp_order_missing`)."""
    from pipelines.defs.reconciliation.assets import erp_not_landed_notes
    from pipelines.domain.reconciliation import ReconciliationInputs
    from pipelines.domain.reconciliation.reference import build_reference
    from pipelines.store import migrate

    engine = make_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    migrate(engine)
    est = load_estate(_estate_file(tmp_path))
    _write_day(engine, DAY, 2)
    got = erp_inputs(engine, est, DAY, True, landed=lambda asset: asset != "erp_shipments")
    assert got["erp_shipments"] is None and len(got["erp_orders"]) == 2 and len(got["downstream_sales"]) == 2
    notes = erp_not_landed_notes(DAY, ReconciliationInputs(DAY, build_reference(est), **got), True, est)
    assert len(notes) == 1 and "erp_shipments" in notes[0]
    assert erp_not_landed_notes(DAY, ReconciliationInputs(DAY, build_reference(est)), False, est) == []
