"""The DateTimeTz and Date scalars, and PHP `date()` formatting for fields with a `format:` argument."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ariadne import ScalarType


def parse_datetime(value: Any) -> datetime:
    """DateTimeTz input: ISO-8601 (with 'T' or space, optional offset; naive = UTC) or "now"."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() == "now":
            return datetime.now(UTC)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"Invalid DateTimeTz: {value!r}") from exc
    else:
        raise ValueError(f"Invalid DateTimeTz: {value!r}")
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_datetime(dt: datetime) -> str:
    """Centra's default output format `Y-m-d\\TH:i:sP` (seconds precision, UTC here)."""
    return dt.astimezone(UTC).isoformat(timespec="seconds")


_PHP: dict[str, Callable[[datetime], str]] = {
    "Y": lambda d: f"{d.year:04d}", "y": lambda d: f"{d.year % 100:02d}", "m": lambda d: f"{d.month:02d}",
    "n": lambda d: str(d.month), "d": lambda d: f"{d.day:02d}", "j": lambda d: str(d.day),
    "H": lambda d: f"{d.hour:02d}", "G": lambda d: str(d.hour), "i": lambda d: f"{d.minute:02d}",
    "s": lambda d: f"{d.second:02d}", "u": lambda d: f"{d.microsecond:06d}",
    "v": lambda d: f"{d.microsecond // 1000:03d}", "P": lambda d: "+00:00", "O": lambda d: "+0000",
    "T": lambda d: "UTC", "e": lambda d: "UTC", "Z": lambda d: "0", "U": lambda d: str(int(d.timestamp())),
    "c": lambda d: format_datetime(d), "D": lambda d: d.strftime("%a"), "M": lambda d: d.strftime("%b"),
}


def php_date(dt: datetime, fmt: str) -> str:
    """The subset of PHP `date()` formatting Centra's `format:` argument is used with."""
    out, escape = [], False
    for ch in fmt:
        if escape:
            out.append(ch)
            escape = False
        elif ch == "\\":
            escape = True
        else:
            fn = _PHP.get(ch)
            out.append(fn(dt.astimezone(UTC)) if fn else ch)
    return "".join(out)


datetime_scalar = ScalarType("DateTimeTz")


@datetime_scalar.serializer
def _serialize_dt(value: Any) -> str:
    return value if isinstance(value, str) else format_datetime(value)


@datetime_scalar.value_parser
def _parse_dt(value: Any) -> datetime:
    return parse_datetime(value)


date_scalar = ScalarType("Date")


@date_scalar.serializer
def _serialize_date(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value)
