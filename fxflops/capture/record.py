"""Capture a model by recording its eager call at the torch-function level into a torch.fx graph.

The model runs once, on meta tensors where it can (real weights are swapped for meta copies), under a
``TorchFunctionMode`` that appends one node per torch-function call: ``F.linear``, ``torch.matmul``,
``Tensor.add``, ``F.scaled_dot_product_attention``... exactly the targets symbolic tracing produces, so the
same rules price them. Arguments are linked to the nodes that produced them by tensor identity (an
in-place op becomes the producer of the tensor it returns), parameters and buffers become ``get_attr``
nodes naming the model's own tensors, inputs are placeholders, every node's ``meta["val"]`` is the value
the call returned (so no shape propagation is needed) and ``meta["nn_module_stack"]`` comes from global
module hooks, used for attribution only.

Modules a rule prices whole (the built-in module rules, custom rules, ``leaf_modules``) are recorded as one
``call_module`` node with nothing recorded inside; on meta, those whose output shape is known from their
configuration are not even run. A dispatch-level check adds up the MACs of the aten contractions that run
(torch's own formulas), by module, so that work the recorder cannot see (a C++ extension op with no
torch-function entry) is reported rather than lost.

Where meta tensors cannot go (``nonzero``, ``.item()``, a branch on a value), the call is recorded again on
the real example, and the report says that the branch this example took is the one counted.
"""
from __future__ import annotations

import contextlib
import threading
import operator
import re
from typing import Any, Callable, Iterator

import torch
import torch.fx as fx
from torch.nn.utils.parametrize import is_parametrized
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ..captured import Captured
from ..errors import CaptureError, ShapeError, first_line, user_frame
from ..quick_shapes import quick_call, quick_output
from ..paths import within
from ..tensors import META, has_tensor, meta_weights, tensors_in
from ..types import Capture
from .graph_module import graph_module
from .patching import (GLOBAL, CheckpointRegions, as_if_compiling, checkpoint_regions, forwards, kept_state,
                       private_copy, quiet)

_GETSET = type(torch.Tensor.shape)  # attribute descriptors (shape, T, mT, real...) reach the mode as __get__
_METHOD_WRAPPER = type(torch.Tensor.shape.__get__)
_SCALARS = (int, float, bool, complex, str, type(None), torch.dtype, torch.device, torch.memory_format,
            torch.layout, type(Ellipsis))


def capture_record(model: torch.nn.Module, args: tuple, kwargs: dict,
                   is_leaf: Callable[[torch.nn.Module], bool], meta: bool = True, grad: bool = False) -> Captured:
    """Record ``model(*args, **kwargs)``; see the module docstring. ``is_leaf`` picks the modules kept whole;
    ``meta=False`` records the real run directly (a graph to run again on real data). ``grad`` runs it with
    autograd on, as a training step does (code such as HF's gradient checkpointing checks it); else under no_grad."""
    real = all(t.device != META for t in tensors_in((args, kwargs)) + list(model.parameters()) + list(model.buffers()))
    if not meta:
        try:
            return _record(model, args, kwargs, is_leaf, "real", grad)
        except Exception as real_exc:  # noqa: BLE001
            raise _refusal(model, real_exc, "on the real example", (args, kwargs)) from real_exc
    try:
        return _record(model, args, kwargs, is_leaf, "meta", grad)
    except Exception as meta_exc:  # noqa: BLE001 - any failure on meta is retried as compiled, on real data, or reported
        meta_reason = first_line(meta_exc)
        try:
            # Code that reads a tensor's values (HF's packed-sequence check calls .all() on the attention mask)
            # skips that read under torch.compile; meta tensors have no values, so record the branch compile takes.
            with as_if_compiling():
                cap = _record(model, args, kwargs, is_leaf, "meta", grad)
            cap.notes.append(f"meta tensors failed ({meta_reason}); recorded with torch.compiler.is_compiling() "
                             "true, so code that checks it takes the branch a compiled model takes")
            return cap
        except Exception:  # noqa: BLE001 - the first failure is the one worth reporting
            pass
        if not real:
            raise _refusal(model, meta_exc, "on meta tensors", (args, kwargs)) from meta_exc
    try:
        cap = _record(model, args, kwargs, is_leaf, "real", grad)
    except Exception as real_exc:  # noqa: BLE001
        raise _refusal(model, real_exc, "on the real example", (args, kwargs)) from real_exc
    cap.notes.append(f"meta tensors failed ({meta_reason}); recorded a real run on the example, so data-dependent "
                     "control flow counts the branch this example took")
    return cap


