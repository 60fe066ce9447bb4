"""A short trading day with an ERP behind Centra (issue 15), through the product and into the reconciliation: web
orders confirmed in Centra reach Business Central through the order flows (`run_once`, as `order_flows_job` runs
them), the ERP's warehouse (`erp_world.ErpUser`) ships them (one in two parts, a bundle exploded into its
components), the shipments are polled and applied back to Centra, two store sales are journalled to the ERP, the
ERP stock resync runs, then the day's datasets, the ERP's and the reconciliation are materialised.

Oracles: the simulators' own records (BC's sales orders by external document number, Centra's shipments by the
ERP's tracking numbers, the Centra grand totals, the BC order lines' amounts) and the rules' definitions: a clean
ERP day has no ERP finding and a `store_sales_mismatch` rule that ran and found nothing; each of four injected faults
(a line taxed at a rate the mapping lacks, an ERP customer in another currency, a bundle whose mapping was removed,
a shipment published after the poll passed it) is found for its order with the right value."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pipelines.connectors.businesscentral.erp import BusinessCentralErp
from pipelines.connectors.centra import CentraClient
from pipelines.definitions import raw_assets
from pipelines.defs.erp.datasets import erp_items, erp_sales_orders, erp_shipments, erp_stock_snapshot
from pipelines.defs.erp.journal import erp_sales_journal, erp_store_sales
from pipelines.defs.flows import flow_context, run_once
from pipelines.defs.reconciliation.assets import reconciliation_findings
from pipelines.defs.resources import BusinessCentralResource, ErpSettings, OrderFlowSettings, SyncSettings
from pipelines.devstack import Stack
from pipelines.domain.timeutil import business_date
from pipelines.simulators.erp_world import (
    ErpUserConfig,
    place_order_taxed,
    set_customer_currency,
    unmap_bundle,
)
from pipelines.simulators.trading import TradingConfig
from pipelines.store.erp_orders import poll_shipments
from pipelines.store.partitions import read_partition
from pipelines.sync.erp_stock import queue_erp_stock
from pipelines_tests.traded import Traded, run_requested_sync

ERP_ASSETS = [erp_sales_orders, erp_shipments, erp_stock_snapshot, erp_items, erp_sales_journal, erp_store_sales]
LATE_S = 5.0  # the dropped shipment's late publication (the poll's overlap is 0 in the fault world)


class Day:
    """One ERP day on a fresh stack (6 stores: markets SE, DK, NO, DE)."""

    def __init__(self, home: Path, faults: bool) -> None:
        self.faults: dict[str, dict[str, Any]] = {}
        self.stack = Stack(home, sizes=40, stores=6, seed=9, trading=TradingConfig(), erp=True,
                           erp_user=ErpUserConfig(ship_after_s=(0, 0), partial_share=1.0, second_after_s=(0, 0)))
        self.with_faults = faults

    def run(self) -> None:
        stack = self.stack
        estate, centra = stack.estate, stack.centra.state
        self.markets = {m.countries[0]: m for m in estate.centra.markets}
        dc = estate.distribution_centre.centra_warehouse_id
        bundles = sorted(estate.erp.bundles)  # type: ignore[union-attr]
        skus = [s for s in estate.skus() if s not in bundles and centra.stock_of(dc, s)["fta"] >= 5]
        if self.with_faults:  # before the product reads the estate
            self.faults["bundle_unmapped"] = {"sku": unmap_bundle(stack.estate_file, bundles[0])}
            set_customer_currency(stack.bc.state, stack.erp_company.company_id, "WEB-NO", "EUR")
        traded = Traded(stack)
        env = stack.env()
        traded.resources |= {
            "sync_settings": SyncSettings(batch_delay_s=None),
            "order_flow_settings": OrderFlowSettings(run_window_s=0, retry_base_s=0.0),
            "businesscentral": BusinessCentralResource(
                api_url=env["BUSINESSCENTRAL_API_URL"], tenant=env["BUSINESSCENTRAL_TENANT"],
                environment=env["BUSINESSCENTRAL_ENVIRONMENT"], company_id=env["BUSINESSCENTRAL_COMPANY_ID"],
                client_id=env["BUSINESSCENTRAL_CLIENT_ID"], client_secret=env["BUSINESSCENTRAL_CLIENT_SECRET"]),
            "erp_settings": ErpSettings(shipment_overlap_s=0.0 if self.with_faults else 300.0, stock_quiet_s=0.0),
        }
        self.traded, r = traded, traded.resources
        trading = stack.trader.commerce  # erp_world.ErpCentraTrading: web orders confirmed when placed
        now = datetime.now(UTC)
        self.refs = [str(trading.place_order(self.markets["SE"], [(skus[0], 1)], "a@example.com", now, None)),
                     str(trading.place_order(self.markets["DE"], [(skus[1], 2), (skus[2], 1)], "b@example.com", now,
                                             None)),
                     str(trading.place_order(self.markets["SE"], [(bundles[-1], 1)], "c@example.com", now, None))]
        if self.with_faults:
            self.faults["tax_code_unmapped"] = {"order_ref": str(place_order_taxed(
                centra, self.markets["SE"].id, [(skus[3], 1)], 6.0, email="tax@example.com"))}
            self.faults["currency_mismatch"] = {"order_ref": str(trading.place_order(
                self.markets["NO"], [(skus[4], 1)], "nok@example.com", now, None))}
            self.faults["bundle_unmapped"]["order_ref"] = str(trading.place_order(
                self.markets["SE"], [(self.faults["bundle_unmapped"]["sku"], 1)], "gift@example.com", now, None))
            self.drop_ref = str(place_order_taxed(centra, self.markets["SE"].id, [(skus[5], 1)], 25.0,
                                                  email="drop@example.com"))
            self.faults["shipment_dropped"] = {"order_ref": self.drop_ref}
            for f in self.faults.values():
                order = centra.orders[int(f["order_ref"])]
                f["value"] = centra.order_grand_total(order)
        for store, sku in ((self.store("SE"), skus[6]), (self.store("DE"), skus[7])):
            stack.newstore.state.record_store_sale(store.newstore_node_id, [
                {"sku": sku, "quantity": 1, "unit_price": estate.price(sku, store.centra_pricelist_id),
                 "discount": 0.0}], at=now)
        stack.flush()
        settings = r["order_flow_settings"]
        ctx = lambda: flow_context(r["store"], r["centra"], r["newstore"], r["estate"], settings,  # noqa: E731
                                   r["commercetools"], r["businesscentral"], r["erp_settings"])
        for _ in range(2):  # the first run posts the orders; the second finds them there
            run_once(ctx())
        user = stack.erp_user
        if self.with_faults:
            self.drop_shipment(user)
        for _ in range(4):  # the warehouse: first parts, then the rest
            user.step()
        with stack.bc_client() as bc:
            erp = BusinessCentralErp(bc)
            overlap = r["erp_settings"].shipment_overlap_s
            for _ in range(2):  # each shipment applied once, though polled and run twice
                poll_shipments(stack.engine, erp, overlap, datetime.now(UTC))
                run_once(ctx())
            if self.with_faults:  # the late shipment is visible now, behind the poll's cursor
                time.sleep(max(0.0, self.dropped_at + LATE_S + 0.2 - time.monotonic()))
                poll_shipments(stack.engine, erp, overlap, datetime.now(UTC))
                run_once(ctx())
            with dg.instance_for_test() as instance:
                run_requested_sync(instance, r)  # the store sales to Centra
                with CentraClient(stack.centra_server.url, stack.secrets["CENTRA_API_TOKEN"]) as c:
                    queue_erp_stock(stack.engine, estate, c, erp, quiet_s=0.0)
                run_requested_sync(instance, r)  # the ERP's stock to Centra's DC
        stack.flush()
        self.day = business_date(datetime.now(UTC), estate.business_timezone)
        with pytest.MonkeyPatch.context() as mp:  # the environment the product's processes get (BUSINESSCENTRAL_*)
            for key, value in env.items():
                mp.setenv(key, value)
            self.result = traded.materialize([*raw_assets, *ERP_ASSETS, reconciliation_findings],
                                             partition_key=self.day)
        self.findings = read_partition(stack.engine, "reconciliation_findings", self.day)

    def store(self, country: str) -> Any:
        return next(s for s in self.stack.estate.stores if s.country == country)

    def drop_shipment(self, user: Any) -> None:
        """The fault order shipped with late publication, then another order's shipment posted and polled at once:
        the poll's cursor passes the late one before it is visible."""
        state, cid = self.stack.bc.state, self.stack.erp_company.company_id
        with state.lock:
            order = next(o for o in state.company(cid).sets["salesOrders"].values()
                         if o["externalDocumentNumber"] == self.drop_ref)
        shipment = user.ship_now(order["id"], late_s=LATE_S)
        self.dropped_at = time.monotonic()
        lines = {ln["sequence"]: ln for ln in state.order_lines(cid, order["id"])}
        self.faults["shipment_dropped"]["value"] = round(sum(
            q * lines[s]["amountIncludingTax"] / lines[s]["quantity"] for s, q in shipment.quantities.items()), 2)
        self.faults["shipment_dropped"]["shipment_number"] = shipment.number
        time.sleep(0.05)  # the next shipment's timestamp is later


