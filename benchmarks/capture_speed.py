"""Capture speed of the three paths (fx, record, dynamo) on BERT-base, GPT-2 and Llama-2-70B built on the meta device.

    python benchmarks/capture_speed.py            # everything, including the slow 80-layer run without reuse
    python benchmarks/capture_speed.py --quick    # skip the slow run

Each row is one ``trace_flops`` call (capture, shapes, costs, report), timed after a warm-up capture so that
dynamo's one-time start-up is not charged to the first model. FlopCounterMode on the same meta input is
timed for reference, and every row says whether its MACs agree with it.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import torch
import torch.nn as nn
import transformers as T
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops
from fxflops.capture.dynamo import capture_dynamo
from fxflops.errors import FxFlopsError
from fxflops.passes.costs import Counting
from fxflops.pipeline.annotate import annotate_records as count_capture
from fxflops.rules.registry import REGISTRY


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    try:
        out = fn()
    except FxFlopsError as err:
        out = err
    return time.perf_counter() - t, out


def flop_counter_macs(model: nn.Module, example: dict) -> tuple[float, int]:
    def run() -> int:
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(**example)
        return fc.get_total_flops() // 2

    return timed(run)


def row(name: str, seconds: float, result: Any, reference: int) -> None:
    if isinstance(result, Exception):
        what = f"fails: {str(result).splitlines()[0][:90]}"
    else:
        macs = result if isinstance(result, int) else result.total_macs
        what = f"{macs:,} MACs " + ("(= FlopCounterMode)" if macs == reference else f"(FlopCounterMode {reference:,})")
    print(f"  {name:<44} {seconds:8.2f} s   {what}")


class Layer(nn.Module):
    """A BERT encoder layer in plain torch.nn, which symbolic tracing can capture (HF's BertModel cannot be)."""

    def __init__(self, d: int = 768, heads: int = 12, ff: int = 3072):
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff1, self.ff2, self.act = nn.Linear(d, ff), nn.Linear(ff, d), nn.GELU()

    def forward(self, x):
        b, t, d = x.shape[0], x.shape[1], x.shape[2]
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5).softmax(-1) @ v
        x = self.ln1(x + self.out(a.transpose(1, 2).reshape(b, t, d)))
        return self.ln2(x + self.ff2(self.act(self.ff1(x))))


class TorchBert(nn.Module):
    def __init__(self, layers: int = 12):
        super().__init__()
        self.layers = nn.ModuleList(Layer() for _ in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def bert_base() -> None:
    print("BERT-base (12 layers, hidden 768, 12 heads, MLP 3072), input (1, 128) on meta")
    ids = torch.zeros(1, 128, dtype=torch.long, device="meta")
    with torch.device("meta"):
        hf = T.BertModel(T.BertConfig()).eval()
        torch_bert = TorchBert().eval()
    x = torch.zeros(1, 128, 768, device="meta")
    s, ref = flop_counter_macs(torch_bert, {"x": x})
    row("torch.nn BERT encoder: FlopCounterMode", s, ref, ref)
    for capture in ("fx", "dynamo"):
        row(f"torch.nn BERT encoder: capture={capture}", *timed(lambda: trace_flops(torch_bert, x, capture=capture)), ref)
    s, ref = flop_counter_macs(hf, {"input_ids": ids})
    row("HF BertModel: FlopCounterMode", s, ref, ref)
    for capture in ("fx", "record", "dynamo", "auto"):
        row(f"HF BertModel: capture={capture}", *timed(lambda: trace_flops(hf, {"input_ids": ids}, capture=capture)), ref)


def gpt2() -> None:
    print("GPT-2 124M (12 layers, hidden 768), input (1, 1024) on meta")
    with torch.device("meta"):
        model = T.GPT2LMHeadModel(T.GPT2Config()).eval()
    example = {"input_ids": torch.zeros(1, 1024, dtype=torch.long, device="meta")}
    s, ref = flop_counter_macs(model, example)
    row("FlopCounterMode", s, ref, ref)
    for capture in ("record", "dynamo"):
        row(f"capture={capture}", *timed(lambda: trace_flops(model, example, capture=capture)), ref)


def llama_70b(slow: bool) -> None:
    print("Llama-2-70B (80 layers, hidden 8192, 64 heads, 8 KV heads, MLP 28672, vocab 32000), input (1, 2048) on meta")
    cfg = T.LlamaConfig(hidden_size=8192, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8,
                        intermediate_size=28672, vocab_size=32000)
    with torch.device("meta"):
        model = T.LlamaForCausalLM(cfg).eval()
    ids = torch.zeros(1, 2048, dtype=torch.long, device="meta")
    # FlopCounterMode needs the default call: with use_cache=False HF runs a data-dependent check meta cannot answer
    s, ref = flop_counter_macs(model, {"input_ids": ids})
    row("FlopCounterMode", s, ref, ref)
    for example, label in (({"input_ids": ids}, "default call (builds a KV cache)"),
                           ({"input_ids": ids, "use_cache": False}, "use_cache=False")):
        print(f" {label}")
        row("capture=fx", *timed(lambda: trace_flops(model, example, capture="fx")), ref)
        row("capture=record", *timed(lambda: trace_flops(model, example, capture="record")), ref)
        row("capture=dynamo (block reuse)", *timed(lambda: trace_flops(model, example, capture="dynamo")), ref)
        if slow:
            def plain() -> int:
                cap = capture_dynamo(model, (), example, reuse_blocks=False)
                return sum(n.macs for n in count_capture(cap, Counting(REGISTRY)))

            row("capture=dynamo, every layer traced", *timed(plain), ref)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="skip tracing all 80 layers without block reuse")
    args = p.parse_args()
    print(f"torch {torch.__version__}, transformers {T.__version__}, {torch.get_num_threads()} threads")
    with torch.device("meta"):  # dynamo's one-time start-up, not charged to the first row
        warm = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    trace_flops(warm, torch.zeros(1, 4, device="meta"), capture="dynamo")
    bert_base()
    gpt2()
    llama_70b(slow=not args.quick)


if __name__ == "__main__":
    main()
