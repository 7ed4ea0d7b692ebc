"""HTML building blocks: escaped tables, embedded JSON data, plotly figures without their
library, and the page around the sections (the plotly library inlined once, no external
resource)."""
from __future__ import annotations

import html
import json
import math
import re
from typing import Any, Sequence

__all__ = ["data_script", "figure_div", "page", "table"]

_QUANTITY = re.compile(r"-?\d[\d.]*(e[-+]?\d+)?( \S+)?")

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1120px;margin:0 auto;padding:8px 20px 40px;background:#fff}
h1{font-size:1.6em;margin:.6em 0 .1em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:1.6em}
h3{margin-top:1.4em}.sub{color:#666;margin-top:0}.note{color:#555;font-size:.92em}
nav{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #eee;z-index:10}
nav a{margin-right:14px;text-decoration:none;color:#1f5fa8}
table{border-collapse:collapse;margin:6px 0 12px;font-size:.9em;max-width:100%}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.facts{display:flex;flex-wrap:wrap;gap:10px}.fact{background:#f4f7fb;border-radius:6px;padding:8px 12px}
.fact b{display:block;font-size:1.3em}.cells svg{width:100%;max-width:1000px;height:auto}
.arch{border:1px solid #e3e3e3;border-radius:8px;padding:4px 14px 10px;margin:14px 0}
code,pre{font-size:.88em}pre{background:#f6f6f6;padding:8px;overflow-x:auto;white-space:pre-wrap}
td.wrap{word-break:break-all}
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{"n/a" if math.isnan(value) else f"{value:.4g}"}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    if isinstance(value, str) and _QUANTITY.fullmatch(value):  # a value with its unit, kept on one line
        return f'<td class="num">{html.escape(value)}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    """An HTML table; text escaped, numbers right-aligned (floats to 4 significant digits)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


def data_script(element_id: str, data: Any) -> str:
    """``data`` as a JSON data block (``<script type="application/json">``) a reader can parse
    back; NaN becomes null, and ``</`` is escaped so the text cannot close the element."""
    text = json.dumps(_nan_to_none(data), allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" id="{html.escape(element_id)}">{text}</script>'


def figure_div(fig: Any) -> str:
    """A plotly figure as a ``<div>`` and its drawing script; the library itself is in the page once."""
    return fig.to_html(full_html=False, include_plotlyjs=False, default_width="100%",
                       config={"displaylogo": False, "responsive": True})


def page(title: str, body: str) -> str:
    """The whole document: the plotly library inlined in the head, so it works offline."""
    from plotly.offline import get_plotlyjs

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head>"
            f"<body><main>{body}</main></body></html>\n")
