"""The order flows with commercetools in Centra's place, for real: the NewStore simulator (devstack, its events
landed by the intake over loopback HTTP) and the commercetools simulator (`CommercetoolsSimulator` served over
loopback), the estate switched to `commerce_platform: commercetools`, the messages pulled by the real
`commercetools_messages_sensor` and `order_flow_work` run in real Dagster materialisations, on SQLite and
PostgreSQL. The oracle is the simulators' own state: the commercetools order's lines, prices, deliveries,
return info, payment transactions, sync info and inventory, and NewStore's orders and fulfilment requests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.connectors.commercetools import CommercetoolsClient
from pipelines.connectors.commercetools.flows import CommercetoolsCommerce
from pipelines.defs.flows import commercetools_messages_sensor, order_flow_work
from pipelines.defs.resources import CommercetoolsResource, EstateResource, OrderFlowSettings
from pipelines.devstack import Stack
from pipelines.domain.flows.ports import ReturnRequest
from pipelines.domain.flows.ship_from_store import SFS
from pipelines.estate.model import load_estate
from pipelines.order_flows import commercetools_messages as ctm
from pipelines.simulators.commercetools import CommercetoolsSimulator
from pipelines.simulators.newstore.endless_aisle import take_endless_aisle_order
from pipelines.simulators.trading import TradingConfig
from pipelines.store import make_engine, migrate
from pipelines_tests.traded import Traded

CLIENT_ID, SECRET = "pipelines", "pipelines-secret"
CARRIER, TRACKING = "PostNord", "PN-CT-0001"
ADDRESS = {"firstName": "Ada", "lastName": "Lund", "streetName": "Drottninggatan", "streetNumber": "1",
           "postalCode": "11151", "city": "Stockholm", "country": "SE", "email": "ada@example.com"}


def _switch_to_commercetools(stack: Stack) -> None:
    data = json.loads(Path(stack.estate_file).read_text(encoding="utf-8"))
    data["commerce_platform"] = "commercetools"
    Path(stack.estate_file).write_text(json.dumps(data), encoding="utf-8")


def _client(url: str, project: str) -> CommercetoolsClient:
    return CommercetoolsClient(url, url, project, CLIENT_ID, SECRET)


def _ref(ct, order_id: str) -> str:  # noqa: ANN001
    """The order's reference in NewStore and in work keys: its commercetools `orderNumber` (`CommerceOrder.ref`)."""
    return _read(ct, order_id)["orderNumber"]


def _ns_copy(stack: Stack, ct, order_id: str, location_id: str) -> dict | None:  # noqa: ANN001
    ns = stack.newstore.state
    ext = f"{_ref(ct, order_id)}{SFS}{location_id}"
    return ns.get_order(ext, "external") if ns.order_id_of(ext) else None


def _fr(stack: Stack, ct, order_id: str, location_id: str) -> dict:  # noqa: ANN001
    ns = stack.newstore.state
    (fr,) = ns.fulfillment_requests(ns.order_id_of(f"{_ref(ct, order_id)}{SFS}{location_id}"))[
        "fulfillment_requests"]
    return fr


