"""Quantized models are priced as their float twins, their packed int8 weights counted as parameters and moved
at 1 byte per element (#20.4)."""
import warnings

import pytest
import torch
import torch.nn as nn
import torchvision

from fxflops import trace_flops


def dynamic_mlp() -> nn.Module:
    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "migrate to torchao" notice
        return torch.ao.quantization.quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)


@pytest.mark.parametrize("capture", ["fx", "record"])
def test_dynamic_linear_by_hand(capture):
    q = dynamic_mlp()
    state = {k: v for k, v in q.state_dict().items()}
    r = trace_flops(q, torch.randn(4, 16), capture=capture)
    # MACs 4·16·32 + 4·32·8; FLOPs 2·MACs + biases (128 + 32) + relu 128
    assert (r.total_macs, r.total_flops) == (3072, 6144 + 160 + 128)
    assert r.total_params == (16 * 32 + 32) + (32 * 8 + 8) == 808
    assert (r.modules["0"].params, r.modules["0"].macs, r.modules[""].params) == (544, 2048, 808)
    assert r.modules["0"].type == "Linear" and r.modules["2"].macs == 1024
    # layer 0 moves x (4·16·4 B) in, y (4·32·4 B) out, its int8 weight (512 B) and float bias (128 B)
    first = next(n for n in r.nodes if n.module_path == "0")
    assert first.op == "quantized_linear" and first.bytes == 256 + 512 + 512 + 128
    assert r.total_bytes == 1408 + (512 + 512) + (512 + 128 + 256 + 32)
    assert q.state_dict().keys() == state.keys()


def test_dynamo_that_captures_nothing_is_an_error_not_zero():
    """Dynamo runs the quantized kernels outside its graphs (they have no fake implementation): it captures no graph,
    which would read as 0 FLOPs. It is an error naming the paths that work; auto takes fx."""
    from fxflops import CaptureError

    q = dynamic_mlp()
    with pytest.raises(CaptureError, match="dynamo captured no graph of Sequential: .*use capture='record' or 'auto'"):
        trace_flops(q, torch.randn(4, 16), capture="dynamo")
    assert trace_flops(q, torch.randn(4, 16)).total_macs == 3072


@pytest.mark.slow
def test_static_quantized_resnet18_is_its_float_twin():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torchvision.models.quantization.resnet18(weights=None, quantize=True).eval()
    x = torch.randn(1, 3, 224, 224)
    float_macs = trace_flops(torchvision.models.resnet18(weights=None).eval(), x).total_macs
    for capture in ("fx", "record"):
        r = trace_flops(q, x, capture=capture)
        assert r.total_macs == float_macs == 1_814_073_344
        # the float model's 11,689,512 less the 4,800 batch-norm channels folded into the convolutions' biases
        assert r.total_params == 11_689_512 - 4_800
        assert r.modules["conv1"].type == "ConvReLU2d" and r.modules["conv1"].params == 64 * 3 * 49 + 64
        assert r.modules["fc"].macs == 512 * 1000


class PackedCall(nn.Module):
    """The quantized:: op called on its own, as the eager recorder sees it inside a quantized layer."""

    def __init__(self):
        super().__init__()
        self.packed = dynamic_mlp()[0]._packed_params._packed_params

    def forward(self, x):
        return torch.ops.quantized.linear_dynamic(x, self.packed)


@pytest.mark.parametrize("capture", ["fx", "record"])
def test_quantized_linear_op(capture):
    r = trace_flops(PackedCall(), torch.randn(4, 16), capture=capture)
    assert (r.total_macs, r.total_flops) == (4 * 16 * 32, 2 * 2048 + 4 * 32)
    assert [n.op for n in r.nodes if n.kind == "call_function"] == ["quantized_linear"]


class QuantizedResidual(nn.Module):
    """quantize → QFunctional.add_relu / add / mul / cat → dequantize, as a converted static-quantized model runs."""

    def __init__(self):
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.f = torch.ao.nn.quantized.QFunctional()

    def forward(self, x):
        q = torch.quantize_per_tensor(x, 0.1, 0, torch.quint8)
        y = self.f.add_relu(q, q)
        y = self.f.mul(self.f.add(y, q), q)
        return self.f.cat([y, q], 1).dequantize()


@pytest.mark.parametrize("capture", ["fx", "record"])
def test_quantized_functional_ops_by_hand(capture):
    r = trace_flops(QuantizedResidual(), torch.randn(2, 8), capture=capture)
    ops = {n.op: n for n in r.nodes if n.kind == "call_function" or n.kind == "call_method"}
    # 16 elements: quantize 4 each; add_relu 2, add 1, mul 1 each; cat free; dequantize of 32 elements 2 each
    assert ops["quantize"].flops == 4 * 16 and ops["dequantize"].flops == 2 * 32
    assert sorted(n.flops for n in r.nodes if n.op == "quantized_elementwise") == [16, 16, 32]
    assert ops["quantized_cat"].flops == 0 and str(ops["quantized_cat"].status) == "free"
    assert r.total_flops == 64 + 64 + 64 and not r.uncounted
