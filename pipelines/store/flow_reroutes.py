"""Re-routes of ship-from-store orders, kept as their exception records (`ship_from_store_rerouted`).

Each re-route is written before it is carried out (an intent log, upserted on its key `<flow>:<order>:<from>><to>`),
so the recorded re-routes are the flow's memory across runs: which locations were tried and where the order must
end up. The records are the ones the retail operations team sees; resolving them changes nothing here.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, select

from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.flows.exceptions import SHIP_FROM_STORE_REROUTED, Problem
from pipelines.store.db import table
from pipelines.store.inbox import record_exceptions

SOURCE = "order_flows"


def _prefix(flow: str, order_ref: str) -> str:
    return f"{SHIP_FROM_STORE_REROUTED.name}:{flow}:{order_ref}:"


def record_reroute(engine: Engine, flow: str, order_ref: str, problem: Problem) -> str:
    """Record one re-route (idempotent: the same from/to is one record). Returns its key."""
    ev = problem.evidence
    record = ExceptionRecord.of(problem.kind, f"{flow}:{order_ref}:{ev['from']}>{ev['to']}", SOURCE,
                                problem.message, location_id=str(ev["from"]), payload=ev)
    record_exceptions(engine, [record])
    return record.key


def reroutes(engine: Engine, flow: str, order_ref: str) -> list[dict[str, Any]]:
    """The recorded re-routes of an order (their evidence), in the order they were made (`seq`)."""
    exc = table(engine, "exceptions")
    with engine.connect() as conn:
        rows = conn.execute(select(exc.c.payload).where(
            exc.c.exception_key.like(_prefix(flow, order_ref).replace("_", r"\_") + "%", escape="\\"))).scalars().all()
    found = [json.loads(p) for p in rows if p]
    return sorted(found, key=lambda e: int(e.get("seq") or 0))


def last_location(engine: Engine, flow: str, key: str) -> str | None:
    """The location the flow's last run left an order at (its work item's outcome), if any."""
    tbl = table(engine, "order_flow_work")
    with engine.connect() as conn:
        outcome = conn.execute(select(tbl.c.outcome).where(tbl.c.flow == flow, tbl.c.work_key == key)).scalar()
    try:
        found = json.loads(outcome or "{}").get("location")
    except ValueError:
        return None
    return str(found) if found else None
