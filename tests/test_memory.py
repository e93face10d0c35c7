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
    assert drop.saved_bytes == 4 * 2 * 4  # on the CPU the mask is a float32 tensor (input × noise)
    on_meta = trace_flops(m.to("meta"), torch.randn(1, 1, 4, 4, device="meta"), mode="train")
    assert next(n for n in on_meta.nodes if n.op == "dropout").saved_bytes == 2 * 4  # elsewhere a bool: 1 byte each


def _saved(model: nn.Module, *inputs: torch.Tensor) -> dict[str, int]:
    r = trace_flops(model, tuple(inputs), mode="train")
    return {n.op: n.saved_bytes for n in r.nodes if n.saved_bytes}


class Cat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(8, 2)

    def forward(self, x):
        return self.c(torch.cat([self.a(x), self.b(x)], dim=1))


def test_a_cat_is_a_tensor_of_its_own() -> None:
    """c reads cat's (3, 8) output, a copy of a's and b's outputs: it keeps 3·8·4 = 96 bytes, not 0."""
    saved = _saved(Cat(), torch.randn(3, 4))
    assert saved == {"linear": 96}  # a and b keep nothing: x needs no gradient


def test_relu6_and_hardtanh_keep_their_input_relu_its_output() -> None:
    """Linear(4, 4) → act → Linear(4, 4) on (2, 4), 32 bytes a tensor: the first linear keeps x, the second its input
    (the activation's output); relu's mask comes from that same output (64 bytes in all), relu6 and hardtanh keep
    their input, the first linear's output, as well (96)."""
    for act, total in ((nn.ReLU(), 64), (nn.ReLU6(), 96), (nn.Hardtanh(), 96)):
        r = trace_flops(nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 4)), torch.randn(2, 4), mode="train")
        assert r.memory().activations == total, act


def test_dropout_of_zero_and_scaling_by_a_number_keep_nothing() -> None:
    """dropout(p=0) in training returns its input; x / 2 and x * 3 need no operand for their gradient."""
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.0)).train()
    r = trace_flops(model, torch.randn(2, 4), mode="train")
    assert next(n for n in r.nodes if n.op == "dropout").saved_bytes == 0
    w = nn.Parameter(torch.randn(4, 4))
    r = trace_flops(_Scaled(w), torch.randn(2, 4), mode="train")
    assert {n.op: n.saved_bytes for n in r.nodes if n.op in ("div", "mul")} == {"div": 0, "mul": 0}


class _Scaled(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return (x @ self.w) / 2.0 * 3


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
SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=100)


def cnn(name, size=64):
    return lambda: (getattr(torchvision.models, name)(weights=None).train(), {"x": torch.randn(2, 3, size, size)})


def timm_model(name, size=64):
    def build():
        import timm

        return timm.create_model(name, pretrained=False).train(), {"x": torch.randn(2, 3, size, size)}

    return build


def hf(config, model, **kw):
    return lambda: (model(config(**kw)).train(), {"input_ids": IDS})


def googlenet():
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).train()
    return model, {"x": torch.randn(2, 3, 64, 64)}


# Twenty models of different families, in training mode (dropout and batch statistics on), on the CPU.
MODELS = {
    "resnet18": cnn("resnet18"), "mobilenet_v3_small": cnn("mobilenet_v3_small"),
    "efficientnet_b0": cnn("efficientnet_b0"), "densenet121": cnn("densenet121"), "squeezenet1_0": cnn("squeezenet1_0"),
    "shufflenet_v2_x0_5": cnn("shufflenet_v2_x0_5"), "regnet_y_400mf": cnn("regnet_y_400mf"),
    "mnasnet0_5": cnn("mnasnet0_5"), "convnext_tiny": cnn("convnext_tiny"), "vgg11": cnn("vgg11"),
    "googlenet": googlenet,
    "timm_deit_tiny": timm_model("deit_tiny_patch16_224", 224), "timm_convnext_atto": timm_model("convnext_atto"),
    "timm_mobilevit_xxs": timm_model("mobilevit_xxs"), "timm_efficientnet_b0": timm_model("efficientnet_b0"),
    "bert": hf(T.BertConfig, T.BertModel, **SMALL),
    "llama": hf(T.LlamaConfig, T.LlamaForCausalLM, num_key_value_heads=2, **SMALL),
    "gpt2": hf(T.GPT2Config, T.GPT2LMHeadModel, n_embd=64, n_layer=2, n_head=4, vocab_size=100, bos_token_id=0,
               eos_token_id=0),
    "distilbert": hf(T.DistilBertConfig, T.DistilBertModel, dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                     vocab_size=100),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_saved_activations_within_10_percent_of_autograd(name) -> None:
    torch.manual_seed(0)
    model, example = MODELS[name]()
    ours = trace_flops(model, example, mode="train").memory().activations
    real = autograd_saved_bytes(model, example)
    assert abs(ours - real) <= 0.1 * real, (ours, real)
