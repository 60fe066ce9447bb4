"""Table rows the daily and the month pages share: the rollup rows by finding type and by team, and the
row and number-cell shapes of their data-testid contract (see the package docstring)."""

from __future__ import annotations

from typing import Any

from pipelines.reporting.finance_report.fmt import _e, badge, fmt_int, fmt_money, team_label, type_label


def row(kind: str, attr: str, key: Any, *cells: str) -> str:
    """A `<tr>` with data-testid `{kind}-row` and `data-{attr}` = `key`; `cells` are complete `<td>` HTML."""
    return f'<tr data-testid="{kind}-row" data-{attr}="{_e(key)}">{"".join(cells)}</tr>'


def num(testid: str, value_html: str) -> str:
    """A right-aligned cell with its data-testid."""
    return f'<td class="num" data-testid="{testid}">{value_html}</td>'


def count_value(kind: str, r: Any, base: str) -> str:
    """A rollup row's `count` and `value_at_risk_base` cells (`{kind}-count`, `{kind}-value`)."""
    return num(f"{kind}-count", fmt_int(r.count)) + num(f"{kind}-value", fmt_money(r.value_at_risk_base, base))


def type_row(r: Any, base: str, *extra: str) -> str:
    """A finding type's rollup row: label and code, severity, owner team, count, value, then `extra` cells."""
    return row("type", "type", r.finding_type,
               f"<td>{_e(type_label(r.finding_type))}<div><code>{_e(r.finding_type)}</code></div></td>",
               f"<td>{badge(r.severity)}</td><td>{_e(team_label(r.owner_team))}</td>",
               count_value("type", r, base), *extra)


def team_row(r: Any, base: str) -> str:
    """An owner team's rollup row: team, count, value."""
    return row("team", "team", r.owner_team, f"<td>{_e(team_label(r.owner_team))}</td>", count_value("team", r, base))
