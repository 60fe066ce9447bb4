"""Order context for decoding, read from the landed NewStore events (`OrderContext` over the inbox).

Order events are stored under their business key (`order.opened:<order id>[:...]`), so the look-ups
are range scans of the inbox's unique (source, dedup_key) index, not JSON searches.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from pipelines.domain.newstore_events import order_key_prefix, payload_of
from pipelines.domain.stock_movements import CANCEL_EVENT, ORDER_EVENTS
from pipelines.store.db import table


class InboxOrders:
    """Orders and cancellations as landed; a found order is cached for the life of the instance."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._orders: dict[str, dict[str, Any]] = {}
        self._cancelled: dict[str, set[str]] | None = None

    def payloads(self, name: str, order_id: str) -> list[dict[str, Any]]:
        """Payloads of the landed `name` events of the transaction `order_id` (id-keyed events: orders, returns)."""
        inbox = table(self.engine, "inbox_events")
        key = order_key_prefix(name, order_id)
        with self.engine.connect() as conn:
            rows = conn.execute(select(inbox.c.payload).where(
                inbox.c.source == "newstore",
                or_(inbox.c.dedup_key == key,
                    and_(inbox.c.dedup_key >= key + ":", inbox.c.dedup_key < key + ";")),
            ).order_by(inbox.c.id)).scalars().all()
        out = []
        for raw in rows:
            doc = json.loads(raw)
            payload = payload_of(doc) if isinstance(doc, dict) else None
            if isinstance(payload, dict) and str(payload.get("id")) == order_id:
                out.append(payload)
        return out

    def order(self, order_id: str) -> dict[str, Any] | None:
        if not order_id:
            return None
        if order_id not in self._orders:
            for name in ORDER_EVENTS:
                found = self.payloads(name, order_id)
                if found:
                    self._orders[order_id] = found[-1]
                    break
        return self._orders.get(order_id)

    def cancelled_items(self, order_id: str) -> set[str]:
        """Cancellations are rare: all landed ones are read once per instance, not once per sale."""
        if self._cancelled is None:
            self._cancelled = {}
            inbox = table(self.engine, "inbox_events")
            with self.engine.connect() as conn:
                rows = conn.execute(select(inbox.c.payload).where(
                    inbox.c.source == "newstore", inbox.c.dedup_key >= CANCEL_EVENT + ":",
                    inbox.c.dedup_key < CANCEL_EVENT + ";")).scalars().all()
            for raw in rows:
                doc = json.loads(raw)
                payload = doc.get("payload", doc) if isinstance(doc, dict) else None
                if isinstance(payload, dict) and payload.get("id") is not None:
                    self._cancelled.setdefault(str(payload["id"]), set()).update(
                        str(i.get("id")) for i in payload.get("items") or [] if isinstance(i, dict))
        return self._cancelled.get(order_id, set())
