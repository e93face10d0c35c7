"""Charts people look at instead of reading a table: where the FLOPs go in the module tree (an icicle), and how
a sweep's total grows with the varied size (the points and the fitted polynomial). matplotlib, an optional extra.

The file type follows the suffix (``.png``, ``.svg``, ``.pdf``); nothing is shown on screen.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FxFlopsError, writing
from ..units import human

if TYPE_CHECKING:
    from ..report.report import Report
    from ..report.sweep import Sweep

# Below this share of the root's width a block gets no label: the text would overflow it.
LABEL_MIN_SHARE = 0.035
LABELS = {"macs": "MACs", "flops": "FLOPs", "params": "params"}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise FxFlopsError('charts need matplotlib: pip install "fxflops[plot]" (or pip install matplotlib)') from None
    matplotlib.use("Agg", force=False)  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise FxFlopsError(f"cannot tell the chart's format from {path.name!r}: end the path in .png, .svg or .pdf")
    import matplotlib.pyplot as plt

    with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, editable in a paper
        with writing(path, "the chart"):
            fig.savefig(path, dpi=150, bbox_inches="tight")

    plt.close(fig)
    return path


def icicle_blocks(report: "Report", depth: int = 3, metric: str = "flops") -> list[tuple[str, int, float, float]]:
    """``(path, depth, x, width)`` per module down to ``depth``, widths in units of ``metric``: each module sits
    inside its parent, children left to right in model order; what a parent does outside its children is the
    gap on its right."""
    mods = report.modules
    kids: dict[str, list[str]] = {}
    for p in mods:
        if p:
            kids.setdefault(p.rpartition(".")[0], []).append(p)
    out: list[tuple[str, int, float, float]] = []

    def place(path: str, x: float) -> None:
        row = mods[path]
        width = getattr(row, metric)
        out.append((path, row.depth, x, width))
        if row.depth >= depth:
            return
        for c in kids.get(path, []):
            w = getattr(mods[c], metric)
            if w > 0:
                place(c, x)
                x += w

    place("", 0.0)
    return out


def module_chart(report: "Report", path: str | Path, depth: int = 3, metric: str = "flops") -> Path:
    """An icicle of ``metric`` by module: the root spans the whole width, each row is one level deeper, each
    block's width is its share. Blocks are coloured by their top-level module."""
    plt = _pyplot()
    from matplotlib import colormaps

    blocks = icicle_blocks(report, depth, metric)
    total = blocks[0][3] or 1
    levels = max(b[1] for b in blocks) + 1
    fig, ax = plt.subplots(figsize=(13, 0.9 * levels + 1.2))
    palette = colormaps["tab20"]
    tops = [p for p, d, _, _ in blocks if d == 1]
    for p, d, x, w in blocks:
        top = p.split(".")[0] if p else ""
        if d == 0:
            color = (0.55, 0.58, 0.62, 1.0)
        else:
            r, g, b, _ = palette((2 * tops.index(top)) % 20 if top in tops else 0)
            fade = min(0.55, 0.18 * (d - 1))  # deeper levels lighter: the hierarchy reads top-down
            color = (r + (1 - r) * fade, g + (1 - g) * fade, b + (1 - b) * fade, 1.0)
        ax.barh(-d, w / total, left=x / total, height=0.92, color=color, edgecolor="white", linewidth=0.8)
        if w / total >= LABEL_MIN_SHARE or d == 0:
            name = p.rsplit(".", 1)[-1] if p else report.model_name
            label = f"{name}\n{human(w)} ({100 * w / total:.1f}%)" if w / total >= 0.06 or d == 0 else name
            ax.text((x + w / 2) / total, -d, label, ha="center", va="center", fontsize=8 if d else 9,
                    color="black", clip_on=True)
    ax.set_xlim(0, 1)
    ax.set_ylim(-levels + 0.45, 0.55)
    ax.set_yticks([-d for d in range(levels)], ["model"] + [f"depth {d}" for d in range(1, levels)])
    ax.xaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
    ax.set_xlabel(f"share of {LABELS.get(metric, metric)} ({human(total)} in all)")
    shapes = ", ".join("×".join(map(str, s)) if isinstance(s, tuple) else str(s) for s in report.input_shapes)
    ax.set_title(f"{report.model_name} ({shapes}): {LABELS.get(metric, metric)} by module", loc="left")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return _save(fig, path)


def sweep_chart(sweep: "Sweep", path: str | Path, metric: str = "flops", logscale: bool | None = None) -> Path:
    """The sweep's measured totals (dots) and its fitted polynomial (line), against the last symbol; one line per
    value of the other symbols. With one symbol, each term of the formula is drawn dashed, so the size where the
    T² term overtakes the T term can be read off. ``logscale`` defaults to on when the values span 8× or more."""
    plt = _pyplot()
    import numpy as np

    formula = sweep.formula(metric)
    x_sym, others = sweep.symbols[-1], sweep.symbols[:-1]
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for p, v in zip(sweep.points, sweep.values(metric)):
        groups.setdefault(tuple(p[s] for s in others), []).append((p[x_sym], v))
    xs_all = [x for pts in groups.values() for x, _ in pts]
    lo, hi = min(xs_all), max(xs_all)
    log = logscale if logscale is not None else hi >= 8 * max(lo, 1)
    fig, ax = plt.subplots(figsize=(8, 5))
    dense = np.geomspace(lo, hi, 200) if log and lo > 0 else np.linspace(lo, hi, 200)
    for i, (key, pts) in enumerate(sorted(groups.items())):
        color = f"C{i}"
        name = ", ".join(f"{s}={k}" for s, k in zip(others, key))
        xs, ys = zip(*sorted(pts))
        ax.plot(xs, ys, "o", color=color, label=(name + ": " if name else "") + "measured")
        if formula.fits:
            curve = [_at(formula.terms, key + (t,)) for t in dense]
            ax.plot(dense, curve, "-", color=color, lw=1.5, label=(name + ": " if name else "") + "formula")
    if formula.fits and not others:  # one symbol: each term on its own
        for k, (exps, c) in enumerate(sorted(formula.terms.items())):
            if not any(exps):
                continue
            term = [float(c) * t ** exps[0] for t in dense]
            ax.plot(dense, term, "--", color=f"C{k + 2}", lw=1, label=f"term {_term_label(c, exps, x_sym)}")
    if log:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sorted(set(xs_all)), [str(x) for x in sorted(set(xs_all))])  # the sizes swept, not 2ⁿ
        ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel(x_sym)
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.yaxis.set_major_formatter(lambda v, _: human(int(v)) if v >= 1 else f"{v:g}")
    ax.set_title(str(formula) if len(str(formula)) < 90 else str(formula)[:87] + "...", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _at(terms: dict, point: tuple) -> float:
    total = 0.0
    for exps, c in terms.items():
        m = float(c)
        for x, e in zip(point, exps):
            m *= float(x) ** e
        total += m
    return total


def _term_label(c: Any, exps: tuple[int, ...], sym: str) -> str:
    power = {1: "", 2: "²", 3: "³"}.get(exps[0], f"^{exps[0]}")
    num = f"{int(c):,}" if getattr(c, "denominator", 1) == 1 else str(c)
    return f"{num}·{sym}{power}"
