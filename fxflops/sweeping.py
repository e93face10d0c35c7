"""``sweep``: :func:`fxflops.trace_flops` over a grid of sizes, each total fitted exactly (:class:`Sweep`)."""
from __future__ import annotations

from itertools import product
from typing import Any, Callable, Mapping, Sequence

import torch

from .api import TraceOptions, analyse
from .capture.example import Example
from .capture.fx_cache import FxCache
from .errors import FxFlopsError
from .report.report import Report
from .report.sweep import Sweep
from .pipeline.workers import each


def sweep(build: Callable[..., tuple[torch.nn.Module, Example]], *, trace_options: Mapping[str, Any] | None = None,
          workers: int = 1, progress: bool | None = None, **values: Sequence[int]) -> Sweep:
    """Run :func:`trace_flops` at every point of the grid of ``values`` and fit each total exactly.

    ``build(**point)`` returns ``(model, example)`` for one point, e.g.
    ``sweep(lambda T: (model, {"input_ids": torch.zeros(1, T, dtype=torch.long)}), T=[128, 256, 512, 1024])``.
    Several symbols (``B=[1, 2, 4], T=[...]``) sweep every combination. ``trace_options`` are passed to
    :func:`trace_flops`. Returning the same model at every point lets the fx capture be traced once (per worker).

    ``workers=N`` analyses N points at once in worker processes: the same reports, without their graphs and models
    (they stay in the workers), so every number, table and export works and drawing does not. ``progress``: a bar
    on stderr once the sweep has run a couple of seconds (None: on a terminal only; False: never).
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
    if workers != 1 and options.measure:
        raise FxFlopsError("measure=True times the nodes on this machine's cores: sweep it with workers=1, so that "
                           "the workers do not slow each other's timings")
    points = [dict(zip(symbols, combo)) for combo in product(*axes)]
    runs: list[tuple[Report, int]] = [None] * len(points)  # type: ignore[list-item]
    for i, run in each(_Point(build, options), points, workers=workers, progress=progress, desc="sweep"):
        runs[i] = run
    return Sweep(symbols, points, [r for r, _ in runs], reused=sum(hits for _, hits in runs))


class _Point:
    """One point's analysis: ``(report, fx captures reused)``. A class, not a closure, so that it pickles where
    workers cannot fork (then ``build`` must pickle too); each process keeps its own cache of fx captures."""

    def __init__(self, build: Callable[..., tuple[torch.nn.Module, Example]], options: TraceOptions) -> None:
        self.build, self.options, self.cache = build, options, FxCache()

    def __getstate__(self) -> dict[str, Any]:
        return {"build": self.build, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["build"], state["options"])

    def __call__(self, point: dict[str, int]) -> tuple[Report, int]:
        built = self.build(**point)
        if not (isinstance(built, tuple) and len(built) == 2 and isinstance(built[0], torch.nn.Module)):
            raise FxFlopsError(f"sweep's build({_fmt(point)}) must return (model, example), got {type(built).__name__}")
        before = self.cache.hits
        return analyse(built[0], built[1], self.options, fx_cache=self.cache), self.cache.hits - before


def _fmt(point: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())
