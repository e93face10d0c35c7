"""The backward pass: the MACs and FLOPs of each op node's gradient, written into ``node.meta["fxflops"]``
(``bwd``, ``bwd_status``, the saved bytes), for a count with ``mode="train"``.

It is gradient-aware, deciding from the graph what autograd would: a value requires grad when it is a
parameter with ``requires_grad`` (a ``get_attr``, a lifted placeholder, a leaf module's own parameters), an
input that requires grad, or the output of an op with such an operand and a floating-point result. A node
computes only the gradients its operands need: the first layer has no grad-input, a frozen weight no
grad-weight, and a node whose output needs no grad has no backward at all.

Each node's backward formula and what it saves come from the rule that priced its forward (``Rule.backward``,
``Rule.saved``: :mod:`fxflops.rules.backward`). A counted op without one (a user's custom rule) is marked
``Backward.MISSING``, shown in the audit, and ``strict=True`` raises.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.fx as fx
import torch.nn as nn

from ..captured import INNER
from ..paths import attr_at, submodule
from ..tensors import tensors_in
from ..types import OP_KINDS, Backward, CheckpointRegion, Cost, NodeRecord, Status
from ..rules.backward import BwdCall, default_bytes
from ..rules.registry import SAVED_RULES, OpFormula

__all__ = ["count_backward", "backward_cost", "checkpoint_note", "needs_grad", "backward_of"]


def backward_of(rec: NodeRecord) -> OpFormula | None:
    """The backward formula of a priced node, read from the rule that priced it (a custom rule has none). A node
    priced without a rule of its own (by recording it) has none either."""
    return rec.rule.backward if rec.rule is not None else None


def backward_cost(rec: NodeRecord, call: BwdCall) -> None:
    """Price ``call``'s backward by its op's rule (or its family's) and write it into ``rec``: the cost and the bytes
    it moves (the rule's backward byte formula, else :func:`fxflops.rules.backward.default_bytes`)."""
    if rec.status in (Status.UNCOUNTED, Status.IGNORED, Status.NONE):
        rec.bwd_status = Backward.NOT_NEEDED
        return
    r = backward_of(rec)
    if r is None:
        rec.bwd_status = Backward.FREE if rec.status == Status.FREE else Backward.MISSING
        return
    c = r(call)
    rec.bwd, rec.bwd_status = Cost(int(c.macs), int(c.flops)), Backward.COUNTED
    moved = rec.rule.backward_bytes
    rec.bwd_bytes = int(moved(call)) if moved is not None else default_bytes(call, saved_by(rec)(call))


def saved_by(rec: NodeRecord) -> OpFormula:
    """What the node's op saves for its backward: its rule's saved formula, by default a pointwise op's (its inputs)."""
    own = rec.rule.saved if rec.rule is not None else None
    return own or SAVED_RULES["elementwise"]


def _requires(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and bool(t.requires_grad) and (t.is_floating_point() or t.is_complex())


def needs_grad(gm: fx.GraphModule, inputs: Sequence[Any] | None = None,
               input_needs: Sequence[bool] | None = None) -> dict[fx.Node, bool]:
    """Which nodes' outputs require grad, as autograd would decide. ``inputs`` are the example's values of the
    placeholders, in order (shape propagation's meta copies do not keep ``requires_grad``); without them the
    placeholders' own values are read (dynamo's fake tensors keep it)."""
    needs: dict[fx.Node, bool] = {}
    given = list(inputs) if inputs is not None else None
    told = list(input_needs) if input_needs is not None else None
    reentrant = _reentrant_regions(gm)
    live: dict[CheckpointRegion, bool] = {}  # a reentrant region runs under no_grad: it learns only if an input needs grad
    for node in gm.graph.nodes:
        val = node.meta.get("val")
        region = node.meta.get("checkpoint")
        region = region if region is not None and region.reentrant else None
        if region is not None and region not in live:
            live[region] = any(needs.get(a, False) for n in reentrant[region] for a in n.all_input_nodes
                               if a.meta.get("checkpoint") != region)
        if region is not None and not live[region]:
            needs[node] = False
            continue
        floating = any(t.is_floating_point() or t.is_complex() for t in tensors_in(val))
        if node.op == "placeholder" and told is not None:
            needs[node] = bool(told.pop(0)) if told else False
        elif node.op == "placeholder":
            if given is not None:
                val = given.pop(0) if given else None
            needs[node] = any(_requires(t) for t in tensors_in(val))
        elif node.op == "get_attr":
            try:
                attr = attr_at(gm, node.target)
            except AttributeError:
                attr = val
            needs[node] = any(_requires(t) for t in tensors_in(attr))
        elif node.op in OP_KINDS:
            params = _module_params(gm, node)
            needs[node] = floating and (any(needs.get(a, False) for a in node.all_input_nodes)
                                        or any(p.requires_grad for p in params))
        else:
            needs[node] = False
    return needs


def _reentrant_regions(gm: fx.GraphModule) -> dict[CheckpointRegion, list[fx.Node]]:
    out: dict[CheckpointRegion, list[fx.Node]] = {}
    for n in gm.graph.nodes:
        region = n.meta.get("checkpoint")
        if region is not None and region.reentrant:
            out.setdefault(region, []).append(n)
    return out


def _module_params(gm: fx.GraphModule, node: fx.Node) -> list[torch.Tensor]:
    return list(submodule(gm, node.target).parameters()) if node.op == "call_module" else []


def leaf_call(fwd: Cost, args: Any, out: Any, module: nn.Module | None, fwd_bytes: int = 0) -> BwdCall:
    """The backward call of a module kept whole, from the values a probe saw."""
    ins = [t for t in tensors_in(args) if t.is_floating_point()]
    return _call(fwd, ins, [_requires(t) for t in ins], out, module, fwd_bytes)


def _call(fwd: Cost, ins: list, grads: list[bool], out: Any, module: nn.Module | None, fwd_bytes: int = 0,
          device: str = "", kwargs: dict | None = None) -> BwdCall:
    weight = bias = False
    if module is not None:
        b = getattr(module, "bias", None)
        bias = isinstance(b, torch.Tensor) and b.requires_grad
        weight = any(p.requires_grad for p in module.parameters() if p is not b)
    return BwdCall(fwd, grads, ins, out, module, weight, bias, fwd_bytes, device, kwargs or {})


def count_backward(gm: fx.GraphModule, inputs: Sequence[Any] | None = None,
                   input_needs: Sequence[bool] | None = None, device: str = "") -> set[fx.Node]:
    """Set the backward cost of every op node of ``gm`` (after the cost pass), and the bytes it saves for the
    backward (``saved_bytes``: a tensor saved by several nodes, or through a view, counts once, at its first
    saver); ``inputs`` as :func:`needs_grad`.

    A region of activation checkpointing (``node.meta["checkpoint"]``) that needs a gradient is run again in the
    backward: its nodes' forward cost is added to their backward (with early stop, up to the last node whose output
    a backward formula saves), they save nothing for the backward themselves (the region saves its inputs), and
    what each saves while recomputed goes into ``recompute_saved``. ``input_needs`` says outright which
    placeholders need a gradient (a subgraph's, from its caller); ``device`` is the device type the step runs on (what
    some ops save depends on it). Returns the nodes whose values are saved."""
    needs = needs_grad(gm, inputs, input_needs)
    kept: set[fx.Node] = set()
    active = {n.meta["checkpoint"] for n in gm.graph.nodes if "checkpoint" in n.meta and needs.get(n)}
    regions: dict[CheckpointRegion, list[fx.Node]] = {}  # the nodes of each active region, in order
    recomputed: dict[CheckpointRegion, set[fx.Node]] = {}  # what each region's recompute keeps
    for node in gm.graph.nodes:
        cost: NodeRecord | None = node.meta.get("fxflops")
        if node.op not in OP_KINDS or cost is None:
            continue
        region = node.meta.get("checkpoint") if node.meta.get("checkpoint") in active else None
        if region is not None:
            regions.setdefault(region, []).append(node)
        module = submodule(gm, node.target) if node.op == "call_module" else None
        if not needs[node]:
            cost.bwd_status = Backward.NOT_NEEDED
            continue
        body = _body(gm, node)
        if body is not None:
            _subgraph_backward(node, body, cost, kept, needs, device)
            continue
        operands = [a for a in node.all_input_nodes
                    if any(t.is_floating_point() or t.is_complex() for t in tensors_in(a.meta.get("val")))]
        ins = [tensors_in(a.meta.get("val"))[0] for a in operands]
        try:
            call = _call(cost.fwd, ins, [needs[a] for a in operands], node.meta.get("val"), module, cost.fwd_bytes,
                         device, fx.node.map_arg(dict(node.kwargs), lambda a: a.meta.get("val")))
            backward_cost(cost, call)
            if region is None:
                cost.saved_bytes = _saved_bytes(node, operands, call, cost, kept)
            else:
                cost.recompute_saved = _saved_bytes(node, operands, call, cost,
                                                    recomputed.setdefault(region, set()))
                cost.saved_bytes = _region_inputs(node, region, kept)
        except Exception:  # noqa: BLE001 - an odd value (a symbolic size) must not sink the forward count
            cost.bwd, cost.bwd_status = None, Backward.MISSING
    for region, nodes in regions.items():
        for node in _recomputed(region, nodes, recomputed.get(region, set())):
            cost = node.meta["fxflops"]
            if cost.status.priced:
                cost.bwd = (cost.bwd or Cost()) + cost.fwd
                cost.recompute = cost.fwd
            cost.bwd_bytes += cost.fwd_bytes
    return kept


def _body(gm: fx.GraphModule, node: fx.Node) -> fx.GraphModule | None:
    """The graph that priced the node: the recording of an opaque leaf or wrapped function (``node.meta[INNER]``), or
    the graph a higher-order op node of dynamo's runs on the operands after it (``tag_activation_checkpoint``,
    ``wrap``, ``invoke_subgraph``); None otherwise (``cond`` and other ops whose first operand is not their body)."""
    if INNER in node.meta:
        return node.meta[INNER]
    if not isinstance(node.target, torch._ops.HigherOrderOperator) or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, fx.Node) and first.op == "get_attr":
        sub = attr_at(gm, first.target)
        if isinstance(sub, fx.GraphModule):
            return sub
    return None


def _subgraph_backward(node: fx.Node, body: fx.GraphModule, cost: NodeRecord, kept: set[fx.Node],
                       needs: dict[fx.Node, bool], device: str) -> None:
    """A node priced by a graph of its own (a recorded leaf, a higher-order op's body) has that graph's backward,
    bytes and saved activations, its placeholders needing a gradient where the operands passed to them do. A
    checkpointed body also runs its forward again (with early stop, up to the last value its backward saves) and saves
    only its inputs."""
    if INNER in node.meta:  # a recording's placeholders are the call's arguments, positional then keyword
        passed = [*node.args, *node.kwargs.values()]
        input_needs = [any(needs.get(a, False) for a in _nodes(v)) for v in passed]
    else:
        input_needs = [needs.get(a, False) for a in node.args[1:] if isinstance(a, fx.Node)]
    saved = count_backward(body, input_needs=input_needs, device=device)
    ops = [n for n in body.graph.nodes if n.op in OP_KINDS and "fxflops" in n.meta]
    inner = [n.meta["fxflops"] for n in ops]
    cost.bwd = sum((c.bwd for c in inner if c.bwd is not None), Cost())
    cost.bwd_bytes = sum(c.bwd_bytes for c in inner)
    inner_again = sum((c.recompute for c in inner if c.recompute is not None), Cost())
    cost.recompute = inner_again if inner_again != Cost() else None
    cost.bwd_status = Backward.MISSING if any(c.bwd_status == Backward.MISSING for c in inner) else Backward.COUNTED
    if node.target is not torch.ops.higher_order.tag_activation_checkpoint:
        cost.saved_bytes = sum(c.saved_bytes for c in inner)
        return
    again = [n.meta["fxflops"] for n in _recomputed(CheckpointRegion(0), ops, saved)]
    redo = sum((c.fwd for c in again if c.status.priced), Cost())
    cost.bwd += redo
    cost.bwd_bytes += sum(c.fwd_bytes for c in again)
    cost.recompute = inner_again + redo
    cost.recompute_saved = sum(c.saved_bytes for c in inner)
    cost.saved_bytes = _region_inputs(node, None, kept)


def _nodes(value: Any) -> list[fx.Node]:
    out: list[fx.Node] = []
    fx.node.map_arg(value, out.append)
    return out


def checkpoint_note(records: Sequence[Any]) -> str | None:
    """The report's note on activation checkpointing (train mode), or None without it."""
    regions = {n.checkpoint for n in records if n.checkpoint}
    if not regions:
        return None
    nodes = sum(1 for n in records if n.checkpoint)
    return (f"activation checkpointing: {len(regions)} region(s), {nodes} nodes, run again in the backward (counted "
            "in the backward) and saving only their inputs; memory().recompute is what the largest region holds "
            "while it is recomputed")


def _recomputed(region: CheckpointRegion, nodes: list[fx.Node], saved: set[fx.Node]) -> list[fx.Node]:
    """The nodes a region's recompute runs: all of them, or with early stop up to the last one that produces a
    value the backward saved (autograd stops recomputing once it has every saved tensor back)."""
    if region.whole:
        return nodes
    last = max((i for i, n in enumerate(nodes) if n in saved), default=-1)
    return nodes[: last + 1]


def _region_inputs(node: fx.Node, region: CheckpointRegion | None, kept: set[fx.Node]) -> int:
    """Bytes of the values from outside ``region`` that ``node`` reads: what the checkpoint saves to recompute
    from (each once; parameters are no activations). With ``region`` None the node is a whole region (dynamo's
    ``tag_activation_checkpoint``), and every value it reads comes from outside."""
    total = 0
    for a in node.all_input_nodes:
        src = _source(a)
        inside = region is not None and src.meta.get("checkpoint") == region
        if inside or src.op == "get_attr" or src in kept:
            continue
        t = tensors_in(src.meta.get("val"))[:1]
        if t and (t[0].is_floating_point() or t[0].is_complex()):
            kept.add(src)
            total += int(t[0].numel()) * t[0].element_size()
    return total


def _source(node: fx.Node) -> fx.Node:
    """The node whose storage ``node`` shares: through views and other free ops that move no bytes (a ``cat`` or a
    ``contiguous`` copy makes a tensor of its own)."""
    while node.op in OP_KINDS and node.all_input_nodes:
        c = node.meta.get("fxflops")
        if c is None or c.status != Status.FREE or c.fwd_bytes:
            break
        node = node.all_input_nodes[0]
    return node


def _saved_bytes(node: fx.Node, operands: list[fx.Node], call: BwdCall, cost: NodeRecord, kept: set[fx.Node]) -> int:
    if cost.status == Status.FREE and (cost.rule is None or cost.rule.saved is None):
        return 0
    saved = saved_by(cost)(call)
    nodes = [operands[i] for i in saved.operands] + ([node] if saved.out else [])
    total = saved.extra
    for n in nodes:
        src = _source(n)
        if src.op == "get_attr" or src in kept:  # a parameter is no activation; a tensor kept already
            continue
        kept.add(src)  # the whole tensor a view was taken of stays alive: its bytes, not the view's
        total += sum(int(t.numel()) * t.element_size() for t in tensors_in(src.meta.get("val"))[:1])
    return total
