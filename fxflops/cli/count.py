"""``fxflops MODEL``: the report of one model: totals, the per-module table, top nodes, exports and the picture."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import FxFlopsError
from .common import EPILOG, Parser, add_export_options, add_model_options, at_least, count, needs, tell_shortfall, wrote

SUBCOMMAND = """subcommand:
  fxflops audit MODEL             every op target of the model with its rule and status (fxflops audit --help)

"""


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="fxflops",
        description="Count the MACs, FLOPs and parameters of a PyTorch model from its torch.fx graph.\n"
                    "Subcommands (each with --help): fxflops audit MODEL, fxflops compare MODEL [MODEL ...], "
                    "fxflops sweep MODEL --vary T=..., fxflops devices.",
        epilog=SUBCOMMAND + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model spec (see below), or `audit MODEL` for the coverage audit")
    add_model_options(p)
    p.add_argument("--depth", type=at_least(0), default=None,
                   help="module depth of the per-module table (default 2) and of the --svg picture (default: "
                        "cost-guided, the modules that hold the FLOPs opened)")
    p.add_argument("--top", type=at_least(0), default=0, metavar="K", help="also list the K costliest nodes")
    p.add_argument("--by-op", action="store_true", help="also print the cost per op type")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON (exact integers)")
    p.add_argument("--memory", action="store_true",
                   help="also print the memory: weights and peak live activations (with --mode train: of a step)")
    p.add_argument("--ignore", action="append", default=[], metavar="OP",
                   help="op name, method or module class name counted as 0 (repeatable), e.g. dropout, add, ReLU")
    g = p.add_argument_group("time: roofline estimate and measured latency")
    g.add_argument("--bytes", choices=("eager", "fused"), default="eager",
                   help="byte model: one kernel per node (eager, the default) or kernels fused as a serving stack "
                        "runs them (fused: chains, flash attention, in-place KV cache; docs/llm.md)")
    g.add_argument("--roofline", metavar="DEVICE",
                   help="estimate each node's time on DEVICE (a100, h100, h200, v100, or cpu: measured here, cached); "
                        "`fxflops devices` lists them")
    g.add_argument("--measure", action="store_true",
                   help="run the graph on real tensors and time every node (median of --repeats runs)")
    g.add_argument("--repeats", type=at_least(1), default=None, metavar="N",
                   help="timed runs per node with --measure (default 5)")
    g.add_argument("--device", metavar="DEVICE", help="build the model and inputs on DEVICE (cpu, cuda, cuda:1): "
                   "where --measure runs")
    add_export_options(p)
    g = p.add_argument_group("annotated graph")
    g.add_argument("--svg", metavar="PATH", help="draw the annotated graph into PATH (.svg, .png or .pdf); "
                   "by default the modules that hold the FLOPs are opened and the rest collapsed; with --depth each "
                   "module at that depth becomes one node (a large depth draws every op); --top marks the K costliest "
                   "nodes, the ones its table lists")
    g.add_argument("--html", metavar="PATH", help="write the explorer into PATH (.html): one self-contained page to "
                   "walk the model's graph by cost, coloured as --color says")
    g.add_argument("--roll", action="store_true", help="roll identical consecutive blocks into one (×k); the default "
                   "picture, without --depth, always does")
    g.add_argument("--color", choices=("flops", "time", "bound"), default=None,
                   help="fill by share of FLOPs (default), of estimated time, or by compute/memory bound, on the "
                        "--roofline device (default cpu)")
    g.add_argument("--columns", type=at_least(0), default=None, metavar="N",
                   help="wrap the graph into N side-by-side columns, cut between modules (0: as many as fit a "
                        "screen best, the default; 1: one tall strip)")
    g.add_argument("--max-nodes", type=at_least(0), default=None, metavar="N",
                   help="roll and collapse bigger graphs until at most N nodes are drawn (0: no limit; default 1500)")
    return p


def check_output(path: str) -> None:
    """Refuse an --svg path that cannot be written before the model is even built."""
    from ..draw.dot import FORMATS

    p = Path(path)
    if p.suffix.lower().lstrip(".") not in FORMATS:
        raise FxFlopsError(f"--svg {path!r}: the file name must end in {', '.join('.' + f for f in FORMATS)}")
    folder = p.parent
    if not folder.is_dir():
        raise FxFlopsError(f"--svg {path!r}: there is no directory {str(folder)!r}; create it first")
    if not os.access(folder, os.W_OK):
        raise FxFlopsError(f"--svg {path!r}: the directory {str(folder)!r} is not writable")


def check_html(path: str) -> None:
    """Refuse an --html path that cannot be written before the model is even built."""
    p = Path(path)
    if p.suffix.lower() not in (".html", ".htm"):
        raise FxFlopsError(f"--html {path!r}: the file name must end in .html")
    if not p.parent.is_dir() or not os.access(p.parent, os.W_OK):
        raise FxFlopsError(f"--html {path!r}: {str(p.parent)!r} is not a directory you can write to; create it first")


def run(args: argparse.Namespace) -> int:
    if args.measure and args.meta:
        raise FxFlopsError("--measure runs the model, --meta builds it without weights: drop one of them")
    from ..devices import get_device

    needs(args, "svg", "roll", "columns", "max_nodes")
    if not args.html:  # --color fills the picture and the explorer alike
        needs(args, "svg", "color")
    needs(args, "measure", "repeats")
    args.repeats = args.repeats or 5
    roof = get_device(args.roofline) if args.roofline is not None else None  # an unknown name fails before any work
    if args.optimizer and args.mode != "train":
        raise FxFlopsError("--optimizer prices the memory of a training step: add --mode train")
    if args.svg:
        check_output(args.svg)
    if args.html:
        check_html(args.html)
    svg_depth = "auto" if args.depth is None else args.depth
    args.depth = 2 if args.depth is None else args.depth
    report = count(args)
    tell_shortfall(report, args.strict)
    if args.csv:
        report.to_csv(args.csv, depth=args.depth)
        wrote("CSV", args.csv)
    if args.chart:
        wrote("chart", report.chart(args.chart, depth=args.depth))
    est = report.roofline(roof) if roof is not None else None
    if args.json:
        out = report.to_dict()
        if est is not None:
            out["roofline"] = est.to_dict()
        if args.optimizer or args.memory:
            out["memory"] = report.memory(args.optimizer).to_dict()
        print(json.dumps(out, indent=2))
    elif args.markdown:
        print(report.to_markdown(depth=args.depth))
    else:
        print(report.summary())
        if est is not None:
            print(est.summary())
        if args.optimizer or args.memory:
            what = f"a step ({args.optimizer or 'adam'})" if args.mode == "train" else "inference"
            print(f"memory of {what}: {report.memory(args.optimizer)}")
        print()
        print(report.table(depth=args.depth, columns=_columns(args), device=est.device if est else None))
        if args.top:
            print()
            print(est.top_table(args.top) if est is not None else report.top_table(args.top))
        if args.by_op:
            print()
            print(report.op_table())
    if args.svg:  # after the report: a drawing that fails loses nothing printed
        sys.stdout.flush()
        out = report.render(args.svg, depth=svg_depth, top=args.top, roll=args.roll or None,
                            max_nodes=1500 if args.max_nodes is None else args.max_nodes or None,
                            color=args.color or "flops", device=est.device if est is not None else None,
                            columns=args.columns or None)
        print(f"fxflops: graph written to {out}", file=sys.stderr)
    if args.html:  # after the report too, like --svg
        sys.stdout.flush()
        wrote("explorer", report.explore(args.html, color=args.color or "flops",
                                         device=est.device if est is not None else None))
    return 0


def _columns(args: argparse.Namespace) -> tuple[str, ...]:
    if args.roofline:
        cols = ("params", "flops", "bytes", "intensity", "est_time", "% time", "bound")
        return cols + (("measured", "measured/est") if args.measure else ())
    if args.measure:
        return ("params", "macs", "flops", "% flops", "measured", "% measured")
    if getattr(args, "mode", "infer") == "train":
        return ("params", "fwd_flops", "bwd_flops", "flops", "% flops")
    return ("params", "macs", "flops", "% flops")
