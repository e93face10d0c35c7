"""Activation checkpointing (torch.utils.checkpoint) in a training step: the recompute is counted in the backward,
a region saves only its inputs, and the counts equal FlopCounterMode's on a real ``loss.backward()``."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
import transformers as T
from torch.utils.flop_counter import FlopCounterMode

import fxflops

B, D, H = 4, 8, 16  # batch, width, hidden
LIN = B * D * H  # MACs of one Linear(8, 16) or Linear(16, 8) on 4 rows: 512


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(D, H), nn.Linear(H, D)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class Checkpointed(nn.Module):
    def __init__(self, reentrant: bool | None):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.reentrant = reentrant

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x) if self.reentrant is None else cp.checkpoint(blk, x, use_reentrant=self.reentrant)
        return x


def real_step(model: nn.Module, *args, **kwargs) -> tuple[int, int]:
    """(forward MACs, backward MACs) FlopCounterMode counts on a real forward and ``backward()``."""
    with warnings.catch_warnings(), FlopCounterMode(display=False) as fc:
        warnings.simplefilter("ignore")
        out = model(*args, **kwargs)
        out = out if isinstance(out, torch.Tensor) else out.logits
        fwd = fc.get_total_flops()
        if out.requires_grad:
            out.float().sum().backward()
    return fwd // 2, (fc.get_total_flops() - fwd) // 2


# Backward MACs by hand. Each Linear's gradients cost one forward each (grad-input, grad-weight): 2 · 512, except
# the first layer's grad-input when x needs no gradient. The recompute re-runs a region's forward: all of it when
# reentrant (1024 per block); without reentrancy autograd stops once the last saved value is back, which is
# ReLU's output, so only Linear a (512) runs again. A reentrant region runs under no_grad: if its input needs no
# gradient, its output needs none either, and nothing before the last block learns.
CASES = [
    (None, True, 4 * 2 * LIN),
    (None, False, 4 * 2 * LIN - LIN),
    (True, True, 4 * 2 * LIN + 2 * 2 * LIN),
    (True, False, 0),
    (False, True, 4 * 2 * LIN + 2 * LIN),
    (False, False, 4 * 2 * LIN - LIN + 2 * LIN),
]


@pytest.mark.parametrize("capture", ["fx", "record"])
@pytest.mark.parametrize("reentrant, x_grad, bwd", CASES)
def test_hand_counts_equal_a_real_backward(capture, reentrant, x_grad, bwd):
    torch.manual_seed(0)
    model = Checkpointed(reentrant).train()
    x = torch.randn(B, D, requires_grad=x_grad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fxflops.trace_flops(model, x, mode="train", capture=capture, strict=True)
    assert (r.forward_macs, r.backward_macs) == (4 * LIN, bwd) == real_step(model, x)


@pytest.mark.parametrize("capture", ["fx", "record"])
def test_a_region_saves_its_inputs_and_holds_its_own_while_recomputed(capture):
    x = torch.randn(B, D, requires_grad=True)
    plain = fxflops.trace_flops(Checkpointed(None).train(), x, mode="train", capture=capture).memory()
    # Per block: Linear a keeps its input (4·8 fp32 = 128 B), ReLU its output (4·16 = 256 B); Linear b's input is
    # that same output.
    assert (plain.activations, plain.recompute) == (2 * (128 + 256), 0)
    r = fxflops.trace_flops(Checkpointed(False).train(), x, mode="train", capture=capture)
    mem = r.memory()
    assert mem.activations == 2 * 128  # each region's input
    assert mem.recompute == 128 + 256  # one block's own saves, alive again during its backward
    assert mem.total == mem.params + mem.grads + mem.optimizer + 2 * 128 + 384
    assert {n.checkpoint for n in r.nodes if n.op == "linear"} == {1, 2}
    assert any("activation checkpointing: 2 region(s)" in n for n in r.notes)
    assert "recomputed" in str(mem)


@pytest.mark.parametrize("reentrant, x_grad, bwd", [c for c in CASES if c[0] is not True])
def test_dynamo_prices_the_checkpointed_subgraph(reentrant, x_grad, bwd):
    """Dynamo captures a training step with autograd on, so the example's requires_grad reaches its graphs."""
    torch.manual_seed(0)
    model = Checkpointed(reentrant).train()
    x = torch.randn(B, D, requires_grad=x_grad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fxflops.trace_flops(model, x, mode="train", capture="dynamo", strict=True)
    assert any(n.op == "tag_activation_checkpoint" for n in r.nodes) == (reentrant is not None)
    assert (r.forward_macs, r.backward_macs) == (4 * LIN, bwd) == real_step(model, x)


def test_inference_ignores_checkpointing_and_torch_is_put_back():
    generators = {n: getattr(cp, n) for n in dir(cp) if n.startswith("_checkpoint_without_reentrant_generator")}
    r = fxflops.trace_flops(Checkpointed(False), torch.randn(B, D))
    assert r.total_macs == 4 * LIN and not any("checkpointing" in n for n in r.notes)
    assert {n: getattr(cp, n) for n in generators} == generators and "apply" not in vars(cp.CheckpointFunction)


def test_hugging_face_gradient_checkpointing():
    torch.manual_seed(0)
    cfg = T.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                       vocab_size=100)
    model = T.BertForMaskedLM(cfg).train()
    ids = torch.randint(0, 100, (2, 16))
    plain = fxflops.trace_flops(model, {"input_ids": ids}, mode="train")
    (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    r = fxflops.trace_flops(model, {"input_ids": ids}, mode="train")
    assert r.capture == "record" and {n.checkpoint for n in r.nodes} == {0, 1, 2}
    assert (r.forward_macs, r.backward_macs) == real_step(model, input_ids=ids)
    assert r.forward_macs == plain.forward_macs and r.backward_macs > plain.backward_macs
    assert r.memory().activations < plain.memory().activations
