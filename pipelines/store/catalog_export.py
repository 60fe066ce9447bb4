"""State of the catalog export to NewStore (tables of sql/migrations/0010_catalog_export.sql): the per-SKU
fingerprint last sent and its outcome, and the log of import jobs. Written by the asset
``newstore_catalog_export`` (pipelines/defs/catalog/)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from pipelines.domain.timeutil import utc_text
from pipelines.store.db import table
from pipelines.store.inbox import _insert

SENT, ACCEPTED, REJECTED, HELD = "sent", "accepted", "rejected", "held"


def _now() -> str:
    return utc_text(datetime.now(UTC))


def sent_fingerprints(engine: Engine) -> dict[str, str]:
    """SKU -> the fingerprint last sent (SKUs never sent are absent)."""
    t = table(engine, "catalog_export_skus")
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.sku, t.c.fingerprint).where(t.c.fingerprint.is_not(None))).all()
    return {r.sku: r.fingerprint for r in rows}


def sku_states(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every SKU's row (status, fingerprint, reason, import id, times)."""
    t = table(engine, "catalog_export_skus")
    with engine.connect() as conn:
        return {r.sku: dict(r._mapping) for r in conn.execute(select(t))}


def _upsert(engine: Engine, rows: Iterable[dict[str, Any]], update: tuple[str, ...],
            keep_first: tuple[str, ...] = ()) -> int:
    """Insert or update rows of the same columns in one statement; `keep_first` columns keep a value once set."""
    rows = list(rows)
    if not rows:
        return 0
    stmt, t = _insert(engine, "catalog_export_skus")
    set_ = {k: getattr(stmt.excluded, k) for k in update}
    set_.update({k: func.coalesce(t.c[k], getattr(stmt.excluded, k)) for k in keep_first})
    with engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_update(index_elements=["sku"], set_=set_), rows)
    return len(rows)


def record_held(engine: Engine, held: Mapping[str, str]) -> int:
    """SKUs held back (SKU -> reason); their last sent fingerprint is kept."""
    now = _now()
    return _upsert(engine, ({"sku": sku, "status": HELD, "reason": reason, "updated_at": now}
                            for sku, reason in held.items()), ("status", "reason", "updated_at"))


def record_sent(engine: Engine, import_id: str, skus: Iterable[str]) -> int:
    """SKUs in the job just started. Their fingerprint is recorded only with the job's outcome, so a run that
    dies before the job ends sends them again (an import is an upsert: sending twice is harmless)."""
    now = _now()
    return _upsert(engine, ({"sku": sku, "status": SENT, "reason": None, "import_id": import_id,
                             "last_sent_at": now, "updated_at": now} for sku in skus),
                   ("status", "reason", "import_id", "last_sent_at", "updated_at"))


def record_outcome(engine: Engine, import_id: str, fingerprints: Mapping[str, str],
                   rejected: Mapping[str, str]) -> None:
    """The finished job's outcome per sent SKU (SKU -> fingerprint sent): accepted, or rejected with
    NewStore's reason. Either way the fingerprint is recorded: unchanged, the SKU is not sent again."""
    now = _now()
    _upsert(engine, ({"sku": sku, "fingerprint": fp, "status": REJECTED if sku in rejected else ACCEPTED,
                      "reason": rejected.get(sku), "import_id": import_id, "updated_at": now,
                      "accepted_at": None if sku in rejected else now}
                     for sku, fp in fingerprints.items()),
            ("fingerprint", "status", "reason", "import_id", "updated_at"), keep_first=("accepted_at",))


def log_job(engine: Engine, *, import_id: str, run_id: str | None, mode: str, products_sent: int,
            prices_sent: int) -> None:
    t = table(engine, "catalog_export_jobs")
    with engine.begin() as conn:
        conn.execute(t.insert().values(import_id=import_id, run_id=run_id, mode=mode, created_at=_now(),
                                       state="created", products_sent=products_sent, prices_sent=prices_sent,
                                       skus_rejected=0))


def finish_job(engine: Engine, import_id: str, *, state: str, reason: str | None, completed_at: str | None,
               skus_rejected: int) -> None:
    t = table(engine, "catalog_export_jobs")
    with engine.begin() as conn:
        conn.execute(t.update().where(t.c.import_id == import_id).values(
            state=state, reason=reason, completed_at=completed_at or _now(), skus_rejected=skus_rejected))


def accepted_by(engine: Engine, until: str) -> list[str]:
    """SKUs NewStore's catalog holds by `until` (UTC text): first accepted before then (a later hold or refusal
    of a changed version does not take back what NewStore took)."""
    t = table(engine, "catalog_export_skus")
    with engine.connect() as conn:
        return sorted(conn.execute(select(t.c.sku).where(t.c.accepted_at < until)).scalars().all())


def jobs(engine: Engine) -> list[dict[str, Any]]:
    t = table(engine, "catalog_export_jobs")
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.created_at))]
