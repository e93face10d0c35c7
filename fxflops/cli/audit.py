"""``fxflops audit MODEL``: every call target of the model's graph with its rule and status."""
from __future__ import annotations

import argparse
import json

from ..errors import FxFlopsError
from .common import EPILOG, Parser, add_model_options, count, tell_shortfall

def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="fxflops audit",
        description="Coverage audit: every call target of a model's graph with its rule and status\n"
                    "(counted/free/ignored/uncounted) and the FLOPs forward hooks cannot see.\n"
                    "The audit of torch's public API is `python -m tools.api_audit`, run from a source checkout.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="model spec (see below)")
    add_model_options(p)
    p.add_argument("--ignore", action="append", default=[], metavar="OP", help="op counted as 0 (repeatable)")
    p.add_argument("--json", action="store_true", help="print the audit as JSON")
    # --api and --write are kept only to say where the torch API audit went (tools.api_audit, since 0.2)
    p.add_argument("--api", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--write", metavar="FILE", help=argparse.SUPPRESS)
    return p


def run(args: argparse.Namespace) -> int:
    """``--strict`` makes anything uncounted an error (exit 2), as it does for the main command."""
    if args.api:
        raise FxFlopsError("the torch API audit is a repository tool since 0.2: run `python -m tools.api_audit` "
                           "(--json, --write FILE) from a source checkout of fxflops"
                           + (f"; `fxflops audit {args.model}` (without --api) audits the model" if args.model else ""))
    if not args.model:
        raise FxFlopsError("fxflops audit needs a model spec, e.g. fxflops audit torchvision:resnet18")
    report = count(args)
    result = report.audit()  # lists the uncounted ops itself: no note
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.table())
    if args.strict:
        tell_shortfall(report, strict=True)
    return 0
