"""The roofline chart: arithmetic intensity against attained FLOP/s, one point per node (or module), under the
device's roof ``min(peak, intensity × bandwidth)``.

A point is placed at the FLOP/s the node attains: ``FLOPs / measured time`` when the report was measured
(``measure=True``), so the distance below the roof is what the node loses to overheads the roofline does not
model; otherwise at its roofline time, on the roof itself. Area is the node's share of the total time, colour
its op family (for modules, the roof they are bound by). Needs matplotlib (``pip install "fxflops[plot]"``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FxFlopsError, writing
from ..passes.roofline import main_dtype
from ..units import human

if TYPE_CHECKING:
    from ..report.roofline import Roofline

# Op families by colour (Okabe-Ito, readable by colour-blind readers); anything else is grey.
FAMILIES = (
    ("convolution", ("conv",), "#0072B2"),
    ("linear / matmul", ("linear", "matmul", "bmm", "addmm", "einsum", "baddbmm", "attention"), "#D55E00"),
    ("normalisation", ("norm",), "#009E73"),
    ("activation", ("relu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "softmax", "mish"),
     "#CC79A7"),
    ("elementwise", ("add", "mul", "sub", "div", "pow", "neg", "exp", "sqrt", "rsqrt"), "#E69F00"),
    ("pooling", ("pool",), "#56B4E9"),
)
OTHER = ("other", "#999999")
# Modules mix op families: they are coloured by the roof they spend most of their time under.
BOUND_COLOURS = {"compute": ("compute-bound", "#0072B2"), "memory": ("memory-bound", "#D55E00"), "": OTHER}


def _family(op: str) -> tuple[str, str]:
    for name, keys, colour in FAMILIES:
        if any(k in op for k in keys):
            return name, colour
    return OTHER


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise FxFlopsError('the roofline chart needs matplotlib: pip install "fxflops[plot]"') from None
    return plt


def plot(est: "Roofline", path: str, level: str = "node", depth: int = 2, title: str | None = None) -> Path:
    """Draw the roofline chart of ``est`` into ``path`` (.png, .svg or .pdf); ``level`` is ``"node"`` or
    ``"module"`` (the modules at ``depth``). Returns the path written."""
    if level not in ("node", "module"):
        raise FxFlopsError(f"level must be 'node' or 'module', got {level!r}")
    plt = _pyplot()
    report, device = est.report, est.device
    measured = report.total_measured is not None
    points = []  # (intensity, attained FLOP/s, time, label, family)
    if level == "node":
        for n in report.nodes:
            e = est.nodes.get(n.name)
            if e is None or not (e.flops and e.bytes):
                continue
            t = n.measured if measured and n.measured else e.time
            points.append((e.intensity, e.flops / t, t, n.op, _family(n.op)))
    else:
        for m in report.modules.values():
            e = est.modules.get(m.path)
            if m.depth != depth or e is None or not (e.flops and e.bytes):
                continue
            t = m.measured if measured and m.measured else e.time
            points.append((e.intensity, e.flops / t, t, m.path, BOUND_COLOURS[e.bound.value]))
    if not points:
        raise FxFlopsError("nothing to plot: no node both computes and moves bytes")

    dtype = main_dtype(report.nodes)
    peak, bw = device.peak(dtype), device.attained_bandwidth
    xs = [p[0] for p in points]
    lo, hi = min(xs + [peak / bw]) / 4, max(xs + [peak / bw]) * 4
    total = sum(p[2] for p in points)

    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=130)
    ax.plot([lo, peak / bw, hi], [lo * bw, peak, peak], color="#333333", lw=2, zorder=1)
    ax.axvline(peak / bw, color="#bbbbbb", ls=":", lw=1, zorder=0)
    ax.text(0.02, 0.97, f"roof = min({human(peak)}FLOP/s ({dtype}), intensity × {human(bw)}B/s)\n"
            f"ridge point {peak / bw:.3g} FLOP/B (dotted): compute-bound to its right",
            transform=ax.transAxes, va="top", fontsize=8, color="#333333")
    above = [y / min(peak, x * bw) for x, y, *_ in points if y > 1.05 * min(peak, x * bw)]
    if above:  # measured faster than the roof allows: the roof or the byte count is wrong, and the chart says so
        # under the axes: inside, the memory roof ran through it
        ax.text(0.0, -0.13, f"warning: {len(above)} measured point(s) above the roof (up to {max(above):.2g}×): the "
                "device's figures understate this machine\n(`fxflops devices --recalibrate`), or the kernels moved fewer "
                "bytes than the eager count (fusion, caches)", transform=ax.transAxes, va="top", fontsize=8,
                color="#b22222")
    for x, y, t, _label, (fam, colour) in points:
        ax.scatter([x], [y], s=12 + 900 * t / total, c=colour, alpha=0.7, edgecolors="white", linewidths=0.5,
                   zorder=2)
    used = list(dict.fromkeys(p[4] for p in points))
    handles = [plt.Line2D([], [], ls="", marker="o", ms=6, color=c, alpha=0.8) for _, c in used]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved)")
    ax.set_ylabel("attained FLOP/s" + (" (measured)" if measured else " (roofline estimate)"))
    ax.grid(True, which="major", color="#eeeeee", lw=0.6)
    ax.legend(handles, [f for f, _ in used], fontsize=8, loc="lower right", frameon=False)
    ax.set_title(title or f"{report.model_name} on {device.name}: one point per {level}, area = share of time",
                 fontsize=10)
    fig.tight_layout()
    out = Path(path)
    with writing(out, "the chart"):
        fig.savefig(out)
    plt.close(fig)
    return out
