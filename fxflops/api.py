"""``trace_flops``: capture → shapes → costs → report."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Mapping

import torch
import torch.fx as fx

from . import rules as _rules  # noqa: F401 - importing fills the registry
from .capture_fx import capture_fx
from .counting import count_graph
from .errors import FxFlopsError
from .fallback import DynamoFallback, choose_capture, dynamo_report, fallback_notes
from .registry import REGISTRY, Registry, as_custom_rules
from .report import Report, module_rows, node_records
from .shapes import materialize_lazy, propagate_shapes

Example = torch.Tensor | tuple | list | Mapping[str, Any] | None
CAPTURES = ("auto", "fx", "dynamo")


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
) -> Report:
    """Count the MACs, FLOPs and parameters of ``model`` on ``example`` and return a :class:`Report`.

    ``example`` is a tensor, a tuple of positional arguments, or a dict of keyword arguments; it may
    live on the ``meta`` device. Shapes are propagated without computing anything where possible.

    ``custom_rules`` maps module classes, functions or Tensor method names to ``fn(call) -> Cost``
    (custom-ruled modules are kept as leaves). ``ignore`` lists ops counted as 0: module classes,
    functions, or op/method names such as ``"add"``. ``leaf_modules`` are module classes kept whole.
    ``capture`` is ``"auto"`` (fx, then dynamo), ``"fx"`` or ``"dynamo"``. ``strict=True`` raises
    when an op has no rule instead of counting it as 0 with a warning.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"trace_flops needs a torch.nn.Module, got {type(model).__name__}. "
            "Wrap a plain function in an nn.Module whose forward calls it."
        )
    if capture not in CAPTURES:
        raise ValueError(f"capture must be one of {CAPTURES}, got {capture!r}")
    args, kwargs = split_example(example)
    lazy_note = materialize_lazy(model, args, kwargs)
    reg = as_custom_rules(custom_rules, registry if registry is not None else REGISTRY)
    leaf_types = tuple(leaf_modules) + tuple(t for t in (custom_rules or {}) if isinstance(t, type))

    def fx() -> Report:
        return _fx_report(model, args, kwargs, reg, leaf_types, concrete_args, ignore, strict)

    def dynamo() -> Report:
        return dynamo_report(model, args, kwargs, reg, ignore, strict, _input_shapes(args, kwargs), leaf_types,
                             check_missing=not ignore and not custom_rules)

    report = choose_capture(capture, fx, dynamo, type(model).__name__)
    if lazy_note:
        report.notes.insert(0, lazy_note)
    return report


def _fx_report(
    model: torch.nn.Module,
    args: tuple,
    kwargs: dict,
    reg: Registry,
    leaf_types: tuple[type, ...],
    concrete_args: Mapping[str, Any] | None,
    ignore: Iterable[Any],
    strict: bool,
) -> Report:
    """Symbolic tracing (partial where a submodule resists), meta shapes, costs; opaque leaves through dynamo."""
    cap = capture_fx(model, reg, leaf_types, concrete_args=_concrete(model, args, kwargs, concrete_args))
    gm = cap.graph_module
    shapes = propagate_shapes(gm, _placeholder_values(gm, model, args, kwargs))
    fallback = DynamoFallback(reg, ignore)
    count_graph(gm, reg, ignore, strict, fallback=fallback)
    notes = fallback_notes(gm, cap.untraceable, fallback)
    if shapes.note:
        notes.append(shapes.note)
    nodes = node_records(gm)
    return Report(
        model_name=type(model).__name__,
        nodes=nodes,
        modules=module_rows(model, nodes),
        input_shapes=_input_shapes(args, kwargs),
        capture="fx (partial)" if cap.untraceable else "fx",
        shape_mode=shapes.mode,
        notes=notes,
        graph_module=gm,
        graph_modules=[gm],
    )


def split_example(example: Example) -> tuple[tuple, dict]:
    if example is None:
        return (), {}
    if isinstance(example, torch.Tensor):
        return (example,), {}
    if isinstance(example, (tuple, list)):
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
    """Positional values for the graph's placeholders, taken from the example by position or name."""
    bound: dict[str, Any] = {}
    params = [p for p in _forward_params(model) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for p, a in zip(params, args):
        bound[p.name] = a
    bound.update(kwargs)
    values = []
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for i, n in enumerate(placeholders):
        name = n.target.lstrip("*")
        if name in bound:
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
