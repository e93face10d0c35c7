"""What reusing the fx capture saves in a sweep: ``sweep`` (one trace, copied per point) against a loop of
``trace_flops`` calls (one trace per point), on models built on the meta device.

    python benchmarks/sweep_reuse.py [--repeat N]

Each figure is the best of ``--repeat`` runs (CPU time is shared on a busy machine: the minimum is the least
disturbed), after a warm-up sweep; both ways must give the same totals at every point, and the script says so.
"""
from __future__ import annotations

import argparse
import time

import torch
import torchvision

from fxflops import sweep, trace_flops


def cases():
    with torch.device("meta"):
        vit = torchvision.models.vit_b_16(weights=None).eval()
        resnet = torchvision.models.resnet50(weights=None).eval()
        convnext = torchvision.models.convnext_tiny(weights=None).eval()
    img = lambda m: lambda B: (m, torch.empty(B, 3, 224, 224, device="meta"))  # noqa: E731
    return [("vit_b_16", img(vit), {"B": [1, 2, 4, 8, 16]}),
            ("resnet50", img(resnet), {"B": [1, 2, 4, 8, 16]}),
            ("convnext_tiny", img(convnext), {"B": [1, 2, 4, 8, 16]})]


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("| model | points | sweep (capture reused) | trace_flops per point | saved | same totals |")
    print("|---|---:|---:|---:|---:|---|")
    for name, build, values in cases():
        sweep(build, **values)  # warm-up: first-call imports and caches
        t_sweep, s = best(lambda: sweep(build, **values), args.repeat)
        t_loop, reports = best(lambda: [trace_flops(*build(**p)) for p in s.points], args.repeat)
        same = [r.total_flops for r in s.reports] == [r.total_flops for r in reports]
        print(f"| {name} | {len(s.points)} | {t_sweep:.2f} s | {t_loop:.2f} s | {1 - t_sweep / t_loop:.0%} | {same} |")


if __name__ == "__main__":
    main()
