"""Every temporary change fxflops makes to the user's model or to torch, in one place, each undone on exit.

Analysing a model must leave it exactly as it was: these context managers are the only code that
swaps weights, replaces forwards, sets torch flags or mutes loggers, and each restores what it changed.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from typing import Any, Callable, Iterator

import torch

from ..tensors import META, to_meta


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



@contextlib.contextmanager
def forwards(patches: dict[torch.nn.Module, Callable]) -> Iterator[None]:
    """Temporarily give modules another forward (an instance attribute, which dynamo honours)."""
    patched = []
    try:
        for module, fn in patches.items():
            patched.append((module, module.__dict__.get("forward")))
            module.forward = fn
        yield
    finally:
        for module, old in reversed(patched):
            if old is None:
                del module.forward
            else:
                module.forward = old


@contextlib.contextmanager
def as_if_compiling() -> Iterator[None]:
    """Make ``torch.compiler.is_compiling()`` true for the eager probe, so that code which checks it (a
    data-dependent sanity check skipped under compile, say) takes the branch the dynamo capture takes."""
    old = torch.compiler._is_compiling_flag
    torch.compiler._is_compiling_flag = True
    try:
        yield
    finally:
        torch.compiler._is_compiling_flag = old



@contextlib.contextmanager
def kept_state(root: torch.nn.Module | None) -> Iterator[None]:
    """Put back what a forward changes on the model: attributes it reassigns (torchvision's AnchorGenerator
    caches its anchors on the device of the last input, so a meta run would leave them on meta) and, on
    real data, buffers it updates in place (a batch norm's running statistics in training mode)."""
    saved = []
    for m in root.modules() if root is not None else ():
        attrs = {k: v for k, v in vars(m).items() if k not in ("_parameters", "_buffers", "_modules")}
        lists = [(v, list(v)) for v in attrs.values() if type(v) is list]
        saved.append((m, attrs, lists))
    buffers = [(b, b.clone()) for b in root.buffers() if b.device != META] if root is not None else []
    try:
        yield
    finally:
        for m, attrs, lists in saved:
            for k in [k for k in vars(m) if k not in attrs and k not in ("_parameters", "_buffers", "_modules")]:
                delattr(m, k)
            vars(m).update(attrs)
            for obj, items in lists:
                obj[:] = items
        with torch.no_grad():
            for b, value in buffers:
                b.copy_(value)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Dynamo logs every graph break as a warning and torch's meta kernels warn about their own internals;
    the report's notes say what matters (how many graphs, why meta failed), so both are muted here."""
    log = logging.getLogger("torch._dynamo")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch")
            yield
    finally:
        log.setLevel(level)


def private_copy(args: tuple, kwargs: dict, mode: str, root: torch.nn.Module | None) -> tuple[tuple, dict]:
    """A private copy of the example for one run (meta tensors on meta), so a KV cache the user
    passed in is not appended to, and every run starts from the same state. The model's own
    modules and tensors, should the example hold any, are not copied."""
    value = to_meta((args, kwargs)) if mode == "meta" else (args, kwargs)
    keep: dict[int, Any] = {}
    if root is not None:
        for obj in [*root.modules(), *root.parameters(), *root.buffers()]:
            keep[id(obj)] = obj
    try:
        value = copy.deepcopy(value, keep)
    except Exception:  # noqa: BLE001 - an uncopyable object is passed as is
        pass
    return value
