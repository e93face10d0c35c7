"""``trace_flops``, the one orchestrator: choose a capture, annotate it, assemble the report.

capture (:mod:`fxflops.capture`, a :class:`~fxflops.captured.Captured`) → passes (:func:`fxflops.pipeline.annotate.
annotate`: shapes, costs, bytes, backward, records) → :class:`Report`; ``measure=True`` then times it
(:mod:`fxflops.measure`), and :mod:`fxflops.sweeping` runs it over a grid of sizes.
"""
from __future__ import annotations

import contextlib
import gc
import itertools
import os
import sys
import threading
from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch

from . import rules as _rules
from .capture.dynamo import capture_dynamo
from .capture.example import Example, check_keywords, concrete_defaults, input_shapes, placeholder_values, split_example
from .capture.fx import capture_fx
from .capture.fx_cache import FxCache, cached_capture_fx
from .capture.fx_cache import clear_caches as _clear_fx_caches
from .capture.patching import GLOBAL, model_lock
from .capture.record import capture_record
from .captured import Captured
from .errors import CaptureError, ShapeError, TrainModeWarning, UncountedOpError, UncountedOpWarning, warn_user
from .measure import measure as measure_report
from .passes.backward import checkpoint_note
from .passes.costs import Counting
from .passes.eager_check import outside_graphs
from .passes.fusion import fuse_bytes
from .passes.records import module_rows
from .passes.shapes import locate, materialize_lazy
from .pipeline.annotate import Annotated, annotate
from .pipeline.nested import price_callable
from .pipeline.options import CAPTURES, MODES, TraceOptions
from .report.report import Report
from .rules.registry import REGISTRY, Registry, as_custom_rules
from .tensors import tensors_in

__all__ = ["trace_flops", "analyse", "clear_caches", "TraceOptions", "CAPTURES", "MODES"]


def trace_flops(
    model: torch.nn.Module,
    example: Example = None,
    *,
    custom_rules: Mapping[Any, Callable] | None = None,
    ignore: Iterable[Any] = (),
    leaf_modules: Iterable[type] = (),
    concrete_args: Mapping[str, Any] | None = None,
    capture: str = "auto",
    strict: bool = False,
    registry: Registry | None = None,
    measure: bool = False,
    repeats: int = 5,
    mode: str = "infer",
    bytes: str = "eager",
) -> Report:
    """Count the MACs, FLOPs and parameters of ``model`` on ``example`` and return a :class:`Report`.

    ``example`` is a tensor, a tuple of positional arguments, or a dict of keyword arguments; it may
    live on the ``meta`` device. Shapes are propagated without computing anything where possible.

    ``custom_rules`` maps module classes, functions or Tensor method names to ``fn(call) -> Cost``
    (custom-ruled modules are kept as leaves). ``ignore`` lists ops counted as 0: module classes,
    functions, or op/method names such as ``"add"``. ``leaf_modules`` are module classes kept whole.
    ``capture`` is ``"auto"`` (fx, then record, then dynamo), ``"fx"``, ``"record"`` (the eager call recorded
    at the torch-function level) or ``"dynamo"``. ``strict=True`` raises
    when an op has no rule instead of counting it as 0 with a warning.

    ``measure=True`` also runs the captured graph on real tensors where the model is (its own weights; random
    inputs of the example's shapes if the example is meta) and stores each node's median time over ``repeats``
    runs in ``NodeRecord.measured`` (seconds), summed per module in ``ModuleRow.measured``.

    ``mode="train"`` counts one training step: the forward plus the backward each node needs, gradient-aware
    (no grad-input where nothing upstream learns, no grad-weight for frozen parameters). ``total_*`` is then
    ``forward_* + backward_*``; ``"infer"`` (the default) counts the forward only. The model's own
    ``train()``/``eval()`` state is left as it is.

    ``bytes="fused"`` prices memory traffic at kernel boundaries (chains fused, attention as one flash kernel, an
    in-place KV-cache append) instead of one kernel per node (``"eager"``); see :mod:`fxflops.passes.fusion`.
    """
    options = TraceOptions(custom_rules=custom_rules, ignore=tuple(ignore), leaf_modules=tuple(leaf_modules),
                           concrete_args=concrete_args, capture=capture, strict=strict, registry=registry,
                           measure=measure, repeats=repeats, mode=mode, bytes=bytes)
    if mode == "infer" and isinstance(model, torch.nn.Module) and model.training and any(
            isinstance(m, _TRAIN_ONLY) for m in model.modules()):  # most who forget .eval() meant inference
        warn_user(f"{type(model).__name__} is in training mode (dropout and batch-norm batch statistics are counted); "
                  "call model.eval() first for the inference cost, or pass mode='train' for a training step",
                  TrainModeWarning)
    return analyse(model, example, options)


