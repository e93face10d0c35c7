"""MFU and HFU from exact counts: hand-computed with and without activation checkpointing, per device and global,
beside Lightning's Throughput, and on a real model (HF BERT with gradient checkpointing)."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxflops
from fxflops import Device, FxFlopsError, utilization
from fxflops.report.utilization import recompute_flops
from test_checkpointing import B, D, LIN, Checkpointed  # the hand-counted model of the checkpointing tests

# Forward FLOPs by hand: Linear(8, 16) on 4 rows 2·512 + 64 bias adds = 1088, ReLU 64, Linear(16, 8) 1024 + 32 = 1056;
# two blocks: 4416. Backward (x needs no gradient): the first Linear only its weight gradient, 1024 + 64 for the bias
# gradient = 1088; each ReLU 2 per element = 128; each later Linear grad-input and grad-weight, 2048 + its bias
# gradient: 2080, 2112, 2080. Backward 7616, step 12,032.
STEP = 4416 + 1088 + 128 + 2080 + 2112 + 128 + 2080
# Non-reentrant checkpointing stops its recompute at ReLU's output (what Linear b saves): Linear a and ReLU run
# again, 1088 + 64 per block.
RECOMPUTE = 2 * (1088 + 64)
PEAK, SECONDS = 2e8, 1e-4  # FLOP/s of a made-up device, and a step time: the denominator is 20,000 FLOPs
ROOF = Device(peak_flops={"fp32": PEAK, "bf16": 4 * PEAK}, bandwidth=1e9, name="toy", source="made up for the test")


def blocks(checkpoint: bool) -> nn.Module:
    """Two Linear(8, 16) → ReLU → Linear(16, 8) blocks, each non-reentrantly checkpointed or not."""
    return Checkpointed(False if checkpoint else None)


def train_report(model: nn.Module, example, capture: str = "auto") -> fxflops.Report:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fxflops.trace_flops(model.train(), example, mode="train", capture=capture)


@pytest.mark.parametrize("capture", ["fx", "record", "dynamo"])
def test_mfu_leaves_the_recompute_out_and_hfu_counts_it(capture):
    x = torch.randn(B, D)
    plain = utilization(train_report(blocks(False), x, capture=capture), SECONDS, ROOF)
    ckpt = utilization(train_report(blocks(True), x, capture=capture), SECONDS, ROOF)
    assert (plain.model_flops, plain.hardware_flops) == (STEP, STEP)
    assert (ckpt.model_flops, ckpt.hardware_flops, ckpt.recompute_flops) == (STEP, STEP + RECOMPUTE, RECOMPUTE)
    assert plain.mfu == plain.hfu == ckpt.mfu == STEP / 20_000 == 0.6016
    assert ckpt.hfu == (STEP + RECOMPUTE) / 20_000 == 0.7168
    assert ckpt.hfu - ckpt.mfu == pytest.approx(RECOMPUTE / 20_000)  # 0.1152: exactly the recompute share


@pytest.mark.parametrize("capture", ["fx", "record"])
@pytest.mark.parametrize("reentrant, x_grad, again",
                         [(True, True, 4 * LIN), (False, True, 2 * LIN), (False, False, 2 * LIN)])
def test_the_recompute_comes_out_whatever_needs_a_gradient(capture, reentrant, x_grad, again):
    """A reentrant region runs all of itself again (two Linears per block), a non-reentrant one stops after the
    first Linear; an input that needs a gradient (not kept on an fx graph) changes what the backward computes, not
    what the model needs: the step without recompute is the plain step, to the unit."""
    x = torch.randn(B, D, requires_grad=x_grad)
    ckpt = train_report(Checkpointed(reentrant), x, capture=capture)
    plain = train_report(Checkpointed(None), x, capture=capture)
    again_macs = ckpt.total_macs - plain.total_macs
    assert again_macs == again
    assert ckpt.total_flops - recompute_flops(ckpt) == plain.total_flops


def test_the_string_states_the_conventions():
    u = utilization(train_report(blocks(True), torch.randn(B, D)), SECONDS, ROOF)
    s = str(u)
    assert "MFU 60.2%" in s and "HFU 71.7%" in s and "2,304 recompute FLOPs" in s
    assert "recompute excluded" in s and "dense fp32 peak of toy" in s and "\n" not in s
    d = u.to_dict()
    assert d["mfu"] == u.mfu and d["source"] == "made up for the test" and d["recompute_flops"] == RECOMPUTE


def test_per_device_and_global_throughput_by_hand():
    r = train_report(blocks(False), torch.randn(B, D))
    u = utilization(r, SECONDS, ROOF, n_devices=2)  # the report is one device's batch
    assert u.flops_per_second_per_device == STEP / SECONDS == 120_320_000
    assert u.flops_per_second == 2 * STEP / SECONDS
    assert u.mfu == 0.6016  # per device: the other device's work is over its own peak
    g = utilization(r, SECONDS, ROOF, n_devices=2, batch="global")  # the report is both devices' batch together
    assert g.model_flops == STEP // 2 and g.mfu == 0.3008 and g.flops_per_second == STEP / SECONDS
    acc = utilization(r, 4 * SECONDS, ROOF, micro_batches=4)  # gradient accumulation: 4 micro-batches per step
    assert acc.model_flops == 4 * STEP and acc.mfu == 0.6016
    assert utilization(r, SECONDS, ROOF, dtype="bf16").mfu == 0.6016 / 4


def test_beside_lightning_throughput():
    """Lightning's Throughput takes one device's FLOPs per batch (it multiplies them by the world size for the
    global figure): given ours and the same step times, its per-device and global FLOP/s and its MFU are ours."""
    from lightning.fabric.utilities.throughput import Throughput

    u = utilization(train_report(blocks(False), torch.randn(B, D)), SECONDS, ROOF, n_devices=2)
    t = Throughput(available_flops=PEAK, world_size=2, window_size=2)
    for k in (1, 2):  # two steps of SECONDS each, one device's batch of B samples
        t.update(time=k * SECONDS, batches=k, samples=k * B, flops=STEP)
    theirs = t.compute()
    assert theirs["device/flops_per_sec"] == pytest.approx(u.flops_per_second_per_device, rel=1e-12)
    assert theirs["flops_per_sec"] == pytest.approx(u.flops_per_second, rel=1e-12)  # 2 × 120,320,000
    assert theirs["device/mfu"] == pytest.approx(u.mfu, rel=1e-12) == 0.6016


class Attention(nn.Module):
    def __init__(self, d: int = 16):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)

    def forward(self, x):
        q, k, v = self.qkv(x).unflatten(-1, (3, 2, -1)).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_causal_attention_counts_half_of_the_fused_attention():
    r = train_report(Attention(), torch.randn(2, 32, 16))
    sdpa = [n for n in r.nodes if n.op == "scaled_dot_product_attention"]
    assert len(sdpa) == 1 and sdpa[0].flops > 0
    graph = utilization(r, 1.0, ROOF)
    causal = utilization(r, 1.0, ROOF, attention="causal")
    assert graph.model_flops == r.total_flops
    assert causal.model_flops == r.total_flops - sdpa[0].flops // 2
    assert causal.model_flops == graph.model_flops - causal.attention_flops_dropped
    assert "causal attention counted half" in str(causal)
    with pytest.raises(FxFlopsError, match="no scaled_dot_product_attention"):
        utilization(train_report(blocks(False), torch.randn(B, D)), SECONDS, ROOF, attention="causal")


def test_bad_arguments_say_what_to_do():
    r = train_report(blocks(False), torch.randn(B, D))
    for kwargs, msg in [({"step_seconds": 0}, "step_seconds must be positive"),
                        ({"step_seconds": 1.0, "n_devices": 0}, "n_devices"),
                        ({"step_seconds": 1.0, "attention": "sliding"}, "attention must be"),
                        ({"step_seconds": 1.0, "batch": "node"}, "batch must be"),
                        ({"step_seconds": 1.0, "device": "tpu9"}, "unknown device")]:
        with pytest.raises(FxFlopsError, match=msg):
            utilization(r, **kwargs)
    with pytest.warns(UserWarning, match="above 100%"):
        utilization(r, 1e-9, ROOF)


def test_hugging_face_gradient_checkpointing_separates_exactly():
    """A real model: BERT's gradient checkpointing (recorded capture) adds recompute to the backward; MFU's model FLOPs
    are the step without checkpointing, to the unit."""
    import transformers as T

    torch.manual_seed(0)
    cfg = T.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                       vocab_size=100)
    model = T.BertForMaskedLM(cfg)
    ids = {"input_ids": torch.randint(0, 100, (2, 16))}
    plain = train_report(model, ids)
    (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    ckpt = train_report(model, ids)
    assert ckpt.total_flops > plain.total_flops
    assert ckpt.total_flops - recompute_flops(ckpt) == plain.total_flops
    u = utilization(ckpt, 0.01, "h100", n_devices=8, dtype="bf16")
    assert u.model_flops == plain.total_flops and u.peak == 989.4e12 and u.hfu > u.mfu


def test_presets_carry_dense_peaks_memory_and_source():
    presets = fxflops.devices.PRESETS
    for key in ("a100", "a100-40gb", "h100", "h100-pcie", "h200", "b200", "l4", "l40s", "mi300x"):
        d = presets[key]
        assert d.memory > 0 and d.source and d.peak_flops["bf16"] > d.peak_flops["fp32"]
    assert presets["a100"].memory == 80e9 and presets["a100-40gb"].memory == 40e9
    assert presets["h100"].peak_flops["bf16"] == 989.4e12  # SXM, dense (1,979 with sparsity)
    assert presets["h100-pcie"].peak_flops["bf16"] == 756e12


@pytest.mark.parametrize("gpu, preset", [("NVIDIA A100-SXM4-40GB", "a100-40gb"), ("NVIDIA A100 80GB PCIe", "a100"),
                                         ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H100 PCIe", "h100-pcie"),
                                         ("NVIDIA L40S", "l40s"), ("NVIDIA L4", "l4"), ("NVIDIA H200", "h200"),
                                         ("AMD Instinct MI300X", "mi300x"), ("NVIDIA GeForce RTX 4090", None)])
def test_the_callbacks_find_the_preset_of_a_gpu_by_its_name(gpu, preset):
    assert fxflops.devices.preset_named(gpu) == preset
