"""Byte formulas: the memory traffic of an op when it runs as one unfused kernel, as an eager run does.

Most ops follow :func:`default_bytes` (inputs read + outputs written + a leaf module's weights read). The ops below
have their own formula, registered with :func:`byte_rule` onto the rule that prices their forward (``Rule.bytes``):
aliasing ops move nothing, and lookups read only what they pick. The docstrings are published in
``docs/conventions.md`` (``python -m tools.docgen``); the pass that applies them is :mod:`fxflops.passes.bytes`.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..tensors import tensors_in
from .registry import OpFormula, byte_rule, module_weights
from .shape_ops import METADATA_READS

__all__ = ["ByteCall", "ByteRule", "byte_rule", "nbytes", "default_bytes"]


def nbytes(value: Any) -> int:
    """Bytes of every distinct tensor in ``value`` (a tensor, or a tuple/list/dict of them)."""
    seen: set[int] = set()
    total = 0
    for t in tensors_in(value):
        if id(t) not in seen:
            seen.add(id(t))
            total += int(t.numel()) * t.element_size()
    return total


@dataclass
class ByteCall:
    """One op node as a byte rule sees it: its input values, its output value and, for a leaf module, the module."""

    inputs: list[Any]  # the value of each distinct input node
    out: Any
    module: nn.Module | None = None

    @property
    def read(self) -> int:
        return nbytes(self.inputs)

    @property
    def written(self) -> int:
        return nbytes(self.out)

    @property
    def weights(self) -> int:
        """A leaf module's parameters and floating-point buffers (running statistics), read once per call; integer
        buffers are counters (BatchNorm's ``num_batches_tracked``) that an eval-mode kernel does not read."""
        if self.module is None:
            return 0
        weights = [w for m in self.module.modules() for w in module_weights(m)]
        return nbytes([*weights, *(b for b in self.module.buffers() if b.is_floating_point())])

    def aliases(self) -> bool:
        """Every output tensor is one of the inputs or a view of one: no element was copied."""
        ins = tensors_in(self.inputs)
        outs = tensors_in(self.out)
        if not outs:
            return True
        ids = {id(t) for t in ins}
        return all(id(t) in ids or t._is_view() for t in outs)


ByteRule = OpFormula  # fn(call: ByteCall) -> int


def default_bytes(call: ByteCall) -> int:
    """bytes = inputs read + outputs written + a leaf module's parameters and floating-point buffers read; each
    tensor once, at the element size of its dtype."""
    return call.read + call.written + call.weights


def _both(*names: str) -> list:
    """torch.<name> where it exists, and the Tensor method name."""
    return [getattr(torch, n) for n in names if hasattr(torch, n)] + list(names)


_CASTS = ("to", "type", "type_as", "float", "double", "half", "bfloat16", "int", "long", "bool", "cpu", "cuda")


@byte_rule(*_both("view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose", "t",
                  "squeeze", "unsqueeze", "expand", "expand_as", "movedim", "moveaxis", "swapaxes", "swapdims",
                  "unbind", "chunk", "split", "tensor_split", "narrow", "select", "unfold", "as_strided",
                  "contiguous", "detach", "split_with_sizes", "ravel", "broadcast_to", "diagonal", "real", "imag",
                  "view_as_real", "view_as_complex", "alias", "mT", "adjoint", "squeeze_", "unsqueeze_",
                  "transpose_", "t_", "detach_"),
           *_CASTS, nn.Flatten, nn.Unflatten, name="view or copy")
def alias_or_copy(call: ByteCall) -> int:
    """0 when the output is the input or a view of it (``view``, ``permute``, ``x.to(x.dtype)``);
    otherwise the op copied (``reshape``/``contiguous`` of a permuted tensor, a dtype cast): output bytes read at
    the input's element size + output bytes written."""
    if call.aliases():
        return 0
    ins = tensors_in(call.inputs)
    out = tensors_in(call.out)
    size = ins[0].element_size() if ins else 0
    return sum(int(t.numel()) * size for t in out) + call.written


@byte_rule(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, name="identity")
def identity(call: ByteCall) -> int:
    """0 for ``nn.Identity`` and for dropout in eval mode, which return their input; a training-mode dropout reads
    its input and writes its output (the default)."""
    if call.module is not None and call.module.training and not isinstance(call.module, nn.Identity):
        return default_bytes(call)
    return 0


@byte_rule(*METADATA_READS, name="metadata")
def metadata(call: ByteCall) -> int:
    """0: a read of what a tensor is (``x.shape``, ``x.size(0)``, ``x.dtype``, ``x.numel()``), not of its elements;
    the shape, dtype and strides live on the host."""
    return 0


@byte_rule(F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout, torch.dropout,
           torch.alpha_dropout, torch.feature_dropout, name="dropout")
def dropout_function(call: ByteCall) -> int:
    """0 when the output is the input (``F.dropout(x, p, training=False)``, as Hugging Face attention calls it in
    eval mode, or ``p=0``); otherwise the default: the input read, the output written."""
    return 0 if call.aliases() else default_bytes(call)


@byte_rule(operator.getitem, "__getitem__", name="getitem")
def getitem(call: ByteCall) -> int:
    """0 for picking from a tuple/list (the output of ``split``, ``max``...) or basic indexing (a view); advanced
    indexing gathers: index tensors read + output bytes read + output bytes written."""
    src = call.inputs[0] if call.inputs else None
    if not isinstance(src, torch.Tensor) or call.aliases():
        return 0
    return nbytes(call.inputs[1:]) + 2 * call.written


@byte_rule(nn.Embedding, F.embedding, torch.embedding, name="embedding")
def embedding(call: ByteCall) -> int:
    """indices read + the rows looked up read (= output bytes) + output written; the rest of the table is not
    touched."""
    idx = [v for v in call.inputs if isinstance(v, torch.Tensor) and not v.is_floating_point()]
    return nbytes(idx) + 2 * call.written


@byte_rule(*_both("index_select", "gather", "take", "take_along_dim"), name="gather")
def gather(call: ByteCall) -> int:
    """indices read + output bytes read (only the picked elements) + output written."""
    idx = [v for v in call.inputs if isinstance(v, torch.Tensor) and not v.is_floating_point()]
    return nbytes(idx) + 2 * call.written


@byte_rule(*(getattr(torch, n) for n in ("zeros", "ones", "full", "empty", "arange", "linspace", "eye", "rand", "randn",
                                         "zeros_like", "ones_like", "full_like", "empty_like", "rand_like",
                                         "randn_like", "tensor", "scalar_tensor")),
           "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor", name="create")
def create(call: ByteCall) -> int:
    """output bytes written; the inputs (``x`` of ``zeros_like(x)``) give only a shape, they are not read."""
    return call.written
