"""State of the customer sync (tables of sql/migrations/0012_customer_links.sql): the link between a customer's
commerce id and store id with what was last synced, and the read cursors. Written by
`pipelines.customers.sync` (asset ``customer_links``, pipelines/defs/customers/)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, or_, select

from pipelines.domain.customers import values_hash
from pipelines.domain.timeutil import utc_text
from pipelines.store.db import table
from pipelines.store.inbox import _insert

COMMERCE_SIDE, STORE_SIDE, ORDERS_SIDE = "commerce", "store", "orders"  # cursor names


@dataclass(frozen=True)
class CustomerLink:
    commerce_id: str
    store_id: str
    email: str
    commerce_version: str | None
    store_version: str | None
    synced_values: dict[str, str | None]
    synced_hash: str


def _now() -> str:
    return utc_text(datetime.now(UTC))


def _link(row: Mapping) -> CustomerLink:
    return CustomerLink(commerce_id=row["commerce_id"], store_id=row["store_id"], email=row["email"],
                        commerce_version=row["commerce_version"], store_version=row["store_version"],
                        synced_values=json.loads(row["synced_values"]), synced_hash=row["synced_hash"])


def find_link(engine: Engine, *, commerce_id: str | None = None, store_id: str | None = None) -> CustomerLink | None:
    """The link holding either id (None when neither is linked)."""
    t = table(engine, "customer_links")
    conds = []
    if commerce_id is not None:
        conds.append(t.c.commerce_id == commerce_id)
    if store_id is not None:
        conds.append(t.c.store_id == store_id)
    if not conds:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(t).where(or_(*conds)).limit(1)).mappings().first()
    return _link(row) if row else None


def find_link_by_email(engine: Engine, email: str) -> CustomerLink | None:
    """The link of a normalised e-mail (None when none, or when several pairs share it)."""
    t = table(engine, "customer_links")
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.email == email).limit(2)).mappings().all()
    return _link(rows[0]) if len(rows) == 1 else None


def save_link(engine: Engine, *, commerce_id: str, store_id: str, email: str, commerce_version: str | None,
              store_version: str | None, synced_values: Mapping[str, str | None]) -> None:
    """Insert or update the link of a pair (keyed by the commerce id; a store id moves with it)."""
    now = _now()
    values = dict(synced_values)
    row = {"commerce_id": commerce_id, "store_id": store_id, "email": email, "commerce_version": commerce_version,
           "store_version": store_version, "synced_values": json.dumps(values, sort_keys=True),
           "synced_hash": values_hash(values), "linked_at": now, "synced_at": now}
    stmt, t = _insert(engine, "customer_links")
    update = ("store_id", "email", "commerce_version", "store_version", "synced_values", "synced_hash", "synced_at")
    with engine.begin() as conn:
        conn.execute(stmt.values(**row).on_conflict_do_update(
            index_elements=["commerce_id"], set_={k: getattr(stmt.excluded, k) for k in update}))


def link_count(engine: Engine) -> int:
    t = table(engine, "customer_links")
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t)).scalar_one())


def links(engine: Engine) -> list[CustomerLink]:
    t = table(engine, "customer_links")
    with engine.connect() as conn:
        return [_link(r) for r in conn.execute(select(t).order_by(t.c.commerce_id)).mappings()]


def cursor(engine: Engine, side: str) -> str | None:
    t = table(engine, "customer_sync_cursors")
    with engine.connect() as conn:
        return conn.execute(select(t.c.cursor_at).where(t.c.side == side)).scalar_one_or_none()


def set_cursor(engine: Engine, side: str, value: str | None) -> None:
    """Move a side's cursor forward (never back)."""
    if value is None:
        return
    current = cursor(engine, side)
    if current is not None and current >= value:
        return
    stmt, _ = _insert(engine, "customer_sync_cursors")
    with engine.begin() as conn:
        conn.execute(stmt.values(side=side, cursor_at=value, updated_at=_now()).on_conflict_do_update(
            index_elements=["side"], set_={"cursor_at": stmt.excluded.cursor_at, "updated_at": stmt.excluded.updated_at}))
