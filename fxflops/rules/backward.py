"""Backward formulas: what each op's gradient costs (:func:`backward_rule`) and what autograd saves for it
(:func:`saved_rule`), keyed by the op name its cost rule reports (``conv2d``, ``linear``) or by a whole rule family
(``elementwise``, ``norm``), so that a :class:`~fxflops.rules.registry.Rule` finds them by its ``op`` and ``family``
(``Rule.backward``, ``Rule.saved``). The pass that applies them is :mod:`fxflops.passes.backward`; the docstrings
are published in ``docs/conventions.md`` (``python -m tools.docgen``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..tensors import tensors_in
from ..types import Cost
from .registry import BACKWARD_BYTES, BACKWARD_RULES, SAVED_RULES, OpFormula, backward_byte_rule, backward_rule, saved_rule

__all__ = ["BwdCall", "BwdRule", "Saved", "SavedRule", "BACKWARD_RULES", "SAVED_RULES", "BACKWARD_BYTES", "backward_rule",
           "saved_rule", "backward_byte_rule", "default_bytes", "saved_bytes"]


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
    fwd_bytes: int = 0  # what the forward moved (a whole block's backward reads it all again)
    device: str = ""  # the device type the step runs on ("cpu", "cuda"; "" when the example gives none)
    kwargs: dict = field(default_factory=dict)  # the node's keyword arguments (values), for ops whose saving depends on one

    @property
    def out_numel(self) -> int:
        outs = tensors_in(self.out)
        return int(outs[0].numel()) if outs else 0

    # ---- sizes, for the byte formulas --------------------------------------------------------------------------
    @property
    def out_bytes(self) -> int:
        """The (first) output's bytes: also the output gradient's."""
        outs = tensors_in(self.out)
        return _size(outs[0]) if outs else 0

    def in_bytes(self, i: int) -> int:
        return _size(self.inputs[i]) if i < len(self.inputs) else 0

    def weight_bytes(self) -> int:
        """A leaf module's parameters but its bias, or a function's second operand (``F.linear(x, w)``)."""
        if self.module is None:
            return self.in_bytes(1)
        b = getattr(self.module, "bias", None)
        return sum(_size(p) for p in self.module.parameters() if p is not b)

    def bias_bytes(self) -> int:
        if self.module is None:
            return self.in_bytes(2)
        b = getattr(self.module, "bias", None)
        return _size(b) if b is not None else 0

    def grads_written(self) -> int:
        """The gradients this backward writes: each operand that needs one, and a leaf module's learning parameters."""
        out = sum(_size(t) for t, g in zip(self.inputs, self.grads) if g)
        if self.module is not None:
            out += sum(_size(p) for p in self.module.parameters() if p.requires_grad)
        return out

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


def _size(t: Any) -> int:
    return int(t.numel()) * t.element_size()


BwdRule = OpFormula  # fn(call: BwdCall) -> Cost


def _grad_macs(macs: int, n: int, extra: int = 0) -> Cost:
    return Cost(macs * n, 2 * macs * n + extra)


@backward_rule("linear", "conv", "bilinear", name="layer")
def layer(call: BwdCall) -> Cost:
    """MACs = forward MACs × (grad-input needed + grad-weight needed); FLOPs = 2·MACs + output elements when the
    bias needs a gradient (the sum of the output gradient over the batch)."""
    gx, gw = call.operands()
    return _grad_macs(call.fwd.macs, gx + gw, call.out_numel if call.bias_grad() else 0)


@backward_byte_rule("linear", "conv", "bilinear", name="layer")
def layer_bytes(call: BwdCall) -> int:
    """grad-input reads the output gradient and the weight and writes the input's gradient; grad-weight reads the
    output gradient and the input and writes the weight's gradient; a bias gradient reads the output gradient and
    writes the bias's: (G + W + X)·[grad-input] + (G + X + W)·[grad-weight] + (G + B)·[grad-bias], with G, W, X, B the
    bytes of the output, the weight, the input and the bias."""
    gx, gw = call.operands()
    g, w, x = call.out_bytes, call.weight_bytes(), call.in_bytes(0)
    return (g + w + x) * gx + (g + x + w) * gw + (g + call.bias_bytes()) * call.bias_grad()


@backward_rule("matmul", name="matmul")
def matmul(call: BwdCall) -> Cost:
    """MACs = forward MACs × the two multiplied operands needing a gradient (dA = dC·Bᵀ, dB = Aᵀ·dC)."""
    return _grad_macs(call.fwd.macs, sum(call.grads[:2]))


@backward_byte_rule("matmul", name="matmul")
def matmul_bytes(call: BwdCall) -> int:
    """dA = dC·Bᵀ reads the output gradient and B and writes dA; dB = Aᵀ·dC reads A and the output gradient and
    writes dB: (G + A + B) per factor needing a gradient."""
    return (call.out_bytes + call.in_bytes(0) + call.in_bytes(1)) * sum(call.grads[:2])


@backward_rule("addmm", "addbmm", "addr", name="addmm")
def addmm(call: BwdCall) -> Cost:
    """MACs = forward MACs × the two multiplied operands (after the added term) needing a gradient; the added
    term's gradient is the output gradient itself (free)."""
    return _grad_macs(call.fwd.macs, sum(call.grads[1:3]))


@backward_byte_rule("addmm", "addbmm", "addr", name="addmm")
def addmm_bytes(call: BwdCall) -> int:
    """As matmul for the two multiplied factors, (G + A + B) per factor needing a gradient; the added term's gradient
    is the output gradient, summed to its shape where it was broadcast: G + its bytes when it needs one."""
    factors = (call.out_bytes + call.in_bytes(1) + call.in_bytes(2)) * sum(call.grads[1:3])
    return factors + (call.out_bytes + call.in_bytes(0)) * bool(call.grads[:1] and call.grads[0])


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


