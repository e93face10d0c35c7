"""Pricing what dynamo captured, and what symbolic tracing left opaque.

* :func:`count_capture` prices every graph of a dynamo capture (higher-order ops by their subgraph,
  known custom ops by the torch op they wrap) and returns its node records: graphs that ran more than
  once, modules kept whole and reused blocks included. :func:`outside_graphs` checks the total against
  FlopCounterMode's count in the eager probe.
* :class:`OpaqueFallback` is the ``fallback`` of :func:`fxflops.passes.costs.count_graph` on the fx
  path: a submodule fx could not trace (kept as a leaf) or a function registered with
  ``torch.fx.wrap`` (an opaque ``call_function`` node) is recorded on the meta inputs shape propagation
  gave the node (:mod:`fxflops.capture.record`), or captured with dynamo where it cannot be recorded, and
  priced in the same counting context. Results are memoised by module or function and input signature,
  so the twelve identical blocks of a stage are captured once.
"""
from __future__ import annotations

import types
from dataclasses import replace
from typing import Any

import torch
import torch.fx as fx

from ..capture.dynamo import DynamoCapture, capture_dynamo
from ..capture.fx import Untraceable
from ..capture.record import RecordCapture, capture_record
from ..capture.probe import LeafCall, signature
from ..errors import FxFlopsError
from ..paths import ancestors, attr_at, under
from ..rules.registry import Call, Cost, qualified_name
from ..tensors import META, dtype_name, empty_like_meta, tensors_in
from ..types import Backward, NodeRecord, Status
from .backward import backward_cost, count_backward, leaf_call
from .bytes import ByteCall, count_bytes, default_bytes
from .costs import Counting, as_cost, count_graph, left_out_of, total
from .records import node_records, reused_nodes


def count_capture(cap: DynamoCapture, ctx: Counting) -> list[NodeRecord]:
    """Price every graph of ``cap`` in place and return the records of all their nodes. Copies (``X#k`` of a
    graph run again, ``X@path`` of a reused block) carry their source's bytes and backward cost."""
    seen: set[int] = set()
    records: list[NodeRecord] = []
    many = len(cap.graph_modules) > 1
    for i, gm in enumerate(cap.graph_modules):
        count_graph(gm, ctx.nested(subgraph_fallback(gm, ctx)))
        count_bytes(gm)
        if ctx.train:
            count_backward(gm)
        prefix = f"g{i}." if many else ""
        once = node_records(gm, seen, prefix=prefix, graph=i)
        records += once
        for run in range(2, (cap.runs[i] if i < len(cap.runs) else 1) + 1):  # the graph ran again
            again = [replace(r, name=f"{r.name}#{run}", params=0, run=run) for r in once]
            records += again
    records += [leaf_record(call, ctx) for call in cap.leaves]
    for r in records:  # a reused block's stub (torch.empty of its output) stands in for work its copies carry
        if r.bytes and any(under(r.module_path, b.path) for b in cap.reused):
            r.bytes = 0
    return reused_nodes(records, cap.reused)


def leaf_record(call: LeafCall, ctx: Counting) -> NodeRecord:
    """The record of a module kept whole, priced by its rule on the values the probe saw, like fx's call_module."""
    m = call.module
    rule = ctx.registry.for_module(m)
    c = Call(type(m), call.args, call.kwargs, call.out, m, pricer=ctx.price)
    cost = as_cost(rule(c), type(m).__name__)
    ins = tensors_in((call.args, call.kwargs))
    outs = tensors_in(call.out)
    rec = NodeRecord(
        name=call.path.replace(".", "_"), kind="call_module", target=type(m).__name__, op=rule.op,
        status=Status.PARTIAL if c.left_out else Status.COUNTED, fwd=cost, rule=rule,
        module_path=call.path, module_type=type(m).__name__, qualname=qualified_name(type(m)),
        input_shapes=[tuple(t.shape) for t in ins], output_shapes=[tuple(t.shape) for t in outs],
        dtypes=sorted({dtype_name(t) for t in outs}), params=sum(p.numel() for p in m.parameters()),
        left_out=list(c.left_out), bytes=default_bytes(ByteCall(ins, call.out, m)),
    )
    if not ctx.train:
        return rec
    if any(t.requires_grad for t in ins) or any(p.requires_grad for p in m.parameters()):
        backward_cost(rec, leaf_call(cost, (call.args, call.kwargs), call.out, m))
    else:
        rec.bwd_status = Backward.NOT_NEEDED
    return rec


