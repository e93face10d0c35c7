"""Resampling: F.interpolate / nn.Upsample and the upsample kernels dynamo exposes."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import Call, Cost, elementwise, rule
from .pooling import _adaptive_windows

# FLOPs per output element. A 1-D linear interpolation is a lerp a + t·(b − a) = 3 FLOPs; n-linear
# interpolation does 2ⁿ − 1 lerps. Bicubic does 4 row convolutions and one column convolution of
# 4 taps each (4 multiplies + 3 adds). Nearest copies a value: no arithmetic.
PER_OUTPUT = {
    "nearest": 0,
    "nearest-exact": 0,
    "linear": 3,
    "bilinear": 9,
    "trilinear": 21,
    "bicubic": 35,
}


def resize_cost(mode: str, x: torch.Tensor, out: torch.Tensor) -> Cost:
    if mode == "area":  # area interpolation is adaptive average pooling
        return elementwise(_adaptive_windows(x, out, x.dim() - 2))
    return elementwise(out.numel(), PER_OUTPUT[mode])


@rule(F.interpolate, F.upsample, op="interpolate", family="resize")
def interpolate(call: Call) -> Cost:
    """Per output element: nearest 0 (a copy), linear 3, bilinear 9, trilinear 21 (2ⁿ − 1 lerps of 3 FLOPs),
    bicubic 35 (5 four-tap convolutions of 7 FLOPs); area = adaptive average pooling."""
    return resize_cost(call.arg(3, "mode", "nearest"), call.arg(0, "input"), call.out)


@rule(nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d, op="interpolate", family="resize")
def upsample_module(call: Call) -> Cost:
    """As F.interpolate with the module's mode."""
    return resize_cost(call.module.mode, call.args[0], call.out)


@rule(F.upsample_nearest, op="interpolate", family="resize")
def upsample_nearest(call: Call) -> Cost:
    """0 FLOPs: nearest-neighbour upsampling copies values."""
    return Cost()


@rule(F.upsample_bilinear, op="interpolate", family="resize")
def upsample_bilinear(call: Call) -> Cost:
    """9 FLOPs per output element (three lerps)."""
    return elementwise(call.out.numel(), PER_OUTPUT["bilinear"])


def _kernel_rule(mode: str):
    def upsample_kernel(call: Call) -> Cost:
        return resize_cost(mode, call.args[0], call.out)

    upsample_kernel.__doc__ = f"{PER_OUTPUT[mode]} FLOPs per output element ({mode})."
    return upsample_kernel


for _mode, _names in {
    "nearest": ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
                "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d"),
    "linear": ("upsample_linear1d",),
    "bilinear": ("upsample_bilinear2d", "_upsample_bilinear2d_aa"),
    "trilinear": ("upsample_trilinear3d",),
    "bicubic": ("upsample_bicubic2d", "_upsample_bicubic2d_aa"),
}.items():
    _fns = [getattr(torch._C._nn, n) for n in _names if hasattr(torch._C._nn, n)]
    if _fns:
        rule(*_fns, op="interpolate", family="resize")(_kernel_rule(_mode))
