"""The ERP in the simulated world (pipelines/simulators/erp_world.py): the estate's `erp` section, the Business
Central company seeded from it (read back over loopback HTTP with the typed client), the warehouse user shipping
orders, and the web shop's orders confirmed for the ERP.

Oracles: the generated estate dict itself (its DC initial stock, markets and currencies, read before any seeding code
runs), hand-written known answers (SEK is the DC's currency, so the local one, code ""), and the simulator's own
records of what was posted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.connectors.businesscentral import BusinessCentralClient
from pipelines.estate.model import estate_from_dict
from pipelines.simulators.businesscentral import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    BusinessCentralSimulator,
    BusinessCentralState,
)
from pipelines.simulators.centra import CentraState
from pipelines.simulators.erp_world import (
    ErpCentraTrading,
    ErpUser,
    ErpUserConfig,
    place_order_taxed,
    seed_company,
    set_customer_currency,
    unmap_bundle,
)
from pipelines.simulators.estate_gen import generate_estate, write_estate
from pipelines_tests.businesscentral_support import ENV, TENANT

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def estate_data():
    # 6 stores: Stockholm, Gothenburg, Malmo, Copenhagen, Oslo, Berlin -> markets SE, DK, NO, DE
    return generate_estate(sizes=40, stores=6, seed=5, erp=True, erp_bundles=2)


@pytest.fixture()
def world(estate_data):
    estate = estate_from_dict(estate_data)
    state = BusinessCentralState(clock=lambda: T0)
    seeded = seed_company(state, estate)
    with BusinessCentralSimulator(state, tenant=TENANT, environment=ENV) as sim, BusinessCentralClient(
            sim.url, TENANT, ENV, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, company_id=seeded.company_id) as client:
        yield estate, state, seeded, client


def test_estate_without_erp_is_unchanged_and_with_it_maps_every_rate_market_and_bundle(estate_data) -> None:
    """Kills: the erp option changing the estate of everyone else (catalogue, stock draws), a market without an ERP
    customer, a traded tax rate without a tax code (every order of that country would block), a bundle mapped to a
    SKU that is not in the catalogue or to another bundle."""
    plain = generate_estate(sizes=40, stores=6, seed=5)
    assert "erp" not in plain
    stripped = {k: v for k, v in estate_data.items() if k != "erp"}
    stripped["catalog"] = [p for p in estate_data["catalog"] if not p.get("bundle")]
    stripped["initial_stock"] = {node: {s: q for s, q in stock.items() if not s.startswith("GIFT")}
                                 for node, stock in estate_data["initial_stock"].items()}
    assert stripped == plain
    erp = estate_data["erp"]
    assert sorted(erp["customers"].values()) == ["WEB-DE", "WEB-DK", "WEB-NO", "WEB-SE"]
    assert erp["currencies"] == {"DKK": "DKK", "EUR": "EUR", "NOK": "NOK", "SEK": ""}
    assert erp["tax_codes"] == {"19": "VAT19", "25": "VAT25"}  # DE 19 %, SE/DK/NO 25 %
    estate = estate_from_dict(estate_data)
    assert estate.erp is not None and estate.erp.bundle_skus == frozenset(erp["bundles"]) and len(erp["bundles"]) == 2
    plain_skus = {s["sku"] for p in plain["catalog"] for v in p["variants"] for s in v["sizes"]}
    for components in erp["bundles"].values():
        assert 2 <= len(components) <= 3 and {c["sku"] for c in components} <= plain_skus
    for sku in erp["bundles"]:
        assert all(stock[sku] == 0 for node, stock in estate_data["initial_stock"].items() if node != "DC01")
        assert estate_data["initial_stock"]["DC01"][sku] > 0
    stores = [loc["id"] for loc in estate_data["locations"] if loc["kind"] == "store"]
    assert sorted(erp["sales_journal"]["balancing_accounts"]) == sorted(stores)
    assert len(set(erp["sales_journal"]["balancing_accounts"].values())) == len(stores)


def test_seeded_company_holds_the_dc_stock_per_sku_no_bundle_and_a_customer_per_market(world, estate_data) -> None:
    """Kills: an item missing or numbered off its SKU, inventory not the DC's initial stock (the ERP stock resync would
    rewrite Centra's DC on the first run), a bundle seeded as an item (it must not be stocked in the ERP), a customer
    in the wrong currency (every web order of its market would be a currency mismatch), an account the shipping line
    or the store sales journal posts to missing (the ERP would refuse every such posting)."""
    _estate, _state, seeded, client = world
    items = {i["number"]: i for i in client.items()}
    bundles = set(estate_data["erp"]["bundles"])
    skus = {s["sku"] for p in estate_data["catalog"] for v in p["variants"] for s in v["sizes"]}
    assert set(items) == skus - bundles
    dc = estate_data["initial_stock"]["DC01"]
    assert {n: i["inventory"] for n, i in items.items()} == {n: float(dc[n]) for n in items}
    customers = {c["number"]: c["currencyCode"] for c in client.customers()}
    assert customers == {"WEB-SE": "", "WEB-DK": "DKK", "WEB-NO": "NOK", "WEB-DE": "EUR"}
    markets = {m["id"]: m["countries"][0] for m in estate_data["centra"]["markets"]}
    assert {markets[m]: n for m, n in seeded.customers.items()} == {
        "SE": "WEB-SE", "DK": "WEB-DK", "NO": "WEB-NO", "DE": "WEB-DE"}
    journal = estate_data["erp"]["sales_journal"]
    wanted = {estate_data["erp"]["shipping_account"], journal["revenue_account"], journal["discount_account"],
              journal["vat_account"], journal["default_balancing_account"], *journal["balancing_accounts"].values()}
    assert {a["number"] for a in client.accounts()} == wanted  # every account the product posts to exists


def test_an_order_taxed_with_a_mapped_code_is_accepted_at_that_rate(world) -> None:
    """Kills: the estate's tax codes unknown to the simulated ERP (every order refused) or taxed at another rate."""
    _estate, _state, seeded, client = world
    sku = next(iter(seeded.items))
    order = client.create_sales_order({"customerNumber": "WEB-DE", "currencyCode": "EUR",
                                       "externalDocumentNumber": "9001"},
                                      [{"lineType": "Item", "lineObjectNumber": sku, "quantity": 1,
                                        "unitPrice": 100.0, "taxCode": "VAT19"}])
    (line,) = order["salesOrderLines"]
    assert (line["taxCode"], line["taxPercent"]) == ("VAT19", 19.0)


