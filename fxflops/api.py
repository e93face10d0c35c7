"""``trace_flops``, the one orchestrator: choose a capture, run the passes, assemble the report.

capture (:mod:`fxflops.capture`) → passes (:mod:`fxflops.passes`: shapes, costs, bytes, backward, records) →
:class:`Report`; ``measure=True`` then times it (:mod:`fxflops.measure`), and :mod:`fxflops.sweeping` runs it
over a grid of sizes.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
import torch.fx as fx

from . import rules as _rules  # noqa: F401 - importing fills the registry
from .capture.dynamo import capture_dynamo
from .capture.example import Example, concrete_defaults, input_shapes, placeholder_values, split_example
from .capture.fx import capture_fx
from .capture.fx_cache import FxCache, cached_capture_fx
from .capture.record import capture_record
from .errors import CaptureError, ShapeError, UncountedOpError, UncountedOpWarning, warn_user
from .measure import measure as measure_report
from .passes.backward import checkpoint_note, count_backward
from .passes.bytes import count_bytes
from .passes.costs import Counting, count_graph
from .passes.dynamo_costs import OpaqueFallback, count_capture, equivalent_op, fallback_notes, outside_graphs
from .passes.fusion import fuse_bytes
from .passes.records import module_rows, node_records
from .passes.shapes import locate, materialize_lazy, propagate_shapes
from .report.report import Report
from .rules.registry import REGISTRY, Registry, as_custom_rules
from .types import Capture, NodeRecord

CAPTURES = ("auto", "fx", "record", "dynamo")
MODES = ("infer", "train")
BYTE_MODELS = ("eager", "fused")


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
    return _trace(model, example, custom_rules=custom_rules, ignore=ignore, leaf_modules=leaf_modules,
                  concrete_args=concrete_args, capture=capture, strict=strict, registry=registry, measure=measure,
                  repeats=repeats, mode=mode, bytes=bytes)


def _trace(model: torch.nn.Module, example: Example = None, *, custom_rules: Mapping[Any, Callable] | None = None,
           ignore: Iterable[Any] = (), leaf_modules: Iterable[type] = (), concrete_args: Mapping[str, Any] | None = None,
           capture: str = "auto", strict: bool = False, registry: Registry | None = None, measure: bool = False,
           repeats: int = 5, fx_cache: FxCache | None = None, mode: str = "infer", bytes: str = "eager") -> Report:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"trace_flops needs a torch.nn.Module, got {type(model).__name__}. "
            "Wrap a plain function in an nn.Module whose forward calls it."
        )
    if capture not in CAPTURES:
        raise ValueError(f"capture must be one of {CAPTURES}, got {capture!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if measure and repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if bytes not in BYTE_MODELS:
        raise ValueError(f"bytes must be one of {BYTE_MODELS}, got {bytes!r}")
    with _heap_frozen():
        report = _traced(model, example, custom_rules, ignore, leaf_modules, concrete_args, capture, strict,
                         registry, measure, repeats, fx_cache, mode)
    if bytes == "fused":  # kernel boundaries instead of one kernel per node (passes/fusion.py)
        fuse_bytes(report.nodes)
        report.modules = module_rows(model, report.nodes)
    return report


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """A trace makes hundreds of thousands of objects (graph nodes, meta tensors, records), enough to set off
    full garbage collections, and each of those walks the whole heap: torch, transformers and the model are
    about half a million objects (0.3-0.9 s per trace of a 70B Llama). Freezing what existed before keeps
    those collections to the trace's own objects. A heap someone else froze (a pre-fork server) is left so."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _traced(model: torch.nn.Module, example: Example, custom_rules: Mapping[Any, Callable] | None,
            ignore: Iterable[Any], leaf_modules: Iterable[type], concrete_args: Mapping[str, Any] | None,
            capture: str, strict: bool, registry: Registry | None, measure: bool, repeats: int,
            fx_cache: FxCache | None, mode: str) -> Report:
    _rules.load_extensions()
    args, kwargs = split_example(example)
    lazy_note = materialize_lazy(model, args, kwargs)
    base = registry if registry is not None else REGISTRY
    reg = as_custom_rules(custom_rules, base)
    rules = (base, *(x for kv in (custom_rules or {}).items() for x in kv))  # what the copy in ``reg`` was made of
    ctx = Counting(reg, list(ignore), train=mode == "train")
    leaf_types = tuple(leaf_modules) + tuple(t for t in (custom_rules or {}) if isinstance(t, type))

    def fx_job() -> Report:
        return _fx_report(model, args, kwargs, ctx, leaf_types, concrete_args, fx_cache, rules)

    check = not ignore and not custom_rules  # the eager cross-check prices ops the user ignores or re-prices

    def record_leaf(m: torch.nn.Module) -> bool:  # what the recorder keeps whole: what fx keeps as a leaf
        return ctx.registry.for_module(m) is not None or bool(leaf_types) and isinstance(m, leaf_types)

    def record_job() -> Report:
        return _record_report(model, args, kwargs, ctx, record_leaf, check_missing=check)

    def dynamo_job() -> Report:
        return _dynamo_report(model, args, kwargs, ctx, leaf_types, check_missing=check)

    jobs = {"fx": fx_job, "record": record_job, "dynamo": dynamo_job}
    report = _choose(capture, jobs, type(model).__name__)
    if lazy_note:
        report.notes.insert(0, lazy_note)
    report.mode = mode
    report.model = model
    note = checkpoint_note(report.nodes) if ctx.train else None
    if note:
        report.notes.append(note)
    _check_complete(report, strict)
    if measure:
        measure_report(report, model, args, kwargs, repeats, record_leaf)
    return report


