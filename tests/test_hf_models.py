"""Hugging Face models (no fx tracer of their own): complete reports on the record and dynamo paths, MACs equal to
FlopCounterMode."""
from __future__ import annotations

import pytest
import torch
import transformers as T
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops

IDS = torch.zeros(1, 16, dtype=torch.long, device="meta")


def bert():
    return T.BertModel(T.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                    vocab_size=1000)), {"input_ids": IDS}


def gpt2():
    return T.GPT2LMHeadModel(T.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, n_positions=64,
                                          bos_token_id=0, eos_token_id=0)), {"input_ids": IDS}


def llama():
    return T.LlamaForCausalLM(T.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                            num_key_value_heads=2, intermediate_size=128, vocab_size=100)), \
        {"input_ids": IDS}


def t5():
    # use_cache=False: the decoder's KV cache is output bookkeeping (no arithmetic) whose construction is slow to trace
    return T.T5ForConditionalGeneration(T.T5Config(d_model=64, d_ff=128, d_kv=16, num_layers=2, num_heads=4,
                                                   vocab_size=100)), \
        {"input_ids": IDS, "decoder_input_ids": IDS[:, :8], "use_cache": False}


def vit():
    return T.ViTModel(T.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                  image_size=32, patch_size=8)), {"pixel_values": torch.zeros(1, 3, 32, 32, device="meta")}


def torch_macs(model, example) -> int:
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(**example)
    return fc.get_total_flops() // 2


@pytest.mark.parametrize("capture", ["auto", "dynamo"])
@pytest.mark.parametrize("build", [bert, gpt2, llama, t5, vit], ids=lambda f: f.__name__)
def test_small_hf_model_is_complete_and_matches_flop_counter(build, capture) -> None:
    with torch.device("meta"):
        model, example = build()
    model.eval()
    r = trace_flops(model, example, strict=True, capture=capture)  # strict: any op without a rule fails the test
    assert r.capture == ("record" if capture == "auto" else "dynamo") and r.shape_mode == "meta"
    if capture == "auto":  # fx cannot trace a Hugging Face model; the eager call is recorded instead
        assert r.notes[0].startswith(f"fx could not trace <root> ({type(model).__name__})")
        assert r.notes[0].endswith("used record")
    assert r.total_macs == torch_macs(model, example)
    assert r.total_params == sum(p.numel() for p in model.parameters())


def test_bert_per_layer_against_the_closed_form() -> None:
    with torch.device("meta"):
        model, example = bert()
    r = trace_flops(model.eval(), example)
    t, h, i = 16, 64, 128
    per_layer = 4 * t * h * h + 2 * t * h * i + 2 * t * t * h  # q/k/v/o, the MLP, QKᵀ and AV
    assert r.modules["encoder.layer.0"].macs == r.modules["encoder.layer.1"].macs == per_layer
    assert r.modules["encoder.layer.1.attention.self"].macs == 3 * t * h * h + 2 * t * t * h


def test_flop_counter_misses_cpu_fused_attention() -> None:
    """On a real CPU model torch picks the fused flash-attention kernel, which FlopCounterMode has no formula for:
    its total falls short by exactly the attention matmuls fxflops counts. Forcing the math kernel closes the gap."""
    model, _ = bert()
    model.eval()
    example = {"input_ids": torch.randint(0, 1000, (1, 16)), "attention_mask": torch.ones(1, 16, dtype=torch.long)}
    r = trace_flops(model, example, strict=True)
    attention = sum(n.macs for n in r.nodes if n.op == "scaled_dot_product_attention")
    assert attention == 2 * 4 * 16 * 16 * (2 * 16)  # layers · heads · L · S · (E + Ev)
    assert torch_macs(model, example) == r.total_macs - attention
    with sdpa_kernel(SDPBackend.MATH):
        assert torch_macs(model, example) == r.total_macs


def test_mixture_of_experts_against_the_closed_form() -> None:
    """Mixtral routes each token to k of E experts through transformers' grouped_mm_fallback custom op, priced as
    torch._grouped_mm. FlopCounterMode cannot run it eagerly on CPU (it wants bfloat16), so the check is the formula:
    per layer the router T·h·E, the routed experts T·k·3·h·i, and attention as in Llama."""
    t, h, i, experts, k, vocab, layers = 16, 64, 128, 4, 2, 100, 2
    cfg = T.MixtralConfig(hidden_size=h, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                          intermediate_size=i, vocab_size=vocab, num_local_experts=experts, num_experts_per_tok=k)
    with torch.device("meta"):
        model = T.MixtralForCausalLM(cfg).eval()
    r = trace_flops(model, {"input_ids": IDS}, strict=True)
    attention = 2 * t * h * h + 2 * t * h * (h // 2) + 2 * t * t * h  # q/o, k/v with 2 of 4 heads, QKᵀ and AV
    assert r.total_macs == layers * (attention + t * h * experts + t * k * 3 * h * i) + t * h * vocab
