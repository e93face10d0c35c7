"""Shared helpers for the rule tests: run fxflops, run torch's own FlopCounterMode, pick op nodes."""
from __future__ import annotations

import inspect
import shutil

import pytest

import torch
from torch.utils.flop_counter import FlopCounterMode

import fxflops
from fxflops.types import OP_KINDS as OP_NODES


def count(model: torch.nn.Module, *inputs, **kw) -> fxflops.Report:
    """fxflops report of ``model`` on positional ``inputs``; every op must have a rule."""
    return fxflops.trace_flops(model, tuple(inputs), strict=True, **kw)


def torch_macs(model: torch.nn.Module, *inputs) -> int:
    """MACs by torch's own counter: its FLOP total is 2 per multiply-accumulate of the aten matmuls/convs."""
    with FlopCounterMode(display=False) as fc:
        model(*inputs)
    return fc.get_total_flops() // 2


def ops(report: fxflops.Report, op: str | None = None) -> list[fxflops.NodeRecord]:
    """Op nodes of the report (placeholders/get_attr/output left out), optionally only those of type ``op``."""
    return [n for n in report.nodes if n.kind in OP_NODES and (op is None or n.op == op)]


def only(report: fxflops.Report, op: str) -> fxflops.NodeRecord:
    """The single op node of type ``op``."""
    found = ops(report, op)
    assert len(found) == 1, [(n.name, n.op) for n in ops(report)]
    return found[0]


class Fn(torch.nn.Module):
    """Wraps a function of up to four tensors as a module whose forward fx traces.
    (fx cannot trace ``*args`` forwards, hence the fixed parameters.)"""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.arity = len(inspect.signature(fn).parameters)

    def forward(self, a, b=None, c=None, d=None):
        return self.fn(*(a, b, c, d)[: self.arity])


class One(torch.nn.Module):
    """Holds one layer as a child, so it becomes a call_module node (fx never makes the root a leaf)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


# Drawing goes through Graphviz's `dot` program, a system package pip cannot install: on a machine with
# only Python the tests that draw skip, saying so, and .ci/run installs graphviz so they run in CI.
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's `dot` is not on PATH (apt install graphviz, brew install graphviz or "
           "conda install -c conda-forge graphviz); .ci/run installs it",
)
