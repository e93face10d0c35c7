"""Tensors inside nested values (tuples, lists, dicts), and meta copies of them."""
from __future__ import annotations

from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map

META = torch.device("meta")


def leaves(value: Any) -> list:
    """Every leaf of a pytree (tensors, scalars, None...), in order."""
    return tree_flatten(value)[0]


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor of a pytree, in order."""
    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]


def has_tensor(value: Any) -> bool:
    return any(isinstance(t, torch.Tensor) for t in tree_flatten(value)[0])


def on_meta(value: Any) -> bool:
    """Some tensor of ``value`` lives on the meta device."""
    return any(t.device == META for t in tensors_in(value))


def to_meta(value: Any) -> Any:
    """Meta copies of every tensor in a pytree (other leaves unchanged)."""

    def conv(x: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.device != META:
            return torch.empty_like(x, device=META)
        return x

    return tree_map(conv, value)


def dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")
