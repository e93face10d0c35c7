"""The per-op formula tables of the passes (bytes moved, backward cost, what the backward saves): one short
function per op or family, registered by decorator, its docstring published in docs/conventions.md. The cost
registry (:mod:`fxflops.rules.registry`) is the same idea with the lookups a forward needs (module classes
along the MRO, Tensor methods by name)."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

C = TypeVar("C")  # what a formula reads: the pass's call object
R = TypeVar("R")  # what it returns


@dataclass(frozen=True)
class Formula(Generic[C, R]):
    """A registered formula; ``formula`` is the function's docstring."""

    name: str
    fn: Callable[[C], R]
    formula: str

    def __call__(self, call: C) -> R:
        return self.fn(call)


def registers(table: dict[Any, Formula], keys: tuple, name: str | None) -> Callable[[Callable], Callable]:
    """The decorator that puts ``fn`` into ``table`` under every key of ``keys`` (``name`` defaults to its own)."""

    def deco(fn: Callable) -> Callable:
        f = Formula(name or fn.__name__, fn, inspect.cleandoc(fn.__doc__ or ""))
        for k in keys:
            table[k] = f
        return fn

    return deco
