"""Resampling: F.interpolate / nn.Upsample and the upsample kernels dynamo exposes."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, elementwise, rule
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


# grid_sample, per output location (shared by the channels): unnormalise each coordinate (scale, shift: 2), then
# for interpolating modes its floor and fraction (2) and the tap weights; per output element the weighted sum
# of the taps. Bilinear: 2 complements + 4 products = 6 weight FLOPs, 4 taps (4 multiplies + 3 adds = 7).
# Trilinear: 3 complements + 8 products of three factors (16) = 19, 8 taps (15). Bicubic: 4 cubic-convolution
# coefficients per coordinate (7 FLOPs each), then 4 row and 1 column four-tap convolutions (35, as resize).
# Nearest rounds each coordinate (1) and copies. Border/reflection padding clamp or reflect each coordinate (+2).
GRID_PER_LOCATION = {("nearest", 2): 6, ("nearest", 3): 9, ("bilinear", 2): 14, ("bilinear", 3): 31,
                     ("bicubic", 2): 8 + 2 * 4 * 7}
GRID_PER_ELEMENT = {("nearest", 2): 0, ("nearest", 3): 0, ("bilinear", 2): 7, ("bilinear", 3): 15,
                    ("bicubic", 2): PER_OUTPUT["bicubic"]}


@rule(F.grid_sample, op="grid_sample", family="resize")
def grid_sample(call: Call) -> Cost:
    """input (N, C, *in), grid (N, *out, d), d = 2 or 3: per output location (N·∏out) nearest 3·d, bilinear 14,
    trilinear (bilinear on 5-D input) 31, bicubic 64 FLOPs of coordinate and weight arithmetic, +2·d with border
    or reflection padding; per output element (N·C·∏out) nearest 0, bilinear 7, trilinear 15, bicubic 35 for the
    weighted sum of the taps."""
    grid = call.arg(1, "grid")
    mode = call.arg(2, "mode", "bilinear")
    padding = call.arg(3, "padding_mode", "zeros")
    d = grid.shape[-1]
    locations = grid.numel() // d
    per_location = GRID_PER_LOCATION[(mode, d)] + (2 * d if padding != "zeros" else 0)
    return elementwise(locations * per_location + call.out_numel * GRID_PER_ELEMENT[(mode, d)])

