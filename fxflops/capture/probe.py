"""The eager probe that runs before a dynamo capture.

One eager run of the model on the capture's tensors (meta where possible), with
``torch.compiler.is_compiling()`` true so that the code takes the branches dynamo will take. It

* fails fast where the capture would (an op that needs real values, on meta);
* finds repeated blocks: children of a ModuleList/Sequential/ModuleDict whose class, dispatched aten
  ops (with shapes) and outputs match an earlier block's. Each gets a *stub* forward for the capture,
  which returns outputs shaped like the block's without running it (on real data, the very tensors
  the probe computed), so dynamo traces one block of 80 and the report copies its counted nodes to
  the others (:func:`fxflops.passes.records.reused_nodes`);
* records the calls of *leaf* modules, those the user prices with a custom rule: they are stubbed
  too and priced by their rule, as fx keeps them whole;
* counts MACs by module with FlopCounterMode, to check the capture against: work dynamo runs
  outside its graphs is seen by nothing else.

A stubbed block's side effects (a KV-cache update) are skipped during the capture; its outputs
are new tensors of the recorded shapes. That is safe for costing as long as later code only reads
shapes, which holds for the transformer stacks this is for.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..captured import LeafCall, Reuse
from ..paths import within as _within
from ..tensors import on_meta
from .patching import as_if_compiling, forwards

CONTAINERS = (torch.nn.ModuleList, torch.nn.Sequential, torch.nn.ModuleDict)


@dataclass
class ProbePlan:
    """What the eager probe found: stubs for the capture, reused blocks, leaf calls, FlopCounterMode's MACs."""

    stubs: dict[str, Callable] = field(default_factory=dict)  # module path -> forward used during capture
    reused: list[Reuse] = field(default_factory=list)
    leaves: list[LeafCall] = field(default_factory=list)
    eager_macs: dict[str, int] | None = None  # FlopCounterMode's MACs by module path ("" = all)
    notes: list[str] = field(default_factory=list)


def probe(target: Any, root: torch.nn.Module | None, args: tuple, kwargs: dict, reuse: bool,
          is_leaf: Callable[[torch.nn.Module], bool] | None = None) -> ProbePlan:
    """Run ``target(*args, **kwargs)`` once eagerly; see the module docstring."""
    leaves = _outermost({p: m for p, m in root.named_modules() if p and is_leaf(m)}) if root is not None and is_leaf \
        else {}
    blocks = {p: m for p, m in candidates(root).items() if p not in leaves and not _within(p, leaves)} \
        if reuse and root is not None else {}
    if len(blocks) < 2:
        blocks = {}
    log = _OpLog()
    calls: list[_Call] = []
    leaf_calls: list[LeafCall] = []
    wrapped = {b: _logged(p, b, log, calls) for p, b in blocks.items()}
    wrapped.update({m: _recorded(p, m, leaf_calls) for p, m in leaves.items()})
    counter = FlopCounterMode(display=False)
    with forwards(wrapped), as_if_compiling(), (log if blocks else contextlib.nullcontext()), counter:
        target(*args, **kwargs)
    result = ProbePlan(eager_macs=_macs_by_module(counter, root))
    replay = not on_meta((args, kwargs))
    _plan_reuse(calls, blocks, result, replay)
    _plan_leaves(leaf_calls, result, replay)
    return result


