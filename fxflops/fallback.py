"""Counting through dynamo: the dynamo report, the ``auto`` choice, and what symbolic tracing leaves opaque.

* :func:`choose_capture` runs the capture path asked for; ``auto`` falls back from fx to dynamo.
* :func:`dynamo_report` captures a model with dynamo and builds its :class:`~fxflops.report.Report`;
  :func:`count_capture` prices every graph of the capture (higher-order ops by their subgraph, known
  custom ops by the torch op they wrap) and returns its node records: graphs that ran more than once,
  modules kept whole and reused blocks included. :func:`outside_graphs` checks the total against
  FlopCounterMode's count in the eager probe.
* :class:`DynamoFallback` is the ``fallback`` of :func:`fxflops.counting.count_graph` on the fx
  path: a submodule fx could not trace (kept as a leaf) or a function registered with
  ``torch.fx.wrap`` (an opaque ``call_function`` node) is captured with dynamo on the meta inputs
  shape propagation gave the node, and priced by the same registry. Results are memoised by
  module or function and input signature, so the twelve identical blocks of a stage are
  captured once.
"""
from __future__ import annotations

import types
import warnings
from dataclasses import replace
from typing import Any, Callable, Iterable

import torch
import torch.fx as fx
from torch.utils._pytree import tree_flatten

from .capture_dynamo import DynamoCapture, capture_dynamo
from .dynamo_probe import LeafCall, reused_nodes, signature
from .counting import COUNTED, UNCOUNTED, _as_cost, count_graph, module_stack
from .errors import CaptureError, FxFlopsError, UncountedOpError
from .registry import Call, Cost, Registry
from .report import NodeRecord, Report, module_rows, node_records


def count_capture(cap: DynamoCapture, registry: Registry, ignore: Iterable[Any] = ()) -> list[NodeRecord]:
    """Price every graph of ``cap`` in place and return the records of all their nodes."""
    seen: set[int] = set()
    records: list[NodeRecord] = []
    stacks: dict[str, tuple[str, ...]] = {}  # record name -> module paths on its stack, for block reuse
    many = len(cap.graph_modules) > 1
    for i, gm in enumerate(cap.graph_modules):
        with warnings.catch_warnings():  # one message for the whole model, from the caller
            warnings.simplefilter("ignore")
            count_graph(gm, registry, ignore, strict=False, fallback=subgraph_fallback(gm, registry, ignore))
        prefix = f"g{i}." if many else ""
        once = node_records(gm, seen, prefix=prefix)
        stacks.update({prefix + n.name: tuple(p for p, _ in module_stack(n)) for n in gm.graph.nodes})
        records += once
        for run in range(2, (cap.runs[i] if i < len(cap.runs) else 1) + 1):  # the graph ran again
            again = [replace(r, name=f"{r.name}#{run}", params=0) for r in once]
            stacks.update({a.name: stacks[r.name] for a, r in zip(again, once)})
            records += again
    records += [leaf_record(call, registry) for call in cap.leaves]
    return reused_nodes(records, cap.reused, stacks)


def leaf_record(call: LeafCall, registry: Registry) -> NodeRecord:
    """The record of a module kept whole, priced by its rule on the values the probe saw, like fx's call_module."""
    m = call.module
    rule = registry.for_module(m)
    cost = _as_cost(rule(Call(type(m), call.args, call.kwargs, call.out, m)), type(m).__name__)
    ins = [t for t in tree_flatten((call.args, call.kwargs))[0] if isinstance(t, torch.Tensor)]
    outs = [t for t in tree_flatten(call.out)[0] if isinstance(t, torch.Tensor)]
    return NodeRecord(
        name=call.path.replace(".", "_"), kind="call_module", target=type(m).__name__, op=rule.op,
        module_path=call.path, module_type=type(m).__name__, input_shapes=[tuple(t.shape) for t in ins],
        output_shapes=[tuple(t.shape) for t in outs], dtypes=sorted({str(t.dtype).replace("torch.", "") for t in outs}),
        macs=cost.macs, flops=cost.flops, params=sum(p.numel() for p in m.parameters()), rule=rule.op, status=COUNTED,
    )


def outside_graphs(cap: DynamoCapture, nodes: list[NodeRecord]) -> str | None:
    """A note when the capture counts fewer MACs than FlopCounterMode saw in the eager probe: dynamo ran some
    code outside its graphs (a frame it does not trace), which no rule could see. Names the deepest module short."""
    if not cap.eager_macs or sum(n.macs for n in nodes) >= cap.eager_macs[""]:
        return None
    ours: dict[str, int] = {}
    for n in nodes:
        parts = n.module_path.split(".") if n.module_path else []
        for i in range(len(parts) + 1):
            key = ".".join(parts[:i])
            ours[key] = ours.get(key, 0) + n.macs
    short = {p: m - ours.get(p, 0) for p, m in cap.eager_macs.items() if m > ours.get(p, 0)}
    where = max(short, key=lambda p: (p.count(".") if p else -1, short[p]))
    return (f"{short['']:,} MACs that FlopCounterMode counts in an eager run are missing from this report (most "
            f"likely code dynamo ran outside its graphs)" + (f", in {where}" if where else ""))


