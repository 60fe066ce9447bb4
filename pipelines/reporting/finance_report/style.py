"""The page shell shared by the daily and the month pages: inline CSS, the CSP, headline cards.

Layout rule: every table fits its section from 1,024 px up and on an A4 page (landscape, the ``@page`` size;
portrait too). Text that may hold long unbreakable tokens (the detail, the playbook, codes: URLs, raw
key=value text) may break anywhere, so it never widens its table; names and labels break between words only;
numbers never wrap.
"""

from __future__ import annotations

from pipelines.reporting.finance_report.fmt import _e

CSS = """
:root{--ink:#1c2430;--muted:#5b6675;--line:#dde2e8;--bg:#f4f6f8;--accent:#1f4fd1;--err:#b42318;--errbg:#fde8e6;
--warn:#a15c07;--warnbg:#fef3d6;--ok:#117a43;--okbg:#e3f5ea}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1440px;margin:0 auto;padding:28px 32px 40px}
header{border-bottom:3px solid var(--ink);padding-bottom:12px;margin-bottom:16px}
.eyebrow{font-size:0.857em;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);margin:0 0 2px}
h1{font-size:1.857em;line-height:1.2;margin:0 0 6px;font-weight:700}
.sub{color:var(--muted);margin:0}
h2{font-size:1.143em;margin:0 0 10px;font-weight:650}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;margin:0 0 20px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px}
.card.primary{border-top:4px solid var(--accent)}
.card.error{border-top:4px solid var(--err)}
.card.drift{border-top:4px solid #7a4cc2}
.card .label{font-size:0.821em;letter-spacing:.05em;text-transform:uppercase;color:var(--muted)}
.card .value{font-size:1.571em;font-weight:700;margin-top:4px;white-space:nowrap;font-variant-numeric:tabular-nums}
.card .hint{font-size:0.857em;color:var(--muted)}
.ccy{font-size:.72em;font-weight:600;color:var(--muted);letter-spacing:.02em}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 20px}
.grid2{display:grid;grid-template-columns:minmax(0,1.75fr) minmax(0,1fr);gap:20px}
.grid2.even{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}
.grid2>section{margin:0}
.nw{white-space:nowrap}
.tw{overflow-x:auto}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 7px;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:break-word}
td .detail,td.playbook,td code,td .raw{overflow-wrap:anywhere}
thead th{font-size:0.821em;letter-spacing:.04em;text-transform:uppercase;color:var(--muted);font-weight:600;
border-bottom:2px solid var(--line);vertical-align:bottom;overflow-wrap:normal}
th.num,td.num{text-align:right;white-space:nowrap;overflow-wrap:normal}
thead th.num{white-space:normal}
tbody tr:nth-child(even){background:#fafbfc}
tfoot td{font-weight:700;border-top:2px solid var(--ink);border-bottom:none}
code{font:.82em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--muted);overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:0.786em;font-weight:700;letter-spacing:.03em;
white-space:nowrap}
.badge.ERROR{background:var(--errbg);color:var(--err)}
.badge.WARN{background:var(--warnbg);color:var(--warn)}
.badge.OTHER{background:#eceff3;color:var(--muted)}
.id{color:var(--muted);white-space:nowrap}
.detail{font-size:0.857em;color:var(--muted);margin-top:2px}
table.risks th.finding{width:25%}
table.risks th.where{width:11%}
table.risks th.item{width:13%}
table.risks th.playbook{width:28%}
table.risks td.finding{min-width:150px}
.playbook{font-size:0.857em;color:#39424e;min-width:160px}
thead th.playbook{font-size:0.821em;color:var(--muted)}
.playbook .same{color:var(--muted);font-style:italic}
.empty{color:var(--muted);font-style:italic;margin:4px 0}
.clean{background:var(--okbg);border:1px solid #a6dcbc;color:var(--ok);border-radius:8px;padding:14px 18px;
margin:0 0 20px;font-size:1.143em;font-weight:650}
.clean span{display:block;font-size:.8125em;font-weight:400;color:#2c5b40}
.produced{border-left:5px solid var(--ok);padding:12px 18px}
.produced.failed{border-left-color:var(--err)}
.produced.incomplete{border-left-color:var(--warn)}
.produced h2{font-size:1em;margin:0 0 6px}
.produced ul{list-style:none;margin:0;padding:0}
.produced li{margin:3px 0;padding-left:0}
.produced .st{display:inline-block;min-width:64px;font-weight:700;font-size:0.857em;letter-spacing:.03em}
.produced .st.pass{color:var(--ok)}
.produced .st.fail{color:var(--err)}
.produced .check{font-weight:600}
.produced .evidence{background:var(--warnbg);color:#6b3d05;border-radius:6px;padding:6px 10px;margin-top:8px}
.chart svg{width:100%;height:auto;display:block}
.chart .axis{font-size:0.786em;fill:var(--muted)}
.chart .grid{stroke:#e6e9ee;stroke-width:1}
.chart .line{fill:none;stroke:#7a4cc2;stroke-width:2.25;stroke-linejoin:round}
.chart .pt{fill:#fff;stroke:#7a4cc2;stroke-width:2}
.chart .pt.today{fill:#7a4cc2}
.chart .vlabel{font-size:0.857em;font-weight:700;fill:var(--ink)}
details{margin-top:8px}
summary{cursor:pointer;color:var(--accent);font-size:0.929em}
a{color:var(--accent)}
footer{color:var(--muted);font-size:0.857em;margin-top:8px}
footer p{margin:4px 0}
@media (max-width:1080px){.grid2,.grid2.even{grid-template-columns:minmax(0,1fr)}}
@media (max-width:700px){main{padding:16px}}
@page{size:A4 landscape;margin:12mm}
@media print{
body{background:#fff;font-size:10px}
main{max-width:none;padding:0}
.grid2,.grid2.even{grid-template-columns:minmax(0,1fr)}
.grid2>section{margin:0 0 14px}
section,.card,.clean{border-color:#b9c0c9;break-inside:avoid}
section.long{break-inside:auto}
table.risks td.finding,.playbook{min-width:0}
tr{break-inside:avoid}
thead{display:table-header-group}
tbody tr:nth-child(even){background:none}
a{color:inherit;text-decoration:none}
.tw{overflow:visible}
details,.noprint{display:none}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def page(title: str, body: str) -> str:
    # every table in a horizontal scroll box: on a phone a wide table scrolls instead of the page
    body = body.replace("<table", '<div class="tw"><table').replace("</table>", "</table></div>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        # Self-contained by construction: the page may load nothing and run nothing.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">\n"
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )


def card(testid: str, label: str, value_html: str, raw: str, css: str = "", hint: str = "") -> str:
    """A headline card; ``raw`` is the figure as plain text for ``data-value``."""
    hint_html = f'<div class="hint">{_e(hint)}</div>' if hint else ""
    return (f'<div class="card {css}"><div class="label">{_e(label)}</div>'
            f'<div class="value" data-testid="{testid}" data-value="{_e(raw)}">{value_html}</div>{hint_html}</div>')
