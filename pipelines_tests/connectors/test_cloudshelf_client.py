"""`CloudshelfClient` and `ids` against the Cloudshelf simulator over loopback HTTP.

Oracles: known GlobalId strings (the documented form `gid://external/<Namespace>/<id>`), the values each test
upserts, the simulator's request counters (what reached the server) and its world state (ground truth).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from pipelines.connectors.cloudshelf import CloudshelfClient, CloudshelfGraphQLError, CloudshelfUserError, ids
from pipelines.connectors.errors import AuthError, RateLimited, TransientError
from pipelines.devstack import Stack
from pipelines.simulators.cloudshelf import CloudshelfSimulator

KEY = "s3cret-cloudshelf-key"
PRODUCT = "gid://external/CentraProduct/100"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(name="served")
def fixture_served() -> Iterator[tuple[CloudshelfSimulator, str, Clock]]:
    clock = Clock()
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=0, clock=clock)
    with sim.serve() as srv:
        yield sim, srv.url, clock


def seed(client: CloudshelfClient, skus: list[str], stores: list[str]) -> None:
    client.upsert_locations([{"id": ids.location_gid(s), "displayName": s, "countryCode": "SE"} for s in stores])
    client.upsert_products([{"id": PRODUCT, "displayName": "Shirt"}])
    client.upsert_variants(PRODUCT, [{"id": ids.variant_gid(s), "sku": s, "currentPrice": 100.0 + n,
                                      "originalPrice": 150.0, "availableToPurchase": True, "isInStock": True}
                                     for n, s in enumerate(skus)])


def test_ids_have_the_documented_form_and_round_trip() -> None:
    """Kills: a GlobalId not of the form gid://external/<Namespace>/<id>, namespaces mixed up (a location read as a
    SKU), and SKUs with '/' or spaces that do not come back unchanged."""
    assert ids.variant_gid("SKU-1") == "gid://external/CentraVariant/SKU-1"
    assert ids.product_gid(42) == "gid://external/CentraProduct/42"
    assert ids.location_gid("S01") == "gid://external/Store/S01"
    for sku in ("SKU-1", "A/B 12", "50%"):
        assert ids.sku_of(ids.variant_gid(sku)) == sku
    assert ids.sku_of(ids.location_gid("S01")) is None
    assert ids.location_of(ids.variant_gid("S01")) is None
    assert ids.location_of("gid://external/Store/S07") == "S07"
    assert ids.is_global_id("gid://cloudshelf/Order/5d1c") and not ids.is_global_id("S01")
    assert not ids.is_global_id("gid://external/Store/") and ids.sku_of(None) is None


def test_stock_levels_go_in_chunks_of_max_batch(served: tuple[CloudshelfSimulator, str, Clock]) -> None:
    """Kills: a client that sends everything in one call (or one call per level) and one that loses levels
    between chunks: 7 levels with max_batch 3 are 3 requests and all 7 quantities land."""
    sim, url, _ = served
    skus = [f"SKU-{n}" for n in range(7)]
    with CloudshelfClient(url, KEY, max_batch=3) as client:
        seed(client, skus, ["S01"])
        before = sim.app.state.graphql.requests["ok"]
        assert client.upsert_stock_levels([(ids.location_gid("S01"), ids.variant_gid(s), n)
                                           for n, s in enumerate(skus)]) == 7
        assert sim.app.state.graphql.requests["ok"] - before == 3
    assert [sim.stock_level(ids.location_gid("S01"), s) for s in skus] == list(range(7))


def test_user_errors_raise_naming_the_mutation(served: tuple[CloudshelfSimulator, str, Clock]) -> None:
    """Kills: userErrors swallowed (the caller would think an unknown variant was published)."""
    _, url, _ = served
    with CloudshelfClient(url, KEY) as client:
        seed(client, ["SKU-1"], ["S01"])
        with pytest.raises(CloudshelfUserError) as err:
            client.upsert_stock_levels([(ids.location_gid("S01"), ids.variant_gid("NOPE"), 1)])
    assert err.value.operation == "upsertStockLevels" and err.value.codes == ["ENTITY_NOT_FOUND"]
    assert "NOPE" in str(err.value)


def test_a_refused_query_is_a_graphql_error(served: tuple[CloudshelfSimulator, str, Clock]) -> None:
    """Kills: a schema error reported as a bare HTTP 400 without Cloudshelf's message."""
    _, url, _ = served
    with CloudshelfClient(url, KEY) as client, pytest.raises(CloudshelfGraphQLError) as err:
        client.execute("{ products { edges { node { noSuchField } } } }")
    assert "noSuchField" in str(err.value)


