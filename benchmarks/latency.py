"""FLOPs are not speed: ResNet-34 against MobileNetV3-Large on this CPU.

    python benchmarks/latency.py                   # print the table
    python benchmarks/latency.py --write           # and write it into docs/roofline.md, with the chart
    python benchmarks/latency.py --threads 2 --batch 8

For each model: MACs, FLOPs, bytes moved (fxflops' one-kernel-per-node model), the roofline estimate on the
``"cpu"`` device (calibrated here, for the same thread count), the sum of the per-node medians of
``trace_flops(..., measure=True)``, and the median eager forward; then the ratio of each, MobileNet over
ResNet; the measured against the estimated time of dense convolutions, depthwise ones and everything else. Below
it, for each model, what a fusing compiler would save on its top memory-bound chains: chains of
memory-bound nodes each feeding only the next, whose intermediates a fused kernel never writes out. Last, a
Llama-2-7B-shaped model's prefill against a decode step on the ``a100`` roofline (docs/roofline.md, LLM phases).

One intra-op thread by default: on a shared machine a parallel region waits for its slowest thread, which makes
timings swing far more than the work does.
"""
from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
from pathlib import Path

import torch
import torchvision

from fxflops import trace_flops
from fxflops.devices import calibrate_cpu
from fxflops.pipeline.latency import time_forward
from fxflops.passes.roofline import Bound
from fxflops.report.tables import grid
from fxflops.types import OP_KINDS
from fxflops.units import human, seconds

DOC = Path(__file__).resolve().parent.parent / "docs" / "roofline.md"
CHART = DOC.parent / "images" / "roofline_mobilenet_v3_large_cpu.png"  # the measured nodes of MobileNetV3-Large
BEGIN, END = "<!-- benchmarks/latency.py: begin -->", "<!-- benchmarks/latency.py: end -->"
LLM_BEGIN, LLM_END = "<!-- llm-phases: begin -->", "<!-- llm-phases: end -->"
MODELS = {"ResNet-34": "resnet34", "MobileNetV3-Large": "mobilenet_v3_large"}


def fused_chains(report, est, k: int = 3) -> tuple[list[tuple[list[str], int]], int]:
    """The ``k`` memory-bound chains whose fusion saves the most bytes, and the saving over all chains. A chain
    links memory-bound nodes without MACs (a compiler fuses pointwise work and leaves convolutions to their own
    kernels) where each is the only user of the one before (nodes that move nothing, views, are looked
    through); fusing it saves writing and reading back each intermediate: 2 × its bytes."""
    gm = report.graph_modules[0]
    macs = {n.name: n.macs for n in report.nodes}
    bound = {name: Bound.NONE if e.bound == Bound.NONE else Bound.MEMORY if e.bound == Bound.MEMORY and not macs[name]
             else Bound.COMPUTE for name, e in est.nodes.items()}

    def output_bytes(n) -> int:
        v = n.meta.get("val")
        return int(v.numel()) * v.element_size() if isinstance(v, torch.Tensor) else 0

    def next_op(n):
        """The memory-bound node ``n`` alone feeds, through views; None if it feeds several or a compute one."""
        while len(n.users) == 1:
            (n,) = n.users
            if n.op not in OP_KINDS:
                return None
            if bound.get(n.name) == Bound.MEMORY:
                return n
            if bound.get(n.name) != Bound.NONE:
                return None
        return None

    chains, seen = [], set()
    for n in gm.graph.nodes:
        if n.name in seen or bound.get(n.name) != Bound.MEMORY:
            continue
        chain, saved, cur = [n.name], 0, n
        while (nxt := next_op(cur)) is not None and nxt.name not in seen:
            saved += 2 * output_bytes(cur)
            chain.append(nxt.name)
            cur = nxt
        seen.update(chain)
        if len(chain) > 1:
            chains.append((chain, saved))
    chains.sort(key=lambda c: -c[1])
    return chains[:k], sum(s for _, s in chains)


def kinds(model, report, est) -> dict[str, tuple[int, float, float]]:
    """(nodes, measured s, estimated s) for dense convolutions, depthwise/grouped ones, and every other op node."""
    out: dict[str, list] = {"dense conv": [0, 0.0, 0.0], "depthwise conv": [0, 0.0, 0.0], "other ops": [0, 0.0, 0.0]}
    for n in report.nodes:
        if n.kind not in OP_KINDS or n.measured is None:
            continue
        if n.op == "conv2d":
            key = "depthwise conv" if model.get_submodule(n.module_path).groups > 1 else "dense conv"
        else:
            key = "other ops"
        out[key][0] += 1
        out[key][1] += n.measured
        out[key][2] += est.nodes[n.name].time
    return {k: tuple(v) for k, v in out.items()}


def measure(name: str, batch: int, repeats: int, rounds: int, device) -> dict:
    """The model's figures; the timings are the median round of ``rounds`` (each a full measure=True run and an
    eager timing), which a shared machine's bursts of load move far less than any single run."""
    model = torchvision.models.get_model(MODELS[name], weights=None).eval()
    x = torch.randn(batch, 3, 224, 224)
    runs = []
    for _ in range(rounds):
        report = trace_flops(model, x, measure=True, repeats=repeats)
        eager = time_forward(model, (x,), {}, torch.device("cpu"), repeats=repeats)
        runs.append((report.total_measured, eager, report))
    measured = statistics.median(r[0] for r in runs)
    eager = statistics.median(r[1] for r in runs)
    report = min(runs, key=lambda r: abs(r[0] - measured))[2]  # the per-node times of the median round
    est = report.roofline(device)
    memory_share = est.time_by_bound()["memory"] / est.total_time
    return dict(name=name, report=report, est=est, macs=report.total_macs, flops=report.total_flops,
                bytes=report.total_bytes, est_time=est.total_time, measured=measured, eager=eager,
                memory_share=memory_share, chains=fused_chains(report, est), kinds=kinds(model, report, est))


