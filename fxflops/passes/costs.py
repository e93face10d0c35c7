"""The cost pass: one loop over ``graph.nodes`` that writes each op node's cost into ``node.meta["fxflops"]``.

It needs ``node.meta["val"]`` (from :mod:`fxflops.passes.shapes` or a dynamo capture) and a
:class:`Counting` context: the registry, what the user ignores, and a fallback for nodes no rule knows.
The result is a :class:`~fxflops.types.NodeRecord` per op node, which the later passes (bytes, backward,
records) complete in place and every view reads. Nothing here warns or raises about uncounted ops: the
caller checks the whole model once (:func:`fxflops.api.trace_flops`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
from torch._functorch import predispatch as _predispatch

from ..errors import FxFlopsError, first_line
from ..paths import submodule
from ..rules.registry import Call, Cost, Registry, Rule, qualified_name, target_name
from ..tensors import has_tensor, tensors_in
from ..types import OP_KINDS, NodeRecord, Status

# ``fallback(node, call)`` prices a node no rule knows (an untraceable leaf, a higher-order op): it returns
# the cost, how it was priced, what inside it could not be priced and, for an op that stands for a registered one,
# that op's rule; or None.
Fallback = Callable[[fx.Node, Call], "tuple[Any, ...] | None"]


# ``pricer(ctx, fn, args, kwargs)`` counts a user callable in the context ``ctx`` (capturing it: the orchestrator
# that knows the capture paths gives it, fxflops.pipeline.nested); returns (cost, output value, what was left out).
Pricer = Callable[["Counting", Callable, tuple, dict], "tuple[Cost, Any, list[str]]"]


@dataclass
class Counting:
    """What a count is done with; nested counts (:meth:`Call.price`) inherit all of it."""

    registry: Registry
    ignore: list[Any] = field(default_factory=list)
    fallback: Fallback | None = None
    train: bool = False  # a training step: the backward pass prices every node too
    pricer: Pricer | None = None
    device: str = ""  # the device type the model runs on ("cpu", "cuda"; "" for a model and example on meta)

    def nested(self, fallback: Fallback | None) -> "Counting":
        return Counting(self.registry, self.ignore, fallback, self.train, self.pricer, self.device)

    def price(self, fn: Callable, args: tuple, kwargs: dict) -> tuple[Cost, Any, list[str]]:
        """Count ``fn(*args, **kwargs)`` in this context (same registry, custom rules and ``ignore``). Returns
        (cost, output, left out)."""
        if self.pricer is None:
            raise FxFlopsError("this count cannot price a nested function: count through fxflops.trace_flops")
        return self.pricer(self, fn, args, kwargs)


def innermost_module(node: fx.Node) -> tuple[str, str]:
    """(qualified path, class name) of the innermost module containing ``node``; ``("", "")`` at the root."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return "", ""
    path, cls = next(reversed(stack.values()))
    name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
    return path, name.rsplit(".", 1)[-1]


def find_rule(registry: Registry, node: fx.Node, module: torch.nn.Module | None) -> Rule | None:
    if node.op == "call_module":
        return registry.for_module(module)
    if node.op == "call_function":
        return registry.for_function(node.target)
    return registry.for_method(node.target)


def _val(n: Any) -> Any:
    return fx.node.map_arg(n, lambda a: a.meta.get("val"))


def _matches(ignore: list[Any], node: fx.Node, module: torch.nn.Module | None, rule: Rule | None) -> bool:
    for item in ignore:
        if isinstance(item, str):
            if item == node.target and node.op == "call_method":
                return True
            if rule is not None and item == rule.op:
                return True
            if module is not None and item == type(module).__name__:
                return True
            if node.op == "call_function" and item == target_name(node.target):  # the name the report shows
                return True
        elif isinstance(item, type):
            if module is not None and isinstance(module, item):
                return True
        elif node.op == "call_function" and item is node.target:
            return True
    return False


def as_cost(value: Any, who: str) -> Cost:
    """A rule's return value as a Cost: a bare int is MACs (thop's convention)."""
    if isinstance(value, Cost):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Cost(value, 2 * value)
    raise TypeError(f"the rule for {who} returned {type(value).__name__}; a rule must return fxflops.Cost or an int of MACs")


def priced(op: str, cost: Cost, left_out: list[str], rule: Rule | None = None, reason: str = "",
           **base: Any) -> NodeRecord:
    """A priced node: counted, or partial when something inside it was left out."""
    status = Status.PARTIAL if left_out else Status.COUNTED
    return NodeRecord(op=op, status=status, fwd=cost, rule=rule, reason=reason, left_out=list(left_out), **base)


