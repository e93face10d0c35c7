"""Convolution rules, checked against hand computations and torch's FlopCounterMode.

Direct conv:     MACs = N·C_out·∏(out spatial)·(C_in/groups)·∏k, bias adds N·C_out·∏(out spatial) FLOPs.
Transposed conv: MACs = N·C_in·∏(in spatial)·(C_out/groups)·∏k, bias adds N·C_out·∏(out spatial) FLOPs.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import count, only, torch_macs


def test_conv2d_module_hand_count_and_node_record():
    conv = nn.Conv2d(3, 8, kernel_size=3)
    x = torch.randn(2, 3, 32, 32)
    r = count(conv_wrap(conv), x)
    # out 32 - 3 + 1 = 30
    macs = 2 * 8 * 30 * 30 * (3 // 1) * 3 * 3
    bias = 2 * 8 * 30 * 30
    assert r.total_macs == macs == 388_800
    assert r.total_flops == 2 * macs + bias
    assert r.total_macs == torch_macs(conv, x)
    n = only(r, "conv2d")
    assert (n.status, n.module_path, n.module_type, n.kind) == ("counted", "conv", "Conv2d", "call_module")
    assert n.input_shapes == [(2, 3, 32, 32)] and n.output_shapes == [(2, 8, 30, 30)]
    assert n.params == 8 * 3 * 3 * 3 + 8
    assert r.total_params == 8 * 3 * 3 * 3 + 8


def test_conv2d_groups_dilation_stride_padding_no_bias():
    conv = nn.Conv2d(4, 8, kernel_size=3, stride=2, padding=1, dilation=2, groups=2, bias=False)
    x = torch.randn(2, 4, 17, 17)
    r = count(conv_wrap(conv), x)
    # out = floor((17 + 2·1 − 2·(3 − 1) − 1) / 2) + 1 = 8
    macs = 2 * 8 * 8 * 8 * (4 // 2) * 3 * 3
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs  # no bias
    assert r.total_macs == torch_macs(conv, x)
    assert only(r, "conv2d").output_shapes == [(2, 8, 8, 8)]


def test_conv1d_depthwise_with_bias():
    conv = nn.Conv1d(6, 12, kernel_size=5, padding=2, groups=6)
    x = torch.randn(3, 6, 20)
    r = count(conv_wrap(conv), x)
    # padding 2 keeps length 20; each output sums C_in/groups = 1 channel × 5 taps
    macs = 3 * 12 * 20 * (6 // 6) * 5
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + 3 * 12 * 20
    assert r.total_macs == torch_macs(conv, x)


def test_conv3d_stride_tuple_kernel():
    conv = nn.Conv3d(2, 4, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    x = torch.randn(1, 2, 5, 9, 9)
    r = count(conv_wrap(conv), x)
    # out: depth 5, height/width floor((9 + 2 − 3)/2) + 1 = 5
    macs = 1 * 4 * 5 * 5 * 5 * 2 * (1 * 3 * 3)
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + 1 * 4 * 5 * 5 * 5
    assert r.total_macs == torch_macs(conv, x)
    assert only(r, "conv3d").output_shapes == [(1, 4, 5, 5, 5)]


def test_conv_transpose2d_stride_groups_bias():
    conv = nn.ConvTranspose2d(4, 6, kernel_size=3, stride=2, padding=1, output_padding=1, groups=2)
    x = torch.randn(2, 4, 7, 7)
    r = count(conv_wrap(conv), x)
    # out = (7 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1 = 14; every input element goes through C_out/groups · 3·3 weights
    macs = 2 * 4 * 7 * 7 * (6 // 2) * 3 * 3
    bias = 2 * 6 * 14 * 14
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + bias
    assert r.total_macs == torch_macs(conv, x)
    n = only(r, "conv_transpose2d")
    assert n.output_shapes == [(2, 6, 14, 14)] and n.module_type == "ConvTranspose2d"


def test_conv_transpose1d_dilation_no_bias():
    conv = nn.ConvTranspose1d(3, 5, kernel_size=4, dilation=2, bias=False)
    x = torch.randn(2, 3, 10)
    r = count(conv_wrap(conv), x)
    macs = 2 * 3 * 10 * 5 * 4
    assert r.total_macs == macs and r.total_flops == 2 * macs
    assert r.total_macs == torch_macs(conv, x)
    # out = (10 − 1) + 2·(4 − 1) + 1 = 16
    assert only(r, "conv_transpose1d").output_shapes == [(2, 5, 16)]


def test_conv_transpose3d():
    conv = nn.ConvTranspose3d(2, 3, kernel_size=2, stride=2)
    x = torch.randn(1, 2, 3, 4, 5)
    r = count(conv_wrap(conv), x)
    macs = 1 * 2 * 3 * 4 * 5 * 3 * 2 * 2 * 2
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + 1 * 3 * 6 * 8 * 10
    assert r.total_macs == torch_macs(conv, x)


class FunctionalConvs(nn.Module):
    """Every functional conv, weights held as plain parameters."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(4, 2, 3))  # conv1d 2→4, k3
        self.b1 = nn.Parameter(torch.randn(4))
        self.w2 = nn.Parameter(torch.randn(6, 2, 3, 3))  # conv2d 4→6, groups 2
        self.w3 = nn.Parameter(torch.randn(2, 1, 1, 1, 1))  # conv3d 1→2, k1
        self.wt1 = nn.Parameter(torch.randn(4, 3, 2))  # conv_transpose1d 4→3, k2
        self.wt2 = nn.Parameter(torch.randn(6, 1, 3, 3))  # conv_transpose2d 6→2, groups 2
        self.bt2 = nn.Parameter(torch.randn(2))
        self.wt3 = nn.Parameter(torch.randn(2, 1, 2, 2, 2))  # conv_transpose3d 2→1, k2

    def forward(self, x1, x2, x3):
        a = F.conv1d(x1, self.w1, self.b1, stride=2)
        b = F.conv2d(x2, self.w2, None, padding="same", dilation=2, groups=2)
        c = F.conv3d(x3, self.w3)
        d = F.conv_transpose1d(a, self.wt1)
        e = F.conv_transpose2d(b, self.wt2, self.bt2, stride=2, groups=2)
        f = F.conv_transpose3d(c, self.wt3, stride=2)
        return d, e, f


