"""The report: totals, per node, per module, per op type; tables for people, dicts/JSON for programs.

Every number here is read from the records (:mod:`fxflops.passes.records`), built once from the annotated
graphs; the graphs stay attached only so that the drawing can follow their edges.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch.fx as fx

from ..types import OP_KINDS, Capture, ModuleRow, NodeRecord, Status
from ..units import human, percent
from . import export
from .audit import Audit, BlindSpot, audit, hook_blind_spot
from .tables import fmt_shape, grid


@dataclass
class Report:
    """The result of :func:`fxflops.trace_flops`."""

    model_name: str
    nodes: list[NodeRecord]
    modules: dict[str, ModuleRow]
    input_shapes: list
    capture: Capture
    shape_mode: str  # "meta", "fake" or "real"
    notes: list[str] = field(default_factory=list)
    # MACs an eager FlopCounterMode run saw that no node holds (work run outside the captured graphs), as a note
    missing: str | None = None
    graph_modules: list[fx.GraphModule] = field(default_factory=list, repr=False, compare=False)

    @property
    def graph_module(self) -> fx.GraphModule | None:
        """The (first) captured graph; ``graph_modules`` holds them all."""
        return self.graph_modules[0] if self.graph_modules else None

    # ---- totals -------------------------------------------------------------------------------
    @property
    def total_macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    @property
    def total_flops(self) -> int:
        return sum(n.flops for n in self.nodes)

    @property
    def total_params(self) -> int:
        root = self.modules.get("")
        return root.params if root is not None else 0

    @property
    def uncounted(self) -> list[NodeRecord]:
        return [n for n in self.nodes if n.status == Status.UNCOUNTED]

    @property
    def incomplete(self) -> list[NodeRecord]:
        """Nodes whose price misses something: uncounted, or priced in part (see ``NodeRecord.left_out``)."""
        return [n for n in self.nodes if n.status.incomplete]

    # ---- views --------------------------------------------------------------------------------
    def by_op(self) -> dict[str, dict[str, int]]:
        """``{op: {"count", "macs", "flops"}}`` over op nodes, costliest first."""
        out: dict[str, dict[str, int]] = {}
        for n in self.nodes:
            if n.kind not in OP_KINDS:
                continue
            row = out.setdefault(n.op, {"count": 0, "macs": 0, "flops": 0})
            row["count"] += 1
            row["macs"] += n.macs
            row["flops"] += n.flops
        return dict(sorted(out.items(), key=lambda kv: (-kv[1]["flops"], kv[0])))

    def top(self, k: int = 10) -> list[NodeRecord]:
        """The ``k`` costliest nodes by FLOPs."""
        ops = [n for n in self.nodes if n.kind in OP_KINDS]
        return sorted(ops, key=lambda n: (-n.flops, n.name))[:k]

    def by_module(self, depth: int | None = None) -> list[ModuleRow]:
        """Module rows in model order, down to ``depth`` (root is depth 0; None means all)."""
        return [m for m in self.modules.values() if depth is None or m.depth <= depth]

    # ---- coverage -----------------------------------------------------------------------------
    def audit(self) -> Audit:
        """Every distinct call target with its rule, cost and status (counted/partial/free/ignored/uncounted)."""
        return audit(self)

    def hook_blind_spot(self) -> BlindSpot:
        """FLOPs and MACs outside any leaf module call: what a forward-hook counter cannot see."""
        return hook_blind_spot(self)

    # ---- text ---------------------------------------------------------------------------------
    def summary(self) -> str:
        lines = [
            f"{self.model_name}: {human(self.total_macs)} MACs, {human(self.total_flops)} FLOPs, "
            f"{human(self.total_params)} params",
            f"input: {', '.join(fmt_shape(s) for s in self.input_shapes)}; capture: {self.capture}; shapes: {self.shape_mode}",
        ]
        if self.uncounted:
            names = sorted({n.target for n in self.uncounted})
            lines.append(f"uncounted ({len(self.uncounted)} nodes, counted as 0): {', '.join(names)}")
        partial = [n for n in self.nodes if n.status == Status.PARTIAL]
        if partial:
            inside = sorted({x for n in partial for x in n.left_out})
            lines.append(f"priced in part ({len(partial)} nodes, too low): {', '.join(sorted({n.target for n in partial}))}"
                         f" left out {', '.join(inside)}")
        lines.append(f"hook blind spot: {self.hook_blind_spot().describe()} (forward hooks cannot see them)")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def table_modules(self, depth: int | None = 2) -> list[ModuleRow]:
        """The rows of :meth:`table` (and of the CSV/Markdown exports): modules down to ``depth``, leaving out
        those below the root that hold neither parameters nor FLOPs."""
        return [m for m in self.by_module(depth) if not m.depth or m.params or m.flops]

    def table(self, depth: int = 2) -> str:
        """The per-module table (fvcore style): params, MACs, FLOPs and share of total FLOPs."""
        head = ("module", "type", "params", "MACs", "FLOPs", "% FLOPs")
        rows = [head]
        total = self.total_flops
        for m in self.table_modules(depth):
            name = ("  " * m.depth) + (m.path.rsplit(".", 1)[-1] if m.path else "model")
            rows.append((name, m.type, human(m.params), human(m.macs), human(m.flops), percent(m.flops, total)))
        return grid(rows, align_right=(2, 3, 4, 5))

    def top_table(self, k: int = 10) -> str:
        rows = [("node", "op", "module", "output", "MACs", "FLOPs", "% FLOPs")]
        total = self.total_flops
        for n in self.top(k):
            out = fmt_shape(n.output_shapes[0]) if n.output_shapes else ""
            rows.append((n.name, n.op, n.module_path or "-", out, human(n.macs), human(n.flops), percent(n.flops, total)))
        return grid(rows, align_right=(4, 5, 6))

    def op_table(self) -> str:
        rows = [("op", "nodes", "MACs", "FLOPs", "% FLOPs")]
        total = self.total_flops
        for op, r in self.by_op().items():
            rows.append((op, str(r["count"]), human(r["macs"]), human(r["flops"]), percent(r["flops"], total)))
        return grid(rows, align_right=(1, 2, 3, 4))

    def __str__(self) -> str:
        return self.summary() + "\n\n" + self.table()

    def __repr__(self) -> str:
        return (f"<Report {self.model_name}: {self.total_macs:,} MACs, {self.total_flops:,} FLOPs, "
                f"{self.total_params:,} params, {len(self.nodes)} nodes, capture={self.capture}>")

    # ---- machine-readable ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "input_shapes": [list(s) if isinstance(s, tuple) else s for s in self.input_shapes],
            "capture": self.capture,
            "shape_mode": self.shape_mode,
            "total_macs": self.total_macs,
            "total_flops": self.total_flops,
            "total_params": self.total_params,
            "notes": list(self.notes),
            "uncounted": sorted({n.target for n in self.uncounted}),
            "hook_blind_spot": self.hook_blind_spot().to_dict(),
            "by_op": self.by_op(),
            "modules": [asdict(m) for m in self.modules.values()],
            "nodes": [asdict(n) for n in self.nodes],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self, path: str | None = None, *, rows: str = "modules", depth: int | None = None) -> str:
        """CSV of ``rows`` (``"modules"`` down to ``depth``, ``"ops"`` or ``"nodes"``), exact integers; also
        written to ``path`` when given. See :mod:`fxflops.report.export`."""
        return export.to_csv(self, path, rows=rows, depth=depth)

    def to_markdown(self, depth: int = 2, *, exact: bool = False) -> str:
        """The totals and the per-module table as a Markdown pipe table (``exact=True``: integers, not 4.09G)."""
        return export.to_markdown(self, depth, exact=exact)

    def to_dataframe(self, rows: str = "modules", depth: int | None = None):
        """A ``pandas.DataFrame`` of ``rows`` (the CSV's columns); needs pandas (``pip install "fxflops[pandas]"``)."""
        return export.to_dataframe(self, rows, depth)

    # ---- the annotated graph (fxflops.draw; imported on use, the drawing stage comes after the report) -----------------------------------
    def to_networkx(self):
        """A ``networkx.DiGraph``: one node per fx node with its costs and shapes, edges along data flow."""
        from ..draw.graph import to_networkx

        return to_networkx(self)

    def to_dot(self, **options: Any) -> str:
        """DOT text of the annotated graph; options as :func:`fxflops.draw.dot.to_dot` (depth, top, roll...)."""
        from ..draw.dot import to_dot

        return to_dot(self, **options)

    def chart(self, path: str, depth: int = 3, metric: str = "flops"):
        """An icicle chart of ``metric`` by module down to ``depth`` (.png/.svg/.pdf; needs ``fxflops[plot]``)."""
        from ..draw.charts import module_chart

        return module_chart(self, path, depth=depth, metric=metric)

    def render(self, path: str, **options: Any):
        """Draw the annotated graph into ``path`` (.svg, .png or .pdf); options as :func:`fxflops.draw.dot.render`."""
        from ..draw.dot import render

        return render(self, path, **options)




