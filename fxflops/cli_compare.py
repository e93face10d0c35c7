"""The ``fxflops compare`` and ``fxflops sweep`` subcommands: several models or inputs side by side, and one
model over a grid of sizes with the exact formula of its cost."""
from __future__ import annotations

import argparse
import json
import re
from typing import Any

import torch

from .cli import EPILOG, add_export_options, add_model_options, analyse, build_model, default_input, make_example, wrote
from .errors import FxFlopsError

COMPARE_EPILOG = """variants:
  fxflops compare torchvision:resnet34 torchvision:mobilenet_v3_large --input 1,3,224,224   two models, one input
  fxflops compare torchvision:resnet50 --input 1,3,224,224 --input 8,3,224,224            one model, two inputs
  fxflops compare a.py:Net b.py:Net --input 1,3,64,64 --input 1,3,128,128                 model i gets input i
each --input is one variant's whole example; several tensors of one example are joined with ';':
  --input 'input_ids=1,128:long;attention_mask=1,128:long'

""" + EPILOG

SWEEP_EPILOG = """sizes:
  fxflops sweep lm.py:build --input input_ids=1,T:long --vary T=128,256,512,1024 --meta
  fxflops sweep lm.py:build --input input_ids=B,T:long --vary B=1,2,4 --vary T=64,128,256,512
a dimension of --input may be a symbol that --vary lists values for; every combination is analysed.
A formula of degree d in a symbol needs d + 2 of its values: d + 1 to solve it, one more to check it.

""" + EPILOG


def build_compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fxflops compare",
        description="Compare models or inputs: totals, per-module and per-op MACs, FLOPs and params with absolute "
                    "and relative deltas against the first. Modules are aligned by path, then by position and type; "
                    "the rest is listed as present in one only.",
        epilog=COMPARE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="MODEL", help="model specs (see below)")
    add_model_options(p)
    p.add_argument("--ignore", action="append", default=[], metavar="OP", help="op counted as 0 (repeatable)")
    p.add_argument("--depth", type=int, default=2, help="module depth of the table (default 2)")
    p.add_argument("--by-op", action="store_true", help="also print the deltas per op type")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON (exact integers)")
    g = p.add_argument_group("export")
    g.add_argument("--csv", metavar="PATH", help="also write the aligned module rows to PATH as CSV")
    g.add_argument("--markdown", action="store_true", help="print the table as a Markdown pipe table")
    return p


def variants(args: argparse.Namespace) -> list[tuple[str, list[str] | None]]:
    """``(model spec, input specs or None for the model's default)`` per variant."""
    models, inputs = args.models, [[s for s in i.split(";") if s.strip()] for i in args.input]
    if not inputs:
        return [(m, None) for m in models]
    if len(inputs) == 1:
        return [(m, inputs[0]) for m in models]
    if len(models) == 1:
        return [(models[0], i) for i in inputs]
    if len(models) == len(inputs):
        return list(zip(models, inputs))
    raise FxFlopsError(f"{len(models)} models and {len(inputs)} --input values: give one --input for all, "
                       "one per model, or several for a single model")


def run_compare(args: argparse.Namespace) -> int:
    from .report.compare import compare

    todo = variants(args)
    if len(todo) < 2:
        raise FxFlopsError("compare needs two variants: two models, or one model with two --input values")
    built: dict[str, Any] = {}
    reports, names = [], []
    for spec, inputs in todo:
        if spec not in built:
            built[spec] = build_model(spec, args)
        model = built[spec]
        inputs = inputs or default_input(spec, model)
        reports.append(analyse(model, make_example(inputs, torch.device("meta") if args.meta else None), args))
        names.append(spec if [s for s, _ in todo].count(spec) == 1 else f"{spec} {';'.join(inputs)}")
    c = compare(*reports, names=names)
    if args.csv:
        c.to_csv(args.csv, depth=args.depth)
        wrote("CSV", args.csv)
    if args.json:
        print(json.dumps(c.to_dict(), indent=2))
    elif args.markdown:
        print(c.to_markdown(depth=args.depth))
    else:
        print(c.table(depth=args.depth))
        if args.by_op:
            print()
            print(c.op_table())
    return 0


def build_sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fxflops sweep",
        description="Analyse one model over a grid of input sizes and give each total as an exact polynomial in "
                    "the sizes (integer or rational coefficients), checked at sizes the fit did not use.",
        epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model spec (see below)")
    add_model_options(p)
    p.add_argument("--vary", action="append", default=[], metavar="SYM=V1,V2,...", required=True,
                   help="a symbol of --input and its values (repeatable: every combination is analysed)")
    p.add_argument("--ignore", action="append", default=[], metavar="OP", help="op counted as 0 (repeatable)")
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


def run_sweep(args: argparse.Namespace) -> int:
    from .sweeping import sweep

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
              **values)
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


COMMANDS = {
    "compare": lambda: (build_compare_parser(), run_compare),
    "sweep": lambda: (build_sweep_parser(), run_sweep),
}
