"""A standard 3×3 conv block against depthwise-separable ones: 64→128 channels at 112×112.

    python examples/conv_vs_depthwise.py

The article swaps ``Conv2dNormActivation(64, 128)`` for the same block with ``groups=in_c``. That is
a grouped conv with a channel multiplier of 2, not a depthwise-separable block (which is a 3×3
depthwise conv followed by a 1×1 pointwise conv), so both are compared here.
"""
import torch
import torch.nn as nn
from torchvision.ops import Conv2dNormActivation

from fxflops import trace_flops


def build_conv_block(in_c, out_c, kernel=3, stride=1, use_dw=False):
    """The article's builder, unchanged."""
    return Conv2dNormActivation(
        in_c, out_c, kernel_size=kernel, stride=stride,
        groups=in_c if use_dw else 1,
        norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU,
    )


def depthwise_separable(in_c, out_c, kernel=3, stride=1):
    """MobileNet's block: depthwise k×k (groups=in_c, in_c→in_c), then pointwise 1×1 (in_c→out_c)."""
    return nn.Sequential(
        Conv2dNormActivation(in_c, in_c, kernel_size=kernel, stride=stride, groups=in_c),
        Conv2dNormActivation(in_c, out_c, kernel_size=1),
    )


x = torch.randn(1, 64, 112, 112)
blocks = {
    "standard 3×3 conv": build_conv_block(64, 128),
    "article's use_dw=True (groups=64)": build_conv_block(64, 128, use_dw=True),
    "depthwise 3×3 + pointwise 1×1": depthwise_separable(64, 128),
}
baseline = None
for name, block in blocks.items():
    r = trace_flops(block.eval(), x)
    baseline = baseline or r.total_flops
    print(f"{name:36s} MACs {r.total_macs:>12,}  FLOPs {r.total_flops:>13,} ({r.total_flops / 1e6:8.2f}M)  "
          f"params {r.total_params:>7,}  {r.total_flops / baseline:6.1%} of standard")
