"""Building Centra webhook deliveries for intake tests (form body, signature headers)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

from pipelines.intake.verify import centra_signature


def centra_form_body(events: list[dict]) -> bytes:
    """Centra's webhook body: form-encoded `payload=<JSON {"events": [...]}>`."""
    return ("payload=" + quote(json.dumps({"events": events}))).encode()


def signed_headers(body: bytes, *, secret: str, t: int | None = None) -> dict:
    """`X-Centra-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>` and the form content type."""
    t = int(time.time()) if t is None else t
    return {"X-Centra-Signature": f"t={t},v1={centra_signature(secret, str(t), body)}",
            "content-type": "application/x-www-form-urlencoded"}
