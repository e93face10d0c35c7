"""Every temporary change fxflops makes to the user's model or to torch, in one place, each undone on exit.

Analysing a model must leave it exactly as it was: these context managers are the only code that
swaps weights, replaces forwards, sets torch flags or mutes loggers, and each restores what it changed.

Threads. Several threads may analyse at once, and each must see only its own changes:

* thread-local already: torch's function and dispatch modes (the recorder, the MAC check), grad mode, dynamo's
  fake-tensor settings;
* made thread-aware here: ``torch.utils.checkpoint``'s functions (:func:`checkpoint_regions`) and the global module
  hooks of the recorder are installed once, counted, and act only for the thread whose capture installed them
  (others go straight to torch's code); the muted logger and warning filters (:func:`quiet`) are installed by the
  first capture and restored by the last, so overlapping captures cannot restore each other's state half-way;
* one model: a capture swaps the model's weights for meta copies and puts back attributes its forward changes, so
  analyses of the same model instance take turns (:func:`model_lock`); different models run in parallel;
* process-wide state that cannot be made per thread, behind :data:`GLOBAL` (a re-entrant readers-writer lock):
  torch.fx's symbolic tracer patches ``torch.nn.Module.__call__``/``__getattr__`` for the whole process and restores
  them in a fixed order; dynamo's config, caches and ``torch._dynamo.reset()`` are process-wide; and
  ``torch.compiler.is_compiling()`` reads one process-wide flag (:func:`as_if_compiling`). An fx trace, a dynamo
  capture and a run with that flag set hold it exclusively; a recorded run holds it shared (it reads the flag:
  a model's forward may branch on it), so recorded runs overlap each other, and everything after a capture (shapes,
  costs, bytes, backward, records) runs in parallel on every path.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
import warnings
import weakref
from typing import Any, Callable, Iterator

import torch

from ..tensors import META, to_meta
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


class SharedLock:
    """A re-entrant readers-writer lock: many holders of :meth:`shared`, or one of :meth:`exclusive`. A thread that
    holds it exclusively may take it again either way; a shared holder may take it shared again, but not
    exclusively (two such threads would wait for each other), which raises instead of hanging."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._waiting = 0  # writers waiting: new readers let them go first
        self._mine = threading.local()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        if self._writer == threading.get_ident() or getattr(self._mine, "shared", 0):
            yield
            return
        with self._cond:
            while self._writer is not None or self._waiting:
                self._cond.wait()
            self._readers += 1
        self._mine.shared = 1
        try:
            yield
        finally:
            self._mine.shared = 0
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer == me:
            yield
            return
        if getattr(self._mine, "shared", 0):
            raise RuntimeError("fxflops: a capture that reads torch's global state started one that changes it")
        with self._cond:
            self._waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()


GLOBAL = SharedLock()  # torch's process-wide state: see the module docstring for what holds it and how

_models: "weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_models_lock = threading.Lock()


@contextlib.contextmanager
def model_lock(model: torch.nn.Module) -> Iterator[None]:
    """Analyses of one model instance take turns: a capture swaps its weights and forwards while it runs. The lock
    is weakly keyed, so it does not keep the model alive."""
    with _models_lock:
        lock = _models.get(model)
        if lock is None:
            lock = _models[model] = threading.RLock()
    with lock:
        yield


_installed: "weakref.WeakSet[_Installed]" = weakref.WeakSet()


def _fresh_locks_after_fork() -> None:
    """In a forked child only the forking thread lives on: the locks other threads held are held by no one and
    would never be released, so the child starts with fresh ones. (A patch another thread had installed stays
    installed and counted; the fork itself waits for the captures that patch torch, see pipeline/workers.py.)"""
    global _models, _models_lock
    GLOBAL.__init__()
    _models = weakref.WeakKeyDictionary()
    _models_lock = threading.Lock()
    for patch in list(_installed):
        patch._lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks_after_fork)


class _Installed:
    """A patch of process-wide state shared by overlapping captures: installed by the first, undone by the last, so
    that one thread never restores what another still relies on (the order ``catch_warnings`` and plain
    save/restore get wrong when threads interleave)."""

    def __init__(self, install: Callable[[], Any], uninstall: Callable[[Any], None]) -> None:
        self._install, self._uninstall = install, uninstall
        self._lock = threading.Lock()
        self._count = 0
        self._saved: Any = None
        _installed.add(self)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if not self._count:
                self._saved = self._install()
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1
                if not self._count:
                    self._uninstall(self._saved)
                    self._saved = None