def _order(client: BusinessCentralClient, ref: str, lines: list[tuple[str, int]]) -> dict:
    return client.create_sales_order(
        {"customerNumber": "WEB-SE", "externalDocumentNumber": ref},
        [{"lineType": "Item", "lineObjectNumber": sku, "quantity": qty, "unitPrice": 100.0, "taxCode": "VAT25"}
         for sku, qty in lines])


def test_the_warehouse_ships_each_order_once_after_its_delay_with_tracking(world) -> None:
    """Kills: an order shipped before its delay or never, shipped twice (units beyond the order), a shipment without
    tracking or carrier, orders the world does not ship (a store's) shipped by the DC."""
    _estate, state, seeded, client = world
    skus = list(seeded.items)
    a = _order(client, "1001", [(skus[0], 1)])
    b = _order(client, "1002", [(skus[1], 2), (skus[2], 1)])
    _order(client, "STORE-1", [(skus[3], 1)])
    user = ErpUser(state, seeded.company_id, ErpUserConfig(ship_after_s=(10, 10), partial_share=0.0),
                   ships=lambda ref: not ref.startswith("STORE"))
    assert user.step(T0) == []  # seen, not due
    assert user.step(T0 + timedelta(seconds=9)) == []
    posted = user.step(T0 + timedelta(seconds=10))
    assert sorted(s.external_ref for s in posted) == ["1001", "1002"]
    for _ in range(3):
        assert user.step(T0 + timedelta(seconds=60)) == []  # nothing left to ship for these
    shipments = list(client.sales_shipments())
    assert sorted(s["externalDocumentNumber"] for s in shipments) == ["1001", "1002"]
    for s in shipments:
        assert s["packageTrackingNumber"] and s["shippingAgentCode"] in ("DHL", "POSTNORD", "UPS")
    tracking = {s.tracking_number for s in posted}
    assert tracking == {s["packageTrackingNumber"] for s in shipments} and len(tracking) == 2
    for order, units in ((a, 1), (b, 3)):
        lines = client.sales_order(order["id"])["salesOrderLines"]
        assert sum(ln["shippedQuantity"] for ln in lines) == units == sum(ln["quantity"] for ln in lines)
    assert user.pending() == 0


