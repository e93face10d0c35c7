"""Measured latency: run the captured graphs on real tensors and time every node.

The fx graph runs in an :class:`fx.Interpreter` over the model's own weights; dynamo's graphs are captured
again by ``torch.compile`` on the real example, as the report's capture cut them (same probe, same repeated
blocks stubbed), with a backend that runs each one in the same timing interpreter (the Python between graph
breaks runs as usual, untimed; a stubbed block takes the time of the block it repeats). Each node is timed around its own call,
with the device synchronised before and after on CUDA (kernels are asynchronous there); the whole forward runs
``warmup`` times untimed, then ``repeats`` times, and each node keeps the median of its times.

A meta example is replaced by random tensors of its shapes (integer inputs by zeros, so that ids stay in range);
the weights must be real.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
from torch.utils._pytree import tree_map

from ..capture.dynamo import compiled_as_captured
from ..capture.patching import kept_state
from ..errors import FxFlopsError
from ..tensors import META
from ..types import OP_KINDS, NodeRecord

__all__ = ["Timings", "real_example", "time_fx", "time_dynamo", "time_forward", "apply_timings"]


def _sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are; measuring needs them real."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.device == META for t in tensors):
        raise FxFlopsError(
            f"measure=True runs {type(model).__name__}, but its weights are on the meta device. "
            "What to do: build the model on cpu or cuda (random weights are fine), or leave measure off.")
    return tensors[0].device if tensors else torch.device("cpu")


def real_example(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor on ``device``; meta tensors become random ones of the same shape and dtype."""

    def conv(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        if t.device != META:
            return t.to(device)
        if t.is_floating_point():
            return torch.randn(t.shape, dtype=t.dtype, device=device)
        return torch.zeros(t.shape, dtype=t.dtype, device=device)

    return tree_map(conv, value)


@dataclass
class Timings:
    """Per-node times (seconds, one per timed repeat) by record name, and the wall time of each forward."""

    nodes: dict[str, list[float]] = field(default_factory=dict)
    forwards: list[float] = field(default_factory=list)

    def medians(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.nodes.items() if v}


class _Timed(fx.Interpreter):
    """Runs a graph, adding each op node's time to ``sink[prefix + name + suffix]`` when ``record`` is set."""

    def __init__(self, gm: fx.GraphModule, sync: Callable[[], None], sink: dict[str, list[float]], prefix: str = ""):
        super().__init__(gm)
        self.sync, self.sink, self.prefix = sync, sink, prefix
        self.record = False
        self.suffix = ""

    def run_node(self, n: fx.Node) -> Any:
        if not self.record or n.op not in OP_KINDS:
            return super().run_node(n)
        self.sync()
        t0 = time.perf_counter()
        out = super().run_node(n)
        self.sync()
        self.sink.setdefault(self.prefix + n.name + self.suffix, []).append(time.perf_counter() - t0)
        return out


def time_fx(gm: fx.GraphModule, values: tuple, device: torch.device, repeats: int = 5, warmup: int = 2) -> Timings:
    """Time every op node of ``gm`` run on ``values`` (its placeholders' values, real tensors on ``device``)."""
    sync = _sync(device)
    out = Timings()
    interp = _Timed(gm, sync, out.nodes)
    with torch.no_grad(), kept_state(gm):  # a training-mode batch norm updates its statistics every run
        for i in range(warmup + repeats):
            interp.record = i >= warmup
            sync()
            t0 = time.perf_counter()
            interp.run(*values)
            sync()
            if interp.record:
                out.forwards.append(time.perf_counter() - t0)
    return out


def time_dynamo(model: torch.nn.Module, args: tuple, kwargs: dict, device: torch.device, many_graphs: bool,
                mode: str = "meta", repeats: int = 5, warmup: int = 2) -> Timings:
    """Time every node of the graphs dynamo cuts from ``model(*args, **kwargs)``, compiled as the report's capture
    was in ``mode`` (:func:`fxflops.capture.dynamo.compiled_as_captured`), on real tensors. Graph ``i``'s nodes
    are keyed ``g{i}.name`` when there are several graphs (as their records are), and the ``k``-th run of a
    graph in one forward adds ``#k``, as :func:`fxflops.pipeline.annotate.annotate` names them."""
    sync = _sync(device)
    out = Timings()
    graphs: list[_Timed] = []
    runs: dict[int, int] = {}

    def backend(gm: fx.GraphModule, example_inputs: list) -> Callable:
        i = len(graphs)
        interp = _Timed(gm, sync, out.nodes, prefix=f"g{i}." if many_graphs else "")
        graphs.append(interp)

        def run(*a: Any) -> Any:
            runs[i] = runs.get(i, 0) + 1
            interp.suffix = f"#{runs[i]}" if runs[i] > 1 else ""
            return interp.run(*a)

        return run

    with compiled_as_captured(model, args, kwargs, backend, mode) as forward:
        for i in range(warmup + repeats):
            runs.clear()
            for g in graphs:
                g.record = i >= warmup
            sync()
            t0 = time.perf_counter()
            forward()
            sync()
            if i >= warmup:
                out.forwards.append(time.perf_counter() - t0)
    return out


def time_forward(model: torch.nn.Module, args: tuple, kwargs: dict, device: torch.device, repeats: int = 5,
                 warmup: int = 2) -> float:
    """Median seconds of the plain eager forward: what the per-node times should add up to."""
    sync = _sync(device)
    times = []
    with torch.no_grad(), kept_state(model):
        for i in range(warmup + repeats):
            sync()
            t0 = time.perf_counter()
            model(*args, **kwargs)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def apply_timings(records: list[NodeRecord], medians: dict[str, float]) -> int:
    """Set ``measured`` on every op record that was timed; a copy of a reused block takes its source node's time,
    as it takes its costs. Returns how many op records got a time."""
    done = 0
    for r in records:
        if r.kind not in OP_KINDS:
            continue
        t = medians.get(r.name)
        if t is None and r.block:
            t = medians.get(r.name.removesuffix(f"@{r.block}"))
        if t is not None:
            r.measured = t
            done += 1
    return done
