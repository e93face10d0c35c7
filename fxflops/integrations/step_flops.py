"""Exact FLOPs of a training step at any batch shape without tracing it again: the step's FLOPs as a polynomial in
the batch size ``B`` and the sequence length ``T`` (``fxflops.sweep``'s exact fit), fitted once per model and
example layout, checked at a shape the fit did not use, and cached weakly so that the model is not kept alive.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..api import trace_flops
from ..errors import FxFlopsError
from ..report.sweep import Formula, fit
from ..report.utilization import recompute_flops
from ..sweeping import sweep

__all__ = ["StepFlops", "StepCount", "step_flops", "batch_shape"]

B_VALUES = (1, 2, 3)  # linear in B is checked at the third
T_POINTS = 5  # up to cubic in T, checked at the fifth


@dataclass(frozen=True)
class StepCount:
    """One step's FLOPs: ``flops`` as the hardware runs them (``report.total_flops``), ``model_flops`` without the
    activation-checkpoint recompute; ``exact_by`` says how they were obtained (``"formula"`` or ``"trace"``)."""

    flops: int
    model_flops: int
    exact_by: str


def batch_shape(example: Any) -> tuple[int, int | None]:
    """(B, T) of an example: the first dimension of its tensors and the second of its 2-D integer tensors (token ids,
    masks, labels); T is None without such a tensor."""
    tensors = _tensors(example)
    if not tensors:
        raise FxFlopsError("the batch holds no tensor: pass the model's inputs (a tensor, a tuple or a dict of them)")
    b = tensors[0].shape[0] if tensors[0].dim() else 1
    ts = {t.shape[1] for t in tensors if _is_tokens(t)}
    if len(ts) > 1:
        raise FxFlopsError(f"the batch's token tensors disagree on their length ({sorted(ts)}); pad them to one")
    return int(b), (int(ts.pop()) if ts else None)


class StepFlops:
    """``flops(B=..., T=...)`` of ``model`` trained on examples laid out as ``example``: fitted on a small grid of
    shapes (``B`` in 1, 2, 3 and five lengths up to the example's), checked at the example's own shape, or, where
    no polynomial fits, traced at each new shape (cached)."""

    def __init__(self, model: torch.nn.Module, example: Any, *, mode: str = "train",
                 trace_options: Mapping[str, Any] | None = None) -> None:
        self._model = weakref.ref(model)
        self._layout = example
        self.mode = mode
        self.options = dict(trace_options or {})
        self.b0, self.t0 = batch_shape(example)
        self.symbols = ("B", "T") if self.t0 is not None else ("B",)
        self.formulas: dict[str, Formula] = {}
        self.checked_at: tuple[int, ...] | None = None
        self.note = ""
        self._traced: dict[tuple[int, ...], StepCount] = {}
        self._fit()

    def __call__(self, B: int, T: int | None = None) -> StepCount:
        point = (int(B),) if self.t0 is None else (int(B), int(T if T is not None else self.t0))
        if self.formulas:
            values = dict(zip(self.symbols, point))
            return StepCount(int(self.formulas["flops"](**values)), int(self.formulas["model_flops"](**values)),
                             "formula")
        if point not in self._traced:
            self._traced[point] = self._count(point, "trace")
        return self._traced[point]

    def of(self, batch: Any) -> StepCount:
        """The FLOPs of a step on ``batch`` (laid out as the example)."""
        return self(*batch_shape(batch))

    def _model_or_fail(self) -> torch.nn.Module:
        model = self._model()
        if model is None:
            raise FxFlopsError("the model these step FLOPs were fitted for is gone; fit them again on the new one")
        return model

    def _example(self, point: tuple[int, ...]) -> Any:
        b, t = point[0], (point[1] if len(point) > 1 else None)
        return _reshaped(self._layout, b, t)

    def _count(self, point: tuple[int, ...], how: str) -> StepCount:
        r = trace_flops(self._model_or_fail(), self._example(point), mode=self.mode, **self.options)
        return StepCount(r.total_flops, r.total_flops - recompute_flops(r), how)

    def _fit(self) -> None:
        model = self._model_or_fail()
        grid: dict[str, list[int]] = {"B": list(B_VALUES)}
        if self.t0 is not None:
            start = max(2, self.t0 // T_POINTS)  # T=1 takes other branches in many models (a decode step)
            step = max(1, (self.t0 - start) // (T_POINTS - 1))
            grid["T"] = [start + i * step for i in range(T_POINTS)]
        s = sweep(lambda **p: (model, self._example(tuple(p[k] for k in self.symbols))),
                  trace_options={**self.options, "mode": self.mode}, **grid)
        points = [tuple(p[k] for k in self.symbols) for p in s.points]
        model_values = [r.total_flops - recompute_flops(r) for r in s.reports]
        formulas = {"flops": s.formula("flops"), "model_flops": fit("model_flops", self.symbols, points, model_values)}
        for p, r, m in zip(points, s.reports, model_values):
            self._traced[p] = StepCount(r.total_flops, m, "trace")
        missing = [name for name, f in formulas.items() if not f.fits]
        if missing:
            self.note = (f"no exact polynomial fits the step's FLOPs ({formulas[missing[0]].reason}); "
                         "each shape is traced")
            return
        held_out = (self.b0,) if self.t0 is None else (self.b0, self.t0)
        if held_out in self._traced:  # the example's shape was on the grid: check a batch size beyond it instead
            held_out = (max(B_VALUES) + 1, *held_out[1:])
        exact = self._count(held_out, "trace")
        self._traced[held_out] = exact
        values = dict(zip(self.symbols, held_out))
        if (formulas["flops"](**values), formulas["model_flops"](**values)) != (exact.flops, exact.model_flops):
            self.note = (f"the fitted formula misses the traced count at {_fmt(self.symbols, held_out)}; "
                         "each shape is traced")
            return
        self.formulas, self.checked_at = formulas, held_out
        self.note = f"{formulas['flops']}, checked at {_fmt(self.symbols, held_out)}"


# model -> {example layout: StepFlops}; weak keys so that a finished model is not kept alive by its fit
_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, StepFlops]]" = weakref.WeakKeyDictionary()


def step_flops(model: torch.nn.Module, example: Any, *, mode: str = "train",
               trace_options: Mapping[str, Any] | None = None) -> StepFlops:
    """The :class:`StepFlops` of ``model`` for examples laid out as ``example``, fitted on first use and cached."""
    key = (_layout_key(example), mode, tuple(sorted((k, repr(v)) for k, v in (trace_options or {}).items())))
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = StepFlops(model, example, mode=mode, trace_options=trace_options)
    return per_model[key]


def _is_tokens(t: torch.Tensor) -> bool:
    return t.dim() == 2 and not (t.is_floating_point() or t.is_complex())


def _tensors(example: Any) -> list[torch.Tensor]:
    if isinstance(example, torch.Tensor):
        return [example]
    values = example.values() if isinstance(example, Mapping) else example if isinstance(example, (list, tuple)) else []
    return [v for v in values if isinstance(v, torch.Tensor)]


def _reshaped(example: Any, b: int, t: int | None) -> Any:
    """``example`` with every tensor's batch dimension set to ``b`` and token tensors' length to ``t``, on meta."""
    def one(v: Any) -> Any:
        if not isinstance(v, torch.Tensor):
            return v
        shape = list(v.shape)
        if shape:
            shape[0] = b
        if t is not None and _is_tokens(v):
            shape[1] = t
        return torch.zeros(shape, dtype=v.dtype, device="meta")

    if isinstance(example, Mapping):
        return {k: one(v) for k, v in example.items()}
    if isinstance(example, (list, tuple)):
        return tuple(one(v) for v in example)
    return one(example)


def _layout_key(example: Any) -> tuple:
    if isinstance(example, Mapping):
        return tuple((k, _tensor_key(v)) for k, v in example.items())
    if isinstance(example, (list, tuple)):
        return tuple(_tensor_key(v) for v in example)
    return (_tensor_key(example),)


def _tensor_key(v: Any) -> Any:
    if not isinstance(v, torch.Tensor):
        return repr(v)
    return (str(v.dtype), v.dim(), tuple(v.shape[2:]) if _is_tokens(v) else tuple(v.shape[1:]))


def _fmt(symbols: tuple[str, ...], point: tuple[int, ...]) -> str:
    return ", ".join(f"{s}={v}" for s, v in zip(symbols, point))
