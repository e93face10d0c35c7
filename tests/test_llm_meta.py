"""LLMs on the meta device: Llama-2-70B's layer shapes without allocating weights, and KV-cache decode steps.

The full 80-layer model is measured in benchmarks/capture_speed.py; here fewer layers keep the test fast, and
the closed form is checked at the same depth.
"""
from __future__ import annotations

import pytest
import torch
import transformers as T
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops

H, KV_HEADS, HEADS, I, V = 8192, 8, 64, 28672, 32000  # Llama-2-70B


def llama70b(layers: int) -> T.LlamaForCausalLM:
    cfg = T.LlamaConfig(hidden_size=H, num_hidden_layers=layers, num_attention_heads=HEADS,
                        num_key_value_heads=KV_HEADS, intermediate_size=I, vocab_size=V)
    with torch.device("meta"):
        return T.LlamaForCausalLM(cfg).eval()


def closed_form_macs(layers: int, t: int) -> int:
    """Per layer: q and o projections 2·T·h², k and v projections 2·T·h·(h/8) (8 KV heads of 64),
    the gated MLP 3·T·h·i, attention 2·T²·h (QKᵀ and AV over all heads); then the LM head T·h·V."""
    per_layer = 2 * t * H * H + 2 * t * H * (H * KV_HEADS // HEADS) + 3 * t * H * I + 2 * t * t * H
    return layers * per_layer + t * H * V


def test_closed_form_is_the_published_70b_figure() -> None:
    # FlopCounterMode's count for the full 80-layer model on a (1, 2048) input, as quoted in the issue
    assert closed_form_macs(80, 2048) == 146_222_161_592_320


def test_llama_70b_layers_on_meta_match_the_closed_form() -> None:
    model = llama70b(layers=3)
    ids = torch.zeros(1, 2048, dtype=torch.long, device="meta")
    r = trace_flops(model, {"input_ids": ids}, strict=True)
    assert r.total_macs == closed_form_macs(3, 2048)
    assert r.shape_mode == "meta" and all(p.is_meta for p in model.parameters())
    assert r.capture == "record"  # the eager call on meta is recorded: no block reuse needed at this speed
    per_layer = (closed_form_macs(3, 2048) - closed_form_macs(0, 2048)) // 3
    assert [r.modules[f"model.layers.{i}"].macs for i in range(3)] == [per_layer] * 3
    assert r.modules["lm_head"].macs == 2048 * H * V
    assert r.total_params == sum(p.numel() for p in model.parameters())


def decode_step(model, past: int) -> dict:
    """One generated token after a ``past``-token prompt: input length 1 with the prompt's KV cache."""
    with torch.no_grad():
        cache = model(input_ids=torch.zeros(1, past, dtype=torch.long, device="meta"), use_cache=True).past_key_values
    return {"input_ids": torch.zeros(1, 1, dtype=torch.long, device="meta"), "past_key_values": cache}


def small(kind: str):
    with torch.device("meta"):
        if kind == "llama":
            return T.LlamaForCausalLM(T.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                    num_key_value_heads=2, intermediate_size=128, vocab_size=100)).eval()
        return T.GPT2LMHeadModel(T.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, n_positions=64,
                                              bos_token_id=0, eos_token_id=0)).eval()


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_decode_step_attention_grows_with_the_cache(kind: str) -> None:
    model = small(kind)
    layers, heads, head_dim = 2, 4, 16
    reports = {}
    for past in (8, 24):
        step = decode_step(model, past)
        reports[past] = r = trace_flops(model, step, strict=True)
        assert step["past_key_values"].get_seq_length() == past  # the user's cache is not appended to
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(**step)
        assert r.total_macs == fc.get_total_flops() // 2
        attention = [n for n in r.nodes if n.op == "scaled_dot_product_attention"]
        # one query against past + 1 keys, per layer and head: QKᵀ and AV
        assert [n.macs for n in attention] == [heads * (past + 1) * 2 * head_dim] * layers
    grown = reports[24].total_macs - reports[8].total_macs
    assert grown == layers * heads * (24 - 8) * 2 * head_dim  # only attention depends on the cache length
