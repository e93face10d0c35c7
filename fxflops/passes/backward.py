"""The backward pass: the MACs and FLOPs of each op node's gradient, written into ``node.meta["fxflops"]``
(``bwd``, ``bwd_status``, the saved bytes), for a count with ``mode="train"``.

It is gradient-aware, deciding from the graph what autograd would: a value requires grad when it is a
parameter with ``requires_grad`` (a ``get_attr``, a lifted placeholder, a leaf module's own parameters), an
input that requires grad, or the output of an op with such an operand and a floating-point result. A node
computes only the gradients its operands need: the first layer has no grad-input, a frozen weight no
grad-weight, and a node whose output needs no grad has no backward at all.

Each op type has one backward formula, registered with :func:`backward_rule` under the op name the cost rule
reports (``conv2d``, ``linear``) or under a whole rule family (``elementwise``, ``norm``). The rules'
docstrings are published in ``docs/conventions.md`` (``python -m tools.docgen``). A counted op with neither
(a user's custom rule) has no backward formula: it is marked ``Backward.MISSING``, shown in the audit, and
``strict=True`` raises.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.fx as fx
import torch.nn as nn

from ..paths import attr_at, submodule
from ..tensors import tensors_in
from ..types import OP_KINDS, Backward, CheckpointRegion, Cost, NodeRecord, Status
from .formulas import Formula, registers

__all__ = ["BwdCall", "BwdRule", "BACKWARD_RULES", "backward_rule", "count_backward", "backward_cost",
           "checkpoint_note", "needs_grad", "backward_of"]


@dataclass
class BwdCall:
    """One op node as a backward rule sees it.

    ``grads`` says, for each floating-point tensor operand in argument order, whether it needs a gradient;
    ``weight``/``bias`` whether a leaf module's weight / bias (or any other of its parameters) does.
    """

    fwd: Cost
    grads: list[bool]
    inputs: list[torch.Tensor] = field(default_factory=list)  # the operands ``grads`` speaks of
    out: Any = None
    module: nn.Module | None = None
    weight: bool = False
    bias: bool = False

    @property
    def out_numel(self) -> int:
        outs = tensors_in(self.out)
        return int(outs[0].numel()) if outs else 0

    @property
    def other_flops(self) -> int:
        """The forward's FLOPs beyond its contraction (bias adds, scaling, softmax...)."""
        return self.fwd.flops - 2 * self.fwd.macs

    def operands(self) -> tuple[bool, bool]:
        """(grad-input, grad-weight) of a layer: a leaf module's input and parameters, or a function's first two
        operands (``F.linear(x, w)``, ``F.conv2d(x, w)``)."""
        if self.module is not None:
            return (bool(self.grads[:1] and self.grads[0]), self.weight)
        return (bool(self.grads[:1] and self.grads[0]), bool(self.grads[1:2] and self.grads[1]))

    def bias_grad(self) -> bool:
        return self.bias if self.module is not None else bool(self.grads[2:3] and self.grads[2])


BwdRule = Formula  # fn(call: BwdCall) -> Cost


# Keyed by the op name a cost rule reports (NodeRecord.op), or by a rule family for all its ops.
BACKWARD_RULES: dict[str, Formula] = {}


def backward_rule(*keys: str, name: str | None = None):
    """Register the decorated ``fn(call: BwdCall) -> Cost`` as the backward rule of every op name or family."""
    return registers(BACKWARD_RULES, keys, name)


def _grad_macs(macs: int, n: int, extra: int = 0) -> Cost:
    return Cost(macs * n, 2 * macs * n + extra)


@backward_rule("linear", "conv", "bilinear", name="layer")
def layer(call: BwdCall) -> Cost:
    """MACs = forward MACs × (grad-input needed + grad-weight needed); FLOPs = 2·MACs + output elements when the
    bias needs a gradient (the sum of the output gradient over the batch)."""
    gx, gw = call.operands()
    return _grad_macs(call.fwd.macs, gx + gw, call.out_numel if call.bias_grad() else 0)


@backward_rule("matmul", name="matmul")
def matmul(call: BwdCall) -> Cost:
    """MACs = forward MACs × the two multiplied operands needing a gradient (dA = dC·Bᵀ, dB = Aᵀ·dC)."""
    return _grad_macs(call.fwd.macs, sum(call.grads[:2]))


@backward_rule("addmm", "addbmm", "addr", name="addmm")
def addmm(call: BwdCall) -> Cost:
    """MACs = forward MACs × the two multiplied operands (after the added term) needing a gradient; the added
    term's gradient is the output gradient itself (free)."""
    return _grad_macs(call.fwd.macs, sum(call.grads[1:3]))


