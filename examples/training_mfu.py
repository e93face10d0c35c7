"""MFU and HFU of real training steps, from fxflops' exact count beside the 6·N·T estimate.

    python examples/training_mfu.py

A 2-layer GPT-2 (built from a config: no download) trains on random tokens on this machine's CPU; the step time
is measured, and the peak is the `cpu` device fxflops calibrates here (a float32 GEMM). Then the same with
gradient checkpointing: MFU stays the model's FLOPs, HFU adds the recompute the hardware also ran.
"""
import statistics
import time
import warnings

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from fxflops import trace_flops, utilization

warnings.filterwarnings("ignore")  # transformers' config notices
B, T = 4, 64
cfg = GPT2Config(n_layer=2, n_embd=128, n_head=2, vocab_size=512, n_positions=T)


def median_step(model: torch.nn.Module, batch: dict, steps: int = 5) -> float:
    """Median wall time of a forward + backward + AdamW step (the first, warm-up, left out)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


torch.manual_seed(0)
model = GPT2LMHeadModel(cfg).train()
ids = torch.randint(0, cfg.vocab_size, (B, T))
batch = {"input_ids": ids, "labels": ids}

for checkpointing in (False, True):
    if checkpointing:
        model.gradient_checkpointing_enable()
    report = trace_flops(model, batch, mode="train")
    seconds = median_step(model, batch)
    u = utilization(report, seconds, "cpu")
    print(f"gradient checkpointing {'on' if checkpointing else 'off'}: step {report.total_flops:,} FLOPs, "
          f"{seconds * 1e3:.1f} ms")
    print(f"  {u}")
    if not checkpointing:
        n = model.num_parameters()
        six_nt = 6 * n * B * T
        print(f"  6·N·T with N = {n:,}: {six_nt:,} FLOPs ({six_nt / u.model_flops - 1:+.1%} against the exact "
              f"count), MFU {six_nt / (seconds * u.peak):.1%}")