def test_order_and_orders_since(served: tuple[CloudshelfSimulator, str, Clock]) -> None:
    """Kills: an order read without its location, fulfilment method or SKUs; `orders_since` that stops paging too
    early (page size 1), returns orders updated before the bound, or not oldest first; `upsert_orders` not
    moving an order's updatedAt."""
    sim, url, clock = served
    loc = ids.location_gid("S01")
    with CloudshelfClient(url, KEY, page_size=1) as client:
        seed(client, ["SKU-1", "SKU-2"], ["S01"])
        client.upsert_stock_levels([(loc, ids.variant_gid("SKU-1"), 5)])
        made = []
        for n in range(4):
            clock.now += timedelta(minutes=10)
            made.append(sim.kiosk_order(loc, [(ids.variant_gid("SKU-1"), 1), (ids.variant_gid("SKU-2"), 2)],
                                        fulfilment_method="take-home" if n % 2 == 0 else "home-standard",
                                        force=True))
        order = client.order(made[1])
        assert order is not None and order.status == "PAID" and order.store_id == "S01"
        assert order.location_id == loc and order.fulfilment_method == "home-standard" and order.currency == "SEK"
        assert [(ln.sku, ln.quantity, ln.price) for ln in order.lines] == [("SKU-1", 1, 100.0), ("SKU-2", 2, 101.0)]
        assert client.order("gid://cloudshelf/Order/missing") is None
        since = made_at = sim.order(made[2]).updated_at
        clock.now += timedelta(minutes=10)
        [updated] = client.upsert_orders([{"id": made[0], "newThirdPartyId": "C-7"}])
        assert updated["thirdPartyId"] == "C-7"
        got = client.orders_since(since.isoformat())
    assert [o.id for o in got] == [made[2], made[3], made[0]]
    assert all(datetime.fromisoformat(o.updated_at.replace("Z", "+00:00")) >= made_at for o in got)


def test_products_page_through_everything(served: tuple[CloudshelfSimulator, str, Clock]) -> None:
    """Kills: paging that stops at the first page or repeats a product."""
    _, url, _ = served
    with CloudshelfClient(url, KEY, page_size=2) as client:
        client.upsert_products([{"id": ids.product_gid(n), "displayName": f"P{n}"} for n in range(5)])
        client.upsert_variants(ids.product_gid(3), [{"id": ids.variant_gid("X"), "sku": "X", "currentPrice": 9.5}])
        products = client.products()
    assert sorted(p.id for p in products) == sorted(ids.product_gid(n) for n in range(5))
    [p3] = [p for p in products if p.id == ids.product_gid(3)]
    assert [(v.sku, v.current_price, v.available_to_purchase) for v in p3.variants] == [("X", 9.5, False)]


def test_a_wrong_key_is_an_auth_error_not_retried_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """Kills: retrying a 401 (it cannot succeed) and the API key in the client's repr, errors or logs."""
    sim = CloudshelfSimulator(tokens=["right-key"], requests_per_s=0)
    caplog.set_level(logging.DEBUG)
    with sim.serve() as srv, CloudshelfClient(srv.url, KEY) as client:
        with pytest.raises(AuthError) as err:
            client.products()
        assert sim.app.state.graphql.requests["unauthorized"] == 1
        assert KEY not in repr(client) and KEY not in str(err.value)
    assert KEY not in caplog.text


def test_429_waits_retry_after_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    """Kills: a client that gives up on 429 or retries before Retry-After (the second request would be refused
    again): with 1 request/s the second call waits at least the advertised second, then lands."""
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    caplog.set_level(logging.DEBUG)
    with sim.serve() as srv, CloudshelfClient(srv.url, KEY, sleep=sleep) as client:
        client.upsert_products([{"id": PRODUCT, "displayName": "Shirt"}])
        client.upsert_products([{"id": ids.product_gid(2), "displayName": "Trousers"}])
        counts = dict(sim.app.state.graphql.requests)
    assert counts["rate_limited"] >= 1 and counts["ok"] == 2
    assert waits and min(waits) >= 1.0
    assert sorted(sim.state.products) == sorted([PRODUCT, ids.product_gid(2)])
    assert KEY not in caplog.text


