"""torchvision.ops functions that torchvision registers with ``torch.fx.wrap``, so fx keeps them as one opaque call."""
from __future__ import annotations

from ..registry import Call, Cost, elementwise, rule

try:
    import torchvision.ops as tv_ops
except ImportError:  # torchvision is optional
    tv_ops = None

if tv_ops is not None:

    @rule(tv_ops.stochastic_depth, tv_ops.StochasticDepth, op="stochastic_depth", family="dropout")
    def stochastic_depth(call: Call) -> Cost:
        """0 in eval (identity); in training with p > 0, 1 FLOP per element (the scaled row/batch mask multiply)."""
        if call.module is not None:
            training, p = call.module.training, call.module.p
        else:
            training, p = bool(call.arg(3, "training", True)), float(call.arg(1, "p"))
        return elementwise(call.out.numel() if training and p > 0 else 0)

    try:
        from torchvision.models import swin_transformer as _swin
    except ImportError:
        _swin = None
    if _swin is not None:
        from ..registry import free

        free(_swin._patch_merging_pad, op="copy", family="shape",
             reason="pads and slices the feature map into 2×2 patches: copies, no arithmetic")
        free(_swin._get_relative_position_bias, op="copy", family="shape",
             reason="gathers the relative position bias table by index: copies, no arithmetic")
