"""``serving``: prefill, decode, KV cache and tokens/s of a causal language model on a device, read from its graph.

Prefill is the model traced at (batch, prompt); a decode step is one new token traced with a KV cache of context
``c`` (the cache made by the model's own forward on meta). Each op node's FLOPs and fused bytes are exact
polynomials in ``c``, fitted on a few traced contexts and checked at one held out; where one does not fit (a sliding
window's kink) the range is split and fitted again. The roofline time of every node (``max(FLOPs / peak, bytes /
bandwidth)``, as :meth:`fxflops.Report.roofline`) is then summed over every decode step. See ``docs/llm.md``.
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.fx as fx

from ..api import TraceOptions, analyse
from ..capture.patching import kept_state
from ..tensors import meta_weights
from ..devices import Device, get_device
from ..errors import FxFlopsError
from ..passes.fusion import CACHE_BYTES, append_past, is_append
from ..passes.roofline import estimate_node
from ..paths import attr_at, submodule
from ..report.report import Report
from ..report.sweep import Formula, fit
from ..report.tables import grid
from ..rules.bytes import nbytes
from ..tensors import tensors_in
from ..types import OP_KINDS
from ..units import human, seconds

__all__ = ["serving", "Serving", "ServingRow", "WEIGHT_FORMATS"]

# Bytes per element of a linear layer's weight under a weight-only quantization estimate.
WEIGHT_FORMATS = {"int8": 1.0, "int4": 0.5}
_POINTS = 4  # traced contexts per fitted range: a polynomial of degree <= 2 and one held-out check
# serving traces the eager call (KV caches go through record capture) and prices traffic at kernel boundaries
_SERVING_OPTIONS = TraceOptions(capture="record", bytes="fused")


@dataclass
class ServingRow:
    """One batch size: times in seconds, memory in bytes."""

    batch: int
    prefill_time: float  # time to first token
    decode_time: float  # mean time of one decode step (one token for each sequence of the batch)
    tokens_per_second: float  # batch × generate / (prefill + every decode step)
    decode_tokens_per_second: float  # batch / decode_time
    prefill_flops: int
    decode_flops: int  # FLOPs of the first decode step (context = prompt)
    weights_bytes: int
    kv_cache_bytes: int  # batch × (prompt + generate) tokens
    activations_bytes: int  # the peak of the tensors kernels write during prefill
    memory_bytes: int
    fits: bool
    bound: str  # where most of the decode time goes: memory or compute
    prefill_bound: str


@dataclass
class Serving:
    """The serving estimate of one model on one device; ``rows`` holds one :class:`ServingRow` per batch."""

    model_name: str
    device: Device
    prompt: int
    generate: int
    weights: str | None
    kv_dtype: str | None
    rows: list[ServingRow]
    kv_bytes_per_token: int  # the KV-cache bytes one token appends, for one sequence
    max_batch: int  # the largest batch whose weights + KV cache + activations fit the device's memory (0: unknown)
    decode_flops: Formula  # FLOPs of one decode step at batch 1 as an exact polynomial in the context c
    curves: dict[int, tuple[list[int], list[float]]] = field(default_factory=dict, repr=False)  # batch -> (c, s)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        rows = [("batch", "prefill (TTFT)", "decode / token", "tokens/s", "weights", "KV cache", "activations",
                 "fits", "bound")]
        for r in self.rows:
            rows.append((r.batch, seconds(r.prefill_time), seconds(r.decode_time), f"{r.tokens_per_second:,.0f}",
                         f"{human(r.weights_bytes)}B", f"{human(r.kv_cache_bytes)}B", f"{human(r.activations_bytes)}B",
                         "yes" if r.fits else "no", r.bound))
        head = (f"{self.model_name} on {self.device.name}: prompt {self.prompt}, generate {self.generate}, "
                f"weights {self.weights or 'as stored'}; KV cache {self.kv_bytes_per_token:,} B per token")
        tail = f"largest batch that fits: {self.max_batch:,}" if self.device.memory else "device memory unknown"
        return f"{head}\n{grid(rows, align_right=(0, 1, 2, 3, 4, 5, 6))}\n{tail}\n{self.decode_flops}"

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "device": self.device.to_dict(), "prompt": self.prompt,
                "generate": self.generate, "weights": self.weights, "kv_dtype": self.kv_dtype,
                "kv_bytes_per_token": self.kv_bytes_per_token, "max_batch": self.max_batch,
                "decode_flops": self.decode_flops.to_dict(), "rows": [asdict(r) for r in self.rows],
                "notes": list(self.notes)}

    def chart(self, path: str | Path) -> Path:
        """Decode time per token against the context, one line per batch, and tokens/s against the batch;
        needs matplotlib (``pip install "fxflops[plot]"``)."""
        from .chart import serving_chart

        return serving_chart(self, path)


def serving(model: torch.nn.Module, device: str | Device = "h100", prompt: int = 1024, generate: int = 256,
            batch: int | Sequence[int] = (1, 8, 64), weights: str | None = None,
            kv_dtype: str | torch.dtype | None = None) -> Serving:
    """Estimate serving ``model`` (a causal LM taking ``input_ids``, ``past_key_values`` and ``use_cache``, such
    as a transformers ``*ForCausalLM``; on meta is fine) on ``device``: prefill of ``prompt`` tokens, then
    ``generate`` tokens (the first from the prefill, one per decode step after it), at each ``batch``.

    ``weights="int8"|"int4"`` stores and reads the weight of every ``nn.Linear`` at 1 or 0.5 bytes per element
    (the LM head included; embeddings, norms and biases stay at their dtype); ``kv_dtype`` (``"float8_e4m3fn"``,
    ``torch.int8``, ``"int4"``) stores the KV cache at that element size: its memory, the new entries each append
    writes and the entries attention reads.
    """
    dev = get_device(device)
    batches = sorted({int(b) for b in ([batch] if isinstance(batch, int) else batch)})
    if not batches or batches[0] < 1 or prompt < 1 or generate < 1:
        raise FxFlopsError("serving needs prompt >= 1, generate >= 1 and batch sizes >= 1")
    if weights is not None and weights not in WEIGHT_FORMATS:
        raise FxFlopsError(f"weights must be None or one of {', '.join(WEIGHT_FORMATS)}, got {weights!r}")
    kv_size = _element_size(kv_dtype)
    quantized = _linear_weights(model) if weights else set()
    qsize = WEIGHT_FORMATS.get(weights or "", 0.0)
    where = torch.device("meta")  # shapes only, whatever device the weights are on
    cache = _cache(model, where, 1, prompt + generate)
    kv = _cache_tensors(cache)
    ratio = kv_size / kv[0].element_size() if kv_size is not None and kv else 1.0
    phase = _Phase(model, dev, where, quantized, qsize, ratio)
    steps = list(range(prompt, prompt + generate - 1)) or [prompt]  # the cache length before each decode step
    weights_bytes = _weights_bytes(model, quantized, qsize)
    stored = int(sum(nbytes(t) for t in kv) * ratio)
    rows, curves = [], {}
    first: _Segment | None = None
    for b in batches:
        pre = phase.trace(_prefill_example(model, where, b, prompt))
        pre_time, pre_bound = phase.time(pre)
        times, bound, segments = phase.decode(b, steps)
        first = first or segments[0]
        decode_mean = sum(times) / len(times)
        total = pre_time + (sum(times) if generate > 1 else 0.0)
        acts = _peak_activations(pre)
        mem = weights_bytes + b * stored + acts
        rows.append(ServingRow(
            batch=b, prefill_time=pre_time, decode_time=decode_mean, tokens_per_second=b * generate / total,
            decode_tokens_per_second=b / decode_mean if decode_mean else 0.0, prefill_flops=pre.total_flops,
            decode_flops=segments[0].first.total_flops, weights_bytes=weights_bytes, kv_cache_bytes=b * stored,
            activations_bytes=acts, memory_bytes=mem, fits=not dev.memory or mem <= dev.memory, bound=bound,
            prefill_bound=pre_bound))
        curves[b] = (list(steps), times)
    notes = [f"decode contexts {s.lo}..{s.hi}: {s.flops}" for s in segments] if len(segments) > 1 else []
    kv_per_token = sum(_appended(n) for n in first.first.nodes) // batches[0]
    per_seq = stored + rows[0].activations_bytes / rows[0].batch
    max_batch = int((dev.memory - weights_bytes) // per_seq) if dev.memory and per_seq else 0
    return Serving(type(model).__name__, dev, prompt, generate, weights, str(kv_dtype) if kv_dtype else None, rows,
                   kv_per_token, max(max_batch, 0), first.flops, curves, notes)


def _element_size(dtype: str | torch.dtype | None) -> float | None:
    if dtype is None:
        return None
    if isinstance(dtype, str):
        if dtype in WEIGHT_FORMATS:
            return WEIGHT_FORMATS[dtype]
        dtype = getattr(torch, dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise FxFlopsError("kv_dtype must be a torch dtype or its name (float16, float8_e4m3fn, int8, int4)")
    return torch.empty((), dtype=dtype, device="meta").element_size()


def _linear_weights(model: torch.nn.Module) -> set[int]:
    return {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}


def _weights_bytes(model: torch.nn.Module, quantized: set[int], qsize: float) -> int:
    total = 0.0
    for p in model.parameters():  # each tensor once: a tied head is its embedding
        total += p.numel() * (qsize if id(p) in quantized else p.element_size())
    return int(total)


def _accepts(model: torch.nn.Module, name: str) -> bool:
    return name in inspect.signature(model.forward).parameters


def _prefill_example(model: torch.nn.Module, where: torch.device, b: int, prompt: int) -> dict[str, Any]:
    ex: dict[str, Any] = {"input_ids": torch.zeros(b, prompt, dtype=torch.long, device=where), "use_cache": True}
    if _accepts(model, "logits_to_keep"):  # a server computes the next token's logits only, as generate() asks
        ex["logits_to_keep"] = 1
    return ex


def _cache(model: torch.nn.Module, where: torch.device, b: int, length: int) -> Any:
    """The KV cache the model's own forward makes for ``length`` tokens (on meta: shapes only)."""
    ex = _prefill_example(model, where, b, length)
    try:
        with meta_weights(model), kept_state(model), torch.no_grad():
            out = model(**ex)
    except Exception as exc:  # noqa: BLE001 - the model's own failure, told in one line
        raise FxFlopsError(f"{type(model).__name__} failed to run a {length}-token prompt on {where} "
                           f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}). "
                           "What to do: check that it runs on such an input (on meta, in its own dtype)") from None
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    if cache is None:
        raise FxFlopsError(f"{type(model).__name__} returned no past_key_values with use_cache=True: serving needs a "
                           "causal language model with a KV cache (a transformers *ForCausalLM)")
    return cache


