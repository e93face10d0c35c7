"""timm layers with TensorFlow "same" padding: the padding is computed from the input shape at run time, which
symbolic tracing cannot follow, so without a rule each would be captured on its own. The pad is a copy; the
layer costs what the padded convolution or pooling costs, read from its output shape."""
from __future__ import annotations

from .conv import _conv_module
from .pooling import _avg_pool, _max_pool
from .registry import Call, Cost, rule

try:
    from timm.layers.conv2d_same import Conv2dSame
    from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame
except ImportError:  # timm is optional
    Conv2dSame = None

if Conv2dSame is not None:
    _max2, _avg2 = _max_pool(2), _avg_pool(2)

    @rule(Conv2dSame, op="conv2d", family="conv")
    def conv2d_same(call: Call) -> Cost:
        """timm Conv2dSame: pad to TF "same" (a copy), then the Conv2d formula on the output shape:
        MACs = N·C_out·∏(out)·(C_in/groups)·∏(kernel); bias adds N·C_out·∏(out) FLOPs."""
        return _conv_module(call)

    @rule(MaxPool2dSame, op="max_pool2d", family="pooling")
    def max_pool2d_same(call: Call) -> Cost:
        """timm MaxPool2dSame: pad with −inf to TF "same" (a copy), then MaxPool2d: (∏kernel − 1) comparisons per
        output element."""
        return _max2(call)

    @rule(AvgPool2dSame, op="avg_pool2d", family="pooling")
    def avg_pool2d_same(call: Call) -> Cost:
        """timm AvgPool2dSame: pad to TF "same" (a copy), then the AvgPool2d formula on the output shape."""
        return _avg2(call)
