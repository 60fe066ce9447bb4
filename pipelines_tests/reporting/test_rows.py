"""The table rows the daily and the month pages share keep their data-testid contract."""

from __future__ import annotations

from types import SimpleNamespace

from pipelines.reporting.finance_report.rows import num, row, team_row, type_row


def test_row_and_number_cell() -> None:
    assert row("day", "date", "2026-01-15", "<td>a</td>", num("day-count", "3")) == (
        '<tr data-testid="day-row" data-date="2026-01-15"><td>a</td>'
        '<td class="num" data-testid="day-count">3</td></tr>')
    assert 'data-location="&lt;x&gt;"' in row("store", "location", "<x>")


def test_rollup_rows_by_team_and_by_type() -> None:
    r = SimpleNamespace(finding_type="refund_tax_mismatch", severity="ERROR", owner_team="finance", count=2,
                        value_at_risk_base=12.5)
    team = team_row(r, "EUR")
    assert team.startswith('<tr data-testid="team-row" data-team="finance"><td>')
    assert '<td class="num" data-testid="team-count">2</td>' in team
    assert 'data-testid="team-value"' in team and team.endswith("</td></tr>")
    typed = type_row(r, "EUR", '<td class="num noprint">CSV</td>')
    assert typed.startswith('<tr data-testid="type-row" data-type="refund_tax_mismatch"><td>')
    assert "<code>refund_tax_mismatch</code>" in typed and 'data-testid="type-count">2</td>' in typed
    assert typed.endswith('<td class="num noprint">CSV</td></tr>')