# Custom ops other libraries register around a torch op (so that torch.compile does not trace their Python
# fallback), by qualified name: they are priced by the rule of the torch op they stand for.
EQUIVALENT_OPS = {
    "transformers::grouped_mm_fallback": "_grouped_mm",  # mixture-of-experts GEMM (input, weight, offs)
}


def subgraph_fallback(gm: fx.GraphModule, registry: Registry, ignore: Iterable[Any]) -> Callable:
    """Prices a higher-order op node (``invoke_subgraph``, ``wrap``, checkpointing...) by its first subgraph
    (the graph it runs forward; its inner nodes already hold dynamo's fake values), and a known custom op
    by the rule of the torch op it stands for (:data:`EQUIVALENT_OPS`)."""

    def fallback(node: fx.Node, call: Call) -> tuple[Cost, str] | None:
        if isinstance(node.target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
            return _equivalent(node.target, call, registry)
        if not isinstance(node.target, torch._ops.HigherOrderOperator):
            return None
        sub = next((_attr(gm, a.target) for a in node.args if isinstance(a, fx.Node) and a.op == "get_attr"
                    and isinstance(_attr(gm, a.target), fx.GraphModule)), None)
        if sub is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            left = count_graph(sub, registry, ignore, fallback=subgraph_fallback(sub, registry, ignore))
        cost = _total(sub.graph.nodes)
        return cost, f"{node.target.name()} subgraph" + (f" ({len(left)} op(s) uncounted inside)" if left else "")

    return fallback


def _equivalent(op: Any, call: Call, registry: Registry) -> tuple[Cost, str] | None:
    name = op._qualified_op_name if isinstance(op, torch._ops.OpOverloadPacket) else op.name().split(".")[0]
    torch_op = getattr(torch, EQUIVALENT_OPS.get(name, ""), None)
    rule = registry.for_function(torch_op) if torch_op is not None else None
    if rule is None:
        return None
    cost = _as_cost(rule(Call(torch_op, call.args, call.kwargs, call.out)), name)
    return cost, f"{rule.op} (as {name})"


def _attr(gm: torch.nn.Module, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj


def _total(nodes: Iterable[fx.Node]) -> Cost:
    total = Cost()
    for n in nodes:
        c = n.meta.get("fxflops")
        if c is not None and c.status == COUNTED:
            total = total + Cost(c.macs, c.flops)
    return total


class DynamoFallback:
    """``count_graph``'s fallback on the fx path: captures an opaque leaf or wrapped function with dynamo."""

    def __init__(self, registry: Registry, ignore: Iterable[Any] = ()):
        self.registry = registry
        self.ignore = list(ignore)
        self.memo: dict[Any, tuple[Cost, str] | None] = {}
        self.failures: dict[str, str] = {}  # target name -> why dynamo could not count it

    def __call__(self, node: fx.Node, call: Call) -> tuple[Cost, str] | None:
        if node.op == "call_module":
            target: Any = call.module
            key: Any = id(call.module)
        elif node.op == "call_function" and isinstance(node.target, types.FunctionType):
            target = key = node.target  # Python code fx did not enter (torch.fx.wrap); an aten op has no inside
        else:
            return None
        key = (key, signature((call.args, dict(call.kwargs))))
        if key not in self.memo:
            self.memo[key] = self._count(target, call)
        return self.memo[key]

    def _count(self, target: Any, call: Call) -> tuple[Cost, str] | None:
        try:
            cap = capture_dynamo(target, tuple(call.args), dict(call.kwargs))
        except FxFlopsError as err:
            self.failures[_name(target)] = str(err).splitlines()[0]
            return None
        records = count_capture(cap, self.registry, self.ignore)
        total = Cost(sum(r.macs for r in records), sum(r.flops for r in records))
        ops = [r for r in records if r.status == COUNTED]
        left = sorted({r.target for r in records if r.status == UNCOUNTED})
        if not self.ignore and outside_graphs(cap, records):
            left.append(f"{cap.eager_macs[''] - total.macs:,} MACs FlopCounterMode sees (run outside dynamo's graphs)")
        how = f"counted through dynamo ({len(ops)} ops)"
        if left:
            how += f"; uncounted inside: {', '.join(left)}"
        return total, how


def _name(target: Any) -> str:
    return type(target).__name__ if isinstance(target, torch.nn.Module) else getattr(target, "__name__", repr(target))


def fallback_notes(gm: fx.GraphModule, untraceable: list, fallback: DynamoFallback) -> list[str]:
    """One line per untraceable leaf (counted through dynamo or not) and per fx-wrapped function dynamo priced."""
    notes = []
    costs = {n.target: n.meta.get("fxflops") for n in gm.graph.nodes if n.op == "call_module"}
    for u in untraceable:
        cost = costs.get(u.path)
        if cost is not None and cost.status == COUNTED:
            notes.append(f"fx could not trace {u.describe()}; kept it as a leaf and counted it through dynamo")
        else:
            why = fallback.failures.get(u.cls, "dynamo could not count it either")
            notes.append(f"fx could not trace {u.describe()}; kept it as a leaf, uncounted: {why}")
    wrapped = sorted({n.meta["fxflops"].target for n in gm.graph.nodes if n.op == "call_function"
                      and "fxflops" in n.meta and n.meta["fxflops"].rule.startswith("counted through dynamo")})
    if wrapped:
        notes.append(f"fx keeps {', '.join(wrapped)} opaque (torch.fx.wrap); counted through dynamo")
    return notes


def dynamo_report(model: torch.nn.Module, args: tuple, kwargs: dict, registry: Registry, ignore: Iterable[Any],
                  strict: bool, input_shapes: list, leaf_types: tuple[type, ...] = (),
                  check_missing: bool = True) -> Report:
    """Capture ``model`` with dynamo and build its report. Submodules of ``leaf_types`` that have a rule are
    kept whole, as fx keeps them. ``check_missing`` compares the total with FlopCounterMode's (off when
    the user ignores ops or prices them with custom rules)."""
    def is_leaf(m: torch.nn.Module) -> bool:
        return isinstance(m, leaf_types) and registry.for_module(m) is not None

    cap = capture_dynamo(model, args, kwargs, is_leaf=is_leaf if leaf_types else None)
    nodes = count_capture(cap, registry, ignore)
    missing = outside_graphs(cap, nodes) if check_missing else None
    _check_uncounted(nodes, strict, missing)
    return Report(
        model_name=type(model).__name__,
        nodes=nodes,
        modules=module_rows(model, nodes),
        input_shapes=input_shapes,
        capture="dynamo",
        shape_mode=cap.shape_mode,
        notes=list(cap.notes) + ([missing] if missing else []),
        graph_module=cap.graph_modules[0] if cap.graph_modules else None,
        graph_modules=cap.graph_modules,
    )


def _check_uncounted(nodes: list[NodeRecord], strict: bool, missing: str | None = None) -> None:
    left = [n for n in nodes if n.status == UNCOUNTED]
    if not left and not missing:
        return
    names = sorted({n.target for n in left})
    msg = "; ".join(filter(None, [
        f"{len(left)} node(s) have no FLOPs rule and were counted as 0: {', '.join(names)}. "
        "Add one with custom_rules={target: fn} or @fxflops.rule(target); report.audit() lists them" if left else "",
        missing,
    ])) + "."
    if strict:
        raise UncountedOpError(msg)
    warnings.warn(msg, stacklevel=6)  # the caller of trace_flops


def choose_capture(capture: str, fx_job: Callable[[], Report], dynamo_job: Callable[[], Report], name: str) -> Report:
    """Run the capture path asked for. ``auto`` runs fx and, when symbolic tracing fails, dynamo, saying
    why in one note; if both fail, one error lists what each path hit."""
    if capture == "fx":
        return fx_job()
    if capture == "dynamo":
        return dynamo_job()
    try:
        return fx_job()
    except CaptureError as fx_err:  # a shape error means the example does not fit: dynamo would not help
        fx_why = _why(fx_err, name)
    try:
        report = dynamo_job()
    except UncountedOpError:
        raise
    except FxFlopsError as dyn_err:
        raise CaptureError(
            f"could not capture {name} with either path.\n"
            f"  fx: {fx_why}\n"
            f"  dynamo: {_why(dyn_err, name)}\n"
            "What to do: check that the model runs eagerly on this example; see the two reasons above."
        ) from dyn_err
    report.notes.insert(0, f"fx could not trace {fx_why}; used dynamo")
    return report


def _why(err: BaseException, name: str) -> str:
    """What a path hit, in one line: ``<module> (<reason>)``."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    for lead in ("torch.fx could not trace ", "torch dynamo could not capture "):
        if line.startswith(lead):
            return line[len(lead):].rstrip(".")
    return f"{name} ({type(err).__name__}: {line.rstrip('.')})"
