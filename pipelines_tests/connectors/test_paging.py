"""The shared page loop, alone and behind both connectors' request shapes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

import httpx
import pytest

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.newstore import NewStoreClient
from pipelines.connectors.paging import PaginationError, paginate


class Pages:
    """`fetch` over canned pages `{key: (items, next_key)}`; records the keys asked for."""

    def __init__(self, pages: dict[object, tuple[Sequence[int], object]]) -> None:
        self.pages = pages
        self.keys: list[object] = []

    def __call__(self, key: object) -> tuple[Sequence[int], object]:
        self.keys.append(key)
        return self.pages[key]


def test_stops_on_missing_key_empty_page_short_page_and_known_total() -> None:
    cursor = Pages({None: ([1, 2], "a"), "a": ([3], None)})
    assert list(paginate(cursor, None)) == [1, 2, 3] and cursor.keys == [None, "a"]
    empty = Pages({1: ([1, 2], 2), 2: ([], 3)})
    assert list(paginate(empty, 1)) == [1, 2] and empty.keys == [1, 2]
    short = Pages({1: ([1, 2], 2), 2: ([3], 3)})
    assert list(paginate(short, 1, page_size=2)) == [1, 2, 3] and short.keys == [1, 2]
    bounded = Pages({1: ([1, 2], 2), 2: ([3, 4], 3)})
    assert list(paginate(bounded, 1, page_size=2, max_items=4)) == [1, 2, 3, 4] and bounded.keys == [1, 2]


def test_a_repeated_key_ends_the_walk(caplog: pytest.LogCaptureFixture) -> None:
    loop = Pages({None: ([1], "a"), "a": ([2], "b"), "b": ([3], "a")})
    with caplog.at_level(logging.WARNING, logger="pipelines.connectors.paging"):
        assert list(paginate(loop, None, what="things")) == [1, 2, 3]
    assert loop.keys == [None, "a", "b"] and "things" in caplog.text and "'a'" in caplog.text


def test_more_than_max_pages_raises() -> None:
    endless = Pages({n: ([n], n + 1) for n in range(1, 10)})
    with pytest.raises(PaginationError):
        list(paginate(endless, 1, max_pages=3))
    assert endless.keys == [1, 2, 3]


def _graphql(handler: Callable[[dict], dict]) -> httpx.MockTransport:
    """A Centra stand-in answering every operation with `{"data": handler(variables)}`."""

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": handler(json.loads(request.content)["variables"])})
    return httpx.MockTransport(respond)


def test_centra_relay_stops_on_a_repeated_end_cursor() -> None:
    calls: list[str | None] = []

    def sizes(variables: dict) -> dict:
        calls.append(variables["after"])
        n = len(calls)
        node = {"id": n, "SKU": f"S{n}", "productVariant": {"id": 1, "product": {"id": 1}}}
        return {"productSizeConnection": {"pageInfo": {"hasNextPage": True, "endCursor": "stuck"},
                                          "edges": [{"node": node}]}}

    with CentraClient("http://centra.invalid", "t", transport=_graphql(sizes)) as client:
        assert [s.sku for s in client.product_sizes(first=1)] == ["S1", "S2"]
    assert calls == [None, "stuck"]


def test_centra_numbered_pages_stop_on_a_short_page() -> None:
    pages: list[int] = []

    def variants(variables: dict) -> dict:
        pages.append(variables["page"])
        count = variables["limit"] if variables["page"] < 3 else 1
        return {"productVariants": [{"id": i, "prices": []} for i in range(count)]}

    with CentraClient("http://centra.invalid", "t", transport=_graphql(variants)) as client:
        assert client.variant_prices(page_size=4) == []
    assert pages == [1, 2, 3]


def test_newstore_page_keys_and_offsets() -> None:
    asked: list[tuple[str, dict]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        params = dict(request.url.params)
        asked.append((request.url.path, params))
        if request.url.path == "/stores":  # hands out the same key again after the second page
            key = {None: "k1", "k1": "k2", "k2": "k1"}[params.get("start_at")]
            return httpx.Response(200, json={"items": [{"id": f"ST-{key}"}], "next_page_key": key})
        offset = int(params["offset"])
        items = [{"fulfillment_node_id": "N1", "sku": f"S{i}"} for i in range(offset, min(offset + 2, 5))]
        return httpx.Response(200, json={"items": items, "pagination": {"total": 5}})

    with NewStoreClient("http://ns.invalid", "acme", "id", "secret", page_size=2,
                        transport=httpx.MockTransport(respond)) as client:
        assert [s.id for s in client.stores()] == ["ST-k1", "ST-k2", "ST-k1"]
        assert [s.sku for s in client.stocked_products()] == ["S0", "S1", "S2", "S3", "S4"]
    assert [p.get("start_at") for path, p in asked if path == "/stores"] == [None, "k1", "k2"]
    assert [p["offset"] for path, p in asked if path != "/stores"] == ["0", "2", "4"]
