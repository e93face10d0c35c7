"""The capture contract: what every capture path (:mod:`fxflops.capture`) hands to the passes.

A :class:`Captured` holds the graphs and everything the passes must know about them, whichever path made them:
the example values of the placeholders (for the shape and backward passes), the shape mode, the notes, and, for
the paths that leave part of the model out of their graphs, how to price that part (modules kept whole, blocks
reused, graphs that ran more than once, the eager MAC check). :func:`fxflops.pipeline.annotate.annotate` runs the
same passes over any of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx

from .types import Capture

__all__ = ["Captured", "Untraceable", "Reuse", "LeafCall", "INNER"]

# node.meta key: the graph that priced an opaque node by recording its call (an untraceable leaf, a wrapped function),
# so that the passes after the costs (bytes, backward, saved activations) price the node by its recorded ops too
INNER = "fxflops_inner"


@dataclass
class Untraceable:
    """A submodule symbolic tracing could not go through, kept as a leaf."""

    path: str
    cls: str
    reason: str
    where: str | None

    def describe(self) -> str:
        at = f" at {self.where}" if self.where else ""
        return f"{self.path or '<root>'} ({self.cls}): {self.reason}{at}"


@dataclass
class Reuse:
    """A block that was not traced because an identical block (``source``) was."""

    path: str
    source: str
    cls: str


@dataclass
class LeafCall:
    """A call of a module kept whole (it has a custom rule), with the values it got and returned."""

    path: str
    module: torch.nn.Module
    args: tuple
    kwargs: dict
    out: Any


@dataclass
class Captured:
    """The graphs of one capture and what the passes need to know about them."""

    path: Capture
    graphs: list[fx.GraphModule]
    # "meta", "fake" or "real" when the capture left a value on every node; "" when the shape pass must run
    shape_mode: str = ""
    # the example values of the first graph's placeholders, in order (None: the placeholders hold their own values)
    inputs: tuple | None = None
    notes: list[str] = field(default_factory=list)
    untraceable: list[Untraceable] = field(default_factory=list)  # fx: submodules kept as leaves
    runs: list[int] = field(default_factory=list)  # times each graph ran (dynamo); each run is counted
    reused: list[Reuse] = field(default_factory=list)  # blocks priced as copies of an identical one (dynamo)
    leaves: list[LeafCall] = field(default_factory=list)  # modules kept whole, outside the graphs (dynamo)
    # MACs FlopCounterMode saw in an eager run, by module path ("" = all): a capture that counts fewer ran code
    # outside its graphs (fxflops.passes.eager_check.outside_graphs)
    eager_macs: dict[str, int] | None = None

    @property
    def graph_module(self) -> fx.GraphModule:
        """The first graph (the only one, except on the dynamo path)."""
        return self.graphs[0]
