"""``fxflops sweep``: one model over a grid of sizes, with the exact formula of its cost."""
from __future__ import annotations

import argparse
import json
import re

import torch

from ..errors import FxFlopsError
from .common import EPILOG, Parser, add_export_options, add_model_options, build_model, default_input, make_example, wrote

SWEEP_EPILOG = """sizes:
  fxflops sweep lm.py:build --input input_ids=1,T:long --vary T=128,256,512,1024 --meta
  fxflops sweep lm.py:build --input input_ids=B,T:long --vary B=1,2,4 --vary T=64,128,256,512
a dimension of --input may be a symbol that --vary lists values for; every combination is analysed.
A formula of degree d in a symbol needs d + 2 of its values: d + 1 to solve it, one more to check it.

""" + EPILOG


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="fxflops sweep",
        description="Analyse one model over a grid of input sizes and give each total as an exact polynomial in "
                    "the sizes (integer or rational coefficients), checked at sizes the fit did not use.",
        epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model spec (see below)")
    add_model_options(p)
    p.add_argument("--vary", action="append", default=[], metavar="SYM=V1,V2,...", required=True,
                   help="a symbol of --input and its values (repeatable: every combination is analysed)")
    p.add_argument("--ignore", action="append", default=[], metavar="OP", help="op counted as 0 (repeatable)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="analyse N points at once, in worker processes (same results; a progress bar on a terminal)")
    p.add_argument("--json", action="store_true", help="print the points and formulas as JSON (exact integers)")
    add_export_options(p, chart="the points and the fitted curve of --metric")
    p.add_argument("--metric", choices=("macs", "flops", "params"), default="flops", help="what --chart draws")
    return p


def parse_vary(specs: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        if not re.fullmatch(r"[A-Za-z_]\w*", name.strip()) or not values:
            raise FxFlopsError(f"--vary {spec!r}: write it as a symbol and its values, e.g. --vary T=128,256,512,1024")
        try:
            out[name.strip()] = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise FxFlopsError(f"--vary {spec!r}: the values must be integers") from None
    return out


def substitute(spec: str, point: dict[str, int]) -> str:
    """``input_ids=1,T:long`` at ``T=128`` → ``input_ids=1,128:long``; a symbol no --vary gives is an error."""
    name, eq, rest = spec.rpartition("=") if "=" in spec else ("", "", spec)
    dims, colon, dtype = rest.partition(":")

    def one(tok: str) -> str:
        tok = tok.strip()
        if re.fullmatch(r"[A-Za-z_]\w*", tok):
            if tok not in point:
                raise FxFlopsError(f"--input {spec!r} uses {tok}, which no --vary gives values for")
            return str(point[tok])
        return tok

    return name + eq + ",".join(one(t) for t in dims.split(",")) + colon + dtype


def run(args: argparse.Namespace) -> int:
    from ..sweeping import sweep

    if args.jobs < 1:
        raise FxFlopsError(f"--jobs {args.jobs}: give the number of worker processes, 1 or more")
    values = parse_vary(args.vary)
    model = build_model(args.model, args)
    inputs = args.input or default_input(args.model, model)
    used = {t for s in inputs for t in re.findall(r"[A-Za-z_]\w*", s.split("=")[-1].split(":")[0])}
    unused = [s for s in values if s not in used]
    if unused:
        raise FxFlopsError(f"--vary {', '.join(unused)}: no --input dimension is named so (e.g. --input 1,{unused[0]})")

    def build(**point: int):
        return model, make_example([substitute(s, point) for s in inputs], torch.device("meta") if args.meta else None)

    s = sweep(build, trace_options={"ignore": args.ignore, "capture": args.capture, "strict": args.strict},
              workers=args.jobs, **values)
    if args.csv:
        s.to_csv(args.csv)
        wrote("CSV", args.csv)
    if args.chart:
        wrote("chart", s.chart(args.chart, metric=args.metric))
    if args.json:
        print(json.dumps(s.to_dict(), indent=2))
    elif args.markdown:
        print(s.to_markdown())
    else:
        print(s)
    return 0
