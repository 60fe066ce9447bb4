"""The sync's share of Centra's rate limits, kept in the store of record (`stock_sync_rate_buckets`).

Centra's limits are per environment, shared by every integration on it. A governor that lived only in
one run's memory restarted each run from what Centra said was left, so over a long peak the sync took
Centra's whole refill, not its share. Here the sync's own token buckets outlive runs and are shared by
replicas: each spend refills and takes in one UPDATE (atomic on SQLite and PostgreSQL), so two
processes spending at once cannot both take the same token. Centra's `rateLimits` stays the ceiling
(the governor's mirror of Centra's buckets). Times are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, text

_BLOCKED = ("BLOCKED", 0.0)
# The level refilled to :now and capped, in portable SQL (no LEAST/MIN(a, b) difference between the
# dialects); a row stamped after :now (another host's clock ahead of ours) is taken as it stands.
_REFILLED = ("CASE WHEN at >= :now THEN level WHEN level + (:now - at) * rate > cap THEN cap "
             "ELSE level + (:now - at) * rate END")
_AT = "CASE WHEN at > :now THEN at ELSE :now END"


class RateState:
    """`SharedBuckets` (pipelines.domain.sync.governor) on the store of record."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def adopt(self, key: tuple[str, float], cap: float, rate: float, level: float, now: float) -> float:
        params = {"kind": key[0], "interval_s": key[1], "cap": cap, "rate": rate, "level": level, "now": now}
        with self.engine.begin() as conn:
            updated = conn.execute(text(
                f"UPDATE stock_sync_rate_buckets SET level = {_REFILLED}, at = {_AT} "
                "WHERE kind = :kind AND interval_s = :interval_s"), params).rowcount
            if not updated:
                conn.execute(text(
                    "INSERT INTO stock_sync_rate_buckets (kind, interval_s, cap, rate, level, at) "
                    "VALUES (:kind, :interval_s, :cap, :rate, :level, :now)"), params)
                return level
            # a new quota (another tier) takes effect: the level never exceeds the new cap
            conn.execute(text(
                "UPDATE stock_sync_rate_buckets SET cap = :cap, rate = :rate, "
                "level = CASE WHEN level > :cap THEN :cap ELSE level END "
                "WHERE kind = :kind AND interval_s = :interval_s"), params)
            return float(conn.execute(text(
                "SELECT level FROM stock_sync_rate_buckets WHERE kind = :kind AND interval_s = :interval_s"),
                params).scalar_one())

    def take(self, costs: Mapping[tuple[str, float], float], now: float) -> dict[tuple[str, float], float]:
        levels = {}
        with self.engine.begin() as conn:
            for (kind, interval_s), tokens in costs.items():
                params = {"kind": kind, "interval_s": interval_s, "tokens": tokens, "now": now}
                levels[(kind, interval_s)] = float(conn.execute(text(
                    f"UPDATE stock_sync_rate_buckets SET level = {_REFILLED} - :tokens, at = {_AT} "
                    "WHERE kind = :kind AND interval_s = :interval_s RETURNING level"), params).scalar_one())
        return levels

    def levels(self, now: float) -> tuple[dict[tuple[str, float], float], float]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                f"SELECT kind, interval_s, level AS stored, {_REFILLED} AS level FROM stock_sync_rate_buckets"),
                {"now": now}).all()
        levels = {(r.kind, float(r.interval_s)): float(r.level) for r in rows
                  if (r.kind, float(r.interval_s)) != _BLOCKED}
        blocked = next((float(r.stored) for r in rows if (r.kind, float(r.interval_s)) == _BLOCKED), 0.0)
        return levels, blocked

    def block(self, until: float) -> None:
        params = {"kind": _BLOCKED[0], "interval_s": _BLOCKED[1], "until": until}
        with self.engine.begin() as conn:
            updated = conn.execute(text(
                "UPDATE stock_sync_rate_buckets SET level = CASE WHEN level > :until THEN level ELSE :until END "
                "WHERE kind = :kind AND interval_s = :interval_s"), params).rowcount
            if not updated:
                conn.execute(text(
                    "INSERT INTO stock_sync_rate_buckets (kind, interval_s, cap, rate, level, at) "
                    "VALUES (:kind, :interval_s, 0, 0, :until, :until)"), params)