def _erp_findings(findings) -> Any:  # noqa: ANN001
    return findings[findings["finding_type"].str.startswith("erp_")]


@pytest.fixture(scope="module")
def clean_day(tmp_path_factory: pytest.TempPathFactory):
    day = Day(tmp_path_factory.mktemp("erp-clean") / "stack", faults=False)
    with day.stack:
        day.run()
        yield day


@pytest.fixture(scope="module")
def fault_day(tmp_path_factory: pytest.TempPathFactory):
    day = Day(tmp_path_factory.mktemp("erp-faults") / "stack", faults=True)
    with day.stack:
        day.run()
        yield day


def test_each_web_order_reaches_the_erp_once_and_each_shipment_comes_back_once(clean_day) -> None:
    """Kills: an order posted twice across two flows runs (no look-up by external document number), an order never
    posted, an ERP shipment applied twice (polled twice) or never, a partial shipment merged with the rest, the
    tracking number or carrier lost on the way back, a bundle shipped in Centra before all its components are."""
    stack = clean_day.stack
    state, cid = stack.bc.state, stack.erp_company.company_id
    orders = list(state.company(cid).sets["salesOrders"].values())
    assert sorted(o["externalDocumentNumber"] for o in orders) == sorted(clean_day.refs)
    posted = stack.erp_user.shipments
    assert len(posted) >= 5  # three orders each shipped in two parts (the bundle's components count as its units)
    assert all(o["fullyShipped"] for o in orders)
    centra = stack.centra.state
    bundle_ref = clean_day.refs[2]
    for shipment in posted:
        order = centra.orders[int(shipment.external_ref)]
        mine = [centra.shipments[sid] for sid in order.shipment_ids
                if centra.shipments[sid].tracking_number == shipment.tracking_number]
        if shipment.external_ref == bundle_ref and shipment.part == 1:
            assert mine == [], shipment  # components of the set, not the set: nothing to ship in Centra yet
            continue
        assert len(mine) == 1, shipment
        assert mine[0].shipped_at is not None and mine[0].carrier_name == shipment.carrier
    for ref in clean_day.refs:
        order = centra.orders[int(ref)]
        assert sum(ln.shipped for ln in order.lines) == sum(ln.quantity for ln in order.lines)


