"""The options of one analysis, as :func:`fxflops.trace_flops` takes them, in one frozen value that the
orchestrator (:mod:`fxflops.api`), :func:`fxflops.sweep` and ``measure=True`` share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import FxFlopsError
from ..rules.registry import Registry

__all__ = ["TraceOptions", "CAPTURES", "MODES", "BYTE_MODELS"]

CAPTURES = ("auto", "fx", "record", "dynamo")
MODES = ("infer", "train")
BYTE_MODELS = ("eager", "fused")


@dataclass(frozen=True)
class TraceOptions:
    """The keywords of :func:`fxflops.trace_flops` (see there)."""

    custom_rules: Mapping[Any, Callable] | None = None
    ignore: tuple = ()
    leaf_modules: tuple = ()
    concrete_args: Mapping[str, Any] | None = None
    capture: str = "auto"
    strict: bool = False
    registry: Registry | None = None
    measure: bool = False
    repeats: int = 5
    mode: str = "infer"
    bytes: str = "eager"

    def __post_init__(self) -> None:
        if self.capture not in CAPTURES:
            raise ValueError(f"capture must be one of {CAPTURES}, got {self.capture!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.bytes not in BYTE_MODELS:
            raise ValueError(f"bytes must be one of {BYTE_MODELS}, got {self.bytes!r}")
        if self.measure and self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {self.repeats}")
        # the iterables the caller gave (lists, generators) kept as tuples, so that the options stay one value
        object.__setattr__(self, "ignore", tuple(self.ignore))
        object.__setattr__(self, "leaf_modules", tuple(self.leaf_modules))

    @property
    def train(self) -> bool:
        return self.mode == "train"

    @classmethod
    def of(cls, options: Mapping[str, Any] | None) -> "TraceOptions":
        """Options from ``trace_flops``'s keywords (``sweep(trace_options=...)``), naming an unknown one."""
        options = dict(options or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise FxFlopsError(f"unknown trace option(s) {', '.join(unknown)}; trace_flops takes {', '.join(sorted(known))}")
        return cls(**options)
