"""``annotate``: the passes, in order, over the graphs of any capture.

shapes (where the capture left no values on the nodes) → costs → bytes → backward (train mode) → records, then what
the capture keeps outside its graphs: runs of a graph beyond the first, modules kept whole, reused blocks. Every
capture path goes through here, so a report is built the same way whichever path made it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch.fx as fx

from ..captured import Captured
from ..passes.backward import count_backward
from ..passes.bytes import count_bytes
from ..passes.costs import Counting, Fallback, count_graph
from ..passes.leaves import leaf_record
from ..passes.op_fallbacks import op_fallback
from ..passes.records import node_records, reused_nodes
from ..passes.shapes import propagate_shapes
from ..paths import under
from ..types import NodeRecord
from .opaque import OpaqueFallback, fallback_notes

__all__ = ["Annotated", "annotate", "annotate_records"]


@dataclass
class Annotated:
    """The records of a capture, the notes the passes add to the capture's, and the shape mode."""

    records: list[NodeRecord]
    notes: list[str]
    shape_mode: str


def annotate(cap: Captured, ctx: Counting) -> Annotated:
    """Run the passes over every graph of ``cap`` in the counting context ``ctx`` (see the module docstring)."""
    opaque = OpaqueFallback(ctx, annotate_records)
    shape_mode, shape_notes = cap.shape_mode, []
    seen: set[int] = set()
    records: list[NodeRecord] = []
    many = len(cap.graphs) > 1
    for i, gm in enumerate(cap.graphs):
        if not cap.shape_mode:  # symbolic tracing leaves the values to the shape pass
            shapes = propagate_shapes(gm, cap.inputs or (), opaque=opaque.shape)
            shape_mode = shapes.mode
            if shapes.note:
                shape_notes.append(shapes.note)
        count_graph(gm, ctx.nested(_fallback(gm, ctx, opaque)))
        count_bytes(gm)
        if ctx.train:
            count_backward(gm, cap.inputs if i == 0 else None, device=ctx.device)
        once = node_records(gm, seen, prefix=f"g{i}." if many else "", graph=i)
        records += once
        for run in range(2, (cap.runs[i] if i < len(cap.runs) else 1) + 1):  # the graph ran again
            records += [replace(r, name=f"{r.name}#{run}", params=0, run=run) for r in once]
    records += [leaf_record(call, ctx) for call in cap.leaves]
    if cap.reused:
        for r in records:  # a reused block's stub (torch.empty of its output) stands in for work its copies carry
            if r.bytes and any(under(r.module_path, b.path) for b in cap.reused):
                r.fwd_bytes = 0
        records = reused_nodes(records, cap.reused)
    opaque_notes = fallback_notes(cap.graphs[0], cap.untraceable, opaque) if cap.graphs else []
    notes = list(cap.notes) + opaque_notes + shape_notes
    return Annotated(records, notes, shape_mode)


def annotate_records(cap: Captured, ctx: Counting) -> list[NodeRecord]:
    """The records alone (what a nested count needs)."""
    return annotate(cap, ctx).records


def _fallback(gm: fx.GraphModule, ctx: Counting, opaque: OpaqueFallback) -> Fallback:
    """Price a node no rule knows: by what it stands for (a higher-order op's subgraph, the torch op a custom or aten
    op wraps), else by capturing it (an opaque leaf or wrapped function)."""
    stands_for = op_fallback(gm, ctx)

    def fallback(node: fx.Node, call):
        got = stands_for(node, call)
        return got if got is not None else opaque(node, call)

    return fallback
