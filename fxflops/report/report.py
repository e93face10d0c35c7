"""The report: totals, per node, per module, per op type; tables for people, dicts/JSON for programs.

Every number here is read from the records (:mod:`fxflops.passes.records`), built once from the annotated
graphs; the graphs stay attached only so that the drawing can follow their edges.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch.fx as fx

from ..devices import Device, get_device, preset_for
from ..errors import FxFlopsError
from ..passes.roofline import intensity
from ..types import OP_KINDS, Backward, Capture, ModuleRow, NodeRecord, Status
from ..units import human, percent, seconds
from . import export
from .audit import Audit, BlindSpot, audit, hook_blind_spot
from .memory import Memory, memory
from .roofline import Roofline
from .tables import fmt_shape, grid
from .html import report_html

# Report.table's columns and their headers; those in _NEEDS_DEVICE read a roofline estimate. The default is the
# four columns the table has always had.
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
    # where measure=True timed the nodes ("cpu", "cuda:0"), and the device estimates default to there
    measured_on: str | None = None
    mode: str = "infer"  # "train": totals are forward + backward
    model: Any = field(default=None, repr=False, compare=False)  # the model counted, for memory()

    @property
    def train(self) -> bool:
        return self.mode == "train"

    @property
    def graph_module(self) -> fx.GraphModule | None:
        """The (first) captured graph; ``graph_modules`` holds them all."""
        return self.graph_modules[0] if self.graph_modules else None

    # ---- totals -------------------------------------------------------------------------------
    @property
    def forward_macs(self) -> int:
        return sum(n.fwd.macs for n in self.nodes)

    @property
    def forward_flops(self) -> int:
        return sum(n.fwd.flops for n in self.nodes)

    @property
    def backward_macs(self) -> int:
        """The backward's MACs in train mode (0 in infer mode)."""
        return sum(n.bwd_macs for n in self.nodes) if self.train else 0

    @property
    def backward_flops(self) -> int:
        return sum(n.bwd_flops for n in self.nodes) if self.train else 0

    @property
    def total_macs(self) -> int:
        """forward_macs + backward_macs: the forward alone in infer mode, one training step in train mode."""
        return self.forward_macs + self.backward_macs

    @property
    def total_flops(self) -> int:
        return self.forward_flops + self.backward_flops

    @property
    def no_backward(self) -> list[NodeRecord]:
        """In train mode, the nodes whose op has no backward formula (a custom rule): their gradient counts as 0."""
        return [n for n in self.nodes if self.train and n.bwd_status == Backward.MISSING]

    @property
    def total_params(self) -> int:
        root = self.modules.get("")
        return root.params if root is not None else 0

    @property
    def total_bytes(self) -> int:
        """Bytes read and written by all nodes, each run as one unfused kernel (see docs/conventions.md)."""
        return sum(n.bytes for n in self.nodes)

    @property
    def intensity(self) -> float:
        """Arithmetic intensity of the whole model: FLOPs per byte moved."""
        return intensity(self.total_flops, self.total_bytes)

    @property
    def total_measured(self) -> float | None:
        """Summed per-node median seconds, with ``measure=True``; None otherwise."""
        times = [n.measured for n in self.nodes if n.measured is not None]
        return sum(times) if times else None

    def roofline(self, device: "str | Device" = "cpu") -> Roofline:
        """Roofline estimate on ``device``: a preset name (``a100``, ``h100``, ``h200``, ``v100``), ``"cpu"``
        (measured on this machine, cached) or an :class:`fxflops.Device`. Times are in seconds."""
        return Roofline.of(self, get_device(device))

    def _default_device(self) -> "str | Device":
        """Where the nodes were measured, so that measured and estimated times compare; else this machine's cpu."""
        if self.measured_on is None:
            return "cpu"
        preset = preset_for(self.measured_on)
        if preset is None:
            raise FxFlopsError(f"no roofline preset matches {self.measured_on}, where this report was measured: "
                               "pass device= (a preset name or fxflops.Device(peak_flops=..., bandwidth=...))")
        return preset

    @property
    def uncounted(self) -> list[NodeRecord]:
        return [n for n in self.nodes if n.status == Status.UNCOUNTED]

    @property
    def incomplete(self) -> list[NodeRecord]:
        """Nodes whose price misses something: uncounted, or priced in part (see ``NodeRecord.left_out``)."""
        return [n for n in self.nodes if n.status.incomplete]

    def shortfall(self, strict: bool = False) -> str | None:
        """What the count could not price, in one sentence without advice (None when nothing): the
        uncounted targets, the partly priced ones and what they leave out, and FlopCounterMode's missing
        MACs. ``strict`` words it for an error ("would be counted as 0")."""
        parts = []
        left = self.uncounted
        if left:
            verb = "would be" if strict else "were"
            parts.append(f"{len(left)} node(s) have no FLOPs rule or could not be priced, and {verb} counted as 0: "
                         f"{', '.join(sorted({n.target for n in left}))}")
        partial = [n for n in self.nodes if n.status == Status.PARTIAL]
        if partial:
            inside = sorted({x for n in partial for x in n.left_out})
            parts.append(f"{len(partial)} node(s) were priced only in part ({', '.join(sorted({n.target for n in partial}))}"
                         f"), leaving out {', '.join(inside)}")
        if self.missing:
            parts.append(self.missing)
        nob = self.no_backward
        if nob:
            verb = "would be" if strict else "were"
            parts.append(f"{len(nob)} node(s) have no backward formula, and their gradients {verb} counted as 0: "
                         f"{', '.join(sorted({n.target for n in nob}))}")
        return " ".join("; ".join(parts).split()) if parts else None

    # ---- views --------------------------------------------------------------------------------
    def by_op(self) -> dict[str, dict[str, int]]:
        """``{op: {"count", "macs", "flops"}}`` over op nodes, costliest first; ``macs``/``flops`` are forward +
        backward, as everywhere; in train mode also the halves ``fwd_macs``, ``fwd_flops``, ``bwd_macs``, ``bwd_flops``."""
        out: dict[str, dict[str, int]] = {}
        halves = ("fwd_macs", "fwd_flops", "bwd_macs", "bwd_flops") if self.train else ()
        for n in self.nodes:
            if n.kind not in OP_KINDS:
                continue
            row = out.setdefault(n.op, {"count": 0, "macs": 0, "flops": 0, **dict.fromkeys(halves, 0)})
            row["count"] += 1
            row["macs"] += n.macs
            row["flops"] += n.flops
            for h in halves:
                row[h] += getattr(n, h)
        return dict(sorted(out.items(), key=lambda kv: (-kv[1]["flops"], kv[0])))

    def top(self, k: int = 10) -> list[NodeRecord]:
        """The ``k`` costliest nodes by FLOPs."""
        ops = [n for n in self.nodes if n.kind in OP_KINDS]
        return sorted(ops, key=lambda n: (-n.flops, n.name))[:k]

    def memory(self, optimizer: str = "adam") -> "Memory":
        """Bytes of one training step (train mode): parameters, gradients, ``optimizer`` state (``adam``/``adamw``:
        2 fp32 per trainable element, ``sgd`` with momentum: 1, ``none``) and the activations saved for the
        backward. Needs the model the report was made from (kept as ``report.model``)."""
        if self.model is None:
            raise FxFlopsError("this report holds no model: memory() needs one made by fxflops.trace_flops")
        return memory(self, self.model, optimizer)

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
            f"{human(self.total_params)} params"
            + (f" (one training step: forward {human(self.forward_flops)} + backward {human(self.backward_flops)}"
               " FLOPs)" if self.train else ""),
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

    def table_modules(self, depth: int | None = 2, bytes_too: bool = False) -> list[ModuleRow]:
        """The rows of :meth:`table` (and of the CSV/Markdown exports): modules down to ``depth``, leaving out
        those below the root that hold neither parameters nor FLOPs (nor bytes, with ``bytes_too``)."""
        return [m for m in self.by_module(depth) if not m.depth or m.params or m.flops or (bytes_too and m.bytes)]

    def table(self, depth: int = 2, columns: list[str] | tuple[str, ...] | None = None,
              device: "str | Device | None" = None) -> str:
        """The per-module table (fvcore style); by default params, MACs, FLOPs and share of total FLOPs.

        ``columns`` picks others from :data:`COLUMNS`: ``bytes``, ``intensity`` (FLOP/B), ``measured`` (seconds,
        with ``measure=True``), and, on the roofline of ``device`` (default: ``"cpu"``), ``est_time``,
        ``% time``, ``bound`` and ``measured/est``. In train mode ``macs``/``flops`` are forward + backward,
        ``fwd_macs``/``fwd_flops``/``bwd_macs``/``bwd_flops`` the halves (the default there: :data:`TRAIN_COLUMNS`)."""
        if columns is None:
            columns = TRAIN_COLUMNS if self.train else DEFAULT_COLUMNS
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown:
            raise FxFlopsError(f"unknown table column(s) {', '.join(map(repr, unknown))}; choose from "
                               f"{', '.join(COLUMNS)}")
        est = self.roofline(device or self._default_device()) if _NEEDS_DEVICE & set(columns) else None
        rows = [("module", "type", *(COLUMNS[c] for c in columns))]
        for m in self.table_modules(depth, bytes_too=tuple(columns) not in (DEFAULT_COLUMNS, TRAIN_COLUMNS)):
            name = ("  " * m.depth) + (m.path.rsplit(".", 1)[-1] if m.path else "model")
            rows.append((name, m.type, *(self._cell(c, m, est) for c in columns)))
        return grid(rows, align_right=tuple(range(2, 2 + len(columns))))

    def _cell(self, column: str, m: ModuleRow, est: Roofline | None) -> str:
        e = est.modules.get(m.path) if est is not None else None
        if column == "params":
            return human(m.params)
        if column in ("macs", "flops", "fwd_macs", "fwd_flops", "bwd_macs", "bwd_flops"):
            return human(getattr(m, column))
        if column == "% flops":
            return percent(m.flops, self.total_flops)
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
            return percent(m.measured or 0.0, self.total_measured or 0.0)
        # measured/est: how much slower the module ran than its roofline says
        return f"{m.measured / e.time:.3g}×" if e and e.time and m.measured is not None else "-"

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

    def _repr_html_(self) -> str:
        return report_html(self)

    # ---- machine-readable ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "input_shapes": [list(s) if isinstance(s, tuple) else s for s in self.input_shapes],
            "capture": self.capture,
            "shape_mode": self.shape_mode,
            "mode": self.mode,
            "total_macs": self.total_macs,
            "total_flops": self.total_flops,
            "forward_macs": self.forward_macs,
            "forward_flops": self.forward_flops,
            "backward_macs": self.backward_macs,
            "backward_flops": self.backward_flops,
            "total_params": self.total_params,
            "total_bytes": self.total_bytes,
            "total_measured": self.total_measured,
            "notes": list(self.notes),
            "uncounted": sorted({n.target for n in self.uncounted}),
            "hook_blind_spot": self.hook_blind_spot().to_dict(),
            "by_op": self.by_op(),
            "modules": [m.to_dict() for m in self.modules.values()],
            "nodes": [n.to_dict() for n in self.nodes],
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

    def explore(self, path: str, **options: Any):
        """Write the explorer, one self-contained HTML page (``color``, ``device``: see :func:`fxflops.draw.explore.explore`)."""
        from ..draw.explore import explore

        return explore(self, path, **options)




