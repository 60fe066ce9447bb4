"""What the connectors' clients share of their lifetime: one httpx connection pool each, released by
`close()` or on leaving a `with` block."""

from __future__ import annotations

from typing import Self

import httpx


class PooledClient:
    """Base of a connector client holding its connection pool in `_http`."""

    _http: httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
