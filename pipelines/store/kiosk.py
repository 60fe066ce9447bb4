"""What was published to the Cloudshelf kiosks (tables of sql/migrations/0013_kiosk_availability.sql): the stock
level per (location, SKU), the catalogue's variants and the locations, each with what was sent last; and the daily
SKU audit's findings. Written by `pipelines.kiosk.publish` and the kiosk assets (pipelines/defs/kiosk/)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select, tuple_

from pipelines.domain.timeutil import utc_text
from pipelines.store.db import table
from pipelines.store.inbox import _insert
from pipelines.store.partitions import read_partition, replace_partitions

STOCK_LEVELS, CATALOG, LOCATIONS, AUDIT = "kiosk_stock_levels", "kiosk_catalog", "kiosk_locations", "kiosk_sku_audit"
AUDIT_COLUMNS = ["finding_type", "severity", "owner_team", "sku", "detail", "kiosk_variant_id", "playbook",
                 "audited_at"]
_CHUNK = 500


def now_text() -> str:
    return utc_text(datetime.now(UTC))


def _upsert(engine: Engine, name: str, rows: list[dict[str, Any]], keys: list[str]) -> int:
    if not rows:
        return 0
    stmt, _ = _insert(engine, name)
    update = [c for c in rows[0] if c not in keys]
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: getattr(stmt.excluded, c) for c in update})
    with engine.begin() as conn:
        for start in range(0, len(rows), _CHUNK):
            conn.execute(stmt, rows[start:start + _CHUNK])
    return len(rows)


# ------------------------------------------------------------------ stock levels


def published_levels(engine: Engine, pairs: Iterable[tuple[str, str]] | None = None) -> dict[tuple[str, str], int]:
    """(location id, SKU) -> the quantity last published; only `pairs` when given (absent: never published)."""
    t = table(engine, STOCK_LEVELS)
    query = select(t.c.location_id, t.c.sku, t.c.quantity)
    out: dict[tuple[str, str], int] = {}
    with engine.connect() as conn:
        if pairs is None:
            return {(r.location_id, r.sku): int(r.quantity) for r in conn.execute(query)}
        wanted = sorted(set(pairs))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            rows = conn.execute(query.where(tuple_(t.c.location_id, t.c.sku).in_(chunk)))
            out.update({(r.location_id, r.sku): int(r.quantity) for r in rows})
    return out


def record_levels(engine: Engine, levels: Mapping[tuple[str, str], int], at: str | None = None) -> int:
    """The quantities Cloudshelf confirmed, as published now."""
    at = at or now_text()
    return _upsert(engine, STOCK_LEVELS, [{"location_id": loc, "sku": sku, "quantity": int(q), "published_at": at}
                                          for (loc, sku), q in sorted(levels.items())], ["location_id", "sku"])


def stock_levels_frame(engine: Engine) -> pd.DataFrame:
    t = table(engine, STOCK_LEVELS)
    with engine.connect() as conn:
        return pd.read_sql(select(t).order_by(t.c.location_id, t.c.sku), conn)


# ------------------------------------------------------------------ catalogue and locations


def published_variants(engine: Engine, skus: Iterable[str] | None = None) -> dict[str, str]:
    """SKU -> the fingerprint of the variant last published (only `skus` when given)."""
    t = table(engine, CATALOG)
    query = select(t.c.sku, t.c.fingerprint)
    with engine.connect() as conn:
        if skus is None:
            return {r.sku: r.fingerprint for r in conn.execute(query)}
        wanted = sorted(set(skus))
        out: dict[str, str] = {}
        for start in range(0, len(wanted), _CHUNK):
            rows = conn.execute(query.where(t.c.sku.in_(wanted[start:start + _CHUNK])))
            out.update({r.sku: r.fingerprint for r in rows})
        return out


def record_variants(engine: Engine, variants: Iterable[Any], at: str | None = None) -> int:
    """Variants Cloudshelf took (`CatalogVariant`s)."""
    at = at or now_text()
    return _upsert(engine, CATALOG, [{"sku": v.sku, "product_id": str(v.product_id), "fingerprint": v.fingerprint,
                                      "purchasable": bool(v.purchasable), "published_at": at} for v in variants],
                   ["sku"])


def published_locations(engine: Engine) -> dict[str, str]:
    """Location id -> the fingerprint of the location last published."""
    t = table(engine, LOCATIONS)
    with engine.connect() as conn:
        return {r.location_id: r.fingerprint for r in conn.execute(select(t.c.location_id, t.c.fingerprint))}


def record_locations(engine: Engine, fingerprints: Mapping[str, str], at: str | None = None) -> int:
    at = at or now_text()
    return _upsert(engine, LOCATIONS, [{"location_id": k, "fingerprint": v, "published_at": at}
                                       for k, v in sorted(fingerprints.items())], ["location_id"])


# ------------------------------------------------------------------ the SKU audit


def write_audit(engine: Engine, business_date: str, findings: pd.DataFrame) -> int:
    """Replace the day's findings (delete, then insert, one transaction)."""
    return replace_partitions(engine, business_date, {AUDIT: findings[AUDIT_COLUMNS]})[AUDIT]


def read_audit(engine: Engine, business_date: str) -> pd.DataFrame:
    return read_partition(engine, AUDIT, business_date)
