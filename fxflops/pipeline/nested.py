"""Nested counts: a rule that must price a user callable (a loss's ``distance_function``) asks its
:class:`~fxflops.rules.registry.Call` with ``call.price(fn, *args)``, and it is counted here in the outer
count's :class:`~fxflops.passes.costs.Counting` context, so the user's registry, custom rules and ``ignore``
apply inside it too, and what it cannot price makes the outer node partial rather than silently 0.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..capture.dynamo import capture_dynamo
from ..capture.fx import capture_fx
from ..errors import CaptureError
from ..passes.costs import Counting, count_graph, left_out_of, total
from ..passes.shapes import propagate_shapes
from ..tensors import to_meta
from ..types import Cost
from .annotate import annotate_records
from .opaque import OpaqueFallback


def price_callable(ctx: Counting, fn: Callable, args: tuple, kwargs: dict) -> tuple[Cost, Any, list[str]]:
    """``fn(*args, **kwargs)`` traced with fx (dynamo where fx cannot), shapes on meta, priced in ``ctx``."""
    args, kwargs = to_meta((tuple(args), dict(kwargs)))
    try:
        cap = capture_fx(fn, ctx.registry, concrete_args=kwargs or None)
    except CaptureError:
        return _through_dynamo(ctx, fn, args, kwargs)
    gm = cap.graph_module
    propagate_shapes(gm, args, allow_real=False)
    count_graph(gm, ctx.nested(OpaqueFallback(ctx, annotate_records)))
    nodes = list(gm.graph.nodes)
    out = next(n for n in reversed(nodes) if n.op == "output").args[0]
    value = out.meta.get("val") if isinstance(out, torch.fx.Node) else out
    return total(nodes), value, left_out_of(nodes)


def _through_dynamo(ctx: Counting, fn: Callable, args: tuple, kwargs: dict) -> tuple[Cost, Any, list[str]]:
    cap = capture_dynamo(fn, args, kwargs)
    records = annotate_records(cap, ctx)
    cost = sum((r.fwd for r in records), Cost())
    left = sorted({r.target for r in records if r.status.incomplete})
    outs = [r for r in records if r.kind == "output"]
    value = torch.empty(outs[-1].input_shapes[0], device="meta") if outs and outs[-1].input_shapes else None
    return cost, value, left
