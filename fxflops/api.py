"""``trace_flops``, the one orchestrator: choose a capture, run the passes, assemble the report; and ``sweep``,
which runs it over a grid of sizes.

capture (:mod:`fxflops.capture`) → passes (:mod:`fxflops.passes`: shapes, costs, records) → :class:`Report`.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import inspect
import statistics
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
import torch.fx as fx

from . import rules as _rules  # noqa: F401 - importing fills the registry
from .capture.dynamo import capture_dynamo
from .capture.fx import FxCapture, capture_fx
from .capture.record import capture_record
from .errors import CaptureError, FxFlopsError, ShapeError, UncountedOpError, UncountedOpWarning, first_line, warn_user
from .passes.backward import checkpoint_note, count_backward, families
from .passes.bytes import count_bytes
from .passes.costs import Counting, count_graph
from .passes.dynamo_costs import OpaqueFallback, count_capture, equivalent_op, fallback_notes, outside_graphs
from .passes.latency import apply_timings, model_device, real_example, time_dynamo, time_fx
from .passes.records import module_rows, node_records
from .passes.shapes import locate, materialize_lazy, propagate_shapes
from .report.report import Report
from .report.sweep import Sweep
from .rules.registry import REGISTRY, Registry, as_custom_rules
from .types import OP_KINDS, Capture, NodeRecord, Status

Example = torch.Tensor | tuple | list | Mapping[str, Any] | None
CAPTURES = ("auto", "fx", "record", "dynamo")
MODES = ("infer", "train")


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
    """
    return _trace(model, example, custom_rules=custom_rules, ignore=ignore, leaf_modules=leaf_modules,
                  concrete_args=concrete_args, capture=capture, strict=strict, registry=registry, measure=measure,
                  repeats=repeats, mode=mode)


@dataclass
class FxCache:
    """fx captures kept across the points of a sweep. Symbolic tracing depends on the model and the tracing
    options, never on the input shapes, so it runs once; dynamo specialises its graphs on shapes and is rerun."""

    entries: dict[tuple, tuple] = field(default_factory=dict)
    hits: int = 0  # points that reused a capture (not counting an fx failure that was remembered)


def _trace(model: torch.nn.Module, example: Example = None, *, custom_rules: Mapping[Any, Callable] | None = None,
           ignore: Iterable[Any] = (), leaf_modules: Iterable[type] = (), concrete_args: Mapping[str, Any] | None = None,
           capture: str = "auto", strict: bool = False, registry: Registry | None = None, measure: bool = False,
           repeats: int = 5, fx_cache: FxCache | None = None, mode: str = "infer") -> Report:
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
    with _heap_frozen():
        return _traced(model, example, custom_rules, ignore, leaf_modules, concrete_args, capture, strict,
                       registry, measure, repeats, fx_cache, mode)


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
        _measure(report, model, args, kwargs, repeats, record_leaf)
    return report


def _measure(report: Report, model: torch.nn.Module, args: tuple, kwargs: dict, repeats: int,
             record_leaf: Callable[[torch.nn.Module], bool]) -> None:
    """Time every node on real tensors (:mod:`fxflops.passes.latency`) and add the times to the records."""
    device = model_device(model)
    args, kwargs = real_example((args, kwargs), device)
    try:
        if report.capture == Capture.DYNAMO:
            timed = time_dynamo(model, args, kwargs, device, len(report.graph_modules) > 1, mode=report.shape_mode,
                                repeats=repeats)
        elif report.capture == Capture.RECORD:  # recorded again on real tensors: a meta recording holds meta constants
            gm = capture_record(model, args, kwargs, record_leaf, meta=False).graph_module
            timed = time_fx(gm, (*args, *kwargs.values()), device, repeats=repeats)
        else:
            gm = report.graph_modules[0]
            timed = time_fx(gm, _placeholder_values(gm, model, args, kwargs), device, repeats=repeats)
    except FxFlopsError:
        raise
    except Exception as exc:  # noqa: BLE001 - the count is done; say why the timing run failed, in the user's terms
        raise FxFlopsError(
            f"measure=True could not run {type(model).__name__} on real tensors on {device}: {first_line(exc)}. "
            "What to do: pass a real example on the model's device (a meta tensor is replaced by a random one, "
            "but not inside other objects such as a KV cache), or leave measure off."
        ) from exc
    done = apply_timings(report.nodes, timed.medians())
    report.modules = module_rows(model, report.nodes)
    report.measured_on = str(device)
    ops = sum(n.kind in OP_KINDS for n in report.nodes)
    missed = f" ({ops - done} of {ops} op nodes had no counterpart in the timed run)" if done < ops else ""
    report.notes.append(f"measured on {device}: each node's median of {repeats} runs; they sum to "
                        f"{1e3 * (report.total_measured or 0):.3g} ms, the timed forward took "
                        f"{1e3 * statistics.median(timed.forwards):.3g} ms{missed}")