@backward_rule("scaled_dot_product_attention", name="attention")
def attention(call: BwdCall) -> Cost:
    """With the forward's S = QKᵀ (MACs_qk) and P·V (MACs_pv): dV = Pᵀ·dO (MACs_pv) if V needs a gradient,
    dP = dO·Vᵀ (MACs_pv) if Q or K does, dQ = dS·K and dK = dSᵀ·Q (MACs_qk each) as needed; FLOPs = 2·MACs
    + the softmax's backward, 4 per score, when Q or K needs a gradient."""
    gq, gk, gv = (call.grads + [False] * 3)[:3]
    q, v = call.inputs[0], call.inputs[2] if len(call.inputs) > 2 else call.inputs[-1]
    e, ev = q.shape[-1], v.shape[-1]
    qk = call.fwd.macs * e // (e + ev)
    pv = call.fwd.macs - qk
    macs = pv * gv + pv * (gq or gk) + qk * gq + qk * gk
    scores = pv // ev if ev else 0
    return Cost(macs, 2 * macs + (4 * scores if (gq or gk) else 0))


@backward_rule("multi_head_attention", "transformer", "rnn", name="block")
def block(call: BwdCall) -> Cost:
    """A whole block (``nn.MultiheadAttention``, ``nn.Transformer*``, ``nn.LSTM``...): its inner products need
    their grad-inputs whenever anything in it learns, so MACs = forward MACs × (1 + its weights need a
    gradient); FLOPs = 2·MACs + the forward's other FLOPs (each elementwise step once more)."""
    return _grad_macs(call.fwd.macs, 1 + call.weight, call.other_flops)


@backward_rule("elementwise", "distance", "loss", "dropout", "pooling", "resize", "reduction", "detection",
               name="pointwise")
def pointwise(call: BwdCall) -> Cost:
    """FLOPs = forward FLOPs × operands needing a gradient (each operand's local derivative times the output
    gradient costs what the forward did; a pooling, resize or reduction spreads the gradient back over the
    elements it read); MACs as the forward's, per operand."""
    n = max(1, sum(call.grads)) if call.module is None else 1
    return call.fwd * n


@backward_rule("activation", name="activation")
def activation(call: BwdCall) -> Cost:
    """FLOPs = forward FLOPs + output elements: the derivative from the saved value costs what the forward did,
    and one multiply by the output gradient."""
    return Cost(0, call.fwd.flops + call.out_numel)


@backward_rule("norm", name="norm")
def norm(call: BwdCall) -> Cost:
    """FLOPs = 2 × forward FLOPs: the input's gradient needs the normalised value and two reductions over the
    output gradient (the affine parameters' gradients come with them)."""
    return Cost(0, 2 * call.fwd.flops)


@backward_rule("softmax", "log_softmax", name="softmax")
def softmax(call: BwdCall) -> Cost:
    """FLOPs = 4 per output element: dx = y·(g − Σ g·y), a multiply, a sum, a subtract and a multiply."""
    return Cost(0, 4 * call.out_numel)


@backward_rule("embedding", "embedding_bag", name="embedding")
def embedding(call: BwdCall) -> Cost:
    """Indices have no gradient; FLOPs = output elements when the table needs a gradient (the output gradient
    is scatter-added into the table's rows), else 0."""
    return Cost(0, call.out_numel if (call.weight or any(call.grads)) else 0)


def backward_of(rec: NodeRecord) -> Formula | None:
    """The backward formula of a priced node: its op's, else its rule family's (a custom rule has none)."""
    family = rec.rule.family if rec.rule is not None else ""
    return BACKWARD_RULES.get(rec.op) or (BACKWARD_RULES.get(family) if family not in ("", "custom") else None)


def backward_cost(rec: NodeRecord, call: BwdCall) -> None:
    """Price ``call``'s backward by its op's rule (or its family's) and write it into ``rec``."""
    if rec.status in (Status.UNCOUNTED, Status.IGNORED, Status.NONE):
        rec.bwd_status = Backward.NOT_NEEDED
        return
    r = backward_of(rec)
    if r is None:
        rec.bwd_status = Backward.FREE if rec.status == Status.FREE else Backward.MISSING
        return
    c = r(call)
    rec.bwd, rec.bwd_status = Cost(int(c.macs), int(c.flops)), Backward.COUNTED


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


def leaf_call(fwd: Cost, args: Any, out: Any, module: nn.Module | None) -> BwdCall:
    """The backward call of a module kept whole, from the values a probe saw."""
    ins = [t for t in tensors_in(args) if t.is_floating_point()]
    return _call(fwd, ins, [_requires(t) for t in ins], out, module)


def _call(fwd: Cost, ins: list, grads: list[bool], out: Any, module: nn.Module | None) -> BwdCall:
    weight = bias = False
    if module is not None:
        b = getattr(module, "bias", None)
        bias = isinstance(b, torch.Tensor) and b.requires_grad
        weight = any(p.requires_grad for p in module.parameters() if p is not b)
    return BwdCall(fwd, grads, ins, out, module, weight, bias)


