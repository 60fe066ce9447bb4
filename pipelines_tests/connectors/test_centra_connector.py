"""CentraClient against the simulator over loopback HTTP, plus the shared retry helpers."""

from __future__ import annotations

import dataclasses
import email.utils
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from pipelines.connectors.centra import (
    CentraClient,
    CentraGraphQLError,
    CentraUserError,
    StockChangeResult,
)
from pipelines.connectors.errors import AuthError, ConnectorError, RateLimited, TransientError
from pipelines.connectors.retry import is_retryable, parse_retry_after, raise_for_status, retrying
from pipelines.simulators.centra import CentraState
from pipelines.simulators.serving import BackgroundServer
from pipelines_tests.centra_fixtures import T0, TOKEN, ManualClock, running_centra, small_estate

DC = 1
STORE_WH = 2
MARKET = 1


class CountingTransport(httpx.HTTPTransport):
    """Records the status of every response the client receives."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        with self._lock:
            self.statuses.append(response.status_code)
        return response


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> CentraState:
    return CentraState(small_estate(), clock=clock)


@pytest.fixture
def server(state: CentraState) -> Iterator[BackgroundServer]:
    with running_centra(state) as srv:
        yield srv


@pytest.fixture
def transport() -> CountingTransport:
    return CountingTransport()


@pytest.fixture
def client(server: BackgroundServer, transport: CountingTransport) -> Iterator[CentraClient]:
    with CentraClient(server.url, TOKEN, timeout=10, max_attempts=6, max_wait_s=20, backoff_base_s=0.05,
                      transport=transport) as c:
        yield c


def _skus(state: CentraState, n: int) -> list[str]:
    return [state.sizes[sid].size.sku for sid in state.size_ids_sorted[:n]]


# ------------------------------------------------------------------ transport and errors


def test_bad_token_raises_auth_error_without_retry(server: BackgroundServer, transport: CountingTransport) -> None:
    with CentraClient(server.url, "wrong", transport=transport) as bad, pytest.raises(AuthError) as info:
        bad.warehouses()
    assert info.value.status == 403 and transport.statuses == [403]
    assert "wrong" not in repr(bad)


def test_malformed_query_and_resolver_errors(client: CentraClient) -> None:
    with pytest.raises(CentraGraphQLError) as syntax:
        client.execute("{ warehouses { id ")
    assert syntax.value.status == 400 and "Syntax Error" in syntax.value.errors[0]["message"]
    with pytest.raises(CentraGraphQLError) as invalid:
        client.execute("{ warehouses { nope } }")
    assert invalid.value.status == 400
    with pytest.raises(CentraGraphQLError) as limit:
        client.execute("{ orders(limit: 201) { id } }")
    assert limit.value.status == 200 and limit.value.errors[0]["message"] == "Limit must be in range 1 - 200"


def test_permission_errors_are_typed(server: BackgroundServer) -> None:
    with CentraClient(server.url, "stores-only-token") as limited, pytest.raises(CentraGraphQLError) as info:
        limited.warehouses()
    assert info.value.categories == {"authorization"}


@pytest.mark.parametrize("style", ["seconds", "epoch", "http-date"])
def test_rate_limits_are_honoured_and_nothing_is_lost(state: CentraState, client: CentraClient,
                                                      transport: CountingTransport, style: str) -> None:
    state.retry_after_style = style
    state.set_rate_limits(overrides={("REQUEST_COUNT", "TEN_SECONDS"): 3}, interval_scale=0.1)
    results = [client.warehouses() for _ in range(7)]
    assert all(len(r) == 4 for r in results)
    assert transport.statuses.count(429) >= 1 and transport.statuses.count(200) == 7
    limits = {(r.type, r.interval): r for r in client.rate_limits()}
    assert limits[("REQUEST_COUNT", "TEN_SECONDS")].quota == 3
    assert limits[("REQUEST_COUNT", "ONE_HOUR")].interval_seconds == 3600


def test_rate_limited_mutations_are_resent_once(state: CentraState, client: CentraClient,
                                                transport: CountingTransport) -> None:
    sku = _skus(state, 1)[0]
    before = state.stock_of(DC, sku)["physical"]
    state.set_rate_limits(overrides={("MUTATION_COUNT", "TEN_SECONDS"): 1}, interval_scale=0.1)
    for i in range(3):
        client.change_stock(DC, {sku: 1}, f"rl-batch-{i}")
    assert state.stock_of(DC, sku)["physical"] == before + 3
    assert 429 in transport.statuses


def test_forced_5xx_and_499_are_retried(state: CentraState, client: CentraClient,
                                        transport: CountingTransport) -> None:
    state.fail_next(500, 2)
    state.fail_next(499)
    assert len(client.markets()) == 1
    assert transport.statuses == [500, 500, 499, 200]


def test_persistent_5xx_gives_up_with_transient_error(state: CentraState, server: BackgroundServer) -> None:
    state.fail_next(503, 5)
    with (CentraClient(server.url, TOKEN, max_attempts=2, max_wait_s=5, backoff_base_s=0.05) as quick,
          pytest.raises(TransientError) as info):
        quick.pricelists()
    assert info.value.status == 503


def test_retry_after_beyond_the_budget_is_not_waited_for(state: CentraState, server: BackgroundServer) -> None:
    state.fail_next(429, retry_after=30)
    with CentraClient(server.url, TOKEN, max_attempts=5, max_wait_s=2) as quick, pytest.raises(RateLimited) as info:
        quick.warehouses()
    assert 29.0 <= info.value.retry_after <= 31.0  # the default form is a whole-second timestamp


# ------------------------------------------------------------------ reference data and catalog


def test_reference_data(client: CentraClient, state: CentraState) -> None:
    warehouses = client.warehouses()
    assert [(w.id, w.country) for w in warehouses] == [(1, "SE"), (2, "SE"), (3, "SE"), (4, "SE")]
    [market] = client.markets()
    assert (market.store_id, market.allocation_rule_id, market.countries) == (1, 1, ("SE",))
    pricelists = {p.id: p for p in client.pricelists()}
    assert pricelists[2].currency == "SEK" and pricelists[2].countries == ("SE",)
    assert dataclasses.asdict(warehouses[0]) == {"id": 1, "name": "DC Boras", "country": "SE"}


def test_product_sizes_paginate_with_cursors(client: CentraClient, state: CentraState,
                                             transport: CountingTransport) -> None:
    sizes = client.product_sizes(first=7)
    assert len(sizes) == 60 and len({s.size_id for s in sizes}) == 60 and len(transport.statuses) == 9
    first = sizes[0]
    ref = state.sizes[first.size_id]
    assert (first.sku, first.ean, first.product_number, first.variant_number, first.size_name) == (
        ref.size.sku, ref.size.ean, ref.product.product_number, ref.variant.variant_number, ref.size.size)
    assert first.product_status == "ACTIVE" and first.is_active


def test_variant_prices(client: CentraClient, state: CentraState) -> None:
    prices = client.variant_prices(page_size=5)
    assert len(prices) == 2 * len(state.variants)
    p = next(x for x in prices if x.pricelist_id == 2)
    assert p.currency == "SEK" and p.price == state.variants[p.variant_id].prices[2]


# ------------------------------------------------------------------ stock


def test_change_stock_in_and_out_visible_in_stock_and_ledger(client: CentraClient, state: CentraState) -> None:
    a, b = _skus(state, 2)
    before_a, before_b = state.stock_of(DC, a)["physical"], state.stock_of(DC, b)["physical"]
    result = client.change_stock(DC, {a: 4, b: -1}, "ns-adjust 0001")
    assert isinstance(result, StockChangeResult) and result.mutations == 2 and len(result.stock_change_ids) == 2
    rows = {(s.warehouse_id, s.sku): s for s in client.stock([DC])}
    assert rows[(DC, a)].physical == before_a + 4 and rows[(DC, b)].physical == before_b - 1
    assert rows[(DC, a)].free_to_allocate == rows[(DC, a)].physical - rows[(DC, a)].allocated
    ledger = client.stock_changes(description_contains="ns-adjust 0001")
    assert sorted((c.sku, c.quantity) for c in ledger) == sorted([(a, 4), (b, -1)])
    assert all(c.description == "ns-adjust 0001" and c.created_at == T0.isoformat() for c in ledger)


def test_user_errors_unknown_sku_and_negative_stock(client: CentraClient, state: CentraState) -> None:
    sku = _skus(state, 1)[0]
    before = state.stock_of(DC, sku)
    with pytest.raises(CentraUserError) as unknown:
        client.change_stock(DC, {sku: 1, "NO-SUCH-SKU": 2}, "bad batch")
    assert "not found" in unknown.value.user_errors[0]["message"]
    with pytest.raises(CentraUserError) as negative:
        client.change_stock(DC, {sku: -(before["physical"] + 5)}, "too much")
    assert "negative" in negative.value.user_errors[0]["message"]
    with pytest.raises(CentraUserError):
        client.set_stock(DC, {"NO-SUCH-SKU": 1}, "bad set")
    assert state.stock_of(DC, sku) == before and state.stock_changes() == []
    # a rejected removal stops the call before the additions are sent
    other = _skus(state, 2)[1]
    with pytest.raises(CentraUserError) as mixed:
        client.change_stock(DC, {other: 3, sku: -(before["physical"] + 5)}, "mixed")
    assert mixed.value.applied_stock_change_ids == () and state.stock_changes() == []
    # a rejected addition after applied removals says what was applied
    with pytest.raises(CentraUserError) as partial:
        client.change_stock(DC, {sku: -1, "NO-SUCH-SKU": 1}, "partial")
    assert len(partial.value.applied_stock_change_ids) == 1
    assert state.stock_of(DC, sku)["physical"] == before["physical"] - 1


def test_set_stock_and_transfer(client: CentraClient, state: CentraState) -> None:
    a, b = _skus(state, 2)
    res = client.set_stock(STORE_WH, {a: 9, b: 0}, "stock-take S2")
    assert res.mutations == 1 and len(res.stock_change_ids) == 1
    assert state.stock_of(STORE_WH, a)["physical"] == 9 and state.stock_of(STORE_WH, b)["physical"] == 0
    assert client.set_stock(STORE_WH, {a: 9}, "stock-take S2 again").stock_change_ids == ()  # nothing changed
    dc_before = state.stock_of(DC, a)["physical"]
    client.transfer_stock(DC, STORE_WH, {a: 2}, "transfer X")
    assert state.stock_of(STORE_WH, a)["physical"] == 11 and state.stock_of(DC, a)["physical"] == dc_before - 2


def test_ambiguous_stock_failures_are_not_applied_twice(client: CentraClient, state: CentraState,
                                                        transport: CountingTransport) -> None:
    sku = _skus(state, 1)[0]
    before = state.stock_of(DC, sku)["physical"]
    state.fail_next(500, after_execute=True)  # committed, then the gateway answered 500
    committed = client.change_stock(DC, {sku: 3}, "asn-777")
    assert committed.deduplicated and len(committed.stock_change_ids) == 1
    assert state.stock_of(DC, sku)["physical"] == before + 3
    state.fail_next(500)  # failed before executing: must be resent
    resent = client.change_stock(DC, {sku: 2}, "asn-778")
    assert not resent.deduplicated and state.stock_of(DC, sku)["physical"] == before + 5
    assert transport.statuses.count(500) == 2


def test_stock_pages_and_filters(client: CentraClient, state: CentraState) -> None:
    everything = client.stock(limit=25)
    assert len(everything) == 4 * 60
    only_store = client.stock([STORE_WH], limit=7)
    assert {s.warehouse_id for s in only_store} == {STORE_WH} and len(only_store) == 60


def test_stock_changes_paginate_and_filter_by_time(client: CentraClient, state: CentraState,
                                                   clock: ManualClock) -> None:
    sku = _skus(state, 1)[0]
    for i in range(5):
        client.change_stock(DC, {sku: 1}, f"inbound {i}")
        clock.advance(minutes=10)
    assert [c.description for c in client.stock_changes(first=2)] == [f"inbound {i}" for i in range(5)]
    later = client.stock_changes(created_from=T0 + timedelta(minutes=25), first=2)
    assert [c.description for c in later] == ["inbound 3", "inbound 4"]


# ------------------------------------------------------------------ orders and returns


def test_orders_between_paginates_and_is_half_open(client: CentraClient, state: CentraState,
                                                   clock: ManualClock) -> None:
    sku = _skus(state, 1)[0]
    numbers = []
    for _ in range(25):
        numbers.append(state.place_order(MARKET, [(sku, 1)], email="x@example.com")["number"])
        clock.advance(minutes=1)
    start, end = T0 + timedelta(minutes=2), T0 + timedelta(minutes=22)
    orders = client.orders_between(start, end, page_size=6)
    assert [o.number for o in orders] == numbers[2:22]
    assert orders[0].created_at == start.isoformat()
    assert len(client.orders_between(T0, T0 + timedelta(hours=1))) == 25


def test_order_fields_allocation_ship_and_return(client: CentraClient, state: CentraState,
                                                 clock: ManualClock) -> None:
    a, b = _skus(state, 2)
    phys, fta = state.stock_of(DC, a)["physical"], state.stock_of(DC, a)["fta"]
    placed = state.place_order(MARKET, [(a, 2), (b, 1)], email="ola@example.com", external_id="POS-1",
                               unit_prices={b: 10.0})
    rows = {s.sku: s for s in client.stock([DC])}
    assert rows[a].physical == phys and rows[a].free_to_allocate == fta - 2 and rows[a].allocated >= 2
    [order] = client.orders_between(T0, T0 + timedelta(seconds=1))
    price_a, price_b = state.estate.price(a, 2), state.estate.price(b, 2)
    assert (order.id, order.number, order.status) == (placed["id"], placed["number"], "PENDING")
    assert (order.market_id, order.pricelist_id, order.currency, order.country) == (MARKET, 2, "SEK", "SE")
    assert (order.email, order.external_id, order.store_id) == ("ola@example.com", "POS-1", 1)
    assert order.grand_total == round(2 * price_a + 10.0, 2) and order.discount_total == round(price_b - 10.0, 2)
    assert order.tax_total == pytest.approx(order.grand_total - order.grand_total / 1.25, abs=0.011)
    line_a, line_b = order.lines
    assert (line_a.sku, line_a.quantity, line_a.unit_price, line_a.tax_percent) == (a, 2, price_a, 25.0)
    assert line_b.unit_original_price == price_b and line_b.unit_price == 10.0 and line_b.discount_percent > 0
    assert line_a.line_value == round(2 * price_a, 2)

    clock.advance(hours=1)
    state.ship_order(order.number)
    assert {s.sku: s for s in client.stock([DC])}[a].physical == phys - 2
    assert client.order(order.number).status == "SHIPPED"  # type: ignore[union-attr]
    clock.advance(hours=1)
    ret = state.create_return(order.number, [(a, 1)])
    assert state.stock_of(DC, a)["physical"] == phys - 1
    [r] = client.returns_between(T0 + timedelta(hours=2), T0 + timedelta(hours=3))
    assert (r.id, r.order_number, r.order_id, r.status, r.currency) == (ret["id"], order.number, order.id,
                                                                         "COMPLETED", "SEK")
    assert r.refunded and r.refund_amount == price_a == r.grand_total and r.return_warehouse_id == DC
    assert r.refunded_at == (T0 + timedelta(hours=2)).isoformat()
    assert r.tax_total == pytest.approx(price_a - price_a / 1.25, abs=0.011)
    assert [(ln.sku, ln.quantity, ln.unit_price, ln.tax_percent) for ln in r.lines] == [(a, 1, price_a, 25.0)]
    assert client.order(order.number).lines[0].returned_quantity == 1  # type: ignore[union-attr]
    assert client.returns_between(T0, T0 + timedelta(hours=2)) == []
    assert dataclasses.asdict(r)["lines"][0]["sku"] == a


def test_orders_by_numbers_batches_and_leaves_out_unknown_numbers(client: CentraClient, state: CentraState,
                                                                  transport: CountingTransport) -> None:
    skus = _skus(state, 5)
    numbers = [state.place_order(MARKET, [(skus[i % 5], 1)], email=f"n{i}@example.com")["number"]
               for i in range(230)]
    unknown = [max(numbers) + 1, max(numbers) + 500]
    transport.statuses.clear()
    found = client.orders_by_numbers(reversed(numbers + unknown + numbers[:5]))  # any order, duplicates
    assert sorted(found) == numbers and all(found[n].number == n for n in numbers)
    assert len(transport.statuses) == 2  # 232 distinct numbers: a batch of 200 and one of 32
    assert found[numbers[7]] == client.order(numbers[7])
    assert found[numbers[7]].lines[0].sku == skus[2]

    transport.statuses.clear()  # one batch larger than a page: the same filter read as pages 1 and 2
    assert client.orders_by_numbers(numbers + unknown, batch_size=1000) == found
    assert len(transport.statuses) == 2
    transport.statuses.clear()  # a full batch that is all found needs no second page
    assert list(client.orders_by_numbers(numbers[:200])) == numbers[:200]
    assert len(transport.statuses) == 1
    transport.statuses.clear()
    assert client.orders_by_numbers(unknown) == {} and client.orders_by_numbers([]) == {}
    assert len(transport.statuses) == 1
    with pytest.raises(ValueError):
        client.orders_by_numbers(numbers, batch_size=0)


# ------------------------------------------------------------------ retry helpers


def test_parse_retry_after_forms() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("3", now=now) == 3.0
    assert parse_retry_after("1.5", now=now) == 1.5
    assert parse_retry_after(str(int(now) + 7), now=now) == 7.0
    assert parse_retry_after(str(int(now * 1000) + 2000), now=now) == pytest.approx(2.0)
    assert parse_retry_after(email.utils.formatdate(now + 4, usegmt=True), now=now) == pytest.approx(4.0)
    assert parse_retry_after("2027-01-15T08:00:04+00:00", now=now) == pytest.approx(4.0)
    assert parse_retry_after(str(int(now) - 50), now=now) == 0.0
    for junk in (None, "", "soon", "nan"):
        assert parse_retry_after(junk, now=now) is None


def test_raise_for_status_and_predicates() -> None:
    request = httpx.Request("GET", "https://example.invalid/x?secret=1")
    ok = httpx.Response(200, request=request)
    raise_for_status(ok)
    with pytest.raises(AuthError):
        raise_for_status(httpx.Response(401, request=request))
    with pytest.raises(RateLimited) as rl:
        raise_for_status(httpx.Response(429, headers={"Retry-After": "2"}, request=request))
    assert rl.value.retry_after == 2.0 and "secret" not in str(rl.value)
    with pytest.raises(TransientError):
        raise_for_status(httpx.Response(502, request=request))
    with pytest.raises(ConnectorError) as other:
        raise_for_status(httpx.Response(404, request=request))
    assert not isinstance(other.value, TransientError)
    assert is_retryable(TransientError("x", request_sent=True))
    assert not is_retryable(TransientError("x", request_sent=True), idempotent=False)
    assert is_retryable(httpx.ConnectError("refused"), idempotent=False)
    assert not is_retryable(httpx.ReadTimeout("slow"), idempotent=False)
    assert not is_retryable(AuthError("no"))


def test_retrying_honours_retry_after_and_bounds() -> None:
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise RateLimited(retry_after=0.5)
        return "ok"

    assert retrying(max_attempts=5, max_wait_s=10, sleep=sleeps.append)(flaky) == "ok"
    assert len(sleeps) == 2 and all(0.5 <= s <= 1.5 for s in sleeps)

    def always() -> None:
        raise TransientError("down", status=503)

    sleeps.clear()
    with pytest.raises(TransientError):
        retrying(max_attempts=4, max_wait_s=100, base_delay_s=0.01, sleep=sleeps.append)(always)
    assert len(sleeps) == 3
    start = time.monotonic()
    with pytest.raises(RateLimited):
        retrying(max_attempts=10, max_wait_s=1, sleep=sleeps.append)(lambda: (_ for _ in ()).throw(
            RateLimited(retry_after=5)))
    assert time.monotonic() - start < 1
