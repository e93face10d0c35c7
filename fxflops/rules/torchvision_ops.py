"""torchvision.ops functions that torchvision registers with ``torch.fx.wrap``, so fx keeps them as one opaque call."""
from __future__ import annotations

from .registry import Call, Cost, elementwise, rule

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
        from .registry import free

        free(_swin._patch_merging_pad, op="copy", family="shape",
             reason="pads and slices the feature map into 2×2 patches: copies, no arithmetic")
        free(_swin._get_relative_position_bias, op="copy", family="shape",
             reason="gathers the relative position bias table by index: copies, no arithmetic")


# RoI Align: every output element (RoI, channel, bin) averages s_h·s_w bilinear samples of 4 taps each
# (4 multiplies + 3 adds = 7, + 1 to accumulate), then divides once. The sample coordinates and tap weights are
# shared by the channels: per (RoI, bin, sample) 4 FLOPs for y/x (scale and offset), 4 for floor and fraction,
# 6 for the four weights.
ROI_SAMPLE_PER_ELEMENT = 8
ROI_SAMPLE_PER_LOCATION = 14


def _roi_samples(rois, ph: int, pw: int, scale: float, ratio: int, aligned: bool) -> int:
    """Σ over RoIs of the samples per bin. sampling_ratio > 0 fixes it; otherwise torch takes ceil(RoI size / bins)
    per RoI, read from the boxes when they hold values, and 2×2 (the common setting) when they are shapes only."""
    if ratio > 0:
        return rois.shape[0] * ratio * ratio
    if rois.device.type == "meta" or isinstance(rois, torch._subclasses.FakeTensor):
        return rois.shape[0] * 4
    off = 0.5 if aligned else 0.0
    boxes = rois[:, 1:5].double() * scale - off
    h = (boxes[:, 3] - boxes[:, 1]).clamp(min=0 if aligned else 1)
    w = (boxes[:, 2] - boxes[:, 0]).clamp(min=0 if aligned else 1)
    return int(((h / ph).ceil().clamp(min=1) * (w / pw).ceil().clamp(min=1)).sum())


def roi_align_cost(x, rois, out, scale: float, ratio: int, aligned: bool) -> Cost:
    k, c, ph, pw = out.shape
    samples = _roi_samples(rois, ph, pw, scale, ratio, aligned)  # Σ_RoI s_h·s_w
    per_channel = samples * ph * pw
    return elementwise(c * per_channel * ROI_SAMPLE_PER_ELEMENT + out.numel() + per_channel * ROI_SAMPLE_PER_LOCATION)


if tv_ops is not None:
    import torch

    _OPS = [getattr(torch.ops.torchvision, "roi_align", None), getattr(torch.ops.torchvision, "ps_roi_align", None)]

    @rule(*[op for op in _OPS if op is not None], *[op.default for op in _OPS if op is not None],
          op="roi_align", family="resize")
    def roi_align_kernel(call: Call) -> Cost:
        """torch.ops.torchvision.roi_align / ps_roi_align(input, rois (K, 5), scale, ph, pw, sampling_ratio[, aligned]):
        per output element 8·(samples per bin) + 1 FLOPs (bilinear 4-tap samples accumulated, one division), plus
        14 per sample location (coordinates and weights, shared by the channels). Samples per bin: sampling_ratio²,
        or ceil(RoI h/ph)·ceil(RoI w/pw) from the boxes when sampling_ratio ≤ 0 (2×2 when the boxes hold no values)."""
        x, rois = call.args[0], call.args[1]
        out = call.out[0] if isinstance(call.out, (tuple, list)) else call.out
        aligned = bool(call.args[6]) if len(call.args) > 6 else False
        return roi_align_cost(x, rois, out, float(call.args[2]), int(call.args[5]), aligned)

    @rule(tv_ops.roi_align, tv_ops.ps_roi_align, op="roi_align", family="resize")
    def roi_align(call: Call) -> Cost:
        """torchvision.ops.roi_align / ps_roi_align(input, boxes, output_size, spatial_scale, sampling_ratio[, aligned]):
        the formula of the torch.ops.torchvision kernel; boxes given as a list per image are concatenated."""
        boxes = call.arg(1, "boxes")
        if isinstance(boxes, (list, tuple)):
            boxes = torch.cat([torch.nn.functional.pad(b, (1, 0)) for b in boxes]) if boxes else boxes
        out = call.out[0] if isinstance(call.out, (tuple, list)) else call.out
        return roi_align_cost(call.arg(0, "input"), boxes, out, float(call.arg(3, "spatial_scale", 1.0)),
                              int(call.arg(4, "sampling_ratio", -1)), bool(call.arg(5, "aligned", False)))


    # NMS per candidate pair: 4 max/min for the intersection box, 2 subtractions and 2 clamps for its sides, 1 multiply,
    # 2 for the union (add, subtract), 1 division, 1 comparison with the threshold.
    NMS_PER_PAIR = 13

    @rule(tv_ops.nms, torch.ops.torchvision.nms, torch.ops.torchvision.nms.default, op="nms", family="detection")
    def nms(call: Call) -> Cost:
        """nms(boxes (N, 4), scores (N,), iou_threshold): 3·N FLOPs for the box areas + 13 per IoU of a pair, for the
        worst case of N·(N − 1)/2 pairs (which pairs run depends on the scores: a suppressed box is skipped)."""
        n = call.arg(0, "boxes").shape[0]
        return elementwise(3 * n + NMS_PER_PAIR * n * (n - 1) // 2)
