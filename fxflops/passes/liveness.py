"""Liveness of the activations of an inference forward: the most bytes alive at once when each tensor is freed
right after its last use, as PyTorch's caching allocator frees an eager forward's tensors.

A tensor lives from the node that makes it to its last user, and a view (an output that aliases an input:
``view``, ``transpose``, ``x[:, 0]``...) or an in-place op's output (``relu_``, ``ReLU(inplace=True)``) shares its
source's storage, so it keeps the source alive and adds no bytes. The model's inputs are held by the caller for
the whole forward and its outputs are alive at the end; weights (``get_attr`` nodes) are not activations. Each
tensor counts at its dtype's element size. A graph break splits the forward into graphs: each graph's peak is
taken, the outputs of one graph counting as the inputs of the next, and the peak of the forward is the largest.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.fx as fx

from ..rules.bytes import ByteCall
from ..tensors import tensors_in
from ..types import NodeRecord

__all__ = ["Liveness", "peak_activations"]


@dataclass(frozen=True)
class Liveness:
    """The peak of the activations alive at once: ``peak`` bytes, reached while ``node`` runs (its inputs, its
    output and every tensor a later node still needs)."""

    peak: int
    node: str


def _nbytes(node: fx.Node) -> int:
    return sum(int(t.numel()) * t.element_size() for t in tensors_in(node.meta.get("val")))


def _aliases(node: fx.Node) -> fx.Node | None:
    """The input whose storage ``node``'s output shares, or None when the output is a new tensor."""
    ins = [a for a in node.all_input_nodes if tensors_in(a.meta.get("val"))]
    out = tensors_in(node.meta.get("val"))
    if not ins or not out:
        return None
    if node.op == "call_module":
        # A module run in place (ReLU(inplace=True)) returns its input itself; any view it returns may be of a
        # tensor it made inside, so only identity says it allocated nothing.
        mine = {id(t): a for a in ins for t in tensors_in(a.meta.get("val"))}
        return next((mine[id(t)] for t in out if id(t) in mine), None)
    if node.op not in ("call_function", "call_method"):
        return None
    values = [v for a in ins for v in tensors_in(a.meta.get("val"))]
    return ins[0] if ByteCall(values, node.meta.get("val")).aliases() else None


def _graph_peak(nodes: list[fx.Node]) -> Liveness:
    owner: dict[fx.Node, fx.Node] = {}  # node -> the node whose storage its output is
    last: dict[fx.Node, int] = {}  # storage owner -> index of the last node that reads it
    end = len(nodes)
    for i, n in enumerate(nodes):
        src = _aliases(n)
        owner[n] = owner.get(src, src) if src is not None else n
        for a in n.all_input_nodes:
            if a in owner:
                last[owner[a]] = end if n.op == "output" else i  # returned: alive when the forward ends
    for n in nodes:
        if n.op == "placeholder":
            last[n] = end  # the caller holds its inputs
    live, best, at = 0, 0, ""
    for i, n in enumerate(nodes):
        if owner[n] is n and n.op not in ("get_attr", "output"):
            live += _nbytes(n)
        if live > best:
            best, at = live, n.name
        for a in {owner[x] for x in n.all_input_nodes if x in owner} | {n}:
            if last.get(a, i) == i and a.op != "get_attr" and owner[a] is a:
                live -= _nbytes(a)
    return Liveness(best, at)


def peak_activations(records: list[NodeRecord]) -> Liveness:
    """The peak of the activations alive at once over the records' graph nodes (see the module docstring)."""
    graphs: dict[int, list[fx.Node]] = {}
    for r in records:
        if r.node is not None:
            graphs.setdefault(r.graph, []).append(r.node)
    peaks = [_graph_peak(nodes) for _, nodes in sorted(graphs.items())]
    return max(peaks, key=lambda p: p.peak, default=Liveness(0, ""))
