"""Reductions and softmax: sum, mean, amax, max, var, std, norm, logsumexp, cumsum, softmax, log_softmax."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import Call, Cost, elementwise, rule
from ._util import is_float

# max (stability shift), subtract, exp, sum, divide: one FLOP each per element.
SOFTMAX_PER_ELEMENT = 5


def _input(call: Call) -> torch.Tensor:
    return call.arg(0, "input") if call.module is None else call.args[0]


@rule(torch.sum, torch.amax, torch.amin, torch.max, torch.min, torch.prod, torch.argmax, torch.argmin,
      torch.any, torch.all, torch.nansum,
      "sum", "amax", "amin", "max", "min", "prod", "argmax", "argmin", "any", "all", "nansum",
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


@rule(torch.cumsum, torch.cumprod, "cumsum", "cumprod", "cumsum_", op="cumsum", family="reduction")
def cumsum(call: Call) -> Cost:
    """One FLOP per element."""
    return elementwise(call.out_numel)


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
