"""Tensors inside nested values (tuples, lists, dicts), and meta copies of them."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch.utils._pytree import tree_flatten, tree_map

META = torch.device("meta")


def leaves(value: Any) -> list:
    """Every leaf of a pytree (tensors, scalars, None...), in order."""
    return tree_flatten(value)[0]


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor inside tuples, lists and dicts (namedtuples and ModelOutputs included), in order. A plain
    recursion: the cost pass calls it for every node, and pytree's generality costs ten times more."""
    out: list[torch.Tensor] = []
    _collect(value, out)
    return out


def _collect(value: Any, out: list) -> None:
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _collect(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, out)


def has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(has_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(has_tensor(v) for v in value.values())
    return False


def on_meta(value: Any) -> bool:
    """Some tensor of ``value`` lives on the meta device."""
    return any(t.device == META for t in tensors_in(value))


def empty_like_meta(x: torch.Tensor) -> torch.Tensor:
    """A meta tensor like meta ``x``: ``torch.empty_like`` on meta runs a Python decomposition (a third of a
    millisecond), ``torch.empty`` is a hundred times cheaper and lays out a contiguous tensor the same way."""
    if x.is_contiguous():
        return torch.empty(x.shape, dtype=x.dtype, device=META)
    return torch.empty_like(x)


def to_meta(value: Any) -> Any:
    """Meta copies of every tensor in a pytree (other leaves unchanged)."""

    def conv(x: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.device != META:
            # requires_grad is kept: a training-step count reads which inputs need a gradient
            return torch.empty_like(x, device=META).requires_grad_(x.requires_grad and x.is_leaf
                                                                  and (x.is_floating_point() or x.is_complex()))
        return x

    return tree_map(conv, value)


def dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


@contextlib.contextmanager
def meta_weights(module: torch.nn.Module) -> Iterator[None]:
    """Temporarily replace every parameter and buffer of ``module`` by a meta copy (ties preserved)."""
    swapped: list[tuple[dict, str, Any]] = []
    copies: dict[int, torch.Tensor] = {}
    try:
        for m in module.modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is None or t.device == META:
                        continue
                    copy = copies.get(id(t))
                    if copy is None:
                        copy = torch.empty_like(t, device=META)
                        if isinstance(t, torch.nn.Parameter):
                            copy = torch.nn.Parameter(copy, requires_grad=t.requires_grad)
                        copies[id(t)] = copy
                    swapped.append((store, name, t))
                    store[name] = copy
        yield
    finally:
        for store, name, t in reversed(swapped):
            store[name] = t
