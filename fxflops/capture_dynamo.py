"""Capture a model with TorchDynamo: torch-level fx graphs across graph breaks, for models fx cannot trace.

``torch.compile`` runs the model once with a backend that only records each graph it is handed
(one per graph break) and returns it uncompiled. Dynamo's graphs hold the same kind of targets
symbolic tracing produces (``torch.*``, ``F.*`` builtins, ``operator.*``, Tensor methods), so the
same rule registry prices them. They are made to look like fx graphs for the counting pass:

* each node's fake tensor (``meta["example_value"]``) is copied to ``meta["val"]``;
* ``meta["nn_module_stack"]`` is rewritten to plain module paths (``encoder.layer.0.attention``);
* parameters and buffers, which dynamo lifts to graph inputs, become ``get_attr`` nodes that name
  the model's own tensors, so node params and the per-module table read the same as with fx.

The model runs on meta tensors (real weights are swapped for meta copies, see
:func:`fxflops.shapes.meta_weights`), so nothing is computed; only where an op needs real values
(``.item()``, ``nonzero``...) is the capture repeated on the real model and example.

Repeated blocks (the 80 decoder layers of an LLM) are traced once: a cheap eager run on meta
tensors records the aten ops each block of a ModuleList/Sequential dispatches; blocks whose class,
ops and shapes match an earlier block are replaced by a stub during capture, and the report
reuses the earlier block's counted nodes for them (:func:`reused_nodes`).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import torch
import torch.fx as fx
from torch._subclasses.fake_tensor import fake_tensor_tls
from torch.fx.graph_module import _assign_attr
from torch.utils._pytree import tree_flatten, tree_unflatten
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from .errors import CaptureError, first_line, user_frame
from .report import NodeRecord
from .shapes import META, _leaves, meta_weights, to_meta

CONTAINERS = (torch.nn.ModuleList, torch.nn.Sequential, torch.nn.ModuleDict)

# Dynamo settings for one capture, applied with config.patch so they never leak. Recompiling
# past the limit would silently run the rest of a frame eagerly (uncounted), so it fails instead.
DYNAMO_CONFIG = dict(
    recompile_limit=4096,
    accumulated_recompile_limit=65536,
    fail_on_recompile_limit_hit=True,
    automatic_dynamic_shapes=False,
    assume_static_by_default=True,
    capture_scalar_outputs=False,
    suppress_errors=False,
    allow_rnn=True,  # otherwise nn.LSTM/GRU/RNN run eagerly, outside every graph
)


@dataclass
class Reuse:
    """A block that was not traced because an identical block (``source``) was."""

    path: str
    source: str
    cls: str


@dataclass
class DynamoCapture:
    graph_modules: list[fx.GraphModule]
    shape_mode: str  # "meta" or "real"
    reused: list[Reuse] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)  # times each graph ran; each run is counted
    # MACs FlopCounterMode saw in the eager probe, by module path ("" = all): a capture that counts fewer
    # ran code outside its graphs (see fxflops.fallback.outside_graphs)
    eager_macs: dict[str, int] | None = None


def capture_dynamo(
    target: torch.nn.Module | Callable,
    args: tuple = (),
    kwargs: dict | None = None,
    reuse_blocks: bool = True,
) -> DynamoCapture:
    """Capture ``target(*args, **kwargs)`` (a module or a function) as dynamo graphs; see the module docstring."""
    kwargs = dict(kwargs or {})
    root = target if isinstance(target, torch.nn.Module) else None
    real = _all_real(root, args, kwargs)
    try:
        return _capture(target, root, args, kwargs, "meta", reuse_blocks, probe_failure_is_final=real)
    except Exception as meta_exc:  # noqa: BLE001 - any failure on meta is retried on real data or reported
        if not real:
            raise CaptureError(_advice(target, meta_exc, "on meta tensors")) from meta_exc
        meta_reason = first_line(meta_exc)
    try:
        cap = _capture(target, root, args, kwargs, "real", reuse_blocks=False)
    except Exception as real_exc:  # noqa: BLE001
        raise CaptureError(_advice(target, real_exc, "on the real example")) from real_exc
    cap.notes.append(f"meta tensors failed ({meta_reason}); dynamo captured from a real run on the example")
    return cap


def _capture(target, root, args: tuple, kwargs: dict, mode: str, reuse_blocks: bool,
             probe_failure_is_final: bool = False) -> DynamoCapture:
    """One capture on ``mode`` tensors. On meta, an eager probe comes first (see :func:`_probe`); when it
    fails and a real run can follow, the capture is not attempted, as it would fail the same way."""
    with _scope(root, mode):
        paths = {id(m): p for p, m in root.named_modules()} if root is not None else {}
        tensors: dict[int, str] = {}
        if root is not None:
            for name, t in [*root.named_parameters(remove_duplicate=False), *root.named_buffers(remove_duplicate=False)]:
                tensors.setdefault(id(t), name)
        stubs, reused, eager = {}, [], None
        try:
            stubs, reused, eager = _probe(target, root, *_example(args, kwargs, mode), reuse_blocks and mode == "meta")
        except Exception:  # noqa: BLE001
            if probe_failure_is_final or mode == "real":
                raise
        recorder = _Recorder(tensors, real=mode == "real")
        run_args, run_kwargs = _example(args, kwargs, mode)
        with _forwards({root.get_submodule(p): fn for p, fn in stubs.items()} if stubs else {}):
            torch.compile(target, backend=recorder, fullgraph=False, dynamic=False)(*run_args, **run_kwargs)
    graphs = [_as_fx(g.gm, g.inputs, root, paths) for g in recorder.graphs]
    runs = [g.runs for g in recorder.graphs]
    notes = []
    if len(graphs) > 1:
        notes.append(f"dynamo split the model into {len(graphs)} graphs at graph breaks; all are counted")
    if any(r > 1 for r in runs):
        notes.append(f"{sum(r > 1 for r in runs)} graph(s) ran more than once (a frame called again); "
                     "each run is counted")
    notes += _reuse_notes(reused)
    return DynamoCapture(graphs, mode, reused, notes, runs, eager)


@contextlib.contextmanager
def _scope(root: torch.nn.Module | None, mode: str) -> Iterator[None]:
    """Fresh dynamo state, scoped config, no autograd; on meta, the weights swapped for meta copies.

    Meta constants a model creates while traced (``torch.tensor([], device=x.device)`` in a KV
    cache) are real tensors to dynamo's fake mode; they are allowed in, as ``torch.export`` does.
    """
    torch._dynamo.reset()
    old = fake_tensor_tls.allow_non_fake_inputs_override
    fake_tensor_tls.allow_non_fake_inputs_override = True
    weights = meta_weights(root) if mode == "meta" and root is not None else contextlib.nullcontext()
    # On real data, ops whose output size depends on values are kept in the graph (their sizes are
    # read from the real run) rather than run eagerly between graphs, where nothing would see them.
    real = dict(capture_dynamic_output_shape_ops=True, capture_scalar_outputs=True) if mode == "real" else {}
    try:
        with torch._dynamo.config.patch(**{**DYNAMO_CONFIG, **real}), torch.no_grad(), _kept_state(root), weights, \
                _quiet():
            yield
    finally:
        fake_tensor_tls.allow_non_fake_inputs_override = old
        torch._dynamo.reset()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Dynamo logs every graph break as a warning and torch's meta kernels warn about their own internals;
    the report's notes say what matters (how many graphs, why meta failed), so both are muted here."""
    log = logging.getLogger("torch._dynamo")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch")
            yield
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def _kept_state(root: torch.nn.Module | None) -> Iterator[None]:
    """Put back the module attributes a forward reassigns. torchvision's AnchorGenerator, for one,
    caches its anchors on the device of the last input: a meta run would leave them on meta."""
    saved = []
    for m in root.modules() if root is not None else ():
        attrs = {k: v for k, v in vars(m).items() if k not in ("_parameters", "_buffers", "_modules")}
        lists = [(v, list(v)) for v in attrs.values() if type(v) is list]
        saved.append((m, attrs, lists))
    try:
        yield
    finally:
        for m, attrs, lists in saved:
            for k in [k for k in vars(m) if k not in attrs and k not in ("_parameters", "_buffers", "_modules")]:
                delattr(m, k)
            vars(m).update(attrs)
            for obj, items in lists:
                obj[:] = items


