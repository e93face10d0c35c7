"""Capture a model as a torch.fx graph by symbolic tracing.

A module stays a leaf (one ``call_module`` node) exactly when a rule knows its class or the user
named it a leaf; everything else is traced through, so the functional ops inside user modules
(residual adds, ``@``, softmax...) become nodes of their own. When one submodule cannot be traced,
it is made a leaf and tracing is retried ("partial tracing"): the rest of the model keeps its
op-level graph and the leaf is counted through the fallback capture.
"""
from __future__ import annotations

import threading

from typing import Any, Iterable

import torch
import torch.fx as fx
from torch.nn.utils.parametrize import is_parametrized
from torch.nn.utils.prune import BasePruningMethod
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from ..captured import Captured, Untraceable
from ..errors import CaptureError, first_line, user_frame
from ..rules.registry import Registry
from ..types import Capture
from .graph_module import graph_module
from .patching import GLOBAL, CheckpointRegions, checkpoint_regions

# Partial tracing gives up after this many leaf promotions: past it the model is not "mostly traceable".
MAX_UNTRACEABLE = 64


class _ModuleTraceError(Exception):
    def __init__(self, path: str, exc: BaseException):
        super().__init__(path)
        self.path = path
        self.exc = exc


class FlopsTracer(fx.Tracer):
    """A Tracer whose leaves are the modules a rule knows, the user's leaves, and the untraceable ones."""

    def __init__(self, registry: Registry, leaf_types: tuple[type, ...] = (), leaf_paths: Iterable[str] = ()):
        super().__init__()
        self.registry = registry
        self.leaf_types = leaf_types
        self.leaf_paths = set(leaf_paths)
        self._path_stack: list[str] = []
        self.regions = CheckpointRegions()
        self._thread = threading.get_ident()
        self._names: dict[int, str] | None = None  # see _tensor_names; made on the first weight access of a trace

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict) -> Any:
        if threading.get_ident() != self._thread:  # and Module.__getattr__: another thread's model is left alone
            return attr_val
        if isinstance(attr_val, torch.Tensor) and not self.param_shapes_constant:
            # torch's Tracer finds a weight's name by walking every named parameter (and buffer) of the root at each
            # access: quadratic in the model's size (a fifth of Swin-T's trace). The same first names, from a map.
            name = self._tensor_names().get(id(attr_val))
            if name is not None:
                if name not in parameter_proxy_cache:
                    parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
                return parameter_proxy_cache[name]
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def _tensor_names(self) -> dict[int, str]:
        """``{id: first name}`` of the root's parameters, then of its buffers when the tracer proxies buffers (the
        order torch's search takes); a tensor not in it takes torch's own path."""
        if self._names is None:
            names: dict[int, str] = {}
            for n, p in self.root.named_parameters():
                names.setdefault(id(p), n)
            if self.proxy_buffer_attributes:
                for n, b in self.root.named_buffers():
                    if not isinstance(b, torch.nn.Parameter):
                        names.setdefault(id(b), n)
            self._names = names
        return self._names

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        self.regions.tag(node)
        return node

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        if module_qualified_name in self.leaf_paths:
            return True
        if is_parametrized(m):  # its weight is computed in the call (weight norm): traced through, as recorded
            return False
        if self.leaf_types and isinstance(m, self.leaf_types):
            return True
        return self.registry.for_module(m) is not None

    def call_module(self, m, forward, args, kwargs):
        if threading.get_ident() != self._thread:  # torch.fx patches Module.__call__ for every thread while it traces
            return forward(*args, **kwargs)
        try:
            path = self.path_of_module(m)
        except NameError:
            # A module built inside forward (``nn.ReLU()(x)``) is no attribute of the model, so it cannot
            # be a call_module node: trace through it and price the ops its forward calls.
            return forward(*args, **kwargs)
        self._path_stack.append(path)
        try:
            return super().call_module(m, forward, args, kwargs)
        except _ModuleTraceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure inside forward is attributed to m
            raise _ModuleTraceError(path, exc).with_traceback(exc.__traceback__) from exc
        finally:
            self._path_stack.pop()


def capture_fx(
    model: torch.nn.Module,
    registry: Registry,
    leaf_types: tuple[type, ...] = (),
    concrete_args: dict[str, Any] | None = None,
    partial: bool = True,
    stack_traces: bool = False,
) -> Captured:
    """Symbolically trace ``model``; with ``partial``, untraceable submodules become leaves (``fx (partial)``). ``stack_traces``
    records each node's source line in ``node.meta["stack_trace"]`` (it doubles the tracing time)."""
    hooked = _weight_hooks(model) if isinstance(model, torch.nn.Module) else None
    if hooked is not None:
        raise CaptureError(f"torch.fx cannot trace {hooked}: a forward pre-hook computes its weight (old-style "
                           "torch.nn.utils.weight_norm, spectral_norm or pruning), which symbolic tracing does not "
                           "run. What to do: use capture='auto' or 'record', which run the hook.")
    untraceable: list[Untraceable] = []
    leaf_paths: set[str] = set()
    while True:
        tracer = FlopsTracer(registry, leaf_types, leaf_paths)
        tracer.record_stack_traces = stack_traces
        before = set(vars(model)) if isinstance(model, torch.nn.Module) else set()
        try:
            # exclusive: the tracer patches torch.nn.Module.__call__ for the whole process and restores it on exit
            with GLOBAL.exclusive(), checkpoint_regions(tracer.regions):
                graph = tracer.trace(model, concrete_args=concrete_args)
        except _ModuleTraceError as err:
            bad = _describe(model, err.path, err.exc)
            if not partial or not err.path or err.path in leaf_paths or len(untraceable) >= MAX_UNTRACEABLE:
                raise CaptureError(_advice(bad)) from err.exc
            untraceable.append(bad)
            leaf_paths.add(err.path)
            continue
        except Exception as exc:  # noqa: BLE001 - failure in the root forward itself
            raise CaptureError(_advice(_describe(model, "", exc))) from exc
        finally:
            # The tracer stores the tensor constants it meets on the root (``_tensor_constant0``): they belong to
            # the graph, and the user's model is left as it was.
            consts = {k: vars(model).pop(k) for k in set(vars(model)) - before} if before else {}
        gm = graph_module(tracer.root, graph, consts)  # a function is traced on a module of the tracer's own
        return Captured(Capture.FX_PARTIAL if untraceable else Capture.FX, [gm], untraceable=untraceable)


def _weight_hooks(model: torch.nn.Module) -> str | None:
    """The first module whose weight a forward pre-hook computes, as ``path (Class)``; None if there is none."""
    for path, m in model.named_modules():
        if any(isinstance(h, (WeightNorm, SpectralNorm, BasePruningMethod)) for h in m._forward_pre_hooks.values()):
            return f"{path or 'the model'} ({type(m).__name__})"
    return None


def _describe(model: torch.nn.Module, path: str, exc: BaseException) -> Untraceable:
    cls = type(model.get_submodule(path)).__name__ if path else type(model).__name__
    return Untraceable(path, cls, first_line(exc), user_frame(exc.__traceback__))


def _advice(bad: Untraceable) -> str:
    return (
        f"torch.fx could not trace {bad.describe()}.\n"
        "What to do: use capture='dynamo' (or 'auto', which falls back to it), keep the module as a leaf "
        f"with leaf_modules=[{bad.cls}] and a custom rule, or pass concrete_args for the argument "
        "that drives the control flow."
    )
