"""Zoo audit: run fxflops over a zoo of real models and list what it could not count.

For every torchvision classification model, the torchvision segmentation and detection models, a set
of timm families and the Hugging Face models of the capture issue, it prints the capture path that
worked, the number of op nodes, the targets left uncounted (or counted with uncounted ops inside a
fallback capture), MACs, FLOPs, the hook blind spot (FLOPs outside leaf module calls) and the analysis
time; then the uncounted targets across the zoo, most frequent first, and the models that failed.

    python benchmarks/zoo_audit.py --quick                        # one or two models per family (~1-2 min)
    python benchmarks/zoo_audit.py --write docs/zoo-audit.md      # the whole zoo, written as Markdown
    python benchmarks/zoo_audit.py --groups classification timm   # some groups only

Classification, segmentation and timm models are built and analysed on the ``meta`` device (no weights
are allocated, nothing is computed); detection models need real tensors (their post-processing depends
on values) and run on small images; the Hugging Face models use small configs.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import signal
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from tqdm import tqdm

import fxflops
from fxflops.units import human, percent
from fxflops.pipeline.workers import each

META = torch.device("meta")


@dataclass
class Entry:
    group: str
    name: str
    input: str
    build: Callable[[], tuple[torch.nn.Module, Any]]


@dataclass
class Result:
    entry: Entry
    capture: str = ""
    nodes: int = 0
    incomplete: dict[str, int] = field(default_factory=dict)  # target -> nodes
    macs: int = 0
    flops: int = 0
    blind: float = 0.0
    seconds: float = 0.0
    error: str = ""


# ---- the zoo ----------------------------------------------------------------------------------------


def _on_meta(make: Callable[[], torch.nn.Module], *shape: int) -> Callable[[], tuple]:
    def build() -> tuple:
        try:
            with torch.device(META):
                model = make()
        except NotImplementedError:  # a constructor that reads tensor values (RegNet's widths): real weights
            model = make()
        return model.eval(), torch.empty(*shape, device=META)

    return build


def torchvision_entries(module_name: str, group: str, quick: list[str] | None) -> list[Entry]:
    import torchvision

    module = getattr(torchvision.models, module_name) if module_name else torchvision.models
    out = []
    for name in torchvision.models.list_models(module=module):
        if quick is not None and name not in quick:
            continue
        if group == "classification":
            size = 299 if name == "inception_v3" else 224
            make = (lambda n=name: torchvision.models.get_model(n, weights=None))
        else:
            size = 224
            make = (lambda n=name: torchvision.models.get_model(n, weights=None, weights_backbone=None))
        out.append(Entry(group, name, f"1×3×{size}×{size}", _on_meta(make, 1, 3, size, size)))
    return out


DETECTION_SIZE = 320


def detection_entries(quick: list[str] | None) -> list[Entry]:
    import torchvision

    out = []
    for name in torchvision.models.list_models(module=torchvision.models.detection):
        if quick is not None and name not in quick:
            continue

        def build(n: str = name) -> tuple:
            torch.manual_seed(0)
            try:  # R-CNN, RetinaNet and FCOS resize to min_size (800 by default): keep it small
                model = torchvision.models.get_model(n, weights=None, weights_backbone=None,
                                                     min_size=DETECTION_SIZE, max_size=DETECTION_SIZE)
            except TypeError:  # SSD variants have their own fixed size
                model = torchvision.models.get_model(n, weights=None, weights_backbone=None)
            return model.eval(), ([torch.rand(3, DETECTION_SIZE, DETECTION_SIZE)],)

        out.append(Entry("detection", name, f"[3×{DETECTION_SIZE}×{DETECTION_SIZE}]", build))
    return out


TIMM = [
    "resnet18", "resnet50d", "resnext26ts", "efficientnet_b0", "efficientnetv2_rw_t", "mobilenetv3_large_100",
    "mobilenetv4_conv_small", "ghostnet_100", "regnety_002", "densenet121", "dla34", "dpn68", "cspresnet50",
    "hrnet_w18_small", "rexnet_100", "repvgg_a0", "convnext_atto", "convnextv2_atto", "nfnet_l0", "inception_v3",
    "vit_tiny_patch16_224", "deit_tiny_patch16_224", "beit_base_patch16_224", "eva02_tiny_patch14_224",
    "cait_xxs24_224", "xcit_nano_12_p16_224", "swin_tiny_patch4_window7_224", "swinv2_cr_tiny_ns_224",
    "maxvit_tiny_tf_224", "coatnet_0_rw_224", "levit_128s", "mobilevit_xxs", "mobilevitv2_050", "edgenext_xx_small",
    "efficientformer_l1", "efficientformerv2_s0", "efficientvit_b0", "fastvit_t8", "poolformer_s12", "mixer_s16_224",
    "resmlp_12_224", "gmlp_ti16_224", "convmixer_768_32", "pvt_v2_b0", "twins_svt_small", "crossvit_tiny_240",
    "tnt_s_patch16_224", "volo_d1_224", "sequencer2d_s", "gcvit_xxtiny", "nextvit_small", "hgnetv2_b0",
    "repvit_m1", "tiny_vit_5m_224", "davit_tiny", "focalnet_tiny_srf", "inception_next_tiny", "mambaout_femto",
]
TIMM_QUICK = ["resnet18", "efficientnet_b0", "vit_tiny_patch16_224", "swin_tiny_patch4_window7_224",
              "maxvit_tiny_tf_224", "levit_128s"]


def timm_entries(quick: bool) -> list[Entry]:
    import timm

    out = []
    available = set(timm.list_models())
    for name in TIMM_QUICK if quick else TIMM:
        if name not in available:
            continue

        def make(n: str = name) -> torch.nn.Module:
            return timm.create_model(n, pretrained=False)

        def build(n: str = name) -> tuple:
            try:
                with torch.device(META):
                    model = make(n)
            except NotImplementedError:  # a constructor that reads tensor values: real weights
                model = make(n)
            c, h, w = model.pretrained_cfg.get("input_size", (3, 224, 224))
            return model.eval(), torch.empty(1, c, h, w, device=META)

        out.append(Entry("timm", name, "default cfg", build))
    return out


SEQ = 32


def _hf(model_cls: str, config_cls: str, extra_inputs: tuple[str, ...] = (), **config: Any) -> Callable[[], tuple]:
    def build() -> tuple:
        import transformers

        torch.manual_seed(0)
        cfg = getattr(transformers, config_cls)(**config)
        model = getattr(transformers, model_cls)(cfg).eval()
        if model_cls == "ViTModel":
            return model, {"pixel_values": torch.randn(1, 3, cfg.image_size, cfg.image_size)}
        ids = torch.randint(0, cfg.vocab_size, (1, SEQ))
        example = {"input_ids": ids}
        for name in extra_inputs:
            example[name] = ids.clone()
        return model, example

    return build


SMALL = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)


def hf_entries(quick: bool) -> list[Entry]:
    models = [
        Entry("huggingface", "BertModel", f"ids 1×{SEQ}", _hf("BertModel", "BertConfig", **SMALL)),
        Entry("huggingface", "GPT2LMHeadModel", f"ids 1×{SEQ}",
              _hf("GPT2LMHeadModel", "GPT2Config", n_embd=128, n_layer=2, n_head=4, use_cache=False)),
        Entry("huggingface", "LlamaForCausalLM", f"ids 1×{SEQ}",
              _hf("LlamaForCausalLM", "LlamaConfig", num_key_value_heads=2, vocab_size=1000, use_cache=False,
                  **SMALL)),
        Entry("huggingface", "T5ForConditionalGeneration", f"ids + decoder ids 1×{SEQ}",
              _hf("T5ForConditionalGeneration", "T5Config", ("decoder_input_ids",), d_model=128, d_ff=256,
                  num_layers=2, num_heads=4, d_kv=32, vocab_size=1000, use_cache=False)),
        Entry("huggingface", "ViTModel", "1×3×64×64",
              _hf("ViTModel", "ViTConfig", image_size=64, patch_size=16, **SMALL)),
    ]
    return models[:2] if quick else models


CLASSIFICATION_QUICK = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "densenet121",
                        "convnext_tiny", "swin_t", "vit_b_16", "maxvit_t", "inception_v3", "googlenet",
                        "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5", "alexnet"]
SEGMENTATION_QUICK = ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"]
DETECTION_QUICK = ["fasterrcnn_mobilenet_v3_large_320_fpn"]
GROUPS = ("classification", "segmentation", "detection", "timm", "huggingface")


def zoo(groups: tuple[str, ...], quick: bool) -> list[Entry]:
    entries: list[Entry] = []
    if "classification" in groups:
        entries += torchvision_entries("", "classification", CLASSIFICATION_QUICK if quick else None)
    if "segmentation" in groups:
        entries += torchvision_entries("segmentation", "segmentation", SEGMENTATION_QUICK if quick else None)
    if "detection" in groups:
        entries += detection_entries(DETECTION_QUICK if quick else None)
    if "timm" in groups:
        entries += timm_entries(quick)
    if "huggingface" in groups:
        entries += hf_entries(quick)
    return entries


# ---- running ----------------------------------------------------------------------------------------


class Timeout(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` on the way turns it into another error."""