def _cache_tensors(cache: Any) -> list[torch.Tensor]:
    layers = getattr(cache, "layers", None)
    if layers is None:
        return [t for t in tensors_in(cache) if t.is_floating_point()]
    # the keys and values: a layer's integer bookkeeping (a sliding window's position counter) is not cache
    return [t for layer in layers for t in vars(layer).values()
            if isinstance(t, torch.Tensor) and t.is_floating_point()]


class _Phase:
    """Traces and times the phases of one model on one device."""

    def __init__(self, model: torch.nn.Module, device: Device, where: torch.device, quantized: set[int] = frozenset(),
                 qsize: float = 0.0, kv_ratio: float = 1.0) -> None:
        self.model, self.device, self.where = model, device, where
        self.quantized, self.qsize, self.kv_ratio = quantized, qsize, kv_ratio

    def trace(self, example: dict[str, Any]) -> Report:
        return analyse(self.model, example, _SERVING_OPTIONS)

    def costs(self, report: Report) -> tuple[list[str], list[int], list[int], list[float]]:
        """Names, FLOPs, bytes (weights and KV cache re-sized) and seconds per FLOP of every op node."""
        names, flops, moved, per_flop = [], [], [], []
        for n in report.nodes:
            if n.kind not in OP_KINDS:
                continue
            est = estimate_node(n, self.device)
            names.append(n.op)
            flops.append(n.flops)
            cache = n.node.meta.get(CACHE_BYTES, 0) if n.node is not None else 0
            moved.append(n.bytes - self._saved(n) - cache * (1 - self.kv_ratio))
            per_flop.append(est.compute_time / n.flops if n.flops else 0.0)
        return names, flops, moved, per_flop

    def _saved(self, n: Any) -> int:
        """Bytes a quantized weight saves on this node's read of it."""
        if not self.quantized or n.rule is None or n.rule.family != "linear" or n.node is None:
            return 0
        node: fx.Node = n.node
        gm = node.graph.owning_module
        if node.op == "call_module":
            tensors = list(submodule(gm, node.target).parameters())
        else:
            tensors = [attr_at(gm, a.target) for a in node.all_input_nodes if a.op == "get_attr"]
        return int(sum(t.numel() * (t.element_size() - self.qsize) for t in tensors if id(t) in self.quantized))

    def time(self, report: Report) -> tuple[float, str]:
        total, compute = _times(*self.costs(report)[1:], self.device.attained_bandwidth)
        return total, _bound(total, compute)

    def decode(self, b: int, steps: list[int]) -> tuple[list[float], str, list[_Segment]]:
        """Seconds of every decode step at batch ``b``, the bound most of that time is under, and the fitted
        ranges of contexts."""
        segments = self.segments(b, steps[0], steps[-1])
        times, compute = [], 0.0
        for seg in segments:
            for c in range(seg.lo, seg.hi + 1):
                t, ct = seg.evaluate(c)
                times.append(t)
                compute += ct
        return times, _bound(sum(times), compute), segments

    def segments(self, b: int, lo: int, hi: int) -> list[_Segment]:
        """Ranges of contexts over which every node's FLOPs and bytes are one polynomial in c, split in two
        wherever one is not (a sliding window reaching its size)."""
        points = _spread(lo, hi)
        reports = {c: self.trace(_decode_example(self, b, c)) for c in points}
        costs = {c: self.costs(r) for c, r in reports.items()}
        bw = self.device.attained_bandwidth
        evaluate = None
        if len({tuple(v[0]) for v in costs.values()}) == 1 and len(points) > 2:
            evaluate = _fit_nodes(points, costs, bw)
        if evaluate is None and len(points) == hi - lo + 1:  # every context traced: no fit needed
            evaluate = _table(costs, bw)
        if evaluate is None:
            mid = (lo + hi) // 2
            return self.segments(b, lo, mid) + self.segments(b, mid + 1, hi)
        totals = fit("flops", ("c",), [(c,) for c in points], [reports[c].total_flops for c in points])
        return [_Segment(lo, hi, evaluate, totals, reports[points[0]])]


