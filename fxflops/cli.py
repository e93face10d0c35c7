"""The ``fxflops`` command: analyse a model named on the command line and print its report."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import importlib.util
import os
import sys
from typing import Any, Sequence

import torch

from .errors import FxFlopsError

DTYPES = {
    "float": torch.float32, "float32": torch.float32, "float16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "float64": torch.float64, "double": torch.float64,
    "long": torch.int64, "int64": torch.int64, "int": torch.int32, "int32": torch.int32, "bool": torch.bool,
}

EPILOG = """model specs:
  torchvision:resnet50            a torchvision model, built with weights=None
  timm:vit_small_patch16_224      a timm model, built with pretrained=False
  mypkg.models:build_net          any importable callable returning an nn.Module (or an nn.Module instance)
  path/to/file.py:Net             a class or function defined in a Python file

inputs (repeat --input for several positional inputs; name= makes a keyword input):
  --input 1,3,224,224             a float32 tensor of that shape
  --input input_ids=1,128:long    a keyword input of dtype int64 (zeros)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fxflops",
        description="Count the MACs, FLOPs and parameters of a PyTorch model from its torch.fx graph. "
                    "Subcommands (each with --help): fxflops audit MODEL, fxflops compare MODEL [MODEL ...], "
                    "fxflops sweep MODEL --vary T=...",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model spec (see below)")
    add_model_options(p)
    p.add_argument("--depth", type=int, default=2, help="module depth of the per-module table (default 2)")
    p.add_argument("--top", type=int, default=0, metavar="K", help="also list the K costliest nodes")
    p.add_argument("--by-op", action="store_true", help="also print the cost per op type")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON (exact integers)")
    p.add_argument("--ignore", action="append", default=[], metavar="OP",
                   help="op name, method or module class name counted as 0 (repeatable), e.g. dropout, add, ReLU")
    add_export_options(p)
    g = p.add_argument_group("annotated graph")
    g.add_argument("--svg", metavar="PATH", help="draw the annotated graph into PATH (.svg, .png or .pdf); "
                   "each module at --depth becomes one node (a large depth draws every op), --top marks the K costliest")
    g.add_argument("--roll", action="store_true", help="roll identical consecutive blocks into one (×k)")
    g.add_argument("--max-nodes", type=int, default=1500, metavar="N",
                   help="roll and collapse bigger graphs until at most N nodes are drawn (0: no limit; default 1500)")
    return p


def add_export_options(p: argparse.ArgumentParser, chart: str = "an icicle chart of FLOPs by module down to --depth") -> None:
    """Where the numbers go besides the terminal: a spreadsheet, a paper, a picture."""
    g = p.add_argument_group("export")
    g.add_argument("--csv", metavar="PATH", help="also write the table's rows to PATH as CSV (exact integers)")
    g.add_argument("--markdown", action="store_true", help="print the table as a Markdown pipe table")
    g.add_argument("--chart", metavar="PATH", help=f"draw {chart} into PATH (.png/.svg/.pdf; needs fxflops[plot])")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Options that say how to build the model and its example; shared by every subcommand."""
    p.add_argument("--input", action="append", default=[], metavar="SHAPE",
                   help="example input shape, e.g. 1,3,224,224 or ids=1,128:long (repeatable)")
    p.add_argument("--meta", action="store_true",
                   help="build the model and inputs on the meta device: nothing is allocated (large models)")
    p.add_argument("--train", action="store_true", help="analyse in training mode (default: eval mode)")
    p.add_argument("--capture", choices=("auto", "fx", "dynamo"), default="auto",
                   help="graph capture: fx symbolic tracing, dynamo, or auto (fx, falling back to dynamo)")
    p.add_argument("--strict", action="store_true", help="fail when an op has no FLOPs rule")


def parse_input(spec: str, device: torch.device | None = None) -> tuple[str | None, torch.Tensor]:
    """``"1,3,224,224"`` → float tensor; ``"ids=1,128:long"`` → ("ids", int64 zeros)."""
    name = None
    if "=" in spec:
        name, spec = spec.split("=", 1)
    dtype = torch.float32
    if ":" in spec:
        spec, dt = spec.rsplit(":", 1)
        if dt not in DTYPES:
            raise FxFlopsError(f"unknown dtype {dt!r} in --input; use one of {', '.join(sorted(DTYPES))}")
        dtype = DTYPES[dt]
    try:
        shape = tuple(int(s) for s in spec.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise FxFlopsError(f"--input {spec!r} is not a shape; write it like 1,3,224,224") from None
    if dtype.is_floating_point:
        t = torch.randn(shape, dtype=dtype, device=device) if device is None else torch.empty(shape, dtype=dtype, device=device)
    else:
        t = torch.zeros(shape, dtype=dtype, device=device)
    return name, t


def load_model(spec: str) -> torch.nn.Module:
    """Build the model a spec names (see EPILOG)."""
    if ":" not in spec:
        raise FxFlopsError(f"model spec {spec!r} needs a colon: torchvision:NAME, timm:NAME, module:attr or file.py:attr")
    where, attr = spec.rsplit(":", 1)
    if where == "torchvision":
        import torchvision

        return torchvision.models.get_model(attr, weights=None)
    if where == "timm":
        import timm

        return timm.create_model(attr, pretrained=False)
    if where.endswith(".py") or os.sep in where:
        path = os.path.abspath(where)
        if not os.path.exists(path):
            raise FxFlopsError(f"no such file: {where}")
        mod_spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.path.insert(0, os.path.dirname(path))
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    try:
        obj: Any = getattr(module, attr)
    except AttributeError:
        raise FxFlopsError(f"{where} has no attribute {attr!r}") from None
    if not isinstance(obj, torch.nn.Module):
        obj = obj()
    if not isinstance(obj, torch.nn.Module):
        raise FxFlopsError(f"{spec} did not give an nn.Module (got {type(obj).__name__})")
    return obj


def default_input(spec: str, model: torch.nn.Module) -> list[str]:
    """Image models get their natural input size; anything else must be told."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if isinstance(cfg, dict) and cfg.get("input_size"):
        return ["1," + ",".join(str(d) for d in cfg["input_size"])]
    if spec.startswith("torchvision:"):
        size = 299 if "inception" in spec else 224
        return [f"1,3,{size},{size}"]
    raise FxFlopsError("this model needs an example: pass --input SHAPE (e.g. --input 1,3,224,224)")


