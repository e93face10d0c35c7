"""The ``fxflops`` command: ``fxflops MODEL`` (:mod:`.count`) and one module per subcommand, each with a
``parser()`` and a ``run(args)``; :mod:`.common` holds what they share. A subcommand's module is imported only
when it runs."""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

from ..errors import FxFlopsError

# subcommand -> its module in this package
SUBCOMMANDS = {"audit": "audit", "compare": "compare", "sweep": "sweep", "devices": "devices", "check": "check",
               "serve": "serve"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = SUBCOMMANDS.get(argv[0]) if argv else None
    if name is not None:
        argv = argv[1:]
    command = importlib.import_module(f"{__name__}.{name or 'count'}")
    args = command.parser().parse_args(argv)
    try:
        return command.run(args)
    except FxFlopsError as exc:
        print(f"fxflops: error: {one_line(str(exc), getattr(args, 'verbose', False))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


def one_line(message: str, verbose: bool) -> str:
    """An error's first line and its "What to do", the lines between (each capture path's reason) behind
    --verbose: a terminal shows one line, a bug report wants all of them."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if verbose or len(lines) == 1:
        return "\n".join(lines)
    todo = [line for line in lines[1:] if line.startswith("What to do") and "above" not in line]
    hidden = len(lines) - 1 - len(todo)
    return " ".join([lines[0], *todo] + ([f"(--verbose shows {hidden} more line(s))"] if hidden else []))