def _unit_cents(order: dict, sku: str) -> int:
    li = next(li for li in order["lineItems"] if li["variant"]["sku"] == sku)
    return li["totalPrice"]["centAmount"] // li["quantity"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp(f"ct-flows-{request.param}")
    url = None
    if request.param == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"flows_ct_{id(home)}")
    stack = Stack(home, sizes=30, stores=4, seed=5, database_url=url, trading=TradingConfig())
    _switch_to_commercetools(stack)
    sim = CommercetoolsSimulator(load_estate(stack.estate_file))
    ct = sim.state
    with stack, sim.serve() as srv:
        traded = Traded(stack)
        resources = {**traded.resources,
                     "commercetools": CommercetoolsResource(api_url=srv.url, client_id=CLIENT_ID, client_secret=SECRET),
                     "order_flow_settings": OrderFlowSettings(run_window_s=0, retry_base_s=0)}
        ns = stack.newstore.state
        se1, se2, se3 = [s for s in stack.estate.stores if s.country == "SE"][:3]
        n1, n2, n3 = se1.newstore_node_id, se2.newstore_node_id, se3.newstore_node_id
        skus = list(stack.estate.skus())

        def pick(want) -> str:  # noqa: ANN001
            for sku in skus:
                if want(sku):
                    skus.remove(sku)
                    return sku
            raise AssertionError("the estate has no SKU with that stock")

        # -- in-store returns of commercetools orders (web orders supplied by the DC, shipped) ------------------
        a = pick(lambda s: ct.stock("DC01", s)[1] >= 4)
        b = pick(lambda s: ct.stock("DC01", s)[1] >= 2)
        partial = ct.place_order("web-se", [(a, 2), (b, 1)], email="ada@example.com", shipping_address=ADDRESS)
        crashed = ct.place_order("web-se", [(a, 1)], email="ada@example.com", shipping_address=ADDRESS)
        for o in (partial, crashed):
            ct.ship_order(o["id"])
        partial, crashed = _read(ct, partial["id"]), _read(ct, crashed["id"])
        price = {a: _unit_cents(partial, a), b: _unit_cents(partial, b)}
        stock_before = {s: ct.stock(se1.id, s) for s in (a, b)}
        rets = {
            "partial": ns.record_return(n1, [{"sku": a, "quantity": 1, "refund_amount": price[a] / 100},
                                             {"sku": b, "quantity": 1, "refund_amount": price[b] / 100,
                                              "item_condition": "damaged"}],
                                        original_external_order_ref=partial["id"], currency="SEK"),
            "crashed": ns.record_return(n1, [{"sku": a, "quantity": 1, "refund_amount": price[a] / 100}],
                                        original_external_order_ref=crashed["id"], currency="SEK"),
        }
        # A crash between commercetools' success and our commit: the return info of "crashed" is written already.
        with _client(srv.url, sim.project_key) as client:
            adapter = CommercetoolsCommerce(client, load_estate(stack.estate_file))
            order = adapter.order(crashed["id"])
            (shipment,) = order.shipments
            adapter.create_return(ReturnRequest(order_ref=order.ref, shipment_id=shipment.shipment_id,
                                                lines=((shipment.lines[0].shipment_line_id, 1),),
                                                external_id=rets["crashed"]["id"], comment="written before a crash"))

        # -- ship-from-store: web orders whose line is supplied by a store's channel ------------------------------
        def store_stock(sku: str) -> dict[str, int]:
            return {n: ns.atp(n, sku) for n in (n1, n2, n3)}
        sfs = {
            "happy": pick(lambda s: store_stock(s)[n1] >= 1 and ct.stock(se1.id, s)[1] >= 1),
            "race": pick(lambda s: store_stock(s)[n1] >= 1 and store_stock(s)[n2] >= 1 and ct.stock(se1.id, s)[1] >= 1),
            "dc": pick(lambda s: store_stock(s)[n1] >= 1 and store_stock(s)[n2] == 0 and store_stock(s)[n3] == 0
                       and ct.stock(se1.id, s)[1] >= 1 and ct.stock("DC01", s)[1] >= 1),
        }
        orders = {k: ct.place_order("web-se", [(sku, 1)], email="ada@example.com", shipping_address=ADDRESS,
                                    supply_channel_key=se1.id)["id"] for k, sku in sfs.items()}
        # The race: the store sells its last units a second before the flow runs (a sale in NewStore).
        for k in ("race", "dc"):
            units = ns.atp(n1, sfs[k])
            ns.record_store_sale(n1, [{"sku": sfs[k], "quantity": units,
                                       "unit_price": _unit_cents(_read(ct, orders[k]), sfs[k]) / 100}],
                                 at=datetime.now(UTC) - timedelta(seconds=1))
        dc_before = ct.stock("DC01", sfs["dc"])
        atp_before = {k: ns.atp(n1, sku) for k, sku in sfs.items()}
        # -- click-and-collect: an order with the pickup shipping method, supplied by the store's channel (the web
        # shop's order, sent by `POST /orders/import`: the simulator's checkout has no shipping methods) ------------
        pickup_sku = pick(lambda s: ct.stock(se1.id, s)[1] >= 2 and ns.atp(n1, s) >= 2)
        pickup_cents = _list_cents(ct, pickup_sku, "SEK", "SE")
        with _client(srv.url, sim.project_key) as client:
            pickup = client.import_order({
                "orderNumber": "WEB-PICKUP-1", "customerEmail": "ada@example.com", "country": "SE",
                "store": {"typeId": "store", "key": "web-se"}, "orderState": "Open", "paymentState": "Paid",
                "totalPrice": {"currencyCode": "SEK", "centAmount": 2 * pickup_cents},
                "shippingAddress": ADDRESS,
                "lineItems": [{"name": {"en": pickup_sku}, "variant": {"sku": pickup_sku}, "quantity": 2,
                               "price": {"value": {"currencyCode": "SEK", "centAmount": pickup_cents}},
                               "supplyChannel": {"typeId": "channel", "key": se1.id},
                               "taxRate": {"name": "SE", "amount": 0.25, "includedInPrice": True, "country": "SE"}}],
                "shippingInfo": {"shippingMethodName": "Click & Collect",
                                 "price": {"currencyCode": "SEK", "centAmount": 0},
                                 "shippingRate": {"price": {"currencyCode": "SEK", "centAmount": 0}}}})["id"]
        # -- endless aisle: a store order for home delivery -> an imported commercetools order ---------------------
        aisle_sku = pick(lambda s: ct.stock("DC01", s)[1] >= 2)
        aisle_list = _list_cents(ct, aisle_sku, "SEK", "SE")
        aisle = take_endless_aisle_order(ns, n1, [{"sku": aisle_sku, "quantity": 2, "unit_price": aisle_list / 100}],
                                         service_level="STANDARD", customer_email="ada@example.com",
                                         shipping_address={"first_name": "Ada", "last_name": "Lund",
                                                           "address_line_1": "Storgatan 1", "city": "Stockholm",
                                                           "zip_code": "11122", "country": "SE"})
        stack.flush()
        # Other writers touch orders and payments between our reads and writes (409 ConcurrentModification).
        ct.concurrent_writer(0.3, ("orders", "payments"))
        with dg.instance_for_test() as instance:
            ctx = dg.build_sensor_context(instance=instance, resources=resources)
            pulled = commercetools_messages_sensor(ctx)
            runs = [dg.materialize([order_flow_work], resources=resources, instance=instance, raise_on_error=False)]
            ns_state = {k: _ns_copy(stack, ct, orders[k], se1.id) for k in orders}
            fr = _fr(stack, ct, orders["happy"], se1.id)
            ns.set_items_states(fr["fulfillment_request_id"], {
                "line_items": [{"item_id": i["item_id"], "state": "shipped"} for i in fr["items"]],
                "carrier": CARRIER, "tracking_code": TRACKING})
            pickup_ns = ns.get_order(_ref(ct, pickup), "external")
            (pfr,) = ns.fulfillment_requests(pickup_ns["id"])["fulfillment_requests"]
            ns.set_items_states(pfr["fulfillment_request_id"], {"line_items": [
                {"item_id": i["item_id"], "state": "shipped"} for i in pfr["items"]]})
            atp_after = {k: ns.atp(n1, sku) for k, sku in sfs.items()}
            stack.flush()
            runs.append(dg.materialize([order_flow_work], resources=resources, instance=instance,
                                       raise_on_error=False))
            ct.concurrent_writer(0)
            conflicts = sum(1 for r in ct.request_log if r["status"] == 409)
            writes = ct.updates.copy()
            # Redelivery: NewStore sends every event again, the messages are pulled again, every item re-runs.
            for d in list(stack.newstore.emitter.deliveries()):
                httpx.post(f"{stack.intake.url}/newstore/events", json=d.event, headers={
                    "Authorization": f"Bearer {stack.secrets['NEWSTORE_EVENTSTREAM_API_KEY']}"})
            commercetools_messages_sensor(dg.build_sensor_context(instance=instance, resources=resources))
            with stack.engine.begin() as conn:
                conn.execute(text("UPDATE order_flow_work SET status = 'pending'"))
            runs.append(dg.materialize([order_flow_work], resources=resources, instance=instance,
                                       raise_on_error=False))
        yield {"stack": stack, "ct": ct, "runs": runs, "pulled": pulled, "rets": rets, "price": price,
               "skus": (a, b), "orders": {"partial": partial["id"], "crashed": crashed["id"], **orders},
               "sfs": sfs, "stores": (se1, se2, se3), "stock_before": stock_before, "ns_first": ns_state,
               "aisle": aisle, "pickup": pickup, "pickup_fr": pfr, "atp_before": atp_before, "atp_after": atp_after, "aisle_sku": aisle_sku, "aisle_list": aisle_list, "writes": writes, "conflicts": conflicts, "writes_after": ct.updates.copy(), "dc_before": dc_before}


