"""Centra's events queue as the only source of Centra's changes (the webhook plugin drops every batch): the
sensor subscribes, lands the events in the inbox, confirms only what was stored and requests an order flows run,
which hands the click-and-collect order to its store. Duplicate publication in the queue changes nothing. Oracle:
the Centra simulator's queue and NewStore's orders."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.defs.flows import centra_events_sensor, order_flow_work
from pipelines.defs.resources import OrderFlowSettings
from pipelines.devstack import Stack
from pipelines.simulators.trading import TradingConfig
from pipelines_tests.traded import Traded


@pytest.fixture(scope="module")
def queued(tmp_path_factory: pytest.TempPathFactory):
    stack = Stack(tmp_path_factory.mktemp("events-queue"), sizes=30, stores=2, seed=5, trading=TradingConfig())
    with stack:
        stack.centra.webhooks.drop_rate = 1.0  # the tenant offers no webhooks: only the events queue
        centra, ns = stack.centra.state, stack.newstore.state
        centra.set_event_faults(duplicate_rate=1.0, seed=1)  # every change published twice
        store = stack.estate.stores[0]
        wid, node = store.centra_warehouse_id, store.newstore_node_id
        sku = next(s for s in stack.estate.skus() if centra.stock_of(wid, s)["fta"] >= 2 and ns.atp(node, s) >= 2)
        traded = Traded(stack)
        resources = dict(traded.resources, order_flow_settings=OrderFlowSettings(centra_events=True, run_window_s=0))
        with dg.instance_for_test() as instance:
            unsubscribed = centra_events_sensor(dg.build_sensor_context(instance=instance, resources=resources))
            number = int(centra.place_order(store.centra_market_id, [(sku, 1)], email="q@example.com",
                                            allocate_from=(wid,), shipping_option="Click & Collect")["number"])
            stack.flush()
            first = centra_events_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                                 cursor=unsubscribed.cursor))
            run = dg.materialize([order_flow_work], resources=resources, instance=instance)
            again = centra_events_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                                 cursor=first.cursor))
            rerun = dg.materialize([order_flow_work], resources=resources, instance=instance)
            last = centra_events_sensor(dg.build_sensor_context(instance=instance, resources=resources,
                                                                cursor=again.cursor))
        yield {"stack": stack, "number": number, "node": node,
               "runs": (unsubscribed, first, run, again, rerun, last)}


def _rows(stack: Stack, sql: str) -> pd.DataFrame:
    with stack.engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql)).mappings().all())


def test_the_queue_alone_drives_the_pickup_to_its_store(queued) -> None:
    stack, number, node = queued["stack"], queued["number"], queued["node"]
    unsubscribed, first, run, again, rerun, _ = queued["runs"]
    assert unsubscribed.cursor == "subscribed" and not unsubscribed.run_requests  # nothing queued before
    assert len(first.run_requests) == 1 and run.success and rerun.success
    keys = _rows(stack, "SELECT dedup_key FROM inbox_events WHERE source = 'centra'")["dedup_key"]
    assert len(keys) and all(k.startswith("event:") for k in keys)  # no webhook landed: the queue alone
    oid = stack.newstore.state.order_id_of(str(number))
    assert oid is not None
    (fr,) = stack.newstore.state.fulfillment_requests(oid)["fulfillment_requests"]
    assert fr["fulfillment_node_id"] == node


def test_stored_events_are_confirmed_and_duplicates_land_once(queued) -> None:
    stack, number = queued["stack"], queued["number"]
    *_, again, _, last = queued["runs"]
    assert stack.centra.state.pending_events("pipelines") == []  # everything fetched was confirmed
    landed = _rows(stack, "SELECT event_name, payload FROM inbox_events WHERE source = 'centra'")
    orders = landed[landed["event_name"].str.startswith("Order.")]
    assert len(orders) >= 1 and all(f'"objectReference":{number}' in p for p in orders["payload"])
    # The run's own write (confirming the order) is a change too: it comes back once, its re-run writes nothing,
    # and then the queue is quiet.
    assert len(again.run_requests) == 1 and not last.run_requests
    work = _rows(stack, "SELECT flow, status FROM order_flow_work WHERE flow = 'pickup_order'")
    assert work["status"].tolist() == ["done"]
    assert len(stack.newstore.state.fulfillment_requests(stack.newstore.state.order_id_of(str(number)))
               ["fulfillment_requests"]) == 1
