"""Ops that move, select, create or re-type data without floating-point arithmetic: they cost 0 by design."""
from __future__ import annotations

import builtins
import operator

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch._functorch import predispatch as _predispatch

from .registry import free

VIEW = "view or re-layout of the same elements: no arithmetic"
COPY = "copies, gathers or concatenates elements: memory traffic, no arithmetic"
SELECT = "selects between existing values by index or mask: no arithmetic"
CREATE = "creates a tensor from shapes or constants: no arithmetic on data"
META = "reads metadata (shape, dtype, device): no arithmetic"
CAST = "dtype/device conversion: no floating-point arithmetic"
LOGIC = "integer/bool logic: no floating-point arithmetic"


def _torch(*names: str) -> list:
    return [getattr(torch, n) for n in names if hasattr(torch, n)]


def _both(*names: str) -> list:
    """torch.<name> where it exists, and the Tensor method name."""
    return _torch(*names) + list(names)


def _aten(*names: str) -> list:
    """torch.ops.aten.<name> and its overloads: what dynamo records for some Tensor attributes and slicing."""
    out = []
    for n in names:
        packet = getattr(torch.ops.aten, n)
        out += [packet] + [getattr(packet, o) for o in packet.overloads()]
    return out


# Dynamo records the attribute views x.T, x.mT, x.mH, x.H as aten numpy_T/mT/mH/matrix_H, and slicing inside
# higher-order ops (associative_scan in HF Mamba's scan) as aten.slice; vmap moves its batch dimension in and
# out with _add_batch_dim/_remove_batch_dim. mH and H only set the conjugate bit.
free(*_both("view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose", "t",
            "squeeze", "unsqueeze", "expand", "expand_as", "movedim", "moveaxis", "swapaxes", "swapdims", "unbind",
            "chunk", "split", "tensor_split", "narrow", "select", "unfold", "as_strided", "contiguous", "adjoint",
            "mT", "detach", "view_as_real", "view_as_complex", "split_with_sizes", "hsplit", "vsplit", "dsplit",
            "ravel", "squeeze_", "unsqueeze_", "transpose_", "t_", "resolve_conj", "resolve_neg",
            "atleast_1d", "atleast_2d", "atleast_3d", "unsafe_chunk", "unsafe_split", "unsafe_split_with_sizes",
            "real", "imag", "conj", "alias", "swapaxes_", "swapdims_", "as_strided_", "detach_"),
     operator.getitem, "__getitem__", nn.Flatten, nn.Unflatten, nn.Identity,
     *_aten("numpy_T", "mT", "mH", "matrix_H", "slice"),
     torch._C._functorch._add_batch_dim, torch._C._functorch._remove_batch_dim,
     _predispatch._add_batch_dim, _predispatch._remove_batch_dim,
     op="view", family="shape", reason=VIEW)
free(*_both("cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "repeat", "repeat_interleave",
            "tile", "clone", "flip", "fliplr", "flipud", "roll", "rot90", "gather", "index_select", "take",
            "take_along_dim", "scatter", "index_copy", "index_put", "copy_", "pixel_shuffle", "pixel_unshuffle",
            "channel_shuffle", "native_channel_shuffle", "diagonal", "diag", "diag_embed", "tril", "triu",
            "broadcast_to", "broadcast_tensors", "meshgrid", "masked_scatter", "narrow_copy", "index_put_",
            "scatter_", "tril_", "triu_", "put_", "index_fill", "index_fill_", "sort", "topk", "kthvalue", "msort",
            "argsort", "unique", "nonzero", "masked_select", "searchsorted", "bucketize", "col2im",
            "alias_copy", "as_strided_copy", "detach_copy", "diagonal_copy", "expand_copy", "permute_copy",
            "select_copy", "slice_copy", "split_copy", "split_with_sizes_copy", "squeeze_copy", "t_copy",
            "transpose_copy", "unbind_copy", "unfold_copy", "unsqueeze_copy", "view_copy", "view_as_real_copy",
            "view_as_complex_copy", "as_strided_scatter", "diagonal_scatter", "select_scatter", "slice_scatter",
            "slice_inverse", "column_stack", "row_stack", "block_diag", "cartesian_prod", "combinations", "diagflat",
            "constant_pad_nd", "put", "complex", "index_copy_", "masked_scatter_",
            "argwhere", "nonzero_static", "unique_consecutive", "fill_diagonal_"),
     operator.setitem,
     F.pad, torch._C._nn.pad, F.pixel_shuffle, F.pixel_unshuffle, F.unfold, F.fold, F.one_hot,
     nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d,
     nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d, nn.ReplicationPad1d, nn.ReplicationPad2d,
     nn.ReplicationPad3d, nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d, nn.PixelShuffle, nn.PixelUnshuffle,
     nn.ChannelShuffle, nn.Fold, nn.Unfold,
     op="copy", family="shape", reason=COPY)
