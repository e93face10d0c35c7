"""``fxflops serve``: prefill, decode, KV cache and tokens/s of a causal LM on a device (docs/llm.md)."""
from __future__ import annotations

import argparse
import json

from ..errors import FxFlopsError
from .common import EPILOG, Parser, at_least, build_model, wrote

SERVE_EPILOG = """example:
  fxflops serve hf:path/to/config_dir --device h100 --prompt 1024 --generate 256 --batch 1,8,64 --weights int8

""" + EPILOG


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="fxflops serve",
        description="Estimate serving a causal language model from its graph: time to first token (prefill), time "
                    "per output token (decode), tokens/s, weights + KV cache + activations against the device's "
                    "memory, at each batch size. The model is built on meta: no weights are loaded.",
        epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model spec, e.g. hf:path/to/config_dir (see below)")
    p.add_argument("--device", default="h100", help="device preset (a100, h100, h200, v100; `fxflops devices`)")
    p.add_argument("--prompt", type=at_least(1), default=1024, help="prompt tokens (default 1024)")
    p.add_argument("--generate", type=at_least(1), default=256, help="generated tokens (default 256)")
    p.add_argument("--batch", default="1,8,64", help="batch sizes, comma-separated (default 1,8,64)")
    p.add_argument("--weights", choices=("int8", "int4"), help="size linear weights at int8/int4 (weight-only)")
    p.add_argument("--kv-dtype", metavar="DTYPE", help="size the KV cache at this dtype (float8_e4m3fn, int8...)")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.add_argument("--chart", metavar="PATH", help="draw decode time vs context and tokens/s vs batch (fxflops[plot])")
    p.set_defaults(meta=True, train=False)  # what build_model reads: serving is estimated on meta, in eval mode
    return p


def run(args: argparse.Namespace) -> int:
    from ..llm import serving

    try:
        batches = [int(b) for b in args.batch.split(",") if b.strip()]
    except ValueError:
        raise FxFlopsError(f"--batch {args.batch!r}: give batch sizes as integers, e.g. --batch 1,8,64") from None
    model = build_model(args.model, args)
    est = serving(model, device=args.device, prompt=args.prompt, generate=args.generate, batch=batches,
                  weights=args.weights, kv_dtype=args.kv_dtype)
    print(json.dumps(est.to_dict(), indent=2) if args.json else est.table())
    if args.chart:
        wrote("serving chart", est.chart(args.chart))
    return 0