def _read(ct, order_id: str) -> dict:  # noqa: ANN001
    return ct._find("orders", order_id)  # noqa: SLF001 (ground truth, no HTTP)


def _list_cents(ct, sku: str, currency: str, country: str) -> int:  # noqa: ANN001
    """The price list's price: the variant's Price on the web price channel (the simulator's catalog)."""
    _, variant = ct._variant(sku)  # noqa: SLF001
    web = ct.channel_id("web")
    (price,) = [p for p in variant["prices"] if p["value"]["currencyCode"] == currency and p.get("country") == country
                and (p.get("channel") or {}).get("id") == web]
    return price["value"]["centAmount"]


def _rows(stack: Stack, sql: str) -> pd.DataFrame:
    with stack.engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql)).mappings().all())


def _refunds(ct, order: dict) -> list[dict]:  # noqa: ANN001
    (pay,) = order["paymentInfo"]["payments"]
    return [t for t in ct._find("payments", pay["id"])["transactions"] if t["type"] == "Refund"]  # noqa: SLF001


def test_every_run_succeeds_and_the_sensor_requested_the_first(world) -> None:
    assert all(r.success for r in world["runs"])
    assert isinstance(world["pulled"], dg.SensorResult) and len(world["pulled"].run_requests) == 1


def test_an_in_store_return_becomes_return_info_and_a_refund_on_the_payment(world) -> None:
    """Kills: returning the wrong line or quantity, a refund at another price than the order's own lines, a
    refund not on the order's payment, a return left unrefunded, keying the return on anything but the store's
    return id."""
    ct, rets, price = world["ct"], world["rets"], world["price"]
    a, b = world["skus"]
    order = _read(ct, world["orders"]["partial"])
    (info,) = order["returnInfo"]
    assert info["returnTrackingId"] == rets["partial"]["id"]
    sku_of = {li["id"]: li["variant"]["sku"] for li in order["lineItems"]}
    assert sorted((sku_of[i["lineItemId"]], i["quantity"]) for i in info["items"]) == sorted([(a, 1), (b, 1)])
    assert {i["paymentState"] for i in info["items"]} == {"Refunded"}
    assert {i["shipmentState"] for i in info["items"]} == {"Returned"}
    (refund,) = _refunds(ct, order)
    assert refund["amount"]["centAmount"] == price[a] + price[b] and refund["state"] == "Success"
    assert refund["interactionId"] == rets["partial"]["id"]


