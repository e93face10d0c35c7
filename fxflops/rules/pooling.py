"""Pooling: max/avg/LP pooling 1d/2d/3d and their adaptive forms."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, elementwise, free, rule
from ._util import first_tensor, prod


def _kernel(k, dims: int) -> int:
    return prod(k) if isinstance(k, (tuple, list)) else int(k) ** dims


def _window(call: Call, dims: int) -> int:
    if call.module is not None:
        return _kernel(call.module.kernel_size, dims)
    return _kernel(call.arg(1, "kernel_size"), dims)


def _out(call: Call) -> torch.Tensor:
    return first_tensor(call.out)  # max pooling may return (values, indices)


def _max_pool(dims: int):
    def max_pool(call: Call) -> Cost:
        return elementwise(_out(call).numel() * (_window(call, dims) - 1))

    max_pool.__doc__ = f"(∏kernel − 1) comparisons per output element ({dims}d; padding positions included)."
    return max_pool


def _avg_pool(dims: int):
    def avg_pool(call: Call) -> Cost:
        return elementwise(_out(call).numel() * _window(call, dims))

    avg_pool.__doc__ = f"∏kernel FLOPs per output element (∏kernel − 1 adds and one divide; {dims}d)."
    return avg_pool


def _lp_pool(dims: int):
    def lp_pool(call: Call) -> Cost:
        return elementwise(_out(call).numel() * (2 * _window(call, dims) + 1))

    lp_pool.__doc__ = f"2·∏kernel + 1 FLOPs per output element (power and add per window element, one root; {dims}d)."
    return lp_pool


def adaptive_window_sum(in_size: int, out_size: int) -> int:
    """Σ over output positions of the adaptive window length along one dim (windows may overlap)."""
    total = 0
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)  # ceil
        total += end - start
    return total


def _adaptive_windows(x: torch.Tensor, out: torch.Tensor, dims: int) -> int:
    """Σ over all output elements of the window size: channels × ∏_d Σ window lengths along d."""
    lead = prod(x.shape[:-dims])
    return lead * prod(adaptive_window_sum(int(i), int(o)) for i, o in zip(x.shape[-dims:], out.shape[-dims:]))


def _adaptive_avg(dims: int):
    def adaptive_avg_pool(call: Call) -> Cost:
        x, out = call.args[0], _out(call)
        return elementwise(_adaptive_windows(x, out, dims))

    adaptive_avg_pool.__doc__ = (f"Σ over output elements of its window size (the adds plus one divide per output; "
                                 f"windows from floor(i·I/O) to ceil((i+1)·I/O) along each of {dims} dims).")
    return adaptive_avg_pool


def _adaptive_max(dims: int):
    def adaptive_max_pool(call: Call) -> Cost:
        x, out = call.args[0], _out(call)
        return elementwise(_adaptive_windows(x, out, dims) - out.numel())

    adaptive_max_pool.__doc__ = f"Σ over output elements of (window size − 1) comparisons ({dims}d adaptive windows)."
    return adaptive_max_pool


def _aliases(*names: str) -> list:
    """The functional entry points under every namespace torch exposes them in (F, torch, torch._C._nn)."""
    out = []
    for name in names:
        for ns in (F, torch, torch._C._nn):
            fn = getattr(ns, name, None)
            if fn is not None and fn not in out:
                out.append(fn)
    return out


for _d in (1, 2, 3):
    rule(getattr(nn, f"MaxPool{_d}d"), *_aliases(f"max_pool{_d}d", f"max_pool{_d}d_with_indices"),
         op=f"max_pool{_d}d", family="pooling")(_max_pool(_d))
    rule(getattr(nn, f"AvgPool{_d}d"), *_aliases(f"avg_pool{_d}d"), op=f"avg_pool{_d}d", family="pooling")(_avg_pool(_d))
    rule(getattr(nn, f"AdaptiveAvgPool{_d}d"), *_aliases(f"adaptive_avg_pool{_d}d"),
         op=f"adaptive_avg_pool{_d}d", family="pooling")(_adaptive_avg(_d))
    rule(getattr(nn, f"AdaptiveMaxPool{_d}d"), *_aliases(f"adaptive_max_pool{_d}d", f"adaptive_max_pool{_d}d_with_indices"),
         op=f"adaptive_max_pool{_d}d", family="pooling")(_adaptive_max(_d))
    if hasattr(nn, f"LPPool{_d}d"):
        rule(getattr(nn, f"LPPool{_d}d"), *_aliases(f"lp_pool{_d}d"), op=f"lp_pool{_d}d", family="pooling")(_lp_pool(_d))


def _fractional_max(dims: int):
    def fractional_max_pool(call: Call) -> Cost:
        kernel = call.module.kernel_size if call.module is not None else call.arg(1, "kernel_size")
        return elementwise(_out(call).numel() * (_kernel(kernel, dims) - 1))

    fractional_max_pool.__doc__ = (f"(∏kernel − 1) comparisons per output element ({dims}d; the pseudo-random window "
                                   "offsets are drawn once per plane and cost no arithmetic on the data).")
    return fractional_max_pool


for _d in (2, 3):
    rule(*_aliases(f"fractional_max_pool{_d}d", f"fractional_max_pool{_d}d_with_indices"),
         op=f"fractional_max_pool{_d}d", family="pooling")(_fractional_max(_d))

free(*_aliases("max_unpool1d", "max_unpool2d", "max_unpool3d"), op="max_unpool", family="pooling",
     reason="scatters each value to the position its index names, zeros elsewhere: no arithmetic")
