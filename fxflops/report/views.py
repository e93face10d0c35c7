"""The report's views for people: the summary, the per-module, top-node and per-op tables, each a function of a
:class:`~fxflops.report.report.Report` (the report's methods of the same names call them)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..devices import Device, default_device
from ..errors import FxFlopsError
from ..passes.roofline import intensity
from ..types import OP_KINDS, ModuleRow, NodeRecord, Status
from ..units import human, percent, seconds
from .audit import hook_blind_spot
from .tables import fmt_shape, grid, table_modules

if TYPE_CHECKING:
    from .report import Report
    from .roofline import Roofline

__all__ = ["COLUMNS", "DEFAULT_COLUMNS", "TRAIN_COLUMNS", "by_op", "top", "table_modules", "table", "top_table",
           "op_table", "summary"]

# The module table's columns and their headers; those in _NEEDS_DEVICE read a roofline estimate.
COLUMNS = {
    "params": "params", "macs": "MACs", "flops": "FLOPs", "% flops": "% FLOPs", "bytes": "bytes",
    "intensity": "FLOP/B", "est_time": "est. time", "% time": "% est. time", "bound": "bound",
    "measured": "measured", "% measured": "% measured", "measured/est": "measured/est",
    "fwd_macs": "fwd MACs", "bwd_macs": "bwd MACs", "fwd_flops": "fwd FLOPs", "bwd_flops": "bwd FLOPs",
}
DEFAULT_COLUMNS = ("params", "macs", "flops", "% flops")
# In train mode "macs"/"flops" are forward + backward; the default table shows both halves.
TRAIN_COLUMNS = ("params", "fwd_flops", "bwd_flops", "flops", "% flops")
_NEEDS_DEVICE = {"est_time", "% time", "bound", "measured/est"}
_COSTS = ("macs", "flops", "fwd_macs", "fwd_flops", "bwd_macs", "bwd_flops")


def by_op(report: "Report") -> dict[str, dict[str, int]]:
    """``{op: {"count", "macs", "flops"}}`` over op nodes, costliest first; ``macs``/``flops`` are forward +
    backward, as everywhere; in train mode also the halves ``fwd_macs``, ``fwd_flops``, ``bwd_macs``, ``bwd_flops``."""
    out: dict[str, dict[str, int]] = {}
    halves = _COSTS[2:] if report.mode == "train" else ()
    for n in report.nodes:
        if n.kind not in OP_KINDS:
            continue
        row = out.setdefault(n.op, {"count": 0, "macs": 0, "flops": 0, **dict.fromkeys(halves, 0)})
        row["count"] += 1
        row["macs"] += n.macs
        row["flops"] += n.flops
        for h in halves:
            row[h] += getattr(n, h)
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["flops"], kv[0])))


def top(report: "Report", k: int = 10) -> list[NodeRecord]:
    """The ``k`` costliest op nodes by FLOPs; ties keep execution order."""
    ops = [n for n in report.nodes if n.kind in OP_KINDS]
    return sorted(ops, key=lambda n: -n.flops)[:k]


def table(report: "Report", depth: int = 2, columns: list[str] | tuple[str, ...] | None = None,
          device: "str | Device | None" = None) -> str:
    """The per-module table (fvcore style); see :meth:`fxflops.Report.table`."""
    if columns is None:
        columns = TRAIN_COLUMNS if report.mode == "train" else DEFAULT_COLUMNS
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise FxFlopsError(f"unknown table column(s) {', '.join(map(repr, unknown))}; choose from "
                           f"{', '.join(COLUMNS)}")
    est = report.roofline(device or default_device(report.measured_on)) if _NEEDS_DEVICE & set(columns) else None
    rows = [("module", "type", *(COLUMNS[c] for c in columns))]
    for m in table_modules(report, depth):
        name = ("  " * m.depth) + (m.path.rsplit(".", 1)[-1] if m.path else "model")
        rows.append((name, m.type, *(_cell(report, c, m, est) for c in columns)))
    return grid(rows, align_right=tuple(range(2, 2 + len(columns))))


def _cell(report: "Report", column: str, m: ModuleRow, est: "Roofline | None") -> str:
    e = est.modules.get(m.path) if est is not None else None
    if column == "params":
        return human(m.params)
    if column in _COSTS:
        return human(getattr(m, column))
    if column == "% flops":
        return percent(m.flops, report.total_flops)
    if column == "bytes":
        return human(m.bytes)
    if column == "intensity":
        return f"{intensity(m.flops, m.bytes):.3g}" if m.bytes else "-"
    if column == "est_time":
        return seconds(e.time if e else 0.0)
    if column == "% time":
        return percent(e.time if e else 0.0, est.total_time)
    if column == "bound":
        return str(e.bound) if e else "-"
    if column == "measured":
        return seconds(m.measured)
    if column == "% measured":
        return percent(m.measured or 0.0, report.total_measured or 0.0)
    # measured/est: how much slower the module ran than its roofline says
    return f"{m.measured / e.time:.3g}×" if e and e.time and m.measured is not None else "-"


def top_table(report: "Report", k: int = 10) -> str:
    rows = [("node", "op", "module", "output", "MACs", "FLOPs", "% FLOPs")]
    total = report.total_flops
    for n in top(report, k):
        out = fmt_shape(n.output_shapes[0]) if n.output_shapes else ""
        rows.append((n.name, n.op, n.module_path or "-", out, human(n.macs), human(n.flops), percent(n.flops, total)))
    return grid(rows, align_right=(4, 5, 6))


def op_table(report: "Report") -> str:
    rows = [("op", "nodes", "MACs", "FLOPs", "% FLOPs")]
    total = report.total_flops
    for op, r in by_op(report).items():
        rows.append((op, str(r["count"]), human(r["macs"]), human(r["flops"]), percent(r["flops"], total)))
    return grid(rows, align_right=(1, 2, 3, 4))


def summary(report: "Report") -> str:
    """The totals, the input, the capture, what is left out and the notes, one line each."""
    train = report.mode == "train"
    lines = [
        f"{report.model_name}: {human(report.total_macs)} MACs, {human(report.total_flops)} FLOPs, "
        f"{human(report.total_params)} params"
        + (f" (one training step: forward {human(report.forward_flops)} + backward {human(report.backward_flops)}"
           " FLOPs)" if train else ""),
        f"input: {', '.join(fmt_shape(s) for s in report.input_shapes)}; capture: {report.capture}; "
        f"shapes: {report.shape_mode}",
    ]
    uncounted = report.uncounted
    if uncounted:
        names = sorted({n.target for n in uncounted})
        lines.append(f"uncounted ({len(uncounted)} nodes, counted as 0): {', '.join(names)}")
    partial = [n for n in report.nodes if n.status == Status.PARTIAL]
    if partial:
        inside = sorted({x for n in partial for x in n.left_out})
        lines.append(f"priced in part ({len(partial)} nodes, too low): {', '.join(sorted({n.target for n in partial}))}"
                     f" left out {', '.join(inside)}")
    lines.append(f"hook blind spot: {hook_blind_spot(report).describe()} (forward hooks cannot see them)")
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines)


def as_dict(report: "Report") -> dict[str, Any]:
    """Everything, machine-readable, exact integers (``Report.to_dict``)."""
    return {
        "model": report.model_name,
        "input_shapes": [list(s) if isinstance(s, tuple) else s for s in report.input_shapes],
        "capture": report.capture,
        "shape_mode": report.shape_mode,
        "mode": report.mode,
        "total_macs": report.total_macs,
        "total_flops": report.total_flops,
        "forward_macs": report.forward_macs,
        "forward_flops": report.forward_flops,
        "backward_macs": report.backward_macs,
        "backward_flops": report.backward_flops,
        "total_params": report.total_params,
        "total_bytes": report.total_bytes,
        "forward_bytes": report.forward_bytes,
        "backward_bytes": report.backward_bytes,
        "total_measured": report.total_measured,
        "notes": list(report.notes),
        "uncounted": sorted({n.target for n in report.uncounted}),
        "hook_blind_spot": hook_blind_spot(report).to_dict(),
        "by_op": by_op(report),
        "modules": [m.to_dict() for m in report.modules.values()],
        "nodes": [n.to_dict() for n in report.nodes],
    }
