"""``fxflops compare``: several models or inputs side by side, module by module."""
from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from ..errors import FxFlopsError
from .common import (EPILOG, Parser, add_model_options, analyse, at_least, build_model, default_input,
                     make_example, wrote)

COMPARE_EPILOG = """variants:
  fxflops compare torchvision:resnet34 torchvision:mobilenet_v3_large --input 1,3,224,224   two models, one input
  fxflops compare torchvision:resnet50 --input 1,3,224,224 --input 8,3,224,224            one model, two inputs
  fxflops compare a.py:Net b.py:Net --input 1,3,64,64 --input 1,3,128,128                 model i gets input i
each --input is one variant's whole example; several tensors of one example are joined with ';':
  --input 'input_ids=1,128:long;attention_mask=1,128:long'

""" + EPILOG


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="fxflops compare",
        description="Compare models or inputs: totals, per-module and per-op MACs, FLOPs and params with absolute "
                    "and relative deltas against the first. Modules are aligned by path, then by position and type; "
                    "the rest is listed as present in one only.",
        epilog=COMPARE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="MODEL", help="model specs (see below)")
    add_model_options(p)
    p.add_argument("--ignore", action="append", default=[], metavar="OP", help="op counted as 0 (repeatable)")
    p.add_argument("--depth", type=at_least(0), default=2, help="module depth of the table (default 2)")
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


def run(args: argparse.Namespace) -> int:
    from ..report.compare import compare

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
