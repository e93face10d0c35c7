"""``fxflops check MODEL``: a budget gate for CI. Exit 1 when the model exceeds a budget (FLOPs, MACs, params,
bytes) or grew past a saved baseline, each finding on one line with the module most responsible; 0 otherwise."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import FxFlopsError
from ..units import human
from .common import EPILOG, Parser, add_model_options, count, tell_shortfall

METRICS = ("flops", "macs", "params", "bytes")
SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
SHOWN = 10  # grown modules listed per metric

CHECK_EPILOG = """examples:
  fxflops check torchvision:resnet50 --max-flops 9G --max-params 30M
  fxflops torchvision:resnet50 --json > base.json            # save a baseline on main
  fxflops check torchvision:resnet50 --baseline base.json --tolerance 1% --format github

budgets take K/M/G/T/P suffixes (powers of 1000, as the tables print them); a trailing B is allowed for bytes.
exit status: 0 within every budget, 1 a budget exceeded or the baseline outgrown, 2 a usage error.

""" + EPILOG


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="fxflops check",
        description="Fail (exit 1) when a model's FLOPs, MACs, parameters or bytes exceed a budget, or grew past a "
                    "saved --json report by more than --tolerance; one line per finding, naming the value, the "
                    "limit and the module most responsible.",
        epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model spec (see below)")
    add_model_options(p)
    p.add_argument("--ignore", action="append", default=[], metavar="OP", help="op counted as 0 (repeatable)")
    for m in METRICS:
        p.add_argument(f"--max-{m}", metavar="N", help=f"the budget of total {m} (e.g. 5G, 30M, 1.5e9)")
    p.add_argument("--baseline", metavar="JSON", help="a report saved with `fxflops MODEL --json`: fail when a total "
                   "grew by more than --tolerance, listing the modules that grew")
    p.add_argument("--tolerance", default="0", help="growth allowed against --baseline: 1%% or 0.01 (default 0)")
    p.add_argument("--format", choices=("text", "github"), default="text",
                   help="github: GitHub Actions ::error / ::notice annotations")
    return p


def parse_amount(text: str, what: str) -> int:
    """``5G`` → 5,000,000,000; ``30M``, ``1.5e9``, ``2GB``; a budget must be a non-negative number."""
    m = re.fullmatch(r"\s*([0-9.]+(?:e[+-]?[0-9]+)?)\s*([KMGTP]?)B?\s*", str(text), re.IGNORECASE)
    if m is None:
        raise FxFlopsError(f"{what} {text!r} is not an amount: give a number with an optional K/M/G/T/P suffix, "
                           "e.g. 5G or 30M")
    return round(float(m.group(1)) * SUFFIX[m.group(2).upper()])


def parse_tolerance(text: str) -> float:
    t = str(text).strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise FxFlopsError(f"--tolerance {text!r} is not a number: give 1% or 0.01") from None
    if value < 0:
        raise FxFlopsError(f"--tolerance {text!r} is negative: give the growth allowed, e.g. 1%")
    return value


def culprit(modules: Iterable[Any], metric: str) -> str:
    """The module most responsible for ``metric``: the costliest top-level module, then down through the child
    that holds most of it, while one holds at least half."""
    rows = {m.path: m for m in modules}
    best = None
    children = [m for m in rows.values() if m.depth == 1]
    while children:
        top = max(children, key=lambda m: getattr(m, metric))
        if best is not None and getattr(top, metric) * 2 < getattr(best, metric) or not getattr(top, metric):
            break
        best = top
        children = [m for m in rows.values() if m.depth == top.depth + 1 and m.path.startswith(top.path + ".")]
    if best is None:
        return "the model's own forward (no submodule)"
    root = getattr(rows.get(""), metric, 0) or 1
    return f"{best.path} ({best.type}): {human(getattr(best, metric))}, {getattr(best, metric) / root:.0%}"


def budget_findings(report: Any, limits: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """(exceeded, within): one line per budget."""
    over, ok = [], []
    for metric, limit in limits.items():
        value = getattr(report, f"total_{metric}")
        if value > limit:
            over.append(f"{metric} {human(value)} ({value:,}) exceeds the budget {human(limit)} by "
                        f"{(value - limit) / limit if limit else float('inf'):.1%}; top module: "
                        f"{culprit(report.modules.values(), metric)}")
        else:
            ok.append(f"{metric} {human(value)} within {human(limit)}")
    return over, ok


def baseline_findings(report: Any, path: str, tolerance: float) -> tuple[list[str], list[str]]:
    """(grown, held): totals against the saved report, each grown total with the modules that grew most."""
    try:
        base = json.loads(Path(path).read_text())
        totals = {m: int(base[f"total_{m}"]) for m in METRICS if f"total_{m}" in base}
        before = {row["path"]: row for row in base.get("modules", [])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FxFlopsError(f"--baseline {path}: cannot read it ({exc}); save one with `fxflops MODEL --json > "
                           f"{path}`") from None
    if not totals:
        raise FxFlopsError(f"--baseline {path} holds no totals; save one with `fxflops MODEL --json > {path}`")
    grown, held = [], []
    for metric, old in totals.items():
        new = getattr(report, f"total_{metric}")
        limit = old * (1 + tolerance)
        change = f"{metric} {human(old)} -> {human(new)} ({(new - old) / old if old else 0:+.2%})"
        if new <= limit:
            held.append(f"{change}, within {tolerance:.2%} of the baseline")
            continue
        rows = [(m.path, m.type, before.get(m.path, {}).get(metric, 0), getattr(m, metric))
                for m in report.modules.values() if m.path]
        leaves = [r for r in rows if r[3] > r[2] and not any(o[0].startswith(r[0] + ".") and o[3] > o[2] for o in rows)]
        leaves.sort(key=lambda r: r[3] - r[2], reverse=True)
        listed = "; ".join(f"{p} ({t}) {human(a)} -> {human(b)}" + ("" if p in before else " (new)")
                           for p, t, a, b in leaves[:SHOWN])
        more = f"; and {len(leaves) - SHOWN} more" if len(leaves) > SHOWN else ""
        grown.append(f"{change} grew past the baseline's {tolerance:.2%} tolerance; modules that grew: "
                     f"{listed or 'none (the growth is outside every module)'}{more}")
    return grown, held


def run(args: argparse.Namespace) -> int:
    limits = {m: parse_amount(getattr(args, f"max_{m}"), f"--max-{m}") for m in METRICS
              if getattr(args, f"max_{m}") is not None}
    tolerance = parse_tolerance(args.tolerance)
    if not limits and not args.baseline:
        raise FxFlopsError("nothing to check: give a budget (--max-flops 5G, --max-params 30M, --max-macs, "
                           "--max-bytes) or --baseline base.json")
    report = count(args)
    tell_shortfall(report, args.strict)
    failed, passed = budget_findings(report, limits)
    if args.baseline:
        grown, held = baseline_findings(report, args.baseline, tolerance)
        failed, passed = failed + grown, passed + held
    name = f"{args.model} ({report.mode})"
    for line in failed:
        print(f"::error title=fxflops check {args.model}::{line}" if args.format == "github"
              else f"fxflops check: {name}: FAIL {line}")
    if not failed:
        summary = "; ".join(passed)
        print(f"::notice title=fxflops check {args.model}::{summary}" if args.format == "github"
              else f"fxflops check: {name}: ok, {summary}")
    return 1 if failed else 0
