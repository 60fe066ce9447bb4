"""Verification of inbound deliveries (pure functions, no I/O)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from pipelines.connectors.centra.signature import centra_signature

# Column widths of inbox_events (sql/migrations/0001_core.sql): longer values would fail the insert.
MAX_DEDUP_KEY = 255
MAX_EVENT_NAME = 128
_UNIX_TS = re.compile(r"[0-9]{1,12}")


class Rejected(Exception):
    """A delivery we refuse; `status` is the HTTP status to answer with, `reason` says why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_bearer(authorization: str | None, expected: str) -> None:
    if not authorization:
        raise Rejected(401, "missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Rejected(401, "Authorization must be 'Bearer <api key>'")
    # Bytes, not str: compare_digest raises TypeError on non-ASCII str (headers arrive latin-1 decoded).
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Rejected(403, "api key does not match")


def check_centra_signature(header: str | None, body: bytes | None, secret: str, now: float,
                           tolerance_s: int = 300) -> None:
    """`X-Centra-Signature: t=<unix>,v1=<hex>` with v1 = HMAC-SHA256(secret, "<t>.<raw body>").

    With `body=None` only what the header alone can tell is checked (present, well formed, `t` within
    the tolerance), so a stranger's request is refused before its body is read; with the body, the
    signature itself is checked too.
    """
    if not header:
        raise Rejected(401, "missing X-Centra-Signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value.strip())
    if "t" not in parts or "v1" not in parts:
        raise Rejected(400, "X-Centra-Signature must carry t= and v1=")
    t = parts["t"][0]
    if not _UNIX_TS.fullmatch(t):
        raise Rejected(400, "X-Centra-Signature t= is not a unix timestamp")
    candidates = [v.lower().encode() for v in parts["v1"] if re.fullmatch(r"[0-9a-fA-F]{64}", v)]
    if not candidates:
        raise Rejected(400, "X-Centra-Signature v1= is not a hex HMAC-SHA256")
    if abs(now - int(t)) > tolerance_s:
        raise Rejected(401, f"signature timestamp outside the {tolerance_s}s tolerance")
    if body is None:
        return
    expected = centra_signature(secret, t, body).encode()
    if not any(hmac.compare_digest(expected, v) for v in candidates):
        raise Rejected(401, "signature does not match")


@dataclass(frozen=True)
class InboundEvent:
    source: str
    dedup_key: str
    event_name: str
    event_time: str | None
    payload: dict[str, Any]


def _stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _storable_key(key: str) -> str:
    """The dedup key as stored: itself when it fits the column (and PostgreSQL text), else a stable hash."""
    if len(key) <= MAX_DEDUP_KEY and "\x00" not in key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _check_event_name(name: str) -> str:
    if not name or len(name) > MAX_EVENT_NAME or "\x00" in name:
        raise Rejected(422, f"event name must be 1 to {MAX_EVENT_NAME} characters")
    return name


def _safe_time(fn: Any, *args: Any) -> str | None:
    """An event's business time, or None when its time fields are unusable (the event is still stored)."""
    try:
        return fn(*args)
    except (ValueError, TypeError, OverflowError, AttributeError):
        return None


# Deeper JSON is refused (422): the decoder and encoder recurse, and past ~1000 levels they raise
# RecursionError; no event of either platform comes near this.
MAX_JSON_DEPTH = 64
_LONE_SURROGATE = re.compile("[\\ud800-\\udfff]")


def _load_json(raw: str | bytes, what: str) -> Any:
    """json.loads, refusing documents deeper than MAX_JSON_DEPTH and strings holding lone surrogates.

    A lone UTF-16 surrogate (`"\\ud800"` escaped, or its raw bytes, which json decodes with
    surrogatepass) cannot be encoded as UTF-8, so neither PostgreSQL nor SQLite (through Python's driver)
    can store it: 422 on both rather than a failing insert. The walk over the parsed document only runs
    when the raw text could hold either (more than MAX_JSON_DEPTH brackets, a `\\u` escape, bytes that
    are not strict UTF-8), so a typical event costs two `count` calls and a `find`.
    """
    try:
        doc = json.loads(raw)
    except RecursionError as exc:
        raise Rejected(422, f"{what} is JSON nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(400, f"{what} is not JSON: {exc}") from exc
    if isinstance(raw, bytes):
        brackets = raw.count(b"[") + raw.count(b"{")
        surrogates = b"\\u" in raw or not (raw.isascii() or _is_strict_utf8(raw))
    else:
        brackets = raw.count("[") + raw.count("{")
        surrogates = "\\u" in raw or _LONE_SURROGATE.search(raw) is not None
    if brackets > MAX_JSON_DEPTH or surrogates:
        _check_json_tree(doc, what)
    return doc


def _is_strict_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")  # strict: encoded surrogates (ED A0 80 ...) are refused here
    except UnicodeDecodeError:
        return False
    return True


def _check_json_tree(doc: Any, what: str) -> None:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = ((None, v) for v in node)
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise Rejected(422, f"{what} is JSON nested deeper than {MAX_JSON_DEPTH} levels")
        for key, value in items:
            for s in (key, value):
                if isinstance(s, str) and not s.isascii() and _LONE_SURROGATE.search(s):
                    raise Rejected(422, f"{what} holds a lone UTF-16 surrogate (\\ud800-\\udfff): "
                                        "it cannot be stored")
            if isinstance(value, dict | list):
                stack.append((value, depth + 1))


def parse_newstore_event(body: bytes) -> InboundEvent:
    """NewStore event stream envelope `{tenant, name, published_at, payload}`.

    The dedup key is the business identity of the event (`business_key`: name, transaction id, logical
    timestamp, chunk), so a redelivery with a new `published_at` or extra fields is a duplicate.
    """
    doc = _load_json(body, "body")
    if not isinstance(doc, dict):
        raise Rejected(400, "body must be a JSON object")
    missing = [k for k in ("name", "payload") if k not in doc]
    if missing:
        raise Rejected(422, f"event envelope lacks {', '.join(missing)}")
    name, payload = doc["name"], doc["payload"]
    if not isinstance(name, str) or not isinstance(payload, dict):
        raise Rejected(422, "event name must be a string and payload an object")
    _check_event_name(name)
    from pipelines.domain.newstore_events import business_key, event_time_of

    published_at = doc.get("published_at")
    return InboundEvent(
        source="newstore",
        dedup_key=_storable_key(business_key(name, payload)),
        event_name=name,
        event_time=_safe_time(event_time_of, name, payload, published_at if isinstance(published_at, str) else None),
        payload=doc,
    )


def parse_centra_webhook(body: bytes, *, form: bool = True) -> list[InboundEvent]:
    """Centra webhook: form-encoded `payload=<JSON {"events":[...]}>`; one inbound event per entry.

    `form=False` reads a body that is the JSON document itself (a delivery sent as application/json).
    """
    if form:
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except UnicodeDecodeError as exc:
            raise Rejected(400, f"body is not form-encoded: {exc}") from exc
        except ValueError as exc:  # its message quotes the offending field: the body, unbounded
            raise Rejected(400, "body is not form-encoded: a field without '='") from exc
        if "payload" not in fields:
            raise Rejected(400, "form body lacks payload=")
        if len(fields["payload"]) > 1:  # which one was signed for what? refuse rather than pick one
            raise Rejected(400, f"form body has {len(fields['payload'])} payload= fields, expected one")
        raw: str | bytes = fields["payload"][0]
    else:
        raw = body
    doc = _load_json(raw, "payload")
    events = doc.get("events") if isinstance(doc, dict) else None
    if isinstance(doc, dict) and events is None:
        # Storefront cache-busting webhooks ({"products": [...], ...}) carry no events list.
        return [InboundEvent("centra", f"storefront:{_stable_hash(doc)}", "storefront", None, doc)]
    if not isinstance(events, list):
        raise Rejected(422, "payload.events must be a list")
    out = []
    from pipelines.domain.timeutil import normalise_time

    for ev in events:
        if not isinstance(ev, dict) or not {"type", "action", "id"} <= ev.keys():
            raise Rejected(422, "each event needs type, action and id")
        if not all(isinstance(ev[k], str | int) and not isinstance(ev[k], bool) for k in ("type", "action", "id")):
            raise Rejected(422, "event type, action and id must be strings or integers")
        name = _check_event_name(f"{ev['type']}.{ev['action']}")
        when = _safe_time(normalise_time, str(ev["date"])) if ev.get("date") else None
        key = _storable_key(f"{ev['type']}:{ev['action']}:{ev['id']}:{ev.get('date', '')}")
        out.append(InboundEvent("centra", key, name, when, ev))
    return out