# modules whose forward differs in training mode, and so whose count does
_TRAIN_ONLY = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm)


def analyse(model: torch.nn.Module, example: Example, options: TraceOptions, fx_cache: FxCache | None = None) -> Report:
    """:func:`trace_flops` with its options as one value; ``fx_cache`` keeps fx captures across calls (a sweep)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"trace_flops needs a torch.nn.Module, got {type(model).__name__}. "
            "Wrap a plain function in an nn.Module whose forward calls it."
        )
    _rules.load_extensions()
    model, compiled = _uncompiled(model)
    with model_lock(model), _heap_frozen():  # a capture swaps the model's weights: one analysis of it at a time
        report = _analysed(model, example, options, fx_cache)
    if compiled:
        report.notes.insert(0, compiled)
    return report


def _uncompiled(model: torch.nn.Module) -> tuple[torch.nn.Module, str | None]:
    """torch.compile's wrapper runs the same forward: analysing it adds OptimizedModule/_orig_mod levels to every
    table and sets off torch's warning about global hooks, so the module it wraps is analysed instead. torch._dynamo
    is already imported wherever such a wrapper exists: it is not imported for anyone else."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    if eval_frame is None or not isinstance(model, eval_frame.OptimizedModule):
        return model, None
    inner = model._orig_mod
    return inner, (f"torch.compile'd model: analysed the {type(inner).__name__} it wraps (model._orig_mod); "
                   "the count is of its eager forward, not of the compiled kernels")


_freeze_lock = threading.Lock()
_freezers = [0, False]  # analyses inside the freeze, and whether fxflops froze the heap (to unfreeze it)


def _fresh_freeze_lock() -> None:
    global _freeze_lock
    _freeze_lock = threading.Lock()  # held by another thread when a worker forked: no one would release it


os.register_at_fork(after_in_child=_fresh_freeze_lock)


def clear_caches() -> None:
    """Drop what fxflops keeps between analyses: the fx captures of live sweeps and dynamo's compiled code and guards
    (torch's own caches, which hold tensors of the models dynamo captured). Caches are bounded and weakly keyed
    already; this is for a long-running process that wants the memory back now."""
    _clear_fx_caches()
    with GLOBAL.exclusive():  # not under a capture running in another thread
        torch._dynamo.reset()


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """A trace makes hundreds of thousands of objects (graph nodes, meta tensors, records), enough to set off
    full garbage collections, and each of those walks the whole heap: torch, transformers and the model are
    about half a million objects (0.3-0.9 s per trace of a 70B Llama). Freezing what existed before keeps
    those collections to the trace's own objects. A heap someone else froze (a pre-fork server) is left so.
    The freeze is counted: concurrent analyses share it and the last one out unfreezes, never one that another
    thread is still inside."""
    with _freeze_lock:
        if not _freezers[0]:
            _freezers[1] = not gc.get_freeze_count()
            if _freezers[1]:
                gc.freeze()
        _freezers[0] += 1
    try:
        yield
    finally:
        with _freeze_lock:
            _freezers[0] -= 1
            if not _freezers[0] and _freezers[1]:
                gc.unfreeze()


