"""The dynamo capture path on small models whose costs can be computed by hand, and its agreement with fx."""
from __future__ import annotations

import pytest
import timm
import torch
import torch.nn as nn
from torch._subclasses.fake_tensor import fake_tensor_tls
from torch.utils.flop_counter import FlopCounterMode

from fxflops import CaptureError, ShapeError, trace_flops
from fxflops.capture.dynamo import capture_dynamo
from fxflops.passes.costs import Counting
from fxflops.pipeline.annotate import annotate_records as count_capture
from fxflops.rules.registry import REGISTRY

D = 8


class Block(nn.Module):
    def __init__(self, d: int = D):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        return self.norm(x + torch.relu(self.fc(x)))


class Stack(nn.Module):
    """Four identical blocks and a head: fx-traceable, so both paths can be compared."""

    def __init__(self, n: int = 4):
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(n))
        self.head = nn.Linear(D, 3, bias=False)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def block_cost(rows: int) -> tuple[int, int]:
    """(MACs, FLOPs) of Block on ``rows`` rows, by hand: linear with bias, relu, residual add, affine layer norm."""
    macs = rows * D * D
    flops = 2 * macs + rows * D + rows * D + rows * D + rows * D * (5 + 2)
    return macs, flops


def test_dynamo_matches_hand_count_and_fx_module_by_module() -> None:
    model = Stack()
    x = torch.randn(2, 5, D)
    fx_r = trace_flops(model, x, capture="fx", strict=True)
    dy_r = trace_flops(model, x, capture="dynamo", strict=True)
    macs, flops = block_cost(10)
    assert dy_r.capture == "dynamo" and fx_r.capture == "fx"
    assert dy_r.total_macs == 4 * macs + 10 * D * 3
    assert dy_r.total_flops == 4 * flops + 2 * 10 * D * 3
    # the per-module table reads the same: plain module paths, not dynamo's L['self'] sources
    rows = lambda r: {p: (m.params, m.macs, m.flops) for p, m in r.modules.items()}  # noqa: E731
    assert rows(dy_r) == rows(fx_r)
    assert dy_r.modules["blocks.2.fc"].macs == macs
    assert dy_r.total_params == sum(p.numel() for p in model.parameters())


def test_parameters_become_model_attributes_and_count_once() -> None:
    model = Stack()
    cap = capture_dynamo(model, (torch.randn(1, D),), reuse_blocks=False)
    gm = cap.graphs[0]
    attrs = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    assert "blocks.0.fc.weight" in attrs and "head.weight" in attrs
    assert gm.get_parameter("blocks.0.fc.weight") is model.blocks[0].fc.weight  # the model's own tensor
    nodes = count_capture(cap, Counting(REGISTRY))
    assert sum(n.params for n in nodes) == sum(p.numel() for p in model.parameters())


def test_repeated_blocks_are_traced_once_and_reused() -> None:
    model = Stack(n=6)
    x = torch.randn(3, D)
    reused = capture_dynamo(model, (x,))
    plain = capture_dynamo(model, (x,), reuse_blocks=False)
    assert [(r.path, r.source) for r in reused.reused] == [(f"blocks.{i}", "blocks.0") for i in range(1, 6)]
    linears = [n for n in reused.graphs[0].graph.nodes if "linear" in str(n.target)]
    assert len(linears) == 2  # blocks.0.fc and the head: blocks 1-5 were never traced
    a, b = count_capture(reused, Counting(REGISTRY)), count_capture(plain, Counting(REGISTRY))
    assert sum(n.macs for n in a) == sum(n.macs for n in b) == 6 * 3 * D * D + 3 * D * 3
    assert sum(n.flops for n in a) == sum(n.flops for n in b)
    per_path = lambda ns: sorted((n.module_path, n.op, n.macs, n.flops) for n in ns if n.status == "counted")  # noqa: E731
    assert per_path(a) == per_path(b)


class Indexed(nn.Module):
    """Same class and weights shape, but odd blocks do an extra matmul: they must not stand in for each other."""

    def __init__(self, idx: int):
        super().__init__()
        self.idx = idx
        self.fc = nn.Linear(D, D, bias=False)

    def forward(self, x):
        y = self.fc(x)
        return y @ self.fc.weight if self.idx % 2 else y


class IndexedStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(Indexed(i) for i in range(4))

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def test_blocks_that_compute_differently_are_not_reused() -> None:
    r = trace_flops(IndexedStack(), torch.randn(5, D), capture="dynamo")
    assert r.total_macs == 4 * 5 * D * D + 2 * 5 * D * D
    assert r.modules["blocks.3"].macs == 2 * 5 * D * D and r.modules["blocks.2"].macs == 5 * D * D


def helper(x, w):
    y = x @ w
    torch._dynamo.graph_break()  # the helper becomes its own frame, compiled once and run three times
    return y @ w


class Loop(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(D, D))

    def forward(self, x):
        for _ in range(3):
            x = helper(x, self.w)
        return x


def test_graph_breaks_combine_and_rerun_graphs_count_each_run() -> None:
    x = torch.randn(4, D)
    r = trace_flops(Loop(), x, capture="dynamo", strict=True)
    assert r.total_macs == 3 * 2 * 4 * D * D
    assert len(r.graph_modules) > 1 and r.graph_module is r.graph_modules[0]
    assert any("graphs at graph breaks" in n for n in r.notes)
    with FlopCounterMode(display=False) as fc:
        Loop()(x)
    assert fc.get_total_flops() // 2 == r.total_macs


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on a value: fx cannot trace it, and meta tensors cannot decide it
            return x * 2
        return x


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = Gate()
        self.fc = nn.Linear(4, 4, bias=False)

    def forward(self, x):
        return self.fc(self.gate(x))


def test_untraceable_leaf_is_counted_by_recording_its_call() -> None:
    x = torch.ones(2, 4)  # sum > 0: the gate multiplies
    r = trace_flops(Gated(), x, strict=True)
    assert r.capture == "fx (partial)"
    gate = next(n for n in r.nodes if n.module_path == "gate" and n.kind == "call_module")
    assert gate.status == "counted" and gate.reason.startswith("counted by recording its call")
    assert gate.flops == 8 + 1 + 8  # sum over 8 elements, the comparison, x * 2
    assert r.total_macs == 2 * 4 * 4
    assert any("gate (Gate)" in n and "counted it by recording its call" in n for n in r.notes)


@torch.fx.wrap
def scores(q, k):
    return (q @ k.transpose(-2, -1)).softmax(-1)


class TwoWrapped(nn.Module):
    def forward(self, q, k):
        return scores(q, k) + scores(k, q)


def test_fx_wrapped_function_is_recorded_once_per_shape(monkeypatch) -> None:
    import fxflops.pipeline.opaque as fallback

    calls = []
    real = fallback.capture_record
    monkeypatch.setattr(fallback, "capture_record", lambda *a, **k: calls.append(1) or real(*a, **k))
    q = torch.randn(2, 6, D)
    r = trace_flops(TwoWrapped(), (q, q.clone()), capture="fx", strict=True)
    wrapped = [n for n in r.nodes if n.target == "scores"]
    assert [n.status for n in wrapped] == ["counted", "counted"]
    assert all(n.macs == 2 * 6 * 6 * D and n.flops == 2 * n.macs + 5 * 2 * 6 * 6 for n in wrapped)
    assert len(calls) == 1  # same input shapes: captured once, memoised
    assert any("scores" in n and "by recording its call" in n for n in r.notes)


def test_an_opaque_leaf_that_cannot_be_recorded_goes_through_dynamo(monkeypatch) -> None:
    import fxflops.pipeline.opaque as fallback
    from fxflops import CaptureError

    def refuse(*a, **k):
        raise CaptureError("could not record it")

    monkeypatch.setattr(fallback, "capture_record", refuse)
    q = torch.randn(2, 6, D)
    r = trace_flops(TwoWrapped(), (q, q.clone()), capture="fx", strict=True)
    wrapped = [n for n in r.nodes if n.target == "scores"]
    assert all(n.reason.startswith("counted through dynamo") and n.macs == 2 * 6 * 6 * D for n in wrapped)
    assert any("scores" in n and "through dynamo" in n for n in r.notes)


def test_auto_falls_back_to_the_recorder_with_a_one_line_reason() -> None:
    r = trace_flops(Gate(), torch.ones(3, 4))
    assert r.capture == "record" and r.shape_mode == "real"
    assert r.notes[0].startswith("fx could not trace <root> (Gate)") and r.notes[0].endswith("used record")
    assert any("counts the branch this example took" in n for n in r.notes)
    assert "\n" not in r.notes[0] and "if x.sum() > 0" in r.notes[0]
    assert r.total_flops == 12 + 1 + 12


