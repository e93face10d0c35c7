"""The cost pass: one loop over ``graph.nodes`` that writes each op node's cost into ``node.meta["fxflops"]``.

It needs ``node.meta["val"]`` (from :mod:`fxflops.shapes` or a dynamo capture) and a registry. The
result is a :class:`NodeCost` per node, which every later pass (report, rendering, audit) reads from
the graph itself.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
import torch.fx as fx

from .errors import UncountedOpError, first_line
from .registry import Call, Cost, Registry, Rule, target_name

OP_NODES = ("call_module", "call_function", "call_method")

# Statuses a node can have; the audit groups by them.
COUNTED, FREE, IGNORED, UNCOUNTED = "counted", "free", "ignored", "uncounted"


@dataclass
class NodeCost:
    """The cost of one fx node, as stored in ``node.meta["fxflops"]``."""

    op: str  # op type shown in reports: conv2d, linear, add...
    status: str  # counted | free | ignored | uncounted
    macs: int = 0
    flops: int = 0
    rule: str = ""  # the rule that priced it (or why it is free/uncounted)
    module_path: str = ""  # the innermost module the node belongs to ("" for the root)
    module_type: str = ""
    target: str = ""  # human name of the call target


def module_stack(node: fx.Node) -> list[tuple[str, str]]:
    """``[(qualified path, class name), ...]`` from outermost to innermost module containing ``node``."""
    stack = node.meta.get("nn_module_stack") or {}
    out = []
    for path, cls in stack.values():
        name = cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
        out.append((path, name.rsplit(".", 1)[-1]))
    return out


def resolve_module(gm: fx.GraphModule, node: fx.Node) -> torch.nn.Module | None:
    if node.op != "call_module":
        return None
    return gm.get_submodule(node.target)


def find_rule(registry: Registry, node: fx.Node, module: torch.nn.Module | None) -> Rule | None:
    if node.op == "call_module":
        return registry.for_module(module)
    if node.op == "call_function":
        return registry.for_function(node.target)
    return registry.for_method(node.target)


def _val(n: Any) -> Any:
    return fx.node.map_arg(n, lambda a: a.meta.get("val"))


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    return False


def _matches(ignore: Iterable[Any], node: fx.Node, module: torch.nn.Module | None, rule: Rule | None) -> bool:
    for item in ignore:
        if isinstance(item, str):
            if item == node.target and node.op == "call_method":
                return True
            if rule is not None and item == rule.op:
                return True
            if module is not None and item == type(module).__name__:
                return True
        elif isinstance(item, type):
            if module is not None and isinstance(module, item):
                return True
        elif node.op == "call_function" and item is node.target:
            return True
    return False


def _as_cost(value: Any, who: str) -> Cost:
    if isinstance(value, Cost):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Cost(value, 2 * value)  # a bare int is MACs, thop's convention
    raise TypeError(f"the rule for {who} returned {type(value).__name__}; a rule must return fxflops.Cost or an int of MACs")


def count_node(
    gm: fx.GraphModule,
    node: fx.Node,
    registry: Registry,
    ignore: Iterable[Any] = (),
    fallback: Callable[[fx.Node, Call], tuple[Cost, str] | None] | None = None,
) -> NodeCost:
    """Price one op node. ``fallback(node, call)`` may price a node no rule knows (e.g. an untraceable leaf)."""
    module = resolve_module(gm, node)
    stack = module_stack(node)
    path, mtype = stack[-1] if stack else ("", "")
    if module is not None:
        path, mtype = node.target, type(module).__name__
    name = type(module).__name__ if module is not None else target_name(node.target)
    rule = find_rule(registry, node, module)
    base = dict(module_path=path, module_type=mtype, target=name)

    if ignore and _matches(ignore, node, module, rule):
        return NodeCost(op=rule.op if rule else name, status=IGNORED, rule="ignored by the user", **base)
    if rule is not None and rule.status == FREE:
        return NodeCost(op=rule.op, status=FREE, rule=rule.reason, **base)

    call = Call(node.target, _val(node.args), _val(node.kwargs), node.meta.get("val"), module)
    if module is None and not _has_tensor(call.out) and not _has_tensor((call.args, dict(call.kwargs))):
        # x.size(0) * 2 and friends: fx records shape arithmetic as operator nodes like any other.
        return NodeCost(op=rule.op if rule else name, status=FREE,
                        rule="Python scalar/shape arithmetic, no tensor involved", **base)
    if rule is None:
        if fallback is not None:
            got = fallback(node, call)
            if got is not None:
                cost, how = got
                return NodeCost(name, COUNTED, cost.macs, cost.flops, how, **base)
        return NodeCost(op=name, status=UNCOUNTED, rule="no rule", **base)
    try:
        cost = _as_cost(rule(call), name)
    except Exception as exc:  # noqa: BLE001 - a rule that cannot price this call must not sink the report
        return NodeCost(op=rule.op, status=UNCOUNTED, rule=f"rule {rule.op!r} failed: {first_line(exc)}", **base)
    return NodeCost(rule.op, COUNTED, cost.macs, cost.flops, rule.op, **base)


def count_graph(
    gm: fx.GraphModule,
    registry: Registry,
    ignore: Iterable[Any] = (),
    strict: bool = False,
    fallback: Callable[[fx.Node, Call], tuple[Cost, str] | None] | None = None,
) -> list[fx.Node]:
    """Price every op node of ``gm`` in place; returns the nodes left uncounted."""
    ignore = list(ignore)
    uncounted = []
    for node in gm.graph.nodes:
        if node.op not in OP_NODES:
            continue
        cost = count_node(gm, node, registry, ignore, fallback)
        node.meta["fxflops"] = cost
        if cost.status == UNCOUNTED:
            uncounted.append(node)
    if uncounted:
        names = sorted({node.meta["fxflops"].target for node in uncounted})
        msg = (
            f"{len(uncounted)} node(s) have no FLOPs rule or could not be priced, and were counted as 0: "
            f"{', '.join(names)}. "
            "Add one with custom_rules={target: fn} or @fxflops.rule(target); report.audit() lists them."
        )
        if strict:
            raise UncountedOpError(msg)
        warnings.warn(msg, stacklevel=3)
    return uncounted