@contextlib.contextmanager
def time_limit(seconds: int):
    def raise_timeout(signum, frame):  # noqa: ARG001
        raise Timeout(f"over {seconds} s")

    old = signal.signal(signal.SIGALRM, raise_timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _first_line(exc: BaseException) -> str:
    """The error's first line; for a capture that failed on both paths, what dynamo hit too."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines()]
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}"
    text += "".join(f" — {ln}" for ln in lines[1:] if ln.startswith("dynamo:"))
    return text[:400]


class _Run:
    """One entry's audit, picklable: the result goes back without its entry (the parent has it; builds are closures)."""

    def __init__(self, capture: str, timeout: int) -> None:
        self.capture, self.timeout = capture, timeout

    def __call__(self, entry: Entry) -> Result:
        res = run(entry, self.capture, self.timeout)
        res.entry = None  # type: ignore[assignment]
        return res


def run_all(entries: list[Entry], capture: str, timeout: int, jobs: int) -> Iterator[tuple[int, Result]]:
    """Each entry's result as it comes; with ``jobs`` > 1 from that many worker processes (each analysis is
    independent, so the results are the serial ones), with a progress bar on a terminal."""
    for i, res in each(_Run(capture, timeout), entries, workers=jobs, desc="zoo"):
        res.entry = entries[i]
        yield i, res


def run(entry: Entry, capture: str, timeout: int) -> Result:
    res = Result(entry)
    try:
        with time_limit(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, example = entry.build()
            t0 = time.perf_counter()
            report = fxflops.trace_flops(model, example, capture=capture)
            res.seconds = time.perf_counter() - t0
            audit = report.audit()
    except (Exception, Timeout) as exc:  # noqa: BLE001 - a model that fails is recorded, not fatal
        res.error = _first_line(exc)
        return res
    res.capture = report.capture
    res.nodes = sum(r.nodes for r in audit.rows)
    res.incomplete = {r.target: r.nodes for r in audit.incomplete}
    res.macs, res.flops = report.total_macs, report.total_flops
    res.blind = audit.blind_spot.flops_share
    return res


# ---- reporting --------------------------------------------------------------------------------------


def _table(rows: list[tuple]) -> list[str]:
    def cell(x: Any) -> str:
        return " ".join(str(x).split()).replace("|", "\\|")

    return ["| " + " | ".join(cell(c) for c in rows[0]) + " |", "|" + "---|" * len(rows[0])] + \
        ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows[1:]]


def model_rows(results: list[Result]) -> list[tuple]:
    rows = [("group", "model", "input", "capture", "op nodes", "uncounted", "MACs", "FLOPs", "hook blind spot",
             "time")]
    for r in results:
        if r.error:
            continue
        unc = ", ".join(f"{t} ×{n}" for t, n in sorted(r.incomplete.items())) or "—"
        rows.append((r.entry.group, r.entry.name, r.entry.input, r.capture, r.nodes, unc, human(r.macs),
                     human(r.flops), percent(r.blind, 1.0), f"{r.seconds:.2f} s"))
    return rows


def aggregate(results: list[Result]) -> list[tuple[str, int, int, list[str]]]:
    """(target, models, nodes, model names), most frequent first."""
    models: Counter = Counter()
    nodes: Counter = Counter()
    where: dict[str, list[str]] = {}
    for r in results:
        for t, n in r.incomplete.items():
            models[t] += 1
            nodes[t] += n
            where.setdefault(t, []).append(r.entry.name)
    return [(t, models[t], nodes[t], where[t]) for t, _ in sorted(models.items(), key=lambda kv: (-kv[1], -nodes[kv[0]], kv[0]))]


def summary(results: list[Result], elapsed: float) -> list[str]:
    ok = [r for r in results if not r.error]
    complete = [r for r in ok if not r.incomplete]
    lines = [f"{len(results)} models: {len(ok)} analysed ({len(complete)} with every op counted), "
             f"{len(results) - len(ok)} failed; {elapsed:.0f} s in all."]
    for g in GROUPS:
        rs = [r for r in results if r.entry.group == g]
        if rs:
            good = [r for r in rs if not r.error]
            lines.append(f"- {g}: {len(good)}/{len(rs)} analysed, {sum(1 for r in good if not r.incomplete)} complete, "
                         f"captures: {dict(Counter(str(r.capture) for r in good))}")
    return lines


def markdown(results: list[Result], args: argparse.Namespace, elapsed: float) -> str:
    import torchvision

    versions = f"torch {torch.__version__}, torchvision {torchvision.__version__}"
    with contextlib.suppress(ImportError):
        import timm

        versions += f", timm {timm.__version__}"
    with contextlib.suppress(ImportError):
        import transformers

        versions += f", transformers {transformers.__version__}"
    cmd = "python benchmarks/zoo_audit.py" + (" --quick" if args.quick else "") + \
        (f" --groups {' '.join(args.groups)}" if tuple(args.groups) != GROUPS else "") + f" --write {args.write}"
    out = ["# Zoo audit", "",
           f"*Generated by `{cmd}` ({versions}; Python {platform.python_version()}, {platform.machine()}); "
           "do not edit by hand. Times are wall-clock analysis times on a shared machine, model building excluded.*",
           "",
           "Each model is analysed with `capture=\"auto\"` (fx, then the recorded eager call, then dynamo). *uncounted* lists the call "
           "targets fxflops priced as 0 — or counted through a fallback capture with uncounted ops inside — with "
           "their node counts; *hook blind spot* is the share of FLOPs outside any leaf module call, which a "
           "forward-hook counter cannot see.", "", "## Summary", ""]
    out += summary(results, elapsed)
    agg = aggregate(results)
    out += ["", "## Uncounted targets across the zoo", ""]
    if agg:
        out += _table([("target", "models", "nodes", "in")] +
                      [(t, m, n, ", ".join(w[:6]) + (" …" if len(w) > 6 else "")) for t, m, n, w in agg])
    else:
        out.append("None: every op of every analysed model has a rule.")
    out += ["", "## Models", ""] + _table(model_rows(results))
    failed = [r for r in results if r.error]
    out += ["", "## Failures", ""]
    out += [f"- {r.entry.group} / {r.entry.name}: {r.error}" for r in failed] or ["None."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few models per group")
    p.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS))
    p.add_argument("--models", nargs="+", metavar="NAME", help="only these models (by name)")
    p.add_argument("--capture", choices=("auto", "fx", "record", "dynamo"), default="auto")
    p.add_argument("--timeout", type=int, default=180, help="seconds per model (default 180)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="analyse N models at once, in worker processes")
    p.add_argument("--write", metavar="FILE", help="write the report as Markdown to FILE")
    args = p.parse_args(argv)
    for name in ("torch._dynamo", "torch._guards", "torch.fx.experimental.symbolic_shapes"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # graph-break chatter; failures are recorded per model
    entries = zoo(tuple(args.groups), args.quick)
    if args.models:
        entries = [e for e in entries if e.name in set(args.models)]
    start = time.perf_counter()
    results: list[Result | None] = [None] * len(entries)
    for i, r in run_all(entries, args.capture, args.timeout, args.jobs):
        results[i] = r
        e = r.entry
        if r.error:
            tqdm.write(f"{e.group:14} {e.name:40} FAILED {r.error}")  # above the progress bar
        else:
            unc = ", ".join(sorted(r.incomplete)) or "-"
            tqdm.write(f"{e.group:14} {e.name:40} {r.capture:13} {r.nodes:6} nodes {human(r.macs):>7} MACs "
                       f"{human(r.flops):>7} FLOPs  blind {percent(r.blind, 1.0):>7} {r.seconds:6.2f} s  uncounted: {unc}")
    elapsed = time.perf_counter() - start
    results = [r for r in results if r is not None]
    print()
    print("\n".join(summary(results, elapsed)))
    agg = aggregate(results)
    if agg:
        print("\nuncounted targets, most frequent first:")
        for t, m, n, w in agg:
            print(f"  {t}: {m} model(s), {n} node(s) — {', '.join(w[:6])}{' …' if len(w) > 6 else ''}")
    if args.write:
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write(markdown(results, args, elapsed))
        print(f"\nwrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
