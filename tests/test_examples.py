"""Every script in examples/ runs, and the key number it prints matches a hand computation
(or torch's own FlopCounterMode where a hand count of a whole network would be a transcription).

The scripts run in-process (runpy, as ``__main__``) so the suite does not pay a torch import per example;
one of them also runs as a real subprocess to prove the ``python examples/NAME.py`` form works.
"""
from __future__ import annotations

import re
import runpy
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops
from conftest import needs_dot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, capsys, monkeypatch, *argv: str) -> str:
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *argv])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def ints(text: str) -> list[int]:
    return [int(s.replace(",", "")) for s in re.findall(r"\d[\d,]*", text)]


def conv_macs(c_out: int, h: int, w: int, c_in_per_group: int, k: int, n: int = 1) -> int:
    return n * c_out * h * w * c_in_per_group * k * k


def test_every_example_is_tested() -> None:
    tested = {"total_flops.py", "per_layer.py", "ignore_ops.py", "custom_rule.py", "conv_vs_depthwise.py",
              "batch_size.py", "simple_cnn_graph.py", "compare_variants.py", "training_mfu.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_total_flops_matches_torch_and_parameter_count(capsys, monkeypatch) -> None:
    out = run_example("total_flops.py", capsys, monkeypatch)
    model = torchvision.models.resnet18().eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    macs = ints(re.search(r"^MACs:\s+(\d+)", out, re.M).group(1))[0]
    params = ints(re.search(r"^params:\s+(\d+)", out, re.M).group(1))[0]
    assert macs == fc.get_total_flops() // 2
    assert params == sum(p.numel() for p in model.parameters())
    assert f"meta device: {macs} MACs (shapes: meta)" in out


def test_per_layer_top5_are_the_stem_and_the_first_stage_convs(capsys, monkeypatch) -> None:
    out = run_example("per_layer.py", capsys, monkeypatch)
    top = [ln for ln in out.splitlines() if re.match(r"^[1-5]\. ", ln)]
    assert len(top) == 5
    stem = conv_macs(64, 112, 112, 3, 7)  # 7×7/2 conv, 3→64, 224→112
    stage1 = conv_macs(64, 56, 56, 64, 3)  # 3×3 conv, 64→64 at 56×56
    assert top[0].split()[1] == "conv1" and f"MACs {stem:,}" in top[0] and f"FLOPs {2 * stem:,}" in top[0]
    assert all(f"MACs {stage1:,}" in ln and "layer1." in ln for ln in top[1:])
    assert "| conv2d " in out and "|   layer4 " in out


def test_ignore_ops_removes_exactly_the_activation_and_softmax_flops(capsys, monkeypatch) -> None:
    out = run_example("ignore_ops.py", capsys, monkeypatch)
    fc1 = 2 * 784 * 256 + 256  # 2·MACs + bias
    fc2 = 2 * 256 * 10 + 10
    relu, softmax = 256, 5 * 10  # 1 per element; softmax 5 per element (see docs/conventions.md)
    everything = fc1 + relu + relu + fc2 + softmax  # nn.ReLU, F.relu; dropout is the identity in eval
    lines = out.splitlines()
    assert ints(lines[0])[-1] == everything
    assert ints(lines[1].split(":", 1)[1])[0] == everything - relu
    assert ints(lines[2].split(":", 1)[1])[0] == fc1 + fc2
    assert f"MACs are unchanged: {784 * 256 + 2560} = {784 * 256 + 2560}" in out


def test_custom_rule_agrees_with_the_traced_layer(capsys, monkeypatch) -> None:
    out = run_example("custom_rule.py", capsys, monkeypatch)
    b, n, d = 2, 196, 256
    macs = 3 * b * n * d * d + 2 * b * n * n * d + b * n * d * d  # qkv, QKᵀ and AV, proj
    totals = [ints(ln.split(":", 1)[1])[0] for ln in out.splitlines()
              if ln.startswith(("traced through:", "custom_rules=:", "@fxflops.rule:"))]
    assert totals == [macs, macs, macs]
    assert f"op=my_attention MACs={macs:,}" in out
    assert "rule and trace agree on MACs: True" in out


def test_conv_vs_depthwise_hand_counts(capsys, monkeypatch) -> None:
    out = run_example("conv_vs_depthwise.py", capsys, monkeypatch)
    rows = [ln for ln in out.splitlines() if "MACs" in ln]
    macs = [int(re.search(r"MACs\s+([\d,]+)", ln).group(1).replace(",", "")) for ln in rows]
    flops = [int(re.search(r"FLOPs\s+([\d,]+)", ln).group(1).replace(",", "")) for ln in rows]
    standard = conv_macs(128, 112, 112, 64, 3)
    grouped = conv_macs(128, 112, 112, 1, 3)  # groups=64: each output channel sees one input channel
    separable = conv_macs(64, 112, 112, 1, 3) + conv_macs(128, 112, 112, 64, 1)
    assert macs == [standard, grouped, separable]
    out_elems = 128 * 112 * 112
    assert flops[0] == 2 * standard + 4 * out_elems + out_elems  # eval BatchNorm (affine): 4; ReLU: 1


def test_batch_size_scales_macs_not_params(capsys, monkeypatch) -> None:
    out = run_example("batch_size.py", capsys, monkeypatch)
    rows = {int(m.group(1)): (int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")))
            for m in re.finditer(r"batch\s+(\d+): MACs\s+([\d,]+).*params ([\d,]+)", out)}
    assert sorted(rows) == [1, 2, 8, 32, 256]
    one = rows[1][0]
    assert all(macs == b * one for b, (macs, _) in rows.items())
    assert len({p for _, p in rows.values()}) == 1


@needs_dot
def test_simple_cnn_counts_and_svg(capsys, monkeypatch, tmp_path) -> None:
    svg = tmp_path / "simple_cnn.svg"
    out = run_example("simple_cnn_graph.py", capsys, monkeypatch, str(svg))
    # 3×10×10 → conv 3×3 → 16×8×8 → conv 3×3 → 32×6×6 → 1152 → 120 → 84 → 10
    macs = conv_macs(16, 8, 8, 3, 3) + conv_macs(32, 6, 6, 16, 3) + 1152 * 120 + 120 * 84 + 84 * 10
    biases = 16 * 64 + 32 * 36 + 120 + 84 + 10
    relus = 16 * 64 + 32 * 36 + 120 + 84
    total = re.search(r"total\s+MACs\s+([\d,]+)\s+FLOPs\s+([\d,]+)", out)
    assert ints(total.group(1))[0] == macs
    assert ints(total.group(2))[0] == 2 * macs + biases + relus
    assert "25088" in out and "fc1" in out  # the article's 3×32×32 input: which node rejects which shape
    root = ET.parse(svg).getroot()
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "SimpleCNN" in texts and texts.count("Conv2d") == 2 and texts.count("Linear") == 3  # leaves by their class


def test_compare_variants_hand_deltas_batch_and_formula(capsys, monkeypatch) -> None:
    out = run_example("compare_variants.py", capsys, monkeypatch)
    standard = conv_macs(128, 112, 112, 64, 3)
    grouped = conv_macs(128, 112, 112, 1, 3)
    separable = conv_macs(64, 112, 112, 1, 3) + conv_macs(128, 112, 112, 64, 1)
    line = next(ln for ln in out.splitlines() if ln.startswith("groups=64: MACs"))
    assert f"MACs {grouped:,} ({grouped - standard:+,})" in line
    assert f"({2 * (grouped - standard):+,})" in line  # FLOPs: norm and ReLU unchanged
    assert f"params {128 * 9 + 2 * 128:,} ({128 * 9 - 128 * 64 * 9:+,})" in line  # conv weights + BN affine
    line = next(ln for ln in out.splitlines() if ln.startswith("depthwise-separable: MACs"))
    assert f"MACs {separable:,} ({separable - standard:+,})" in line
    assert "only in C: 6 modules" in out and "| `0` | Conv2d | 925M | 14.5M |" in out
    assert "every one of 68 modules exactly x8: True" in out
    layers, d, vocab = 4, 64, 1000  # per token: qkv 3d², proj d², MLP 8d² per layer, head d·V; QKᵀ, AV: 2·T²·d
    assert f"MACs(T) = {12 * layers * d * d + d * vocab:,}·T + {2 * layers * d}·T²" in out
    m = re.search(r"from the formula: ([\d,]+); traced: ([\d,]+)", out)
    assert m.group(1) == m.group(2)


def test_an_example_runs_as_a_script(tmp_path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "conv_vs_depthwise.py")], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"MACs {conv_macs(128, 112, 112, 64, 3):>12,}" in done.stdout


def test_training_mfu_step_flops_and_utilisation(capsys, monkeypatch) -> None:
    """The printed step FLOPs are trace_flops' count of that batch; HFU exceeds MFU by the recompute exactly."""
    import transformers as T

    out = run_example("training_mfu.py", capsys, monkeypatch)
    cfg = T.GPT2Config(n_layer=2, n_embd=128, n_head=2, vocab_size=512, n_positions=64)
    torch.manual_seed(0)
    model = T.GPT2LMHeadModel(cfg).train()
    ids = torch.randint(0, cfg.vocab_size, (4, 64))
    plain = trace_flops(model, {"input_ids": ids, "labels": ids}, mode="train").total_flops
    steps = [ints(line)[0] for line in out.splitlines() if line.startswith("gradient checkpointing")]
    assert steps[0] == plain and steps[1] > plain
    assert re.search(r"MFU \d+\.\d%", out) and "HFU" in out and "6·N·T" in out
