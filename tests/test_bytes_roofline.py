"""Bytes moved, arithmetic intensity and the roofline estimate, each against a hand count."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import fxflops
from fxflops import Device
from fxflops.passes.roofline import Bound
from tests.conftest import Fn, One, count, needs_dot, ops, only


def test_conv_bytes_are_input_output_and_weights():
    r = count(One(nn.Conv2d(3, 8, 3)), torch.randn(1, 3, 10, 10))
    conv = only(r, "conv2d")
    # in 1·3·10·10, out 1·8·8·8, weight 8·3·3·3 + bias 8, all float32 (4 bytes)
    assert conv.bytes == 4 * (300 + 512 + 216 + 8) == 4144
    macs = 8 * 8 * 8 * 27
    assert r.total_flops == 2 * macs + 512
    assert r.intensity == pytest.approx((2 * macs + 512) / 4144)


def test_linear_bytes_and_fp16_halves_them():
    x = torch.randn(2, 16)
    fp32 = count(One(nn.Linear(16, 4)), x)
    fp16 = count(One(nn.Linear(16, 4)).half(), x.half())
    # in 2·16, out 2·4, weight 16·4, bias 4
    assert only(fp32, "linear").bytes == 4 * (32 + 8 + 64 + 4) == 432
    assert only(fp16, "linear").bytes == 2 * (32 + 8 + 64 + 4) == 216
    assert fp16.total_flops == fp32.total_flops == 2 * 2 * 16 * 4 + 8
    assert fp16.intensity == pytest.approx(2 * fp32.intensity)


def test_matmul_and_elementwise_bytes():
    a, b = torch.randn(4, 8, 16), torch.randn(4, 16, 5)
    mm = only(count(Fn(lambda a, b: a @ b), a, b), "matmul")
    assert mm.bytes == 4 * (4 * 8 * 16 + 4 * 16 * 5 + 4 * 8 * 5)
    x = torch.randn(3, 7)
    add = only(count(Fn(lambda a, b: a + b), x, x.clone()), "add")
    assert add.bytes == 4 * 3 * (3 * 7)  # two inputs read, one output written
    sq = only(count(Fn(lambda a: a * a), x), "mul")
    assert sq.bytes == 4 * 2 * 21  # the same tensor is read once


def test_views_move_nothing_and_copies_move_what_they_copy():
    x = torch.randn(2, 3, 4)
    r = count(Fn(lambda a: a.permute(2, 0, 1).reshape(24).view(4, 6).contiguous()), x)
    by_target = {n.target: n.bytes for n in ops(r) if n.output_shapes}  # Fn's b=None check has no tensor
    # permute is a view; reshape of the permuted tensor must copy (read 24, write 24); view and the
    # contiguous of an already contiguous tensor are free
    assert by_target == {"permute": 0, "reshape": 4 * 2 * 24, "view": 0, "contiguous": 0}
    cat = only(count(Fn(lambda a, b: torch.cat([a, b], 1)), torch.randn(2, 3), torch.randn(2, 5)), "copy")
    assert cat.bytes == 4 * (6 + 10 + 16)
    cast = only(count(Fn(lambda a: a.half()), x), "cast")
    assert cast.bytes == 24 * 4 + 24 * 2  # read float32, write float16
    same = only(count(Fn(lambda a: a.float()), x), "cast")
    assert same.bytes == 0  # already float32: returns its input


def test_embedding_reads_only_the_rows_it_looks_up():
    ids = torch.zeros(2, 5, dtype=torch.long)
    emb = only(count(One(nn.Embedding(1000, 16)), ids), "embedding")
    assert emb.bytes == 8 * 10 + 2 * 4 * 10 * 16  # int64 ids + rows read + output written


def test_bytes_reach_modules_json_and_the_dynamo_path():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(2, 16)
    fx_r = fxflops.trace_flops(model, x, capture="fx")
    dy_r = fxflops.trace_flops(model, x, capture="dynamo")
    assert fx_r.total_bytes == dy_r.total_bytes == fx_r.modules[""].bytes
    lin0 = 4 * (32 + 64 + 16 * 32 + 32)
    assert fx_r.modules["0"].bytes == lin0
    assert fx_r.to_dict()["total_bytes"] == fx_r.total_bytes


# A made-up device with round numbers: 1000 FLOP/s in fp32, 4000 in fp16, 100 bytes/s, so the ridge point is
# at 10 FLOP/B (fp32) and 40 FLOP/B (fp16).
TOY = Device(peak_flops={"fp32": 1000.0, "fp16": 4000.0}, bandwidth=100.0, name="toy")


def _rec(name, flops, nbytes, dtype="float32", path="m"):
    return fxflops.NodeRecord(name, "call_function", "f", "f", fxflops.Status.COUNTED, fxflops.Cost(0, flops),
                              module_path=path, module_type="M", dtypes=[dtype], fwd_bytes=nbytes)


def test_roofline_times_on_both_sides_of_the_ridge():
    from fxflops.passes.roofline import estimate_node

    compute = estimate_node(_rec("a", 5000, 100), TOY)  # 50 FLOP/B > 10: 5000/1000 = 5 s vs 100/100 = 1 s
    assert (compute.time, compute.bound, compute.intensity) == (5.0, Bound.COMPUTE, 50.0)
    memory = estimate_node(_rec("b", 200, 400), TOY)  # 0.5 FLOP/B < 10: 0.2 s vs 4 s
    assert (memory.time, memory.bound) == (4.0, Bound.MEMORY)
    half = estimate_node(_rec("c", 5000, 100, "float16"), TOY)  # 50 > 40: 5000/4000 = 1.25 s vs 1 s
    assert (half.time, half.bound) == (1.25, Bound.COMPUTE)
    view = estimate_node(_rec("d", 0, 0), TOY)
    assert (view.time, view.bound) == (0.0, Bound.NONE)


def test_report_roofline_on_a_made_up_device():
    r = count(One(nn.Linear(16, 4)), torch.randn(2, 16))
    est = r.roofline(TOY)
    flops, nbytes = 2 * 2 * 16 * 4 + 8, 432  # 264 FLOPs, 432 bytes: 0.61 FLOP/B, memory-bound
    assert est.total_time == pytest.approx(max(flops / 1000, nbytes / 100)) == pytest.approx(4.32)
    assert est.modules["layer"].bound == Bound.MEMORY
    (rec, e), = est.top(1)
    assert rec.op == "linear" and e.time == pytest.approx(4.32)
    assert "4.32 s" in est.table(depth=1) and "memory" in est.table(depth=1)
    efficient = r.roofline(Device(1000.0, 100.0, memory_efficiency=0.5))  # a plain number: every dtype
    assert efficient.total_time == pytest.approx(8.64)


def test_device_presets_and_errors():
    a100 = fxflops.get_device("a100")
    assert a100.peak("float16") == 312e12 and a100.peak("float32") == 19.5e12
    assert a100.ridge("float32") == pytest.approx(19.5e12 / 2.039e12)
    assert all(d.source for d in fxflops.devices.PRESETS.values())
    with pytest.raises(fxflops.FxFlopsError, match="unknown device"):
        fxflops.get_device("a1000")
    with pytest.raises(fxflops.FxFlopsError, match="positive"):
        Device(peak_flops=0, bandwidth=1)


def test_cpu_calibration_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("FXFLOPS_CACHE", str(tmp_path))
    first = fxflops.devices.calibrate_cpu(seconds=0.05)
    assert first.peak() > 1e8 and first.bandwidth > 1e8  # any CPU of this century
    assert len(list(tmp_path.glob("cpu-*.json"))) == 1
    assert "best of 5 rounds" in first.source and "MiB copy" in first.source  # the spread is said, with the date
    again = fxflops.get_device("cpu")  # read back from the cache, not measured again, and saying so
    assert (again.peak(), again.bandwidth) == (first.peak(), first.bandwidth)
    assert again.source.startswith(first.source) and "read from the cache" in again.source
    assert "--recalibrate" in again.source
    fresh = fxflops.devices.calibrate_cpu(refresh=True, seconds=0.05)
    assert "read from the cache" not in fresh.source


def test_table_columns():
    r = count(One(nn.Linear(16, 4)), torch.randn(2, 16))
    default = r.table(depth=1)
    assert default == r.table(depth=1, columns=["params", "macs", "flops", "% flops"])
    assert "bytes" in r.table(depth=1, columns=["flops", "bytes", "intensity"])
    with pytest.raises(fxflops.FxFlopsError, match="unknown table column"):
        r.table(columns=["speed"])


def test_roofline_chart_is_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    import torchvision

    r = fxflops.trace_flops(torchvision.models.mobilenet_v3_small(weights=None).eval(), torch.randn(1, 3, 64, 64))
    est = r.roofline(TOY)
    out = est.plot(str(tmp_path / "roof.png"))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    svg = est.plot(str(tmp_path / "roof.svg"), level="module", depth=2).read_text()
    # one marker per module at depth 2 that computes and moves bytes, and the roof's two segments
    modules = [m for m in r.modules.values() if m.depth == 2 and m.flops and m.bytes]
    assert svg.count('id="PathCollection_') == len(modules)
    with pytest.raises(fxflops.FxFlopsError, match="level"):
        est.plot(str(tmp_path / "x.png"), level="layer")


def test_chart_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mpl(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    r = count(One(nn.Linear(16, 4)), torch.randn(2, 16))
    with pytest.raises(fxflops.FxFlopsError, match=r'pip install "fxflops\[plot\]"'):
        r.roofline(TOY).plot(str(tmp_path / "roof.png"))


def test_resnet18_bytes_agree_across_capture_paths_and_by_hand():
    import torchvision

    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    fx_r = fxflops.trace_flops(model, x, capture="fx")
    dy_r = fxflops.trace_flops(model, x, capture="dynamo")
    assert fx_r.total_bytes == dy_r.total_bytes
    conv1 = next(n for n in fx_r.nodes if n.name == "conv1")
    assert conv1.bytes == 4 * (3 * 224 * 224 + 64 * 112 * 112 + 64 * 3 * 7 * 7)  # no bias
    bn1 = next(n for n in fx_r.nodes if n.name == "bn1")
    assert bn1.bytes == 4 * (2 * 64 * 112 * 112 + 4 * 64)  # weight, bias, running mean and var; not the counter


def test_identity_and_eval_dropout_move_nothing():
    x = torch.randn(4, 8)
    model = nn.Sequential(nn.Identity(), nn.Dropout(0.1), nn.Linear(8, 8))
    r = fxflops.trace_flops(model.eval(), x)
    assert [n.bytes for n in ops(r)][:2] == [0, 0]
    train = fxflops.trace_flops(model.train(), x)
    assert [n.bytes for n in ops(train)][:2] == [0, 4 * 2 * 32]  # training dropout reads and writes


@needs_dot
def test_render_colours_by_time_and_bound(tmp_path):
    import re

    import torchvision

    from fxflops.draw import style

    block = torchvision.models.resnet.BasicBlock(64, 64).eval()
    r = fxflops.trace_flops(block, torch.randn(1, 64, 56, 56))
    est = r.roofline("a100")
    assert est.nodes["conv1"].bound == Bound.COMPUTE and est.nodes["bn1"].bound == Bound.MEMORY

    def fill(dot, name):
        return re.search(rf'^\s*{name} \[.*?fillcolor="(#[0-9a-fA-F]+)"', dot, re.M | re.S).group(1)

    bound = r.to_dot(depth=None, color="bound", device="a100")
    assert fill(bound, "conv1") == style.BOUND_FILLS["compute"] and fill(bound, "bn1") == style.BOUND_FILLS["memory"]
    assert "bound on a100" in bound
    time = r.to_dot(depth=None, color="time", device="a100")
    share = est.nodes["conv1"].time / est.total_time  # the costliest node: the top of the heat scale
    assert fill(time, "conv1") == style.heat(1.0) and f"({style.pct(share)}, compute)" in time
    assert fill(r.to_dot(depth=None), "conv1") == style.heat(1.0)  # FLOPs colouring stays the default
    assert r.render(str(tmp_path / "b.svg"), depth=None, color="bound", device="a100").read_text().startswith("<?xml")
    with pytest.raises(ValueError, match="color must be one of"):
        r.to_dot(depth=None, color="speed")


def test_reused_blocks_and_rerun_graphs_carry_their_source_bytes():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)

        def forward(self, x):
            return torch.relu(self.fc(x)) + x

    model = nn.Sequential(*[Block() for _ in range(4)]).eval()
    x = torch.randn(2, 16)
    fx_r = fxflops.trace_flops(model, x, capture="fx")
    dy_r = fxflops.trace_flops(model, x, capture="dynamo")
    assert any("@" in n.name for n in dy_r.nodes)  # three blocks are copies of the first
    per_block = 4 * (32 + 16 * 16 + 16 + 32) + 4 * 2 * 32 + 4 * 3 * 32  # linear, relu, add
    assert fx_r.total_bytes == dy_r.total_bytes == 4 * per_block
    assert [dy_r.modules[str(i)].bytes for i in range(4)] == [per_block] * 4


def test_a_measured_cuda_report_estimates_on_its_gpu_preset(monkeypatch):
    from fxflops.devices import preset_for

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert preset_for("cuda:0") == "h100" and preset_for("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA GeForce RTX 4090")
    assert preset_for("cuda") is None
    r = count(One(nn.Linear(4, 4)), torch.randn(1, 4))
    r.measured_on = "cuda:0"
    with pytest.raises(fxflops.FxFlopsError, match="pass device="):
        r.table(columns=["est_time"])
    assert "est. time" in r.table(columns=["est_time"], device="a100")
