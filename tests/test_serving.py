"""serving(): prefill, decode, KV cache and tokens/s from the graph, checked by hand on small configs and on the
Llama-2-7B shape (on meta)."""
from __future__ import annotations

import json

import pytest
import torch
import transformers as T

from fxflops import trace_flops
from fxflops.cli import main
from fxflops.errors import FxFlopsError
from fxflops import serving
from fxflops.llm.estimate import _Phase, _decode_example

FP16 = 2


def build(cls, cfg, dtype=torch.float16):
    with torch.device("meta"):
        return cls(cfg).eval().to(dtype)


def llama(layers=2, heads=4, kv=2, hidden=64, inter=128, vocab=100):
    return build(T.LlamaForCausalLM, T.LlamaConfig(hidden_size=hidden, num_hidden_layers=layers,
                                                   num_attention_heads=heads, num_key_value_heads=kv,
                                                   intermediate_size=inter, vocab_size=vocab))


def test_gqa_kv_cache_weights_and_decode_formula_by_hand() -> None:
    model = llama()
    before = {k: v.device for k, v in model.state_dict().items()}
    s = serving(model, "a100", prompt=16, generate=8, batch=[1, 4])
    per_token = 2 * 2 * 2 * 16 * FP16  # layers × (K, V) × KV heads × head dim
    assert s.kv_bytes_per_token == per_token
    assert [r.kv_cache_bytes for r in s.rows] == [b * (16 + 8) * per_token for b in (1, 4)]
    assert all(r.weights_bytes == sum(p.numel() for p in model.parameters()) * FP16 for r in s.rows)
    # one decode step's FLOPs, fitted on traced contexts, against a trace at a context the fit never saw
    step = trace_flops(model, _decode_example(_Phase(model, s.device, torch.device("meta"), set(), 0), 1, 300),
                       capture="record")
    assert s.decode_flops.fits and s.decode_flops(c=300) == step.total_flops
    assert s.decode_flops.checked_on  # held-out contexts checked the fit
    assert s.rows[0].prefill_flops < s.rows[1].prefill_flops and all(r.fits for r in s.rows)
    assert s.rows[1].tokens_per_second > s.rows[0].tokens_per_second
    assert set(json.loads(json.dumps(s.to_dict()))) >= {"rows", "kv_bytes_per_token", "max_batch", "decode_flops"}
    assert "KV cache 256 B per token" in s.table()
    assert {k: v.device for k, v in model.state_dict().items()} == before and not model.training


def test_a_model_with_real_weights_is_left_as_it_was() -> None:
    torch.manual_seed(0)
    model = T.LlamaForCausalLM(T.LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                             num_key_value_heads=1, intermediate_size=64, vocab_size=50)).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    s = serving(model, "h100", prompt=6, generate=3, batch=[1, 2])
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert s.kv_bytes_per_token == 1 * 2 * 1 * 16 * 4  # float32


def test_int8_weights_halve_linear_weights_and_the_weight_bound_decode() -> None:
    model = llama(hidden=256, inter=512, vocab=64)
    plain = serving(model, "a100", prompt=8, generate=2, batch=1)
    q = serving(model, "a100", prompt=8, generate=2, batch=1, weights="int8")
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert plain.rows[0].weights_bytes - q.rows[0].weights_bytes == linear * (FP16 - 1)
    assert q.rows[0].decode_time < 0.6 * plain.rows[0].decode_time
    kv8 = serving(model, "a100", prompt=8, generate=2, batch=1, kv_dtype="int8")
    assert kv8.rows[0].kv_cache_bytes * 2 == plain.rows[0].kv_cache_bytes
    assert kv8.rows[0].decode_time < plain.rows[0].decode_time  # attention reads the cache at one byte a value


def test_moe_active_experts_per_token() -> None:
    cfg = T.MixtralConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          intermediate_size=96, vocab_size=100, num_local_experts=4, num_experts_per_tok=2)
    model = build(T.MixtralForCausalLM, cfg, torch.bfloat16)  # grouped_mm's meta kernel takes 16-bit floats
    s = serving(model, "h100", prompt=16, generate=4, batch=[2])
    assert s.kv_bytes_per_token == 2 * 2 * 2 * 16 * 2
    step = trace_flops(model, _decode_example(_Phase(model, s.device, torch.device("meta"), set(), 0), 2, 16),
                       capture="record")
    experts = sum(n.flops for n in step.nodes if n.op == "grouped_mm")
    # 2 layers × 2 tokens × top-2 experts × (gate, up, down) × 2·H·I: 2 of 4 experts run per token
    assert experts == 2 * 2 * 2 * 3 * 2 * 64 * 96
    assert s.rows[0].decode_flops == step.total_flops


def test_sliding_window_caps_the_cache_and_attention() -> None:
    cfg = T.MistralConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          intermediate_size=96, vocab_size=100, sliding_window=8)
    model = build(T.MistralForCausalLM, cfg)
    s = serving(model, "a100", prompt=4, generate=12, batch=1)
    per_token = 2 * 2 * 2 * 16 * FP16
    assert s.kv_bytes_per_token == per_token
    assert s.rows[0].kv_cache_bytes == 7 * per_token  # the cache keeps window - 1 tokens, not 4 + 12
    contexts, times = s.curves[1]
    assert contexts == list(range(4, 15))
    assert times[0] < times[2] < times[3] == times[-1]  # attention stops growing at the window
    assert len(s.notes) >= 2  # the range was split where one polynomial does not fit


def test_llama_2_7b_decode_is_weight_bound_and_prefill_compute_bound() -> None:
    model = llama(layers=32, heads=32, kv=32, hidden=4096, inter=11008, vocab=32000)
    assert sum(p.numel() for p in model.parameters()) * FP16 == 13_476_831_232
    s = serving(model, "a100", prompt=1024, generate=2, batch=1)
    row = s.rows[0]
    assert row.weights_bytes == 13_476_831_232 and s.kv_bytes_per_token == 524_288
    weight_time = 13_476_831_232 / 2.039e12  # 6.61 ms
    assert abs(row.decode_time - weight_time) / weight_time < 0.05 and row.bound == "memory"
    assert row.prefill_bound == "compute"
    gqa = serving(llama(layers=32, heads=32, kv=8, hidden=4096, inter=11008, vocab=32000), "a100", prompt=4,
                  generate=2, batch=1)
    assert gqa.kv_bytes_per_token == 131_072


def test_cli_serve_from_a_local_config_dir(tmp_path, capsys) -> None:
    T.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=128, vocab_size=100, dtype="float16").save_pretrained(tmp_path)
    assert main(["serve", f"hf:{tmp_path}", "--device", "a100", "--prompt", "8", "--generate", "4", "--batch", "1,2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in out["rows"]] == [1, 2] and out["kv_bytes_per_token"] == 256
    assert main(["serve", f"hf:{tmp_path / 'missing'}"]) == 2
    assert "fxflops: error: hf:" in capsys.readouterr().err
    assert main([f"hf:{tmp_path}", "--input", "input_ids=1,8:long", "--meta", "--bytes", "fused", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_bytes"] > 0


def test_bad_arguments_say_what_to_do() -> None:
    with pytest.raises(FxFlopsError, match="weights must be"):
        serving(llama(), weights="int3")
    with pytest.raises(ValueError, match="bytes must be one of"):
        trace_flops(torch.nn.Linear(2, 2), torch.randn(1, 2), bytes="lazy")
