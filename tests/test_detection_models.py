"""torchvision detection and segmentation models: complete reports, contractions equal to FlopCounterMode's."""
from __future__ import annotations

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops

CONTRACTIONS = {"conv2d", "linear", "matmul", "addmm", "einsum", "scaled_dot_product_attention"}


def torch_macs(model, *inputs) -> int:
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(*inputs)
    return fc.get_total_flops() // 2


def test_faster_rcnn_is_captured_by_dynamo_from_a_real_run() -> None:
    """Proposal filtering (nonzero, nms) needs values: the meta run fails, dynamo captures a real run whose
    data-dependent ops stay in the graphs, so nms and RoI Align are priced too."""
    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, min_size=128, max_size=128).eval()
    images = [torch.rand(3, 128, 128)]
    r = trace_flops(model, (images,), strict=True)
    assert r.capture == "record" and r.shape_mode == "real"
    assert r.notes[0].startswith("fx could not trace <root> (FasterRCNN)")
    assert any(n.startswith("meta tensors failed") for n in r.notes)
    ops = {n.op for n in r.nodes if n.status == "counted"}
    assert {"conv2d", "linear", "nms", "roi_align"} <= ops
    assert {n.op for n in r.nodes if n.macs} <= CONTRACTIONS
    assert r.total_macs == torch_macs(model, images)
    assert r.modules["backbone"].macs + r.modules["rpn"].macs + r.modules["roi_heads"].macs == r.total_macs
    assert r.total_params == sum(p.numel() for p in model.parameters())
    anchors = model.rpn.anchor_generator.cell_anchors
    assert all(a.device.type == "cpu" for a in anchors)  # the meta attempt left the model as it was


def test_deeplabv3_matches_flop_counter() -> None:
    model = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None).eval()
    x = torch.rand(1, 3, 64, 64)
    r = trace_flops(model, x, strict=True)
    assert r.shape_mode == "meta"
    assert r.total_macs == torch_macs(model, x)
    assert r.modules["backbone"].macs + r.modules["classifier"].macs == r.total_macs
