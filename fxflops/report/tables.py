"""Text tables: the fvcore-style grids the report, the audit and the API coverage print."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..types import ModuleRow
    from .report import Report


def fmt_shape(s: Any) -> str:
    if isinstance(s, tuple):
        return "(" + ",".join(str(d) for d in s) + ")"
    if isinstance(s, list):
        return "[" + ", ".join(fmt_shape(x) for x in s) + "]"
    return str(s)


def grid(rows: list[tuple], align_right: tuple[int, ...] = ()) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]

    def fmt(r: tuple) -> str:
        cells = [str(c).rjust(w) if i in align_right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        return "| " + " | ".join(cells) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in align_right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([fmt(rows[0]), sep] + [fmt(r) for r in rows[1:]])


def table_modules(report: "Report", depth: int | None = 2) -> list[ModuleRow]:
    """The rows of the module table (and of the CSV/Markdown exports): every module down to ``depth`` (root 0,
    None: all), a free one (a Dropout in eval mode) too: a row left out would read as a module the count missed."""
    return [m for m in report.modules.values() if depth is None or m.depth <= depth]
