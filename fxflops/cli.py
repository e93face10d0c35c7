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
        description="Count the MACs, FLOPs and parameters of a PyTorch model from its torch.fx graph.",
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
    g = p.add_argument_group("time: roofline estimate and measured latency")
    g.add_argument("--roofline", metavar="DEVICE",
                   help="estimate each node's time on DEVICE (a100, h100, h200, v100, or cpu: measured here, cached); "
                        "`fxflops devices` lists them")
    g.add_argument("--measure", action="store_true",
                   help="run the graph on real tensors and time every node (median of --repeats runs)")
    g.add_argument("--repeats", type=int, default=5, metavar="N", help="timed runs per node with --measure (default 5)")
    g.add_argument("--device", metavar="DEVICE", help="build the model and inputs on DEVICE (cpu, cuda, cuda:1): "
                   "where --measure runs")
    g = p.add_argument_group("annotated graph")
    g.add_argument("--svg", metavar="PATH", help="draw the annotated graph into PATH (.svg, .png or .pdf); "
                   "each module at --depth becomes one node (a large depth draws every op), --top marks the K costliest")
    g.add_argument("--roll", action="store_true", help="roll identical consecutive blocks into one (×k)")
    g.add_argument("--color", choices=("flops", "time", "bound"), default="flops",
                   help="fill by share of FLOPs (default), of estimated time, or by compute/memory bound, on the "
                        "--roofline device (default cpu)")
    g.add_argument("--max-nodes", type=int, default=1500, metavar="N",
                   help="roll and collapse bigger graphs until at most N nodes are drawn (0: no limit; default 1500)")
    return p


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
        meta = device is not None and device.type == "meta"
        t = torch.empty(shape, dtype=dtype, device=device) if meta else torch.randn(shape, dtype=dtype, device=device)
    else:
        t = torch.zeros(shape, dtype=dtype, device=device)
    return name, t


def _device(name: str | None) -> torch.device | None:
    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FxFlopsError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FxFlopsError(f"--device {name}: this torch sees no CUDA device; use --device cpu")
    return device


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


def prepare(args: argparse.Namespace) -> tuple[torch.nn.Module, Any]:
    """The model (in eval mode unless --train) and its example from the parsed options."""
    device = torch.device("meta") if args.meta else _device(getattr(args, "device", None))
    with torch.device(device) if device is not None else contextlib.nullcontext():
        model = load_model(args.model)
    model.train(args.train)
    specs = args.input or default_input(args.model, model)
    positional, keywords = [], {}
    for s in specs:
        name, t = parse_input(s, device)
        if name:
            keywords[name] = t
        else:
            positional.append(t)
    if keywords and positional:
        raise FxFlopsError("mix of positional and keyword --input values: name them all (name=SHAPE)")
    example: Any = keywords or (positional[0] if len(positional) == 1 else tuple(positional))
    return model, example


def run(args: argparse.Namespace) -> int:
    from .api import trace_flops

    if args.measure and args.meta:
        raise FxFlopsError("--measure runs the model, --meta builds it without weights: drop one of them")
    from .devices import get_device

    roof = get_device(args.roofline) if args.roofline else None  # an unknown name fails before any work
    model, example = prepare(args)
    report = trace_flops(model, example, ignore=args.ignore, capture=args.capture, strict=args.strict,
                         measure=args.measure, repeats=args.repeats)
    est = report.roofline(roof) if roof is not None else None
    if args.svg:
        out = report.render(args.svg, depth=args.depth, top=args.top, roll=args.roll, max_nodes=args.max_nodes or None,
                            color=args.color, device=est.device if est is not None else None)
        print(f"fxflops: graph written to {out}", file=sys.stderr)
    if args.json:
        out = report.to_dict()
        if est is not None:
            out["roofline"] = est.to_dict()
        print(json.dumps(out, indent=2))
        return 0
    print(report.summary())
    if est is not None:
        print(est.summary())
    print()
    print(report.table(depth=args.depth, columns=_columns(args), device=est.device if est else None))
    if args.top:
        print()
        print(est.top_table(args.top) if est is not None else report.top_table(args.top))
    if args.by_op:
        print()
        print(report.op_table())
    return 0


def _columns(args: argparse.Namespace) -> tuple[str, ...]:
    if args.roofline:
        cols = ("params", "flops", "bytes", "intensity", "est_time", "% time", "bound")
        return cols + (("measured", "measured/est") if args.measure else ())
    if args.measure:
        return ("params", "macs", "flops", "% flops", "measured", "% measured")
    return ("params", "macs", "flops", "% flops")


def run_devices(argv: list[str]) -> int:
    """``fxflops devices``: the roofline presets with their numbers and sources, and this machine's cpu."""
    p = argparse.ArgumentParser(prog="fxflops devices", description="Devices --roofline knows: peak FLOP/s per "
                                "dtype (dense), memory bandwidth, the ridge point, and where each number comes from.")
    p.add_argument("--recalibrate", action="store_true", help="measure the cpu again instead of reading the cache")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    args = p.parse_args(argv)
    from .devices import DTYPE_KEYS, PRESETS, calibrate_cpu

    devices = [*PRESETS.values(), calibrate_cpu(refresh=args.recalibrate)]
    if args.json:
        print(json.dumps({d.name: d.to_dict() for d in devices}, indent=2))
        return 0
    from .report.tables import grid

    def tflops(d, key: str) -> str:
        if not isinstance(d.peak_flops, dict):
            return f"{d.peak(key) / 1e12:.3g}" if key == "fp32" else "="
        return f"{d.peak_flops[key] / 1e12:.4g}" if key in d.peak_flops else "-"

    keys = [k for k in DTYPE_KEYS if k != "fp64"]
    rows = [("device", *(f"{k} TFLOP/s" for k in keys), "GB/s", "ridge fp32", "ridge bf16")]
    for d in devices:
        rows.append((d.name, *(tflops(d, k) for k in keys), f"{d.bandwidth / 1e9:,.0f}", f"{d.ridge('fp32'):.3g}",
                     f"{d.ridge('bf16'):.3g}"))
    print(grid(rows, align_right=tuple(range(1, len(rows[0])))))
    print()
    print("ridge: FLOP/byte above which a node is compute-bound; '=': one number for every dtype")
    for d in devices:
        print(f"{d.name}: {d.source}")
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

    from .api import trace_flops

    model, example = prepare(args)
    with warnings.catch_warnings():  # the audit lists the uncounted ops itself
        warnings.simplefilter("ignore", UserWarning)
        report = trace_flops(model, example, ignore=args.ignore, capture=args.capture)
    result = report.audit()
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.table())
    return 1 if args.strict and result.incomplete else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["devices"]:
        try:
            return run_devices(argv[1:])
        except FxFlopsError as exc:
            print(f"fxflops: error: {exc}", file=sys.stderr)
            return 2
    if argv[:1] == ["audit"]:
        parser, runner, argv = build_audit_parser(), run_audit, argv[1:]
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