def test_a_clean_erp_day_has_no_erp_finding_and_store_sales_are_reconciled(clean_day) -> None:
    """Kills: the ERP datasets disagreeing with what the flows did (a posted order read as missing, an applied
    shipment read as not in Centra, a bundle's component stock as drift), the store sales journal posting other
    amounts than the POS sold, the store sales rule still skipped with an ERP connected."""
    assert clean_day.result.success
    findings = clean_day.findings
    cols = ["finding_type", "sku", "order_ref", "value_at_risk", "detail"]
    assert _erp_findings(findings).empty, _erp_findings(findings)[cols].to_string()
    assert (findings["finding_type"] == "store_sales_mismatch").sum() == 0
    (mat,) = [e.event_specific_data.materialization for e in clean_day.result.get_asset_materialization_events()
              if e.event_specific_data.materialization.asset_key.to_user_string() == "reconciliation_findings"]
    skipped = mat.metadata["rules_skipped"].value
    assert "store_sales" not in str(skipped), skipped
    sales = read_partition(clean_day.stack.engine, "erp_store_sales", clean_day.day)
    assert len(sales) == 2 and set(sales["location_id"]) == {clean_day.store("SE").id, clean_day.store("DE").id}


def test_each_injected_fault_is_found_for_its_order_with_the_right_value(fault_day) -> None:
    """Kills: a blocked order not reported missing (the sync illusion), a finding on another order or with another
    value (Centra's grand total; the dropped shipment's shipped value from the ERP order lines), the unmapped bundle
    not reported as a mapping orphan, a fault found twice or a clean order of the same day reported."""
    findings = _erp_findings(fault_day.findings)
    expect = {"tax_code_unmapped": ("erp_order_missing", "erp_tax_code_unmapped"),
              "currency_mismatch": ("erp_order_missing", "erp_currency_mismatch"),
              "bundle_unmapped": ("erp_order_missing", "erp_bundle_unmapped"),
              "shipment_dropped": ("erp_shipment_not_in_commerce", None)}
    for fault, (finding_type, blocked_by) in expect.items():
        facts = fault_day.faults[fault]
        rows = findings[(findings["finding_type"] == finding_type) & (findings["order_ref"] == facts["order_ref"])]
        assert len(rows) == 1, (fault, findings[["finding_type", "order_ref", "value_at_risk", "detail"]])
        assert rows["value_at_risk"].iloc[0] == pytest.approx(facts["value"], abs=0.01), fault
        if blocked_by:
            assert blocked_by in rows["detail"].iloc[0], rows["detail"].iloc[0]
    sku = fault_day.faults["bundle_unmapped"]["sku"]
    assert (findings[findings["finding_type"] == "erp_mapping_orphan"]["sku"] == sku).sum() == 1
    fault_refs = {f["order_ref"] for f in fault_day.faults.values()}
    others = findings[~findings["order_ref"].isin(fault_refs) & (findings["finding_type"] != "erp_mapping_orphan")]
    assert others.empty, others[["finding_type", "order_ref", "sku", "detail"]].to_string()