def count_backward(gm: fx.GraphModule, inputs: Sequence[Any] | None = None,
                   input_needs: Sequence[bool] | None = None) -> set[fx.Node]:
    """Set the backward cost of every op node of ``gm`` (after the cost pass), and the bytes it saves for the
    backward (``saved_bytes``: a tensor saved by several nodes, or through a view, counts once, at its first
    saver); ``inputs`` as :func:`needs_grad`.

    A region of activation checkpointing (``node.meta["checkpoint"]``) that needs a gradient is run again in the
    backward: its nodes' forward cost is added to their backward (with early stop, up to the last node whose output
    a backward formula saves), they save nothing for the backward themselves (the region saves its inputs), and
    what each saves while recomputed goes into ``recompute_saved``. ``input_needs`` says outright which
    placeholders need a gradient (a subgraph's, from its caller). Returns the nodes whose values are saved."""
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
            _subgraph_backward(node, body, cost, kept, needs)
            continue
        operands = [a for a in node.all_input_nodes
                    if any(t.is_floating_point() or t.is_complex() for t in tensors_in(a.meta.get("val")))]
        ins = [tensors_in(a.meta.get("val"))[0] for a in operands]
        try:
            call = _call(cost.fwd, ins, [needs[a] for a in operands], node.meta.get("val"), module)
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
    return kept


def _body(gm: fx.GraphModule, node: fx.Node) -> fx.GraphModule | None:
    """The graph a higher-order op node of dynamo's runs on the operands after it (``tag_activation_checkpoint``,
    ``wrap``, ``invoke_subgraph``), or None (``cond`` and other ops whose first operand is not their body)."""
    if not isinstance(node.target, torch._ops.HigherOrderOperator) or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, fx.Node) and first.op == "get_attr":
        sub = attr_at(gm, first.target)
        if isinstance(sub, fx.GraphModule):
            return sub
    return None


def _subgraph_backward(node: fx.Node, body: fx.GraphModule, cost: NodeRecord, kept: set[fx.Node], needs: dict[fx.Node, bool]) -> None:
    """A higher-order op's backward is its body's (priced by the cost pass already), its placeholders needing
    a gradient where the operands passed to them do. A checkpointed body also runs its forward again (with early
    stop, up to the last value its backward saves) and saves only its inputs."""
    operands = [a for a in node.args[1:] if isinstance(a, fx.Node)]
    saved = count_backward(body, input_needs=[needs.get(a, False) for a in operands])
    ops = [n for n in body.graph.nodes if n.op in OP_KINDS and "fxflops" in n.meta]
    inner = [n.meta["fxflops"] for n in ops]
    cost.bwd = sum((c.bwd for c in inner if c.bwd is not None), Cost())
    cost.bwd_status = Backward.MISSING if any(c.bwd_status == Backward.MISSING for c in inner) else Backward.COUNTED
    if node.target is not torch.ops.higher_order.tag_activation_checkpoint:
        cost.saved_bytes = sum(c.saved_bytes for c in inner)
        return
    again = [n.meta["fxflops"] for n in _recomputed(CheckpointRegion(0), ops, saved)]
    cost.bwd += sum((c.fwd for c in again if c.status.priced), Cost())
    cost.recompute_saved = sum(c.saved_bytes for c in inner)
    cost.saved_bytes = _region_inputs(node, None, kept)


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
    """The node whose storage ``node`` shares: through views and other free aliasing ops."""
    while node.op in OP_KINDS and node.all_input_nodes:
        c = node.meta.get("fxflops")
        if c is None or c.status != Status.FREE:
            break
        node = node.all_input_nodes[0]
    return node


def _saved_bytes(node: fx.Node, operands: list[fx.Node], call: BwdCall, cost: NodeRecord, kept: set[fx.Node]) -> int:
    if cost.status == Status.FREE and cost.op not in SAVED_RULES:
        return 0
    family = cost.rule.family if cost.rule is not None else ""
    r = SAVED_RULES.get(cost.op) or SAVED_RULES.get(family) or SAVED_RULES["elementwise"]
    saved = r.fn(call)
    nodes = [operands[i] for i in saved.operands] + ([node] if saved.out else [])
    total = saved.extra
    for n in nodes:
        src = _source(n)
        if src.op == "get_attr" or src in kept:  # a parameter is no activation; a tensor kept already
            continue
        kept.add(src)
        total += sum(int(t.numel()) * t.element_size() for t in tensors_in(n.meta.get("val"))[:1])
    return total