def candidates(root: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Composite children of ModuleList/Sequential/ModuleDict that share their class with a sibling."""
    out: dict[str, torch.nn.Module] = {}
    for path, container in root.named_modules():
        if not isinstance(container, CONTAINERS):
            continue
        kids = list(container.named_children())
        counts = Counter(type(m) for _, m in kids)
        for name, m in kids:
            if counts[type(m)] > 1 and next(m.children(), None) is not None:
                out[f"{path}.{name}" if path else name] = m
    return out


def signature(value: Any) -> Any:
    """What values look like, not what they hold: tensors by shape, dtype and device."""
    if isinstance(value, torch.Tensor):
        return ("T", tuple(value.shape), value.dtype, value.device.type)
    if isinstance(value, (list, tuple)):
        return tuple(signature(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, signature(v)) for k, v in value.items())
    if isinstance(value, float):
        return ("f", repr(value))
    if value is None or isinstance(value, (int, bool, str, torch.dtype, torch.device, torch.memory_format, torch.layout)):
        return value
    return type(value).__name__


class _OpLog(TorchDispatchMode):
    """Appends every aten op (with the signature of its inputs and outputs) to each open block log."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[list] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.open:
            entry = (func, signature(args), signature(kwargs or {}), signature(out))
            for log in self.open:
                log.append(entry)
        return out


@dataclass
class _Call:
    path: str
    key: Any  # equal keys mean the same computation
    inputs: list  # flattened (args, kwargs) of the call
    out: Any


def _logged(path: str, block: torch.nn.Module, log: _OpLog, calls: list[_Call]) -> Callable:
    forward = block.forward

    def forward_logged(*a, **k):
        ops: list = []
        log.open.append(ops)
        try:
            out = forward(*a, **k)
        finally:
            log.open.pop()
        flat_out, spec = tree_flatten(out)
        calls.append(_Call(path, (type(block), tuple(ops), str(spec), signature(flat_out)), tree_flatten((a, k))[0], out))
        return out

    return forward_logged


def _recorded(path: str, module: torch.nn.Module, calls: list[LeafCall]) -> Callable:
    forward = module.forward

    def forward_recorded(*a, **k):
        out = forward(*a, **k)
        calls.append(LeafCall(path, module, a, k, out))
        return out

    return forward_recorded


def _plan_reuse(calls: list[_Call], blocks: dict[str, torch.nn.Module], result: ProbePlan, replay: bool) -> None:
    """Stub every block called once whose computation an earlier block already did (outer blocks first)."""
    counts = Counter(c.path for c in calls)
    first: dict[Any, str] = {}
    once = [(i, c) for i, c in enumerate(calls) if counts[c.path] == 1]
    for _, call in sorted(once, key=lambda ic: (ic[1].path.count("."), ic[0])):
        if _within(call.path, result.stubs):
            continue  # an enclosing block is stubbed: this one never runs during capture
        source = first.setdefault(call.key, call.path)
        stub = _stub(call, replay) if source != call.path else None
        if stub is not None:
            result.stubs[call.path] = stub
            result.reused.append(Reuse(call.path, source, type(blocks[call.path]).__name__))
    groups = Counter((r.source, r.cls) for r in result.reused)
    result.notes += [f"traced {src} ({cls}) once and reused its counted graph for {n} identical block(s)"
                     for (src, cls), n in groups.items()]


def _plan_leaves(calls: list[LeafCall], result: ProbePlan, replay: bool) -> None:
    """Stub the leaf modules that run during capture (not inside a stubbed block), if each is called once."""
    counts = Counter(c.path for c in calls)
    kept = []
    for call in calls:
        if _within(call.path, result.stubs):
            continue  # its block is reused: the copied nodes include this leaf's record
        stub = _stub(_Call(call.path, None, tree_flatten((call.args, call.kwargs))[0], call.out), replay) \
            if counts[call.path] == 1 else None
        if stub is None:
            result.notes.append(f"{call.path} ({type(call.module).__name__}) has a custom rule but dynamo traced it "
                                "(called more than once, or returns an object made inside it): its ops are priced")
            continue
        result.stubs[call.path] = stub
        result.leaves.append(call)
    if result.leaves:
        names = sorted({type(c.module).__name__ for c in result.leaves})
        result.notes.append(f"kept {len(result.leaves)} module(s) whole and priced by their rule: {', '.join(names)}")


def _outermost(modules: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Module]:
    return {p: m for p, m in modules.items() if not _within(p, modules)}


def _macs_by_module(counter: FlopCounterMode, root: torch.nn.Module | None) -> dict[str, int]:
    """FlopCounterMode's totals (2 FLOPs per MAC) keyed by module path; it names modules ``Root.a.b``."""
    out = {"": counter.get_total_flops() // 2}
    head = type(root).__name__ + "." if root is not None else None
    for name, ops in counter.get_flop_counts().items():
        if head and name.startswith(head):
            out[name[len(head):]] = sum(ops.values()) // 2
    return out


def _stub(call: _Call, replay: bool) -> Callable | None:
    """A forward returning outputs like the call's (new empty tensors, the same passed-through inputs)
    without computing them; None when an output is an object made inside the module. With ``replay``
    (real data) it returns the tensors the probe computed, so that values downstream are the real
    ones: later data-dependent ops (proposal filtering, nms) then take the sizes they take eagerly."""
    flat, spec = tree_flatten(call.out)
    plan: list[tuple[str, Any]] = []
    for leaf in flat:
        if isinstance(leaf, torch.Tensor):
            plan.append(("value", leaf) if replay else ("tensor", (tuple(leaf.shape), leaf.dtype, leaf.device)))
        elif any(leaf is x for x in call.inputs):
            plan.append(("input", next(i for i, x in enumerate(call.inputs) if leaf is x)))
        elif leaf is None or isinstance(leaf, (int, float, bool, str)):
            plan.append(("const", leaf))
        else:
            return None

    if spec.is_leaf() and plan[0][0] == "tensor":  # the common case, a block returning one tensor
        shape, dtype, device = plan[0][1]
        return lambda *args, **kwargs: torch.empty(shape, dtype=dtype, device=device)
    if spec.is_leaf() and plan[0][0] == "value":
        value = plan[0][1]
        return lambda *args, **kwargs: value
    passes_inputs = any(kind == "input" for kind, _ in plan)

    def forward(*args, **kwargs):
        inputs = tree_flatten((args, kwargs))[0] if passes_inputs else []
        out = []
        for kind, v in plan:
            if kind == "tensor":
                out.append(torch.empty(v[0], dtype=v[1], device=v[2]))
            elif kind == "input":
                out.append(inputs[v])
            else:  # a recorded value or constant
                out.append(v)
        return tree_unflatten(out, spec)

    return forward


