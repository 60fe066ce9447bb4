"""The inline SVG line chart of the drift value over the last 30 business days (no script, no network)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd

from pipelines.reporting.finance_report.fmt import _e, fmt_amount, money_attr

HISTORY_DAYS = 30
_W, _H = 560, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 24, 18, 44


def _nice_step(vmax: float, ticks: int = 4) -> float:
    if vmax <= 0:
        return 1.0
    raw = vmax / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _axis_label(v: float) -> str:
    if abs(v) >= 1_000_000:
        return f"{v / 1_000_000:,.2f}".rstrip("0").rstrip(".") + "M"
    if abs(v) >= 10_000:
        return f"{v / 1_000:,.2f}".rstrip("0").rstrip(".") + "k"
    return f"{v:,.2f}".rstrip("0").rstrip(".")


class _Plot:
    """The plot area's scales: x by day over the 30-day window, y from 0 to a rounded maximum."""

    def __init__(self, day: date, vmax: float):
        self.first = day - timedelta(days=HISTORY_DAYS - 1)
        self.pw, self.ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
        self.step = _nice_step(vmax)
        self.nticks = max(1, math.ceil(vmax / self.step))
        self.ymax = self.step * self.nticks

    def x(self, d: date) -> float:
        return _LEFT + self.pw * (d - self.first).days / (HISTORY_DAYS - 1)

    def y(self, v: float) -> float:
        return _TOP + self.ph * (1 - v / self.ymax)


def _axes(p: _Plot, base_currency: str) -> list[str]:
    out = []
    for i in range(p.nticks + 1):
        v = p.step * i
        yy = p.y(v)
        out.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                   f'<text class="axis" x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{_e(_axis_label(v))}</text>')
    mid = _TOP + p.ph / 2
    out.append(f'<text class="axis" x="12" y="{mid:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 12 {mid:.1f})">Drift value ({_e(base_currency)})</text>')
    for i in range(HISTORY_DAYS):
        d = p.first + timedelta(days=i)
        xx = p.x(d)
        out.append(f'<line stroke="#b9c0c9" x1="{xx:.1f}" x2="{xx:.1f}" y1="{_TOP + p.ph}" y2="{_TOP + p.ph + 4}"/>')
        if (HISTORY_DAYS - 1 - i) % 7 == 0:
            out.append(f'<text class="axis" x="{xx:.1f}" y="{_TOP + p.ph + 18}" text-anchor="middle">'
                       f'{d.strftime("%d %b")}</text>')
    out.append(f'<line stroke="#8a94a1" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_TOP + p.ph}" y2="{_TOP + p.ph}"/>'
               f'<text class="axis" x="{_LEFT + p.pw / 2:.1f}" y="{_H - 6}" text-anchor="middle">Business day</text>')
    return out


def _lines(p: _Plot, pts: list[tuple[date, float, int]]) -> list[str]:
    """One polyline per run of consecutive days (a day without a row breaks the line)."""
    out: list[str] = []
    segment: list[str] = []
    prev: date | None = None
    for d, v, _ in pts:
        if prev is not None and (d - prev).days != 1:
            if len(segment) > 1:
                out.append(f'<polyline class="line" points="{" ".join(segment)}"/>')
            segment = []
        segment.append(f"{p.x(d):.1f},{p.y(v):.1f}")
        prev = d
    if len(segment) > 1:
        out.append(f'<polyline class="line" points="{" ".join(segment)}"/>')
    return out


def drift_chart_svg(history: pd.DataFrame, day: date, base_currency: str) -> str:
    """Inline SVG line chart of drift_value_base over the 30 days ending on ``day`` (gaps = days with no row)."""
    vals = history["drift_value_base"].astype(float)
    p = _Plot(day, float(vals.max()) if len(vals) else 0.0)
    out = [f'<svg data-testid="drift-chart" viewBox="0 0 {_W} {_H}" role="img" aria-labelledby="chart-title" '
           f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">Drift value ({_e(base_currency)}) per '
           f"business day, {p.first.isoformat()} to {day.isoformat()}</title>"]
    out += _axes(p, base_currency)
    pts = [(date.fromisoformat(r.business_date), float(r.drift_value_base), int(r.findings))
           for r in history.itertuples(index=False)]
    out += _lines(p, pts)
    for d, v, n in pts:
        today = d == day
        amount = fmt_amount(v, base_currency)
        tip = f"{d.isoformat()}: drift value {amount} {base_currency} ({n:,} findings)"
        out.append(f'<circle class="pt{" today" if today else ""}" data-testid="chart-point" '
                   f'data-date="{d.isoformat()}" data-value="{money_attr(v, base_currency)}" cx="{p.x(d):.1f}" '
                   f'cy="{p.y(v):.1f}" r="{4.5 if today else 3.5}"><title>{_e(tip)}</title></circle>')
        if today:
            out.append(f'<text class="vlabel" data-testid="chart-today-value" x="{p.x(d) - 8:.1f}" '
                       f'y="{max(p.y(v) - 10, 12):.1f}" text-anchor="end">{_e(amount)} {_e(base_currency)}</text>')
    out.append("</svg>")
    return "".join(out)
