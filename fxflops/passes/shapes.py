"""Shape propagation: run the graph on meta tensors and store every node's output in ``node.meta["val"]``.

Meta tensors carry shape and dtype but no data, so nothing is computed and a model built on the
``meta`` device works. Parameters and buffers are swapped for meta copies for the duration of the
run (an fx Interpreter over meta tensors is several times faster than FakeTensorProp). Where a
meta kernel is missing or an op needs real values, the whole graph is run again on real tensors
and the caller is told why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.fx as fx
import torch.nn as nn

from ..errors import ShapeError, first_line, user_frame, user_frame_in_stack
from ..rules.registry import target_name
from ..quick_shapes import quick_call, quick_output
from ..tensors import META, leaves, meta_weights, to_meta


class _NodeFailure(Exception):
    def __init__(self, node: fx.Node, exc: BaseException):
        super().__init__(node.name)
        self.node = node
        self.exc = exc


# ``opaque(node, args, kwargs)`` may produce a node's output itself (a call the cost pass will record anyway,
# recorded once here), or return None to let the shape pass run it.
Opaque = Callable[[fx.Node, tuple, dict], Any]


def run_graph(gm: fx.GraphModule, args: tuple, opaque: Opaque | None = None) -> None:
    """Run ``gm`` on ``args`` node by node and store each output in ``node.meta["val"]`` (which also serves as the
    environment: a node's inputs are read from their own ``meta["val"]``). fx's Interpreter does the same with
    per-node bookkeeping (a progress bar, a current-node context, a debug log) that costs more than a meta kernel
    or a shortcut output; the semantics are its own, except where noted."""
    inputs = iter(args)
    modules = dict(gm.named_modules())
    for n in gm.graph.nodes:
        try:
            n.meta["val"] = _run_node(gm, n, modules, inputs, opaque)
        except Exception as exc:  # noqa: BLE001 - attribute any failure to the node that raised it
            raise _NodeFailure(n, exc).with_traceback(exc.__traceback__) from exc


def _val(a: fx.Node) -> Any:
    return a.meta["val"]


def _run_node(gm: fx.GraphModule, n: fx.Node, modules: dict[str, nn.Module], inputs: Iterator[Any],
              opaque: Opaque | None) -> Any:
    args, kwargs = fx.node.map_arg(n.args, _val), fx.node.map_arg(n.kwargs, _val)
    if opaque is not None and n.op == "call_function":
        out = opaque(n, args, kwargs)
        if out is not None:
            return out
    if n.op == "call_module":
        module = modules[n.target]
        out = quick_output(module, args, kwargs)
        return out if out is not None else module(*args, **kwargs)
    if n.op == "call_function":
        out = quick_call(n.target, args, kwargs)
        return out if out is not None else n.target(*args, **kwargs)
    if n.op == "call_method":
        out = quick_call(getattr(torch.Tensor, n.target, None), args, kwargs)
        return out if out is not None else getattr(args[0], n.target)(*args[1:], **kwargs)
    if n.op == "get_attr":
        return _fetch(gm, n.target)
    if n.op == "placeholder":
        # A catch-all (*args, **kwargs) gets one value, its tuple or dict, like any other placeholder: fx's
        # Interpreter would swallow every remaining value into a list, starving the placeholders after it.
        value = next(inputs, _NONE)
        if value is not _NONE:
            return value
        if n.args:  # the forward's default
            return n.args[0]
        raise RuntimeError(f"expected a value for the model's input {n.target!r}, but none was passed in")
    return args[0]  # output


_NONE = object()


def _fetch(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for i, part in enumerate(target.split(".")):
        if not hasattr(obj, part):
            raise RuntimeError(f"node referenced nonexistent target {'.'.join(target.split('.')[:i + 1])}")
        obj = getattr(obj, part)
    return obj


def materialize_lazy(model: nn.Module, args: tuple, kwargs: dict) -> str | None:
    """Run one real forward when the model has uninitialised lazy parameters (nn.LazyLinear...), as a user
    would before inspecting it: their shapes are only known after it. Returns a note, or None."""
    lazy = [name for name, p in model.named_parameters() if isinstance(p, nn.parameter.UninitializedParameter)]
    if not lazy:
        return None
    if any(t.device == META for t in leaves((args, kwargs)) if isinstance(t, torch.Tensor)):
        raise ShapeError(
            f"lazy parameters ({', '.join(lazy[:3])}...) are not initialised and the example is on the meta "
            "device. What to do: run the model once on a real input, or pass a real example."
        )
    with torch.no_grad():
        model(*args, **kwargs)
    return f"initialised {len(lazy)} lazy parameter(s) with one forward pass on the example"


@dataclass
class ShapeResult:
    mode: str  # "meta" or "real"
    note: str = ""  # why real execution was needed


def propagate_shapes(gm: fx.GraphModule, args: tuple, allow_real: bool = True,
                     opaque: Opaque | None = None) -> ShapeResult:
    """Fill ``node.meta["val"]`` for every node of ``gm``; see the module docstring for the strategy. ``opaque``
    is offered every call_function node of the meta run (not of a real rerun)."""
    try:
        with torch.no_grad(), meta_weights(gm):
            run_graph(gm, to_meta(args), opaque)
        return ShapeResult("meta")
    except _NodeFailure as meta_err:
        meta_reason = _node_message(meta_err)
        if not allow_real or not _has_real_data(gm, args):
            raise _shape_advice(meta_err, meta_reason) from meta_err.exc
    try:
        with torch.no_grad():
            run_graph(gm, args)
    except _NodeFailure as real_err:
        raise _shape_advice(real_err, _node_message(real_err)) from real_err.exc
    return ShapeResult("real", f"meta tensors failed at {meta_reason}; shapes came from a real run on the example")


def _has_real_data(gm: fx.GraphModule, args: tuple) -> bool:
    tensors = [t for t in leaves(args) if isinstance(t, torch.Tensor)]
    weights = list(gm.parameters()) + list(gm.buffers())
    return all(t.device != META for t in tensors + weights)


def _describe_val(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"{tuple(v.shape)}:{str(v.dtype).replace('torch.', '')}"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_describe_val(x) for x in v) + ")"
    return type(v).__name__ if not isinstance(v, (int, float, bool, str, type(None))) else repr(v)


def _node_message(err: _NodeFailure) -> str:
    n = err.node
    ins = [_describe_val(a.meta.get("val")) for a in n.all_input_nodes if "val" in a.meta]
    where = user_frame(err.exc.__traceback__) or user_frame_in_stack(n.meta.get("stack_trace"))
    at = f" ({where})" if where else ""
    stack = n.meta.get("nn_module_stack")
    path = list(stack.values())[-1][0] if stack else ""
    mod = f" in module {path!r}" if path else ""
    return f"node {n.name!r} [{n.op} {target_name(n.target)}]{mod} with inputs {', '.join(ins) or 'none'}: {first_line(err.exc)}{at}"


def _shape_advice(err: _NodeFailure, message: str) -> ShapeError:
    """The error for a node that rejected its inputs. When the failure happened inside torch (a leaf module's
    forward), the user's line is the call site, which only a trace that records stack traces knows: the error
    says it is not ``located`` so that the caller can retrace (recording them always would double tracing time)."""
    located = user_frame(err.exc.__traceback__) is not None or err.node.meta.get("stack_trace") is not None
    return ShapeError(
        f"the example input does not fit the model: {message}.\n"
        "What to do: check the example's shape, dtype and batch dimension against what the model's forward expects.",
        node=err.node.name, located=located,
    )


def locate(err: ShapeError, stack_trace: str | None) -> ShapeError:
    """``err`` with the user's source line from its node's recorded ``stack_trace`` (``err`` as it is without one)."""
    where = user_frame_in_stack(stack_trace)
    if where is None:
        return err
    head, _, advice = str(err).partition(".\nWhat to do:")
    return ShapeError(f"{head} ({where}).\nWhat to do:{advice}", node=err.node)
