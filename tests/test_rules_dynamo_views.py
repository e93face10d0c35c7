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


class VmapMatmul(nn.Module):
    def forward(self, x):
        return torch.vmap(lambda m: m @ m)(x)


class NestedVmap(nn.Module):
    def forward(self, x):
        return torch.vmap(torch.vmap(lambda r: r.sin() * 2))(x)


def test_ops_under_vmap_are_priced_for_every_sample() -> None:
    # inside vmap each op sees one sample: two 3×3 @ 3×3 matmuls are 2·27 MACs, not 27
    r = trace_flops(VmapMatmul(), torch.randn(2, 3, 3), capture="dynamo", strict=True)
    assert (r.total_macs, r.total_flops) == (2 * 27, 2 * 2 * 27)
    # two nested levels (2, then 3) around rows of 4: sin and the multiply on all 2·3·4 elements
    r = trace_flops(NestedVmap(), torch.randn(2, 3, 4), capture="dynamo", strict=True)
    assert r.total_flops == 2 * 24


class Scan(nn.Module):
    def forward(self, x):
        return associative_scan(lambda a, b: a * b, x, dim=0, combine_mode="generic")


def test_slices_inside_a_scan_are_free() -> None:
    r = trace_flops(Scan(), torch.randn(8, 3), capture="dynamo", strict=True)
    slices = [n for n in r.nodes if n.target == "slice"]
    assert slices and all(n.status == Status.FREE and n.flops == 0 for n in slices)
    # the generic scan combines pairs under vmap at levels of 4, 2, 1, 0, 1 and 3 pairs, 3 channels each
    assert r.total_flops == (4 + 2 + 1 + 0 + 1 + 3) * 3


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


# ---- the models that used to raise under strict=True ------------------------------------------------------


def _torch_macs(model: nn.Module, **example) -> int:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, sdpa_kernel(SDPBackend.MATH), torch.no_grad():  # attention as matmuls
        model(**example)
    return fc.get_total_flops() // 2


def test_wav2vec2_positional_conv_weight_norm() -> None:
    import transformers as T

    model = T.Wav2Vec2Model(T.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)).eval()
    example = {"input_values": torch.randn(1, 400)}
    r = trace_flops(model, example, strict=True)
    # the positional conv's weight v is (32, 8, 16) with its norm over dim 2: g is (1, 1, 16)
    assert only(r, "weight_norm").flops == 3 * 32 * 8 * 16 + 2 * 16
    assert r.total_macs == _torch_macs(model, **example)


@pytest.mark.slow
def test_mamba_scan_is_complete() -> None:
    import transformers as T

    model = T.MambaModel(T.MambaConfig(hidden_size=16, state_size=4, num_hidden_layers=1, vocab_size=50,
                                       intermediate_size=32)).eval()
    example = {"input_ids": torch.zeros(1, 6, dtype=torch.long)}
    r = trace_flops(model, example, capture="dynamo", strict=True)  # the scan: aten.slice and vmap under strict
    assert r.total_macs == _torch_macs(model, **example)
