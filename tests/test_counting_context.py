"""One counting context for the whole count: nested prices honour the user's rules, warnings point at the user."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

import fxflops
from fxflops import Cost, Status, trace_flops

N, D = 4, 8  # a (4, 8) triplet batch


class Holder(nn.Module):
    """The loss as a child (a leaf fx keeps whole), as in a training wrapper."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, a, p, n):
        return self.loss(a, p, n)


def _triplet(distance=lambda x, y: (x - y).abs().sum(-1)):
    return Holder(nn.TripletMarginWithDistanceLoss(distance_function=distance)), tuple(torch.randn(N, D) for _ in range(3))


def _distance_flops():
    return 3 * N * D  # sub, abs and the sum: one FLOP per input element each (the reduce convention)


def test_nested_distance_is_priced_by_its_ops():
    loss, xs = _triplet()
    r = trace_flops(loss, xs, strict=True)
    assert r.capture == "fx"
    # two distances, then subtract/add/clamp per row, then the mean (N adds + 1 divide)
    assert r.total_flops == 2 * _distance_flops() + 3 * N + N + 1


def test_nested_distance_honours_ignore():
    loss, xs = _triplet()
    r = trace_flops(loss, xs, ignore=["abs", "sub", "sum"], strict=True)
    assert r.total_flops == 3 * N + N + 1  # the distance's own ops are ignored inside the nested count too


def test_nested_distance_honours_custom_rules():
    loss, xs = _triplet()
    r = trace_flops(loss, xs, custom_rules={"abs": lambda call: Cost(0, 100)}, strict=True)
    assert r.total_flops == 2 * (_distance_flops() - N * D + 100) + 3 * N + N + 1


def test_nested_gap_makes_the_node_partial_and_strict_raises():
    loss, xs = _triplet(lambda x, y: torch.fft.rfft(x - y).abs().sum(-1))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        r = trace_flops(loss, xs)
    node = next(n for n in r.nodes if n.op == "triplet_margin_with_distance_loss")
    assert node.status == Status.PARTIAL and node.left_out == ["fft_rfft"]
    assert r.audit().incomplete
    with pytest.raises(fxflops.UncountedOpError, match="priced only in part"):
        trace_flops(loss, xs, strict=True)


class Uncounted(nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x).abs()


class DynamoOnly(nn.Module):
    """fx cannot trace a branch on a tensor's value; dynamo can, on a real example."""

    def forward(self, x):
        if x.sum() > 0:
            return torch.fft.rfft(x).abs()
        return torch.fft.rfft(-x).abs()


@pytest.mark.parametrize("model, capture", [(Uncounted(), "fx"), (Uncounted(), "dynamo"), (DynamoOnly(), "auto")])
def test_the_uncounted_warning_points_at_the_users_call(model, capture):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trace_flops(model, torch.randn(2, 16), capture=capture)
    ours = [w for w in caught if "counted as 0" in str(w.message)]
    assert len(ours) == 1 and ours[0].filename == __file__, [(w.filename, str(w.message)) for w in caught]


class RMatmul(nn.Module):
    def forward(self, x, y):
        return x.__rmatmul__(y)


@pytest.mark.parametrize("capture", ["fx", "dynamo"])
def test_rmatmul_receives_its_operands_in_call_order(capture):
    r = trace_flops(RMatmul(), (torch.randn(8, 3), torch.randn(5, 8)), capture=capture, strict=True)
    assert r.total_macs == 5 * 8 * 3