def test_dynamo_counts_the_branch_the_example_takes_too() -> None:
    r = trace_flops(Gate(), torch.ones(3, 4), capture="dynamo")
    assert r.capture == "dynamo" and r.shape_mode == "real"
    assert r.total_flops == 12 + 1 + 12


def test_both_paths_failing_give_one_error_naming_each() -> None:
    x = torch.ones(3, 4, device="meta")  # a value-dependent branch on meta: no path can decide it
    with pytest.raises(CaptureError) as err:
        trace_flops(Gate(), x)
    msg = str(err.value)
    assert "any path" in msg and "\n  fx: <root> (Gate)" in msg and "\n  dynamo: Gate on meta tensors" in msg
    assert "\n  record: Gate on meta tensors" in msg


def test_shape_errors_are_not_hidden_by_the_fallback() -> None:
    with pytest.raises(ShapeError):
        trace_flops(Stack(), torch.randn(2, D + 1))


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D, bias=False)

    def forward(self, x, mask=None, scale=None):
        y = self.fc(x)
        if mask is not None:
            y = y * mask
        return y if scale is None else y * scale


@pytest.mark.parametrize("capture", ["fx", "dynamo"])
def test_keyword_examples_work_on_both_paths(capture: str) -> None:
    x, mask = torch.randn(2, D), torch.ones(2, D)
    r = trace_flops(Masked(), {"x": x, "mask": mask}, capture=capture, strict=True)
    assert r.capture == capture
    assert r.total_macs == 2 * D * D and r.total_flops == 2 * 2 * D * D + 2 * D


def test_real_model_is_captured_on_meta_and_left_untouched() -> None:
    model = Stack()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = trace_flops(model, torch.randn(2, D), capture="dynamo")
    assert r.shape_mode == "meta"
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert "forward" not in vars(model.blocks[1])  # the reuse stub is gone


def test_dynamo_state_and_config_do_not_leak() -> None:
    limit = torch._dynamo.config.recompile_limit
    trace_flops(Stack(), torch.randn(2, D), capture="dynamo")
    assert torch._dynamo.config.recompile_limit == limit
    assert fake_tensor_tls.allow_non_fake_inputs_override is None
    assert not torch.compiler.is_compiling()


def test_timm_model_with_shape_dependent_control_flow() -> None:
    """mobilevit's blocks branch on the feature-map size (``if new_h != H``): fx traces the rest and keeps those
    blocks as leaves, whose calls are recorded; the total matches torch's counter on the same meta input."""
    with torch.device("meta"):
        model = timm.create_model("mobilevit_xxs", pretrained=False).eval()
    x = torch.zeros(1, 3, 64, 64, device="meta")
    r = trace_flops(model, x, strict=True)
    assert r.capture == "fx (partial)" and len([n for n in r.notes if "counted it by recording its call" in n]) == 3
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    assert r.total_macs == fc.get_total_flops() // 2


class Recurrent(nn.Module):
    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)


@pytest.mark.parametrize("rnn, x", [
    (nn.LSTM(8, 16, num_layers=2, batch_first=True, bidirectional=True, proj_size=4), torch.randn(2, 5, 8)),
    (nn.GRU(8, 16, bias=False), torch.randn(5, 2, 8)),
    (nn.RNN(8, 16, nonlinearity="relu", num_layers=3), torch.randn(5, 8)),
    (nn.LSTMCell(8, 16), torch.randn(3, 8)),
], ids=["lstm", "gru", "rnn", "lstm_cell"])
def test_recurrent_layers_cost_the_same_on_both_paths(rnn: nn.Module, x: torch.Tensor) -> None:
    """fx keeps nn.LSTM whole and prices it by its module rule; dynamo records torch.lstm & co. with the flat weights."""
    model = Recurrent(rnn).eval()
    fx_r = trace_flops(model, x, capture="fx", strict=True)
    dy_r = trace_flops(model, x, capture="dynamo", strict=True)
    assert (dy_r.total_macs, dy_r.total_flops) == (fx_r.total_macs, fx_r.total_flops) and fx_r.total_macs > 0
    with FlopCounterMode(display=False) as fc:
        model(x)
    assert dy_r.total_macs == fc.get_total_flops() // 2