def test_the_flow_restocks_nothing_in_commercetools(world) -> None:
    """NewStore restocks the sellable unit and the stock sync carries it over. Kills: an `addQuantity` by the flow
    (the unit would count twice)."""
    a, b = world["skus"]
    se1 = world["stores"][0]
    assert {s: world["ct"].stock(se1.id, s) for s in (a, b)} == world["stock_before"]


def test_a_crash_after_the_return_info_was_written_finishes_without_a_second_return(world) -> None:
    """Kills: a second `addReturnInfo` for a return written before a crash, a refund left out after it."""
    ct, price = world["ct"], world["price"]
    a, _ = world["skus"]
    order = _read(ct, world["orders"]["crashed"])
    (info,) = order["returnInfo"]
    assert [i["paymentState"] for i in info["items"]] == ["Refunded"]
    (refund,) = _refunds(ct, order)
    assert refund["amount"]["centAmount"] == price[a]


def test_ship_from_store_injects_into_the_store_and_ships_with_tracking(world) -> None:
    """Kills: not pinning the store's node, losing the tracking, leaving the commercetools order unshipped."""
    ct, stack = world["ct"], world["stack"]
    se1 = world["stores"][0]
    oid = world["orders"]["happy"]
    fr = _fr(stack, ct, oid, se1.id)
    assert fr["fulfillment_node_id"] == se1.newstore_node_id
    # the online sale took the unit out of NewStore's pool at the store (shared inventory)
    assert world["atp_after"]["happy"] == world["atp_before"]["happy"] - 1
    order = _read(ct, oid)
    assert order["shipmentState"] == "Shipped"
    (delivery,) = order["shippingInfo"]["deliveries"]
    assert [(i["id"], i["quantity"]) for i in delivery["items"]] == [(order["lineItems"][0]["id"], 1)]
    assert delivery["parcels"][0]["trackingData"] == {"trackingId": TRACKING, "carrier": CARRIER}


