"""What every resolver module shares: the query/mutation roots, the `Payload` interface, permission
checks, paging (page/limit and Relay connections), filters, money and mutation payloads."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from ariadne import InterfaceType, MutationType, QueryType
from graphql import GraphQLError

from pipelines.simulators.centra.state import CentraState, MutationError

MAX_LIMIT = 200
DEFAULT_FIRST = 20

query = QueryType()
mutation = MutationType()
payload_iface = InterfaceType("Payload")
payload_iface.set_type_resolver(lambda obj, *_: None)


def _state(info: Any) -> CentraState:
    return info.context["state"]


def require(info: Any, permission: str) -> None:
    """Check and record a permission; missing -> a standard error with category authorization."""
    allowed = info.context.get("permissions")
    if allowed is not None and permission not in allowed:
        raise GraphQLError(f"You need {permission} permission to access {info.field_name}.",
                           extensions={"category": "authorization"})
    info.context["used"].add(permission)


def needs(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(obj: Any, info: Any, **kwargs: Any) -> Any:
            require(info, permission)
            return fn(obj, info, **kwargs)
        return wrapper
    return decorate


def paginate(items: Sequence[Any], limit: int | None, page: int | None) -> list[Any]:
    if limit is None:
        return list(items)
    if not 1 <= limit <= MAX_LIMIT:
        raise GraphQLError(f"Limit must be in range 1 - {MAX_LIMIT}")
    page = 1 if page is None else page
    if page < 1:
        raise GraphQLError("Page must be greater than 0")
    start = (page - 1) * limit
    return list(items[start:start + limit])


def _cursor(prefix: str, key: int) -> str:
    return base64.b64encode(f"{prefix}:{key}".encode()).decode()


def _decode_cursor(prefix: str, cursor: str) -> int:
    try:
        kind, _, raw = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if kind != prefix:
            raise ValueError(kind)
        return int(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphQLError(f"Invalid cursor: {cursor!r}") from exc


def connection(items: Sequence[Any], key: Callable[[Any], int], prefix: str, *, first: int | None,
               after: str | None, last: int | None, before: str | None, positional: bool = False) -> dict[str, Any]:
    """Relay connection over `items` (already sorted by ascending `key`); keyset cursors. `positional`:
    `items` are in any order and a cursor means "after/before the item with that key" in it."""
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 1 <= value <= MAX_LIMIT:
            raise GraphQLError(f"Argument {name} must be in range 1 - {MAX_LIMIT}")
    total = len(items)
    window = list(items)
    if positional:
        keys = [key(x) for x in window]
        lo, hi = 0, len(window)
        if after is not None:
            after_key = _decode_cursor(prefix, after)
            lo = keys.index(after_key) + 1 if after_key in keys else hi
        if before is not None:
            before_key = _decode_cursor(prefix, before)
            hi = keys.index(before_key) if before_key in keys else hi
        window = window[lo:max(lo, hi)]
    else:
        if after is not None:
            after_key = _decode_cursor(prefix, after)
            window = [x for x in window if key(x) > after_key]
        if before is not None:
            before_key = _decode_cursor(prefix, before)
            window = [x for x in window if key(x) < before_key]
    if first is None and last is None:
        first = DEFAULT_FIRST
    has_next = has_prev = False
    if first is not None:
        has_next = len(window) > first
        window = window[:first]
        has_prev = after is not None
    if last is not None:
        has_prev = len(window) > last
        window = window[-last:]
        has_next = has_next or before is not None
    edges = [{"cursor": _cursor(prefix, key(x)), "node": x} for x in window]
    return {"total_count": total, "edges": edges,
            "page_info": {"has_next_page": has_next, "has_previous_page": has_prev,
                          "start_cursor": edges[0]["cursor"] if edges else None,
                          "end_cursor": edges[-1]["cursor"] if edges else None}}


def in_range(value: datetime, rng: dict[str, Any] | None) -> bool:
    """DateRange filter: both ends inclusive."""
    if not rng:
        return True
    lo, hi = rng.get("from"), rng.get("to")
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def int_in_range(value: int, rng: dict[str, Any] | None) -> bool:
    if not rng:
        return True
    lo, hi = rng.get("from"), rng.get("to")
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _match(value: str | None, match: dict[str, Any] | None) -> bool:
    """StringMatch: `equals` exact, `contains` substring (case-insensitive)."""
    if not match:
        return True
    if match.get("equals") is not None and value != match["equals"]:
        return False
    return match.get("contains") is None or (value is not None and match["contains"].lower() in value.lower())


def _sorted(items: Iterable[Any], sort: list[str] | None, keys: dict[str, Callable[[Any], Any]],
            default: str = "id") -> list[Any]:
    out = sorted(items, key=keys[default])
    for spec in reversed(sort or []):
        name, _, direction = spec.rpartition("_")
        out.sort(key=keys.get(name, keys[default]), reverse=direction == "DESC")
    return out


def money(state: CentraState, value: float, currency: str) -> dict[str, Any]:
    cur = state.currencies.get(currency) or {"id": 0, "code": currency, "name": currency, "is_base": False,
                                             "base_rate": 1.0}
    value = round(float(value), 2)
    return {"value": value, "currency": cur, "conversion_rate": cur["base_rate"],
            "formatted_value": f"{value:.2f} {currency}"}


def _net(value: float, tax_percent: float, including_tax: bool) -> float:
    return value if including_tax else value / (1 + tax_percent / 100)


def _payload(**fields: Any) -> dict[str, Any]:
    return {"user_errors": [], "user_warnings": [], **fields}


def _failed(exc: MutationError, **fields: Any) -> dict[str, Any]:
    return {"user_errors": exc.errors, "user_warnings": [], **fields}


# ------------------------------------------------------------------ mutation references


def _warehouse_id(state: CentraState, ref: dict[str, Any] | None, path: list[str]) -> int | None:
    if ref is None:
        return None
    if ref.get("id") is None:
        raise MutationError("Warehouse reference needs an id (ID conversion is not simulated)", path)
    if ref["id"] not in state.warehouses:
        raise MutationError(f"Warehouse {ref['id']} not found", path)
    return int(ref["id"])


def _describe(ref: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in ref.items() if v is not None) or "empty reference"
