"""compare(): totals, per module and per op type, against hand counts; alignment by path, by position and type,
and whatever is left listed as present in one report only."""
from __future__ import annotations

import csv
import io

import pytest
import torch
import torch.nn as nn
import torchvision
from torchvision.ops import Conv2dNormActivation

from fxflops import Align, FxFlopsError, compare, trace_flops
from conftest import torch_macs

X = torch.randn(1, 64, 112, 112)
HW = 112 * 112
STD_MACS = 128 * HW * 64 * 9  # 3×3 conv 64→128: each output element sees 64 channels × 9 taps
DW_MACS = 128 * HW * 1 * 9  # groups=64: each output element sees one input channel


def blocks():
    std = Conv2dNormActivation(64, 128).eval()
    dw = Conv2dNormActivation(64, 128, groups=64).eval()  # the article's use_dw=True
    return trace_flops(std, X), trace_flops(dw, X)


def every_path_once(c, i):
    return sorted(p for r in c.modules for p in [r.paths[i]] if p is not None) == sorted(c.reports[i].modules)


def test_conv_vs_grouped_block_hand_deltas() -> None:
    c = compare(*blocks())
    assert c.total("macs", 0) == STD_MACS and c.total("macs", 1) == DW_MACS
    assert c.delta("macs") == DW_MACS - STD_MACS == -910_393_344
    assert c.delta("flops") == 2 * (DW_MACS - STD_MACS)  # BatchNorm and ReLU see the same 128×112×112 output
    assert c.delta("params") == 128 * 9 - 128 * 64 * 9  # conv weights only (no bias under a norm layer)
    conv, bn, relu = (c.module(p) for p in ("0", "1", "2"))
    assert conv.align == (Align.PATH, Align.PATH) and conv.delta("macs") == DW_MACS - STD_MACS
    assert bn.delta("flops") == relu.delta("flops") == 0 and bn.value("flops", 0) == 4 * 128 * HW
    assert c.by_op()["conv2d"][1]["macs"] == DW_MACS
    assert c.ratio("macs") == pytest.approx(1 / 64)
    text = c.table(depth=1)
    assert "B vs A: MACs -910M (-98.4%)" in text and "| match" in text and "only in" not in text


def test_depthwise_separable_variant_lists_what_only_it_has() -> None:
    std, dw = blocks()
    sep = nn.Sequential(Conv2dNormActivation(64, 64, groups=64), Conv2dNormActivation(64, 128, kernel_size=1))
    c = compare(std, dw, trace_flops(sep.eval(), X), names=["standard", "grouped", "separable"])
    assert c.delta("macs", 2) == 64 * HW * 9 + 128 * HW * 64 - STD_MACS
    lone = c.only_in(2)
    assert sorted(r.paths[2] for r in lone) == ["0.0", "0.1", "0.2", "1.0", "1.1", "1.2"]
    assert c.module("2").align[2] == Align.ABSENT  # the standard block's ReLU: nothing at 2 in the separable one
    assert c.module("0").types == ("Conv2d", "Conv2d", "Conv2dNormActivation")  # same path, type change shown
    assert all(every_path_once(c, i) for i in range(3))
    assert "C = separable" in c.table() and "| only C" in c.table()