def count_node(gm: fx.GraphModule, node: fx.Node, ctx: Counting) -> NodeRecord:
    """Price one op node."""
    module = submodule(gm, node.target) if node.op == "call_module" else None
    if module is not None:
        path, mtype = node.target, type(module).__name__
    else:
        path, mtype = innermost_module(node)
    name = type(module).__name__ if module is not None else target_name(node.target)
    rule = find_rule(ctx.registry, node, module)
    qualname = qualified_name(type(module) if module is not None else node.target)
    base = dict(name=node.name, kind=node.op, target=name, module_path=path, module_type=mtype, qualname=qualname,
                node=node)

    if ctx.ignore and _matches(ctx.ignore, node, module, rule):
        return NodeRecord(op=rule.op if rule else name, status=Status.IGNORED, rule=rule, reason="ignored by the user",
                          **base)
    if rule is not None and rule.status == Status.FREE:
        return NodeRecord(op=rule.op, status=Status.FREE, rule=rule, reason=rule.reason, **base)

    call = Call(node.target, _val(node.args), _val(node.kwargs), node.meta.get("val"), module, pricer=ctx.price)
    if module is None and not has_tensor(call.out) and not tensors_in((call.args, dict(call.kwargs))):
        # x.size(0) * 2 and friends: fx records shape arithmetic as operator nodes like any other.
        return NodeRecord(op=rule.op if rule else name, status=Status.FREE,
                          reason="Python scalar/shape arithmetic, no tensor involved", **base)
    if rule is None:
        got = ctx.fallback(node, call) if ctx.fallback is not None else None
        if got is not None:  # (cost, how, left out[, the rule of the op it stands for])
            return priced(name, got[0], got[2], rule=got[3] if len(got) > 3 else None, reason=got[1], **base)
        return NodeRecord(op=name, status=Status.UNCOUNTED, reason="no rule", **base)
    try:
        cost = as_cost(rule(call), name)
    except FxFlopsError:
        raise  # a nested count that hit the user's own error (strict, a shape error): theirs to see
    except Exception as exc:  # noqa: BLE001 - a rule that cannot price this call must not sink the report
        return NodeRecord(op=rule.op, status=Status.UNCOUNTED, rule=rule,
                          reason=f"rule {rule.op!r} failed: {first_line(exc)}", **base)
    return priced(rule.op, cost, call.left_out, rule=rule, **base)


def count_graph(gm: fx.GraphModule, ctx: Counting) -> list[fx.Node]:
    """Price every op node of ``gm`` in place; returns the nodes whose price is incomplete."""
    incomplete = []
    hidden: dict[fx.Node, tuple[int, ...]] = {}
    for node in gm.graph.nodes:
        sizes = vmap_sizes(node, hidden)
        if sizes:
            hidden[node] = sizes
        if node.op not in OP_KINDS:
            continue
        cost = count_node(gm, node, ctx)
        if sizes and (cost.fwd.macs or cost.fwd.flops):  # the rule priced one sample of every vmap level around it
            cost.fwd = cost.fwd * math.prod(sizes)
        node.meta["fxflops"] = cost
        if cost.status.incomplete:
            incomplete.append(node)
    return incomplete


# vmap in a dynamo graph: _add_batch_dim(x, in_dim, level) hides x's dimension in_dim, and the ops after it see
# (and their rules price) one sample; _remove_batch_dim(y, level, batch_size, out_dim) brings it back.
ADD_BATCH_DIM = (torch._C._functorch._add_batch_dim, _predispatch._add_batch_dim)
REMOVE_BATCH_DIM = (torch._C._functorch._remove_batch_dim, _predispatch._remove_batch_dim)


def vmap_sizes(node: fx.Node, hidden: dict[fx.Node, tuple[int, ...]]) -> tuple[int, ...]:
    """The batch sizes vmap hides from ``node``'s values, outermost level first (empty outside vmap): one run
    of the node stands for their product. ``hidden`` holds them for the nodes before it."""
    if not hidden and node.target not in ADD_BATCH_DIM:
        return ()
    inner = max((hidden.get(a, ()) for a in node.all_input_nodes), key=len, default=())
    if node.target in ADD_BATCH_DIM:
        x, in_dim = node.args[0], node.args[1]
        val = x.meta.get("val") if isinstance(x, fx.Node) else None
        return inner + (int(val.shape[in_dim]),) if isinstance(val, torch.Tensor) else inner
    if node.target in REMOVE_BATCH_DIM:
        return inner[:-1]
    return inner


def total(nodes: Any) -> Cost:
    """The summed cost of the priced nodes among ``nodes`` (fx nodes already counted)."""
    out = Cost()
    for n in nodes:
        c = n.meta.get("fxflops")
        if c is not None and c.status.priced:
            out = out + c.fwd
    return out


def left_out_of(nodes: Any) -> list[str]:
    """What the counted ``nodes`` could not price: targets without a rule, and what partial nodes left out."""
    out: list[str] = []
    for n in nodes:
        c = n.meta.get("fxflops")
        if c is None:
            continue
        if c.status == Status.UNCOUNTED and c.target not in out:
            out.append(c.target)
        out += [x for x in c.left_out if x not in out]
    return out