def tables(rows: list[dict], device) -> str:
    a, b = rows
    head = ("model", "MACs", "FLOPs", "bytes", "FLOP/B", "est. time (cpu)", "memory-bound share of est.",
            "measured (Σ nodes)", "eager forward")
    out = [head]
    for r in rows:
        out.append((r["name"], human(r["macs"]), human(r["flops"]), human(r["bytes"]) + "B",
                    f"{r['flops'] / r['bytes']:.3g}", seconds(r["est_time"]), f"{100 * r['memory_share']:.0f}%",
                    seconds(r["measured"]), seconds(r["eager"])))
    ratio = lambda key: f"{b[key] / a[key]:.3f} ({100 * (1 - b[key] / a[key]):+.0f}%)".replace("+", "−", 1)
    out.append((f"{b['name']} / {a['name']}", ratio("macs"), ratio("flops"), ratio("bytes"), "",
                ratio("est_time"), "", ratio("measured"), ratio("eager")))
    text = [grid(out, align_right=tuple(range(1, len(head))))]
    text.append("")
    text.append(f"cpu device: {device.peak() / 1e9:.1f} GFLOP/s, {device.bandwidth / 1e9:.1f} GB/s "
                f"(ridge {device.ridge():.2f} FLOP/B); {device.source.split('; cached')[0]}.")
    text.append("")
    split = [("model", "nodes", "measured", "estimated", "measured / estimated")]
    for r in rows:
        for kind, (count, meas, est) in r["kinds"].items():
            if count:
                split.append((f"{r['name']}: {kind}", str(count), seconds(meas), seconds(est),
                              f"{meas / est:.2f}" if est else "-"))
    text.append(grid(split, align_right=(1, 2, 3, 4)))
    text.append("")
    for r in rows:
        (chains, total) = r["chains"]
        top = "; ".join(f"{' → '.join(_op(r['report'], n) for n in c)} ({human(s)}B)" for c, s in chains)
        text.append(f"- **{r['name']}**: fusing every memory-bound chain would save {human(total)}B, "
                    f"{100 * total / r['bytes']:.0f}% of the bytes counted. Top chains: {top}.")
    return "\n".join(text)


def _op(report, name: str) -> str:
    rec = next(n for n in report.nodes if n.name == name)
    return f"{rec.op} `{rec.module_path or rec.name}`"


def llm_phases(device: str = "a100") -> str:
    """A Llama-2-7B-shaped model (from its config, on meta, bfloat16): a 2048-token prefill against one decode
    step with a 2048-token KV cache, on ``device``'s roofline."""
    import transformers as T

    cfg = T.LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=32, vocab_size=32000)
    with torch.device("meta"):
        model = T.LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    ids = torch.zeros(1, 2048, dtype=torch.long, device="meta")
    prefill = trace_flops(model, {"input_ids": ids})
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).cache
    decode = trace_flops(model, {"input_ids": ids[:, :1], "cache": cache})
    rows = [("phase", "FLOPs", "bytes", "FLOP/B", f"est. time ({device})", "memory-bound share", "tokens/s")]
    for name, r, tokens in (("prefill, 2048 tokens", prefill, 2048), ("decode, 1 token, 2048 cached", decode, 1)):
        est = r.roofline(device)
        share = est.time_by_bound()["memory"] / est.total_time
        rows.append((name, human(r.total_flops), human(r.total_bytes) + "B", f"{r.intensity:.3g}",
                     seconds(est.total_time), f"{100 * share:.0f}%", f"{tokens / est.total_time:,.0f}"))
    return grid(rows, align_right=(1, 2, 3, 4, 5, 6))


def _fill(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text or end not in text:
        sys.exit(f"{DOC} has no {begin} ... {end} markers")
    return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{body}\n{end}", text, flags=re.S)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per node and per forward (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="whole measurements per model, the median kept (default 3)")
    p.add_argument("--write", action="store_true", help=f"write the table into {DOC.relative_to(DOC.parent.parent)}")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = calibrate_cpu(refresh=True)
    rows = [measure(name, args.batch, args.repeats, args.rounds, device) for name in MODELS]
    where = (f"batch {args.batch}, 224×224, float32, {args.threads} thread(s), median of {args.rounds} rounds of "
             f"{args.repeats} repeats; "
             f"torch {torch.__version__}, Python {platform.python_version()}")
    body = f"*{where}; `python benchmarks/latency.py --write`.*\n\n" + tables(rows, device)
    print(body)
    llm = llm_phases()
    print()
    print(llm)
    if args.write:
        text = _fill(DOC.read_text(), BEGIN, END, body)
        DOC.write_text(_fill(text, LLM_BEGIN, LLM_END, llm))
        rows[1]["est"].plot(str(CHART), title=f"MobileNetV3-Large, this CPU ({args.threads} thread(s), batch "
                            f"{args.batch}): measured nodes, area = share of time")
        print(f"\nwrote {DOC} and {CHART}")


if __name__ == "__main__":
    main()
