"""Shared by the Business Central tests: the tenant and environment they address, and a clock they move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TENANT = "t1"
ENV = "production"


class FakeClock:
    """The simulator's and the client's clock: `sleep` records the wait and moves time on (no real sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class DateClock:
    """The simulator state's wall clock (`BusinessCentralState(clock=...)`), moved by hand."""

    def __init__(self, start: datetime = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
