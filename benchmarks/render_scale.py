"""How long drawing the annotated graph takes, by graph size.

    python benchmarks/render_scale.py            # 250 ... 5,000 drawn nodes
    python benchmarks/render_scale.py --quick    # up to 1,000
    python benchmarks/render_scale.py --plain    # also time dot with its default options (minutes)

The models are op-level transformer encoders (tests/tiny_transformer.py) built on the meta device,
deep enough to give the wanted number of drawn nodes. "identical" stacks identical layers, which
``roll`` folds into one; "distinct" gives every layer its own MLP width, so only collapsing helps.
Columns:

* ``export`` — ``to_networkx`` + choosing the view of every op + writing DOT, in Python;
* ``full`` — ``render(..., depth=None, max_nodes=None)``: every node drawn, dot with the size-based options;
* ``plain dot`` — the same DOT through dot's default options (``--plain``), the reason for them;
* ``every op`` — ``render(..., depth=None)``: past ``max_nodes`` (1,500) the graph is rolled and collapsed until
  it fits; ``drawn`` is what is left, ``view`` how it got there;
* ``default`` — ``render(...)`` as the CLI's ``--svg`` does it: the cost-guided picture (``depth="auto"``),
  which opens the costliest modules while the picture fits a 1400×1000 window; ``drawn`` is its node count.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from tiny_transformer import TinyEncoder  # noqa: E402

import fxflops  # noqa: E402
from fxflops.draw import dot as rd  # noqa: E402

NODES_PER_LAYER = 26  # drawn nodes per encoder layer once scalar-only nodes are hidden


def build(layers: int, distinct: bool) -> TinyEncoder:
    with torch.device("meta"):
        model = TinyEncoder(vocab=1000, dim=64, heads=4, layers=layers, seq=32)
        if distinct:
            for i, layer in enumerate(model.layers):
                layer.mlp = nn.Sequential(nn.Linear(64, 256 + 8 * i), nn.GELU(), nn.Linear(256 + 8 * i, 64))
    return model.eval()


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def plain_dot(g, view, timeout: float) -> str:
    """Seconds dot takes on the same picture with its own defaults (no cap on iterations)."""
    big, rd.BIG = rd.BIG, float("inf")
    try:
        src = rd.view_to_dot(g, view)
    finally:
        rd.BIG = big
    t = time.perf_counter()
    try:
        subprocess.run(["dot", "-Tsvg", "-o", os.devnull], input=src.encode(), timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return f">{timeout:.0f}"
    return f"{time.perf_counter() - t:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="sizes up to 1,000 drawn nodes")
    ap.add_argument("--plain", action="store_true", help="also time dot with its default options")
    ap.add_argument("--timeout", type=float, default=300, help="give up on plain dot after this many seconds")
    args = ap.parse_args()
    sizes = (250, 500, 1000) if args.quick else (250, 500, 1000, 2000, 5000)
    dot_version = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip()
    print(f"{dot_version}; torch {torch.__version__}; {os.cpu_count()} CPUs")
    head = f"{'model':>9} {'layers':>6} {'fx nodes':>8} {'drawn':>6} {'export s':>8} {'full s':>7}"
    head += f" {'plain dot s':>11}" if args.plain else ""
    head += f" {'every op s':>10} {'drawn':>6} {'view':>15} {'default s':>9} {'drawn':>6}"
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        svg = os.path.join(tmp, "g.svg")
        for distinct in (False, True):
            for size in sizes:
                layers = max(1, size // NODES_PER_LAYER)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    report = fxflops.trace_flops(build(layers, distinct), torch.zeros(1, 32, dtype=torch.long, device="meta"))

                def export():
                    g = report.to_networkx()
                    view = rd.choose_view(g, depth=None, max_nodes=None)
                    return g, view, rd.view_to_dot(g, view)

                (g, view, _), t_export = timed(export)
                _, t_full = timed(lambda: report.render(svg, depth=None, max_nodes=None))
                row = (f"{'distinct' if distinct else 'identical':>9} {layers:>6} {len(report.nodes):>8,} "
                       f"{len(view.nodes):>6,} {t_export:>8.2f} {t_full:>7.2f}")
                if args.plain:
                    row += f" {plain_dot(g, view, args.timeout):>11}"
                small = rd.choose_view(g, depth=None)
                _, t_every = timed(lambda: report.render(svg, depth=None))
                how = "as is" if not small.notes else ("rolled" if small.depth is None else f"rolled, depth {small.depth}")
                guided = rd.choose_view(g, depth="auto")
                _, t_default = timed(lambda: report.render(svg))
                print(row + f" {t_every:>10.2f} {len(small.nodes):>6,} {how:>15} {t_default:>9.2f} {len(guided.nodes):>6,}",
                      flush=True)


if __name__ == "__main__":
    main()
