"""A torch.compile'd model is analysed through the module it wraps, with a note saying so (#20.9)."""
import warnings

import torch
import torchvision

from fxflops import trace_flops


def test_compiled_resnet_reads_as_the_model():
    m = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    plain = trace_flops(m, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "global hooks" warning must not leak
        r = trace_flops(torch.compile(m), x)
    assert r.total_macs == plain.total_macs == 1_814_073_344
    assert r.total_params == plain.total_params == 11_689_512
    assert r.model_name == "ResNet" and r.capture == plain.capture == "fx"
    assert not any("_orig_mod" in p for p in r.modules) and r.modules[""].type == "ResNet"
    assert [row.path for row in r.modules.values() if row.depth == 1] == \
        ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    assert any("torch.compile" in n and "_orig_mod" in n for n in r.notes)
    assert not any("torch.compile" in n for n in plain.notes)
