"""The ERP order-to-cash flows' state (`erp_order_postings`, `erp_shipments_applied`, `erp_cursors`;
sql/migrations/0016_erp_orders.sql), and the ERP shipments landed in the inbox.

A posting row says which ERP sales order a commerce order became (and how its lines map back), or why it is
blocked and under which mapping fingerprint: `requeue_blocked` sets blocked `erp_order` work pending again once
the estate's mapping differs. An applied row says an ERP shipment became a commerce shipment (once).

ERP shipments are polled (`poll_shipments`) and each version lands in the inbox as `erp.shipment` (source
`businesscentral`, dedup key `<shipment id>:<lastModifiedDateTime>`, the shipment as JSON): the order flows'
registration turns it into `erp_shipment` work and the flow reads the shipment back from there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update

from pipelines.domain.erp.model import ErpShipment, ErpShipmentLine
from pipelines.domain.erp.shipments import MappedLine
from pipelines.domain.timeutil import normalise_time, parse_time, utc_text
from pipelines.intake.verify import InboundEvent
from pipelines.store.db import dialect_insert as _insert
from pipelines.store.db import table
from pipelines.store.inbox import store_events

POSTINGS, APPLIED, CURSORS = "erp_order_postings", "erp_shipments_applied", "erp_cursors"
POSTED, BLOCKED = "posted", "blocked"
SOURCE = "businesscentral"
SHIPMENT_EVENT = "erp.shipment"
SHIPMENT_CURSOR = "erp_shipments"
FIRST_POLL_LOOKBACK = timedelta(days=1)  # the first poll (no cursor yet) looks this far back


def _now() -> str:
    return utc_text(datetime.now(UTC))


# -- postings ------------------------------------------------------------------------------------------------------

def posting(engine: Engine, order_ref: str) -> dict[str, Any] | None:
    tbl = table(engine, POSTINGS)
    with engine.connect() as conn:
        row = conn.execute(select(tbl).where(tbl.c.order_ref == order_ref)).first()
    return dict(row._mapping) if row is not None else None


def _upsert(engine: Engine, order_ref: str, values: dict[str, Any]) -> None:
    stamp = _now()
    stmt, _ = _insert(engine, POSTINGS)
    insert = {"erp_orders_found": 0, **values, "order_ref": order_ref, "first_seen_at": stamp, "updated_at": stamp}
    with engine.begin() as conn:
        conn.execute(stmt.values(**insert).on_conflict_do_update(index_elements=["order_ref"],
                                                                 set_={**values, "updated_at": stamp}))


def record_posted(engine: Engine, order_ref: str, *, erp_order_id: str, erp_order_number: str, found: int,
                  customer_number: str, currency: str, total_including_tax: float, fingerprint: str,
                  line_map: Iterable[tuple[int, str | None, int]]) -> None:
    """The order is in the ERP (`found`: how many ERP orders carry its reference; 1 when we just created it)."""
    _upsert(engine, order_ref, {
        "status": POSTED, "erp_order_id": erp_order_id, "erp_order_number": erp_order_number,
        "erp_orders_found": found, "customer_number": customer_number, "currency": currency,
        "total_including_tax": round(total_including_tax, 2), "posted_at": _now(), "mapping_fingerprint": fingerprint,
        "line_map": json.dumps([{"sequence": s, "line_id": lid, "per_unit": k} for s, lid, k in line_map]),
        "blocked_problems": None})


def record_blocked(engine: Engine, order_ref: str, problems: Iterable[str], fingerprint: str) -> None:
    _upsert(engine, order_ref, {"status": BLOCKED, "mapping_fingerprint": fingerprint,
                                "blocked_problems": ",".join(sorted(set(problems)))[:255]})


def line_map_of(row: dict[str, Any]) -> dict[int, MappedLine | None]:
    """The posting's ERP line sequence -> its commerce line (None: the shipping line)."""
    out: dict[int, MappedLine | None] = {}
    for entry in json.loads(row.get("line_map") or "[]"):
        lid = entry.get("line_id")
        out[int(entry["sequence"])] = MappedLine(str(lid), int(entry.get("per_unit") or 1)) if lid else None
    return out


def requeue_blocked(engine: Engine, flow: str, fingerprint: str) -> list[str]:
    """Work items of orders blocked under another mapping than `fingerprint`: set pending again (once per mapping
    change: the row takes the new fingerprint). Returns the order refs."""
    tbl, work = table(engine, POSTINGS), table(engine, "order_flow_work")
    stamp = _now()
    with engine.begin() as conn:
        refs = [str(r) for r in conn.execute(select(tbl.c.order_ref).where(
            tbl.c.status == BLOCKED, tbl.c.mapping_fingerprint != fingerprint)).scalars()]
        for start in range(0, len(refs), 400):
            chunk = refs[start:start + 400]
            conn.execute(update(tbl).where(tbl.c.order_ref.in_(chunk))
                         .values(mapping_fingerprint=fingerprint, updated_at=stamp))
            conn.execute(update(work).where(work.c.flow == flow, work.c.work_key.in_(chunk),
                                            work.c.status == "exception")
                         .values(status="pending", due_at=stamp, updated_at=stamp))
    return refs


def requeue_shipments(engine: Engine, flow: str, order_ref: str) -> list[str]:
    """Work items of the order's landed ERP shipments that stopped as exceptions (e.g. unmatched: the shipment was
    read before the order's posting was recorded): set pending again. Returns the shipment ids."""
    ids = [s.shipment_id for s in landed_shipments(engine, external_ref=order_ref)]
    if not ids:
        return []
    work, stamp = table(engine, "order_flow_work"), _now()
    with engine.begin() as conn:
        conn.execute(update(work).where(work.c.flow == flow, work.c.work_key.in_(ids), work.c.status == "exception")
                     .values(status="pending", due_at=stamp, updated_at=stamp))
    return ids


