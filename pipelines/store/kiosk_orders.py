"""The kiosk orders' state (`kiosk_orders`, `kiosk_webhooks`; sql/migrations/0014_kiosk_orders.sql).

One row per Cloudshelf order the kiosk flow has read (`pipelines.order_flows.kiosk`): its kind, store, the Centra
order made for it and what was last sent back to Cloudshelf, so a re-run sends only a change. Blocked orders keep
the settings' fingerprint they were blocked under; `requeue_blocked` sets their work items pending again once the
settings differ (the fix was made), so they are retried without anyone touching the work queue.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from pipelines.domain.timeutil import utc_text
from pipelines.store.db import dialect_insert as _insert
from pipelines.store.db import table

TABLE, WEBHOOKS = "kiosk_orders", "kiosk_webhooks"


def _now() -> str:
    return utc_text(datetime.now(UTC))


def get(engine: Engine, order_id: str) -> dict[str, Any] | None:
    tbl = table(engine, TABLE)
    with engine.connect() as conn:
        row = conn.execute(select(tbl).where(tbl.c.order_id == order_id)).first()
    return dict(row._mapping) if row is not None else None


def save(engine: Engine, order_id: str, **values: Any) -> None:
    """Insert or update the order's row with `values` (columns of kiosk_orders)."""
    stamp = _now()
    stmt, _ = _insert(engine, TABLE)
    insert = {"kind": values.get("kind", "unknown"), "movements": values.get("movements", 0), **values,
              "order_id": order_id, "first_seen_at": stamp, "updated_at": stamp}
    changes = {**values, "updated_at": stamp}
    with engine.begin() as conn:
        conn.execute(stmt.values(**insert).on_conflict_do_update(index_elements=["order_id"], set_=changes))


def by_centra_ref(engine: Engine, refs: list[str]) -> dict[str, str]:
    """Centra order number -> the kiosk order made for it (only refs that are kiosk orders)."""
    if not refs:
        return {}
    tbl = table(engine, TABLE)
    with engine.connect() as conn:
        rows = conn.execute(select(tbl.c.centra_order_ref, tbl.c.order_id)
                            .where(tbl.c.centra_order_ref.in_(refs))).all()
    return {str(r): str(o) for r, o in rows}


def requeue_blocked(engine: Engine, flow: str, fingerprint: str) -> list[str]:
    """Work items of kiosk orders blocked under other settings than `fingerprint`: set pending again (once per
    settings change: the fingerprint is updated). Returns the order ids."""
    tbl, work = table(engine, TABLE), table(engine, "order_flow_work")
    stamp = _now()
    with engine.begin() as conn:
        ids = [str(i) for i in conn.execute(select(tbl.c.order_id).where(
            tbl.c.blocked_problem.is_not(None), tbl.c.blocked_fingerprint != fingerprint)).scalars()]
        for start in range(0, len(ids), 400):
            chunk = ids[start:start + 400]
            conn.execute(update(tbl).where(tbl.c.order_id.in_(chunk))
                         .values(blocked_fingerprint=fingerprint, updated_at=stamp))
            conn.execute(update(work).where(work.c.flow == flow, work.c.work_key.in_(chunk),
                                            work.c.status == "exception")
                         .values(status="pending", due_at=stamp, updated_at=stamp))
    return ids


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()  # the URL carries the intake's key: never stored in clear


def webhook_registered(engine: Engine, subject: str, url: str) -> bool:
    tbl = table(engine, WEBHOOKS)
    with engine.connect() as conn:
        return conn.execute(select(tbl.c.subject).where(tbl.c.subject == subject,
                                                        tbl.c.url_hash == _url_hash(url))).first() is not None


def record_webhook(engine: Engine, subject: str, url: str, webhook_id: str | None) -> None:
    stmt, _ = _insert(engine, WEBHOOKS)
    with engine.begin() as conn:
        conn.execute(stmt.values(subject=subject, url_hash=_url_hash(url), webhook_id=webhook_id,
                                 registered_at=_now()).on_conflict_do_nothing(index_elements=["subject", "url_hash"]))