def _fx_report(model: torch.nn.Module, args: tuple, kwargs: dict, ctx: Counting, leaf_types: tuple[type, ...],
               concrete_args: Mapping[str, Any] | None, fx_cache: FxCache | None = None, rules: tuple = ()) -> Report:
    """Symbolic tracing (partial where a submodule resists), meta shapes, costs; opaque leaves through dynamo."""
    concrete = concrete_defaults(model, args, kwargs, concrete_args)
    cap = cached_capture_fx(model, ctx.registry, leaf_types, concrete, fx_cache, rules)
    gm = cap.graph_module
    values = placeholder_values(gm, model, args, kwargs)
    fallback = OpaqueFallback(ctx)
    try:
        shapes = propagate_shapes(gm, values, opaque=fallback.shape)
    except ShapeError as err:
        if err.located or err.node is None:
            raise
        # Only now is the user's line worth a second trace that records stack traces (see shapes._shape_advice).
        again = capture_fx(model, ctx.registry, leaf_types, concrete_args=concrete, stack_traces=True).graph_module
        node = next((n for n in again.graph.nodes if n.name == err.node), None)
        raise locate(err, node.meta.get("stack_trace") if node is not None else None) from err.__cause__
    count_graph(gm, ctx.nested(fallback))
    count_bytes(gm)
    if ctx.train:
        count_backward(gm, values)
    notes = fallback_notes(gm, cap.untraceable, fallback)
    if shapes.note:
        notes.append(shapes.note)
    nodes = node_records(gm)
    return Report(
        model_name=type(model).__name__,
        nodes=nodes,
        modules=module_rows(model, nodes),
        input_shapes=input_shapes(args, kwargs),
        capture=Capture.FX_PARTIAL if cap.untraceable else Capture.FX,
        shape_mode=shapes.mode,
        notes=notes,
        graph_modules=[gm],
    )


def _record_report(model: torch.nn.Module, args: tuple, kwargs: dict, ctx: Counting,
                   is_leaf: Callable[[torch.nn.Module], bool], check_missing: bool) -> Report:
    """Record the eager call at the torch-function level; the modules ``is_leaf`` picks stay whole."""
    cap = capture_record(model, args, kwargs, is_leaf, grad=ctx.train)
    gm = cap.graph_module
    fallback = OpaqueFallback(ctx)

    def opaque(node: fx.Node, call: Any) -> Any:  # a custom op stands for a torch op; a leaf without a rule
        if isinstance(node.target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
            return equivalent_op(node.target, call, ctx)
        return fallback(node, call)

    count_graph(gm, ctx.nested(opaque))
    count_bytes(gm)
    if ctx.train:
        count_backward(gm, (*args, *kwargs.values()))
    return _checked_report(model, args, kwargs, Capture.RECORD, cap, node_records(gm), [gm], check_missing)


def _checked_report(model: torch.nn.Module, args: tuple, kwargs: dict, capture: Capture, cap: Any,
                    nodes: list[NodeRecord], graphs: list[fx.GraphModule], check_missing: bool) -> Report:
    """The report of a path that ran the model (record, dynamo), with its eager MAC check's shortfall."""
    missing = outside_graphs(cap, nodes) if check_missing else None
    return Report(
        model_name=type(model).__name__,
        nodes=nodes,
        modules=module_rows(model, nodes),
        input_shapes=input_shapes(args, kwargs),
        capture=capture,
        shape_mode=cap.shape_mode,
        notes=list(cap.notes) + ([missing] if missing else []),
        graph_modules=graphs,
        missing=missing,
    )


def _dynamo_report(model: torch.nn.Module, args: tuple, kwargs: dict, ctx: Counting, leaf_types: tuple[type, ...],
                   check_missing: bool) -> Report:
    """Capture ``model`` with dynamo and build its report. Submodules of ``leaf_types`` that have a rule are
    kept whole, as fx keeps them. ``check_missing`` compares the total with FlopCounterMode's (off when
    the user ignores ops or prices them with custom rules)."""
    def is_leaf(m: torch.nn.Module) -> bool:
        return isinstance(m, leaf_types) and ctx.registry.for_module(m) is not None

    # A reused block is a copy of its source's records, and a training step's backward differs between copies: the
    # first block's input needs no gradient, the next blocks' do. So in train mode every block is traced.
    cap = capture_dynamo(model, args, kwargs, is_leaf=is_leaf if leaf_types else None, reuse_blocks=not ctx.train,
                         grad=ctx.train)
    return _checked_report(model, args, kwargs, Capture.DYNAMO, cap, count_capture(cap, ctx), cap.graph_modules,
                           check_missing)


def _choose(capture: str, jobs: dict[str, Callable[[], Report]], name: str) -> Report:
    """Run the capture path asked for. ``auto`` tries fx, then record, then dynamo, each when the one before
    cannot capture the model, saying why in one note; if all fail, one error lists what each path hit."""
    if capture != "auto":
        return jobs[capture]()
    failed: list[tuple[str, str]] = []
    for path in ("fx", "record", "dynamo"):
        try:
            report = jobs[path]()
        except CaptureError as err:  # a shape error means the example does not fit: no other path would help
            failed.append((path, _why(err, name)))
            continue
        if failed:
            report.notes.insert(0, "; ".join(f"{_FAILED[p]} {why}" for p, why in failed) + f"; used {path}")
        return report
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


