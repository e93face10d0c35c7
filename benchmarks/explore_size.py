"""Size and export time of the explorer page (report.explore) on a CNN, two transformers and a 70B LLM config.

    python benchmarks/explore_size.py [--out DIR]

Every model is built on the meta device (no weights), counted once, then exported; the export time is the best of
two runs (Python: the data and one DOT text per drawn module; Graphviz: one `dot` run per drawing, in parallel).
Prints a Markdown table: the one in docs/graph.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import fxflops  # noqa: E402


def vision(name: str):
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None).eval()
    return model, torch.empty(1, 3, 224, 224, device="meta")


def bert_base():
    from transformers import BertConfig, BertModel

    with torch.device("meta"):
        model = BertModel(BertConfig()).eval()
    return model, {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")}


def llama_70b():
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=80, hidden_size=8192, intermediate_size=28672,
                                             num_attention_heads=64, num_key_value_heads=8)).eval()
    return model, {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")}


MODELS = {"resnet50": lambda: vision("resnet50"), "BERT-base (128 tokens)": bert_base,
          "ViT-B/16": lambda: vision("vit_b_16"), "Llama-2-70B config (128 tokens)": llama_70b}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="keep the pages in DIR (default: a temporary directory)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="explore_size_")
    os.makedirs(out, exist_ok=True)
    warnings.simplefilter("ignore")
    rows = ["| model | capture | op nodes | modules | drawings | export s | file size |", "|---|---|--:|--:|--:|--:|--:|"]
    for name, build in MODELS.items():
        model, x = build()
        report = fxflops.trace_flops(model, x)
        path = os.path.join(out, name.split()[0].replace("/", "_").lower() + ".html")
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            report.explore(path)
            best = min(best, time.perf_counter() - t)
        text = open(path, encoding="utf-8").read()
        drawings = text.count("<svg")
        ops = sum(1 for n in report.nodes if n.kind in fxflops.types.OP_KINDS)
        rows.append(f"| {name} | {report.capture} | {ops:,} | {len(report.modules):,} | {drawings} | {best:.2f} | "
                    f"{os.path.getsize(path) / 1e6:.2f} MB |")
        print(rows[-1], file=sys.stderr)
    print("\n".join(rows))
    print(f"\n(pages in {out}; torch {torch.__version__}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