def build_model(spec: str, args: argparse.Namespace) -> torch.nn.Module:
    """The model a spec names, on the meta device with --meta, in eval mode unless --train."""
    with torch.device("meta") if args.meta else contextlib.nullcontext():
        model = load_model(spec)
    model.train(args.train)
    return model


def prepare(args: argparse.Namespace) -> tuple[torch.nn.Module, Any]:
    """The model (in eval mode unless --train) and its example from the parsed options."""
    model = build_model(args.model, args)
    return model, make_example(args.input or default_input(args.model, model), args.meta)


def make_example(specs: Sequence[str], meta: bool) -> Any:
    """The example of several ``--input`` specs: one tensor, a tuple of them, or a dict of keyword tensors."""
    device = torch.device("meta") if meta else None
    positional, keywords = [], {}
    for s in specs:
        name, t = parse_input(s, device)
        if name:
            keywords[name] = t
        else:
            positional.append(t)
    if keywords and positional:
        raise FxFlopsError("mix of positional and keyword --input values: name them all (name=SHAPE)")
    return keywords or (positional[0] if len(positional) == 1 else tuple(positional))


def analyse(model: torch.nn.Module, example: Any, args: argparse.Namespace, strict: bool | None = None):
    """The report of ``model`` on ``example`` with the options every subcommand shares (``strict`` overrides
    ``--strict``)."""
    from .api import trace_flops

    return trace_flops(model, example, ignore=args.ignore, capture=args.capture,
                       strict=args.strict if strict is None else strict)


def wrote(what: str, path: Any) -> None:
    print(f"fxflops: {what} written to {path}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    model, example = prepare(args)
    report = analyse(model, example, args)
    if args.csv:
        report.to_csv(args.csv, depth=args.depth)
        wrote("CSV", args.csv)
    if args.chart:
        wrote("chart", report.chart(args.chart, depth=args.depth))
    if args.svg:
        out = report.render(args.svg, depth=args.depth, top=args.top, roll=args.roll, max_nodes=args.max_nodes or None)
        print(f"fxflops: graph written to {out}", file=sys.stderr)
    if args.json:
        print(report.to_json())
        return 0
    if args.markdown:
        print(report.to_markdown(depth=args.depth))
        return 0
    print(report.summary())
    print()
    print(report.table(depth=args.depth))
    if args.top:
        print()
        print(report.top_table(args.top))
    if args.by_op:
        print()
        print(report.op_table())
    return 0


def build_audit_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fxflops audit",
        description="Coverage audit: every call target of a model's graph with its rule and status "
                    "(counted/free/ignored/uncounted) and the FLOPs forward hooks cannot see; or, with --api, "
                    "the coverage of the installed torch's public API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="model spec (see below); not needed with --api")
    add_model_options(p)
    p.add_argument("--ignore", action="append", default=[], metavar="OP", help="op counted as 0 (repeatable)")
    p.add_argument("--json", action="store_true", help="print the audit as JSON")
    p.add_argument("--api", action="store_true", help="audit torch's public API (nn, F, torch, Tensor, operator)")
    p.add_argument("--write", metavar="FILE", help="with --api: also write the full table as Markdown to FILE")
    return p


def run_audit(args: argparse.Namespace) -> int:
    """``--strict`` makes the exit status 1 when anything is uncounted."""
    if args.api:
        raise FxFlopsError("the torch API audit is a repository tool since 0.2: run `python -m tools.api_audit` "
                           "(--json, --write FILE) from a source checkout of fxflops")
    if not args.model:
        raise FxFlopsError("fxflops audit needs a model spec, or --api")
    import warnings

    model, example = prepare(args)
    with warnings.catch_warnings():  # the audit lists the uncounted ops itself
        warnings.simplefilter("ignore", UserWarning)
        report = analyse(model, example, args, strict=False)  # --strict sets the exit status, not an error
    result = report.audit()
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.table())
    return 1 if args.strict and result.incomplete else 0


def subcommand(name: str):
    """``(parser, runner)`` of a subcommand, or None for the plain ``fxflops MODEL``."""
    if name == "audit":
        return build_audit_parser(), run_audit
    if name in ("compare", "sweep"):
        from . import cli_compare

        return cli_compare.COMMANDS[name]()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    found = subcommand(argv[0]) if argv else None
    if found:
        (parser, runner), argv = found, argv[1:]
    else:
        parser, runner = build_parser(), run
    args = parser.parse_args(argv)
    try:
        return runner(args)
    except FxFlopsError as exc:
        print(f"fxflops: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