@contextlib.contextmanager
def as_if_compiling() -> Iterator[None]:
    """Make ``torch.compiler.is_compiling()`` true for the eager probe, so that code which checks it (a
    data-dependent sanity check skipped under compile, say) takes the branch the dynamo capture takes. The flag is
    one for the whole process, so no other capture runs meanwhile (:data:`GLOBAL`)."""
    with GLOBAL.exclusive():
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


_LOUD = {"torch._dynamo": logging.ERROR,
         # fake_tensor logs a whole traceback for a meta kernel that refuses a shape: the capture error says it in a line
         "torch._subclasses.fake_tensor": logging.CRITICAL}


def _mute() -> tuple[dict, list]:
    saved = ({name: logging.getLogger(name).level for name in _LOUD}, list(warnings.filters))
    for name, level in _LOUD.items():
        logging.getLogger(name).setLevel(level)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch")
    return saved


def _unmute(saved: tuple[dict, list]) -> None:
    for name, level in saved[0].items():
        logging.getLogger(name).setLevel(level)
    warnings.filters[:] = saved[1]
    warnings._filters_mutated()  # type: ignore[attr-defined] - what catch_warnings calls, so caches see the change


_muted = _Installed(_mute, _unmute)


def quiet() -> contextlib.AbstractContextManager[None]:
    """Dynamo logs every graph break as a warning and torch's meta kernels warn about their own internals;
    the report's notes say what matters (how many graphs, why meta failed), so both are muted here (for the
    whole process while any capture runs: logger levels and warning filters are not per thread)."""
    return _muted.held()


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


_regions = threading.local()  # .current: the CheckpointRegions of this thread's capture, if any


def _patch_checkpoint() -> dict[str, Any]:
    import torch.utils.checkpoint as cp

    # torch 2.14 calls the _impl generator; older releases the one without the suffix
    names = [n for n in ("_checkpoint_without_reentrant_generator_impl", "_checkpoint_without_reentrant_generator")
             if hasattr(cp, n)]
    saved: dict[str, Any] = {n: getattr(cp, n) for n in names}
    saved["own_apply"] = vars(cp.CheckpointFunction).get("apply")
    torch_apply = cp.CheckpointFunction.apply

    def generator(original: Callable) -> Callable:
        def marked(*args: Any, early_stop: bool = True, **kwargs: Any) -> Iterator[None]:  # non-reentrant
            regions = getattr(_regions, "current", None)
            if regions is None:  # another thread's checkpoint, not captured: torch's own
                return (yield from original(*args, early_stop=early_stop, **kwargs))
            override = getattr(cp, "_enable_checkpoint_early_stop", None)  # set_checkpoint_early_stop() wins
            regions.enter(early_stop=override if override is not None else early_stop)
            try:
                yield
            finally:
                regions.exit()
        return marked

    def apply(function: Callable, _preserve_rng_state: bool, *args: Any) -> Any:  # reentrant
        regions = getattr(_regions, "current", None)
        if regions is None:
            return torch_apply(function, _preserve_rng_state, *args)
        regions.enter(reentrant=True)
        try:
            return function(*args)
        finally:
            regions.exit()

    for n in names:
        setattr(cp, n, generator(saved[n]))
    cp.CheckpointFunction.apply = staticmethod(apply)
    return saved


def _unpatch_checkpoint(saved: dict[str, Any]) -> None:
    import torch.utils.checkpoint as cp

    own_apply = saved.pop("own_apply")
    for n, old in saved.items():
        setattr(cp, n, old)
    if own_apply is not None:
        cp.CheckpointFunction.apply = own_apply
    else:
        del cp.CheckpointFunction.apply


_checkpoint_patch = _Installed(_patch_checkpoint, _unpatch_checkpoint)


@contextlib.contextmanager
def checkpoint_regions(regions: CheckpointRegions) -> Iterator[None]:
    """Mark the calls ``torch.utils.checkpoint.checkpoint`` makes, whichever way it was reached (Hugging Face
    keeps a ``functools.partial`` of it, so the function itself cannot be swapped): both of its implementations
    are looked up at call time. The region's function is called directly; saving and recomputing are autograd's
    business in a real backward, and a capture runs none. The replacements act for this thread only; other threads
    reach torch's own functions through them."""
    outer = getattr(_regions, "current", None)
    _regions.current = regions
    try:
        with _checkpoint_patch.held():
            yield
    finally:
        _regions.current = outer
        regions.current, regions._depth = None, 0
