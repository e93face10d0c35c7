"""The memory of a training step: a hand count, and the saved activations against what autograd really saves
(``saved_tensors_hooks``: the unique storages packed for the backward, parameters and buffers left out)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torchvision
import transformers as T

from fxflops import FxFlopsError, trace_flops


def test_hand_count_of_a_small_mlp() -> None:
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    m[0].requires_grad_(False)  # a frozen first layer: its input needs not be kept
    r = trace_flops(m, torch.randn(2, 8), mode="train")
    mem = r.memory("adam")
    params = (8 * 16 + 16) + (16 * 4 + 4)
    trainable = 16 * 4 + 4
    assert (mem.params, mem.grads, mem.optimizer) == (4 * params, 4 * trainable, 2 * 4 * trainable)
    # relu keeps its output (2×16 floats) for its own mask and as the second linear's input: stored once
    assert mem.activations == 4 * 2 * 16
    assert mem.total == mem.params + mem.grads + mem.optimizer + mem.activations
    assert r.memory("sgd").optimizer == 4 * trainable and r.memory("none").optimizer == 0
    with pytest.raises(FxFlopsError, match="optimizer must be one of"):
        r.memory("lion")
    with pytest.raises(FxFlopsError, match='mode="train"'):
        trace_flops(m, torch.randn(2, 8)).memory("adam")  # infer mode has no optimizer


def test_max_pool_keeps_int64_indices_and_dropout_a_mask() -> None:
    m = nn.Sequential(nn.Conv2d(1, 2, 1), nn.MaxPool2d(2), nn.Dropout(0.5)).train()
    r = trace_flops(m, torch.randn(1, 1, 4, 4), mode="train")
    pool = next(n for n in r.nodes if n.op == "max_pool2d")
    drop = next(n for n in r.nodes if n.op == "dropout")
    assert pool.saved_bytes == 4 * 2 * 16 + 8 * 2 * 4  # the conv's output and an index per pooled element
    assert drop.saved_bytes == 2 * 4  # one byte per element


def autograd_saved_bytes(model: nn.Module, example: dict) -> int:
    held = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in held:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(**example)
    return sum(seen.values())


IDS = torch.randint(0, 100, (2, 16))


def cnn(name):
    return lambda: (getattr(torchvision.models, name)(weights=None).train(), {"x": torch.randn(2, 3, 64, 64)})


def bert():
    cfg = T.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                       vocab_size=100)
    return T.BertModel(cfg).eval(), {"input_ids": IDS}


def llama():
    cfg = T.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=128, vocab_size=100)
    return T.LlamaForCausalLM(cfg).eval(), {"input_ids": IDS}


@pytest.mark.parametrize("build", [cnn("resnet18"), cnn("mobilenet_v3_small"), bert, llama],
                         ids=["resnet18", "mobilenet_v3_small", "bert", "llama"])
def test_saved_activations_within_10_percent_of_autograd(build) -> None:
    torch.manual_seed(0)
    model, example = build()
    ours = trace_flops(model, example, mode="train").memory().activations
    real = autograd_saved_bytes(model, example)
    assert abs(ours - real) <= 0.1 * real, (ours, real)
