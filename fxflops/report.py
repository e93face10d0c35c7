"""The report: totals, per node, per module, per op type; tables for people, dicts/JSON for programs.

Everything here is read from the costs the counting pass stored in ``node.meta["fxflops"]``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.fx as fx

from .counting import OP_NODES, NodeCost
from .registry import target_name
from .units import human, percent

if TYPE_CHECKING:
    from .audit import Audit, BlindSpot


@dataclass
class NodeRecord:
    """One graph node: what it is, where it lives, what it consumed and produced, and what it cost."""

    name: str
    kind: str  # fx op: placeholder, call_module, call_function, call_method, get_attr, output
    target: str
    op: str
    module_path: str
    module_type: str
    input_shapes: list
    output_shapes: list
    dtypes: list
    macs: int
    flops: int
    params: int
    rule: str
    status: str


@dataclass
class ModuleRow:
    path: str
    type: str
    depth: int
    params: int
    macs: int
    flops: int


@dataclass
class Report:
    """The result of :func:`fxflops.trace_flops`."""

    model_name: str
    nodes: list[NodeRecord]
    modules: dict[str, ModuleRow]
    input_shapes: list
    capture: str  # "fx", "fx (partial)" or "dynamo"
    shape_mode: str  # "meta", "fake" or "real"
    notes: list[str] = field(default_factory=list)
    graph_module: fx.GraphModule | None = field(default=None, repr=False, compare=False)
    graph_modules: list = field(default_factory=list, repr=False, compare=False)

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
        return [n for n in self.nodes if n.status == "uncounted"]

    # ---- views --------------------------------------------------------------------------------
    def by_op(self) -> dict[str, dict[str, int]]:
        """``{op: {"count", "macs", "flops"}}`` over op nodes, costliest first."""
        out: dict[str, dict[str, int]] = {}
        for n in self.nodes:
            if n.kind not in OP_NODES:
                continue
            row = out.setdefault(n.op, {"count": 0, "macs": 0, "flops": 0})
            row["count"] += 1
            row["macs"] += n.macs
            row["flops"] += n.flops
        return dict(sorted(out.items(), key=lambda kv: (-kv[1]["flops"], kv[0])))

    def top(self, k: int = 10) -> list[NodeRecord]:
        """The ``k`` costliest nodes by FLOPs."""
        ops = [n for n in self.nodes if n.kind in OP_NODES]
        return sorted(ops, key=lambda n: (-n.flops, n.name))[:k]

    def by_module(self, depth: int | None = None) -> list[ModuleRow]:
        """Module rows in model order, down to ``depth`` (root is depth 0; None means all)."""
        return [m for m in self.modules.values() if depth is None or m.depth <= depth]

    # ---- coverage -----------------------------------------------------------------------------
    def audit(self) -> "Audit":
        """Every distinct call target with its rule, cost and status (counted/free/ignored/uncounted)."""
        from .audit import audit

        return audit(self)

    def hook_blind_spot(self) -> "BlindSpot":
        """FLOPs and MACs outside any leaf module call: what a forward-hook counter cannot see."""
        from .audit import hook_blind_spot

        return hook_blind_spot(self)

    # ---- text ---------------------------------------------------------------------------------
    def summary(self) -> str:
        lines = [
            f"{self.model_name}: {human(self.total_macs)} MACs, {human(self.total_flops)} FLOPs, "
            f"{human(self.total_params)} params",
            f"input: {', '.join(_fmt_shape(s) for s in self.input_shapes)}; capture: {self.capture}; shapes: {self.shape_mode}",
        ]
        if self.uncounted:
            names = sorted({n.target for n in self.uncounted})
            lines.append(f"uncounted ({len(self.uncounted)} nodes, counted as 0): {', '.join(names)}")
        lines.append(f"hook blind spot: {self.hook_blind_spot().describe()} (forward hooks cannot see them)")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def table(self, depth: int = 2) -> str:
        """The per-module table (fvcore style): params, MACs, FLOPs and share of total FLOPs."""
        head = ("module", "type", "params", "MACs", "FLOPs", "% FLOPs")
        rows = [head]
        total = self.total_flops
        for m in self.by_module(depth):
            if m.depth and not (m.params or m.flops):
                continue
            name = ("  " * m.depth) + (m.path.rsplit(".", 1)[-1] if m.path else "model")
            rows.append((name, m.type, human(m.params), human(m.macs), human(m.flops), percent(m.flops, total)))
        return _render(rows, align_right=(2, 3, 4, 5))

    def top_table(self, k: int = 10) -> str:
        rows = [("node", "op", "module", "output", "MACs", "FLOPs", "% FLOPs")]
        total = self.total_flops
        for n in self.top(k):
            out = _fmt_shape(n.output_shapes[0]) if n.output_shapes else ""
            rows.append((n.name, n.op, n.module_path or "-", out, human(n.macs), human(n.flops), percent(n.flops, total)))
        return _render(rows, align_right=(4, 5, 6))

    def op_table(self) -> str:
        rows = [("op", "nodes", "MACs", "FLOPs", "% FLOPs")]
        total = self.total_flops
        for op, r in self.by_op().items():
            rows.append((op, str(r["count"]), human(r["macs"]), human(r["flops"]), percent(r["flops"], total)))
        return _render(rows, align_right=(1, 2, 3, 4))

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

    # ---- the annotated graph (fxflops.graph, fxflops.render) -----------------------------------
    def to_networkx(self):
        """A ``networkx.DiGraph``: one node per fx node with its costs and shapes, edges along data flow."""
        from .graph import to_networkx

        return to_networkx(self)

    def to_dot(self, **options: Any) -> str:
        """DOT text of the annotated graph; options as :func:`fxflops.render.to_dot` (depth, top, roll...)."""
        from .render import to_dot

        return to_dot(self, **options)

    def render(self, path: str, **options: Any):
        """Draw the annotated graph into ``path`` (.svg, .png or .pdf); options as :func:`fxflops.render.render`."""
        from .render import render

        return render(self, path, **options)


# ---- building -------------------------------------------------------------------------------------


def _tensors(v: Any) -> list[torch.Tensor]:
    if isinstance(v, torch.Tensor):
        return [v]
    if isinstance(v, (tuple, list)):
        return [t for x in v for t in _tensors(x)]
    if isinstance(v, dict):
        return [t for x in v.values() for t in _tensors(x)]
    return []


def _fetch_attr(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj


def _node_params(gm: fx.GraphModule, node: fx.Node, seen: set[int]) -> int:
    """Params first used by ``node``: a leaf module's, or a parameter fetched by ``get_attr``.
    ``seen`` holds tensors already attributed, so shared weights and reused modules count once."""
    if node.op == "call_module":
        tensors = list(gm.get_submodule(node.target).parameters())
    elif node.op == "get_attr":
        attr = _fetch_attr(gm, node.target)
        tensors = [attr] if isinstance(attr, torch.nn.Parameter) else []
    else:
        return 0
    total = 0
    for p in tensors:
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def node_records(gm: fx.GraphModule, seen: set[int] | None = None, prefix: str = "") -> list[NodeRecord]:
    """A record for every node of ``gm``, placeholders and output included."""
    seen = set() if seen is None else seen
    records = []
    for node in gm.graph.nodes:
        cost: NodeCost | None = node.meta.get("fxflops")
        ins = [t for a in node.all_input_nodes for t in _tensors(a.meta.get("val"))]
        outs = _tensors(node.meta.get("val"))
        records.append(
            NodeRecord(
                name=prefix + node.name,
                kind=node.op,
                target=cost.target if cost else target_name(node.target),
                op=cost.op if cost else node.op,
                module_path=cost.module_path if cost else "",
                module_type=cost.module_type if cost else "",
                input_shapes=[tuple(t.shape) for t in ins],
                output_shapes=[tuple(t.shape) for t in outs],
                dtypes=sorted({str(t.dtype).replace("torch.", "") for t in outs}),
                macs=cost.macs if cost else 0,
                flops=cost.flops if cost else 0,
                params=_node_params(gm, node, seen),
                rule=cost.rule if cost else "",
                status=cost.status if cost else "",
            )
        )
    return records


def module_rows(model: torch.nn.Module, nodes: list[NodeRecord]) -> dict[str, ModuleRow]:
    """One row per module of ``model`` (pre-order), with params of its subtree and costs of its nodes."""
    rows: dict[str, ModuleRow] = {}
    for path, m in model.named_modules(remove_duplicate=True):
        params = sum(p.numel() for p in m.parameters())
        rows[path] = ModuleRow(path, type(m).__name__, path.count(".") + 1 if path else 0, params, 0, 0)
    for n in nodes:
        if not (n.macs or n.flops):
            continue
        for path in _ancestors(n.module_path):
            row = rows.get(path)
            if row is not None:
                row.macs += n.macs
                row.flops += n.flops
    return rows


def _ancestors(path: str) -> list[str]:
    if not path:
        return [""]
    parts = path.split(".")
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]


def _fmt_shape(s: Any) -> str:
    if isinstance(s, tuple):
        return "(" + ",".join(str(d) for d in s) + ")"
    if isinstance(s, list):
        return "[" + ", ".join(_fmt_shape(x) for x in s) + "]"
    return str(s)


def _render(rows: list[tuple], align_right: tuple[int, ...] = ()) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]

    def fmt(r: tuple) -> str:
        cells = [str(c).rjust(w) if i in align_right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        return "| " + " | ".join(cells) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in align_right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([fmt(rows[0]), sep] + [fmt(r) for r in rows[1:]])
