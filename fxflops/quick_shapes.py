"""Outputs made by rule on meta tensors, without running the meta kernel, where the kernel is slow and the
output's shape and dtype follow from the inputs: a shape-preserving or plain contraction module, scaled-dot-product
attention, linear and matmul, broadcasting arithmetic. Many meta kernels are Python decompositions: on an
80-layer Llama the attention's alone take a third of the meta run. Each shortcut makes exactly what the kernel
would (shape, dtype, contiguous layout) and only for inputs the kernel accepts; anything else returns None and
the kernel runs (and raises where the inputs do not fit).
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .tensors import META, empty_like_meta

# Leaf modules whose output has exactly the shape and dtype of their first input. On meta tensors their
# forward is skipped: meta BatchNorm alone, which runs through Python decompositions, costs more than
# tracing the whole of ResNet-50.
SHAPE_PRESERVING: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.Dropout, nn.Dropout1d,
    nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU,
    nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.ELU, nn.Hardtanh, nn.Softplus,
)


def quick_output(module: nn.Module, args: tuple, kwargs: dict) -> Any:
    """The output of a one-tensor call of ``module`` on meta, made without running it when its shape follows
    from the module's configuration (a shape-preserving layer, a plain Linear/ConvNd), or of an
    ``nn.MultiheadAttention`` asked for no weights; else None."""
    if type(module) is nn.MultiheadAttention:
        return _attention_output(module, args, kwargs)
    if len(args) != 1 or kwargs or not isinstance(args[0], torch.Tensor) or args[0].device != META:
        return None
    if isinstance(module, SHAPE_PRESERVING) and _fits(module, args[0]):
        return args[0] if _returns_input(module) else empty_like_meta(args[0])
    shape = _contraction_shape(module, args[0]) or _pool_shape(module, args[0])
    return torch.empty(shape, dtype=args[0].dtype, device=META) if shape is not None else None


def _pool_shape(module: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    """An adaptive average pool's output: its ``output_size`` (None keeps the input's size) over the last dims."""
    dims = {nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3}.get(type(module))
    if dims is None or x.dim() not in (dims + 1, dims + 2) or not x.is_floating_point() or 0 in x.shape[-dims - 1:]:
        return None
    size = module.output_size
    size = (size,) * dims if isinstance(size, int) else tuple(size)
    if not x.is_contiguous() or any(s is not None and s <= 0 for s in size):
        return None
    return (*x.shape[:-dims], *(s if s is not None else d for s, d in zip(size, x.shape[-dims:])))


_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def _returns_input(module: nn.Module) -> bool:
    """The forward hands back its input tensor itself, as the real one does: identity, dropout in eval mode, an
    in-place activation. Later passes read that identity (no new storage, no copy)."""
    return (isinstance(module, nn.Identity) or (isinstance(module, _DROPOUTS) and not module.training)
            or getattr(module, "inplace", False) is True)


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


def _attention_output(module: nn.MultiheadAttention, args: tuple, kwargs: dict) -> tuple | None:
    """``(output, None)`` of ``mha(q, k, v, need_weights=False)`` on batched meta inputs without masks: the meta
    forward runs a dozen Python decompositions (a third of ViT-B/16's shape pass). The output is what the forward
    returns, a view of its out-projection: (L, N, E), transposed to (N, L, E) where ``batch_first``."""
    names = ("query", "key", "value")
    q, k, v = (args[i] if i < len(args) else kwargs.get(n) for i, n in enumerate(names))
    extra = set(kwargs) - set(names) - {"need_weights", "attn_mask", "key_padding_mask", "is_causal"}
    if (extra or len(args) > 3 or kwargs.get("need_weights", True) or kwargs.get("attn_mask") is not None
            or kwargs.get("key_padding_mask") is not None or kwargs.get("is_causal", False)):
        return None
    weight = module.in_proj_weight if module.in_proj_weight is not None else module.q_proj_weight
    if not all(type(t) in _PLAIN and t.device == META and t.dim() == 3 and t.dtype == weight.dtype for t in (q, k, v)):
        return None
    batch = 0 if module.batch_first else 1
    if (q.shape[-1] != module.embed_dim or k.shape[-1] != module.kdim or v.shape[-1] != module.vdim
            or k.shape[:-1] != v.shape[:-1] or not q.shape[batch] == k.shape[batch]):
        return None
    n, length = q.shape[batch], q.shape[1 - batch]
    out = torch.empty(length * n, module.embed_dim, dtype=q.dtype, device=META).view(length, n, module.embed_dim)
    return (out.transpose(0, 1) if module.batch_first else out), None


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



# ---- functions and methods ------------------------------------------------------------------------------------

_NUMBER = (int, float, bool)
_PLAIN = (torch.Tensor, nn.Parameter)  # a tensor subclass may override what the op does


def quick_call(func: Any, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The output of ``func(*args, **kwargs)`` when every tensor argument is a plain meta tensor and ``func`` has
    a shortcut below; else None."""
    try:
        rule = _CALLS.get(func)
    except TypeError:  # an unhashable target
        return None
    if rule is None:
        return None
    tensors = [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)]
    if not tensors or any(type(t) not in _PLAIN or t.device != META for t in tensors):
        return None
    return rule(args, kwargs)


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast of ``shapes`` (None where two sizes clash, which the kernel reports)."""
    out = [1] * max(map(len, shapes))
    for shape in shapes:
        for i, d in enumerate(shape, len(out) - len(shape)):
            if d != 1:
                if out[i] not in (1, d):
                    return None
                out[i] = d
    return tuple(out)


def _binary(args: tuple, kwargs: dict, subtract: bool = False) -> torch.Tensor | None:
    """``a + b``, ``a * b``, ``a - b`` (no ``alpha``, no ``out``): the broadcast shape at the promoted dtype.
    Contiguous inputs only, since then the kernel's output is contiguous too."""
    if len(args) != 2 or kwargs:
        return None
    a, b = args
    if not all(isinstance(v, torch.Tensor) and v.is_contiguous() or type(v) in _NUMBER for v in (a, b)):
        return None
    shape = broadcast(*(tuple(v.shape) for v in (a, b) if isinstance(v, torch.Tensor)))
    dtype = torch.result_type(a, b)
    if shape is None or subtract and dtype == torch.bool:
        return None
    return torch.empty(shape, dtype=dtype, device=META)


_SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


def _attention(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``scaled_dot_product_attention(q, k, v)``: ``(*q.shape[:-1], v.shape[-1])`` at q's dtype. The batch and
    head dimensions must match (a grouped-query call: query heads a multiple of the key's), as must the dtypes."""
    if len(args) > len(_SDPA_ARGS) or set(kwargs) - set(_SDPA_ARGS):
        return None
    given = {**dict(zip(_SDPA_ARGS, args)), **kwargs}
    q, k, v, mask = (given.get(n) for n in ("query", "key", "value", "attn_mask"))
    if not all(isinstance(t, torch.Tensor) for t in (q, k, v)) or not q.dim() == k.dim() == v.dim() >= 2:
        return None
    if not q.dtype == k.dtype == v.dtype or not q.is_floating_point():
        return None
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2] or k.shape[:-1] != v.shape[:-1]:
        return None
    if q.shape[:-3] != k.shape[:-3] or not _heads_fit(q, k, bool(given.get("enable_gqa"))):
        return None
    scores = (*q.shape[:-1], k.shape[-2])
    if mask is not None and given.get("is_causal"):
        return None
    if mask is not None and (mask.dtype not in (torch.bool, q.dtype) or broadcast(tuple(mask.shape), scores) != scores):
        return None
    return torch.empty((*q.shape[:-1], v.shape[-1]), dtype=q.dtype, device=META)


def _heads_fit(q: torch.Tensor, k: torch.Tensor, gqa: bool) -> bool:
    if q.dim() < 3 or q.shape[-3] == k.shape[-3]:
        return True
    return gqa and k.shape[-3] > 0 and q.shape[-3] % k.shape[-3] == 0


def _linear(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``F.linear(x, w, b)``: ``(*x.shape[:-1], w.shape[0])`` where ``x.shape[-1] == w.shape[1]``, one dtype, the
    bias (if any) of ``w.shape[0]``."""
    given = {**dict(zip(("input", "weight", "bias"), args)), **kwargs}
    if len(args) > 3 or set(kwargs) - {"input", "weight", "bias"}:
        return None
    x, w, b = given.get("input"), given.get("weight"), given.get("bias")
    if not isinstance(x, torch.Tensor) or not isinstance(w, torch.Tensor) or x.dim() < 1 or w.dim() != 2:
        return None
    if x.shape[-1] != w.shape[1] or x.dtype != w.dtype or not x.is_floating_point():
        return None
    if b is not None and (not isinstance(b, torch.Tensor) or b.shape != (w.shape[0],) or b.dtype != w.dtype):
        return None
    return torch.empty((*x.shape[:-1], w.shape[0]), dtype=x.dtype, device=META)


def _matmul(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``a @ b`` for operands of 2 or more dimensions: the broadcast of their batch dimensions, then
    ``(a.shape[-2], b.shape[-1])`` where ``a.shape[-1] == b.shape[-2]``, one floating dtype."""
    if len(args) != 2 or kwargs:
        return None
    a, b = args
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.dim() < 2 or b.dim() < 2:
        return None
    if a.shape[-1] != b.shape[-2] or a.dtype != b.dtype or not a.is_floating_point():
        return None
    batch = broadcast(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    if batch is None:
        return None
    return torch.empty((*batch, a.shape[-2], b.shape[-1]), dtype=a.dtype, device=META)


def _subtract(args: tuple, kwargs: dict) -> torch.Tensor | None:
    return _binary(args, kwargs, subtract=True)


_CALLS: dict[Any, Callable[[tuple, dict], torch.Tensor | None]] = {
    F.scaled_dot_product_attention: _attention,
    F.linear: _linear,
    **dict.fromkeys((torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, operator.matmul), _matmul),
    **dict.fromkeys((torch.add, torch.mul, torch.Tensor.add, torch.Tensor.mul, torch.Tensor.__add__,
                     torch.Tensor.__mul__, torch.Tensor.__radd__, torch.Tensor.__rmul__, operator.add,
                     operator.mul), _binary),
    **dict.fromkeys((torch.sub, torch.Tensor.sub, torch.Tensor.__sub__, torch.Tensor.__rsub__, operator.sub), _subtract),
}
