"""Ops no rule knows by name, priced by what they stand for: a higher-order op of a dynamo graph (``wrap``,
``invoke_subgraph``, checkpointing) by the subgraph it runs, and a custom op another library wraps around a torch op,
or an aten op called directly, by that op's rule."""
from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from ..paths import attr_at
from ..rules.registry import Call, Cost
from ..types import Status
from .costs import Counting, as_cost, count_graph, left_out_of, total

__all__ = ["EQUIVALENT_OPS", "op_fallback", "equivalent_op"]


# Custom ops other libraries register around a torch op (so that torch.compile does not trace their Python
# fallback), by qualified name: they are priced by the rule of the torch op they stand for.
EQUIVALENT_OPS = {
    "transformers::grouped_mm_fallback": "_grouped_mm",  # mixture-of-experts GEMM (input, weight, offs)
}


def op_fallback(gm: fx.GraphModule, ctx: Counting):
    """Prices a higher-order op node (``invoke_subgraph``, ``wrap``, checkpointing...) by its first subgraph
    (the graph it runs forward; its inner nodes already hold dynamo's fake values), and a known custom op
    by the rule of the torch op it stands for (:data:`EQUIVALENT_OPS`)."""

    def fallback(node: fx.Node, call: Call) -> tuple[Cost, str, list[str]] | None:
        if isinstance(node.target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
            return equivalent_op(node.target, call, ctx)
        if not isinstance(node.target, torch._ops.HigherOrderOperator):
            return None
        sub = next((attr_at(gm, a.target) for a in node.args if isinstance(a, fx.Node) and a.op == "get_attr"
                    and isinstance(attr_at(gm, a.target), fx.GraphModule)), None)
        if sub is None:
            return None
        count_graph(sub, ctx.nested(op_fallback(sub, ctx)))
        nodes = list(sub.graph.nodes)
        return total(nodes), f"{node.target.name()} subgraph", left_out_of(nodes)

    return fallback


def equivalent_op(op: Any, call: Call, ctx: Counting) -> tuple[Cost, str, list[str]] | None:
    """A custom op priced by the rule of the torch op it stands for (:data:`EQUIVALENT_OPS`), and an aten op
    called directly (``torch.ops.aten.mm.default``) by the rule of its torch function or Tensor method; or None."""
    name = op._qualified_op_name if isinstance(op, torch._ops.OpOverloadPacket) else op.name().split(".")[0]
    namespace, _, base = name.partition("::")
    torch_name = EQUIVALENT_OPS.get(name, base if namespace == "aten" else "")
    target: Any = getattr(torch, torch_name, None) if torch_name else None
    rule = ctx.registry.for_function(target) if target is not None else None
    if rule is None and namespace == "aten":
        target, rule = base, ctx.registry.for_method(base)
    if rule is None or rule.status == Status.FREE:
        return (Cost(), f"{rule.op} (as {name}): {rule.reason}", []) if rule is not None else None
    cost = as_cost(rule(Call(target, call.args, call.kwargs, call.out)), name)
    return cost, f"{rule.op} (as {name})", [], rule
