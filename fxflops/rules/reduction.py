"""Reductions and softmax: sum, mean, amax, max, var, std, norm, logsumexp, cumsum, softmax, log_softmax."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, elementwise, rule
from ._util import is_float

# max (stability shift), subtract, exp, sum, divide: one FLOP each per element.
SOFTMAX_PER_ELEMENT = 5


def _input(call: Call) -> torch.Tensor:
    return call.arg(0, "input") if call.module is None else call.args[0]


@rule(torch.sum, torch.amax, torch.amin, torch.max, torch.min, torch.prod, torch.argmax, torch.argmin,
      torch.any, torch.all, torch.nansum,
      "sum", "amax", "amin", "max", "min", "prod", "argmax", "argmin", "any", "all", "nansum", "sum_to_size",
      op="reduce", family="reduction")
def reduce(call: Call) -> Cost:
    """One FLOP per input element (an add, multiply or compare each); 0 on integer/bool tensors.
    Binary torch.max(a, b)/torch.min(a, b) are elementwise: one FLOP per output element."""
    x = call.arg(0, "input")
    if isinstance(call.arg(1, "other", None), torch.Tensor):  # elementwise max/min of two tensors
        return elementwise(call.out_numel if is_float(x) else 0)
    return elementwise(x.numel() if is_float(x) else 0)


@rule(torch.mean, torch.nanmean, "mean", "nanmean", op="mean", family="reduction")
def mean(call: Call) -> Cost:
    """(input elements) adds + (output elements) divisions."""
    x = call.arg(0, "input")
    return elementwise(x.numel() + call.out_numel)


@rule(torch.var, torch.std, torch.var_mean, torch.std_mean, "var", "std", op="var", family="reduction")
def var(call: Call) -> Cost:
    """4 FLOPs per input element (mean, subtract, square, sum) + 1 per output element (the division; std's square root
    and var_mean's extra output are included in that)."""
    x = call.arg(0, "input")
    return elementwise(4 * x.numel() + call.out_numel)


@rule(torch.norm, torch.linalg.vector_norm, torch.linalg.norm, "norm", op="norm", family="reduction")
def norm(call: Call) -> Cost:
    """2 FLOPs per input element (power/abs and add) + 1 per output element (the root)."""
    x = call.arg(0, "input" if call.target is not torch.linalg.vector_norm else "x")
    return elementwise(2 * x.numel() + call.out_numel)


@rule(torch.logsumexp, "logsumexp", op="logsumexp", family="reduction")
def logsumexp(call: Call) -> Cost:
    """4 FLOPs per input element (max, subtract, exp, sum) + 2 per output element (log, add the max back)."""
    return elementwise(4 * call.arg(0, "input").numel() + 2 * call.out_numel)


@rule(torch.cumsum, torch.cumprod, "cumsum", "cumprod", "cumsum_", "cumprod_", op="cumsum", family="reduction")
def cumsum(call: Call) -> Cost:
    """One FLOP (an add or multiply) per output element, in the output's dtype (``dtype=`` can make an integer scan
    a float one); 0 when the output is integer/bool."""
    return elementwise(call.out_numel if is_float(call.out) else 0)


@rule(torch.diff, "diff", op="diff", family="reduction")
def diff(call: Call) -> Cost:
    """n-th forward difference along dim (prepend/append concatenated first): one subtraction per element of each
    of the n successive differences, i.e. Σ_{k=1..n} (L − k)·(other elements), L the length along dim; 0 on
    integer/bool tensors."""
    x = call.arg(0, "input")
    if not is_float(x):
        return Cost()
    n = int(call.arg(1, "n", 1))
    dim = int(call.arg(2, "dim", -1))
    length = call.out.shape[dim] + n  # the length differenced, extra elements included
    rest = call.out.numel() // max(call.out.shape[dim], 1) if call.out.shape[dim] else 0
    return elementwise(sum(length - k for k in range(1, n + 1)) * rest)


@rule(nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d, F.softmax, F.log_softmax, F.softmin,
      torch.softmax, torch.log_softmax,
      "softmax", "log_softmax", op="softmax", family="reduction")
def softmax(call: Call) -> Cost:
    """5 FLOPs per element: max, subtract, exp, sum, divide (log_softmax: log of the sum and subtract instead of divide;
    softmin negates first, counted within the same 5)."""
    return elementwise(SOFTMAX_PER_ELEMENT * _input(call).numel())


# −log(−log(U)) from an exponential sample: log, negate; then (logits + g)/τ: add, divide.
GUMBEL_PER_ELEMENT = 4


@rule(F.gumbel_softmax, op="gumbel_softmax", family="reduction")
def gumbel_softmax(call: Call) -> Cost:
    """Per element: 4 FLOPs for the Gumbel noise and scaling (log, negate, add, divide by τ) + 5 for the softmax;
    hard=True adds 3 (the argmax compare, and y_hard − y_soft + y_soft for the straight-through estimator)."""
    hard = bool(call.arg(2, "hard", False))
    per = GUMBEL_PER_ELEMENT + SOFTMAX_PER_ELEMENT + (3 if hard else 0)
    return elementwise(per * call.arg(0, "logits").numel())


def _float_numel(x) -> int:
    return x.numel() if is_float(x) else 0


@rule(torch.aminmax, "aminmax", op="aminmax", family="reduction")
def aminmax(call: Call) -> Cost:
    """Two comparisons per input element (one for the min, one for the max); 0 on integer tensors."""
    return elementwise(2 * _float_numel(call.arg(0, "input")))


@rule(torch.count_nonzero, torch.cummax, torch.cummin, torch.median, torch.nanmedian, torch.mode,
      "count_nonzero", "cummax", "cummin", "median", "nanmedian", "mode", op="compare_reduce", family="reduction")
def compare_reduce(call: Call) -> Cost:
    """One comparison per input element (count_nonzero, the running cummax/cummin, the selection pass of
    median/nanmedian/mode); 0 on integer tensors."""
    return elementwise(_float_numel(call.arg(0, "input")))


@rule(torch.logcumsumexp, "logcumsumexp", op="logcumsumexp", family="reduction")
def logcumsumexp(call: Call) -> Cost:
    """A running log-add-exp: 5 FLOPs per element (subtract, exp, log1p, max, add)."""
    return elementwise(5 * call.out_numel)


# Interpolation between the two neighbouring order statistics: subtract, multiply, add.
_QUANTILE_LERP = {"linear": 3, "midpoint": 2, "lower": 0, "higher": 0, "nearest": 0}


@rule(torch.quantile, torch.nanquantile, "quantile", "nanquantile", op="quantile", family="reduction")
def quantile(call: Call) -> Cost:
    """The sort is free (as torch.sort); per output element 3 FLOPs for linear interpolation between the two order
    statistics, 2 for midpoint, 0 for lower/higher/nearest."""
    return elementwise(call.out_numel * _QUANTILE_LERP[call.kwargs.get("interpolation", "linear")])


@rule(torch.dist, "dist", op="dist", family="reduction")
def dist(call: Call) -> Cost:
    """‖a − b‖_p over the broadcast inputs: 3 FLOPs per element (subtract, |·|^p, sum) + 1 (the root)."""
    a, b = call.arg(0, "input"), call.arg(1, "other")
    return elementwise(3 * torch.broadcast_shapes(a.shape, b.shape).numel() + 1)


@rule(torch.trace, "trace", op="trace", family="reduction")
def trace(call: Call) -> Cost:
    """Sum of the diagonal of an (n, m) matrix: min(n, m) adds."""
    return elementwise(min(call.arg(0, "input").shape) if is_float(call.arg(0, "input")) else 0)


@rule(torch.renorm, "renorm", "renorm_", op="renorm", family="reduction")
def renorm(call: Call) -> Cost:
    """Each slice along dim is rescaled to norm ≤ maxnorm: 3 FLOPs per element (|·|^p and sum for the norm,
    the scale) + 2 per slice (root, compare-and-divide)."""
    x = call.arg(0, "input")
    dim = int(call.arg(2, "dim"))
    return elementwise(3 * x.numel() + 2 * x.shape[dim])


@rule(torch._weight_norm, op="weight_norm", family="reduction")
def weight_norm(call: Call) -> Cost:
    """w = g · v / ‖v‖, the norm over every dim of v but ``dim`` (nn.utils.weight_norm's reparametrisation): 2 FLOPs
    per element of v (square, add) and 1 per element of g (the root) for the norms, 1 per element of g for g / ‖v‖,
    1 per element of v for the scaling: 3·numel(v) + 2·numel(g)."""
    v, g = call.arg(0, "v"), call.arg(1, "g")
    return elementwise(3 * v.numel() + 2 * g.numel())


@rule(torch.frobenius_norm, op="norm", family="reduction")
def frobenius_norm(call: Call) -> Cost:
    """As norm: 2 FLOPs per input element (square, add) + 1 per output element (the root)."""
    return elementwise(2 * call.arg(0, "input").numel() + call.out_numel)


@rule(torch.histc, torch.histogram, "histc", "histogram", op="histogram", family="reduction")
def histogram(call: Call) -> Cost:
    """Binning each input element: subtract the lower edge, scale, floor, bounds check = 4 FLOPs (+1 with weights).
    Bin edges given as a tensor are searched (free, as torch.searchsorted)."""
    weight = call.kwargs.get("weight")
    return elementwise((4 + (1 if weight is not None else 0)) * call.arg(0, "input").numel())


@rule(torch.allclose, "allclose", op="allclose", family="reduction")
def allclose(call: Call) -> Cost:
    """|a − b| ≤ atol + rtol·|b| per broadcast element: subtract, two abs, multiply, add, compare = 6 FLOPs."""
    a, b = call.arg(0, "input"), call.arg(1, "other")
    return elementwise(6 * torch.broadcast_shapes(a.shape, b.shape).numel())


@rule(torch.scatter_add, torch.index_add, torch.scatter_reduce, torch.index_reduce,
      "scatter_add", "scatter_add_", "index_add", "index_add_", "scatter_reduce", "scatter_reduce_", "index_reduce",
      "index_reduce_", op="scatter_reduce", family="reduction")
def scatter_reduce(call: Call) -> Cost:
    """One FLOP (add, multiply or compare) per source element reduced into the output; index_add's alpha ≠ 1 adds a
    multiply per source element; reduce='mean' adds one division per output element."""
    src = call.arg(3, "src" if "scatter" in getattr(call.target, "__name__", str(call.target)) else "source")
    if not is_float(src):
        return Cost()
    alpha = call.kwargs.get("alpha", 1)
    mean = call.arg(4, "reduce", None) == "mean"
    return elementwise(src.numel() * (2 if alpha != 1 else 1) + (call.out_numel if mean else 0))


@rule(torch.trapezoid, torch.trapz, torch.cumulative_trapezoid, op="trapezoid", family="reduction")
def trapezoid(call: Call) -> Cost:
    """Trapezoidal rule along dim over n samples: per interval (y_i + y_{i+1})·Δx/2 = add, multiply, halve (3 FLOPs,
    +1 to difference sample points x when given), then the sum (trapezoid) or running sum (cumulative) of the
    intervals, 1 each."""
    y = call.arg(0, "y")
    x = call.arg(1, "x", None)
    dim = int(call.kwargs.get("dim", -1))
    intervals = y.numel() // max(y.shape[dim], 1) * max(y.shape[dim] - 1, 0)
    return elementwise(intervals * (4 + (1 if isinstance(x, torch.Tensor) else 0)))


@rule(torch.gradient, op="gradient", family="reduction")
def gradient(call: Call) -> Cost:
    """Central differences (one-sided at the edges) along each dim asked for: subtract and divide by the spacing,
    2 FLOPs per element per dim."""
    x = call.arg(0, "input")
    dims = call.kwargs.get("dim")
    n = x.dim() if dims is None else (1 if isinstance(dims, int) else len(dims))
    return elementwise(2 * x.numel() * n)