# torch's words for a tensor that does not fit an op's sizes; any other eager failure stays a capture error
_SHAPE_WORDS = re.compile(r"expanded size|must match the (existing )?size|shapes cannot be multiplied|size mismatch|"
                          r"index out of range|out of bounds for dimension|sizes of tensors must match", re.I)


def _refusal(model: torch.nn.Module, exc: BaseException, where: str, example: Any) -> CaptureError | ShapeError:
    """The model's own eager call failed: a size torch refuses is the example not fitting the model (no other
    capture path would help, and the user should hear that first); anything else is a capture failure."""
    if not _SHAPE_WORDS.search(str(exc)):
        return CaptureError(_advice(model, exc, where))
    at = user_frame(exc.__traceback__)
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    longest = max((t.shape[-1] for t in tensors_in(example) if t.dim() and not t.is_floating_point()), default=0)
    past = f" ({longest} > {limit} positions)" if isinstance(limit, int) and longest > limit else ""
    return ShapeError(f"the example input does not fit the model{past}: {type(model).__name__} {where} raised "
                      f"{first_line(exc)}" + (f" ({at})" if at else "") + ".\nWhat to do: check the example's "
                      "shape, dtype and batch dimension against what the model's forward accepts", located=bool(at))


def _advice(model: torch.nn.Module, exc: BaseException, where: str) -> str:
    at = user_frame(exc.__traceback__)
    return (f"could not record {type(model).__name__} {where}: {first_line(exc)}" + (f" at {at}" if at else "") + ".\n"
            "What to do: check that the model runs eagerly on this example; a model on the meta device needs an "
            "example whose ops have meta kernels, and data-dependent models need real weights and a real example.")


def _record(model: torch.nn.Module, args: tuple, kwargs: dict, is_leaf: Callable[[torch.nn.Module], bool],
            mode: str, grad: bool = False) -> Captured:
    paths: dict[int, str] = {}  # a module shared by several owners goes by its first (canonical) path
    for p, m in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(m), p)
    weights = meta_weights(model) if mode == "meta" else contextlib.nullcontext()
    # shared: the model's forward may read torch's process-wide flags, which an fx trace or dynamo may be changing
    with GLOBAL.shared(), quiet(), torch.set_grad_enabled(grad), kept_state(model), weights:
        args, kwargs = private_copy(args, kwargs, mode, model)
        rec = _Recorder(model, paths)
        rec.inputs(args, kwargs)
        leaves_ = {m: _leaf_forward(rec, p, m, mode == "meta") for p, m in _outermost(model, is_leaf).items()}
        with forwards(leaves_), checkpoint_regions(rec.regions), rec.module_stack(), _MacCheck(rec) as rec.check, rec:
            out = model(*args, **kwargs)
        rec.output(out)
    # eager_macs: the MACs of the aten contractions that ran, by module path ("" = all), from torch's flop formulas
    return Captured(Capture.RECORD, [graph_module(model, rec.graph, rec.consts)], shape_mode=mode,
                    inputs=(*args, *kwargs.values()), eager_macs=rec.check.by_module)


def _outermost(model: torch.nn.Module, is_leaf: Callable[[torch.nn.Module], bool]) -> dict[str, torch.nn.Module]:
    """The leaf modules not inside another leaf (the root is never a leaf: its forward is what is recorded). A
    parametrized module (weight norm, spectral norm) is recorded through: its weight is computed inside its call."""
    out: dict[str, torch.nn.Module] = {}
    for path, m in model.named_modules():
        if path and not within(path, out, ancestors=True) and is_leaf(m) and not is_parametrized(m):
            out[path] = m
    return out


