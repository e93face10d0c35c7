"""The report's rows, read once from the annotated graphs: a :class:`~fxflops.types.NodeRecord` per fx node
and a :class:`~fxflops.types.ModuleRow` per module of the model. Every later view (tables, audit, drawing)
reads these records, never the graphs' costs again.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.fx as fx

from ..captured import Reuse
from ..paths import ancestors, attr_at, moved, submodule, under
from ..rules.registry import module_weights, target_name
from ..tensors import dtype_name, tensors_in
from ..types import ModuleRow, NodeRecord


def _node_params(gm: fx.GraphModule, node: fx.Node, seen: set[int]) -> int:
    """Params first used by ``node``: a leaf module's, or a parameter fetched by ``get_attr``.
    ``seen`` holds tensors already attributed, so shared weights and reused modules count once."""
    if node.op == "call_module":
        tensors = [w for m in submodule(gm, node.target).modules() for w in module_weights(m)]
    elif node.op == "get_attr":
        attr = attr_at(gm, node.target)
        tensors = [attr] if isinstance(attr, torch.nn.Parameter) else []
    else:
        return 0
    total = 0
    for p in tensors:
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def node_records(gm: fx.GraphModule, seen: set[int] | None = None, prefix: str = "", graph: int = 0) -> list[NodeRecord]:
    """The record of every node of ``gm``, placeholders and output included: the cost pass's record of an op node
    (completed here with its shapes, parameters and place), a new one for the rest."""
    seen = set() if seen is None else seen
    records = []
    outs_of: dict[fx.Node, list[torch.Tensor]] = {}  # each value is read once, however many nodes use it
    for node in gm.graph.nodes:
        rec: NodeRecord | None = node.meta.get("fxflops")
        if rec is None:
            rec = NodeRecord(name=node.name, kind=node.op, target=target_name(node.target), op=node.op, node=node)
        ins = [t for a in node.all_input_nodes
               for t in (outs_of[a] if a in outs_of else tensors_in(a.meta.get("val")))]
        outs = outs_of[node] = tensors_in(node.meta.get("val"))
        rec.name = prefix + node.name
        rec.graph = graph
        rec.input_shapes = [tuple(t.shape) for t in ins]
        rec.output_shapes = [tuple(t.shape) for t in outs]
        rec.dtypes = sorted({dtype_name(t) for t in outs})
        rec.params = _node_params(gm, node, seen)
        rec.module_stack = [path for path, _ in (node.meta.get("nn_module_stack") or {}).values()]
        rec.checkpoint = node.meta["checkpoint"].index if "checkpoint" in node.meta else 0
        records.append(rec)
    return records


def module_rows(model: torch.nn.Module, nodes: list[NodeRecord]) -> dict[str, ModuleRow]:
    """One row per module of ``model`` (pre-order), with params of its subtree and costs of its nodes."""
    rows: dict[str, ModuleRow] = {}
    subtree = _subtree_params(model)
    for path, m in model.named_modules(remove_duplicate=True):
        params = subtree[id(m)] if subtree is not None else _own_params(m)
        rows[path] = ModuleRow(path, type(m).__name__, path.count(".") + 1 if path else 0, params)
    charged: dict[tuple, set[str]] = {}  # the nodes of one module call share their stack
    for n in nodes:
        if not (n.fwd.flops or n.fwd.macs or n.fwd_bytes or n.measured or n.bwd or n.bwd_bytes):
            continue
        key = (n.module_path, *n.module_stack)
        paths = charged.get(key)
        if paths is None:
            paths = charged[key] = charged_paths(n)
        for path in paths:
            row = rows.get(path)
            if row is not None:
                row.fwd += n.fwd
                if n.bwd is not None:
                    row.bwd += n.bwd
                row.fwd_bytes += n.fwd_bytes
                row.bwd_bytes += n.bwd_bytes
                if n.measured is not None:
                    row.measured = (row.measured or 0.0) + n.measured
    return rows


def _own_params(m: torch.nn.Module) -> int:
    """Parameters of ``m``'s subtree, each tensor once (packed quantized weights included)."""
    return sum(p.numel() for p in {id(p): p for s in m.modules() for p in module_weights(s)}.values())


def _subtree_params(model: torch.nn.Module) -> dict[int, int] | None:
    """``{id(module): parameters in its subtree}`` in one walk, or None when a module or parameter is shared (then
    a subtree's own ``parameters()``, which counts each tensor once, is the only right answer)."""
    out: dict[int, int] = {}
    seen: set[int] = set()

    def walk(m: torch.nn.Module) -> int | None:
        if id(m) in out:
            return None
        total = 0
        for p in module_weights(m):
            if id(p) in seen:
                return None
            seen.add(id(p))
            total += p.numel()
        for child in m._modules.values():
            if child is not None:
                sub = walk(child)
                if sub is None:
                    return None
                total += sub
        out[id(m)] = total
        return total

    return out if walk(model) is not None else None


def charged_paths(n: NodeRecord) -> set[str]:
    """The modules a node's cost is charged to: the calls on its module stack and the levels between a caller
    and a module below it. A module shared between owners (one path, its first owner's) is charged to itself and
    to the owner that called it, not to its first owner's other ancestors."""
    stack = n.module_stack
    if not stack:
        return set(ancestors(n.module_path))
    chain = [*stack, n.module_path]
    if n.module_path and all(under(b, a) for a, b in zip(chain, chain[1:])):  # nothing shared: the plain case
        return set(ancestors(n.module_path))
    out = set(ancestors(stack[0]))
    for caller, callee in zip(stack, stack[1:] + [n.module_path]):
        if under(callee, caller):
            out.update(p for p in ancestors(callee) if under(p, caller))
        elif callee:
            out.add(callee)
    return out


def reused_nodes(records: list[NodeRecord], reused: list[Reuse]) -> list[NodeRecord]:
    """``records`` plus, for every reused block, a copy of each node its source block ran, under the block's own
    path. A node belongs to a block when the block is on its module stack, so the work of a module shared
    between blocks, defined outside them, is copied too. Inner blocks are filled in first, so a reused stage
    copies a source stage that is already complete."""
    out = list(records)
    for r in sorted(reused, key=lambda r: -r.path.count(".")):
        for rec in list(out):
            stack = rec.module_stack or ancestors(rec.module_path)[1:]
            if rec.status and any(under(p, r.source) for p in stack):
                out.append(replace(rec, name=f"{rec.name}@{r.path}", module_path=moved(rec.module_path, r.source, r.path),
                                   module_stack=[moved(p, r.source, r.path) for p in stack], block=r.path))
            elif rec.kind == "get_attr" and under(rec.target, r.source):  # the block's own weights
                out.append(replace(rec, name=f"{rec.name}@{r.path}", target=moved(rec.target, r.source, r.path),
                                   block=r.path))
    return out
