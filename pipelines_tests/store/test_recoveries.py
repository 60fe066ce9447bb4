"""Lost transactions are dated by their earliest sibling's own business time, whenever the siblings land
(a late publication must not move a lost sale to the next day's finance report)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pipelines.intake.verify import parse_newstore_event
from pipelines.store import make_engine, migrate
from pipelines.store.inbox import store_events
from pipelines.store.recoveries import detect, missing_on

TZ = "Europe/Stockholm"
ORDER = "5b0c9a9e-0000-4000-8000-000000000001"


def _deliver(engine, name: str, payload: dict, published_at: str) -> None:  # noqa: ANN001
    body = json.dumps({"tenant": "t", "name": name, "published_at": published_at, "payload": payload}).encode()
    assert store_events(engine, [parse_newstore_event(body)]) == [True]  # the intake's own parsing and storing


def test_a_late_published_sibling_dates_the_lost_sale_on_its_own_day(tmp_path: Path) -> None:
    """`order.completed` of an 18:30 (Stockholm) sale published after midnight, then `order.created` in a later
    run. Kills: dating by the publication time, keeping the first sibling's time when an earlier one lands later,
    and an amount not taken from a sibling that names it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    migrate(engine)
    now = datetime(2026, 11, 22, tzinfo=UTC)
    _deliver(engine, "order.completed", {"id": ORDER, "completed_at": "2026-11-20T17:30:00Z",
                                         "items": [{"id": "i-1", "product_id": "SKU-1", "status": "complete"}]},
             "2026-11-21T00:15:00Z")
    assert detect(engine, grace_s=120, now=now)[1] == 1
    (row,) = missing_on(engine, "2026-11-20", TZ).itertuples()
    assert (row.transaction_id, row.status, row.evidence, row.amount) == (ORDER, "waiting", '["order.completed"]', None)
    assert missing_on(engine, "2026-11-21", TZ).empty
    _deliver(engine, "order.created", {"id": ORDER, "channel": "SE01", "placed_at": "2026-11-20T17:29:00Z",
                                       "grand_total": 250.0, "currency": "SEK", "items": []}, "2026-11-21T01:00:00Z")
    assert detect(engine, grace_s=120, now=now)[1] == 0  # seen again: updated, not registered twice
    (row,) = missing_on(engine, "2026-11-20", TZ).itertuples()
    assert (row.evidence, row.amount, row.currency) == ('["order.completed", "order.created"]', 250.0, "SEK")
