"""Quantized layers (torch.ao.nn.quantized and .dynamic: Linear, Conv1d/2d/3d, and the fused ConvReLU, ConvAdd,
LinearReLU of torch.ao.nn.intrinsic.quantized), priced as their float twins.

A quantized layer does the same multiply-accumulates as the float layer it replaces, in int8 with int32
accumulators (dynamic: the activations quantized on the fly, the weight stored quantized). Its weight is packed
(``_packed_params``), not an ``nn.Parameter``: :func:`quantized_weights` hands it (and the float bias) to the
parameter count and to the byte model, which reads the weight at its 1-byte element size.
"""
from __future__ import annotations

import torch
import torch.ao.nn.intrinsic.quantized as nniq
import torch.ao.nn.intrinsic.quantized.dynamic as nniqd
import torch.ao.nn.quantized as nnq
import torch.ao.nn.quantized.dynamic as nnqd

from .registry import Call, Cost, contraction, free, rule, weights_rule
from ._util import prod

# each class -> the FLOPs per output element its fused epilogue adds, as the float twin counts them (relu 1, add 1)
LINEARS = {nnq.Linear: 0, nnqd.Linear: 0, nniq.LinearReLU: 1, nniqd.LinearReLU: 1}
CONVS = {nnq.Conv1d: 0, nnq.Conv2d: 0, nnq.Conv3d: 0, nniq.ConvReLU1d: 1, nniq.ConvReLU2d: 1, nniq.ConvReLU3d: 1,
         nniq.ConvAdd2d: 1, nniq.ConvAddReLU2d: 2}


def _epilogue(call: Call) -> int:
    m, n = call.module, call.out_numel
    table = LINEARS if isinstance(m, tuple(LINEARS)) else CONVS
    return n * table[type(m)] + (n if m.bias() is not None else 0)


@rule(*LINEARS, op="quantized_linear", family="quantized")
def quantized_linear(call: Call) -> Cost:
    """As nn.Linear: MACs = (output elements)·in_features; FLOPs = 2·MACs + output elements when bias is set, + one
    per output element for a fused ReLU (LinearReLU)."""
    return contraction(call.out_numel * call.module.in_features, _epilogue(call))


@rule(*CONVS, op="quantized_conv", family="quantized")
def quantized_conv(call: Call) -> Cost:
    """As nn.ConvNd: MACs = N·C_out·∏(output spatial)·(C_in/groups)·∏(kernel); FLOPs = 2·MACs + output elements
    when bias is set, + one per output element for a fused ReLU or add (ConvReLUNd, ConvAdd2d), two for ConvAddReLU2d."""
    m = call.module
    return contraction(call.out_numel * (m.in_channels // m.groups) * prod(m.kernel_size), _epilogue(call))


def _packed_bias(packed) -> bool:
    try:
        return torch.ops.quantized.linear_unpack(packed)[1] is not None
    except (RuntimeError, TypeError):  # not a linear's packed params: no bias known
        return False


@rule(torch.ops.quantized.linear_dynamic, torch.ops.quantized.linear, op="quantized_linear", family="quantized")
def quantized_linear_op(call: Call) -> Cost:
    """quantized::linear_dynamic(x, packed) and quantized::linear(x, packed, scale, zero_point), as the eager
    recorder sees a functional call: MACs = (output elements)·x.shape[-1]; bias adds one FLOP per output element."""
    x = call.args[0]
    return contraction(call.out_numel * x.shape[-1], call.out_numel if _packed_bias(call.args[1]) else 0)


@weights_rule(*LINEARS, *CONVS)
def quantized_weights(m: torch.nn.Module) -> list[torch.Tensor]:
    """The packed weight (int8, 1 byte per element) and the float bias: the layer's parameters, read once per call."""
    return [t for t in (m.weight(), m.bias()) if t is not None]


_Q = torch.ops.quantized
# each quantized:: elementwise op of nn.quantized.QFunctional -> FLOPs per output element, as its float twin counts
# them (an add or multiply 1, a fused ReLU 1 more)
ELEMENTWISE = {_Q.add: 1, _Q.add_scalar: 1, _Q.mul: 1, _Q.mul_scalar: 1,
               _Q.add_relu: 2, _Q.add_scalar_relu: 2, _Q.mul_relu: 2, _Q.mul_scalar_relu: 2, _Q.cat_relu: 1}


@rule(*ELEMENTWISE, op="quantized_elementwise", family="quantized")
def quantized_elementwise(call: Call) -> Cost:
    """quantized::add, mul (and _scalar) as their float twins: 1 FLOP per output element; the _relu variants 2;
    cat_relu 1 (the ReLU; the copy is free). Requantizing to the output's scale is the kernel's epilogue, not
    counted (as a float op's rounding is not)."""
    return Cost(0, call.out_numel * ELEMENTWISE[getattr(call.target, "overloadpacket", call.target)])


free(_Q.cat, op="quantized_cat", reason="concatenates quantized tensors (requantized to one scale): no arithmetic",
     family="quantized")


@rule(torch.quantize_per_tensor, torch.quantize_per_channel, op="quantize", family="quantized")
def quantize(call: Call) -> Cost:
    """q = clamp(round(x / scale) + zero_point): divide, round, add, clamp, 4 FLOPs per output element."""
    return Cost(0, 4 * call.out_numel)


@rule(torch.dequantize, "dequantize", op="dequantize", family="quantized")
def dequantize(call: Call) -> Cost:
    """x = (q − zero_point)·scale: subtract, multiply, 2 FLOPs per output element."""
    return Cost(0, 2 * call.out_numel)
