"""The month rollup page: headline, by day (linking to the daily pages), by finding type (with the type's owner team
and playbook, so a month-end reader knows who acts and how, whichever rule family raised it), by team."""

from __future__ import annotations

import pandas as pd

from pipelines.domain.reconciliation.model import FINDING_TYPES
from pipelines.reporting.finance_report.fmt import (
    _e,
    fmt_int,
    fmt_money,
    money_attr,
    round_money,
)
from pipelines.reporting.finance_report.rows import count_value, row, team_row, type_row
from pipelines.reporting.finance_report.style import card, page

SUMMARY_HTML = "summary.html"
MONTH_TOTALS_CSV = "totals.csv"


def _rollups(roll: pd.DataFrame, base: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """By day, by type and by team, money rounded to the base currency's minor unit."""
    sums = ["count", "value_at_risk_base"]
    days = roll.groupby("business_date", as_index=False, sort=True)[sums].sum()
    types = roll.groupby(["finding_type", "severity", "owner_team"], as_index=False, dropna=False)[sums].sum()
    teams = roll.groupby("owner_team", as_index=False, dropna=False)[sums].sum()
    for t in (days, types, teams):
        t["value_at_risk_base"] = t["value_at_risk_base"].map(lambda v: round_money(v, base))
    types = types.sort_values(["value_at_risk_base", "finding_type"], ascending=[False, True], kind="mergesort")
    teams = teams.sort_values(["value_at_risk_base", "owner_team"], ascending=[False, True], kind="mergesort")
    return days, types, teams


def _playbook_cell(finding_type: str) -> str:
    """The type's playbook (`FINDING_TYPES`; empty for a type this version does not know), data-testid
    ``type-playbook``."""
    ft = FINDING_TYPES.get(str(finding_type))
    return f'<td class="playbook" data-testid="type-playbook">{_e(ft.playbook if ft else "")}</td>'


def _tables(days: pd.DataFrame, types: pd.DataFrame, teams: pd.DataFrame, base: str,
            linked_days: set[str]) -> str:
    def day_cell(d: str) -> str:
        return f'<a href="../{_e(d)}/{SUMMARY_HTML}">{_e(d)}</a>' if d in linked_days else _e(d)

    day_rows = "".join(row("day", "date", r.business_date, f"<td>{day_cell(r.business_date)}</td>",
                           count_value("day", r, base)) for r in days.itertuples(index=False))
    type_rows = "".join(type_row(r, base, _playbook_cell(r.finding_type)) for r in types.itertuples(index=False))
    team_rows = "".join(team_row(r, base) for r in teams.itertuples(index=False))
    empty = '<p class="empty">No findings this month.</p>'
    vh = f'<th class="num">Value at risk ({_e(base)})</th>'
    return (
        '<div class="grid2"><section><h2>By business day</h2>'
        + (f'<table><thead><tr><th>Business day</th><th class="num">Findings</th>{vh}</tr></thead>'
           f"<tbody>{day_rows}</tbody></table>" if len(days) else empty)
        + '<p class="detail">Days without findings are not listed.</p></section>'
        + "<section><h2>By team</h2>"
        + (f'<table><thead><tr><th>Owner team</th><th class="num">Findings</th>{vh}</tr></thead>'
           f"<tbody>{team_rows}</tbody></table>" if len(teams) else empty)
        + "</section></div>"
        + '<section style="margin-top:20px"><h2>By finding type</h2>'
        + (f'<table><thead><tr><th>Finding type</th><th>Severity</th><th>Owner team</th><th class="num">Findings'
           f'</th>{vh}<th class="playbook">Playbook</th></tr></thead><tbody>{type_rows}</tbody></table>'
           if len(types) else empty)
        + "</section>")


def render_month_html(month: str, roll: pd.DataFrame, *, base_currency: str, estate_name: str, generated_at: str,
                      linked_days: set[str] | None = None) -> str:
    """The month rollup page from MONTH_COLUMNS rows (one per day, type, severity and team)."""
    base = str(base_currency)
    total_value = round_money(roll["value_at_risk_base"].sum(), base) if len(roll) else 0.0
    total_count = int(roll["count"].sum()) if len(roll) else 0
    days, types, teams = _rollups(roll, base)
    active = int((days["count"] > 0).sum())
    estate = f" \u2014 {estate_name}" if estate_name else ""
    head = ('<header><p class="eyebrow">Monthly finance reconciliation \u00b7 NewStore POS vs Centra</p>'
            f'<h1>Reconciliation month <span data-testid="month">{_e(month)}</span>{_e(estate)}</h1>'
            f'<p class="sub">Values at risk in {_e(base)} (base currency) \u00b7 generated {_e(generated_at)}</p>'
            "</header>")
    cards = ('<div class="cards">'
             + card("total-value-at-risk", "Value at risk in the month", fmt_money(total_value, base),
                    money_attr(total_value, base), "primary")
             + card("findings-count", "Findings", fmt_int(total_count), str(total_count))
             + card("days-with-findings", "Days with findings", fmt_int(active), str(active))
             + "</div>")
    body = (head + cards + _tables(days, types, teams, base, linked_days or set())
            + f'<footer><p>Rollup by day, finding type and team: <a href="{MONTH_TOTALS_CSV}" download>'
              f"{MONTH_TOTALS_CSV}</a>.</p></footer>")
    return page(f"Reconciliation {month}{estate}", body)
