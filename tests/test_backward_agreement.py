"""Backward MACs against FlopCounterMode on a real ``loss.backward()``: it counts the backward kernels autograd
runs (``convolution_backward`` with its output mask, the two ``mm`` of a linear's gradient), so its backward
contraction FLOPs / 2 must equal fxflops' backward MACs, which are decided from the graph without running."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torchvision
import transformers as T
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops


def measured_backward_macs(model: nn.Module, example: dict) -> tuple[int, int]:
    """(forward MACs, backward MACs) FlopCounterMode sees on a real forward and ``loss.backward()``, the loss
    reading every floating-point output (fxflops prices the backward of everything that reaches an output: a
    BERT pooler left out of the loss would have no backward). The math attention kernel: FlopCounterMode has
    no formula for CPU flash attention (see test_hf_models)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        out = model(**example)
        outs = [out] if isinstance(out, torch.Tensor) else [v for v in out.values() if isinstance(v, torch.Tensor)]
        fwd = fc.get_total_flops()
        sum(o.float().sum() for o in outs if o.is_floating_point()).backward()
    return fwd // 2, (fc.get_total_flops() - fwd) // 2


def grouped_conv_excess(model: nn.Module, report) -> int:
    """FlopCounterMode prices a grouped convolution's grad-weight as if it were dense (its conv_backward_flop
    leaves ``groups`` out): ``groups`` times the true MACs. The excess, per grouped conv whose weight learns."""
    excess = 0
    for n in report.nodes:
        m = model.get_submodule(n.module_path) if n.op == "conv2d" else None
        if isinstance(m, nn.Conv2d) and m.groups > 1 and m.weight.requires_grad:
            excess += (m.groups - 1) * n.fwd_macs
    return excess


def resnet18():
    return torchvision.models.resnet18(weights=None), {"x": torch.randn(2, 3, 64, 64)}


def mobilenet_v3_small():
    return torchvision.models.mobilenet_v3_small(weights=None), {"x": torch.randn(2, 3, 64, 64)}


IDS = torch.randint(0, 100, (2, 16))


def bert():
    cfg = T.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                       vocab_size=100)
    return T.BertModel(cfg), {"input_ids": IDS}


def llama():
    cfg = T.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=128, vocab_size=100)
    return T.LlamaForCausalLM(cfg), {"input_ids": IDS}


class LoRALinear(nn.Module):
    """A frozen base linear plus a trainable rank-r update B·A."""

    def __init__(self, base: nn.Linear, r: int = 4):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.a = nn.Linear(base.in_features, r, bias=False)
        self.b = nn.Linear(r, base.out_features, bias=False)

    def forward(self, x):
        return self.base(x) + self.b(self.a(x))


def lora_llama():
    """The tiny Llama with every weight frozen and LoRA on the attention's q and v projections."""
    model, example = llama()
    model.requires_grad_(False)
    for layer in model.model.layers:
        layer.self_attn.q_proj = LoRALinear(layer.self_attn.q_proj)
        layer.self_attn.v_proj = LoRALinear(layer.self_attn.v_proj)
    return model, example


@pytest.mark.parametrize("build", [resnet18, mobilenet_v3_small, bert, llama, lora_llama], ids=lambda f: f.__name__)
def test_backward_macs_equal_flop_counter_on_a_real_backward(build) -> None:
    torch.manual_seed(0)
    model, example = build()
    model.eval()
    r = trace_flops(model, example, mode="train", strict=True)
    fwd, bwd = measured_backward_macs(model, example)
    assert r.forward_macs == fwd
    excess = grouped_conv_excess(model, r)
    assert r.backward_macs == bwd - excess
    assert (excess > 0) == (build is mobilenet_v3_small)  # its depthwise convolutions
    assert r.total_macs == fwd + bwd - excess


def test_lora_costs_less_backward_than_full_finetuning() -> None:
    """The frozen base has no weight gradients: the backward of the LoRA model is the grad-inputs plus the small
    adapters' weight gradients, well under twice its forward."""
    full, example = llama()
    lora, _ = lora_llama()
    rf = trace_flops(full.eval(), example, mode="train")
    rl = trace_flops(lora.eval(), example, mode="train")
    assert rf.backward_macs == 2 * rf.forward_macs - rf.modules["model.embed_tokens"].fwd_macs  # = 2×: no lookup MACs
    assert rl.backward_macs < 1.5 * rl.forward_macs