def test_429_without_retries_left_carries_retry_after() -> None:
    """Kills: a RateLimited without the server's advice (callers such as the sync's budget need it)."""
    sim = CloudshelfSimulator(tokens=[KEY], requests_per_s=1)
    with sim.serve() as srv, CloudshelfClient(srv.url, KEY, max_attempts=1) as client:
        client.products()
        with pytest.raises(RateLimited) as err:
            client.products()
    assert err.value.retry_after is not None and err.value.retry_after >= 1


def test_5xx_retried_for_queries_not_for_register_webhook(served: tuple[CloudshelfSimulator, str, Clock]) -> None:
    """Kills: a query not retried after a 503, and registerWebhook resent after a failure that may have reached
    Cloudshelf (it would register twice)."""
    sim, url, _ = served
    handler = sim.app.state.graphql
    with CloudshelfClient(url, KEY, backoff_base_s=0.01) as client:
        handler.fail_next = [503]
        assert client.products() == []
        assert handler.requests["forced"] == 1
        handler.fail_next = [503]
        with pytest.raises(TransientError):
            client.register_webhook("OrderPaid", "http://127.0.0.1:9/hook")
        assert handler.requests["forced"] == 2 and sim.state.webhooks == []
        hook = client.register_webhook("OrderPaid", "http://127.0.0.1:9/hook")
    assert hook["subject"] == "OrderPaid" and [w.url for w in sim.state.webhooks] == ["http://127.0.0.1:9/hook"]


def test_deleted_products_take_their_variants_and_stock_along(served: tuple[CloudshelfSimulator, str, Clock]) -> None:
    """Kills: a deleted product whose variants stay findable by SKU or keep showing stock at a location."""
    sim, url, _ = served
    loc = ids.location_gid("S01")
    with CloudshelfClient(url, KEY) as client:
        seed(client, ["SKU-1"], ["S01"])
        client.upsert_stock_levels([(loc, ids.variant_gid("SKU-1"), 4)])
        assert sim.visible(loc, "SKU-1") is True  # for sale, 4 above safety stock 0
        assert client.delete_products([PRODUCT]) == [{"id": PRODUCT}]
        assert client.products() == []
    assert sim.variant("SKU-1") is None and sim.stock_level(loc, "SKU-1") is None
    assert sim.visible(loc, "SKU-1") is False


def test_the_devstack_serves_cloudshelf_and_its_webhooks_reach_the_intake(tmp_path: Path) -> None:
    """Kills: a Stack(kiosks=True) whose environment does not point at its Cloudshelf simulator or carries another
    key, and webhook wiring that does not land a kiosk order's delivery in the intake's inbox."""
    with Stack(tmp_path, sizes=20, stores=2, kiosks=True) as stack:
        env = stack.env()
        store = stack.estate.stores[0].id
        loc, var = ids.location_gid(store), ids.variant_gid("K-1")
        with CloudshelfClient(env["CLOUDSHELF_API_URL"], env["CLOUDSHELF_API_TOKEN"]) as client:
            client.upsert_locations([{"id": loc, "displayName": store, "countryCode": "SE"}])
            client.upsert_products([{"id": PRODUCT, "displayName": "Shirt"}])
            client.upsert_variants(PRODUCT, [{"id": var, "sku": "K-1", "currentPrice": 10.0,
                                              "availableToPurchase": True}])
            client.upsert_stock_levels([(loc, var, 2)])
            client.register_webhook("OrderPaid", f"{env['PIPELINES_FLOW_KIOSK_WEBHOOK_URL']}?key="
                                                 f"{env['CLOUDSHELF_WEBHOOK_KEY']}")
        gid = stack.cloudshelf.kiosk_order(loc, [(var, 1)], email="k@example.com")  # type: ignore[union-attr]
        stack.flush(10)
        with stack.engine.connect() as cx:
            rows = cx.execute(text("SELECT dedup_key FROM inbox_events WHERE source = 'cloudshelf'")).fetchall()
    assert [r[0] for r in rows] == [f"{gid}:PAID"]
