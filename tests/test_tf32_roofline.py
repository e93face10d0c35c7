"""float32 convolutions and matmuls run at the peak torch's TF32 switches give them (#20.6)."""
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
import torchvision

from fxflops import Device, trace_flops
from fxflops.devices import PRESETS

# compute-bound everywhere (a huge bandwidth), with round peaks: time = FLOPs / peak
DEV = Device({"fp32": 1e12, "tf32": 8e12, "bf16": 16e12}, bandwidth=1e18, name="round")


@pytest.fixture(autouse=True)
def torch_switches():
    saved = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    yield
    torch.backends.cudnn.allow_tf32 = saved[0]
    torch.set_float32_matmul_precision(saved[1])


class ConvLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, bias=False)  # 1×2×5×5 → 1×4×3×3: 36 outputs × 18 MACs = 648 MACs
        self.fc = nn.Linear(36, 10, bias=False)  # 360 MACs

    def forward(self, x):
        return torch.relu(self.fc(self.conv(x).flatten(1)))  # relu: 10 FLOPs


def test_defaults_conv_tf32_matmul_fp32():
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("highest")
    est = trace_flops(ConvLinear(), torch.randn(1, 2, 5, 5)).roofline(DEV)
    peaks = {n: e.peak for n, e in est.nodes.items() if e.flops}
    assert peaks == {"conv": "tf32", "fc": "fp32", "relu": "fp32"}
    assert est.nodes["conv"].time == pytest.approx(1296 / 8e12)
    assert est.nodes["fc"].time == pytest.approx(720 / 1e12)
    assert est.total_time == pytest.approx(1296 / 8e12 + 720 / 1e12 + 10 / 1e12)
    assert "| peak |" in est.top_table() and est.to_dict()["nodes"]["conv"]["peak"] == "tf32"


def test_switches_flip_each_family():
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("high")
    est = trace_flops(ConvLinear(), torch.randn(1, 2, 5, 5)).roofline(DEV)
    assert (est.nodes["conv"].peak, est.nodes["fc"].peak, est.nodes["relu"].peak) == ("fp32", "tf32", "fp32")
    assert est.total_time == pytest.approx(1296 / 1e12 + 720 / 8e12 + 10 / 1e12)


def test_fixed_fp32_as_and_other_dtypes():
    r = trace_flops(ConvLinear(), torch.randn(1, 2, 5, 5))
    assert replace(DEV, fp32_as="fp32").peak_key("float32", "conv") == "fp32"
    assert replace(DEV, fp32_as="tf32").peak_key("float32", "norm") == "tf32"
    assert r.roofline(replace(DEV, fp32_as="fp32")).total_time == pytest.approx((1296 + 720 + 10) / 1e12)
    assert DEV.peak_key("bfloat16", "conv") == "bf16"  # only float32 is redirected
    assert PRESETS["v100"].peak_key("float32", "conv") == "fp32"  # no TF32 figure: fp32


def test_resnet18_on_a100():
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("highest")
    r = trace_flops(torchvision.models.resnet18(weights=None).eval(), torch.randn(1, 3, 224, 224))
    est = r.roofline("a100")
    convs = [est.nodes[n.name] for n in r.nodes if n.op == "conv2d"]
    assert len(convs) == 20 and all(e.peak == "tf32" for e in convs)
    assert est.nodes["fc"].peak == "fp32" and est.main_peak == "tf32"
    assert est.total_time < r.roofline(replace(PRESETS["a100"], fp32_as="fp32")).total_time
