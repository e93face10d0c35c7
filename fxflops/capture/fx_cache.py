"""fx captures kept across the points of a sweep (:func:`fxflops.sweep`)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
import torch.fx as fx

from ..errors import CaptureError
from ..rules.registry import Registry
from ..captured import Captured
from .fx import capture_fx


@dataclass
class FxCache:
    """fx captures kept across the points of a sweep. Symbolic tracing depends on the model and the tracing
    options, never on the input shapes, so it runs once; dynamo specialises its graphs on shapes and is rerun."""

    entries: dict[tuple, tuple] = field(default_factory=dict)
    hits: int = 0  # points that reused a capture (not counting an fx failure that was remembered)


def cached_capture_fx(model: torch.nn.Module, registry: Registry, leaf_types: tuple[type, ...], concrete: dict | None,
                      fx_cache: FxCache | None, rules: tuple) -> Captured:
    """``capture_fx``, or with ``fx_cache`` a fresh copy of the graph traced for the same model, the same
    ``rules`` (the registry and custom rules the counting registry was made of) and the same options (the
    passes write into ``node.meta``, so every report gets graph nodes of its own)."""
    if fx_cache is None:
        return capture_fx(model, registry, leaf_types, concrete_args=concrete)
    concrete = concrete or {}
    key = (id(model), model.training, tuple(map(id, rules)), leaf_types,
           tuple(sorted((k, id(v)) for k, v in concrete.items())))
    if key not in fx_cache.entries:
        try:
            cap: Captured | CaptureError = capture_fx(model, registry, leaf_types, concrete_args=concrete or None)
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
    return replace(cap, graphs=[fx.GraphModule(gm, copy.deepcopy(gm.graph), type(model).__name__)],
                   untraceable=list(cap.untraceable))
