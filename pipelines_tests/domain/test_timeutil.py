"""Time helpers: durations in the units people read."""

from __future__ import annotations

import pytest

from pipelines.domain.timeutil import human_duration


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "n/a"), (0.84, "0.8 s"), (9.94, "9.9 s"), (9.96, "10 s"), (42, "42 s"), (59.6, "1 min 00 s"),
    (192, "3 min 12 s"), (3599.6, "1 h 00 min"), (7500, "2 h 05 min"), (86399, "23 h 59 min"),
    (251823, "2 d 21 h"), (-5, "-5.0 s"),
])
def test_durations_read_in_human_units(seconds, text) -> None:
    assert human_duration(seconds) == text