def test_a_failed_stock_check_reroutes_to_the_next_store_and_records_it_on_the_order(world) -> None:
    """Kills: trusting commercetools' supply channel instead of NewStore's live ATP, injecting where the stock is
    gone, not recording the re-route on the commercetools order, skipping the exception record."""
    ct, stack = world["ct"], world["stack"]
    se1, se2, _ = world["stores"]
    oid = world["orders"]["race"]
    assert world["ns_first"]["race"] is None and _ns_copy(stack, ct, oid, se1.id) is None
    copy = _ns_copy(stack, ct, oid, se2.id)
    assert copy is not None and _fr(stack, ct, oid, se2.id)["fulfillment_node_id"] == se2.newstore_node_id
    order = _read(ct, oid)
    assert [s["channel"]["id"] for s in order["syncInfo"]] == [ct.channel_id(se2.id)]
    exc = _rows(stack, "SELECT owner_team, payload FROM exceptions "
                       f"WHERE exception_key LIKE 'ship_from_store_rerouted:ship_from_store:{_ref(ct, oid)}:%'")
    assert list(exc["owner_team"]) == ["retail_operations"]
    assert f'"to": "{se2.id}"' in exc["payload"].iloc[0] and '"stock_check_failed"' in exc["payload"].iloc[0]


def test_no_store_with_stock_falls_back_to_the_dc_in_commercetools_only(world) -> None:
    """Kills: sending a DC order to NewStore, a fallback that skips the DC's commercetools availability."""
    ct, stack = world["ct"], world["stack"]
    stores = world["stores"]
    oid = world["orders"]["dc"]
    assert all(_ns_copy(stack, ct, oid, s.id) is None for s in stores)
    assert [s["channel"]["id"] for s in _read(ct, oid)["syncInfo"]] == [ct.channel_id("DC01")]


def test_redelivery_and_reruns_write_nothing_twice(world) -> None:
    """Kills: a second return info, refund, delivery, re-route or injection on a re-run, and a resend after a 409
    that does not re-check (the other writer made some of our updates conflict)."""
    assert world["conflicts"] > 0
    assert world["writes_after"] == world["writes"]
    ct = world["ct"]
    assert len(_refunds(ct, _read(ct, world["orders"]["partial"]))) == 1
    assert len(_read(ct, world["orders"]["happy"])["shippingInfo"]["deliveries"]) == 1


