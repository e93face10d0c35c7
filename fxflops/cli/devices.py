"""``fxflops devices``: the roofline presets and this machine's calibrated cpu."""
from __future__ import annotations

import argparse
import json

from .common import Parser


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="fxflops devices", description="Devices --roofline knows: peak FLOP/s per "
                                "dtype (dense), memory bandwidth and capacity, the ridge point, and where each number comes from.")
    p.add_argument("--recalibrate", action="store_true", help="measure the cpu again instead of reading the cache")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    """The roofline presets with their numbers and sources, and this machine's cpu."""
    from ..devices import DTYPE_KEYS, PRESETS, calibrate_cpu

    devices = [*PRESETS.values(), calibrate_cpu(refresh=args.recalibrate)]
    if args.json:
        print(json.dumps({d.name: d.to_dict() for d in devices}, indent=2))
        return 0
    from ..report.tables import grid

    def tflops(d, key: str) -> str:
        if not isinstance(d.peak_flops, dict):
            return f"{d.peak(key) / 1e12:.3g}" if key == "fp32" else "="
        return f"{d.peak_flops[key] / 1e12:.4g}" if key in d.peak_flops else "-"

    keys = [k for k in DTYPE_KEYS if k != "fp64"]
    rows = [("device", *(f"{k} TFLOP/s" for k in keys), "GB/s", "memory GB", "ridge fp32", "ridge bf16")]
    for d in devices:
        memory = f"{d.memory / 1e9:,.0f}" if d.memory else "-"
        rows.append((d.name, *(tflops(d, k) for k in keys), f"{d.bandwidth / 1e9:,.0f}", memory, f"{d.ridge('fp32'):.3g}",
                     f"{d.ridge('bf16'):.3g}"))
    print(grid(rows, align_right=tuple(range(1, len(rows[0])))))
    print()
    print("ridge: FLOP/byte above which a node is compute-bound; '=': one number for every dtype; "
          "'-': no figure")
    for d in devices:
        print(f"{d.name}: {d.source}")
    return 0