def test_position_and_type_align_renamed_children() -> None:
    class A(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.head = nn.Conv2d(3, 8, 3), nn.Linear(8, 4)

        def forward(self, x):
            return self.head(self.stem(x).mean((2, 3)))

    class B(A):
        def __init__(self, swap=False):
            nn.Module.__init__(self)
            if swap:  # same names as A's children nowhere, and the types in the other order
                self.fc, self.conv = nn.Linear(8, 4), nn.Conv2d(3, 8, 3)
            else:
                self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    x = torch.randn(1, 3, 10, 10)
    c = compare(trace_flops(A(), x), trace_flops(B(), x))
    assert c.module("stem").paths == ("stem", "conv") and c.module("stem").align[1] == Align.POSITION
    assert c.module("stem").delta("macs") == 0 and not c.only_in(0) and not c.only_in(1)
    assert c.module("stem").name == "stem ~ conv"
    swapped = compare(trace_flops(A(), x), trace_flops(B(swap=True), x))
    assert [r.paths[0] for r in swapped.only_in(0)] == ["stem", "head"]
    assert [r.paths[1] for r in swapped.only_in(1)] == ["fc", "conv"]


def test_resnet34_vs_mobilenet_v3_large() -> None:
    with torch.device("meta"):
        a, b = torchvision.models.resnet34().eval(), torchvision.models.mobilenet_v3_large().eval()
    x = torch.empty(1, 3, 224, 224, device="meta")
    ra, rb = trace_flops(a, x), trace_flops(b, x)
    c = compare(ra, rb)
    assert c.names == ["ResNet", "MobileNetV3"]
    with torch.no_grad():  # torch's own counter, on the same meta tensors
        assert (c.total("macs", 0), c.total("macs", 1)) == (torch_macs(a, x), torch_macs(b, x))
    assert c.delta("macs") == rb.total_macs - ra.total_macs == 216_589_760 - 3_663_761_408
    assert c.module("avgpool").align == (Align.PATH, Align.PATH)  # the one child both have
    top_a = {r.paths[0] for r in c.only_in(0) if r.depth == 1}
    assert top_a == {"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "fc"}
    assert {r.paths[1] for r in c.only_in(1) if r.depth == 1} == {"features", "classifier"}
    assert every_path_once(c, 0) and every_path_once(c, 1)
    summary = c.summary()
    assert "only in A: 114 modules" in summary and "only in B:" in summary and "features, classifier" in summary
    ops = c.by_op()
    assert ops["hardswish"][0] is None and ops["hardswish"][1]["count"] == 21 and ops["max_pool2d"][1] is None


def test_two_batch_sizes_scale_every_module_by_exactly_eight() -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet50().eval()
    r1 = trace_flops(model, torch.empty(1, 3, 224, 224, device="meta"))
    r8 = trace_flops(model, torch.empty(8, 3, 224, 224, device="meta"))
    c = compare(r1, r8)
    assert c.names == ["ResNet (1,3,224,224)", "ResNet (8,3,224,224)"]
    assert c.total("macs", 1) == 8 * c.total("macs", 0) == 8 * 4_089_184_256
    assert all(r.value("macs", 1) == 8 * r.value("macs", 0) and r.delta("params") == 0 for r in c.modules)
    assert all(a == Align.PATH for r in c.modules for a in r.align)
    assert "+28.6G (+700.0%)" in c.table(depth=0)


def test_comparison_csv_and_markdown_round_trip() -> None:
    c = compare(*blocks())
    rows = list(csv.DictReader(io.StringIO(c.to_csv())))
    conv = next(r for r in rows if r["module_A"] == "0")
    assert int(conv["macs_A"]) == STD_MACS and int(conv["macs_B"]) == DW_MACS
    assert int(conv["delta_macs_B"]) == DW_MACS - STD_MACS and conv["align_B"] == "path"
    md = c.to_markdown(depth=1)
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len({ln.count(" | ") for ln in table[2:]} | {table[0].count(" | ")}) == 1
    assert table[1].startswith("|---|---|---:") and "| `0` | Conv2d |" in md


def test_compare_needs_two_reports_and_known_metrics() -> None:
    with pytest.raises(FxFlopsError, match="at least two reports"):
        compare(blocks()[0])
    with pytest.raises(FxFlopsError, match="cannot compare watts"):
        compare(*blocks(), metrics=("macs", "watts"))


def test_bytes_compare_like_any_other_metric() -> None:
    a, b = blocks()
    c = compare(a, b, metrics=("macs", "bytes"))
    assert c.total("bytes", 0) == a.total_bytes and c.total("bytes", 1) == b.total_bytes
    assert c.delta("bytes") == b.total_bytes - a.total_bytes != 0


def test_metrics_are_names_a_new_column_needs_only_its_name() -> None:
    c = compare(*blocks(), metrics=("flops",))
    assert c.to_dict()["totals"] == [{"flops": 2 * STD_MACS + 5 * 128 * HW}, {"flops": 2 * DW_MACS + 5 * 128 * HW}]
    assert "MACs A" not in c.table() and "FLOPs A" in c.table()
