"""fx captures kept across the points of a sweep (:func:`fxflops.sweep`): weakly keyed by the model, so a cache never
keeps a user's model alive, at most :data:`MAX_ENTRIES` per model, and emptied by :func:`clear_caches`."""
from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass, field, replace

import torch
import torch.fx as fx

from ..errors import CaptureError
from ..rules.registry import Registry
from ..captured import Captured
from .fx import capture_fx


@dataclass(eq=False)  # hashed by identity: live caches are kept in a WeakSet
class FxCache:
    """fx captures kept across the points of a sweep. Symbolic tracing depends on the model and the tracing
    options, never on the input shapes, so it runs once; dynamo specialises its graphs on shapes and is rerun."""

    entries: "weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, tuple]]" = field(
        default_factory=weakref.WeakKeyDictionary)
    hits: int = 0  # points that reused a capture (not counting an fx failure that was remembered)

    def __post_init__(self) -> None:
        _live.add(self)

    def clear(self) -> None:
        self.entries.clear()


MAX_ENTRIES = 16  # captures kept per model (options, training flag); the oldest goes first
_live: "weakref.WeakSet[FxCache]" = weakref.WeakSet()


def clear_caches() -> None:
    """Empty every live :class:`FxCache`."""
    for cache in list(_live):
        cache.clear()


def cached_capture_fx(model: torch.nn.Module, registry: Registry, leaf_types: tuple[type, ...], concrete: dict | None,
                      fx_cache: FxCache | None, rules: tuple) -> Captured:
    """``capture_fx``, or with ``fx_cache`` a fresh copy of the graph traced for the same model, the same
    ``rules`` (the registry and custom rules the counting registry was made of) and the same options (the
    passes write into ``node.meta``, so every report gets graph nodes of its own)."""
    if fx_cache is None:
        return capture_fx(model, registry, leaf_types, concrete_args=concrete)
    concrete = concrete or {}
    key = (model.training, tuple(map(id, rules)), leaf_types, tuple(sorted((k, id(v)) for k, v in concrete.items())))
    entries = fx_cache.entries.setdefault(model, {})
    if key not in entries:
        try:
            cap: Captured | CaptureError = capture_fx(model, registry, leaf_types, concrete_args=concrete or None)
        except CaptureError as err:  # kept too: the next point goes straight to the fallback
            cap = err
        if len(entries) >= MAX_ENTRIES:
            del entries[next(iter(entries))]
        # the rules and concrete values behind the ids are held, so that no other object can take an id while the
        # entry lives; the model is the weak key, so it is not
        entries[key] = (cap, (rules, list(concrete.values())))
    else:
        fx_cache.hits += not isinstance(entries[key][0], CaptureError)
    cap = entries[key][0]
    if isinstance(cap, CaptureError):
        raise cap
    gm = cap.graph_module
    return replace(cap, graphs=[fx.GraphModule(gm, copy.deepcopy(gm.graph), type(model).__name__)],
                   untraceable=list(cap.untraceable))
