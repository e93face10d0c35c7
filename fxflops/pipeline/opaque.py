"""Opaque leaves on the fx path: a submodule fx could not trace (kept as a leaf) or a function registered with
``torch.fx.wrap`` (an opaque ``call_function`` node) is recorded on the meta inputs the shape pass gave the node
(:mod:`fxflops.capture.record`), or captured with dynamo where it cannot be recorded, and priced in the same
counting context. Results are memoised by module or function and input signature, so the twelve identical blocks of
a stage are captured once. :func:`fallback_notes` says, per leaf, how it was counted."""
from __future__ import annotations

import types
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from ..capture.dynamo import capture_dynamo
from ..capture.probe import signature
from ..capture.record import capture_record
from ..captured import INNER, Captured, Untraceable
from ..errors import FxFlopsError
from ..passes.costs import Counting, count_graph, left_out_of, total
from ..passes.eager_check import outside_graphs
from ..rules.registry import Call, Cost
from ..tensors import META, empty_like_meta, tensors_in
from ..types import NodeRecord, Status

__all__ = ["OpaqueFallback", "fallback_notes", "THROUGH_RECORD", "THROUGH_DYNAMO"]


THROUGH_RECORD = "counted by recording its call"
THROUGH_DYNAMO = "counted through dynamo"


class _Called(torch.nn.Module):
    """A function fx keeps opaque, as a module the recorder can run."""

    def __init__(self, fn: Any):
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


# ``annotate(captured, ctx)`` runs the passes over a capture and returns its records: the orchestrator passes its
# own (fxflops.pipeline.annotate), which in turn makes this fallback.
Annotate = Callable[[Captured, Counting], Sequence[NodeRecord]]


