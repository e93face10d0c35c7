"""``sweep(workers=N)`` against the serial sweep: wall time, and whether every point's report is the same.

    python benchmarks/sweep_workers.py [--workers 2] [--write benchmarks/results/sweep_workers.md]

The cases are sweeps whose points each take a second or more (a training step of GPT-2 on the record path, ViT-B/16
captured by dynamo), where worker processes have something to save; a sweep of cheap fx points reuses one trace and
gains little from them. "same" compares every point's report as JSON, every formula and the sweep's table.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import torch
import torchvision

import fxflops
from fxflops import sweep


def cases():
    import transformers

    cfg = transformers.GPT2Config()  # GPT-2 small: 12 layers, d=768
    with torch.device("meta"):
        gpt2 = transformers.GPT2LMHeadModel(cfg)
        vit = torchvision.models.vit_b_16(weights=None).eval()
    ids = lambda T: (gpt2, {"input_ids": torch.zeros(1, T, dtype=torch.long, device="meta")})  # noqa: E731
    img = lambda B: (vit, torch.empty(B, 3, 224, 224, device="meta"))  # noqa: E731
    return [("GPT-2 training step (record)", ids, {"T": [128, 256, 384, 512, 640, 768]}, {"mode": "train"}),
            ("ViT-B/16 (dynamo)", img, {"B": [1, 2, 3, 4, 5, 6]}, {"capture": "dynamo"})]


def found(s: fxflops.Sweep) -> tuple:
    table = [line for line in str(s).splitlines() if "reused for" not in line]
    return [r.to_json() for r in s.reports], table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--write", metavar="FILE", help="write the table as Markdown to FILE")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = [f"| sweep | points | workers=1 | workers={args.workers} | speed-up | same reports |", "|---|---:|---:|---:|---:|---|"]
    for name, build, values, options in cases():
        times, results = [], []
        for w in (1, args.workers):
            t = time.perf_counter()
            s = sweep(build, trace_options=options, workers=w, **values)
            times.append(time.perf_counter() - t)
            results.append(found(s))
        rows.append(f"| {name} | {len(s.points)} | {times[0]:.1f} s | {times[1]:.1f} s | {times[0] / times[1]:.2f}× | "
                    f"{results[0] == results[1]} |")
        print(rows[-1], flush=True)
    text = "\n".join(rows)
    print(text)
    if args.write:
        with open(args.write, "w") as f:
            f.write("# `sweep(workers=N)` against the serial sweep (#25)\n\n"
                    f"`python benchmarks/sweep_workers.py --workers {args.workers} --write {args.write}` on "
                    f"{os.cpu_count()} CPU cores, torch {torch.__version__}, Python {platform.python_version()}, "
                    f"fxflops {fxflops.__version__}:\n\n{text}\n")


if __name__ == "__main__":
    main()
