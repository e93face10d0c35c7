"""fxflops against the counters people use instead, on one machine, in one run.

    python benchmarks/peers.py                               # full zoo, print the tables
    python benchmarks/peers.py --write docs/benchmarks.md    # ... and regenerate the docs page
    python benchmarks/peers.py --quick                       # three models, one timed repeat

For every (model, tool) pair a fresh child process (forked from a server that already imported
torch, transformers and the peers) builds the model in eval mode, then, under ``torch.no_grad()``
as a user would, calls the tool once to measure its peak memory (growth of the resident set during
the first call) and ``--repeat`` more times to take the best wall and CPU times. Peers are optional installs
(``pip install -e ".[bench]"``): a missing one is reported as such, not fatal.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import io
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    PeakRSS, best_of, fmt_bytes, fmt_seconds, human, isolated, isolation, machine, markdown_table,
)

SEQ = 128  # tokens for the language models


# ---- the zoo ----------------------------------------------------------------------------------------


def _torchvision(name: str, size: int) -> Callable[[], tuple]:
    def build() -> tuple:
        import torch
        import torchvision

        return torchvision.models.get_model(name, weights=None), torch.randn(1, 3, size, size)

    return build


def _hf(config_cls: str, model_cls: str, **config: Any) -> Callable[[], tuple]:
    """A randomly initialised Hugging Face model. Decoders get ``use_cache=False``: a forward that
    returns no KV cache (the FLOPs are the same) is one the JIT-based peers can trace."""
    def build() -> tuple:
        import torch
        import transformers

        cfg = getattr(transformers, config_cls)(**config)
        model = getattr(transformers, model_cls)(cfg)
        return model, {"input_ids": torch.randint(0, cfg.vocab_size, (1, SEQ))}

    return build


@dataclass
class Model:
    name: str
    label: str
    build: Callable[[], tuple]


ZOO = {m.name: m for m in [
    Model("resnet50", "resnet50 · 1×3×224×224", _torchvision("resnet50", 224)),
    Model("mobilenet_v3_large", "mobilenet_v3_large · 224", _torchvision("mobilenet_v3_large", 224)),
    Model("efficientnet_b0", "efficientnet_b0 · 224", _torchvision("efficientnet_b0", 224)),
    Model("vit_b_16", "vit_b_16 · 224", _torchvision("vit_b_16", 224)),
    Model("swin_t", "swin_t · 224", _torchvision("swin_t", 224)),
    Model("convnext_tiny", "convnext_tiny · 224", _torchvision("convnext_tiny", 224)),
    Model("densenet121", "densenet121 · 224", _torchvision("densenet121", 224)),
    Model("inception_v3", "inception_v3 · 299", _torchvision("inception_v3", 299)),
    Model("bert-base", f"BERT-base (BertModel) · {SEQ} tokens", _hf("BertConfig", "BertModel")),
    Model("gpt2", f"GPT-2 (GPT2LMHeadModel) · {SEQ} tokens", _hf("GPT2Config", "GPT2LMHeadModel", use_cache=False)),
    # A small Llama (12 layers of 768, grouped-query attention, 32k vocab): the architecture of the
    # big ones at a size every peer can execute on a CPU in seconds.
    Model("llama-12x768", f"Llama 12×768 GQA (LlamaForCausalLM) · {SEQ} tokens", _hf(
        "LlamaConfig", "LlamaForCausalLM", hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=12, num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048,
        use_cache=False)),
]}
QUICK = ["resnet50", "vit_b_16", "gpt2"]


# ---- the tools ----------------------------------------------------------------------------------------


@dataclass
class Result:
    macs: int | None = None
    flops: int | None = None
    params: int | None = None
    note: str = ""
    macs_from_flops: bool = False  # MACs shown as the tool's FLOPs / 2


def _positional(example: Any) -> tuple:
    """The example as positional arguments: every zoo model takes its input (or input_ids) first."""
    return tuple(example.values()) if isinstance(example, dict) else (example,)


def _call(model: Any, example: Any) -> Any:
    return model(**example) if isinstance(example, dict) else model(example)


def run_fxflops(model: Any, example: Any) -> Result:
    from fxflops import trace_flops

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = trace_flops(model, example)
    note = f"capture: {r.capture}"
    dynamo = sum(1 for n in r.nodes if "through dynamo" in n.reason)
    if dynamo and r.capture != "dynamo":
        note += f" ({dynamo} opaque nodes priced through dynamo)"
    if r.uncounted:
        note += f"; uncounted: {', '.join(sorted({n.target for n in r.uncounted}))}"
    return Result(r.total_macs, r.total_flops, r.total_params, note)


def run_thop(model: Any, example: Any) -> Result:
    import thop

    macs, params = thop.profile(model, inputs=_positional(example), verbose=False)
    return Result(int(macs), None, int(params))


def run_fvcore(model: Any, example: Any) -> Result:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    a = FlopCountAnalysis(model, _positional(example))
    a.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    total = a.total()  # fvcore's "flop" is one multiply-add: a MAC count
    skipped = a.unsupported_ops()
    note = ""
    if skipped:
        names = sorted(skipped, key=lambda k: -skipped[k])
        note = f"skipped {sum(skipped.values())} ops: " + ", ".join(n.replace("aten::", "") for n in names[:4])
        note += ", …" if len(names) > 4 else ""
    return Result(int(total), None, int(parameter_count(model)[""]), note)


def _ptflops(backend: str) -> Callable[[Any, Any], Result]:
    def run(model: Any, example: Any) -> Result:
        from ptflops import get_model_complexity_info

        printed = io.StringIO()
        ctor = (lambda _: dict(example)) if isinstance(example, dict) else (lambda _: example)
        shape = tuple(_positional(example)[0].shape[1:])
        with contextlib.redirect_stdout(printed):  # ptflops prints its exceptions and returns None
            macs, params = get_model_complexity_info(
                model, shape, input_constructor=ctor, as_strings=False, print_per_layer_stat=False,
                verbose=False, backend=backend,
            )
        if macs is None:
            lines = [ln for ln in printed.getvalue().splitlines() if ln.strip()]
            raise RuntimeError(lines[-1] if lines else "ptflops returned None")
        return Result(int(macs), None, int(params))

    return run


def run_calflops(model: Any, example: Any) -> Result:
    from calflops import calculate_flops

    kw = dict(print_results=False, print_detailed=False, output_as_string=False)
    if isinstance(example, dict):
        flops, macs, params = calculate_flops(model, kwargs=dict(example), **kw)
    else:
        flops, macs, params = calculate_flops(model, args=[example], **kw)
    return Result(int(macs), int(flops), int(params))


def run_torchprofile(model: Any, example: Any) -> Result:
    from torchprofile import profile_macs

    return Result(int(profile_macs(model, _positional(example))))


def run_torch_flops(model: Any, example: Any) -> Result:
    from torch_flops import TorchFLOPsByFX

    counter = TorchFLOPsByFX(model)
    counter.propagate(*_positional(example))
    flops = counter.print_total_flops(show=False)
    missing = sum(1 for row in counter.result_table if not isinstance(row[4], int))
    return Result(None, int(flops), None, f"{missing} nodes not recognized" if missing else "")


def run_flop_counter_mode(model: Any, example: Any) -> Result:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        _call(model, example)
    flops = fc.get_total_flops()  # 2 per multiply-accumulate of the aten matmuls/convs, nothing else
    return Result(flops // 2, flops, None, macs_from_flops=True)


@dataclass
class Tool:
    name: str
    dist: str  # the PyPI distribution
    module: str  # what must import
    run: Callable[[Any, Any], Result]
    reports: str  # what its number means, for the legend


TOOLS = {t.name: t for t in [
    Tool("fxflops", "fxflops", "fxflops", run_fxflops, "MACs of contractions; FLOPs = 2·MACs + every other op"),
    Tool("thop", "thop", "thop", run_thop, "\"MACs\": per-module forward hooks; BN/pool/activation elements added in"),
    Tool("fvcore", "fvcore", "fvcore", run_fvcore, "\"flops\" = one per multiply-add (a MAC count) from a JIT trace"),
    Tool("ptflops (pytorch)", "ptflops", "ptflops", _ptflops("pytorch"), "MACs: module hooks plus patched torch.nn.functional calls"),
    Tool("ptflops (aten)", "ptflops", "ptflops", _ptflops("aten"), "MACs of aten mm/bmm/addmm/convolution ops"),
    Tool("calflops", "calflops", "calflops", run_calflops, "MACs and FLOPs from patched torch functions and module hooks"),
    Tool("torchprofile", "torchprofile", "torchprofile", run_torchprofile, "MACs from a JIT trace"),
    Tool("torch_flops", "torch_flops", "torch_flops", run_torch_flops, "FLOPs from fx.symbolic_trace + running every node"),
    Tool("FlopCounterMode", "torch", "torch.utils.flop_counter", run_flop_counter_mode,
         "torch.utils.flop_counter: FLOPs = 2·MACs of aten matmul/conv/attention kernels (MACs shown = FLOPs/2)"),
]}


def installed(tool: Tool) -> bool:
    try:
        return importlib.util.find_spec(tool.module) is not None
    except ModuleNotFoundError:
        return False


def version(tool: Tool) -> str:
    try:
        return importlib.metadata.version(tool.dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# ---- one measurement (runs in a child process) -----------------------------------------------------------


def measure(model_name: str, tool_name: str, repeat: int) -> dict:
    import torch

    torch.manual_seed(0)
    model, example = ZOO[model_name].build()
    model.eval()
    run = TOOLS[tool_name].run
    with torch.no_grad():
        with PeakRSS() as mem:
            t, c = time.perf_counter(), time.process_time()
            res = run(model, example)
            first, first_cpu = time.perf_counter() - t, time.process_time() - c
        wall, cpu = best_of(lambda: run(model, example), repeat) if repeat else (first, first_cpu)
    return dict(res.__dict__, first_s=first, best_s=wall, cpu_s=cpu, peak_bytes=mem.extra, exact_peak=mem.exact)


@dataclass
class Row:
    tool: str
    status: str  # ok | error | timeout | missing
    value: dict = field(default_factory=dict)
    reason: str = ""


def measure_all(models: list[str], tools: list[str], repeat: int, timeout: float, log: Callable[[str], None]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for m in models:
        rows = out.setdefault(m, [])
        for t in tools:
            tool = TOOLS[t]
            if not installed(tool):
                rows.append(Row(t, "missing", reason=f"not installed (pip install {tool.dist})"))
                log(f"  {m:20s} {t:18s} not installed")
                continue
            start = time.perf_counter()
            status, value = isolated(measure, m, t, repeat, timeout=timeout)
            if status == "ok":
                rows.append(Row(t, "ok", value))
                log(f"  {m:20s} {t:18s} MACs {human(value['macs']):>7s}  best {fmt_seconds(value['best_s']):>8s}  "
                    f"peak {fmt_bytes(value['peak_bytes']):>10s}  ({time.perf_counter() - start:.0f} s)")
            else:
                rows.append(Row(t, status, reason=str(value)))
                log(f"  {m:20s} {t:18s} {status}: {value}")
    return out


# ---- the report -------------------------------------------------------------------------------------------


def _ref(rows: list[Row]) -> dict | None:
    ours = next((r for r in rows if r.tool == "fxflops"), None)
    return ours.value if ours and ours.status == "ok" else None


def _delta(value: dict, ref: dict | None) -> str:
    """The tool's number against fxflops': MACs where the tool gives MACs, else FLOPs."""
    if ref is None:
        return "—"
    if value.get("macs") is not None and ref.get("macs"):
        mine, theirs, what = value["macs"], ref["macs"], ""
    elif value.get("flops") is not None and ref.get("flops"):
        mine, theirs, what = value["flops"], ref["flops"], " (FLOPs)"
    else:
        return "—"
    d = 100.0 * (mine - theirs) / theirs
    if mine == theirs:
        return "=" + what
    return (f"{d:+.1f}%" if abs(d) >= 0.1 else f"{d:+.3f}%") + what


def _fmt_macs(v: dict) -> str:
    s = human(v.get("macs"))
    return s + "†" if v.get("macs_from_flops") and v.get("macs") is not None else s


def model_table(rows: list[Row]) -> str:
    ref = _ref(rows)
    body = []
    for r in rows:
        if r.status == "ok":
            v = r.value
            body.append([f"**{r.tool}**" if r.tool == "fxflops" else r.tool, _fmt_macs(v), human(v.get("flops")),
                         human(v.get("params")), _delta(v, ref), fmt_seconds(v["best_s"]), fmt_seconds(v.get("cpu_s")),
                         fmt_bytes(v["peak_bytes"]), v.get("note", "")])
        else:
            body.append([r.tool, "—", "—", "—", "—", "—", "—", "—", f"**{r.status}**: {r.reason}"])
    head = ["tool", "MACs", "FLOPs", "params", "vs fxflops", "time (best)", "CPU time", "peak mem", "notes"]
    return markdown_table(head, body, right=(1, 2, 3, 4, 5, 6, 7))


def summary_table(results: dict[str, list[Row]], tools: list[str]) -> str:
    """MACs per model and tool, fxflops first; the README takes its comparison table from here."""
    head = ["model"] + tools
    body = []
    for m, rows in results.items():
        by = {r.tool: r for r in rows}
        cells = [ZOO[m].name]
        for t in tools:
            r = by.get(t)
            if r is None:
                cells.append("")
            elif r.status == "ok":
                cells.append(_fmt_macs(r.value) if r.value.get("macs") is not None else human(r.value.get("flops")) + " FLOPs")
            else:
                cells.append("fails" if r.status == "error" else r.status)
        body.append(cells)
    return markdown_table(head, body, right=range(1, len(head)))


def speed_table(results: dict[str, list[Row]]) -> tuple[str, dict[str, int], int]:
    """fxflops' time and memory next to the fastest peer that produced a number, by wall and by CPU time.
    Also returns on how many models fxflops beat every peer, per clock."""
    head = ["model", "fxflops wall", "fastest peer (wall)", "its wall", "speed-up", "fxflops CPU",
            "fastest peer (CPU)", "its CPU", "speed-up", "fxflops peak mem", "peers' peak mem"]
    body, wins, n = [], {"best_s": 0, "cpu_s": 0}, 0
    for m, rows in results.items():
        ref = _ref(rows)
        peers = [r for r in rows if r.tool != "fxflops" and r.status == "ok" and r.value.get("cpu_s") is not None]
        if ref is None or not peers:
            body.append([m, "fails" if ref is None else fmt_seconds(ref["best_s"])] + ["—"] * 9)
            continue
        n += 1
        cells = [m]
        for clock in ("best_s", "cpu_s"):
            fast = min(peers, key=lambda r: r.value[clock])
            wins[clock] += ref[clock] < fast.value[clock]
            cells += [fmt_seconds(ref[clock]), fast.tool, fmt_seconds(fast.value[clock]),
                      f"{fast.value[clock] / ref[clock]:.1f}×"]
        mems = [r.value["peak_bytes"] for r in peers]
        cells += [fmt_bytes(ref["peak_bytes"]), f"{fmt_bytes(min(mems))} – {fmt_bytes(max(mems))}"]
        body.append(cells)
    return markdown_table(head, body, right=(1, 3, 4, 5, 7, 8, 9)), wins, n


def slower_text(results: dict[str, list[Row]]) -> str:
    """Which models fxflops lost on (by CPU time), split by how fxflops captured them."""
    via_dynamo, via_fx = [], []
    for m, rows in results.items():
        ref = _ref(rows)
        peers = [r.value["cpu_s"] for r in rows if r.tool != "fxflops" and r.status == "ok" and r.value.get("cpu_s")]
        if ref is None or not peers or ref["cpu_s"] < min(peers):
            continue
        (via_dynamo if "dynamo" in ref.get("note", "") else via_fx).append(m)
    parts = []
    if via_fx:
        parts.append(f"{', '.join(via_fx)}: small models whose CPU forward pass costs less than tracing their graph")
    if via_dynamo:
        parts.append(f"{', '.join(via_dynamo)}: captured (wholly or in part) through dynamo, which costs about "
                     "one eager pass of the model")
    return ("fxflops is slower by CPU time on " + "; on ".join(parts) + ".") if parts else ""


def failures(results: dict[str, list[Row]]) -> list[str]:
    out = []
    for m, rows in results.items():
        for r in rows:
            if r.status in ("error", "timeout"):
                out.append(f"- **{r.tool}** on {m}: {r.reason}")
    return out


def markdown(results: dict[str, list[Row]], tools: list[str], args: argparse.Namespace, elapsed: float) -> str:
    import torch

    cmd = "python benchmarks/peers.py" + (" --quick" if args.quick else "") + f" --repeat {args.repeat} --write docs/benchmarks.md"
    speed, wins, n = speed_table(results)
    lines = [
        "# fxflops against its peers",
        "",
        f"Generated by `{cmd}` ({elapsed / 60:.1f} min of measuring"
        + ("; some rows re-measured later with `--merge`, under a different machine load" if args.merge else "") + "); do not edit by hand.",
        "",
        f"Machine: {machine()}. The machine was shared with other jobs, so times are indicative "
        "(each is the best of several runs, which filters out most of the noise).",
        "",
        "## How it was measured",
        "",
        "- Every zoo model is built with random weights (`weights=None`, Hugging Face models from their "
        "default config, nothing downloaded), put in **eval mode**, and every tool is called under "
        f"**`torch.no_grad()`**, as a user would. Language models get {SEQ} token ids, batch 1; the "
        "decoders are configured with `use_cache=False` (same FLOPs; without it the JIT-based peers "
        "cannot trace the returned `DynamicCache`).",
        "- Each (model, tool) pair runs in its **own child process**, forked from a server that already "
        "imported torch, transformers and the peers: imports are not timed, and no measurement inherits "
        "the heap of another.",
        "- **peak mem** is how much the process's resident set grew during the tool's *first* call: the "
        "kernel's high-water mark (`VmHWM`) is reset via `/proc/self/clear_refs` just before the call and "
        "read just after. Unlike `tracemalloc` this sees the C++ allocations (activations, weights copies) "
        "that dominate here; unlike an RSS delta in a later call it is not hidden by memory the allocator "
        "kept from an earlier call.",
        f"- **time** is the best wall-clock time of {args.repeat} calls after that first (warm-up) call; "
        "**CPU time** the best CPU time of the process over the same calls (all threads: the peers' "
        "forward passes use every core, fxflops one). CPU time does not count the time other jobs held "
        "the cores, so it is the steadier figure on a shared machine.",
        "- **MACs** is what each tool reports as MACs (fvcore calls it \"flops\"; it counts one per "
        "multiply-add). † = the tool reports FLOPs only, shown divided by 2. **vs fxflops** compares "
        "MACs with fxflops' MACs, or FLOPs with fxflops' FLOPs for tools that only give FLOPs.",
        "- fxflops runs on the same real model and input as the peers; it never executes the model "
        "(shapes are propagated on meta tensors).",
        "",
        "Tools and what their number means:",
        "",
    ]
    for t in tools:
        lines.append(f"- **{t}** {version(TOOLS[t])}: {TOOLS[t].reports}")
    lines += [
        "",
        "## Summary: MACs per model",
        "",
        summary_table(results, tools),
        "",
        "## Speed and memory: fxflops against the fastest peer",
        "",
        f"fxflops was faster than every peer that produced a number on {wins['best_s']} of {n} models by "
        f"wall-clock time and on {wins['cpu_s']} of {n} by CPU time. A speed-up below 1× means the fastest "
        "peer was faster. " + slower_text(results),
        "",
        speed,
        "",
        "## Per model",
        "",
    ]
    for m, rows in results.items():
        lines += [f"### {ZOO[m].label}", "", model_table(rows), ""]
    fails = failures(results)
    lines += ["## Failures", ""] + (fails or ["None."]) + [""]
    lines += [
        "## Reading the differences",
        "",
        "See [faq.md](faq.md) for why the numbers differ. In short: fxflops counts the functional ops "
        "(residual adds, `@`, `softmax`, attention) that module hooks (thop, ptflops' pytorch backend) "
        "never see; eval + `no_grad` makes `nn.MultiheadAttention` take PyTorch's fused fast path, whose "
        "kernel the aten-level counters (FlopCounterMode, ptflops aten, fvcore) have no formula for, so on "
        "vit_b_16 they miss the attention and its projections; thop/ptflops also add BatchNorm, pooling "
        "and activation element counts into their \"MACs\".",
        "",
    ]
    return "\n".join(lines)


def load_raw(path: str) -> tuple[dict[str, list[Row]], float]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return {m: [Row(**r) for r in rows] for m, rows in data["results"].items()}, data.get("elapsed_s", 0.0)


RAW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "peers.json")


def save(path: str, results: dict[str, list[Row]], elapsed: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = {"elapsed_s": elapsed, "results": {m: [r.__dict__ for r in rows] for m, rows in results.items()}}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)


def merged(path: str, fresh: dict[str, list[Row]], elapsed: float) -> tuple[dict[str, list[Row]], float]:
    """The raw file's results with the freshly measured (model, tool) pairs replaced, in zoo and tool order."""
    old, old_elapsed = load_raw(path)
    rows = {(m, r.tool): r for m, rs in old.items() for r in rs}
    rows.update({(m, r.tool): r for m, rs in fresh.items() for r in rs})
    out: dict[str, list[Row]] = {}
    for m in ZOO:
        got = [rows[(m, t)] for t in TOOLS if (m, t) in rows]
        if got:
            out[m] = got
    return out, old_elapsed + elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    p.add_argument("--models", nargs="+", choices=list(ZOO), help="models to run (default: the whole zoo)")
    p.add_argument("--tools", nargs="+", choices=list(TOOLS), help="tools to run (default: all)")
    p.add_argument("--repeat", type=int, default=None, help="timed calls after the warm-up (default 3, 1 with --quick)")
    p.add_argument("--timeout", type=float, default=300, help="seconds before one measurement is abandoned")
    p.add_argument("--write", metavar="FILE", help="write the Markdown report to FILE")
    p.add_argument("--raw", metavar="JSON", default=RAW,
                   help=f"where the raw measurements are kept next to --write (default {os.path.relpath(RAW)})")
    p.add_argument("--from-raw", action="store_true", help="measure nothing: rewrite the report from the raw file")
    p.add_argument("--merge", action="store_true",
                   help="re-measure only the --models/--tools asked for; keep every other result from the raw file")
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    models = args.models or (QUICK if args.quick else list(ZOO))
    tools = args.tools or list(TOOLS)

    if args.from_raw:
        results, elapsed = load_raw(args.raw)
    else:
        isolation(["torch", "torchvision", "transformers", "fxflops"] + sorted({TOOLS[t].module for t in tools}))
        start = time.perf_counter()
        print(f"{len(models)} models × {len(tools)} tools, best of {args.repeat}; {machine()}", flush=True)
        results = measure_all(models, tools, args.repeat, args.timeout, lambda s: print(s, flush=True))
        elapsed = time.perf_counter() - start
        if args.merge:
            results, elapsed = merged(args.raw, results, elapsed)
    shown = [t for t in TOOLS if any(r.tool == t for rows in results.values() for r in rows)]
    text = markdown(results, shown, args, elapsed)
    if args.write:
        if not args.from_raw:
            save(args.raw, results, elapsed)
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {args.write}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
