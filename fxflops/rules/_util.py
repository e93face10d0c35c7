"""Small helpers shared by the rule families."""
from __future__ import annotations

import math
from typing import Any

import torch


def prod(xs) -> int:
    return math.prod(int(x) for x in xs)


def first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = first_tensor(v)
            if t is not None:
                return t
    return None


def is_float(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex())
