"""A pass's reads of the commerce platform, shared by the flows (one Centra order event triggers several flows,
and each reads the order): the same read within a pass is sent once, and any write forgets every read."""

from __future__ import annotations

from typing import Any

CACHED_READS = frozenset({"order"})


class PassCache:
    """Wraps a `CommercePlatform` for one pass of the runner."""

    def __init__(self, platform: Any):
        self._platform = platform
        self._reads: dict[tuple[str, tuple[Any, ...]], Any] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._platform, name)
        if not callable(attr):
            return attr
        if name in CACHED_READS:
            def read(*args: Any) -> Any:
                key = (name, args)
                if key not in self._reads:
                    self._reads[key] = attr(*args)
                return self._reads[key]
            return read
        if name.startswith(("order_", "free_", "delivery_")):  # other reads: not cached, not forgetting
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            self._reads.clear()
            return attr(*args, **kwargs)
        return write