def counts(engine: Engine) -> dict[str, int]:
    """Postings by status, duplicated ERP orders, and shipments applied (for the assets' metadata)."""
    post, applied = table(engine, POSTINGS), table(engine, APPLIED)
    with engine.connect() as conn:
        by = dict(conn.execute(select(post.c.status, func.count()).group_by(post.c.status)).all())
        dup = conn.execute(select(func.count()).where(post.c.erp_orders_found > 1)).scalar()
        shipped = conn.execute(select(func.count()).select_from(applied)).scalar()
    return {"posted": int(by.get(POSTED, 0)), "blocked": int(by.get(BLOCKED, 0)), "duplicated": int(dup or 0),
            "shipments_applied": int(shipped or 0)}


# -- shipments applied -----------------------------------------------------------------------------------------------

def applied(engine: Engine, shipment_id: str) -> dict[str, Any] | None:
    tbl = table(engine, APPLIED)
    with engine.connect() as conn:
        row = conn.execute(select(tbl).where(tbl.c.shipment_id == shipment_id)).first()
    return dict(row._mapping) if row is not None else None


def record_applied(engine: Engine, shipment: ErpShipment, order_ref: str, commerce_shipment_id: str | None,
                   lines: Iterable[tuple[str, int]]) -> None:
    stmt, _ = _insert(engine, APPLIED)
    with engine.begin() as conn:
        conn.execute(stmt.values(
            shipment_id=shipment.shipment_id, shipment_number=shipment.number, order_ref=order_ref,
            erp_order_number=shipment.order_number, commerce_shipment_id=commerce_shipment_id,
            tracking_number=shipment.tracking_number, carrier=shipment.carrier,
            lines=json.dumps([list(x) for x in lines]), applied_at=_now()
        ).on_conflict_do_nothing(index_elements=["shipment_id"]))


# -- ERP shipments in the inbox ---------------------------------------------------------------------------------

def shipment_json(shipment: ErpShipment) -> dict[str, Any]:
    return asdict(shipment)


def shipment_of(doc: dict[str, Any]) -> ErpShipment:
    lines = tuple(ErpShipmentLine(**ln) for ln in doc.get("lines") or [])
    return ErpShipment(**{**{k: v for k, v in doc.items() if k != "lines"}, "lines": lines})


def landed_shipments(engine: Engine, *, shipment_id: str | None = None,
                     external_ref: str | None = None) -> list[ErpShipment]:
    """The newest landed version of each ERP shipment with this id or of this order (external reference)."""
    inbox = table(engine, "inbox_events")
    needle = shipment_id or external_ref or ""
    with engine.connect() as conn:
        rows = conn.execute(select(inbox.c.payload).where(
            inbox.c.source == SOURCE, inbox.c.event_name == SHIPMENT_EVENT,
            inbox.c.payload.like(f"%{needle}%")).order_by(inbox.c.id)).scalars().all()
    newest: dict[str, ErpShipment] = {}
    for payload in rows:
        s = shipment_of(json.loads(payload))
        if (shipment_id is None or s.shipment_id == shipment_id) and (
                external_ref is None or s.external_ref == external_ref):
            newest[s.shipment_id] = s
    return list(newest.values())


def get_text_cursor(engine: Engine, name: str) -> str | None:
    tbl = table(engine, CURSORS)
    with engine.connect() as conn:
        return conn.execute(select(tbl.c.value).where(tbl.c.name == name)).scalar()


def set_text_cursor(engine: Engine, name: str, value: str) -> None:
    stmt, _ = _insert(engine, CURSORS)
    with engine.begin() as conn:
        conn.execute(stmt.values(name=name, value=value, updated_at=_now()).on_conflict_do_update(
            index_elements=["name"], set_={"value": value, "updated_at": _now()}))


@dataclass
class ShipmentsPoll:
    fetched: int = 0
    landed: int = 0  # new inbox rows (the rest were there already)
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)


def poll_shipments(engine: Engine, erp: Any, overlap_s: float, now: datetime) -> ShipmentsPoll:
    """Land the ERP shipments changed since the stored cursor minus `overlap_s` (the ERP can publish a change with
    an older timestamp than a poll that ran after it) as `erp.shipment`, each version once; the cursor becomes the
    newest `modified_at` seen."""
    cursor = get_text_cursor(engine, SHIPMENT_CURSOR)
    since = utc_text((parse_time(cursor) if cursor else now - FIRST_POLL_LOOKBACK) - timedelta(seconds=overlap_s))
    shipments = list(erp.shipments_modified_since(since))
    rows = [InboundEvent(SOURCE, f"{s.shipment_id}:{s.modified_at or ''}", SHIPMENT_EVENT, _time(s.modified_at),
                         shipment_json(s)) for s in shipments]
    stored = store_events(engine, rows) if rows else []
    newest = max((_time(s.modified_at) or "" for s in shipments), default="")
    if newest and (cursor is None or newest > cursor):
        set_text_cursor(engine, SHIPMENT_CURSOR, newest)
        cursor = newest
    return ShipmentsPoll(fetched=len(shipments), landed=sum(1 for s in stored if s), cursor=cursor)


def _time(value: str | None) -> str | None:
    try:
        return normalise_time(value) if value else None
    except (TypeError, ValueError):
        return None
