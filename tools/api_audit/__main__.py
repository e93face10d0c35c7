"""``python -m tools.api_audit``: print the API coverage summary; ``--write FILE`` writes the full Markdown table."""
from __future__ import annotations

import argparse
import sys

from . import api_audit


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.api_audit", description=__doc__)
    p.add_argument("--json", action="store_true", help="print the audit as JSON")
    p.add_argument("--write", metavar="FILE", help="also write the full table as Markdown to FILE")
    p.add_argument("--strict", action="store_true", help="exit 1 when an entry is uncounted")
    args = p.parse_args(argv)
    result = api_audit()
    print(result.to_json() if args.json else result.summary())
    if args.write:
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write(result.markdown())
    return 1 if args.strict and result.uncounted else 0


if __name__ == "__main__":
    sys.exit(main())
