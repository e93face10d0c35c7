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
:func:`fxflops.tensors.meta_weights`), so nothing is computed; only where an op needs real values
(``.item()``, ``nonzero``...) is the capture repeated on the real model and example.

An eager probe runs first (:mod:`fxflops.dynamo_probe`): it fails fast where meta tensors cannot
go, lets repeated blocks (the 80 decoder layers of an LLM) be traced once, keeps custom-ruled
modules whole, and gives FlopCounterMode's total to check the capture against.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.fx as fx
from torch._subclasses.fake_tensor import fake_tensor_tls
from torch.fx.graph_module import _assign_attr

from ..captured import Captured
from ..errors import CaptureError, first_line, user_frame
from ..paths import attr_at
from ..tensors import META, leaves, meta_weights
from ..types import Capture
from .patching import GLOBAL, forwards, kept_state, private_copy, quiet
from .probe import ProbePlan, probe

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


def capture_dynamo(
    target: torch.nn.Module | Callable,
    args: tuple = (),
    kwargs: dict | None = None,
    reuse_blocks: bool = True,
    is_leaf: Callable[[torch.nn.Module], bool] | None = None,
    grad: bool = False,
) -> Captured:
    """Capture ``target(*args, **kwargs)`` (a module or a function) as dynamo graphs; see the module docstring.
    ``is_leaf`` picks submodules to keep whole (not traced) and price by their rule, as fx does. ``grad`` captures
    with autograd on, as a training step runs, so that the graphs' values say which ones need a gradient."""
    kwargs = dict(kwargs or {})
    root = target if isinstance(target, torch.nn.Module) else None
    real = _all_real(root, args, kwargs)
    try:
        cap = _capture(target, root, args, kwargs, "meta", reuse_blocks, is_leaf, probe_failure_is_final=real,
                       grad=grad)
    except Exception as meta_exc:  # noqa: BLE001 - any failure on meta is retried on real data or reported
        if not real:
            raise CaptureError(_advice(target, meta_exc, "on meta tensors")) from meta_exc
        meta_reason = first_line(meta_exc)
    else:
        return _nonempty(cap, target)
    try:
        cap = _capture(target, root, args, kwargs, "real", reuse_blocks, is_leaf, grad=grad)
    except Exception as real_exc:  # noqa: BLE001
        raise CaptureError(_advice(target, real_exc, "on the real example")) from real_exc
    cap.notes.append(f"meta tensors failed ({meta_reason}); dynamo captured from a real run on the example")
    return _nonempty(cap, target)


def _nonempty(cap: Captured, target: Any) -> Captured:
    """A capture with nothing in it would report 0 FLOPs: every op ran outside dynamo's graphs."""
    if not cap.graphs and not cap.leaves:
        name = type(target).__name__ if isinstance(target, torch.nn.Module) else getattr(target, "__name__", "it")
        raise CaptureError(f"dynamo captured no graph of {name}: every op ran outside its graphs (ops it cannot "
                           "trace, such as quantized kernels); use capture='record' or 'auto'")
    return cap


def _capture(target, root, args: tuple, kwargs: dict, mode: str, reuse_blocks: bool, is_leaf,
             probe_failure_is_final: bool = False, grad: bool = False) -> Captured:
    """One capture on ``mode`` tensors, after the eager probe. When the probe fails on meta and a real
    run can follow, the capture is not attempted: it would fail the same way, only slower."""
    with _scope(root, mode, grad=grad):
        paths = {id(m): p for p, m in root.named_modules()} if root is not None else {}
        tensors: dict[int, str] = {}
        if root is not None:
            for name, t in [*root.named_parameters(remove_duplicate=False), *root.named_buffers(remove_duplicate=False)]:
                tensors.setdefault(id(t), name)
        found = ProbePlan()
        try:
            found = probe(target, root, *private_copy(args, kwargs, mode, root), reuse_blocks, is_leaf)
        except Exception:  # noqa: BLE001
            if probe_failure_is_final or mode == "real":
                raise
        recorder = _Recorder(tensors, real=mode == "real")
        run_args, run_kwargs = private_copy(args, kwargs, mode, root)
        with forwards({root.get_submodule(p): fn for p, fn in found.stubs.items()}):
            torch.compile(target, backend=recorder, fullgraph=False, dynamic=False)(*run_args, **run_kwargs)
    graphs = [_as_fx(g.gm, g.inputs, root, paths) for g in recorder.graphs]
    runs = [g.runs for g in recorder.graphs]
    notes = []
    if len(graphs) > 1:
        notes.append(f"dynamo split the model into {len(graphs)} graphs at graph breaks; all are counted")
    if any(r > 1 for r in runs):
        notes.append(f"{sum(r > 1 for r in runs)} graph(s) ran more than once (a frame called again); "
                     "each run is counted")
    return Captured(Capture.DYNAMO, graphs, shape_mode=mode, notes=notes + found.notes, runs=runs, reused=found.reused,
                    leaves=found.leaves, eager_macs=found.eager_macs)


