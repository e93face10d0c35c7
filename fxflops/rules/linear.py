"""Fully connected layers: nn.Linear, F.linear, nn.Bilinear, F.bilinear."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, contraction, rule


@rule(nn.Linear, op="linear", family="linear")
def linear_module(call: Call) -> Cost:
    """MACs = (output elements)·in_features, i.e. ∏(batch dims)·in·out; FLOPs = 2·MACs + output elements when bias is set."""
    m = call.module
    return contraction(call.out.numel() * m.in_features, call.out.numel() if m.bias is not None else 0)


@rule(F.linear, op="linear", family="linear")
def linear_function(call: Call) -> Cost:
    """F.linear(input, weight, bias): MACs = (output elements)·weight.shape[-1]; bias adds one FLOP per output element."""
    weight = call.arg(1, "weight")
    has_bias = call.arg(2, "bias", None) is not None
    return contraction(call.out.numel() * weight.shape[-1], call.out.numel() if has_bias else 0)


def bilinear_cost(x1, weight, out, has_bias: bool) -> Cost:
    # y_k = x1ᵀ A_k x2 + b_k is computed as the outer product x1⊗x2 (in1·in2 multiplications per
    # sample) contracted with A (out·in1·in2 MACs per sample), which is how torch evaluates it.
    batch = x1.numel() // x1.shape[-1]
    out_f, in1, in2 = weight.shape
    macs = batch * out_f * in1 * in2
    return contraction(macs, batch * in1 * in2 + (out.numel() if has_bias else 0))


@rule(nn.Bilinear, op="bilinear", family="linear")
def bilinear_module(call: Call) -> Cost:
    """MACs = B·out·in1·in2; FLOPs = 2·MACs + B·in1·in2 (the x1⊗x2 outer product) + B·out when bias is set (B = ∏ batch dims)."""
    m = call.module
    return bilinear_cost(call.args[0], m.weight, call.out, m.bias is not None)


@rule(F.bilinear, op="bilinear", family="linear")
def bilinear_function(call: Call) -> Cost:
    """F.bilinear(input1, input2, weight, bias): same as nn.Bilinear."""
    return bilinear_cost(call.arg(0, "input1"), call.arg(2, "weight"), call.out, call.arg(3, "bias", None) is not None)