def test_messages_land_once_under_late_publication_and_redelivery(tmp_path: Path, world) -> None:
    """Messages published late (out of createdAt order) are still landed through the lookback window; pulling
    again lands nothing twice. Oracle: the simulator's message log. Kills: a cursor without lookback (late
    messages lost), no dedup by message id (duplicates), a cursor moved past messages not stored."""
    clock = [datetime(2026, 12, 1, 12, 0, tzinfo=UTC)]
    sim = CommercetoolsSimulator(load_estate(world["stack"].estate_file), clock=lambda: clock[0],
                                 publication_lag_s=120, seed=3)
    engine = make_engine(f"sqlite:///{tmp_path / 'msgs.sqlite'}")
    migrate(engine)
    sku = next(s for s in world["stack"].estate.skus() if sim.state.stock("DC01", s)[1] >= 12)
    with sim.serve() as srv, _client(srv.url, sim.project_key) as client:
        pulls = []
        for _ in range(6):
            for _ in range(2):
                sim.state.place_order("web-se", [(sku, 1)], email="ada@example.com")
                clock[0] += timedelta(seconds=7)
            pulls.append(ctm.pull(engine, client, limit=3))
        clock[0] += timedelta(seconds=200)  # everything is published now
        pulls.append(ctm.pull(engine, client, limit=3))
        again = ctm.pull(engine, client, limit=3)
    truth = {m["id"] for m in sim.state.all_messages() if m["type"] in ctm.MESSAGE_TYPES}
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT dedup_key, event_name FROM inbox_events WHERE source = 'commercetools'")).all()
    assert sorted(k for k, _ in rows) == sorted(f"message:{i}" for i in truth)
    assert {n for _, n in rows} == {"OrderCreated"} and len(truth) == 12
    assert again.landed == 0 and again.fetched > 0
    assert any(p.landed < 2 for p in pulls[:-1])  # some were published late (the scenario is what it claims)


def test_endless_aisle_imports_the_store_order_with_the_stores_terms(world) -> None:
    """Kills: an order without the store's commercetools Store / country / currency, a price other than the price
    list's, a lost guest e-mail, an unmapped shipping method, an order without the store's payment, a second
    import on a re-run (orderNumber = the NewStore order id)."""
    ct, aisle = world["ct"], world["aisle"]
    (order,) = [o for o in ct.docs["orders"].values() if o.get("orderNumber") == aisle["id"]]
    assert order["store"]["key"] == "web-se" and order["country"] == "SE"
    assert order["customerEmail"] == "ada@example.com" and order["paymentState"] == "Paid"
    assert order["shippingInfo"]["shippingMethod"]["key"] == "standard"
    (li,) = order["lineItems"]
    assert (li["variant"]["sku"], li["quantity"]) == (world["aisle_sku"], 2)
    assert li["price"]["value"] == {"type": "centPrecision", "currencyCode": "SEK",
                                    "centAmount": world["aisle_list"], "fractionDigits": 2}
    (pay,) = order["paymentInfo"]["payments"]
    (charge,) = ct._find("payments", pay["id"])["transactions"]  # noqa: SLF001
    assert charge["type"] == "Charge" and charge["amount"]["centAmount"] == 2 * world["aisle_list"]
    assert _rows(world["stack"], "SELECT * FROM exceptions WHERE exception_type = 'price_off_pricelist'").empty


def test_click_and_collect_goes_to_the_store_and_the_handover_ships_it(world) -> None:
    """Kills: not recognising the pickup shipping method on a commercetools order, injecting at another node than
    the store whose channel supplies it, a handover that does not ship the collected units in commercetools."""
    ct = world["ct"]
    se1 = world["stores"][0]
    assert world["pickup_fr"]["fulfillment_node_id"] == se1.newstore_node_id
    assert world["pickup_fr"]["service_level"] == "IN_STORE_PICKUP"
    order = _read(ct, world["pickup"])
    assert order["orderState"] == "Confirmed" and order["shipmentState"] == "Shipped"
    (delivery,) = order["shippingInfo"]["deliveries"]
    assert [(i["id"], i["quantity"]) for i in delivery["items"]] == [(order["lineItems"][0]["id"], 2)]


def test_the_messages_sensor_stays_off_for_a_centra_estate(tmp_path: Path, world) -> None:
    """Kills: pulling commercetools (and failing on its missing credentials) for a retailer on Centra."""
    data = json.loads(Path(world["stack"].estate_file).read_text(encoding="utf-8"))
    data["commerce_platform"] = "centra"
    path = tmp_path / "estate.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    resources = {**Traded(world["stack"]).resources, "estate": EstateResource(path=str(path))}
    with dg.instance_for_test() as instance:
        result = commercetools_messages_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, dg.SkipReason)