@contextlib.contextmanager
def compiled_as_captured(target: torch.nn.Module, args: tuple, kwargs: dict, backend: Callable, mode: str,
                         reuse_blocks: bool = True, is_leaf: Callable[[torch.nn.Module], bool] | None = None,
                         ) -> Iterator[Callable[[], Any]]:
    """``target`` compiled with ``backend`` the way :func:`capture_dynamo` captured it in ``mode`` (same dynamo
    settings, same probe, the same repeated blocks stubbed), but on its real weights and the real example:
    yields a function that runs one forward on a fresh copy of the example. The measured-latency pass
    (:mod:`fxflops.passes.latency`) times the graphs this hands its backend; their nodes have the names of
    the captured ones."""
    with _scope(target, mode, swap_weights=False):
        found = probe(target, target, *private_copy(args, kwargs, "real", target), reuse_blocks, is_leaf)
        with forwards({target.get_submodule(p): fn for p, fn in found.stubs.items()}):
            compiled = torch.compile(target, backend=backend, fullgraph=False, dynamic=False)

            def run() -> Any:
                a, k = private_copy(args, kwargs, "real", target)
                return compiled(*a, **k)

            yield run


@contextlib.contextmanager
def _scope(root: torch.nn.Module | None, mode: str, swap_weights: bool = True, grad: bool = False) -> Iterator[None]:
    """Fresh dynamo state, scoped config, autograd only with ``grad``; on meta, the weights swapped for meta copies.

    Meta constants a model creates while traced (``torch.tensor([], device=x.device)`` in a KV
    cache) are real tensors to dynamo's fake mode; they are allowed in, as ``torch.export`` does.
    """
    with GLOBAL.exclusive():  # dynamo's config, caches and reset() are process-wide
        yield from _scoped(root, mode, swap_weights, grad)


def _scoped(root: torch.nn.Module | None, mode: str, swap_weights: bool, grad: bool) -> Iterator[None]:
    torch._dynamo.reset()
    old = fake_tensor_tls.allow_non_fake_inputs_override
    fake_tensor_tls.allow_non_fake_inputs_override = True
    weights = meta_weights(root) if mode == "meta" and root is not None and swap_weights else contextlib.nullcontext()
    # On real data, ops whose output size depends on values are kept in the graph (their sizes are
    # read from the real run) rather than run eagerly between graphs, where nothing would see them.
    real = dict(capture_dynamic_output_shape_ops=True, capture_scalar_outputs=True) if mode == "real" else {}
    try:
        with torch._dynamo.config.patch(**{**DYNAMO_CONFIG, **real}), torch.set_grad_enabled(grad), kept_state(root), \
                weights, quiet():
            yield
    finally:
        fake_tensor_tls.allow_non_fake_inputs_override = old
        torch._dynamo.reset()


def _all_real(root: torch.nn.Module | None, args: tuple, kwargs: dict) -> bool:
    tensors = [t for t in leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
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
            attr = attr_at(gm, node.target)
            if isinstance(attr, torch.Tensor):
                node.meta["val"] = attr
        stack = node.meta.get("nn_module_stack")
        if stack:
            node.meta["nn_module_stack"] = {key: (_plain_path(key, name, paths), cls) for key, (name, cls) in stack.items()}
    for sub in gm.children():
        if isinstance(sub, fx.GraphModule):
            _plain_meta(sub, paths)


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