class _Recorder(TorchFunctionMode):
    """Appends one fx node per torch-function call; see the module docstring."""

    def __init__(self, model: torch.nn.Module, paths: dict[int, str]):
        super().__init__()
        self.graph = fx.Graph()
        self.paths = paths
        self.producer: dict[int, fx.Node] = {}  # id(tensor) -> the node whose value it is
        self.parts: dict[int, tuple[fx.Node, int]] = {}  # id(tensor) -> (tuple-valued node, index), linked on use
        self.alive: list[Any] = []  # keeps every recorded value alive, so no id is reused during the run
        self.stack: list[tuple[str, type]] = []  # modules being called, outermost first (root excluded)
        self.muted = 0  # > 0 inside a leaf module: its inner calls are not recorded
        self.check: _MacCheck | None = None  # the dispatch-level check, bypassed for what is recorded here
        self.consts: dict[str, Any] = {}  # values the graph holds that are not the model's (get_attr targets)
        self._stack_dict: dict[str, tuple[str, type]] | None = None  # see _stack_meta
        self._names: dict[Any, str] = {}  # op target -> candidate node name
        self.regions = CheckpointRegions()
        self.names = {id(t): n for n, t in [*model.named_parameters(remove_duplicate=False),
                                            *model.named_buffers(remove_duplicate=False)]}

    # ---- the graph's edges ------------------------------------------------------------------------------

    def inputs(self, args: tuple, kwargs: dict) -> None:
        for i, a in enumerate(args):
            self._placeholder(f"arg{i}" if not isinstance(a, torch.Tensor) else f"input_{i}", a)
        for k, v in kwargs.items():
            self._placeholder(k, v)

    def _placeholder(self, name: str, value: Any) -> None:
        node = self.graph.placeholder(name)
        node.meta["val"] = value
        self._link(value, node)

    def _link(self, value: Any, node: fx.Node) -> None:
        """``value`` (or each tensor of a tuple/list value) is produced by ``node``."""
        self.alive.append(value)
        if isinstance(value, torch.Tensor):
            self.producer[id(value)] = node
        elif isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                if isinstance(v, torch.Tensor):
                    self.parts[id(v)] = (node, i)
                    self.producer.pop(id(v), None)

    def _node_of(self, t: torch.Tensor) -> fx.Node:
        node = self.producer.get(id(t))
        if node is not None:
            return node
        part = self.parts.pop(id(t), None)
        if part is not None:
            parent, i = part
            node = self.graph.call_function(operator.getitem, (parent, i))
            node.meta.update(val=t, nn_module_stack=parent.meta.get("nn_module_stack", {}))
            if "checkpoint" in parent.meta:
                node.meta["checkpoint"] = parent.meta["checkpoint"]
        else:  # a parameter, a buffer, or a tensor made outside every recorded call
            name = self.names.get(id(t))
            if name is None:
                return self._object(t)
            node = self.graph.get_attr(name)
            node.meta["val"] = t
        self.alive.append(t)
        self.producer[id(t)] = node
        return node

    def _arg(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return self._node_of(value)
        if isinstance(value, (tuple, list)):
            return type(value)(self._arg(v) for v in value) if type(value) in (tuple, list) else tuple(
                self._arg(v) for v in value)
        if isinstance(value, dict):
            return {k: self._arg(v) for k, v in value.items()}
        if isinstance(value, slice):
            return slice(self._arg(value.start), self._arg(value.stop), self._arg(value.step))
        if isinstance(value, _SCALARS):
            return value
        return self._object(value)

    def _object(self, value: Any) -> fx.Node:
        """Anything else an op receives (a generator, a custom object) is held as a constant of the graph."""
        name = f"_record_const{len(self.consts)}"
        self.consts[name] = value
        node = self.graph.get_attr(name)
        node.meta["val"] = value
        self.alive.append(value)
        return node

    def _stack_meta(self) -> dict[str, tuple[str, type]]:
        """The module stack of a node made now. Shared by the nodes of one module call (it is never mutated):
        an 80-layer model makes thousands of nodes and only changes modules at each call's start and end."""
        if self._stack_dict is None:
            self._stack_dict = {p: (p, cls) for p, cls in self.stack}
        return self._stack_dict

    def add(self, op: str, target: Any, args: tuple, kwargs: dict, out: Any) -> fx.Node:
        name = self._names.get(target)
        if name is None:  # the graph's own name for the target, worked out once per target
            name = self._names[target] = self.graph._target_to_str(target)
        node = self.graph.create_node(op, target, self._arg(tuple(args)), self._arg(dict(kwargs)), name=name)
        node.meta["val"] = out
        node.meta["nn_module_stack"] = self._stack_meta()
        self.regions.tag(node)
        self._link(out, node)
        return node

    def output(self, out: Any) -> None:
        self.graph.output(self._arg(_plain(out)))

    # ---- the torch-function level ---------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.__class__ is _METHOD_WRAPPER and func.__self__.__class__ is _GETSET:  # x.shape, x.T, x.dtype...
            out = func(*args, **kwargs)
            if not self.muted and isinstance(out, torch.Tensor):  # .T, .mT, .real: a view, a node like a method
                self.add("call_method", func.__self__.__name__, args, {}, out)
            return out
        out = quick_call(func, args, kwargs)  # on meta, a slow kernel's output made by rule (None elsewhere)
        if out is None:
            out = self.unchecked(func, args, kwargs)
        if self.muted or not (has_tensor(out) or has_tensor(args) or has_tensor(kwargs)):
            return out
        name = getattr(func, "__name__", None)
        if name is not None and getattr(torch.Tensor, name, None) is func:
            self.add("call_method", name, args, kwargs, out)
        else:
            self.add("call_function", func, args, kwargs, out)
        return out

    def unchecked(self, func: Callable, args: tuple, kwargs: dict) -> Any:
        """``func(*args, **kwargs)`` without the dispatch-level check: what is recorded needs no second look, and a
        Python dispatch mode under every aten op would cost more than the recording itself, so the check only
        sees what runs outside recorded calls."""
        check = self.check
        n = torch._C._len_torch_dispatch_stack()
        if check is None or not n or torch._C._get_dispatch_stack_at(n - 1) is not check:
            return func(*args, **kwargs)
        torch._C._pop_torch_dispatch_stack(None)
        try:
            return func(*args, **kwargs)
        finally:
            torch._C._push_on_torch_dispatch_stack(check)

    # ---- modules ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def module_stack(self) -> Iterator[None]:
        """Global module hooks keep ``self.stack``: which modules (by path in the model) a call happens in. They are
        process-wide, so they ignore the calls other threads make."""
        me = threading.get_ident()

        def pre(module, _args):
            if threading.get_ident() != me:
                return
            path = self.paths.get(id(module))
            if path:
                self.stack.append((path, type(module)))
                self._stack_dict = None

        def post(module, _args, _out):
            if threading.get_ident() != me:
                return
            path = self.paths.get(id(module))
            if path and self.stack and self.stack[-1][0] == path:
                self.stack.pop()
                self._stack_dict = None

        h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
        h2 = torch.nn.modules.module.register_module_forward_hook(post, always_call=True)
        try:
            yield
        finally:
            h1.remove()
            h2.remove()


def _plain(value: Any) -> Any:
    """The model's output as tuples, lists and dicts (a ModelOutput is a dict), for the graph's output node."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return value


def _leaf_forward(rec: _Recorder, path: str, module: torch.nn.Module, meta: bool) -> Callable:
    """A leaf's forward during the run: one ``call_module`` node, nothing recorded inside; on meta, outputs whose
    shape follows from the module's configuration are made without running it (shape propagation's shortcut)."""
    forward = module.forward

    def forward_recorded(*a, **k):
        with torch._C.DisableTorchFunction():  # its shape reads are bookkeeping, not calls of the model
            out = rec.unchecked(quick_output, (module, a, k), {}) if meta else None
        if out is None:
            rec.muted += 1
            try:
                out = forward(*a, **k)
            finally:
                rec.muted -= 1
        if not rec.muted:
            node = rec.graph.create_node("call_module", path, rec._arg(a), rec._arg(k))
            node.meta["val"] = out
            node.meta["nn_module_stack"] = {**rec._stack_meta(), path: (path, type(module))}
            rec.regions.tag(node)
            rec._link(out, node)
        return out

    return forward_recorded


class _MacCheck(TorchDispatchMode):
    """Adds up the MACs of the aten contractions that run outside every recorded call (torch's flop formulas
    / 2), by module path: work the torch-function level cannot see."""

    def __init__(self, rec: _Recorder):
        super().__init__()
        self.rec = rec
        self.by_module: dict[str, int] = {"": 0}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            try:
                macs = formula(*args, **kwargs, out_val=out) // 2
            except Exception:  # noqa: BLE001 - a formula that does not fit this call: the check stays silent
                macs = 0
            self.by_module[""] += macs
            for path, _ in self.rec.stack:
                self.by_module[path] = self.by_module.get(path, 0) + macs
        return out