def _fx_report(model: torch.nn.Module, args: tuple, kwargs: dict, ctx: Counting, leaf_types: tuple[type, ...],
               concrete_args: Mapping[str, Any] | None, fx_cache: FxCache | None = None, rules: tuple = ()) -> Report:
    """Symbolic tracing (partial where a submodule resists), meta shapes, costs; opaque leaves through dynamo."""
    concrete = _concrete(model, args, kwargs, concrete_args)
    cap = _capture_fx(model, ctx, leaf_types, concrete, fx_cache, rules)
    gm = cap.graph_module
    values = _placeholder_values(gm, model, args, kwargs)
    try:
        shapes = propagate_shapes(gm, values)
    except ShapeError as err:
        if err.located or err.node is None:
            raise
        # Only now is the user's line worth a second trace that records stack traces (see shapes._shape_advice).
        again = capture_fx(model, ctx.registry, leaf_types, concrete_args=concrete, stack_traces=True).graph_module
        node = next((n for n in again.graph.nodes if n.name == err.node), None)
        raise locate(err, node.meta.get("stack_trace") if node is not None else None) from err.__cause__
    fallback = OpaqueFallback(ctx)
    count_graph(gm, ctx.nested(fallback))
    count_bytes(gm)
    if ctx.train:
        count_backward(gm, families(ctx.registry), values)
    notes = fallback_notes(gm, cap.untraceable, fallback)
    if shapes.note:
        notes.append(shapes.note)
    nodes = node_records(gm)
    return Report(
        model_name=type(model).__name__,
        nodes=nodes,
        modules=module_rows(model, nodes),
        input_shapes=_input_shapes(args, kwargs),
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
        count_backward(gm, families(ctx.registry), (*args, *kwargs.values()))
    return _checked_report(model, args, kwargs, Capture.RECORD, cap, node_records(gm), [gm], check_missing)


def _checked_report(model: torch.nn.Module, args: tuple, kwargs: dict, capture: Capture, cap: Any,
                    nodes: list[NodeRecord], graphs: list[fx.GraphModule], check_missing: bool) -> Report:
    """The report of a path that ran the model (record, dynamo), with its eager MAC check's shortfall."""
    missing = outside_graphs(cap, nodes) if check_missing else None
    return Report(
        model_name=type(model).__name__,
        nodes=nodes,
        modules=module_rows(model, nodes),
        input_shapes=_input_shapes(args, kwargs),
        capture=capture,
        shape_mode=cap.shape_mode,
        notes=list(cap.notes) + ([missing] if missing else []),
        graph_modules=graphs,
        missing=missing,
    )


def _capture_fx(model: torch.nn.Module, ctx: Counting, leaf_types: tuple[type, ...], concrete: dict | None,
                fx_cache: FxCache | None, rules: tuple) -> FxCapture:
    """``capture_fx``, or with ``fx_cache`` a fresh copy of the graph traced for the same model, the same
    ``rules`` (the registry and custom rules the counting registry was made of) and the same options (the
    passes write into ``node.meta``, so every report gets graph nodes of its own)."""
    if fx_cache is None:
        return capture_fx(model, ctx.registry, leaf_types, concrete_args=concrete)
    concrete = concrete or {}
    key = (id(model), model.training, tuple(map(id, rules)), leaf_types,
           tuple(sorted((k, id(v)) for k, v in concrete.items())))
    if key not in fx_cache.entries:
        try:
            cap: FxCapture | CaptureError = capture_fx(model, ctx.registry, leaf_types, concrete_args=concrete or None)
        except CaptureError as err:  # kept too: the next point goes straight to the fallback
            cap = err
        # the objects behind the ids are held, so that no other object can take an id while the cache lives
        fx_cache.entries[key] = (cap, (model, rules, list(concrete.values())))
    else:
        fx_cache.hits += not isinstance(fx_cache.entries[key][0], CaptureError)
    cap = fx_cache.entries[key][0]
    if isinstance(cap, CaptureError):
        raise cap
    gm = cap.graph_module
    return FxCapture(fx.GraphModule(gm, copy.deepcopy(gm.graph), type(model).__name__), list(cap.untraceable))


def sweep(build: Callable[..., tuple[torch.nn.Module, Example]], *, trace_options: Mapping[str, Any] | None = None,
          **values: Sequence[int]) -> Sweep:
    """Run :func:`trace_flops` at every point of the grid of ``values`` and fit each total exactly.

    ``build(**point)`` returns ``(model, example)`` for one point, e.g.
    ``sweep(lambda T: (model, {"input_ids": torch.zeros(1, T, dtype=torch.long)}), T=[128, 256, 512, 1024])``.
    Several symbols (``B=[1, 2, 4], T=[...]``) sweep every combination. ``trace_options`` are passed to
    :func:`trace_flops`. Returning the same model at every point lets the fx capture be traced once.
    """
    if not values:
        raise FxFlopsError("sweep needs the values to vary, e.g. sweep(build, T=[128, 256, 512, 1024])")
    symbols = tuple(values)
    axes = []
    for s, vs in values.items():
        try:
            axis = sorted({int(v) for v in vs})
        except (TypeError, ValueError):
            raise FxFlopsError(f"sweep values must be integers: {s}={vs!r}") from None
        if len(axis) < 2:
            raise FxFlopsError(f"{s} takes {len(axis)} value(s): a sweep needs at least 2 "
                               "(and degree + 2 for a formula of that degree to be checked)")
        axes.append(axis)
    options = dict(trace_options or {})
    cache = FxCache()
    points, reports = [], []
    for combo in product(*axes):
        point = dict(zip(symbols, combo))
        built = build(**point)
        if not (isinstance(built, tuple) and len(built) == 2 and isinstance(built[0], torch.nn.Module)):
            raise FxFlopsError(f"sweep's build({_fmt(point)}) must return (model, example), got {type(built).__name__}")
        reports.append(_trace(built[0], built[1], fx_cache=cache, **options))
        points.append(point)
    return Sweep(symbols, points, reports, reused=cache.hits)


def _fmt(point: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def _dynamo_report(model: torch.nn.Module, args: tuple, kwargs: dict, ctx: Counting, leaf_types: tuple[type, ...],
                   check_missing: bool) -> Report:
    """Capture ``model`` with dynamo and build its report. Submodules of ``leaf_types`` that have a rule are
    kept whole, as fx keeps them. ``check_missing`` compares the total with FlopCounterMode's (off when
    the user ignores ops or prices them with custom rules)."""
    def is_leaf(m: torch.nn.Module) -> bool:
        return isinstance(m, leaf_types) and ctx.registry.for_module(m) is not None

    # A reused block is a copy of its source's records, and a training step's backward differs between copies: the
    # first block's input needs no gradient, the next blocks' do. So in train mode every block is traced.
    cap = capture_dynamo(model, args, kwargs, is_leaf=is_leaf if leaf_types else None, reuse_blocks=not ctx.train)
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


def split_example(example: Example) -> tuple[tuple, dict]:
    if example is None:
        return (), {}
    if isinstance(example, torch.Tensor):
        return (example,), {}
    if isinstance(example, (tuple, list)):
        if example and all(isinstance(d, int) and not isinstance(d, bool) for d in example):
            # (1, 3, 224, 224) is a shape, not a tuple of inputs: torch would fail deep inside the first op
            raise TypeError(f"example {tuple(example)} is a shape, not an input: pass a tensor, "
                            f"e.g. torch.randn{tuple(example)}")
        return tuple(example), {}
    if isinstance(example, Mapping):
        return (), dict(example)
    raise TypeError(
        f"example must be a tensor, a tuple of positional arguments or a dict of keyword arguments, "
        f"got {type(example).__name__}"
    )


def _forward_params(model: torch.nn.Module) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return []


def _concrete(model: torch.nn.Module, args: tuple, kwargs: dict, user: Mapping[str, Any] | None) -> dict | None:
    """Forward parameters the example leaves out are fixed to their defaults, so that
    ``if mask is not None`` takes the branch the real call would take."""
    concrete = dict(user or {})
    for i, p in enumerate(_forward_params(model)):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or i < len(args) or p.name in kwargs or p.name in concrete:
            continue
        if p.default is not p.empty:
            concrete[p.name] = p.default
    return concrete or None


def _placeholder_values(gm: fx.GraphModule, model: torch.nn.Module, args: tuple, kwargs: dict) -> tuple:
    """Values for the graph's placeholders, taken from the example by position or name. A catch-all
    (``*args``, ``**kwargs``) gets what the example gives beyond the named parameters: often nothing, an
    empty tuple or dict, exactly as in a real call."""
    params = _forward_params(model)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    named = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    bound: dict[str, Any] = dict(zip((p.name for p in positional), args))
    bound.update(kwargs)
    values = []
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for i, n in enumerate(placeholders):
        name = n.target.lstrip("*")
        if n.target.startswith("**"):
            values.append({k: v for k, v in kwargs.items() if k not in named})
        elif n.target.startswith("*"):
            values.append(tuple(args[len(positional):]))
        elif name in bound:
            values.append(bound[name])
        elif i < len(args) and not params:
            values.append(args[i])
        elif n.args:
            values.append(n.args[0])
        else:
            raise FxFlopsError(f"the example gives no value for the model's input {name!r}")
    return tuple(values)


def _input_shapes(args: tuple, kwargs: dict) -> list:
    def one(v: Any) -> Any:
        return tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__

    return [one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]
