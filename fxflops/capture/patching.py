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

from ..tensors import META, meta_weights, to_meta
from ..types import CheckpointRegion


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
    # fake_tensor logs a whole traceback for a meta kernel that refuses a shape: the capture error says it in a line
    logs = {name: logging.getLogger(name) for name in ("torch._dynamo", "torch._subclasses.fake_tensor")}
    levels = {name: log.level for name, log in logs.items()}
    logs["torch._dynamo"].setLevel(logging.ERROR)
    logs["torch._subclasses.fake_tensor"].setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch")
            yield
    finally:
        for name, log in logs.items():
            log.setLevel(levels[name])


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


class CheckpointRegions:
    """Which activation-checkpoint region (``torch.utils.checkpoint``) a capture is inside; the capture tags each
    node it makes with it (:meth:`tag`)."""

    def __init__(self) -> None:
        self.current: CheckpointRegion | None = None
        self.count = 0
        self._depth = 0

    def tag(self, node: Any) -> None:
        if self.current is not None:
            node.meta["checkpoint"] = self.current

    def enter(self, reentrant: bool = False, early_stop: bool = True) -> None:
        if not self._depth:
            self.count += 1
            self.current = CheckpointRegion(self.count, reentrant, early_stop)
        self._depth += 1

    def exit(self) -> None:
        self._depth -= 1
        if not self._depth:
            self.current = None


@contextlib.contextmanager
def checkpoint_regions(regions: CheckpointRegions) -> Iterator[None]:
    """Mark the calls ``torch.utils.checkpoint.checkpoint`` makes, whichever way it was reached (Hugging Face
    keeps a ``functools.partial`` of it, so the function itself cannot be swapped): both of its implementations
    are looked up at call time. The region's function is called directly; saving and recomputing are autograd's
    business in a real backward, and a capture runs none."""
    import torch.utils.checkpoint as cp

    # torch 2.14 calls the _impl generator; older releases the one without the suffix
    names = [n for n in ("_checkpoint_without_reentrant_generator_impl", "_checkpoint_without_reentrant_generator")
             if hasattr(cp, n)]
    old_generators = {n: getattr(cp, n) for n in names}
    own_apply = "apply" in vars(cp.CheckpointFunction)
    old_apply = vars(cp.CheckpointFunction).get("apply")

    def generator(*_args: Any, early_stop: bool = True, **_kwargs: Any) -> Iterator[None]:  # non-reentrant
        override = getattr(cp, "_enable_checkpoint_early_stop", None)  # set_checkpoint_early_stop() wins
        regions.enter(early_stop=override if override is not None else early_stop)
        try:
            yield
        finally:
            regions.exit()

    def apply(function: Callable, _preserve_rng_state: bool, *args: Any) -> Any:  # reentrant
        regions.enter(reentrant=True)
        try:
            return function(*args)
        finally:
            regions.exit()

    for n in names:
        setattr(cp, n, generator)
    cp.CheckpointFunction.apply = staticmethod(apply)
    try:
        yield
    finally:
        for n, old in old_generators.items():
            setattr(cp, n, old)
        if own_apply:
            cp.CheckpointFunction.apply = old_apply
        else:
            del cp.CheckpointFunction.apply
        regions.current, regions._depth = None, 0
