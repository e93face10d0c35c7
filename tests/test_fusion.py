"""The fused byte model (passes/fusion.py), checked against hand-computed kernel traffic."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers as T

from fxflops import trace_flops
from fxflops.types import OP_KINDS

from conftest import Fn

H16 = torch.float16


def both(model: nn.Module, *inputs, **kw):
    eager = trace_flops(model, tuple(inputs), strict=True, **kw)
    fused = trace_flops(model, tuple(inputs), strict=True, bytes="fused", **kw)
    return eager, fused


def kernel_ids(report) -> set[int]:
    return {n.kernel for n in report.nodes if n.kind in OP_KINDS and n.kernel}


def test_rmsnorm_is_one_kernel_reading_input_and_weight_writing_once() -> None:
    norm = T.models.llama.modeling_llama.LlamaRMSNorm(64).half()
    x = torch.randn(2, 8, 64, dtype=H16)
    eager, fused = both(norm, x)
    n = x.numel()
    assert fused.total_bytes == 2 * n + 2 * 64 + 2 * n  # x read, weight read, output written, all fp16
    assert len(kernel_ids(fused)) == 1
    # eager, per element: cast up 2+4, pow 4+4, mean 4 (+ 4 per row), add and rsqrt 4+4 per row, mul 4+4 (+ 4 per
    # row), cast down 4+2, × weight 2+2 (+ 2·64 for the weight); the dtype read (x.dtype) moves nothing
    rows = n // 64
    assert eager.total_bytes == (6 + 8 + 4 + 8 + 6 + 4) * n + (4 + 8 + 8 + 4) * rows + 2 * 64 == 37_376
    assert eager.total_bytes > 8.8 * fused.total_bytes


def test_swiglu_activation_chain_reads_gate_and_up_writes_once() -> None:
    g, u = torch.randn(4, 128, dtype=H16), torch.randn(4, 128, dtype=H16)
    eager, fused = both(Fn(lambda a, b: F.silu(a) * b), g, u)
    assert fused.total_bytes == 3 * g.numel() * 2
    assert eager.total_bytes == (2 + 2) * g.numel() + (2 + 2 + 2) * g.numel()  # silu r/w, then mul r, r, w


def test_llama_mlp_fuses_only_its_activation_chain() -> None:
    cfg = T.LlamaConfig(hidden_size=64, intermediate_size=96)
    mlp = T.models.llama.modeling_llama.LlamaMLP(cfg).half()
    x = torch.randn(1, 5, 64, dtype=H16)
    eager, fused = both(mlp, x)
    linears = sum(n.bytes for n in eager.nodes if n.op == "linear")
    assert sum(n.bytes for n in fused.nodes if n.op == "linear") == linears  # contractions keep their bytes
    assert fused.total_bytes == linears + 3 * 5 * 96 * 2


def test_softmax_over_fp32_scores() -> None:
    s = torch.randn(2, 4, 16, 16, dtype=H16)
    eager, fused = both(Fn(lambda t: torch.softmax(t.float(), -1).to(H16)), s)
    n = s.numel()
    assert fused.total_bytes == 2 * n + 2 * n  # the fp32 scores live in registers only
    assert eager.total_bytes == (2 + 4) * n + (4 + 4) * n + (4 + 2) * n


def test_attention_as_sdpa_and_as_the_eager_pattern_is_one_kernel() -> None:
    q, k, v = (torch.randn(1, 4, 16, 32, dtype=H16) for _ in range(3))
    mask = torch.zeros(1, 1, 16, 16, dtype=H16)
    hand = 4 * q.numel() * 2 + mask.numel() * 2  # Q, K, V and the mask read, the output written

    def eager_attention(a, b, c, m):
        p = torch.softmax((a @ b.transpose(-2, -1)) * 32 ** -0.5 + m, dim=-1)
        return p @ c

    sdpa_e, sdpa = both(Fn(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m)), q, k, v, mask)
    pattern_e, pattern = both(Fn(eager_attention), q, k, v, mask)
    assert sdpa.total_bytes == sdpa_e.total_bytes == hand
    assert pattern.total_bytes == hand and len(kernel_ids(pattern)) == 1
    assert pattern_e.total_bytes > hand + 4 * 16 * 16 * 2 * 4  # eager writes and reads the scores four times
    assert pattern.total_flops == pattern_e.total_flops  # the byte model changes bytes only


def test_nothing_fuses_in_a_conv_only_model() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, stride=2), nn.Conv2d(8, 4, 1))
    eager, fused = both(model, torch.randn(1, 3, 32, 32))
    assert fused.total_bytes == eager.total_bytes
    assert [n.bytes for n in fused.nodes] == [n.bytes for n in eager.nodes]
    assert len(kernel_ids(fused)) == 3


def test_resnet_fuses_batchnorm_relu_and_keeps_conv_bytes() -> None:
    import torchvision

    model = torchvision.models.resnet18(weights=None).eval()
    eager, fused = both(model, torch.randn(1, 3, 64, 64))
    conv = [(a.bytes, b.bytes) for a, b in zip(eager.nodes, fused.nodes) if a.op == "conv2d"]
    assert all(x == y for x, y in conv) and len(conv) == 20
    assert fused.total_bytes < eager.total_bytes
    assert sum(n.bytes for n in fused.nodes) == fused.total_bytes
    assert fused.modules[""].bytes == fused.total_bytes  # the module rows are re-summed


def tiny_llama(layers: int = 2, kv_heads: int = 2) -> T.LlamaForCausalLM:
    cfg = T.LlamaConfig(hidden_size=64, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=kv_heads,
                        intermediate_size=128, vocab_size=100)
    with torch.device("meta"):
        return T.LlamaForCausalLM(cfg).eval().half()


def decode_step(model, past: int, batch: int = 1) -> dict:
    ids = torch.zeros(batch, past, dtype=torch.long, device="meta")
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).cache
    return {"input_ids": torch.zeros(batch, 1, dtype=torch.long, device="meta"), "cache": cache, "use_cache": True}


def test_kv_cache_append_writes_only_the_new_entries() -> None:
    model = tiny_llama()
    step = decode_step(model, past=40, batch=3)
    eager = trace_flops(model, step, capture="record", strict=True)
    fused = trace_flops(model, step, capture="record", strict=True, bytes="fused")
    new = 3 * 2 * 1 * 16 * 2  # batch × KV heads × one token × head dim × fp16
    cats = [(e, f) for e, f in zip(eager.nodes, fused.nodes) if e.op == "copy" and e.output_shapes[0][2] == 41]
    assert len(cats) == 4  # K and V of two layers
    assert all(e.bytes == (40 + 1 + 41) * new for e, _ in cats)  # eager: the past and new read, all written
    v_appends = [f for _, f in cats if f.bytes == 2 * new]  # V: the new entries read and written
    k_appends = [f for _, f in cats if f.bytes == new]  # K: written at the end of the rotary kernel
    assert len(v_appends) == len(k_appends) == 2
    attention = [n for n in fused.nodes if n.op == "scaled_dot_product_attention"]
    assert all(n.bytes == 2 * (3 * 4 * 16) * 2 + 2 * 3 * 2 * 41 * 16 * 2 for n in attention)  # Q, out; all of K, V


def test_every_rmsnorm_of_a_llama_step_is_hand_sized() -> None:
    model = tiny_llama()
    r = trace_flops(model, {"input_ids": torch.zeros(2, 7, dtype=torch.long, device="meta")}, capture="record",
                    bytes="fused", strict=True)
    first = next(n.kernel for n in r.nodes if n.module_path == "model.layers.0.input_layernorm")
    kernel = [n for n in r.nodes if n.kernel == first]
    assert {n.module_path for n in kernel} == {"model.layers.0.input_layernorm"}
    x = 2 * 7 * 64 * 2
    assert sum(n.bytes for n in kernel) == x + 64 * 2 + x  # the embedding read, the weight read, one write
    assert sum(n.bytes for n in r.nodes) == r.total_bytes
