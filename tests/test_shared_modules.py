"""A module shared between owners has one path (its first owner's); each call is charged to the owner that made
it, on every capture path. The per-module table is what users copy into papers."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from fxflops import trace_flops

CAPTURES = ["fx", "record", "dynamo"]


class Inner(nn.Module):
    def __init__(self, m: nn.Module):
        super().__init__()
        self.submod = m

    def forward(self, x):
        return self.submod(x)


class SharedLeaf(nn.Module):
    """The issue's example: one Linear(10, 10) called through two owners, 100 MACs per call."""

    def __init__(self):
        super().__init__()
        lin = nn.Linear(10, 10)
        self.submod1, self.submod2 = Inner(lin), Inner(lin)

    def forward(self, x):
        return self.submod1(x) + self.submod2(x)


@pytest.mark.parametrize("capture", CAPTURES)
def test_shared_leaf_is_charged_to_each_caller(capture: str) -> None:
    r = trace_flops(SharedLeaf(), torch.randn(1, 10), capture=capture, strict=True)
    macs = {k: v.macs for k, v in r.modules.items()}
    # each owner made one call; the shared leaf, under its one (canonical) name, ran twice
    assert macs == {"": 200, "submod1": 100, "submod1.submod": 200, "submod2": 100}
    assert r.modules["submod2"].params == r.modules["submod1"].params == 110  # it owns the weights too
    assert r.total_params == 110  # counted once


class SharedBlock(nn.Module):
    """A shared block that is traced through (not a leaf): Linear(8, 16) → ReLU → Linear(16, 8) in three stages."""

    def __init__(self):
        super().__init__()
        block = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))
        self.stage1, self.stage2, self.stage3 = Inner(block), Inner(block), Inner(block)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.stage3(self.stage2(self.stage1(x))))


@pytest.mark.parametrize("capture", CAPTURES)
def test_shared_traced_block_is_charged_to_each_caller(capture: str) -> None:
    r = trace_flops(SharedBlock(), torch.randn(3, 8), capture=capture, strict=True)
    block_macs = 3 * (8 * 16 + 16 * 8)  # 768 per call, on 3 rows
    block_flops = 2 * block_macs + 3 * 16 + 3 * 16 + 3 * 8  # + bias, relu, bias
    rows = {k: (v.macs, v.flops) for k, v in r.modules.items()}
    assert rows["stage1"] == rows["stage2"] == rows["stage3"] == (block_macs, block_flops)
    assert rows["stage1.submod"] == (3 * block_macs, 3 * block_flops)  # the block ran three times
    assert rows["stage1.submod.0"][0] == 3 * 3 * 8 * 16
    assert rows[""][0] == 3 * block_macs + 3 * 8 * 2 == r.total_macs
