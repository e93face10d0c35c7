"""Randomized agreement: small networks composed at random from the supported modules and functional ops, on
random shapes. On every one, fxflops never raises (strict: every op has a rule), its MACs equal torch's
FlopCounterMode (which prices exactly the contractions: convolutions, matmuls, attention) / 2, and its
params equal ``sum(p.numel())``.

Bounded (25 networks of at most 4 + 3 layers, spatial sizes ≤ 12) and derandomized: every run draws the same
networks, and a failure prints the drawn layer list (hypothesis' falsifying example) to rebuild it.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
INSTANCE_NORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
ADAPTIVE = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
LINEAR_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}
MAX_SIDE = {1: 12, 2: 10, 3: 6}


class Residual(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class Resize(nn.Module):
    def __init__(self, scale: float, mode: str, align: bool | None):
        super().__init__()
        self.scale, self.mode, self.align = scale, mode, align

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=self.align)


class ToSequence(nn.Module):
    def forward(self, x):
        return x.flatten(2).transpose(1, 2)  # (N, C, *spatial) -> (N, L, C)


class Attention(nn.Module):
    """Multi-head self-attention on (N, L, C) through F.scaled_dot_product_attention."""

    def __init__(self, c: int, heads: int, causal: bool):
        super().__init__()
        self.qkv, self.out = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.heads, self.causal = heads, causal

    def forward(self, x):
        n, l, c = x.shape
        q, k, v = self.qkv(x).view(n, l, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out(y.transpose(1, 2).reshape(n, l, c))


class SelfAttentionModule(nn.Module):
    def __init__(self, c: int, heads: int):
        super().__init__()
        self.mha = nn.MultiheadAttention(c, heads, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


class Gram(nn.Module):
    """(x xᵀ) x / L: two batched matmuls."""

    def forward(self, x):
        return torch.matmul(x, x.transpose(1, 2)) @ x / x.shape[1]


class Mix(nn.Module):
    """A channel mix written as an einsum with its own weight."""

    def __init__(self, c: int, d: int):
        super().__init__()
        self.w = nn.Parameter(torch.randn(d, c))

    def forward(self, x):
        return torch.einsum("nlc,dc->nld", x, self.w)


class Pool(nn.Module):
    def forward(self, x):
        return x.mean(dim=1)


def _out_shape(layer: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(layer.eval()(torch.randn(shape)).shape)


@st.composite
def image_layer(draw, rank: int, shape: tuple[int, ...]) -> nn.Module:
    """One layer that takes and gives (N, C, *spatial) of ``rank`` spatial dims."""
    c, side = shape[1], min(shape[2:])
    kinds = ["conv", "conv_t", "norm", "act", "residual"] + (["pool"] if side >= 2 else []) + \
        (["resize"] if max(shape[2:]) * 2 <= MAX_SIDE[rank] else [])
    kind = draw(st.sampled_from(kinds))
    if kind in ("conv", "conv_t"):
        out = draw(st.integers(1, 8))
        groups = draw(st.sampled_from([g for g in range(1, min(c, out) + 1) if c % g == 0 and out % g == 0]))
        k = draw(st.integers(1, min(3, side)))
        if kind == "conv_t":
            stride = draw(st.integers(1, 2))
            return CONV_T[rank](c, out, k, stride=stride, padding=draw(st.integers(0, (k - 1) // 2)), groups=groups,
                                bias=draw(st.booleans()))
        dilation = draw(st.integers(1, 2)) if side >= 2 * k else 1
        return CONV[rank](c, out, k, stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, k // 2)),
                          dilation=dilation, groups=groups, bias=draw(st.booleans()))
    if kind == "norm":
        which = draw(st.sampled_from(["batch", "instance", "group", "layer"]))
        if which == "batch":
            return BATCH_NORM[rank](c)
        if which == "instance" and side >= 2:
            return INSTANCE_NORM[rank](c, affine=draw(st.booleans()))
        if which == "group":
            return nn.GroupNorm(draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0])), c)
        return nn.LayerNorm(shape[-1])
    if kind == "act":
        return draw(st.sampled_from([nn.ReLU(), nn.GELU(), nn.SiLU(), nn.Sigmoid(), nn.Hardswish()]))
    if kind == "residual":
        body = CONV[rank](c, c, 3, padding=1, groups=draw(st.sampled_from([1, c])))
        return Residual(nn.Sequential(body, BATCH_NORM[rank](c), nn.ReLU()) if draw(st.booleans()) else body)
    if kind == "pool":
        which = draw(st.sampled_from(["max", "avg", "adaptive"]))
        if which == "adaptive":
            return ADAPTIVE[rank](draw(st.integers(1, side)))
        return (MAX_POOL if which == "max" else AVG_POOL)[rank](2)
    mode = draw(st.sampled_from(["nearest", LINEAR_MODE[rank]]))
    return Resize(2.0, mode, None if mode == "nearest" else draw(st.booleans()))


@st.composite
def sequence_layer(draw, c: int) -> nn.Module:
    """One layer that takes (N, L, c) and gives (N, L, c') ."""
    kind = draw(st.sampled_from(["linear", "attention", "mha", "gram", "einsum", "layer_norm", "residual"]))
    heads = draw(st.sampled_from([h for h in range(1, c + 1) if c % h == 0]))
    if kind == "linear":
        return nn.Linear(c, draw(st.integers(1, 8)), bias=draw(st.booleans()))
    if kind == "attention":
        return Attention(c, heads, draw(st.booleans()))
    if kind == "mha":
        return SelfAttentionModule(c, heads)
    if kind == "gram":
        return Gram()
    if kind == "einsum":
        return Mix(c, draw(st.integers(1, 8)))
    if kind == "layer_norm":
        return nn.LayerNorm(c)
    return Residual(nn.Sequential(nn.Linear(c, c), nn.GELU()))


@st.composite
def networks(draw) -> tuple[nn.Module, torch.Tensor]:
    rank = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 8)),
             *(draw(st.integers(2, MAX_SIDE[rank] // 2)) for _ in range(rank)))
    x_shape, layers = shape, []
    for _ in range(draw(st.integers(1, 4))):
        layer = draw(image_layer(rank, shape))
        layers.append(layer)
        shape = _out_shape(layer, shape)
    if draw(st.booleans()):
        layers.append(ToSequence())
        shape = (shape[0], math.prod(shape[2:]), shape[1])
        for _ in range(draw(st.integers(1, 3))):
            layer = draw(sequence_layer(shape[2]))
            layers.append(layer)
            shape = _out_shape(layer, shape)
        layers += [Pool(), nn.Linear(shape[2], 3)]
    else:
        layers += [nn.Flatten(), nn.Linear(math.prod(shape[1:]), 3)]
    return nn.Sequential(*layers).eval(), torch.randn(x_shape)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks())
def test_random_network_agrees_with_flop_counter(net: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = net
    report = trace_flops(model, x, strict=True)
    # The math backend runs attention as matmuls the counter sees (it has no formula for the fused CPU kernel);
    # grad on keeps MultiheadAttention off its fused fast path too.
    with FlopCounterMode(display=False) as fc, sdpa_kernel(SDPBackend.MATH):
        model(x)
    assert report.total_macs == fc.get_total_flops() // 2, model
    assert report.total_params == sum(p.numel() for p in model.parameters()), model
