"""Pooling and resampling rules, checked against hand computations.

max pool: (∏k − 1) compares per output; avg pool: ∏k FLOPs per output (∏k − 1 adds + 1 divide);
adaptive: the same per window, windows from floor(i·I/O) to ceil((i+1)·I/O);
interpolate per output element: nearest 0, linear 3, bilinear 9, trilinear 21, bicubic 35.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import Fn, One, count, only, ops


def run(f, shape):
    r = count(One(f) if isinstance(f, nn.Module) else Fn(f), torch.randn(*shape))
    assert r.total_macs == 0
    return r


def test_max_pool2d_module_node_record():
    r = run(nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 9, 9))
    # out = floor((9 + 2·1 − 3)/2) + 1 = 5
    assert r.total_flops == 2 * 3 * 5 * 5 * (3 * 3 - 1)
    n = only(r, "max_pool2d")
    assert (n.status, n.module_path, n.module_type) == ("counted", "layer", "MaxPool2d")
    assert n.input_shapes == [(2, 3, 9, 9)] and n.output_shapes == [(2, 3, 5, 5)]


@pytest.mark.parametrize("f,shape,flops", [
    (nn.MaxPool1d(2), (2, 3, 8), 2 * 3 * 4 * (2 - 1)),
    (lambda x: F.max_pool1d(x, kernel_size=3, stride=1), (2, 3, 8), 2 * 3 * 6 * (3 - 1)),
    (nn.MaxPool2d((2, 3)), (1, 2, 6, 6), 1 * 2 * 3 * 2 * (2 * 3 - 1)),
    (lambda x: F.max_pool2d(x, 2), (1, 2, 6, 6), 1 * 2 * 3 * 3 * (4 - 1)),
    (lambda x: F.max_pool2d(x, 2, return_indices=True)[0], (1, 2, 6, 6), 1 * 2 * 3 * 3 * (4 - 1)),
    (nn.MaxPool3d(2), (1, 2, 4, 4, 4), 1 * 2 * 2 * 2 * 2 * (8 - 1)),
    (lambda x: F.max_pool3d(x, (1, 2, 2)), (1, 2, 4, 4, 4), 1 * 2 * 4 * 2 * 2 * (4 - 1)),
], ids=["MaxPool1d", "F.max_pool1d", "MaxPool2d-rect", "F.max_pool2d", "F.max_pool2d-indices", "MaxPool3d",
        "F.max_pool3d"])
def test_max_pool(f, shape, flops):
    assert run(f, shape).total_flops == flops


@pytest.mark.parametrize("f,shape,flops", [
    (nn.AvgPool1d(4), (2, 3, 8), 2 * 3 * 2 * 4),
    (lambda x: F.avg_pool1d(x, 2), (2, 3, 8), 2 * 3 * 4 * 2),
    (nn.AvgPool2d(2), (1, 3, 6, 6), 1 * 3 * 3 * 3 * 4),
    (nn.AvgPool2d(3, stride=1, padding=1), (1, 3, 6, 6), 1 * 3 * 6 * 6 * 9),
    (lambda x: F.avg_pool2d(x, kernel_size=(2, 3)), (1, 3, 6, 6), 1 * 3 * 3 * 2 * 6),
    (nn.AvgPool3d(2), (1, 2, 4, 4, 4), 1 * 2 * 2 * 2 * 2 * 8),
    (lambda x: F.avg_pool3d(x, 2), (1, 2, 4, 4, 4), 1 * 2 * 2 * 2 * 2 * 8),
], ids=["AvgPool1d", "F.avg_pool1d", "AvgPool2d", "AvgPool2d-pad", "F.avg_pool2d", "AvgPool3d", "F.avg_pool3d"])
def test_avg_pool(f, shape, flops):
    assert run(f, shape).total_flops == flops


# Adaptive windows along one dim, I → O, window i = [floor(i·I/O), ceil((i+1)·I/O)):
#   7 → 3: [0,3) [2,5) [4,7)       lengths 3+3+3 = 9
#   10 → 4: [0,3) [2,5) [5,8) [7,10) lengths 3+3+3+3 = 12
#   5 → 2: [0,3) [2,5)              lengths 3+3 = 6
#   6 → 3: [0,2) [2,4) [4,6)        lengths 2+2+2 = 6
@pytest.mark.parametrize("f,shape,flops", [
    (nn.AdaptiveAvgPool2d(3), (2, 3, 7, 7), 2 * 3 * 9 * 9),
    (lambda x: F.adaptive_avg_pool2d(x, (3, 3)), (2, 3, 7, 7), 2 * 3 * 9 * 9),
    (nn.AdaptiveAvgPool2d(1), (2, 3, 7, 7), 2 * 3 * 7 * 7),  # global average
    (nn.AdaptiveAvgPool2d((None, 3)), (2, 3, 5, 7), 2 * 3 * 5 * 9),  # None keeps the size: windows of 1
    (nn.AdaptiveAvgPool1d(4), (2, 3, 10), 2 * 3 * 12),
    (nn.AdaptiveAvgPool3d((2, 3, 3)), (1, 2, 5, 6, 7), 1 * 2 * 6 * 6 * 9),
], ids=["2d-7to3", "F-2d-7to3", "2d-global", "2d-None", "1d-10to4", "3d"])
def test_adaptive_avg_pool(f, shape, flops):
    assert run(f, shape).total_flops == flops


@pytest.mark.parametrize("f,shape,flops", [
    (nn.AdaptiveMaxPool2d(3), (2, 3, 7, 7), 2 * 3 * (9 * 9 - 3 * 3)),  # window − 1 compares per output
    (lambda x: F.adaptive_max_pool2d(x, 3, return_indices=True)[0], (2, 3, 7, 7), 2 * 3 * (9 * 9 - 3 * 3)),
    (nn.AdaptiveMaxPool1d(4), (2, 3, 10), 2 * 3 * (12 - 4)),
    (nn.AdaptiveMaxPool3d((2, 3, 3)), (1, 2, 5, 6, 7), 1 * 2 * (6 * 6 * 9 - 2 * 3 * 3)),
], ids=["2d-7to3", "F-2d-indices", "1d", "3d"])
def test_adaptive_max_pool(f, shape, flops):
    assert run(f, shape).total_flops == flops


def test_lp_pool():
    # power and add per window element, one root per output: 2·∏k + 1
    assert run(nn.LPPool2d(2, 2), (1, 3, 4, 4)).total_flops == 1 * 3 * 2 * 2 * (2 * 4 + 1)
    assert run(nn.LPPool1d(2, 3), (1, 3, 9)).total_flops == 1 * 3 * 3 * (2 * 3 + 1)


@pytest.mark.parametrize("f,shape,flops", [
    (lambda x: F.interpolate(x, scale_factor=2), (1, 3, 4, 4), 0),  # nearest copies
    (lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), (1, 3, 4, 4), 0),
    (nn.Upsample(scale_factor=2, mode="nearest"), (1, 3, 4, 4), 0),
    (lambda x: F.interpolate(x, size=(6, 10), mode="bilinear", align_corners=False), (1, 3, 4, 4), 1 * 3 * 6 * 10 * 9),
    (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), (2, 3, 4, 5), 2 * 3 * 8 * 10 * 9),
    (lambda x: F.interpolate(x, None, 2, "bicubic"), (1, 2, 3, 3), 1 * 2 * 6 * 6 * 35),  # mode positionally
    (nn.Upsample(size=(5, 5), mode="bicubic"), (1, 2, 3, 3), 1 * 2 * 5 * 5 * 35),
    (lambda x: F.interpolate(x, scale_factor=3, mode="linear"), (2, 3, 4), 2 * 3 * 12 * 3),
    (lambda x: F.interpolate(x, scale_factor=2, mode="trilinear"), (1, 1, 2, 3, 4), 1 * 1 * 4 * 6 * 8 * 21),
    (lambda x: F.interpolate(x, size=3, mode="area"), (1, 2, 7, 7), 1 * 2 * 9 * 9),  # area = adaptive avg
], ids=["nearest", "nearest-exact", "Upsample-nearest", "bilinear", "Upsample-bilinear", "bicubic",
        "Upsample-bicubic", "linear", "trilinear", "area"])
def test_interpolate(f, shape, flops):
    r = run(f, shape)
    assert r.total_flops == flops
    n = only(r, "interpolate")
    assert n.status == "counted"


def test_upsample_module_node_record():
    r = run(nn.Upsample(scale_factor=2, mode="bilinear"), (1, 3, 4, 4))
    n = only(r, "interpolate")
    assert (n.module_type, n.module_path, n.output_shapes) == ("Upsample", "layer", [(1, 3, 8, 8)])
    assert [m.op for m in ops(r)] == ["interpolate"]