class OpaqueFallback:
    """``count_graph``'s fallback for opaque leaves: records an opaque leaf or wrapped function (dynamo where the
    call cannot be recorded) and prices what it ran, in the counting context ``ctx``."""

    def __init__(self, ctx: Counting, annotate: Annotate):
        self.ctx = ctx
        self.annotate = annotate
        self.memo: dict[Any, tuple[Cost, str, list[str]] | None] = {}
        self.recorded: dict[Any, Captured] = {}  # wrapped-function calls the shape pass recorded, by signature
        self.failures: dict[str, str] = {}  # target name -> why dynamo could not count it
        self.priced: dict[Any, fx.GraphModule] = {}  # the recordings that priced a call, by the memo's key

    def shape(self, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        """For the shape pass: the output of a wrapped function without a rule, on meta, recorded once per
        signature (the cost pass prices that recording instead of running the call again); None otherwise."""
        if not (isinstance(node.target, types.FunctionType) and self.ctx.registry.for_function(node.target) is None):
            return None
        if not all(t.device == META for t in tensors_in((args, kwargs))):
            return None
        key = (node.target, signature((args, dict(kwargs))))
        rec = self.recorded.get(key)
        if rec is None:
            try:
                rec = capture_record(_Called(node.target), tuple(args), dict(kwargs), self._is_leaf)
            except FxFlopsError:
                return None  # the shape pass runs it, and the cost pass tries dynamo
            self.recorded[key] = rec
        out = next(n for n in reversed(rec.graph_module.graph.nodes) if n.op == "output").args[0]
        out = out.meta.get("val") if isinstance(out, fx.Node) else None
        return empty_like_meta(out) if isinstance(out, torch.Tensor) and out.device == META else None

    def _is_leaf(self, m: torch.nn.Module) -> bool:
        return self.ctx.registry.for_module(m) is not None

    def __call__(self, node: fx.Node, call: Call) -> tuple[Cost, str, list[str]] | None:
        if node.op == "call_module":
            target: Any = call.module
            key: Any = id(call.module)
        elif node.op == "call_function" and isinstance(node.target, types.FunctionType):
            target = key = node.target  # Python code fx did not enter (torch.fx.wrap); an aten op has no inside
        else:
            return None
        key = (key, signature((call.args, dict(call.kwargs))))
        if key not in self.memo:
            self.memo[key] = self._count(target, call, key)
        if key in self.priced:
            node.meta[INNER] = self.priced[key]  # priced by this recording: the later passes read it too
        return self.memo[key]

    def _count(self, target: Any, call: Call, key: Any) -> tuple[Cost, str, list[str]] | None:
        module = target if isinstance(target, torch.nn.Module) else _Called(target)
        rec = self.recorded.get(key)
        try:
            if rec is None:
                rec = capture_record(module, tuple(call.args), dict(call.kwargs), self._is_leaf)
        except FxFlopsError:
            return self._through_dynamo(target, call)
        if any(n.target is target for n in rec.graph_module.graph.nodes):
            # A torch function (F.cross_entropy) is itself what the recorder sees: nothing inside it to price.
            return self._through_dynamo(target, call)
        self.priced[key] = rec.graph_module
        count_graph(rec.graph_module, self.ctx.nested(self))
        nodes = list(rec.graph_module.graph.nodes)
        cost, left = total(nodes), left_out_of(nodes)
        ops = [n for n in nodes if n.meta.get("fxflops") is not None and n.meta["fxflops"].status.priced]
        if not self.ctx.ignore and outside_graphs(rec, [NodeRecord("", "", "", fwd=cost)]):
            left.append(f"{rec.eager_macs[''] - cost.macs:,} MACs the dispatch-level check sees (not recorded)")
        return cost, f"{THROUGH_RECORD} ({len(ops)} ops)", left

    def _through_dynamo(self, target: Any, call: Call) -> tuple[Cost, str, list[str]] | None:
        try:
            cap = capture_dynamo(target, tuple(call.args), dict(call.kwargs))
        except FxFlopsError as err:
            self.failures[_name(target)] = str(err).splitlines()[0]
            return None
        records = self.annotate(cap, self.ctx.nested(None))
        cost = sum((r.fwd for r in records), Cost())
        ops = [r for r in records if r.status.priced]
        left = sorted({r.target for r in records if r.status == Status.UNCOUNTED}
                      | {x for r in records for x in r.left_out})
        if not self.ctx.ignore and outside_graphs(cap, records):
            left.append(f"{cap.eager_macs[''] - cost.macs:,} MACs FlopCounterMode sees (run outside dynamo's graphs)")
        return cost, f"{THROUGH_DYNAMO} ({len(ops)} ops)", left


def _name(target: Any) -> str:
    return type(target).__name__ if isinstance(target, torch.nn.Module) else getattr(target, "__name__", repr(target))


def fallback_notes(gm: fx.GraphModule, untraceable: list[Untraceable], fallback: OpaqueFallback) -> list[str]:
    """One line per untraceable leaf (counted or not, and how) and per fx-wrapped function the fallback priced."""
    notes = []
    costs = {n.target: n.meta.get("fxflops") for n in gm.graph.nodes if n.op == "call_module"}
    for u in untraceable:
        cost = costs.get(u.path)
        if cost is not None and cost.status.priced:
            notes.append(f"fx could not trace {u.describe()}; kept it as a leaf and {_how(cost.reason)}")
        else:
            why = fallback.failures.get(u.cls, "neither recording nor dynamo could count it")
            notes.append(f"fx could not trace {u.describe()}; kept it as a leaf, uncounted: {why}")
    wrapped: dict[str, str] = {}
    for n in gm.graph.nodes:
        c = n.meta.get("fxflops")
        if n.op == "call_function" and c is not None and c.reason.startswith((THROUGH_RECORD, THROUGH_DYNAMO)):
            wrapped.setdefault(c.target, _how(c.reason))
    for how in sorted(set(wrapped.values())):
        names = sorted(t for t, h in wrapped.items() if h == how)
        notes.append(f"fx keeps {', '.join(names)} opaque (torch.fx.wrap); {how}")
    return notes


def _how(reason: str) -> str:
    return "counted it by recording its call" if reason.startswith(THROUGH_RECORD) else "counted it through dynamo"
