"""Convolutions of every kind: 1d/2d/3d, transposed, grouped, dilated, strided, with or without bias."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, contraction, rule
from ._util import prod


def conv_cost(x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor, has_bias: bool, transposed: bool) -> Cost:
    # Each output element of a direct conv sums C_in/groups · ∏k products; a transposed conv
    # scatters each *input* element through C_out/groups · ∏k weights. weight.shape[1] is the
    # per-group channel count in both layouts, so one expression covers both.
    per = prod(weight.shape[1:])
    macs = (x.numel() if transposed else out.numel()) * per
    return contraction(macs, out.numel() if has_bias else 0)


def _conv_module(call: Call) -> Cost:
    """MACs = N·C_out·∏(output spatial)·(C_in/groups)·∏(kernel); FLOPs = 2·MACs + N·C_out·∏(output spatial) when bias is set.
    Stride, padding and dilation enter through the output shape."""
    m = call.module
    return conv_cost(call.args[0], m.weight, call.out, m.bias is not None, transposed=False)


def _conv_transpose_module(call: Call) -> Cost:
    """MACs = N·C_in·∏(input spatial)·(C_out/groups)·∏(kernel) (every input element is scattered through the kernel);
    FLOPs = 2·MACs + N·C_out·∏(output spatial) when bias is set."""
    m = call.module
    return conv_cost(call.args[0], m.weight, call.out, m.bias is not None, transposed=True)


def _conv_function(call: Call) -> Cost:
    """Same formula as the module: MACs = N·C_out·∏(out)·(C_in/groups)·∏(k); bias adds N·C_out·∏(out) FLOPs."""
    return conv_cost(call.arg(0, "input"), call.arg(1, "weight"), call.out, call.arg(2, "bias", None) is not None, False)


def _conv_transpose_function(call: Call) -> Cost:
    """Same formula as the module: MACs = N·C_in·∏(in)·(C_out/groups)·∏(k); bias adds N·C_out·∏(out) FLOPs."""
    return conv_cost(call.arg(0, "input"), call.arg(1, "weight"), call.out, call.arg(2, "bias", None) is not None, True)


for _d in (1, 2, 3):
    rule(getattr(nn, f"Conv{_d}d"), op=f"conv{_d}d", family="conv")(_conv_module)
    rule(getattr(F, f"conv{_d}d"), op=f"conv{_d}d", family="conv")(_conv_function)
    rule(getattr(nn, f"ConvTranspose{_d}d"), op=f"conv_transpose{_d}d", family="conv")(_conv_transpose_module)
    rule(getattr(F, f"conv_transpose{_d}d"), op=f"conv_transpose{_d}d", family="conv")(_conv_transpose_function)


@rule(torch.convolution, op="convolution", family="conv")
def convolution(call: Call) -> Cost:
    """torch.convolution(input, weight, bias, stride, padding, dilation, transposed, ...): the conv or transposed-conv formula."""
    return conv_cost(call.arg(0, "input"), call.arg(1, "weight"), call.out, call.arg(2, "bias", None) is not None,
                     bool(call.arg(6, "transposed", False)))


@rule(torch.conv_tbc, op="conv_tbc", family="conv")
def conv_tbc(call: Call) -> Cost:
    """conv_tbc(input (T, B, C_in), weight (K, C_in, C_out), bias (C_out), pad): a 1-d convolution in time-batch-channel
    layout: MACs = T_out·B·C_out·C_in·K; FLOPs = 2·MACs + T_out·B·C_out for the bias (always present)."""
    weight = call.arg(1, "weight")
    k, c_in, _ = weight.shape
    return contraction(call.out.numel() * c_in * k, call.out.numel())