class Packed(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)

    def forward(self, x):
        packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 3]), batch_first=True)
        return self.lstm(packed)[1][0]


def test_work_dynamo_runs_outside_its_graphs_is_reported_not_hidden() -> None:
    """Dynamo does not trace packed sequences: the LSTM runs eagerly between graphs, where no rule sees it.
    The eager probe's FlopCounterMode total exposes the gap instead of a silent zero."""
    model, x = Packed().eval(), torch.randn(2, 5, 8)
    with FlopCounterMode(display=False) as fc:
        model(x)
    missing = fc.get_total_flops() // 2
    with pytest.warns(UserWarning, match=f"{missing:,} MACs that FlopCounterMode counts in an eager run are missing"):
        r = trace_flops(model, x, capture="dynamo")
    assert r.total_macs + missing == fc.get_total_flops() // 2
    assert r.notes[-1].endswith("in lstm")


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D, D)

    def forward(self, x):
        return (self.q(x) @ x.transpose(-2, -1)).softmax(-1) @ x


class Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(Attention(), nn.Linear(D, D)) for _ in range(3))

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


@pytest.mark.parametrize("capture", ["fx", "dynamo"])
def test_custom_module_rules_are_applied_on_both_paths(capture: str) -> None:
    """A module class with a custom rule is kept whole on both paths (dynamo stubs it and prices the call it saw)."""
    from fxflops import Cost

    seen = []

    def attention_rule(call):
        seen.append(tuple(call.args[0].shape))
        return Cost(1000, 3000)

    x = torch.randn(2, 4, D)
    r = trace_flops(Blocks(), x, capture=capture, custom_rules={Attention: attention_rule}, strict=True)
    linear = 2 * 4 * D * D
    assert r.total_macs == 3 * (1000 + linear)
    assert r.total_flops == 3 * (3000 + 2 * linear + 2 * 4 * D)
    assert [r.modules[f"blocks.{i}.0"].macs for i in range(3)] == [1000] * 3
    assert set(seen) == {(2, 4, D)}
    assert sum(n.params for n in r.nodes) == r.total_params == sum(p.numel() for p in Blocks().parameters())


class Checkpointed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)

    def forward(self, x):
        return torch.utils.checkpoint.checkpoint(lambda y: self.fc(y).relu(), x, use_reentrant=False)


def test_higher_order_op_is_priced_by_its_subgraph() -> None:
    """Activation checkpointing becomes one tag_activation_checkpoint node holding the wrapped graph."""
    r = trace_flops(Checkpointed(), torch.randn(4, D), capture="dynamo", strict=True)
    hop = next(n for n in r.nodes if n.target == "tag_activation_checkpoint")
    assert hop.macs == 4 * D * D and hop.flops == 2 * 4 * D * D + 4 * D + 4 * D  # linear, bias, relu
    assert r.total_macs == hop.macs and r.total_params == D * D + D


class UsesShared(nn.Module):
    def __init__(self, shared: nn.Module):
        super().__init__()
        self.fc = nn.Linear(D, D, bias=False)
        self.shared = shared  # the same module in every block (as CoaT shares its conv position encoding)

    def forward(self, x):
        return self.shared(self.fc(x))


class SharedStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(D, D, bias=False)
        self.blocks = nn.ModuleList(UsesShared(self.shared) for _ in range(3))

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def test_reused_blocks_copy_the_work_of_a_module_they_share() -> None:
    x = torch.randn(5, D)
    r = trace_flops(SharedStack(), x, capture="dynamo", strict=True)
    assert any("reused its counted graph for 2" in n for n in r.notes)
    assert r.total_macs == 3 * 2 * 5 * D * D
    assert r.modules["shared"].macs == 3 * 5 * D * D  # the shared module ran once per block
    assert r.total_params == 4 * D * D


class GatedNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.gate = Gate()

    def forward(self, x):
        return self.gate(self.bn(x))


def test_a_real_run_leaves_the_models_buffers_as_they_were() -> None:
    """A value-dependent branch forces a real run; in training mode it would update the running statistics."""
    model = GatedNorm().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = trace_flops(model, torch.randn(6, 4) + 3, capture="dynamo")
    assert r.shape_mode == "real"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