@dataclass
class _Segment:
    lo: int
    hi: int
    evaluate: Any  # c -> (seconds, seconds spent compute-bound)
    flops: Formula  # the step's total FLOPs in c
    first: Report  # the step traced at context lo


def _spread(lo: int, hi: int) -> list[int]:
    if hi - lo + 1 <= _POINTS:
        return list(range(lo, hi + 1))
    return sorted({lo + round(i * (hi - lo) / (_POINTS - 1)) for i in range(_POINTS)})


def _decode_example(phase: _Phase, b: int, c: int) -> dict[str, Any]:
    cache = _cache(phase.model, phase.where, b, c)
    key = "cache" if _accepts(phase.model, "cache") else "past_key_values"  # transformers 5 renamed it
    return {"input_ids": torch.zeros(b, 1, dtype=torch.long, device=phase.where), key: cache, "use_cache": True}


def _appended(n: Any) -> int:
    """Bytes a KV-cache append node writes (its new entries), else 0."""
    node = n.node
    if n.kind not in OP_KINDS or node is None or not is_append(node):
        return 0
    return nbytes(node.meta.get("val")) - nbytes(append_past(node).meta.get("val"))


def _times(flops: Sequence[float], moved: Sequence[float], per_flop: Sequence[float], bw: float) -> tuple[float, float]:
    """The summed roofline time of the nodes, and the part of it spent compute-bound."""
    total = compute = 0.0
    for f, m, k in zip(flops, moved, per_flop):
        ct, mt = f * k, m / bw
        total += max(ct, mt)
        compute += ct if ct > mt else 0.0
    return total, compute