free("T", "mT", "H", "mH", "real", "imag", "data", op="view", family="shape", reason=VIEW)  # attribute views
free("__reversed__", op="copy", family="shape", reason=COPY)  # reversed(x) as the eager call records it
free("__setitem__", op="copy", family="shape", reason=COPY)  # x[idx] = v as the eager call records it
free(*_both("where", "masked_fill", "masked_fill_", "fill_", "zero_", "fill"),
     op="select", family="shape", reason=SELECT)
free(*_torch("zeros", "ones", "full", "empty", "arange", "linspace", "logspace", "eye", "rand", "randn", "randint",
             "randperm", "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like",
             "randint_like", "tensor", "as_tensor", "from_numpy", "scalar_tensor", "empty_strided", "tril_indices",
             "triu_indices", "normal", "bernoulli", "multinomial", "binomial", "poisson"),
     "cauchy_", "geometric_", "log_normal_", "multinomial",
     "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor", "normal_", "uniform_", "bernoulli_",
     "random_", "exponential_", "bernoulli",
     op="create", family="shape", reason=CREATE)
# Reads of what a tensor is, not of its elements: the shape, dtype, strides and device live on the host.
METADATA_READS = (
    builtins.getattr, builtins.len, "size", "dim", "numel", "ndimension", "nelement", "element_size", "stride",
    "storage_offset", "is_contiguous", "is_floating_point", "is_complex", "data_ptr", "get_device", "__len__",
    "__hash__", torch.numel, torch.is_tensor, torch.is_floating_point, torch.Size,
    # dynamo reads data-dependent sizes with these aten ops
    torch.ops.aten.sym_size.int, torch.ops.aten.sym_numel.default, torch.ops.aten.sym_stride.int,
    torch.ops.aten.sym_storage_offset.default,
)
free(*METADATA_READS, "tolist", "item", "__bool__", "__float__", "__int__", "__index__", "__complex__",
     "__contains__", "__iter__", "__array__", "__format__", "__reduce_ex__", "__deepcopy__", "__long__",
     "__nonzero__", torch._assert,
     op="metadata", family="shape", reason=META)
free("to", "type", "type_as", "float", "double", "half", "bfloat16", "int", "long", "bool", "short", "char",
     "byte", "chalf", "cpu", "cuda", "requires_grad_", "cfloat", "cdouble", "pin_memory", "share_memory_",
     op="cast", family="shape", reason=CAST)
free(operator.and_, operator.or_, operator.xor, operator.invert, operator.not_, operator.inv, operator.iand,
     operator.ior, operator.ixor, operator.lshift, operator.rshift, operator.ilshift, operator.irshift,
     operator.contains, operator.is_, operator.is_not,
     operator.truth,
     *_both("logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_not",
            "bitwise_xor", "__and__", "__or__", "__xor__", "__invert__", "__rand__", "__ror__", "__rxor__",
            "__lshift__", "__rshift__", "__rlshift__", "__rrshift__", "__iand__", "__ior__", "__ixor__", "__ilshift__",
            "__irshift__"),
     op="logic", family="shape", reason=LOGIC)

