"""``sweep``: :func:`fxflops.trace_flops` over a grid of sizes, each total fitted exactly (:class:`Sweep`)."""
from __future__ import annotations

from itertools import product
from typing import Any, Callable, Mapping, Sequence

import torch

from .api import TraceOptions, analyse
from .capture.example import Example
from .capture.fx_cache import FxCache
from .errors import FxFlopsError
from .report.sweep import Sweep


def sweep(build: Callable[..., tuple[torch.nn.Module, Example]], *, trace_options: Mapping[str, Any] | None = None,
          **values: Sequence[int]) -> Sweep:
    """Run :func:`trace_flops` at every point of the grid of ``values`` and fit each total exactly.

    ``build(**point)`` returns ``(model, example)`` for one point, e.g.
    ``sweep(lambda T: (model, {"input_ids": torch.zeros(1, T, dtype=torch.long)}), T=[128, 256, 512, 1024])``.
    Several symbols (``B=[1, 2, 4], T=[...]``) sweep every combination. ``trace_options`` are passed to
    :func:`trace_flops`. Returning the same model at every point lets the fx capture be traced once.
    """
    if not values:
        raise FxFlopsError("sweep needs the values to vary, e.g. sweep(build, T=[128, 256, 512, 1024])")
    symbols = tuple(values)
    axes = []
    for s, vs in values.items():
        try:
            axis = sorted({int(v) for v in vs})
        except (TypeError, ValueError):
            raise FxFlopsError(f"sweep values must be integers: {s}={vs!r}") from None
        if len(axis) < 2:
            raise FxFlopsError(f"{s} takes {len(axis)} value(s): a sweep needs at least 2 "
                               "(and degree + 2 for a formula of that degree to be checked)")
        axes.append(axis)
    options = TraceOptions.of(trace_options)
    cache = FxCache()
    points, reports = [], []
    for combo in product(*axes):
        point = dict(zip(symbols, combo))
        built = build(**point)
        if not (isinstance(built, tuple) and len(built) == 2 and isinstance(built[0], torch.nn.Module)):
            raise FxFlopsError(f"sweep's build({_fmt(point)}) must return (model, example), got {type(built).__name__}")
        reports.append(analyse(built[0], built[1], options, fx_cache=cache))
        points.append(point)
    return Sweep(symbols, points, reports, reused=cache.hits)


def _fmt(point: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())