def _analysed(model: torch.nn.Module, example: Example, options: TraceOptions, fx_cache: FxCache | None) -> Report:
    args, kwargs = split_example(example)
    check_keywords(model, kwargs)
    lazy_note = materialize_lazy(model, args, kwargs)
    base = options.registry if options.registry is not None else REGISTRY
    custom = options.custom_rules or {}
    ctx = Counting(as_custom_rules(custom, base), list(options.ignore), train=options.train, pricer=price_callable,
                   device=_device_type(model, args, kwargs))
    leaf_types = tuple(options.leaf_modules) + tuple(t for t in custom if isinstance(t, type))

    def record_leaf(m: torch.nn.Module) -> bool:  # what the recorder keeps whole: what fx keeps as a leaf
        return ctx.registry.for_module(m) is not None or bool(leaf_types) and isinstance(m, leaf_types)

    def dynamo_leaf(m: torch.nn.Module) -> bool:  # a module of leaf_types with a rule is kept whole, as fx keeps it
        return isinstance(m, leaf_types) and ctx.registry.for_module(m) is not None

    def fx_job() -> tuple[Captured, Annotated]:
        rules = (base, *(x for kv in custom.items() for x in kv))  # what the counting registry was made of
        concrete = concrete_defaults(model, args, kwargs, options.concrete_args)
        cap = cached_capture_fx(model, ctx.registry, leaf_types, concrete, fx_cache, rules)
        cap = replace(cap, inputs=placeholder_values(cap.graph_module, model, args, kwargs))
        try:
            return cap, annotate(cap, ctx)
        except ShapeError as err:
            if err.located or err.node is None:
                raise
            # Only now is the user's line worth a second trace that records stack traces (see shapes._shape_advice).
            again = capture_fx(model, ctx.registry, leaf_types, concrete_args=concrete, stack_traces=True).graph_module
            node = next((n for n in again.graph.nodes if n.name == err.node), None)
            raise locate(err, node.meta.get("stack_trace") if node is not None else None) from err.__cause__

    def record_job() -> tuple[Captured, Annotated]:
        cap = capture_record(model, args, kwargs, record_leaf, grad=ctx.train)
        return cap, annotate(cap, ctx)

    def dynamo_job() -> tuple[Captured, Annotated]:
        # A reused block is a copy of its source's records, and a training step's backward differs between copies:
        # the first block's input needs no gradient, the next blocks' do. So in train mode every block is traced.
        cap = capture_dynamo(model, args, kwargs, is_leaf=dynamo_leaf if leaf_types else None,
                             reuse_blocks=not ctx.train, grad=ctx.train)
        return cap, annotate(cap, ctx)

    (cap, done), fell_back = _choose(options.capture, {"fx": fx_job, "record": record_job, "dynamo": dynamo_job},
                                     type(model).__name__)
    if options.bytes == "fused":  # kernel boundaries instead of one kernel per node
        fuse_bytes(done.records)
    # the eager MAC check of the paths that ran the model, unless the user ignores or re-prices ops
    missing = outside_graphs(cap, done.records) if not options.ignore and not custom else None
    notes = [n for n in (lazy_note, fell_back) if n] + done.notes + ([missing] if missing else [])
    note = checkpoint_note(done.records) if ctx.train else None
    report = Report(
        model_name=type(model).__name__,
        nodes=done.records,
        modules=module_rows(model, done.records),
        input_shapes=input_shapes(args, kwargs),
        capture=cap.path,
        shape_mode=done.shape_mode,
        notes=notes + ([note] if note else []),
        missing=missing,
        graph_modules=cap.graphs,
        mode=options.mode,
        model=model,
    )
    _check_complete(report, options.strict)
    if options.measure:
        report = measure_report(report, model, args, kwargs, options.repeats, record_leaf)
    return report


def _device_type(model: torch.nn.Module, args: tuple, kwargs: dict) -> str:
    """Where the model runs: the device type of its first weight or example tensor that is not on meta ("" if none)."""
    tensors = itertools.chain(model.parameters(), model.buffers(), tensors_in((args, kwargs)))
    return next((t.device.type for t in tensors if t.device.type != "meta"), "")


def _choose(capture: str, jobs: dict[str, Callable[[], Any]], name: str) -> tuple[Any, str | None]:
    """Run the capture path asked for, and say which paths failed before it. ``auto`` tries fx, then record, then
    dynamo, each when the one before cannot capture the model, saying why in one note; if all fail, one error lists
    what each path hit."""
    if capture != "auto":
        return jobs[capture](), None
    failed: list[tuple[str, str]] = []
    for path in ("fx", "record", "dynamo"):
        try:
            done = jobs[path]()
        except CaptureError as err:  # a shape error means the example does not fit: no other path would help
            failed.append((path, _why(err, name)))
            continue
        note = "; ".join(f"{_FAILED[p]} {why}" for p, why in failed) + f"; used {path}" if failed else None
        return done, note
    raise CaptureError(
        f"could not capture {name} with any path.\n" + "".join(f"  {p}: {why}\n" for p, why in failed)
        + "What to do: check that the model runs eagerly on this example; see the reasons above."
    )


_FAILED = {"fx": "fx could not trace", "record": "the eager call could not be recorded:"}


def _why(err: BaseException, name: str) -> str:
    """What a path hit, in one line: ``<module> (<reason>)``."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    for lead in ("torch.fx could not trace ", "torch dynamo could not capture ", "could not record "):
        if line.startswith(lead):
            return line[len(lead):].rstrip(".")
    return f"{name} ({type(err).__name__}: {line.rstrip('.')})"


def _check_complete(report: Report, strict: bool) -> None:
    """One warning (or, with ``strict``, one error) for everything the count could not price, on every path."""
    gap = report.shortfall(strict)
    if gap is None:
        return
    msg = gap + ". Add a rule with custom_rules={target: fn} or @fxflops.rule(target)" + (
        " and a backward formula with @fxflops.backward_rule(op)" if report.no_backward else "") + \
        "; report.audit() lists them."
    if strict:
        raise UncountedOpError(msg)
    warn_user(msg, UncountedOpWarning)


