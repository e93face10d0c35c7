"""Regenerate the charts of docs/api.md and README: the FLOPs icicle of ResNet-50 and the sequence-length sweep
of a GPT-2-small-sized model (built from its config on the meta device: no weights).

    python docs/images/make_charts.py
"""
from __future__ import annotations

import os
import warnings

import torch
import torchvision

import fxflops

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    with torch.device("meta"):
        resnet = torchvision.models.resnet50(weights=None).eval()
    report = fxflops.trace_flops(resnet, torch.empty(1, 3, 224, 224, device="meta"))
    print(report.chart(os.path.join(HERE, "resnet50_icicle.png"), depth=3))

    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.device("meta"):
        gpt2 = GPT2LMHeadModel(GPT2Config()).eval()  # 12 layers, hidden 768, 12 heads, vocab 50257
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = fxflops.sweep(lambda T: (gpt2, {"input_ids": torch.zeros(1, T, dtype=torch.long, device="meta")}),
                          T=[128, 256, 512, 1024])
    print(s)
    print(s.chart(os.path.join(HERE, "gpt2_sweep.png"), metric="macs"))


if __name__ == "__main__":
    main()
