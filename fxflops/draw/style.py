"""Colours and the legend of the rendered graph.

The heat scale is the magma colour map (perceptually uniform, readable in grey and by most colour-blind
readers), sampled at eleven stops and interpolated by hand so no plotting library is needed. It runs
from pale yellow (cheap) to deep purple (costly); the darkest stop is cut so black-on-colour and
white-on-colour text both stay readable. Shares are placed on a log scale over ``DECADES`` decades
below the costliest node drawn, since per-node shares span several orders of magnitude.
"""
from __future__ import annotations

import html
import math

from ..units import human

# matplotlib's magma at 1.0, 0.9, ..., 0.2 (the three darkest tenths are left out).
_MAGMA = ("#fcfdbf", "#fecf92", "#fe9f6d", "#f7705c", "#de4968", "#b73779", "#8c2981", "#641a80", "#3b0f70")
DECADES = 3

FONT = "Helvetica,Arial,sans-serif"
ZERO_FILL, ZERO_LINE, ZERO_TEXT = "#eeeeee", "#bdbdbd", "#707070"
UNCOUNTED_LINE, UNCOUNTED_FILL = "#d62728", "#fff1f0"
TOP_LINE = "#0a84ff"
EDGE = "#5f6368"
CLUSTER_FILLS = ("#f6f7f9", "#eceef2")
CLUSTER_LINE = "#a0a6b0"
ROLLED_LINE = "#3b0f70"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def heat(t: float) -> str:
    """The colour at ``t`` in [0, 1] (0 = cheapest, 1 = costliest)."""
    t = min(1.0, max(0.0, t)) * (len(_MAGMA) - 1)
    i = min(int(t), len(_MAGMA) - 2)
    f = t - i
    a, b = _rgb(_MAGMA[i]), _rgb(_MAGMA[i + 1])
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b))


def heat_position(share: float, max_share: float) -> float:
    """Where a FLOPs share sits on the scale: 1 at the costliest node, 0 at ``10**-DECADES`` of it."""
    if share <= 0 or max_share <= 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 + math.log10(share / max_share) / DECADES))


def text_colour(fill: str) -> str:
    """Black or white, whichever reads better on ``fill`` (relative luminance, sRGB)."""
    def lin(c: int) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in _rgb(fill))
    return "#ffffff" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.2 else "#000000"


def pct(share: float) -> str:
    p = 100 * share
    if p >= 10:
        return f"{p:.0f}%"
    if p >= 1:
        return f"{p:.1f}%"
    if p >= 0.01:
        return f"{p:.2f}%"
    if p >= 0.0001:
        return f"{p:.1g}%" if p < 0.001 else f"{p:.3f}%"
    return "<0.0001%" if p else "0%"


def flops_text(flops: int) -> str:
    return f"{human(flops)} FLOPs"


# render(color="bound"): the roof a node's estimated time is under (Okabe-Ito blue and orange).
BOUND_FILLS = {"compute": "#56B4E9", "memory": "#E69F00"}


def bound_label(device: str) -> str:
    """The legend of ``color="bound"``: one swatch per roof."""
    rows = [f'<tr><td colspan="2" align="left"><b>bound on {html.escape(device)}</b></td></tr>']
    for bound, fill in BOUND_FILLS.items():
        rows.append(f'<tr><td bgcolor="{fill}" width="34" height="16"></td><td align="left">{bound}-bound</td></tr>')
    return '<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + "".join(rows) + "</table>>"


def scale_label(max_share: float, what: str = "FLOPs share per node") -> str:
    """An HTML-like table: the heat scale with the shares (of FLOPs, or of time) its colours stand for."""
    rows = [f'<tr><td colspan="2" align="left"><b>{html.escape(what)}</b></td></tr>']
    for t in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0):
        share = max_share * 10 ** (-DECADES * (1 - t))
        text = pct(share)
        if t == 0:
            text = text.replace("<", "≤ ") if text.startswith("<") else "≤ " + text
        rows.append(f'<tr><td bgcolor="{heat(t)}" width="34" height="16"></td><td align="left">{html.escape(text)}</td></tr>')
    return '<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + "".join(rows) + "</table>>"
