"""What people paste into papers and spreadsheets: CSV (exact integers), Markdown tables, pandas DataFrames.

Every exporter reads the same rows as the text tables (:func:`fxflops.report.views.table_modules`, :meth:`Report.by_op`,
``Report.nodes``), so a number in a CSV cell is the number behind the printed table, unrounded.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FxFlopsError, writing
from ..units import human, percent
from .views import table_modules

if TYPE_CHECKING:
    from .report import Report

ROWS = ("modules", "ops", "nodes")
NODE_FIELDS = ("name", "kind", "op", "target", "module_path", "module_type", "input_shapes", "output_shapes",
               "dtypes", "macs", "flops", "params", "status", "rule_name", "reason")
HALVES = ("fwd_macs", "fwd_flops", "bwd_macs", "bwd_flops")  # columns added in train mode


def records(report: "Report", rows: str = "modules", depth: int | None = None) -> list[dict[str, Any]]:
    """The rows of one view as flat dicts of exact values: ``modules`` (down to ``depth``), ``ops`` or ``nodes``."""
    if rows not in ROWS:
        raise FxFlopsError(f"rows must be one of {', '.join(ROWS)}, got {rows!r}")
    total = report.total_flops
    halves = HALVES if report.mode == "train" else ()
    if rows == "modules":
        return [{"module": m.path, "type": m.type, "depth": m.depth, "params": m.params, "macs": m.macs,
                 "flops": m.flops, **{h: getattr(m, h) for h in halves},
                 "flops_share": m.flops / total if total else 0.0}
                for m in table_modules(report, depth)]
    if rows == "ops":
        return [{"op": op, "nodes": r["count"], "macs": r["macs"], "flops": r["flops"], **{h: r[h] for h in halves},
                 "flops_share": r["flops"] / total if total else 0.0} for op, r in report.by_op().items()]
    return [{("rule" if f == "rule_name" else f): _flat(getattr(n, f)) for f in NODE_FIELDS + halves}
            for n in report.nodes]


def _flat(v: Any) -> Any:
    """Shapes and dtype lists as one cell: ``(1,3,224,224)``; a spreadsheet has no nested values."""
    if isinstance(v, list):
        return " ".join("(" + ",".join(str(d) for d in s) + ")" if isinstance(s, tuple) else str(s) for s in v)
    return str(v) if hasattr(v, "value") else v  # enums as their value


def to_csv(report: "Report", path: str | Path | None = None, *, rows: str = "modules",
           depth: int | None = None) -> str:
    """CSV text of one view (header row, then exact integers); written to ``path`` too when given."""
    data = records(report, rows, depth)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(data[0]) if data else ["module"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    text = buf.getvalue()
    if path is not None:
        with writing(path, "the CSV"):
            Path(path).write_text(text)
    return text


def markdown_table(rows: list[tuple], align_right: tuple[int, ...] = ()) -> str:
    """A GitHub/pandoc pipe table. Cells are escaped (``|``) and leading spaces never carry meaning,
    since Markdown renderers strip them."""
    def cell(c: Any) -> str:
        return str(c).replace("|", "\\|").strip()

    head = "| " + " | ".join(cell(c) for c in rows[0]) + " |"
    sep = "|" + "|".join("---:" if i in align_right else "---" for i in range(len(rows[0]))) + "|"
    return "\n".join([head, sep] + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows[1:]])


def to_markdown(report: "Report", depth: int = 2, *, exact: bool = False) -> str:
    """A caption line with the totals, then the per-module table as a pipe table. Modules are named by
    their full path (indentation does not survive Markdown); ``exact=True`` prints integers, not 4.09G."""
    fmt = (lambda n: f"{n:,}") if exact else human
    shapes = ", ".join("×".join(str(d) for d in s) if isinstance(s, tuple) else str(s) for s in report.input_shapes)
    caption = (f"**{report.model_name}** ({shapes}): {fmt(report.total_macs)} MACs, {fmt(report.total_flops)} FLOPs, "
               f"{fmt(report.total_params)} params")
    halves = ("fwd_flops", "bwd_flops") if report.mode == "train" else ()
    rows = [("module", "type", "params", "MACs", *(f"{h[:3]} FLOPs" for h in halves), "FLOPs", "% FLOPs")]
    total = report.total_flops
    for m in table_modules(report, depth):
        rows.append((f"`{m.path}`" if m.path else "(model)", m.type, fmt(m.params), fmt(m.macs),
                     *(fmt(getattr(m, h)) for h in halves), fmt(m.flops), percent(m.flops, total)))
    return caption + "\n\n" + markdown_table(rows, align_right=tuple(range(2, len(rows[0])))) + "\n"


def to_dataframe(report: "Report", rows: str = "modules", depth: int | None = None):
    """A ``pandas.DataFrame`` of one view (the columns of :func:`to_csv`); pandas is an optional extra."""
    try:
        import pandas as pd
    except ImportError:
        raise FxFlopsError('to_dataframe needs pandas: pip install "fxflops[pandas]" (or pip install pandas); '
                           "to_csv and to_dict need nothing extra") from None
    return pd.DataFrame(records(report, rows, depth))
