"""The graph module a capture returns: its graph over the model's own submodules and tensors."""
from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
from torch.fx._lazy_graph_module import _LazyGraphModule


def graph_module(model: torch.nn.Module, graph: fx.Graph, consts: dict[str, Any] | None = None) -> fx.GraphModule:
    """A graph module that runs ``graph`` with ``model``'s own children, parameters and buffers (shared, not copied
    attribute by attribute as ``fx.GraphModule`` does) and ``consts``, values of the graph's own. Its code is
    generated only if it is ever called: the passes read the graph, and for an 80-layer LLM either copying or
    code generation costs more than capturing."""
    consts = dict(consts or {})
    for node in graph.nodes:  # what a get_attr reads from the root itself (fx puts tensor constants there)
        if node.op == "get_attr":
            head = node.target.split(".", 1)[0]
            if head not in consts and head not in model._modules and head not in model._parameters \
                    and head not in model._buffers and hasattr(model, head):
                consts[head] = getattr(model, head)
    gm = _LazyGraphModule({}, fx.Graph(), type(model).__name__)
    gm.training = model.training
    for name, child in model._modules.items():
        if child is not None:
            gm._modules[name] = child
    for store, own in ((gm._parameters, model._parameters), (gm._buffers, model._buffers)):
        for name, t in own.items():
            store[name] = t
    for name, value in consts.items():
        setattr(gm, name, value)
    gm.graph = graph  # its targets now resolve
    return gm
