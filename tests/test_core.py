"""The public face of trace_flops: report views, inputs, meta device, errors, user control."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxflops
from fxflops import CaptureError, Cost, ShapeError, UncountedOpError, trace_flops


class Block(nn.Module):
    """conv → bn → relu with a residual add and an upsampled side branch: ops hooks miss included."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.head = nn.Linear(c, 4)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        y = y + x
        small = F.avg_pool2d(y, 2)
        y = y * F.interpolate(small, scale_factor=2.0, mode="nearest")
        return self.head(y.mean(dim=(2, 3)))


def hand_block(n: int, c: int = 8, h: int = 16) -> tuple[int, int]:
    """MACs and FLOPs of Block on an (n, c, h, h) input, from the documented formulas."""
    hw = h * h
    conv_macs = n * c * hw * c * 9
    head_macs = n * c * 4
    flops = 2 * conv_macs
    flops += n * c * hw * 2  # eval BatchNorm: subtract, scale (affine adds 2 more)
    flops += n * c * hw * 2  # γ, β
    flops += n * c * hw  # relu
    flops += n * c * hw  # residual add
    flops += n * c * (hw // 4) * 4  # avg_pool2d(2): 4 per output
    flops += 0  # nearest interpolation copies
    flops += n * c * hw  # gating multiply
    flops += n * c * hw + n * c  # mean: adds + divisions
    flops += 2 * head_macs + n * 4  # linear + bias
    return conv_macs + head_macs, flops


@pytest.fixture
def block() -> Block:
    return Block().eval()


def test_totals_match_hand_computation(block: Block) -> None:
    report = trace_flops(block, torch.randn(2, 8, 16, 16))
    macs, flops = hand_block(2)
    assert (report.total_macs, report.total_flops) == (macs, flops)
    assert report.total_params == 8 * 8 * 9 + 2 * 8 + 8 * 4 + 4
    assert isinstance(report.total_macs, int) and isinstance(report.total_flops, int)


def test_batch_size_scales_costs_not_params(block: Block) -> None:
    one = trace_flops(block, torch.randn(1, 8, 16, 16))
    four = trace_flops(block, torch.randn(4, 8, 16, 16))
    assert four.total_macs == 4 * one.total_macs
    assert four.total_flops == 4 * one.total_flops
    assert four.total_params == one.total_params
    assert four.input_shapes == [(4, 8, 16, 16)]


def test_node_records_carry_shapes_rules_and_paths(block: Block) -> None:
    report = trace_flops(block, torch.randn(2, 8, 16, 16))
    by_name = {n.name: n for n in report.nodes}
    conv = by_name["conv"]
    assert (conv.kind, conv.op, conv.module_path, conv.module_type) == ("call_module", "conv2d", "conv", "Conv2d")
    assert conv.input_shapes == [(2, 8, 16, 16)] and conv.output_shapes == [(2, 8, 16, 16)]
    assert conv.dtypes == ["float32"] and conv.params == 8 * 8 * 9 and conv.status == "counted"
    add = by_name["add"]
    assert (add.kind, add.op, add.flops) == ("call_function", "add", 2 * 8 * 256)
    assert [n.kind for n in report.nodes][0] == "placeholder" and report.nodes[-1].kind == "output"
    interp = by_name["interpolate"]
    assert interp.status == "counted" and interp.flops == 0


def test_by_op_top_and_tables(block: Block) -> None:
    report = trace_flops(block, torch.randn(2, 8, 16, 16))
    ops = report.by_op()
    assert list(ops)[0] == "conv2d"
    assert ops["add"] == {"count": 1, "macs": 0, "flops": 2 * 8 * 256}
    assert sum(r["flops"] for r in ops.values()) == report.total_flops
    top = report.top(2)
    assert [n.name for n in top] == ["conv", "bn"]
    table = report.table(depth=1)
    assert "| model" in table and "conv" in table and "100.00%" in table
    assert "conv2d" in report.op_table() and "conv" in report.top_table(3)


def test_to_dict_and_json_are_exact(block: Block) -> None:
    report = trace_flops(block, torch.randn(2, 8, 16, 16))
    d = json.loads(report.to_json())
    assert d["total_macs"] == report.total_macs and d["total_flops"] == report.total_flops
    assert d["input_shapes"] == [[2, 8, 16, 16]]
    assert len(d["nodes"]) == len(report.nodes)
    root = next(m for m in d["modules"] if m["path"] == "")
    assert root["flops"] == report.total_flops and root["params"] == report.total_params


def test_module_rows_sum_their_nodes() -> None:
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 2))
    report = trace_flops(model, torch.randn(3, 4))
    rows = dict(report.modules)
    assert rows["0"].macs == 3 * 4 * 8 and rows["0"].flops == 2 * 96 + 24 + 24
    assert rows["0.0"].params == 4 * 8 + 8 and rows["1"].params == 8 * 2 + 2
    assert rows[""].flops == rows["0"].flops + rows["1"].flops == report.total_flops