def test_a_partial_shipment_ships_part_first_and_the_rest_later(world) -> None:
    """Kills: the two parts overlapping (a unit shipped twice) or leaving a unit unshipped, the second part posted
    with the first, both parts carrying the same tracking number."""
    _estate, state, seeded, client = world
    skus = list(seeded.items)
    order = _order(client, "2001", [(skus[0], 2), (skus[1], 1)])
    user = ErpUser(state, seeded.company_id, ErpUserConfig(ship_after_s=(1, 1), partial_share=1.0,
                                                           second_after_s=(5, 5)))
    user.step(T0)
    (first,) = user.step(T0 + timedelta(seconds=1))
    assert sum(first.quantities.values()) == 1 and first.part == 1
    assert not client.sales_order(order["id"])["fullyShipped"]
    assert user.step(T0 + timedelta(seconds=5)) == []
    (second,) = user.step(T0 + timedelta(seconds=6))
    assert second.part == 2 and sum(second.quantities.values()) == 2
    assert second.tracking_number != first.tracking_number
    shipped: dict[int, float] = {}
    for part in (first, second):
        for seq, qty in part.quantities.items():
            shipped[seq] = shipped.get(seq, 0) + qty
    lines = client.sales_order(order["id"])["salesOrderLines"]
    assert shipped == {ln["sequence"]: ln["quantity"] for ln in lines}
    assert client.sales_order(order["id"])["fullyShipped"]


def test_customer_currency_fault_is_visible_through_the_api(world) -> None:
    """Kills: the currency-mismatch fault changing nothing an integration can read."""
    _estate, state, seeded, client = world
    set_customer_currency(state, seeded.company_id, "WEB-DK", "EUR")
    assert {c["number"]: c["currencyCode"] for c in client.customers()}["WEB-DK"] == "EUR"


def test_web_orders_are_confirmed_and_left_to_the_erp_click_and_collect_is_not(estate_data, tmp_path) -> None:
    """Kills: web orders left PENDING (never verified for the ERP), the world shipping a web order in Centra itself
    (the ERP's shipment would then find it shipped), a click-and-collect order treated as the DC's."""
    estate = estate_from_dict(estate_data)
    centra = CentraState(estate)
    trading = ErpCentraTrading(centra, estate)
    market = estate.centra.markets[0]
    sku = next(s for s in estate.skus() if centra.stock_of(1, s)["fta"] > 0 and not s.startswith("GIFT"))
    web = trading.place_order(market, [(sku, 1)], "a@example.com", T0, None)
    assert centra.orders[web].status == "CONFIRMED" and trading.is_web_order(str(web))
    trading.ship(web, T0)
    assert not centra.orders[web].shipment_ids
    store = estate.stores[0]
    stocked = next(s for s in estate.skus() if centra.stock_of(store.centra_warehouse_id, s)["fta"] > 0)
    cc = trading.place_order(estate.markets[store.centra_market_id], [(stocked, 1)], "b@example.com", T0,
                             (store.centra_warehouse_id,), shipping_option="Click & Collect")
    assert centra.orders[cc].status == "PENDING" and not trading.is_web_order(str(cc))
    odd = place_order_taxed(centra, market.id, [(sku, 1)], 6.0, email="c@example.com")
    assert [ln.tax_percent for ln in centra.orders[odd].lines] == [6.0] and centra.orders[odd].status == "CONFIRMED"
    path = write_estate(tmp_path / "estate.json", sizes=40, stores=6, seed=5, erp=True, erp_bundles=2)
    gone = unmap_bundle(path)
    reread = estate_from_dict(json.loads(path.read_text()))
    assert reread.erp is not None and gone not in reread.erp.bundles and reread.erp.is_bundle(gone)


def test_the_devstack_erp_flag_serves_a_seeded_company_the_product_reaches_from_its_environment(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills: `--erp` not parsed or not passed on, the BUSINESSCENTRAL_* variables the Dagster processes get not
    what the product's settings read (the ERP silently off), the estate written without its `erp` section, the
    warehouse user not wired to the world's web orders."""
    from pipelines import devstack, settings
    from pipelines.defs.resources import BusinessCentralResource

    args = devstack._parser().parse_args(["--erp"])
    assert args.erp and args.bc_port == 8085
    with devstack.Stack(tmp_path / "stack", sizes=30, stores=2, seed=3, erp=True) as stack:
        for key, value in stack.env().items():
            monkeypatch.setenv(key, value)
        assert settings.businesscentral_credentials_set()
        resource = BusinessCentralResource(**settings.businesscentral(),
                                           client_id=stack.env()["BUSINESSCENTRAL_CLIENT_ID"],
                                           client_secret=stack.env()["BUSINESSCENTRAL_CLIENT_SECRET"])
        assert resource.enabled
        with resource.client() as client:
            assert {c["number"] for c in client.customers()} == {"WEB-SE"}
            assert len(list(client.items())) == 30  # every catalogue SKU but the bundles
        assert json.loads(stack.estate_file.read_text())["erp"]["customers"] == {"1": "WEB-SE"}
        web = stack.trader.commerce.place_order(stack.estate.centra.markets[0], [(stack.estate.skus()[0], 1)],
                                                "x@example.com", T0, None)
        assert stack.erp_user is not None and stack.erp_user.ships is not None
        assert stack.erp_user.ships(str(web)) and not stack.erp_user.ships("not-ours")
