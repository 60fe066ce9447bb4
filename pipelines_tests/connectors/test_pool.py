"""Both connector clients release their connection pool on `close()` and on leaving a `with` block."""

from __future__ import annotations

import httpx
import pytest

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.newstore import NewStoreClient
from pipelines.connectors.pool import PooledClient

UNUSED = httpx.MockTransport(lambda request: httpx.Response(500))


@pytest.mark.parametrize("make", [
    lambda: CentraClient("http://centra.test", "token", transport=UNUSED),
    lambda: NewStoreClient("http://newstore.test", "tenant", "id", "secret", transport=UNUSED),
])
def test_a_with_block_yields_the_client_and_closes_its_pool(make) -> None:
    client = make()
    assert isinstance(client, PooledClient)
    with client as entered:
        assert entered is client
        assert not client._http.is_closed
    assert client._http.is_closed


def test_close_closes_the_pool() -> None:
    client = NewStoreClient("http://newstore.test", "tenant", "id", "secret", transport=UNUSED)
    client.close()
    assert client._http.is_closed
