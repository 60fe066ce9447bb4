"""The daily summary page (see the package docstring for its data-testid contract)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.domain.reconciliation.restatement import describe
from pipelines.reporting.finance_report.chart import HISTORY_DAYS, drift_chart_svg
from pipelines.reporting.finance_report.details import detail_sentence, location_name, sku_name
from pipelines.reporting.finance_report.fmt import (
    DASH,
    _e,
    _isna,
    badge,
    fmt_int,
    fmt_money,
    fmt_rate,
    fmt_signed,
    money_attr,
    team_label,
    type_label,
)
from pipelines.reporting.finance_report.kiosk import kiosk_html
from pipelines.reporting.finance_report.rows import num, row, team_row, type_row
from pipelines.reporting.finance_report.style import card, page
from pipelines.reporting.finance_report.summary import REPORT_RANK, TOP_RISKS, ReportSummary, top_risks

if TYPE_CHECKING:
    from pipelines.estate import Estate

ALL_FINDINGS_CSV = "findings.csv"


def _named(name: str | None, ident: str, prefix: str = "") -> str:
    """ "Stockholm flagship (ST-SE01)" with the id muted; the id alone without a name (prefix: HTML)."""
    if name:
        return f'{_e(name)} <span class="id">({prefix}{_e(ident)})</span>'
    return f"{prefix}{_e(ident)}"


def location_html(estate: Estate | None, location_id: Any) -> str:
    if _isna(location_id):
        return DASH
    return _named(location_name(estate, location_id), str(location_id))


def _ref_cell(row: Any, estate: Estate | None) -> str:
    parts = []
    if not _isna(row.sku):
        parts.append(f"<div>{_named(sku_name(estate, row.sku), str(row.sku), 'SKU&nbsp;')}</div>")
    if not _isna(row.order_ref):
        parts.append(f'<div class="nw">Order&nbsp;{_e(row.order_ref)}</div>')
    if not _isna(row.transaction_id) and not parts:
        parts.append(f"<div>Txn&nbsp;{_e(row.transaction_id)}</div>")
    if not _isna(row.tax_rate) and not parts:
        parts.append(f'<div class="nw">Tax rate {_e(fmt_rate(row.tax_rate))}</div>')
    return "".join(parts) or DASH


def _header(business_date: str, base: str, estate_name: str, generated_at: str) -> str:
    estate = f" \u2014 {estate_name}" if estate_name else ""
    return (
        '<header><p class="eyebrow">Daily finance reconciliation \u00b7 NewStore POS vs Centra</p>'
        f'<h1>Reconciliation report <span data-testid="business-date">{_e(business_date)}</span>'
        f"{_e(estate)}</h1>"
        f'<p class="sub">Business day {_e(business_date)} \u00b7 values at risk in {_e(base)} (base currency) '
        f'unless marked \u00b7 generated {_e(generated_at)}</p></header>'
    )


def produced_under_html(checks: Sequence[tuple[str, bool, str]], notes: Sequence[str]) -> str:
    """The "Produced under" box: the checks the report was produced under, pass/fail, and evidence notes."""
    if not checks and not notes:
        return ""
    items = []
    for name, passed, detail in checks:
        ok = bool(passed)
        status = "\u2713 PASS" if ok else "\u2717 FAIL"
        more = " \u2014 " + _e(detail) if detail else ""
        items.append(
            f'<li data-testid="produced-check" data-check="{_e(name)}" data-passed="{str(ok).lower()}">'
            f'<span class="st {"pass" if ok else "fail"}">{status}</span> '
            f'<span class="check">{_e(name)}</span>{more}</li>')
    note_html = "".join(f'<p class="evidence" data-testid="evidence-note">{_e(n)}</p>' for n in notes)
    state = "failed" if any(not p for _, p, _ in checks) else "incomplete" if notes else "passed"
    failed = sum(1 for _, p, _ in checks if not p)
    summary = (f"{len(checks)} check{'s' if len(checks) != 1 else ''}, "
               f"{'all passed' if not failed else f'{failed} failed'}" if checks else "no checks recorded")
    return (f'<section class="produced {state}" data-testid="produced-under" data-state="{state}">'
            f"<h2>Produced under: {_e(summary)}</h2>"
            + (f"<ul>{''.join(items)}</ul>" if items else "") + note_html + "</section>")


def restatement_html(changes: pd.DataFrame | None) -> str:
    """The "Restated" box of a day re-reconciled after late events: when, why, and one item per change
    (``restatement-change``, ``data-change`` = total / added / resolved / changed / sales)."""
    if changes is None or len(changes) == 0:
        return ""
    first = changes.iloc[0]
    number = int(first["restatement_no"]) if "restatement_no" in changes.columns else 1
    at = str(first["restated_at"]) if "restated_at" in changes.columns else ""
    reason = first["reason"] if "reason" in changes.columns and isinstance(first["reason"], str) else ""
    items = []
    for (_, r), sentence in zip(changes.iterrows(), describe(changes), strict=True):
        ftype = r["finding_type"] if isinstance(r["finding_type"], str) else ""
        items.append(f'<li data-testid="restatement-change" data-change="{_e(r["change"])}" data-type="{_e(ftype)}" '
                     f'data-value-before="{float(r["value_before"]):.2f}" '
                     f'data-value-after="{float(r["value_after"]):.2f}">{_e(sentence)}</li>')
    why = f'<p data-testid="restatement-reason">{_e(reason)}</p>' if reason else ""
    return (f'<section class="produced incomplete restated" data-testid="restated" data-restatement-no="{number}">'
            f"<h2>Restated {_e(at)} (restatement {number}): events of this day landed after it was reconciled"
            f"</h2>{why}<ul>{''.join(items)}</ul></section>")


def _cards(s: ReportSummary, base: str) -> str:
    def raw(v: float) -> str:
        return money_attr(v, base)
    return (
        '<div class="cards">'
        + card("total-value-at-risk", "Total value at risk", fmt_money(s.value_at_risk_base, base),
               raw(s.value_at_risk_base), "primary")
        + card("findings-count", "Findings", fmt_int(s.findings), str(s.findings))
        + card("error-findings", "ERROR findings", fmt_int(s.error_findings), str(s.error_findings), "error",
               f"{s.findings - s.error_findings:,} WARN")
        + card("oversell-value", "Oversell drift value", fmt_money(s.oversell_value_base, base),
               raw(s.oversell_value_base), "drift", "Centra shows stock the store does not have")
        + card("lost-sales-value", "Lost-sales drift value", fmt_money(s.lost_sales_value_base, base),
               raw(s.lost_sales_value_base), "drift", "the web shop hides stock the store has")
        + "</div>"
    )


def _type_table(s: ReportSummary, base: str, csv_names: dict[str, str]) -> str:
    if s.totals_by_type.empty:
        return '<p class="empty">No findings.</p>'
    rows = []
    for r in s.totals_by_type.itertuples(index=False):
        name = csv_names.get(r.finding_type)
        link = f'<a href="{_e(name)}" download>CSV</a>' if name else ""
        rows.append(type_row(r, base, f'<td class="num noprint">{link}</td>'))
    return (
        "<table><thead><tr><th>Finding type</th><th>Severity</th><th>Owner team</th>"
        f'<th class="num">Findings</th><th class="num">Value at risk ({_e(base)})</th>'
        '<th class="num noprint">File</th></tr></thead><tbody>' + "".join(rows) + "</tbody>"
        f'<tfoot><tr><td colspan="3">Total</td><td class="num" data-testid="type-total-count">'
        f'{fmt_int(s.findings)}</td><td class="num" data-testid="type-total-value">'
        f'{fmt_money(s.value_at_risk_base, base)}</td><td class="noprint"></td></tr></tfoot></table>')


def _team_table(s: ReportSummary, base: str) -> str:
    if s.totals_by_team.empty:
        return '<p class="empty">No findings.</p>'
    rows = [team_row(r, base) for r in s.totals_by_team.itertuples(index=False)]
    return (
        f'<table><thead><tr><th>Owner team</th><th class="num">Findings</th><th class="num">Value at risk '
        f'({_e(base)})</th></tr></thead><tbody>' + "".join(rows) + "</tbody>"
        f'<tfoot><tr><td>Total</td><td class="num">{fmt_int(s.findings)}</td>'
        f'<td class="num">{fmt_money(s.value_at_risk_base, base)}</td></tr></tfoot></table>')


def _risk_row(r: Any, rank: int, pb_html: str, base: str, estate: Estate | None) -> str:
    sentence = detail_sentence(r)
    detail = f'<div class="detail" data-testid="risk-detail">{_e(sentence)}</div>' if sentence else ""
    return (
        f'<tr data-testid="risk-row" data-rank="{rank}" data-type="{_e(r.finding_type)}">'
        f'<td class="num">{rank}</td>'
        f'<td class="finding">{_e(type_label(r.finding_type))} {badge(r.severity)}{detail}</td>'
        f'<td class="where" data-testid="risk-location">{location_html(estate, r.location_id)}</td>'
        f'<td class="item" data-testid="risk-item">{_ref_cell(r, estate)}</td>'
        f'<td class="num" data-testid="risk-qty">{fmt_signed(r.quantity_diff)}</td>'
        f'<td class="num" data-testid="risk-value">{fmt_money(r.value_at_risk, r.currency)}</td>'
        f'<td class="num" data-testid="risk-value-base">{fmt_money(r.value_at_risk_base, base)}</td>'
        f"<td>{_e(team_label(r.owner_team))}</td>"
        f'<td class="playbook">{pb_html}</td></tr>')


def _risk_table(findings: pd.DataFrame, s: ReportSummary, base: str, estate: Estate | None) -> str:
    top = top_risks(findings)
    if top.empty:
        return '<p class="empty">No findings.</p>'
    rows = []
    first_of_type: dict[str, int] = {}
    for r in top.itertuples(index=False):
        rank = int(getattr(r, REPORT_RANK))
        pb = "" if _isna(r.playbook) else str(r.playbook)
        seen = first_of_type.setdefault(f"{r.finding_type}\0{pb}", rank)
        # the same playbook again: point to the row above instead of repeating the paragraph
        pb_html = _e(pb) if seen == rank else f'<span class="same" title="{_e(pb)}">Same as rank {seen} above</span>'
        rows.append(_risk_row(r, rank, pb_html, base, estate))
    more = s.findings - len(top)
    note = (f'<p class="detail">{more:,} more finding{"s" if more != 1 else ""} in '
            f'<a href="{ALL_FINDINGS_CSV}" download>{ALL_FINDINGS_CSV}</a> (column <code>{REPORT_RANK}</code> '
            "continues this ranking).</p>") if more > 0 else ""
    return (
        '<table class="risks"><thead><tr><th class="num">Rank</th><th class="finding">Finding</th>'
        '<th class="where">Location</th><th class="item">SKU / order ref</th><th class="num">Qty diff</th>'
        f'<th class="num">Value at risk</th><th class="num">Value at risk ({_e(base)})</th><th>Owner</th>'
        '<th class="playbook">Playbook</th></tr></thead><tbody>'
        + "".join(rows) + "</tbody></table>" + note)


def _store_table(s: ReportSummary, base: str, estate: Estate | None) -> str:
    if s.drift_by_store.empty:
        return '<p class="empty">No stock drift: Centra and the POS agree on every store\'s stock.</p>'
    rows = [
        row("store", "location", r.location_id, f"<td>{location_html(estate, r.location_id)}</td>",
            num("store-oversell", fmt_money(r.oversell_value_base, base)),
            num("store-lost-sales", fmt_money(r.lost_sales_value_base, base)),
            num("store-drift", fmt_money(r.drift_value_base, base)), num("store-units", fmt_int(r.units)))
        for r in s.drift_by_store.itertuples(index=False)]
    return (
        f'<table><thead><tr><th>Location</th><th class="num">Oversell ({_e(base)})</th>'
        f'<th class="num">Lost sales ({_e(base)})</th><th class="num">Drift value ({_e(base)})</th>'
        '<th class="num">Units</th></tr></thead><tbody>' + "".join(rows) + "</tbody>"
        f'<tfoot><tr><td>Total</td><td class="num">{fmt_money(s.oversell_value_base, base)}</td>'
        f'<td class="num">{fmt_money(s.lost_sales_value_base, base)}</td>'
        f'<td class="num" data-testid="store-total-drift">{fmt_money(s.drift_value_base, base)}</td>'
        f'<td class="num">{fmt_int(int(s.drift_by_store["units"].sum()))}</td></tr></tfoot></table>')


def _history_block(history: pd.DataFrame, business_date: str, base: str) -> str:
    chart = drift_chart_svg(history, date.fromisoformat(business_date), base)
    rows = "".join(
        f'<tr><td>{_e(r.business_date)}</td><td class="num">{fmt_money(r.drift_value_base, base)}</td>'
        f'<td class="num">{fmt_money(r.value_at_risk_base, base)}</td><td class="num">{fmt_int(r.findings)}</td></tr>'
        for r in history.iloc[::-1].itertuples(index=False))
    return chart + (
        f"<details><summary>Values of the last {HISTORY_DAYS} days</summary><table><thead><tr><th>Business day</th>"
        f'<th class="num">Drift value ({_e(base)})</th><th class="num">Value at risk ({_e(base)})</th>'
        f'<th class="num">Findings</th></tr></thead><tbody>{rows}</tbody></table></details>')


def _footer(csv_names: dict[str, str]) -> str:
    files = ", ".join(f'<a href="{_e(n)}" download>{_e(n)}</a>' for n in sorted(csv_names.values()))
    return (
        "<footer>"
        f'<p>Files in this folder: <a href="{ALL_FINDINGS_CSV}" download>{ALL_FINDINGS_CSV}</a> (all findings)'
        f"{'; per finding type: ' + files if files else ''}. A finding type with no finding that day has no CSV. "
        "Each CSV has the raw <code>detail</code> and the sentence shown here (<code>detail_text</code>).</p>"
        "<p>Value at risk is the money a finding puts at risk, in the store's currency and in the base currency; "
        "drift value is oversell plus lost-sales value. Rank 1 is the highest commercial risk of the day; equal "
        "risks are ranked by value at risk, then finding type, location, SKU and order reference.</p>"
        "</footer>")


def render_daily_html(business_date: str, findings: pd.DataFrame, summary: ReportSummary, history: pd.DataFrame,
                      *, base_currency: str, estate_name: str, generated_at: str,
                      csv_names: dict[str, str] | None = None, estate: Estate | None = None,
                      produced_under: Sequence[tuple[str, bool, str]] = (),
                      evidence_notes: Sequence[str] = (), restatement: pd.DataFrame | None = None,
                      kiosk: pd.DataFrame | None = None, posting_mode: str | None = None) -> str:
    """The daily summary page: restated box (a restated day), produced-under box, headline cards, totals, top
    risks, drift by store, chart, and with `kiosk` (`pipelines.domain.kiosk.postings.day_summary`) the kiosk
    section in `posting_mode`. restatement: the rows of the day's latest restatement
    (`reconciliation_restatements`, CHANGE_COLUMNS with restatement_no, restated_at and reason)."""
    base, s = str(base_currency), summary
    csv_names = csv_names or {}
    title = f"Reconciliation {business_date}" + (f" \u2014 {estate_name}" if estate_name else "")
    clean = ""
    if s.findings == 0:
        clean = ('<div class="clean" data-testid="no-discrepancies">No discrepancies found'
                 f"<span>The POS and Centra agree on every check that ran for {_e(business_date)}: "
                 "nothing is at risk and no action is needed.</span></div>")
    body = (
        _header(business_date, base, estate_name, generated_at) + restatement_html(restatement)
        + produced_under_html(list(produced_under), list(evidence_notes)) + clean + _cards(s, base)
        + f'<div class="grid2"><section><h2>Totals by finding type</h2>{_type_table(s, base, csv_names)}</section>'
        + f"<section><h2>Totals by team</h2>{_team_table(s, base)}</section></div>"
        + f'<section class="long" style="margin-top:20px"><h2>Top {TOP_RISKS} risks</h2>'
        + _risk_table(findings, s, base, estate) + "</section>"
        + '<div class="grid2 even"><section><h2>Drift value by store</h2>'
        + _store_table(s, base, estate) + "</section>"
        + f'<section class="chart"><h2>Drift value, last {HISTORY_DAYS} days</h2>'
        + _history_block(history, business_date, base) + "</section></div>"
        + kiosk_html(kiosk, posting_mode, lambda loc: location_html(estate, loc)) + _footer(csv_names)
    )
    return page(title, body)
