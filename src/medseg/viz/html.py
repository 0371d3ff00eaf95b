"""Small helpers to build self-contained HTML reports (inline CSS, PNGs as data URIs)."""
from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["page", "img", "table", "esc", "num"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px;background:#fff;box-shadow:0 0 8px #0001}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:32px 0 8px;\
border-bottom:2px solid #e4e8ee;padding-bottom:4px}
h3{font-size:1.0em;margin:18px 0 6px}
.meta{color:#555;font-size:.9em;margin:0 0 12px}.note{background:#f3f6fa;border-left:4px solid #1f5fa8;
padding:8px 12px;font-size:.88em;margin:10px 0}.note.warn{background:#fff6e5;border-left-color:#c77700}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}th,td{padding:4px 9px;border-bottom:1px solid #e6e6e6;
text-align:right;white-space:nowrap}th{background:#f0f3f7;position:sticky;top:0}td:first-child,th:first-child{text-align:left}
tr:hover td{background:#f7faff}.grid{display:flex;flex-wrap:wrap;gap:10px}.grid img{border:1px solid #eee}
img{max-width:100%}details summary{cursor:pointer;color:#1f5fa8;margin:8px 0}.bad{color:#b22}.best{font-weight:700}
.scroll{max-height:480px;overflow:auto;border:1px solid #eee}small{color:#666;font-size:.85em}td{vertical-align:top}
"""


def esc(x: Any) -> str:
    """``str(x)`` with HTML special characters escaped.

    Parameters
    ----------
    x : Any

    Returns
    -------
    str

    Examples
    --------
    >>> esc("a < b & c")
    'a &lt; b &amp; c'
    """
    return html.escape(str(x))


def num(v: Any, digits: int = 3) -> str:
    """Format a metric value for display (``nan`` → "—", ``inf`` → "∞").

    Parameters
    ----------
    v : Any
        A number (anything else is shown escaped, as text).
    digits : int
        Decimals below 1000; larger values get thousands separators.

    Returns
    -------
    str

    Examples
    --------
    >>> num(0.12345), num(float("nan")), num(float("inf")), num(12345.0), num(2, 1)
    ('0.123', '—', '∞', '12,345', '2.0')
    """
    try:
        f = float(v)
    except (TypeError, ValueError):
        return esc(v)
    if math.isnan(f):
        return "—"
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    if f == int(f) and abs(f) >= 1000:
        return f"{int(f):,}"
    return f"{f:.{digits}f}" if abs(f) < 1000 else f"{f:,.1f}"


def img(png: bytes, alt: str, *, width: int | None = None) -> str:
    """An ``<img>`` with the PNG embedded as a data URI.

    Parameters
    ----------
    png : bytes
        PNG file bytes.
    alt : str
        Alternative text.
    width : int, optional
        Display width in pixels.

    Returns
    -------
    str

    Examples
    --------
    >>> img(b"PNG", "a plot")
    '<img alt="a plot" src="data:image/png;base64,UE5H">'
    """
    w = f' width="{width}"' if width else ""
    return f'<img alt="{esc(alt)}"{w} src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: bool = False, cls: str = "") -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they must already be HTML).

    Parameters
    ----------
    header : sequence of str
        Column headers (always escaped).
    rows : sequence of sequence
        Cells, row by row.
    raw : bool
        Cells are HTML already.
    cls : str
        CSS class of the table.

    Returns
    -------
    str

    Examples
    --------
    >>> print(table(["metric", "value"], [["Dice", "<0.5"]]))
    <table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>
    <tr><td>Dice</td><td>&lt;0.5</td></tr>
    </tbody></table>
    """
    cell = (lambda x: str(x)) if raw else esc
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def page(title: str, body: str) -> str:
    """A complete HTML document with inline CSS.

    Parameters
    ----------
    title : str
        Document title (escaped).
    body : str
        HTML of the page body.

    Returns
    -------
    str

    Examples
    --------
    >>> page("Report", "<p>hi</p>").startswith("<!DOCTYPE html>")
    True
    """
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{_CSS}</style></head><body><main>\n{body}\n</main></body></html>\n")