def _bound(total: float, compute: float) -> str:
    return "compute" if compute > total / 2 else "memory"


def _fit_nodes(points: list[int], costs: dict, bw: float):
    """Each node's FLOPs and bytes as a polynomial in c, checked at the held-out context; None if one fails."""
    polys = []
    cs = [(c,) for c in points]
    for i in range(len(costs[points[0]][1])):
        pair = []
        for k in (1, 2):
            values = [costs[c][k][i] for c in points]
            f = fit("x", ("c",), cs, values, max_degree=2) if len(set(values)) > 1 else None
            if f is not None and not f.fits:
                return None
            pair.append({(0,): values[0]} if f is None else {e: float(v) for e, v in f.terms.items()})
        polys.append(pair)
    per_flop = costs[points[0]][3]

    def poly(c: int) -> tuple[float, float]:
        flops = [sum(v * c ** e[0] for e, v in p[0].items()) for p in polys]
        moved = [sum(v * c ** e[0] for e, v in p[1].items()) for p in polys]
        return _times(flops, moved, per_flop, bw)

    return poly


def _table(costs: dict, bw: float):
    """Every context traced: each step's time read from its own trace."""
    return lambda c: _times(*costs[c][1:], bw)


def _peak_activations(report: Report) -> int:
    """The most bytes of kernel outputs alive at once during the run (a tensor lives from the node that writes it
    to its last reader); inputs, weights, views and the KV cache (counted apart) are left out."""
    live: dict[fx.Node, int] = {}
    last: dict[fx.Node, fx.Node] = {}  # a tensor's last reader, through views of it
    records = [n for n in report.nodes if n.node is not None and n.run == 1 and not n.block]
    for rec in records:
        for a in _read(rec.node):
            last[a] = rec.node
    peak = current = 0
    for rec in records:
        node = rec.node
        if rec.kind in OP_KINDS and rec.kernel and not _appended(rec) and _written(node, rec.kernel):
            live[node] = nbytes(node.meta.get("val"))
            current += live[node]
            peak = max(peak, current)
        for a in _read(node):
            if a in live and last[a] is node:
                current -= live.pop(a)
    return peak


def _read(node: fx.Node) -> list[fx.Node]:
    """The nodes whose tensors ``node`` reads: its inputs and, through a view (kernel 0), the view's source."""
    out = []
    for a in node.all_input_nodes:
        while True:
            out.append(a)
            rec = a.meta.get("fxflops")
            if rec is None or rec.kernel or rec.kind not in OP_KINDS or not a.all_input_nodes:
                break
            a = a.all_input_nodes[0]
    return out


def _written(node: fx.Node, kernel: int) -> bool:
    for u in node.users:
        rec = u.meta.get("fxflops")
        if u.op == "output" or rec is None or (rec.kernel and rec.kernel != kernel):
            return True
        if not rec.kernel and _written(u, kernel):  # a view: its readers read this tensor
            return True
    return False