def outside_graphs(cap: DynamoCapture, nodes: list[NodeRecord]) -> str | None:
    """A note when the capture counts fewer MACs than FlopCounterMode saw in the eager probe: dynamo ran some
    code outside its graphs (a frame it does not trace), which no rule could see. Names the deepest module short."""
    if not cap.eager_macs or sum(n.fwd.macs for n in nodes) >= cap.eager_macs[""]:
        return None
    ours: dict[str, int] = {}
    for n in nodes:
        for key in ancestors(n.module_path):
            ours[key] = ours.get(key, 0) + n.fwd.macs
    short = {p: m - ours.get(p, 0) for p, m in cap.eager_macs.items() if m > ours.get(p, 0)}
    where = max(short, key=lambda p: (p.count(".") if p else -1, short[p]))
    return (f"{short['']:,} MACs that FlopCounterMode counts in an eager run are missing from this report (most "
            f"likely code dynamo ran outside its graphs)" + (f", in {where}" if where else ""))


# Custom ops other libraries register around a torch op (so that torch.compile does not trace their Python
# fallback), by qualified name: they are priced by the rule of the torch op they stand for.
EQUIVALENT_OPS = {
    "transformers::grouped_mm_fallback": "_grouped_mm",  # mixture-of-experts GEMM (input, weight, offs)
}


def subgraph_fallback(gm: fx.GraphModule, ctx: Counting):
    """Prices a higher-order op node (``invoke_subgraph``, ``wrap``, checkpointing...) by its first subgraph
    (the graph it runs forward; its inner nodes already hold dynamo's fake values), and a known custom op
    by the rule of the torch op it stands for (:data:`EQUIVALENT_OPS`)."""

    def fallback(node: fx.Node, call: Call) -> tuple[Cost, str, list[str]] | None:
        if isinstance(node.target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
            return equivalent_op(node.target, call, ctx)
        if not isinstance(node.target, torch._ops.HigherOrderOperator):
            return None
        sub = next((attr_at(gm, a.target) for a in node.args if isinstance(a, fx.Node) and a.op == "get_attr"
                    and isinstance(attr_at(gm, a.target), fx.GraphModule)), None)
        if sub is None:
            return None
        count_graph(sub, ctx.nested(subgraph_fallback(sub, ctx)))
        nodes = list(sub.graph.nodes)
        return total(nodes), f"{node.target.name()} subgraph", left_out_of(nodes)

    return fallback


def equivalent_op(op: Any, call: Call, ctx: Counting) -> tuple[Cost, str, list[str]] | None:
    """A custom op priced by the rule of the torch op it stands for (:data:`EQUIVALENT_OPS`), and an aten op
    called directly (``torch.ops.aten.mm.default``) by the rule of its torch function or Tensor method; or None."""
    name = op._qualified_op_name if isinstance(op, torch._ops.OpOverloadPacket) else op.name().split(".")[0]
    namespace, _, base = name.partition("::")
    torch_name = EQUIVALENT_OPS.get(name, base if namespace == "aten" else "")
    target: Any = getattr(torch, torch_name, None) if torch_name else None
    rule = ctx.registry.for_function(target) if target is not None else None
    if rule is None and namespace == "aten":
        target, rule = base, ctx.registry.for_method(base)
    if rule is None or rule.status == Status.FREE:
        return (Cost(), f"{rule.op} (as {name}): {rule.reason}", []) if rule is not None else None
    cost = as_cost(rule(Call(target, call.args, call.kwargs, call.out)), name)
    return cost, f"{rule.op} (as {name})", [], rule


THROUGH_RECORD = "counted by recording its call"
THROUGH_DYNAMO = "counted through dynamo"


class _Called(torch.nn.Module):
    """A function fx keeps opaque, as a module the recorder can run."""

    def __init__(self, fn: Any):
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class OpaqueFallback:
    """``count_graph``'s fallback on the fx path: records an opaque leaf or wrapped function (dynamo where the
    call cannot be recorded) and prices what it ran."""

    def __init__(self, ctx: Counting):
        self.ctx = ctx
        self.memo: dict[Any, tuple[Cost, str, list[str]] | None] = {}
        self.recorded: dict[Any, RecordCapture] = {}  # wrapped-function calls the shape pass recorded, by signature
        self.failures: dict[str, str] = {}  # target name -> why dynamo could not count it

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
            self.memo[key] = self._count(target, call, self.recorded.get(key))
        return self.memo[key]

    def _count(self, target: Any, call: Call, rec: RecordCapture | None = None) -> tuple[Cost, str, list[str]] | None:
        module = target if isinstance(target, torch.nn.Module) else _Called(target)
        try:
            if rec is None:
                rec = capture_record(module, tuple(call.args), dict(call.kwargs), self._is_leaf)
        except FxFlopsError:
            return self._through_dynamo(target, call)
        if any(n.target is target for n in rec.graph_module.graph.nodes):
            # A torch function (F.cross_entropy) is itself what the recorder sees: nothing inside it to price.
            return self._through_dynamo(target, call)
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
        records = count_capture(cap, self.ctx.nested(None))
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
