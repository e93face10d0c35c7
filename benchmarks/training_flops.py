"""fxflops' exact training-step FLOPs of GPT-2 small beside the 6·N·T rule (the table in docs/training.md).

    python -m benchmarks.training_flops          # GPT-2 small (124M), T = 1024, built on meta from its config
"""
from __future__ import annotations

import argparse

import torch
import transformers as T

from fxflops import trace_flops


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tokens", type=int, default=1024)
    args = p.parse_args(argv)
    with torch.device("meta"):
        model = T.GPT2LMHeadModel(T.GPT2Config())
    t = args.tokens
    r = trace_flops(model, {"input_ids": torch.zeros(1, t, dtype=torch.long, device="meta"), "use_cache": False},
                    mode="train")
    n = sum(p.numel() for p in model.parameters())
    emb = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    attn = [x for x in r.nodes if x.op in ("scaled_dot_product_attention", "matmul")]
    rows = [
        ("fxflops forward FLOPs", r.forward_flops),
        ("fxflops backward FLOPs", r.backward_flops),
        ("fxflops training step (forward + backward)", r.total_flops),
        ("6·N·T, N = all parameters", 6 * n * t),
        ("6·N·T, N = non-embedding parameters", 6 * (n - emb) * t),
        ("attention's T² products (QKᵀ, AV), forward + backward", 2 * sum(x.macs + x.bwd_macs for x in attn)),
        ("LM head (tied to the embedding), forward + backward", 2 * (r.modules["lm_head"].macs
                                                                      + r.modules["lm_head"].bwd_macs)),
        ("non-contraction FLOPs (norms, GELU, softmax, adds)", r.total_flops - 2 * r.total_macs),
    ]
    print(f"GPT-2 small, N = {n:,} parameters ({n - emb:,} non-embedding), T = {t}, capture: {r.capture}")
    print("| quantity | FLOPs |\n|---|---:|")
    for name, v in rows:
        print(f"| {name} | {v:,} ({v / 1e9:.1f} G) |")


if __name__ == "__main__":
    main()