@backward_byte_rule("scaled_dot_product_attention", name="attention")
def attention_bytes(call: BwdCall) -> int:
    """A flash-attention backward reads Q, K, V, the output, the output gradient and the float32 log-sum-exp of each
    query row, and writes the gradients of Q, K and V that are needed (the scores are recomputed, never stored)."""
    q = call.inputs[0]
    rows = int(q.numel() // q.shape[-1]) if q.dim() else 0
    read = sum(call.in_bytes(i) for i in range(3)) + 2 * call.out_bytes + 4 * rows
    return read + sum(call.in_bytes(i) for i, g in enumerate(call.grads[:3]) if g)


@backward_rule("multi_head_attention", "transformer", "rnn", name="block")
def block(call: BwdCall) -> Cost:
    """A whole block (``nn.MultiheadAttention``, ``nn.Transformer*``, ``nn.LSTM``...): its inner products need
    their grad-inputs whenever anything in it learns, so MACs = forward MACs × (1 + its weights need a
    gradient); FLOPs = 2·MACs + the forward's other FLOPs (each elementwise step once more)."""
    return _grad_macs(call.fwd.macs, 1 + call.weight, call.other_flops)


@backward_byte_rule("multi_head_attention", "transformer", "rnn", name="block")
def block_bytes(call: BwdCall) -> int:
    """A whole block reads what its forward read and wrote once more (its inputs, weights and activations), reads
    the output gradient, and writes the gradients of its inputs and weights that need one."""
    return call.fwd_bytes + call.out_bytes + call.grads_written()


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


@backward_byte_rule("embedding", "embedding_bag", name="embedding")
def embedding_bytes(call: BwdCall) -> int:
    """When the table needs a gradient: the output gradient and the int64 indices (8 bytes per looked-up row) read,
    and the looked-up rows of the table's gradient read and written (a scatter-add): 3·G + 8·rows; else 0."""
    if not (call.weight or any(call.grads)):
        return 0
    outs = tensors_in(call.out)
    rows = int(outs[0].numel() // outs[0].shape[-1]) if outs and outs[0].dim() else 0
    return 3 * call.out_bytes + 8 * rows


def default_bytes(call: BwdCall, saved: "Saved") -> int:
    """bytes = the output gradient read + what the op saved for its backward read (its saved rule) + a leaf
    module's weights read + each gradient it computes written (every operand and parameter that needs one)."""
    weights = sum(_size(p) for p in call.module.parameters()) if call.module is not None else 0
    return call.out_bytes + saved_bytes(call, saved) + weights + call.grads_written()


def saved_bytes(call: BwdCall, saved: "Saved") -> int:
    """The bytes of what ``saved`` names: its operands, the output, its own extra bytes."""
    return sum(call.in_bytes(i) for i in saved.operands) + (call.out_bytes if saved.out else 0) + saved.extra


# ---- what autograd saves for the backward ------------------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    """What one node keeps for its backward: some operands (by position in ``BwdCall.inputs``), its output, and
    ``extra`` bytes of its own (max-pool indices, a dropout mask, a norm's statistics)."""

    operands: tuple[int, ...] = ()
    out: bool = False
    extra: int = 0


SavedRule = OpFormula  # fn(call: BwdCall) -> Saved


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


@saved_rule("relu", "sigmoid", "tanh", "softmax", "log_softmax", "exp", "sqrt", "rsqrt",
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
    """A training-mode dropout with p > 0 keeps its mask: on the CPU a tensor of the input's dtype (the kernel computes
    input × noise), elsewhere a bool, 1 byte per element; in eval mode, or with p = 0 (it returns its input), nothing."""
    training = call.module.training if call.module is not None else True
    if not (training and call.fwd.flops):
        return Saved()
    size = call.inputs[0].element_size() if call.device == "cpu" and call.inputs else 1
    return Saved(extra=size * call.out_numel)


@saved_rule("div", name="quotient")
def saved_quotient(call: BwdCall) -> Saved:
    """a / b: the divisor b when a needs a gradient (da = g / b), and a and b when b does (db = −g·a / b²); a Python
    number is no operand, so dividing by one saves nothing."""
    a, b = (call.grads + [False, False])[:2]
    return Saved(tuple(sorted(set((_wanted(call, 1) if a else ()) + (_wanted(call, 0, 1) if b else ())))))


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
    """A fused kernel's state: Q, K, V, the output and one float32 log-sum-exp per query row. On the CPU with attention
    dropout (``dropout_p > 0``) torch runs the unfused math instead, which keeps scaled copies of Q and K, V, and three
    tensors of scores (the softmax, the dropout mask, the dropped-out softmax)."""
    q = call.inputs[0] if call.inputs else None
    if q is None or not q.dim():
        return Saved()
    if call.device == "cpu" and float(call.kwargs.get("dropout_p", 0.0) or 0.0) > 0:
        k = call.inputs[1] if len(call.inputs) > 1 else q
        scores = int(q.numel() // q.shape[-1]) * int(k.shape[-2]) * q.element_size()
        return Saved(_wanted(call, 2), extra=q.numel() * q.element_size() + k.numel() * k.element_size() + 3 * scores)
    return Saved(_wanted(call, 0, 1, 2), out=True, extra=4 * int(q.numel() // q.shape[-1]))


@saved_rule("elementwise", "activation", "pooling", "resize", "reduction", "loss", "distance", name="inputs")
def saved_inputs(call: BwdCall) -> Saved:
    """Every floating-point operand (the default of a pointwise op: the derivative reads its input)."""
    return Saved(tuple(range(len(call.inputs))))
