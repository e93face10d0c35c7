"""Shape propagation: run the graph on meta tensors and store every node's output in ``node.meta["val"]``.

Meta tensors carry shape and dtype but no data, so nothing is computed and a model built on the
``meta`` device works. Parameters and buffers are swapped for meta copies for the duration of the
run (an fx Interpreter over meta tensors is several times faster than FakeTensorProp). Where a
meta kernel is missing or an op needs real values, the whole graph is run again on real tensors
and the caller is told why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from ..capture.patching import meta_weights
from ..errors import ShapeError, first_line, user_frame, user_frame_in_stack
from ..rules.registry import target_name
from ..tensors import META, leaves, to_meta


class _NodeFailure(Exception):
    def __init__(self, node: fx.Node, exc: BaseException):
        super().__init__(node.name)
        self.node = node
        self.exc = exc


# Leaf modules whose output has exactly the shape and dtype of their first input. On meta tensors their
# forward is skipped: meta BatchNorm alone, which runs through Python decompositions, costs more than
# tracing the whole of ResNet-50.
SHAPE_PRESERVING: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.Dropout, nn.Dropout1d,
    nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU,
    nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.ELU, nn.Hardtanh, nn.Softplus,
)


def quick_output(module: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The output of a one-tensor call of ``module`` on meta, made without running it when its shape follows
    from the module's configuration (a shape-preserving layer, a plain Linear/ConvNd); else None."""
    if len(args) != 1 or kwargs or not isinstance(args[0], torch.Tensor) or args[0].device != META:
        return None
    if isinstance(module, SHAPE_PRESERVING) and _fits(module, args[0]):
        return torch.empty_like(args[0])
    shape = _contraction_shape(module, args[0])
    return args[0].new_empty(shape) if shape is not None else None


class ShapeProp(fx.Interpreter):
    """Interpreter that records each node's output value (meta or real) in ``node.meta["val"]``."""

    def placeholder(self, target: Any, args: tuple, kwargs: dict) -> Any:
        # A catch-all (*args, **kwargs) gets one value, its tuple or dict, like any other placeholder:
        # fx's default would swallow every remaining value into a list, starving the placeholders after it.
        if isinstance(target, str) and target.startswith("*"):
            return next(self.args_iter)
        return super().placeholder(target, args, kwargs)

    def call_module(self, target: Any, args: tuple, kwargs: dict) -> Any:
        out = quick_output(self.fetch_attr(target), args, kwargs)
        return out if out is not None else super().call_module(target, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except _NodeFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - attribute any failure to the node that raised it
            raise _NodeFailure(n, exc).with_traceback(exc.__traceback__) from exc
        n.meta["val"] = result
        return result


def _fits(module: nn.Module, x: torch.Tensor) -> bool:
    """The checks the skipped forward would make; a misfit runs the real forward, which raises properly."""
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return x.dim() >= 2 and x.shape[1] == module.num_features or isinstance(module, nn.modules.instancenorm._InstanceNorm)
    if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
        ns = tuple(module.normalized_shape)
        return tuple(x.shape[-len(ns):]) == ns
    if isinstance(module, nn.GroupNorm):
        return x.dim() >= 2 and x.shape[1] == module.num_channels
    return True


_CONVS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}


def _contraction_shape(module: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    """Output shape of a plain nn.Linear/nn.ConvNd from its configuration, or None to run its forward.

    Meta convolutions go through Python wrappers and dominate shape propagation on CNNs. Only the exact
    classes qualify (a subclass may override forward), and only inputs the forward would accept."""
    if getattr(module, "weight", None) is None or x.dtype != module.weight.dtype:
        return None
    if type(module) is nn.Linear:
        return (*x.shape[:-1], module.out_features) if x.dim() >= 1 and x.shape[-1] == module.in_features else None
    dims = _CONVS.get(type(module))
    if dims is None or x.dim() != dims + 2 or x.shape[1] != module.in_channels:
        return None
    if module.padding == "same":
        return (x.shape[0], module.out_channels, *x.shape[2:])
    pad = (0,) * dims if module.padding == "valid" else module.padding
    out = [
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, p, d, k, s in zip(x.shape[2:], pad, module.dilation, module.kernel_size, module.stride)
    ]
    if min(out) <= 0:
        return None
    return (x.shape[0], module.out_channels, *out)


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


def propagate_shapes(gm: fx.GraphModule, args: tuple, allow_real: bool = True) -> ShapeResult:
    """Fill ``node.meta["val"]`` for every node of ``gm``; see the module docstring for the strategy."""
    try:
        with torch.no_grad(), meta_weights(gm):
            ShapeProp(gm).run(*to_meta(args))
        return ShapeResult("meta")
    except _NodeFailure as meta_err:
        meta_reason = _node_message(meta_err)
        if not allow_real or not _has_real_data(gm, args):
            raise _shape_advice(meta_err, meta_reason) from meta_err.exc
    try:
        with torch.no_grad():
            ShapeProp(gm).run(*args)
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
