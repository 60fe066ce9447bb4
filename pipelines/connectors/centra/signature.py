"""Centra webhook deliveries: the one implementation of the `X-Centra-Signature` HMAC, and the body.

`X-Centra-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, the raw body being the
form string `payload=<urlencoded JSON>`. The intake (`pipelines.intake.verify`) and the simulator's
webhook emitter sign and check with `centra_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any


def centra_signature(secret: str, timestamp: str | int, body: str | bytes) -> str:
    """The hex `v1` of `X-Centra-Signature`: HMAC-SHA256(secret, "<timestamp>.<raw body>")."""
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def verify_webhook_signature(secret: str, header: str | None, raw_body: str | bytes, *,
                             tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """Whether `header` signs `raw_body` with `secret` and its `t` is within `tolerance_s` of now
    (constant-time comparison)."""
    if not header:
        return False
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    # bytes: compare_digest raises TypeError on a non-ASCII str (headers arrive latin-1 decoded)
    return hmac.compare_digest(centra_signature(secret, ts, raw_body).encode(), parts.get("v1", "").encode())


def parse_webhook_events(raw_body: str | bytes) -> list[dict[str, Any]]:
    """Events of a webhook body (`payload=<urlencoded JSON>`); IDs only, re-fetch the objects."""
    body = raw_body.decode() if isinstance(raw_body, bytes) else raw_body
    payload = urllib.parse.parse_qs(body).get("payload", ["{}"])[0]
    return list(json.loads(payload).get("events", []))