def test_functional_convs():
    m = FunctionalConvs()
    x1, x2, x3 = torch.randn(2, 2, 11), torch.randn(1, 4, 6, 6), torch.randn(1, 1, 2, 3, 4)
    r = count(m, x1, x2, x3)
    conv1d = 2 * 4 * 5 * 2 * 3  # out length floor((11 − 3)/2) + 1 = 5
    conv2d = 1 * 6 * 6 * 6 * (4 // 2) * 3 * 3  # padding="same" keeps 6×6
    conv3d = 1 * 2 * 2 * 3 * 4 * 1 * 1
    convt1d = 2 * 4 * 5 * 3 * 2  # input (2, 4, 5), out length 5 − 1 + 2 = 6
    convt2d = 1 * 6 * 6 * 6 * (2 // 2) * 3 * 3  # input (1, 6, 6, 6), out (6 − 1)·2 + 3 = 13
    convt3d = 1 * 2 * 2 * 3 * 4 * 1 * 2 * 2 * 2  # input (1, 2, 2, 3, 4), out (1, 1, 4, 6, 8)
    expected = {
        "conv1d": (conv1d, 2 * conv1d + 2 * 4 * 5),
        "conv2d": (conv2d, 2 * conv2d),
        "conv3d": (conv3d, 2 * conv3d),
        "conv_transpose1d": (convt1d, 2 * convt1d),
        "conv_transpose2d": (convt2d, 2 * convt2d + 1 * 2 * 13 * 13),
        "conv_transpose3d": (convt3d, 2 * convt3d),
    }
    for op, (macs, flops) in expected.items():
        n = only(r, op)
        assert (n.macs, n.flops, n.status, n.kind) == (macs, flops, "counted", "call_function"), op
    assert only(r, "conv_transpose2d").output_shapes == [(1, 2, 13, 13)]
    assert only(r, "conv_transpose3d").output_shapes == [(1, 1, 4, 6, 8)]
    assert r.total_macs == sum(m for m, _ in expected.values())
    assert r.total_macs == torch_macs(m, x1, x2, x3)


CONFIGS = [
    (nn.Conv1d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, dilation=1, groups=2), (2, 4, 15)),
    (nn.Conv2d, dict(in_channels=6, out_channels=6, kernel_size=(3, 1), stride=(1, 2), padding=(2, 0), dilation=2, groups=3, bias=False), (1, 6, 9, 8)),
    (nn.Conv3d, dict(in_channels=2, out_channels=4, kernel_size=3, padding=1, groups=1), (1, 2, 4, 4, 4)),
    (nn.ConvTranspose1d, dict(in_channels=4, out_channels=2, kernel_size=3, stride=3, padding=1, groups=2), (2, 4, 5)),
    (nn.ConvTranspose2d, dict(in_channels=3, out_channels=6, kernel_size=(2, 3), stride=2, dilation=(1, 2), groups=3, bias=False), (1, 3, 4, 5)),
    (nn.ConvTranspose3d, dict(in_channels=4, out_channels=4, kernel_size=2, stride=1, padding=0, groups=4), (1, 4, 3, 3, 3)),
]


@pytest.mark.parametrize("cls,kw,shape", CONFIGS, ids=[c[0].__name__ for c in CONFIGS])
def test_conv_modules_match_formula_and_flop_counter(cls, kw, shape):
    conv = cls(**kw)
    x = torch.randn(*shape)
    r = count(conv_wrap(conv), x)
    out = conv(x)
    k = conv.weight.shape[2:].numel()
    if cls.__name__.startswith("ConvTranspose"):
        macs = x.numel() * (conv.out_channels // conv.groups) * k
    else:
        macs = out.numel() * (conv.in_channels // conv.groups) * k
    assert r.total_macs == macs == torch_macs(conv, x)
    assert r.total_flops == 2 * macs + (out.numel() if conv.bias is not None else 0)
    op = cls.__name__.replace("ConvTranspose", "conv_transpose").replace("Conv", "conv")
    assert only(r, op).output_shapes == [tuple(out.shape)]


class Wrap(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return self.conv(x)


def conv_wrap(conv):
    return Wrap(conv)
