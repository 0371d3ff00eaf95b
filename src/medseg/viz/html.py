"""Small helpers to build self-contained HTML reports (inline CSS, PNGs as data URIs, a tiny inline zoom script).

Images are embedded at full resolution. Overlays are layered: a case's image is embedded
once, as the CSS background of its panels (`background_style`), and each panel draws a
transparent PNG over it (`panel`); the same image shown in grey under the error map
is a CSS filter, not a second copy. Clicking any panel or plot opens it in a viewer (zoom
1:1, 2x, 4x ..., outlines on/off, Esc to close); without JavaScript the page still shows
every image at full size.
"""
from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["page", "img", "table", "esc", "num", "png_from_array", "data_uri", "background_style", "panel",
           "swatch"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1240px;margin:0 auto;padding:24px 32px 64px;background:#fff;box-shadow:0 0 8px #0001}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:32px 0 8px;\
border-bottom:2px solid #e4e8ee;padding-bottom:4px}
h3{font-size:1.0em;margin:18px 0 6px}
.meta{color:#555;font-size:.9em;margin:0 0 12px}.note{background:#f3f6fa;border-left:4px solid #1f5fa8;
padding:8px 12px;font-size:.88em;margin:10px 0}.note.warn{background:#fff6e5;border-left-color:#c77700}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}th,td{padding:4px 9px;border-bottom:1px solid #e6e6e6;
text-align:right;white-space:nowrap}th{background:#f0f3f7;position:sticky;top:0}td:first-child,th:first-child{text-align:left}
tr:hover td{background:#f7faff}.grid{display:flex;flex-wrap:wrap;gap:10px}.grid img{border:1px solid #eee}
img{max-width:100%}.plot{cursor:zoom-in}
details summary{cursor:pointer;color:#1f5fa8;margin:8px 0}.bad{color:#b22}.best{font-weight:700}
.scroll{max-height:480px;overflow:auto;border:1px solid #eee}small{color:#666;font-size:.85em}td{vertical-align:top}
.panels{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start;margin:6px 0 14px}
figure.pnl{margin:0;max-width:100%}figure.pnl figcaption{font-size:.8em;color:#444;margin-top:3px;line-height:1.3}
.stack{position:relative;width:100%;cursor:zoom-in;background:#000;overflow:hidden}
.stack>.bg{position:absolute;inset:0;background-size:100% 100%;background-repeat:no-repeat}
.stack>.ov{position:absolute;inset:0;width:100%;height:100%;max-width:none}
.px,.px>*{image-rendering:pixelated}.grey{filter:grayscale(1) brightness(.8) contrast(.75)}
.row-title{font-size:.85em;font-weight:600;color:#333;margin:10px 0 0}
.case{border-top:1px solid #e4e8ee;padding-top:6px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.85em;margin:6px 0}.legend span{white-space:nowrap}
.sw{display:inline-block;width:.95em;height:.95em;vertical-align:-.12em;margin-right:4px;border:1px solid #0006}
.pale{color:#999}
#lb{position:fixed;inset:0;background:#161616;z-index:9;display:flex;flex-direction:column}#lb[hidden]{display:none}
#lb .bar{color:#eee;font-size:.9em;padding:6px 12px;display:flex;gap:10px;align-items:center}
#lb button{font:inherit;padding:2px 9px;cursor:pointer}#lb .lbbox{flex:1;overflow:auto;padding:8px;cursor:zoom-in}
#lb .lbbox>*{margin:auto;max-width:none}#lb.nooutline .ov{display:none}
#lb .stack,#lb .stack>*{image-rendering:pixelated}
"""

_VIEWER = """<div id="lb" hidden><div class="bar"><button data-z="0.5">\u2212</button><button data-z="2">+</button>
<button data-z="1">1:1</button><button data-o="1">outlines on/off</button><button data-x="1">close (Esc)</button>
<span class="lbcap"></span></div><div class="lbbox"></div></div>
<script>(function(){var lb=document.getElementById("lb"),box=lb.querySelector(".lbbox"),cap=lb.querySelector(".lbcap"),
cur=null,z=1;function w0(){return +cur.dataset.w||cur.naturalWidth||cur.clientWidth}
function h0(){return +cur.dataset.h||cur.naturalHeight||cur.clientHeight}
function show(){var c=cur.cloneNode(true),w=w0();c.classList.remove("zoomable");c.style.width=w*z+"px";
if(c.tagName==="IMG"){c.style.height="auto"}box.innerHTML="";box.appendChild(c);
var f=cur.closest("figure");cap.textContent=(f?f.innerText.split("\\n")[0]+" \u2014 ":"")+
(z>=1?z+"\u00d7":"1/"+(1/z))+" (1\u00d7 = one image pixel per screen pixel); click the image to zoom in"}
document.addEventListener("click",function(e){var t=e.target.closest(".zoomable");if(t&&!lb.contains(t)){cur=t;z=1;
while(w0()*z*2<=innerWidth*0.95&&h0()*z*2<=innerHeight-60&&z<16)z*=2;
while(z>0.125&&(w0()*z>innerWidth*0.95||h0()*z>innerHeight-60))z/=2;lb.hidden=false;show();return}if(!lb.contains(e.target))return;
var b=e.target.closest("button");if(b){if(b.dataset.z){z=b.dataset.z==="1"?1:Math.max(z*b.dataset.z,0.125);show()}
else if(b.dataset.o){lb.classList.toggle("nooutline")}else{lb.hidden=true}}else if(e.target.closest(".lbbox>*")){
z=Math.min(z*2,32);show()}else{lb.hidden=true}});
document.addEventListener("keydown",function(e){if(e.key==="Escape")lb.hidden=true})})();</script>"""



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


def img(png: bytes, alt: str, *, width: int | None = None, zoom: bool = True) -> str:
    """An ``<img>`` with the PNG embedded as a data URI (a click opens it in the viewer).

    Parameters
    ----------
    png : bytes
        PNG file bytes.
    alt : str
        Alternative text.
    width : int, optional
        Display width in pixels.
    zoom : bool
        Open it in the viewer on a click.

    Returns
    -------
    str

    Examples
    --------
    >>> img(b"PNG", "a plot")
    '<img class="plot zoomable" alt="a plot" src="data:image/png;base64,UE5H">'
    """
    w = f' width="{width}"' if width else ""
    c = ' class="plot zoomable"' if zoom else ""
    return f'<img{c} alt="{esc(alt)}"{w} src="{data_uri(png)}">'


def data_uri(png: bytes) -> str:
    """A ``data:`` URI of PNG bytes.

    Parameters
    ----------
    png : bytes

    Returns
    -------
    str

    Examples
    --------
    >>> data_uri(b"PNG")
    'data:image/png;base64,UE5H'
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_from_array(a: np.ndarray) -> bytes:
    """PNG bytes of a float image in ``[0, 1]``: grey ``(y, x)``, RGB ``(y, x, 3)`` or RGBA ``(y, x, 4)``.

    An RGB image whose three channels are equal is stored as grey (a third of the size).

    Parameters
    ----------
    a : numpy.ndarray
        Values in ``[0, 1]`` (clipped), one pixel per array element: nothing is resampled.

    Returns
    -------
    bytes

    Examples
    --------
    >>> from PIL import Image
    >>> png = png_from_array(np.zeros((3, 5, 4)))
    >>> Image.open(io.BytesIO(png)).size, Image.open(io.BytesIO(png)).mode
    ((5, 3), 'RGBA')
    """
    from PIL import Image as PILImage  # deferred: Pillow, only for figures

    u8 = np.round(np.clip(np.nan_to_num(np.asarray(a, dtype=np.float64)), 0, 1) * 255).astype(np.uint8)
    if u8.ndim == 3 and u8.shape[-1] == 3 and (u8[..., 0] == u8[..., 1]).all() and (u8[..., 1] == u8[..., 2]).all():
        u8 = u8[..., 0]
    buf = io.BytesIO()
    PILImage.fromarray(u8).save(buf, format="PNG", optimize=u8.ndim == 3 and u8.shape[-1] == 4)
    return buf.getvalue()


def background_style(cls: str, png: bytes) -> str:
    """A ``<style>`` rule giving the CSS class ``cls`` the PNG as background: one copy for every panel of an image.

    Parameters
    ----------
    cls : str
        A CSS class name (letters, digits, ``-``).
    png : bytes

    Returns
    -------
    str

    Examples
    --------
    >>> background_style("b1", b"PNG")
    '<style>.b1{background-image:url(data:image/png;base64,UE5H)}</style>'
    """
    return f"<style>.{cls}{{background-image:url({data_uri(png)})}}</style>"


def panel(caption: str, *, width: float, height: float, natural_width: float, background: str = "",
          overlay: bytes | None = None, grey: bool = False, pixelated: bool = False, alt: str = "") -> str:
    """One figure panel: an image (a CSS background class) with an optional transparent overlay PNG on top.

    Parameters
    ----------
    caption : str
        HTML of the caption (the first line names the panel in the viewer).
    width, height : float
        Display size on the page in CSS pixels (shrinks to fit narrow windows).
    natural_width : float
        The width at 1:1 (one image pixel per screen pixel), the viewer's ``1×`` (its height
        follows the aspect ratio). The viewer opens at the largest power-of-two zoom that fits
        the window.
    background : str
        CSS class of the image (`background_style`); empty for none.
    overlay : bytes, optional
        PNG drawn over the whole panel (stretched to it).
    grey : bool
        Show the background in grey (under error maps).
    pixelated : bool
        Nearest-neighbour scaling (for images shown larger than 1:1).
    alt : str
        Alternative text of the overlay.

    Returns
    -------
    str

    Examples
    --------
    >>> html = panel("errors", width=100, height=50, natural_width=100, background="b1", overlay=b"PNG", grey=True)
    >>> 'class="bg b1 grey"' in html and 'aspect-ratio:100/50' in html and "UE5H" in html
    True
    """
    bg = f'<div class="bg {background}{" grey" if grey else ""}"></div>' if background else ""
    ov = f'<img class="ov" alt="{esc(alt)}" src="{data_uri(overlay)}">' if overlay is not None else ""
    w, h = round(width), round(height)
    return (f'<figure class="pnl" style="width:{w}px"><div class="stack zoomable{" px" if pixelated else ""}" '
            f'style="aspect-ratio:{w}/{h}" data-w="{natural_width:.6g}" '
            f'data-h="{natural_width * height / width:.6g}">{bg}{ov}</div>'
            f"<figcaption>{caption}</figcaption></figure>")


def swatch(colour: Sequence[float] | np.ndarray, label: str) -> str:
    """A legend entry: a colour square and its label.

    Parameters
    ----------
    colour : sequence of float or numpy.ndarray
        RGB in ``[0, 1]``.
    label : str
        HTML of the label.

    Returns
    -------
    str

    Examples
    --------
    >>> swatch((1.0, 0.5, 0.0), "FP")
    '<span><i class="sw" style="background:#ff8000"></i>FP</span>'
    """
    hexc = "#" + "".join(f"{int(round(255 * float(c))):02x}" for c in colour[:3])
    return f'<span><i class="sw" style="background:{hexc}"></i>{label}</span>'


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
            f"<style>{_CSS}</style></head><body><main>\n{body}\n</main>{_VIEWER}</body></html>\n")
