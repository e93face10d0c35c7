"""The user's example against the model's forward: positional and keyword inputs, the defaults fx must fix, the
values of a traced graph's placeholders, and the shapes the report shows."""
from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch
import torch.fx as fx

from ..errors import FxFlopsError, ShapeError

Example = torch.Tensor | tuple | list | Mapping[str, Any] | None


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


def forward_params(model: torch.nn.Module) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return []


def check_keywords(model: torch.nn.Module, kwargs: Mapping[str, Any]) -> None:
    """A keyword the forward does not take is an error on every path: fx and dynamo would leave it unused without a
    word (a misspelt ``mask`` is then never applied) and the eager call raises deep inside the model."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # no signature to check against (a C-implemented forward): torch will say
        return
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ShapeError(f"{type(model).__name__}.forward takes no input {names}: its keyword inputs are "
                         f"{', '.join(accepted) or '(none)'}; fix the name")


def concrete_defaults(model: torch.nn.Module, args: tuple, kwargs: dict, user: Mapping[str, Any] | None) -> dict | None:
    """Forward parameters the example leaves out are fixed to their defaults, so that
    ``if mask is not None`` takes the branch the real call would take."""
    concrete = dict(user or {})
    for i, p in enumerate(forward_params(model)):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or i < len(args) or p.name in kwargs or p.name in concrete:
            continue
        if p.default is not p.empty:
            concrete[p.name] = p.default
    return concrete or None


def placeholder_values(gm: fx.GraphModule, model: torch.nn.Module, args: tuple, kwargs: dict) -> tuple:
    """Values for the graph's placeholders, taken from the example by position or name. A catch-all
    (``*args``, ``**kwargs``) gets what the example gives beyond the named parameters: often nothing, an
    empty tuple or dict, exactly as in a real call."""
    params = forward_params(model)
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


def input_shapes(args: tuple, kwargs: dict) -> list:
    def one(v: Any) -> Any:
        return tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__

    return [one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]
