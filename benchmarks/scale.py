"""How fxflops' analysis time and memory grow with the size of the model.

    python benchmarks/scale.py            # decoder stack 1…80 layers, CNN depth and width sweeps
    python benchmarks/scale.py --quick    # fewer points, one timed repeat
    python benchmarks/scale.py --hf-llama # also Hugging Face LlamaForCausalLM with the Llama-2-70B config

Everything is built on the ``meta`` device, so no weight is ever allocated and a 70B-parameter model
costs what its graph costs. Each point runs in a fresh child process (see ``common.py``): one warm-up
analysis of a one-layer model, then the measured analysis (peak RSS growth during the first call,
best wall and CPU time of ``--repeat`` calls). Growth is checked by a least-squares line of CPU time
(steadier than wall time on a shared machine) against the number of graph nodes and by the log-log
slope over the larger models (1 = linear).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    PeakRSS, best_of, fmt_bytes, fmt_seconds, human, isolated, isolation, linear_fit, loglog_exponent, machine,
    markdown_table, rss_bytes,
)

# ---- a Llama-style decoder written out in plain torch (fx traces it without help) --------------------------


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, kv_heads: int):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, d // heads
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.gate = nn.Linear(d, hidden, bias=False)
        self.up = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, d: int, heads: int, kv_heads: int, hidden: int):
        super().__init__()
        self.norm1, self.attn = nn.RMSNorm(d), Attention(d, heads, kv_heads)
        self.norm2, self.mlp = nn.RMSNorm(d), MLP(d, hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class Decoder(nn.Module):
    """Llama-2-70B's shapes by default: 8192 wide, 64 heads over 8 KV heads, SwiGLU 28672, 32k vocab."""

    def __init__(self, layers: int, d: int = 8192, heads: int = 64, kv_heads: int = 8, hidden: int = 28672,
                 vocab: int = 32000):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, heads, kv_heads, hidden) for _ in range(layers))
        self.norm = nn.RMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        hd = d // heads
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device, dtype=torch.float32)
        ang = torch.outer(pos, self.inv_freq)
        ang = torch.cat((ang, ang), dim=-1)
        cos, sin = ang.cos(), ang.sin()
        x = self.embed(ids)
        for blk in self.blocks:
            x = blk(x, cos, sin)
        return self.head(self.norm(x))


class WideCNN(nn.Module):
    """``depth`` residual 3×3 conv blocks of ``width`` channels on a 56×56 map."""

    def __init__(self, depth: int, width: int):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 7, stride=4, padding=3)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
            for _ in range(depth)
        )
        self.head = nn.Linear(width, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for blk in self.blocks:
            x = x + blk(x)
        return self.head(x.mean((2, 3)))


SEQ = 2048


def build(kind: str, size: int) -> tuple[nn.Module, object]:
    meta = torch.device("meta")
    with meta:
        if kind == "decoder":
            return Decoder(size).eval(), torch.zeros(1, SEQ, dtype=torch.long)
        if kind == "cnn-depth":
            return WideCNN(size, 1024).eval(), torch.empty(1, 3, 224, 224)
        if kind == "cnn-width":
            return WideCNN(16, size).eval(), torch.empty(1, 3, 224, 224)
        if kind == "hf-llama-70b":
            from transformers import LlamaConfig, LlamaForCausalLM

            cfg = LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=size,
                              num_attention_heads=64, num_key_value_heads=8, vocab_size=32000,
                              max_position_embeddings=4096)
            return LlamaForCausalLM(cfg).eval(), {"input_ids": torch.zeros(1, SEQ, dtype=torch.long)}
    raise ValueError(kind)


def measure(kind: str, size: int, repeat: int) -> dict:
    from fxflops import trace_flops

    warnings.simplefilter("ignore")
    small, small_x = build(kind, 1)
    trace_flops(small, small_x)  # warm-up: lazy imports and first-call caches are not the model's cost
    del small, small_x
    model, x = build(kind, size)
    with PeakRSS() as mem:
        t, c = time.perf_counter(), time.process_time()
        r = trace_flops(model, x)
        first, first_cpu = time.perf_counter() - t, time.process_time() - c
    wall, cpu = best_of(lambda: trace_flops(model, x), repeat - 1, min_total=1.0) if repeat > 1 else (first, first_cpu)
    best, cpu = min(first, wall), min(first_cpu, cpu)
    nodes = sum(1 for n in r.nodes if n.kind in ("call_module", "call_function", "call_method"))
    return dict(kind=kind, size=size, params=r.total_params, macs=r.total_macs, flops=r.total_flops,
                nodes=len(r.nodes), op_nodes=nodes, capture=r.capture, first_s=first, best_s=best, cpu_s=cpu,
                peak_extra=mem.extra, peak_rss=mem.peak, rss=rss_bytes())


