"""The daily page's kiosk section and `kiosk.csv`: the Cloudshelf kiosk transactions per store and currency against
Centra, and what the posting mode had posted intra-day and by the cut-off (figures:
`pipelines.domain.kiosk.postings.day_summary`).

data-testid contract: the section ``kiosk-section`` (``data-posting-mode``), one ``kiosk-row`` per (store, currency)
(``data-location``, ``data-currency``) with cells ``kiosk-take-home-count``, ``kiosk-take-home-amount``,
``kiosk-delivery-count``, ``kiosk-delivery-amount``, ``kiosk-centra-delivery``, ``kiosk-centra-missing``,
``kiosk-posted-intraday``, ``kiosk-posted-by-cutoff``, ``kiosk-unposted-intraday``, ``kiosk-max-lag``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from pipelines.domain.kiosk.postings import DAILY_BATCH, SUMMARY_COLUMNS
from pipelines.domain.timeutil import human_duration
from pipelines.reporting.finance_report.fmt import _e, fmt_int, fmt_money, round_money
from pipelines.reporting.finance_report.rows import num, row

KIOSK_CSV = "kiosk.csv"
_MONEY = ["take_home_amount", "delivery_amount", "traded_amount", "centra_missing_amount", "centra_total_diff",
          "centra_delivery_amount", "posted_intraday", "posted_by_cutoff", "unposted_intraday"]

_MODE_TEXT = {
    "realtime": "Posting mode <b>realtime</b>: each kiosk transaction is posted when it happens, so what was posted "
                "during the day equals what traded.",
    DAILY_BATCH: "Posting mode <b>daily batch</b>: one posting per store, day and currency after the cut-off. Nothing "
                 "of the day is posted before it: intra-day reports lag by up to a day (the longest wait is shown).",
}


def csv_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of kiosk.csv: SUMMARY_COLUMNS, money rounded to each row's currency."""
    out = summary[SUMMARY_COLUMNS].copy()
    for c in _MONEY:
        out[c] = [round_money(v, cur) for v, cur in zip(out[c], out["currency"], strict=True)]
    return out


def kiosk_html(summary: pd.DataFrame | None, mode: str | None, location: Callable[[Any], str] = _e) -> str:
    """The kiosk section ("" when none was given); `location`: a store id -> its cell's HTML (name and id)."""
    if summary is None or mode is None:
        return ""
    head = (f'<section class="long" style="margin-top:20px" data-testid="kiosk-section" '
            f'data-posting-mode="{_e(mode)}"><h2>Kiosk transactions (Cloudshelf) against Centra</h2>'
            f"<p>{_MODE_TEXT.get(mode, _e(mode))}</p>")
    if summary.empty:
        return head + '<p class="empty">No paid kiosk transaction on this day.</p></section>'
    rows = []
    for r in summary.itertuples(index=False):
        c = r.currency
        rows.append(row(
            "kiosk", "location", r.location_id, f"<td>{location(r.location_id)}</td>",
            f"<td>{_e(c)}</td>",
            num("kiosk-take-home-count", fmt_int(r.take_home_count)),
            num("kiosk-take-home-amount", fmt_money(r.take_home_amount, c)),
            num("kiosk-delivery-count", fmt_int(r.delivery_count)),
            num("kiosk-delivery-amount", fmt_money(r.delivery_amount, c)),
            num("kiosk-centra-delivery", fmt_money(r.centra_delivery_amount, c)),
            num("kiosk-centra-missing", fmt_int(r.centra_missing_count)),
            num("kiosk-posted-intraday", fmt_money(r.posted_intraday, c)),
            num("kiosk-posted-by-cutoff", fmt_money(r.posted_by_cutoff, c)),
            num("kiosk-unposted-intraday", fmt_money(r.unposted_intraday, c)),
            num("kiosk-max-lag", _e(human_duration(r.max_lag_s)))).replace(
                'data-testid="kiosk-row"', f'data-testid="kiosk-row" data-currency="{_e(c)}"', 1))
    return (head + '<table><thead><tr><th>Store</th><th>Currency</th><th class="num">Take-home</th>'
            '<th class="num">Take-home amount</th><th class="num">Delivery</th><th class="num">Delivery amount</th>'
            '<th class="num">Delivery in Centra</th><th class="num">Missing in Centra</th>'
            '<th class="num">Posted intra-day</th><th class="num">Posted by cut-off</th>'
            '<th class="num">Traded, not yet posted intra-day</th><th class="num">Longest wait</th></tr></thead>'
            "<tbody>" + "".join(rows) + "</tbody></table>"
            "<p>Take-home: paid kiosk sales the customer took home (their stock leaves the store warehouse in Centra "
            "through the stock sync). Delivery: paid endless-aisle orders, each a Centra order; \"Delivery in "
            "Centra\" is their amount as Centra holds it (missing orders and total differences are findings above). "
            f"Posted amounts follow the posting mode; the files have <code>{KIOSK_CSV}</code>.</p></section>")
