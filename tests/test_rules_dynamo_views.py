"""Ops only dynamo's graphs hold (attribute views, vmap's batch dimension, slicing inside higher-order ops), and
torch._weight_norm (nn.utils.weight_norm's reparametrisation, which only dynamo sees run): each has its rule."""
import pytest
import torch
import torch.nn as nn
from torch._higher_order_ops.associative_scan import associative_scan

from conftest import Fn, count, only, ops
from fxflops import Status, trace_flops


class AttributeViews(nn.Module):
    def forward(self, x):
        return x.T @ x + x.mT @ x + x.mH @ x + x.H @ x


def test_attribute_views_are_free_on_the_dynamo_path() -> None:
    r = trace_flops(AttributeViews(), torch.randn(3, 3), capture="dynamo", strict=True)
    views = {n.target: n.status for n in r.nodes if n.target in ("numpy_T", "mT", "mH", "matrix_H")}
    assert views == dict.fromkeys(("numpy_T", "mT", "mH", "matrix_H"), Status.FREE)
    # four 3×3 @ 3×3 matmuls: 27 MACs each; three adds of 9 elements
    assert (r.total_macs, r.total_flops) == (4 * 27, 2 * 4 * 27 + 3 * 9)


class VmapSin(nn.Module):
    def forward(self, x):
        return torch.vmap(torch.sin)(x)


def test_vmap_batch_dim_moves_are_free() -> None:
    r = trace_flops(VmapSin(), torch.randn(2, 5), capture="dynamo", strict=True)
    moves = [n for n in r.nodes if n.target in ("_add_batch_dim", "_remove_batch_dim")]
    assert sorted(n.target for n in moves) == ["_add_batch_dim", "_remove_batch_dim"]
    assert all(n.status == Status.FREE and n.flops == 0 for n in moves)


class Scan(nn.Module):
    def forward(self, x):
        return associative_scan(lambda a, b: a * b, x, dim=0, combine_mode="generic")


def test_slices_inside_a_scan_are_free() -> None:
    r = trace_flops(Scan(), torch.randn(8, 3), capture="dynamo", strict=True)
    slices = [n for n in r.nodes if n.target == "slice"]
    assert slices and all(n.status == Status.FREE and n.flops == 0 for n in slices)


# torch._weight_norm(v, g, dim): 3·numel(v) + 2·numel(g)
def test_weight_norm_direct_call_hand_count() -> None:
    v, g = torch.randn(4, 4, 3), torch.randn(4, 1, 1)
    r = count(Fn(lambda v, g: torch._weight_norm(v, g, 0)), v, g)
    assert only(r, "weight_norm").flops == 3 * 48 + 2 * 4 and r.total_macs == 0


@pytest.mark.parametrize("wrap", [nn.utils.weight_norm, nn.utils.parametrizations.weight_norm],
                         ids=["hook", "parametrization"])
def test_weight_norm_conv_on_the_dynamo_path(wrap) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # nn.utils.weight_norm is deprecated, still common (Wav2Vec2)
        conv = wrap(nn.Conv1d(4, 4, 3))
    r = trace_flops(nn.Sequential(conv), torch.randn(1, 4, 8), capture="dynamo", strict=True)
    # conv: 4·6 outputs × 4·3 taps = 288 MACs, 2·288 + 24 bias FLOPs; weight norm of v (4,4,3), g (4,1,1)
    assert only(r, "weight_norm").flops == 3 * 48 + 2 * 4
    assert (r.total_macs, r.total_flops) == (288, 2 * 288 + 24 + 152)
    assert len(ops(r, "conv1d")) == 1