SWEEPS = {
    "decoder": ("layers", [1, 2, 4, 8, 16, 32, 64, 80], [1, 4, 16, 80]),
    "cnn-depth": ("blocks (1024 ch)", [1, 2, 4, 8, 16, 32, 64, 80], [1, 8, 80]),
    "cnn-width": ("channels (16 blocks)", [64, 256, 1024, 4096], [64, 4096]),
}
TITLES = {
    "decoder": f"Llama-style decoder (Llama-2-70B widths), meta device, {SEQ} tokens",
    "cnn-depth": "Wide residual CNN, 1024 channels, meta device, 1×3×224×224",
    "cnn-width": "Wide residual CNN, 16 blocks, width sweep, meta device",
    "hf-llama-70b": f"Hugging Face LlamaForCausalLM, Llama-2-70B config, meta device, {SEQ} tokens",
}


def sweep(kind: str, sizes: list[int], repeat: int, timeout: float) -> tuple[list[dict], list[str]]:
    rows, errors = [], []
    for s in sizes:
        status, v = isolated(measure, kind, s, repeat, timeout=timeout)
        if status != "ok":
            errors.append(f"{kind} {s}: {status}: {v}")
            print(f"  {kind} {s}: {status}: {v}", flush=True)
            continue
        rows.append(v)
        print(f"  {kind:12s} {s:5d}  params {human(v['params']):>7s}  nodes {v['nodes']:6d}  "
              f"{fmt_seconds(v['best_s']):>8s} wall {fmt_seconds(v['cpu_s']):>8s} CPU  "
              f"{v['cpu_s'] / v['nodes'] * 1e6:7.1f} µs CPU/node  "
              f"peak +{fmt_bytes(v['peak_extra'])}, RSS {fmt_bytes(v['peak_rss'])}", flush=True)
    return rows, errors


def table(label: str, rows: list[dict]) -> str:
    head = [label, "params", "MACs", "graph nodes", "capture", "wall time (best)", "CPU time (best)", "CPU µs / node",
            "peak RSS growth", "process peak RSS"]
    body = [[str(v["size"]), human(v["params"]), human(v["macs"]), str(v["nodes"]), v["capture"], fmt_seconds(v["best_s"]),
             fmt_seconds(v["cpu_s"]), f"{v['cpu_s'] / v['nodes'] * 1e6:.0f}", fmt_bytes(v["peak_extra"]),
             fmt_bytes(v["peak_rss"])] for v in rows]
    return markdown_table(head, body, right=(1, 2, 3, 5, 6, 7, 8, 9))


def growth(rows: list[dict]) -> str:
    if len(rows) < 3:
        return "too few points to fit"
    xs = [float(v["nodes"]) for v in rows]
    ts = [v["cpu_s"] for v in rows]
    ms = [float(v["peak_extra"]) / 2**20 for v in rows]
    fit_t, fit_m = linear_fit(xs, ts), linear_fit(xs, ms)
    # Linear means a straight line fits (a fixed per-call cost plus a cost per node) and nothing grows
    # faster than that: the log-log slope over the larger half would exceed 1 if it did. Below 1 is the
    # fixed cost still showing.
    big = rows[len(rows) // 2 - 1:] if len(rows) > 3 else rows[-2:]
    k = loglog_exponent([float(v["nodes"]) for v in big], [v["cpu_s"] for v in big])
    verdict = "linear" if fit_t.r2 > 0.98 and k <= 1.2 else "NOT linear"
    return (f"CPU time: {fit_t.describe('nodes', 'seconds')}; log-log slope over the larger models {k:.2f} → {verdict}\n"
            f"memory: {fit_m.describe('nodes', 'MiB')}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer sizes, one timed call")
    p.add_argument("--repeat", type=int, default=None, help="timed calls per point (default 3, 1 with --quick)")
    p.add_argument("--hf-llama", action="store_true", help="also HF LlamaForCausalLM with the 70B config (80 layers)")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--write", metavar="FILE", help="also write the tables as Markdown to FILE")
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)

    isolation(["torch", "fxflops"] + (["transformers"] if args.hf_llama else []))
    print(machine(), flush=True)
    out = [f"# fxflops analysis time and memory against model size", "",
           f"Generated by `python benchmarks/scale.py{' --quick' if args.quick else ''}"
           f"{' --hf-llama' if args.hf_llama else ''}`. Machine: {machine()}.", ""]
    for kind, (label, full, quick) in SWEEPS.items():
        rows, errors = sweep(kind, quick if args.quick else full, repeat, args.timeout)
        fit = growth(rows) if kind != "cnn-width" else "width changes MACs, not the graph: time should stay flat"
        print(f"  → {fit}\n", flush=True)
        out += [f"## {TITLES[kind]}", "", table(label, rows), "", "```", fit, "```", ""] + [f"- {e}" for e in errors]
    if args.hf_llama:
        rows, errors = sweep("hf-llama-70b", [80], 1, args.timeout)
        out += [f"## {TITLES['hf-llama-70b']}", "", table("layers", rows), ""] + [f"- {e}" for e in errors] + [""]
    text = "\n".join(out)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