def _example(args: tuple, kwargs: dict, mode: str) -> tuple[tuple, dict]:
    """A private copy of the example for one run (meta tensors on meta), so a KV cache the user
    passed in is not appended to, and every run starts from the same state."""
    value = to_meta((args, kwargs)) if mode == "meta" else (args, kwargs)
    try:
        value = copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - an uncopyable object is passed as is
        pass
    return value


def _all_real(root: torch.nn.Module | None, args: tuple, kwargs: dict) -> bool:
    tensors = [t for t in _leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    if root is not None:
        tensors += list(root.parameters()) + list(root.buffers())
    return all(t.device != META for t in tensors)


def _advice(target: Any, exc: BaseException, where: str) -> str:
    name = type(target).__name__ if isinstance(target, torch.nn.Module) else getattr(target, "__name__", repr(target))
    at = user_frame(exc.__traceback__)
    return (
        f"torch dynamo could not capture {name} {where}: {first_line(exc)}" + (f" at {at}" if at else "") + ".\n"
        "What to do: check that the model runs eagerly on this example; a model on the meta device needs an "
        "example whose ops have meta kernels, and data-dependent models need real weights and a real example."
    )


@dataclass
class _Graph:
    gm: fx.GraphModule
    inputs: list[str | None]  # the model tensor each graph input is, by name
    runs: int = 0


class _Recorder:
    """A dynamo backend that keeps each graph, which model tensor each graph input is, and how many
    times the graph ran: a frame compiled once runs again from dynamo's cache when it is called
    again (a helper with a graph break, called once per feature level), and every run costs.

    On real data, the first run goes through an interpreter that stores each node's output shape,
    so sizes that depend on values (``nonzero``, ``nms``) are known."""

    def __init__(self, tensors: dict[int, str], real: bool):
        self.tensors = tensors
        self.real = real
        self.graphs: list[_Graph] = []

    def __call__(self, gm: fx.GraphModule, example_inputs: list) -> Callable:
        graph = _Graph(gm, [self.tensors.get(id(t)) for t in example_inputs])
        self.graphs.append(graph)

        def run(*args):
            graph.runs += 1
            if self.real and graph.runs == 1:
                return _RealShapes(gm).run(*args)
            return gm.forward(*args)

        return run


class _RealShapes(fx.Interpreter):
    """Stores each node's real output, as :mod:`fxflops.shapes` does on real data: rules whose cost
    depends on values (RoI Align's adaptive sampling) can read them."""

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        n.meta["val"] = result
        return result


# ---- turning a dynamo graph into an fx-style graph ----------------------------------------------------


def _as_fx(gm: fx.GraphModule, inputs: list[str | None], root: torch.nn.Module | None, paths: dict[int, str]) -> fx.GraphModule:
    _plain_meta(gm, paths)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for node, name in zip(placeholders, inputs):
        if name is None:
            continue
        _assign_attr(root.get_parameter(name) if _is_param(root, name) else root.get_buffer(name), gm, name)
        with gm.graph.inserting_before(node):
            attr = gm.graph.get_attr(name)
        attr.meta = dict(node.meta)
        node.replace_all_uses_with(attr)
        gm.graph.erase_node(node)
    gm.recompile()
    return gm


def _is_param(root: torch.nn.Module, name: str) -> bool:
    mod, _, leaf = name.rpartition(".")
    return leaf in root.get_submodule(mod)._parameters


def _plain_meta(gm: fx.GraphModule, paths: dict[int, str]) -> None:
    """``val`` from dynamo's fake tensors and plain module paths, in ``gm`` and in any subgraph it calls."""
    for node in gm.graph.nodes:
        if "val" not in node.meta and "example_value" in node.meta:  # a real run may have set val already
            node.meta["val"] = node.meta["example_value"]
        elif node.op == "get_attr":
            attr = _fetch(gm, node.target)
            if isinstance(attr, torch.Tensor):
                node.meta["val"] = attr
        stack = node.meta.get("nn_module_stack")
        if stack:
            node.meta["nn_module_stack"] = {key: (_plain_path(key, name, paths), cls) for key, (name, cls) in stack.items()}
    for sub in gm.children():
        if isinstance(sub, fx.GraphModule):
            _plain_meta(sub, paths)


def _fetch(gm: torch.nn.Module, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj


_ROOT = re.compile(r"^[LG]\[['\"][^'\"]*['\"]\]")


def _plain_path(key: str, name: str, paths: dict[int, str]) -> str:
    """The module's path in the model. Dynamo keys its stack by ``str(id(module))`` (``@n`` for a
    repeated call), which finds the module exactly; its source name is the fallback."""
    head = key.split("@", 1)[0]
    if head.isdigit() and int(head) in paths:
        return paths[int(head)]
    name = _ROOT.sub("", name)
    name = re.sub(r"getattr\((.*?), ['\"]([^'\"]+)['\"]\)", r"\1.\2", name)
    name = re.sub(r"\._modules\[['\"]([^'\"]+)['\"]\]", r".\1", name)
    name = re.sub(r"\[['\"]?([^'\"\]]+)['\"]?\]", r".\1", name)
    return name.strip(".")


# ---- reuse of repeated blocks ---------------------------------------------------------------------------


def _candidates(root: torch.nn.Module) -> dict[str, torch.nn.Module]:
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


def _signature(value: Any) -> Any:
    """What an op's arguments look like, not what they hold: tensors by shape, dtype and device."""
    if isinstance(value, torch.Tensor):
        return ("T", tuple(value.shape), value.dtype, value.device.type)
    if isinstance(value, (list, tuple)):
        return tuple(_signature(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _signature(v)) for k, v in value.items())
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
            entry = (func, _signature(args), _signature(kwargs or {}), _signature(out))
            for log in self.open:
                log.append(entry)
        return out


@dataclass
class _Call:
    path: str
    key: Any  # equal keys mean the same computation
    inputs: list  # flattened (args, kwargs) of the call
    out: Any


def _probe(target, root: torch.nn.Module | None, args: tuple, kwargs: dict,
           reuse: bool) -> tuple[dict[str, Callable], list[Reuse], dict[str, int]]:
    """One eager run, taking the branches dynamo will take. On meta it fails fast where the capture
    would (an op that needs real values). It finds the blocks an identical earlier block can stand
    for (their stubs and the reuse records), and FlopCounterMode's MACs by module, against which
    the capture is checked: what dynamo runs outside its graphs is counted by nothing else."""
    blocks = _candidates(root) if reuse and root is not None else {}
    log = _OpLog()
    calls: list[_Call] = []
    counts: Counter = Counter()

    def recording(path: str, block: torch.nn.Module) -> Callable:
        forward = block.forward

        def forward_logged(*a, **k):
            ops: list = []
            log.open.append(ops)
            try:
                out = forward(*a, **k)
            finally:
                log.open.pop()
            counts[path] += 1
            flat_out, spec = tree_flatten(out)
            key = (type(block), tuple(ops), str(spec), _signature(flat_out))
            calls.append(_Call(path, key, tree_flatten((a, k))[0], out))
            return out

        return forward_logged

    logging = log if len(blocks) > 1 else contextlib.nullcontext()
    counter = FlopCounterMode(display=False)
    with _forwards({b: recording(p, b) for p, b in blocks.items()} if len(blocks) > 1 else {}), \
            _as_if_compiling(), logging, counter:
        target(*args, **kwargs)
    eager = _macs_by_module(counter, root)

    first: dict[Any, str] = {}
    stubs: dict[str, Callable] = {}
    reused: list[Reuse] = []
    once = [(i, c) for i, c in enumerate(calls) if counts[c.path] == 1]
    for _, call in sorted(once, key=lambda ic: (ic[1].path.count("."), ic[0])):  # outer blocks first
        if _inside(call.path, stubs):
            continue  # an enclosing block is stubbed: this one never runs during capture
        source = first.setdefault(call.key, call.path)
        stub = _stub(call) if source != call.path else None
        if stub is not None:
            stubs[call.path] = stub
            reused.append(Reuse(call.path, source, type(blocks[call.path]).__name__))
    return stubs, reused, eager


def _macs_by_module(counter: FlopCounterMode, root: torch.nn.Module | None) -> dict[str, int]:
    """FlopCounterMode's totals (2 FLOPs per MAC) keyed by module path; it names modules ``Root.a.b``."""
    out = {"": counter.get_total_flops() // 2}
    head = type(root).__name__ + "." if root is not None else None
    for name, ops in counter.get_flop_counts().items():
        if head and name.startswith(head):
            out[name[len(head):]] = sum(ops.values()) // 2
    return out


@contextlib.contextmanager
def _as_if_compiling() -> Iterator[None]:
    """Make ``torch.compiler.is_compiling()`` true for the eager probe, so that code which checks it (a
    data-dependent sanity check skipped under compile, say) takes the branch the dynamo capture takes."""
    old = torch.compiler._is_compiling_flag
    torch.compiler._is_compiling_flag = True
    try:
        yield
    finally:
        torch.compiler._is_compiling_flag = old


def _inside(path: str, stubs: dict[str, Callable]) -> bool:
    return any(path.startswith(p + ".") for p in stubs)


def _stub(call: _Call) -> Callable | None:
    """A forward returning outputs like the block's (new empty tensors, the same passed-through
    inputs) without computing them; None when an output is an object made inside the block."""
    flat, spec = tree_flatten(call.out)
    plan: list[tuple[str, Any]] = []
    for leaf in flat:
        if isinstance(leaf, torch.Tensor):
            plan.append(("tensor", (tuple(leaf.shape), leaf.dtype, leaf.device)))
        elif any(leaf is x for x in call.inputs):
            plan.append(("input", next(i for i, x in enumerate(call.inputs) if leaf is x)))
        elif leaf is None or isinstance(leaf, (int, float, bool, str)):
            plan.append(("const", leaf))
        else:
            return None

    if spec.is_leaf() and plan[0][0] == "tensor":  # the common case, a block returning one tensor
        shape, dtype, device = plan[0][1]
        return lambda *args, **kwargs: torch.empty(shape, dtype=dtype, device=device)
    passes_inputs = any(kind == "input" for kind, _ in plan)

    def forward(*args, **kwargs):
        inputs = tree_flatten((args, kwargs))[0] if passes_inputs else []
        out = []
        for kind, v in plan:
            if kind == "tensor":
                out.append(torch.empty(v[0], dtype=v[1], device=v[2]))
            elif kind == "input":
                out.append(inputs[v])
            else:
                out.append(v)
        return tree_unflatten(out, spec)

    return forward


@contextlib.contextmanager
def _forwards(forwards: dict[torch.nn.Module, Callable]) -> Iterator[None]:
    """Temporarily give blocks another forward (an instance attribute, which dynamo honours)."""
    patched = []
    try:
        for block, fn in forwards.items():
            patched.append((block, block.__dict__.get("forward")))
            block.forward = fn
        yield
    finally:
        for block, old in reversed(patched):
            if old is None:
                del block.forward
            else:
                block.forward = old


def _reuse_notes(reused: list[Reuse]) -> list[str]:
    groups: dict[tuple[str, str], int] = {}
    for r in reused:
        groups[(r.source, r.cls)] = groups.get((r.source, r.cls), 0) + 1
    return [f"traced {src} ({cls}) once and reused its counted graph for {n} identical block(s)"
            for (src, cls), n in groups.items()]


def reused_nodes(records: list[NodeRecord], reused: list[Reuse]) -> list[NodeRecord]:
    """``records`` plus, for every reused block, a copy of its source block's op nodes under its own path.
    Inner blocks are filled in first, so a reused stage copies a source stage that is already complete."""
    out = list(records)
    for r in sorted(reused, key=lambda r: -r.path.count(".")):
        prefix = r.source + "."
        for rec in list(out):
            if rec.status and (rec.module_path == r.source or rec.module_path.startswith(prefix)):
                path = r.path + rec.module_path[len(r.source):]
                out.append(replace(rec, name=f"{rec.name}@{r.path}", module_path=path))
            elif rec.kind == "get_attr" and rec.target.startswith(prefix):  # the block's weights
                out.append(replace(rec, name=f"{rec.name}@{r.path}", target=r.path + rec.target[len(r.source):]))
    return out