def test_meta_device_model_allocates_nothing() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4096, 4096), nn.GELU(), nn.Linear(4096, 4096))
    report = trace_flops(model, torch.empty(8, 4096, device="meta"))
    assert report.shape_mode == "meta"
    assert report.total_macs == 2 * 8 * 4096 * 4096
    assert report.total_params == 2 * (4096 * 4096 + 4096)
    assert all(p.device.type == "meta" for p in model.parameters())


def test_real_weights_are_left_untouched(block: Block) -> None:
    before = {k: v.clone() for k, v in block.state_dict().items()}
    trace_flops(block, torch.randn(2, 8, 16, 16))
    after = block.state_dict()
    assert all(after[k].device.type == "cpu" and torch.equal(before[k], after[k]) for k in before)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(6, 6)

    def forward(self, x, y=None, scale: float = 1.0):
        out = self.proj(x)
        if y is not None:
            out = out + y
        return out * scale


def test_examples_as_tuple_and_kwargs() -> None:
    model = TwoInputs()
    x, y = torch.randn(2, 6), torch.randn(2, 6)
    only_x = trace_flops(model, x)
    both = trace_flops(model, (x, y))
    by_kw = trace_flops(model, {"x": x, "y": y})
    linear = 2 * (2 * 6 * 6) + 12
    assert only_x.total_flops == linear + 12  # the y branch is skipped when y is left at None
    assert both.total_flops == by_kw.total_flops == linear + 12 + 12
    assert by_kw.input_shapes == ["x=(2, 6)", "y=(2, 6)"]


def test_not_a_module_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="needs a torch.nn.Module"):
        trace_flops(lambda x: x, torch.randn(1))


def test_wrong_input_shape_names_the_node_and_shapes() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(ShapeError) as err:
        trace_flops(model, torch.randn(1, 5, 8, 8))
    msg = str(err.value)
    assert "'0'" in msg and "(1, 5, 8, 8)" in msg and "What to do" in msg


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = Gate()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.gate(x))


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on a tensor value: fx cannot trace it
            return x * 2
        return x


def test_untraceable_root_names_the_module_and_line() -> None:
    with pytest.raises(CaptureError) as err:
        trace_flops(Gate(), torch.randn(2, 4), capture="fx")
    msg = str(err.value)
    assert "Gate" in msg and "test_core.py" in msg and "if x.sum() > 0" in msg
    assert "capture='dynamo'" in msg


def test_untraceable_submodule_becomes_a_leaf() -> None:
    report = trace_flops(DataDependent(), torch.randn(2, 4), capture="fx")
    assert report.capture == "fx (partial)"
    assert any("gate (Gate)" in note for note in report.notes)
    fc = next(n for n in report.nodes if n.module_path == "fc")
    assert fc.macs == 2 * 4 * 4


class Odd(nn.Module):
    def forward(self, x):
        return torch.special.bessel_j0(x)  # no rule for this one


def test_uncounted_op_warns_and_strict_raises() -> None:
    with pytest.warns(UserWarning, match="bessel_j0"):
        report = trace_flops(Odd(), torch.randn(3))
    assert [n.target for n in report.uncounted] == ["special_bessel_j0"]
    assert "uncounted" in report.summary()
    with pytest.raises(UncountedOpError, match="bessel_j0"):
        trace_flops(Odd(), torch.randn(3), strict=True)


class Attention(nn.Module):
    def __init__(self, d: int = 16):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention()
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.drop(self.attn(x))


def test_custom_rule_keeps_the_module_a_leaf() -> None:
    def attention_rule(call):
        b, l, d = call.args[0].shape
        return Cost(macs=100, flops=250)

    report = trace_flops(Net().eval(), torch.randn(2, 5, 16), custom_rules={Attention: attention_rule})
    attn = [n for n in report.nodes if n.module_path == "attn"]
    assert len(attn) == 1 and attn[0].kind == "call_module" and attn[0].params == 16 * 48 + 48
    assert (report.total_macs, report.total_flops) == (100, 250)


def test_custom_rule_may_return_macs_as_an_int() -> None:
    report = trace_flops(Net().eval(), torch.randn(2, 5, 16), custom_rules={Attention: lambda call: 7})
    assert (report.total_macs, report.total_flops) == (7, 14)


def test_ignore_by_class_function_and_name() -> None:
    model = Net().train()
    x = torch.randn(2, 5, 16)
    full = trace_flops(model, x)
    no_drop = trace_flops(model, x, ignore=[nn.Dropout])
    assert full.total_flops - no_drop.total_flops == 2 * 5 * 16
    no_softmax = trace_flops(model, x, ignore=["softmax"])
    assert full.total_flops - no_softmax.total_flops == 5 * 2 * 5 * 5
    no_matmul = trace_flops(model, x, ignore=["matmul"])
    assert full.total_macs - no_matmul.total_macs == 2 * (2 * 5 * 5 * 16)
    ignored = [n for n in no_drop.nodes if n.status == "ignored"]
    assert [n.module_path for n in ignored] == ["drop"]