# ---- what autograd saves for the backward ------------------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    """What one node keeps for its backward: some operands (by position in ``BwdCall.inputs``), its output, and
    ``extra`` bytes of its own (max-pool indices, a dropout mask, a norm's statistics)."""

    operands: tuple[int, ...] = ()
    out: bool = False
    extra: int = 0


SavedRule = Formula  # fn(call: BwdCall) -> Saved


# Keyed like BACKWARD_RULES: op name, then rule family.
SAVED_RULES: dict[str, Formula] = {}


def saved_rule(*keys: str, name: str | None = None):
    """Register ``fn(call: BwdCall) -> Saved`` as what the ops or families ``keys`` save for the backward."""
    return registers(SAVED_RULES, keys, name)


def _wanted(call: BwdCall, *pos: int) -> tuple[int, ...]:
    return tuple(p for p in pos if p < len(call.inputs))


@saved_rule("linear", "conv", "bilinear", "matmul", name="contraction")
def saved_contraction(call: BwdCall) -> Saved:
    """Each operand the other operand's gradient needs: the input when the weight (or the other factor) needs a
    gradient, a non-parameter second factor when the input does; parameters are not activations."""
    gx, gw = call.operands()
    if call.module is not None:
        return Saved(_wanted(call, 0) if gw else ())
    return Saved((_wanted(call, 0) if gw else ()) + (_wanted(call, 1) if gx else ()))


@saved_rule("relu", "relu6", "sigmoid", "tanh", "hardtanh", "softmax", "log_softmax", "exp", "sqrt", "rsqrt",
            name="output")
def saved_output(call: BwdCall) -> Saved:
    """The output: the derivative is a function of it (relu's mask, sigmoid's y·(1−y), softmax's y)."""
    return Saved(out=True)


@saved_rule("add", "sub", "iadd", "isub", "neg", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
            "avg_pool1d", "avg_pool2d", "avg_pool3d", "mean", "reduce", "interpolate", "shape", name="nothing")
def saved_nothing(call: BwdCall) -> Saved:
    """Nothing: the gradient is the output gradient passed through, summed or spread back by shape alone."""
    return Saved()


@saved_rule("mul", "imul", name="product")
def saved_product(call: BwdCall) -> Saved:
    """Each factor whose partner needs a gradient."""
    a, b = (call.grads + [False, False])[:2]
    return Saved((_wanted(call, 1) if a else ()) + (_wanted(call, 0) if b else ()))


@saved_rule("max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
            "adaptive_max_pool3d", name="max_pool")
def saved_max_pool(call: BwdCall) -> Saved:
    """The input and the int64 index of each output's maximum (8 bytes per output element)."""
    return Saved(_wanted(call, 0), extra=8 * call.out_numel)


@saved_rule("dropout", name="dropout")
def saved_dropout(call: BwdCall) -> Saved:
    """A training-mode dropout: a bool mask, 1 byte per element; in eval mode nothing."""
    training = call.module.training if call.module is not None else True
    return Saved(extra=call.out_numel if training and call.fwd.flops else 0)


@saved_rule("norm", name="norm")
def saved_norm(call: BwdCall) -> Saved:
    """The input, and the float32 mean and inverse deviation it computed: per channel for a training-mode
    ``batch_norm`` (8·C bytes; in eval mode the running statistics, buffers, are used), per row for
    ``layer_norm``/``rms_norm`` over the last dimension (8 bytes per row)."""
    x = call.inputs[0] if call.inputs else None
    extra = 0
    if x is not None and x.dim() > 1:
        if call.module is not None and hasattr(call.module, "running_mean"):
            extra = 8 * int(x.shape[1]) if call.module.training else 0
        elif call.module is not None and hasattr(call.module, "normalized_shape"):
            extra = 8 * int(x.numel() // x.shape[-1])
    return Saved(_wanted(call, 0), extra=extra)


@saved_rule("embedding", "embedding_bag", name="lookup")
def saved_lookup(call: BwdCall) -> Saved:
    """The indices (not a floating-point operand: counted as the output's rows, 8 bytes per looked-up row)."""
    outs = tensors_in(call.out)
    rows = int(outs[0].numel() // outs[0].shape[-1]) if outs and outs[0].dim() else 0
    return Saved(extra=8 * rows)


@saved_rule("scaled_dot_product_attention", name="attention")
def saved_attention(call: BwdCall) -> Saved:
    """Q, K, V, the output and one float32 log-sum-exp per query row (a fused kernel's saved state)."""
    q = call.inputs[0] if call.inputs else None
    rows = int(q.numel() // q.shape[-1]) if q is not None and q.dim() else 0
    return Saved(_wanted(call, 0, 1, 2), out=True, extra=4 * rows)


@saved_rule("elementwise", "activation", "pooling", "resize", "reduction", "loss", "distance", name="inputs")
def saved_inputs(call: BwdCall) -> Saved:
    """Every floating-point operand (the default of a pointwise op: the derivative reads its input)."""
    return Saved(tuple(range(len(call.inputs))))
