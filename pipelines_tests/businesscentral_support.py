"""Shared by the Business Central tests: the tenant and environment they address, and a clock they move by hand."""

from __future__ import annotations

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