def test_global_rule_decorator_registers_for_everyone() -> None:
    class Custom(nn.Module):
        def forward(self, x):
            return x.exp().exp()

    registry = fxflops.REGISTRY.copy()

    @fxflops.rule(Custom, op="custom", registry=registry)
    def custom(call):
        "3 FLOPs per element."
        return fxflops.elementwise(call.out.numel(), 3)

    report = trace_flops(nn.Sequential(Custom()), torch.randn(10), registry=registry)
    assert report.total_flops == 30 and report.by_op() == {"custom": {"count": 1, "macs": 0, "flops": 30}}
    assert fxflops.REGISTRY.for_module(Custom()) is None


class MaskedSum(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return y[y > 0].sum()  # boolean-mask indexing: the output size depends on the data


def test_data_dependent_shapes_fall_back_to_a_real_run() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4)
    report = trace_flops(MaskedSum(), x)
    assert report.shape_mode == "real"
    assert any("meta tensors failed" in n and "getitem" in n for n in report.notes)
    selected = next(n for n in report.nodes if n.op == "reduce")
    assert report.total_macs == 3 * 4 * 4 and selected.input_shapes[0][0] <= 12


def test_a_failing_rule_marks_the_node_uncounted() -> None:
    def broken(call):
        raise ValueError("cannot price this")

    with pytest.warns(UserWarning, match="could not be priced"):
        report = trace_flops(nn.Sequential(nn.Linear(2, 2)), torch.randn(1, 2), custom_rules={nn.Linear: broken})
    node = report.uncounted[0]
    assert "failed: ValueError: cannot price this" in node.reason


class SizeArithmetic(nn.Module):
    def forward(self, x):
        return x.view(x.size(0) * 2, -1) + 1


def test_shape_arithmetic_is_free_not_counted() -> None:
    report = trace_flops(SizeArithmetic(), torch.randn(4, 6))
    mul = next(n for n in report.nodes if n.op == "mul")
    add = next(n for n in report.nodes if n.op == "add")
    assert (mul.status, mul.flops) == ("free", 0) and "scalar" in mul.reason
    assert (add.status, add.flops) == ("counted", 24)


def test_lazy_modules_are_initialised_first() -> None:
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.Flatten(), nn.LazyLinear(8))
    report = trace_flops(model, torch.randn(2, 3, 6, 6))
    assert any("lazy" in n for n in report.notes)
    conv_macs = 2 * 4 * 4 * 4 * 3 * 9
    assert report.total_macs == conv_macs + 2 * 64 * 8
    assert report.total_params == 4 * 3 * 9 + 4 + 64 * 8 + 8
    with pytest.raises(ShapeError, match="lazy"):
        trace_flops(nn.Sequential(nn.LazyLinear(3)), torch.empty(1, 5, device="meta"))


@pytest.mark.parametrize("conv", [
    nn.Conv1d(3, 5, 4, stride=3, padding=2, dilation=2),
    nn.Conv2d(3, 5, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
    nn.Conv2d(3, 5, 3, padding="same"),
    nn.Conv2d(3, 5, 3, padding="valid", padding_mode="reflect"),
    nn.Conv3d(3, 5, 2, stride=2, padding=1),
])
def test_conv_output_shapes_computed_from_config_match_torch(conv: nn.Module) -> None:
    x = torch.randn(2, 3, *([9] * (conv.weight.dim() - 2)))
    report = trace_flops(nn.Sequential(conv), x)
    node = next(n for n in report.nodes if n.kind == "call_module")
    assert node.output_shapes == [tuple(conv(x).shape)]


class LoRALinear(nn.Linear):
    """A subclass with its own forward must not be priced as a plain nn.Linear."""

    def __init__(self, d: int, r: int):
        super().__init__(d, d)
        self.a = nn.Parameter(torch.zeros(r, d))
        self.b = nn.Parameter(torch.zeros(d, r))

    def forward(self, x):
        return super().forward(x) + (x @ self.a.t()) @ self.b.t()


class PlainSubclass(nn.Linear):
    pass


def test_subclass_overriding_forward_is_traced_through() -> None:
    report = trace_flops(nn.Sequential(LoRALinear(16, 2)), torch.randn(3, 16))
    linear, low_rank = 3 * 16 * 16, 3 * 16 * 2 + 3 * 2 * 16
    assert report.total_macs == linear + low_rank
    plain = trace_flops(nn.Sequential(PlainSubclass(16, 16)), torch.randn(3, 16))
    assert plain.total_macs == linear and plain.nodes[1].kind == "call_module"
