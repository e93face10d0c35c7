"""The torch API audit, and hand-computed tests of the rules added to reach 100% of torch.nn and F.

Every expected number below is worked out from the formula in the rule's docstring on the shapes of the
example; where torch's FlopCounterMode sees the same contractions, it is checked too.
"""
from __future__ import annotations

import inspect
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import fxflops
from tools.api_audit import FAMILIES, api_audit
from tools.api_audit.data import NN_PROBES
from tools.api_audit.probes import Caller as Probe
from fxflops.cli import main
from tools.docgen import CONVENTIONS  # docs/ lives next to it

API_COVERAGE = CONVENTIONS.parent / "api-coverage.md"


@pytest.fixture(scope="module")
def audit():
    return api_audit()


def count(fn, *inputs):
    """fxflops report of a module or function called on ``inputs`` (wrapped: a root module is never a leaf)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return fxflops.trace_flops(Probe(fn, len(inputs)), inputs, strict=True)


def torch_macs(fn, *inputs) -> int:
    with FlopCounterMode(display=False) as fc:
        fn(*inputs)
    return fc.get_total_flops() // 2


# ---- the audit itself --------------------------------------------------------------------------------


def test_api_coverage_doc_is_current(audit):
    assert API_COVERAGE.read_text() == audit.markdown(), \
        "docs/api-coverage.md is stale: run python -m tools.api_audit --write docs/api-coverage.md"


def test_nn_and_functional_fully_covered_and_reasons_given(audit):
    for fam in ("torch.nn modules", "torch.nn.functional", "operator"):
        assert audit.coverage(fam) == 1.0, [e.name for e in audit.family(fam) if e.status == "uncounted"]
    assert {e.family for e in audit.entries} == set(FAMILIES)
    for e in audit.entries:
        assert e.detail, e
        if e.status == "traced":
            assert e.detail.startswith("fx traces it into"), e
    names = {e.name: e for e in audit.entries}
    # A few entries whose status follows from how fx and the registry work, not from a table:
    assert names["nn.Conv2d"].status == "counted" and names["nn.Conv2d"].detail == "conv2d"
    assert names["nn.LazyBatchNorm2d"].status == "counted"  # through the _BatchNorm base
    assert names["nn.CrossEntropyLoss"].detail == "fx traces it into F.cross_entropy"
    assert names["nn.Sequential"].status == "n/a"
    assert names["F.grouped_mm"].detail == "fx traces it into torch._grouped_mm"
    assert names["Tensor.view"].status == "free" and names["Tensor.add_"].status == "counted"
    assert names["operator.add"].status == "counted"
    # Every module class without a rule is either a container/base or has a probe that showed it traced.
    for e in audit.family("torch.nn modules"):
        if e.status == "traced":
            assert getattr(nn, e.name[3:]) in NN_PROBES


def test_traced_status_is_checked_not_assumed():
    """Take F.cross_entropy's rule away and nn.CrossEntropyLoss must turn uncounted."""
    reg = fxflops.REGISTRY.copy()
    del reg.functions[F.cross_entropy]
    entries = {e.name: e for e in api_audit(reg).family("torch.nn modules")}
    assert entries["nn.CrossEntropyLoss"].status == "uncounted"
    assert "F.cross_entropy" in entries["nn.CrossEntropyLoss"].detail


def test_tool_summary_and_write(tmp_path, capsys, audit):
    from tools.api_audit.__main__ import main as tool

    out_file = tmp_path / "cov.md"
    assert tool(["--write", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "torch.nn modules" in out and "100.0%" in out
    assert out_file.read_text() == audit.markdown()


def test_cli_points_at_the_repository_tool(capsys):
    assert main(["audit", "--api"]) == 2
    assert "python -m tools.api_audit" in capsys.readouterr().err


# ---- losses ------------------------------------------------------------------------------------------

R = 12  # elements of a (4, 3) loss input
MEAN = R + 1  # 'mean': R adds + 1 division


def _x(*shape):
    torch.manual_seed(0)
    return torch.randn(*shape)


@pytest.mark.parametrize("module, inputs, expected", [
    (nn.MSELoss(reduction="sum"), (_x(4, 3), _x(4, 3)), 2 * R + R),
    (nn.L1Loss(reduction="none"), (_x(4, 3), _x(4, 3)), 2 * R),
    (nn.SmoothL1Loss(), (_x(4, 3), _x(4, 3)), 6 * R + MEAN),
    (nn.SmoothL1Loss(beta=0.0), (_x(4, 3), _x(4, 3)), 2 * R + MEAN),
    (nn.HuberLoss(), (_x(4, 3), _x(4, 3)), 5 * R + MEAN),
    (nn.BCELoss(weight=torch.ones(3)), (torch.rand(4, 3), torch.rand(4, 3)), 11 * R + MEAN),
    (nn.BCEWithLogitsLoss(pos_weight=torch.ones(3)), (_x(4, 3), torch.rand(4, 3)), (4 + 5 + 4) * R + MEAN),
    (nn.KLDivLoss(reduction="batchmean"), (_x(4, 3).log_softmax(1), torch.rand(4, 3)), 3 * R + MEAN),
    (nn.PoissonNLLLoss(), (_x(4, 3), torch.rand(4, 3)), 3 * R + MEAN),
    (nn.PoissonNLLLoss(log_input=False, full=True), (torch.rand(4, 3), torch.rand(4, 3)), 12 * R + MEAN),
    (nn.GaussianNLLLoss(), (_x(4, 3), _x(4, 3), torch.rand(4, 3) + 0.1), 7 * R + MEAN),
    (nn.SoftMarginLoss(), (_x(4, 3), torch.ones(4, 3)), 5 * R + MEAN),
    (nn.HingeEmbeddingLoss(), (_x(4, 3), torch.ones(4, 3)), 4 * R + MEAN),
    # (2, 4): 16 FLOPs per element, the per-sample mean over 4 classes (8 adds + 2 divisions), then 'mean' of 2.
    (nn.MultiLabelSoftMarginLoss(), (_x(2, 4), torch.ones(2, 4)), 16 * 8 + 8 + 2 + 3),
    (nn.MultiLabelMarginLoss(), (_x(2, 4), torch.tensor([[3, 0, -1, 1], [0, 1, 2, 3]])), 4 * 8 + 2 + 3),
    (nn.MultiMarginLoss(), (_x(3, 4), torch.tensor([0, 1, 3])), 4 * 12 + 3 + 4),
    (nn.MarginRankingLoss(), (_x(4), _x(4), torch.ones(4)), 5 * 4 + 5),
    # 4 pairs of 8-vectors: three dot products (6·8) + 4, then 4 for the margin; 'mean' over 4 pairs.
    (nn.CosineEmbeddingLoss(), (_x(4, 8), _x(4, 8), torch.ones(4)), 4 * (48 + 4 + 4) + 5),
    # Two pairwise distances of 4 rows × 8 (4·32 + 4 each), then 3 per row, 'mean' over 4.
    (nn.TripletMarginLoss(), (_x(4, 8), _x(4, 8), _x(4, 8)), 2 * 132 + 12 + 5),
    (nn.TripletMarginLoss(swap=True), (_x(4, 8), _x(4, 8), _x(4, 8)), 3 * 132 + 12 + 4 + 5),
    (nn.TripletMarginWithDistanceLoss(), (_x(4, 8), _x(4, 8), _x(4, 8)), 2 * 132 + 12 + 5),
    # A user distance |x − y| summed: subtract, abs, sum on 32 elements = 96, priced by fxflops itself.
    (nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: (a - b).abs().sum(-1)),
     (_x(4, 8), _x(4, 8), _x(4, 8)), 2 * 96 + 12 + 5),
    # NLL on (2,4,3,3) with 18 targets: 18 negations + 'mean' over 18.
    (nn.NLLLoss(), (_x(2, 4, 3, 3).log_softmax(1), torch.zeros(2, 3, 3, dtype=torch.long)), 18 + 19),
    # CTC: T=6, N=2, targets of 3 → 7 states; 13 per state; 'mean' divides by each target length then averages.
    (nn.CTCLoss(), (_x(6, 2, 5).log_softmax(2), torch.ones(2, 3, dtype=torch.long), torch.full((2,), 6),
                    torch.full((2,), 3)), 13 * 6 * 2 * 7 + 2 + 3),
])
def test_loss_hand_counts(module, inputs, expected):
    r = count(module, *inputs)
    assert (r.total_macs, r.total_flops) == (0, expected)


def test_cross_entropy_variants():
    logits, idx, probs = _x(4, 5), torch.tensor([0, 1, 4, 2]), torch.rand(4, 5)
    # log_softmax 5·20; NLL: 4 negations + mean over 4 targets.
    assert count(nn.CrossEntropyLoss(), logits, idx).total_flops == 100 + 4 + 5
    # label smoothing 0.1: + 20 (sum of log-probs) + 3·4 + mean over 4.
    assert count(nn.CrossEntropyLoss(label_smoothing=0.1), logits, idx).total_flops == 109 + 20 + 12 + 5
    # class weights: + 4 multiplies and + 4 to sum the weights for the mean.
    assert count(nn.CrossEntropyLoss(weight=torch.ones(5)), logits, idx).total_flops == 109 + 8
    # probability targets: 2 per element (multiply, sum), mean over 4 samples.
    assert count(nn.CrossEntropyLoss(), logits, probs).total_flops == 100 + 40 + 5


def test_linear_cross_entropy_matches_flop_counter():
    loss = nn.LinearCrossEntropyLoss(8, 5)
    x, y = _x(4, 8), torch.tensor([0, 1, 4, 2])
    r = count(loss, x, y)
    assert r.total_macs == 4 * 5 * 8 == torch_macs(loss, x, y)
    assert r.total_flops == 2 * 160 + 100 + 4 + 5


def test_adaptive_log_softmax_upper_bound():
    m = nn.AdaptiveLogSoftmaxWithLoss(16, 10, [4, 8], div_value=4.0)
    r = count(m, _x(6, 16), torch.tensor([0, 5, 9, 3, 8, 1]))
    # head 16→6 (4 shortlist + 2 clusters); cluster 0: 16→4→4; cluster 1: 16→1→2; every one of 6 rows.
    macs = 6 * (16 * 6 + 16 * 4 + 4 * 4 + 16 * 1 + 1 * 2)
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + 5 * 6 * 6 + 6 * 6 * (4 + 2) + 2 * 6


# ---- distances, pooling, resampling, the rest ----------------------------------------------------


def test_distances():
    a, b = _x(4, 8), _x(4, 8)
    assert count(nn.CosineSimilarity(), a, b).total_flops == 4 * (6 * 8 + 4)
    assert count(nn.PairwiseDistance(), a, b).total_flops == 4 * 32 + 4
    assert count(F.pdist, _x(5, 3)).total_flops == 10 * (3 * 3 + 1)
    small = count(torch.cdist, _x(1, 3, 5), _x(1, 4, 5))  # 12 distances, direct formula
    assert (small.total_macs, small.total_flops) == (0, 12 * (3 * 5 + 1))
    x1, x2 = _x(1, 30, 5), _x(1, 4, 5)  # more than 25 rows: torch switches to the matmul form
    big = count(torch.cdist, x1, x2)
    assert big.total_macs == 30 * 4 * (5 + 2)
    assert big.total_flops == 2 * 840 + 2 * (150 + 20) + 150 + 2 * 120
    # Independent check: torch's own decomposition of that path, priced op by op by the other rules.
    from torch._decomp.decompositions import _euclidean_dist

    ref = count(inspect.unwrap(_euclidean_dist), x1[0], x2[0])
    assert (ref.total_macs, ref.total_flops) == (big.total_macs, big.total_flops)


def test_pooling_unpooling_and_lrn():
    r = count(nn.FractionalMaxPool2d(2, output_size=3), _x(1, 2, 8, 8))
    assert r.total_flops == 1 * 2 * 3 * 3 * (4 - 1)
    out, idx = nn.MaxPool2d(2, return_indices=True)(_x(1, 2, 4, 4))
    r = count(nn.MaxUnpool2d(2), out, idx)
    assert r.total_flops == 0 and {n.status for n in r.nodes if n.kind == "call_function"} == {"free"}
    # CrossMapLRN2d is LocalResponseNorm's formula: size + 4 per element.
    assert count(nn.CrossMapLRN2d(3), _x(2, 4, 5, 5)).total_flops == 200 * (3 + 4)


def test_grid_sample_and_affine_grid():
    x, grid = _x(1, 3, 5, 5), torch.rand(1, 4, 6, 2) * 2 - 1
    # 24 locations × 14 + 72 output elements × 7 (four-tap weighted sum).
    assert count(lambda a, g: F.grid_sample(a, g, align_corners=False), x, grid).total_flops == 24 * 14 + 72 * 7
    nearest = count(lambda a, g: F.grid_sample(a, g, mode="nearest", padding_mode="border", align_corners=False), x, grid)
    assert nearest.total_flops == 24 * (6 + 4)
    theta = _x(2, 2, 3)
    fn = lambda t: F.affine_grid(t, [2, 3, 4, 5], align_corners=False)  # noqa: E731
    r = count(fn, theta)
    # torch's decomposition: (H·W, 3, 1) base grid times θᵀ (N, 1, 3, 2), summed over the 3: N·H·W·2·3 MACs.
    assert (r.total_macs, r.total_flops) == (2 * 4 * 5 * 2 * 3, 2 * 240)


def test_transformer_encoder_layer_hand_and_flop_counter():
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True).eval()
    x = _x(2, 5, 16)
    r = count(layer, x)
    tokens, e, ff = 10, 16, 32
    proj = tokens * e * e * 4  # q, k, v and out projections
    core = 2 * 2 * 5 * 5 * 8 * 2  # N·H·L·S·d for QKᵀ and for AV
    macs = proj + core + tokens * e * ff * 2
    assert r.total_macs == macs == 22080
    flops = (2 * macs + tokens * e * 4  # four projection biases
             + 2 * 2 * 5 * 5 * 6  # per score: scale + softmax 5
             + tokens * ff + tokens * e  # linear1/linear2 biases
             + tokens * ff  # relu
             + 2 * tokens * e  # two residual adds
             + 2 * 7 * tokens * e)  # two LayerNorms: 5 + γ + β per element
    assert r.total_flops == flops
    # torch's counter sees the projections and the feed-forward (aten mm) but not the CPU SDPA kernel that
    # need_weights=False selects: it misses exactly the two attention matmuls.
    layer.train()
    assert torch_macs(layer, x) == macs - core
    stack = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2, enable_nested_tensor=False)
    assert count(stack.eval(), x).total_flops == 2 * flops


def test_transformer_and_decoder_compose_their_layers():
    model = nn.Transformer(16, 2, 1, 1, 32, batch_first=True).eval()
    src, tgt = _x(2, 5, 16), _x(2, 3, 16)
    enc = count(model.encoder, src)
    dec = count(model.decoder, tgt, src)
    final = count(model, src, tgt)
    assert (final.total_macs, final.total_flops) == (enc.total_macs + dec.total_macs, enc.total_flops + dec.total_flops)
    # Decoder layer: self-attention on 3 tokens, cross-attention 3 × 5, feed-forward on 3 tokens (per sample).
    n, t, s, e, ff, h, d = 2, 3, 5, 16, 32, 2, 8
    macs = n * (t * e * e * 2 + t * e * e * 2) + n * h * t * t * d * 2  # self-attention
    macs += n * (t * e * e * 2 + s * e * e * 2) + n * h * t * s * d * 2  # cross-attention
    macs += n * t * e * ff * 2
    assert dec.total_macs == macs


class FunctionalMHA(nn.Module):
    """Calls F.multi_head_attention_forward with a MultiheadAttention's weights."""

    def __init__(self, mha):
        super().__init__()
        self.mha = mha

    def forward(self, x):
        m = self.mha
        return F.multi_head_attention_forward(x, x, x, 16, 2, m.in_proj_weight, m.in_proj_bias, None, None, False, 0.0,
                                              m.out_proj.weight, m.out_proj.bias, training=False, need_weights=True)[0]


def test_multi_head_attention_forward_matches_flop_counter():
    model, q = FunctionalMHA(nn.MultiheadAttention(16, 2)), _x(5, 2, 16)
    r = fxflops.trace_flops(model, q, strict=True)
    # need_weights=True takes the bmm path, which torch's counter sees entirely.
    assert r.total_macs == 2 * 5 * 16 * 16 * 4 + 2 * 2 * 5 * 5 * 8 * 2 == torch_macs(model, q)
    as_module = count(model.mha, q, q, q)
    assert (r.total_macs, r.total_flops) == (as_module.total_macs, as_module.total_flops)


def test_conv_tbc_gumbel_softmax_grouped_mm():
    x, w, b = _x(7, 2, 3), _x(3, 3, 4), _x(4)
    r = count(lambda a: F.conv_tbc(a, w, b, 1), x)
    assert (r.total_macs, r.total_flops) == (7 * 2 * 4 * 3 * 3, 2 * 504 + 7 * 2 * 4)
    assert count(F.gumbel_softmax, _x(4, 5)).total_flops == 9 * 20
    assert count(lambda z: F.gumbel_softmax(z, hard=True), _x(4, 5)).total_flops == 12 * 20
    a = torch.empty(2, 4, 8, dtype=torch.bfloat16, device="meta")
    bm = torch.empty(2, 8, 8, dtype=torch.bfloat16, device="meta")  # grouped GEMMs want 16-byte strides
    r = count(F.grouped_mm, a, bm)
    assert (r.total_macs, r.total_flops) == (2 * 4 * 8 * 8, 2 * 512)


def test_diff_and_the_pad_dynamo_emits():
    x = _x(3, 5)
    # second difference along dim 1: 4 then 3 subtractions per row.
    assert count(lambda a: torch.diff(a, n=2, dim=1), x).total_flops == 3 * (4 + 3)
    assert count(lambda a: torch.diff(a, dim=0, prepend=a[:1]), x).total_flops == 3 * 5
    assert count(lambda a: torch.diff(a.long()), x).total_flops == 0
    assert fxflops.REGISTRY.for_function(torch._C._nn.pad).status == "free"  # F.pad's kernel, seen by dynamo


# ---- torch-namespace math beyond nn/F ----------------------------------------------------------------

A, B = _x(4, 6), _x(4, 6)


@pytest.mark.parametrize("fn, inputs, flops", [
    (torch.arccos, (A.clamp(-1, 1),), 24),  # the arc* spelling is acos: 1 per element
    (torch.logaddexp, (A, B), 5 * 24),
    (torch.ldexp, (A, torch.ones(4, 6)), 2 * 24),
    (torch.aminmax, (A,), 2 * 24),
    (lambda a: torch.median(a, dim=1).values, (A,), 24),
    (lambda a: torch.quantile(a, 0.3, dim=1), (A,), 3 * 4),
    (torch.dist, (A, B), 3 * 24 + 1),
    (torch.trace, (A,), 4),
    (lambda a: torch.renorm(a, 2, 0, 1.0), (A,), 3 * 24 + 2 * 4),
    (lambda a: torch.histc(a, bins=5), (A,), 4 * 24),
    (torch.allclose, (A, B), 6 * 24),
    (lambda a, b: a.scatter_add(1, torch.zeros(4, 6, dtype=torch.long), b), (A, B), 24),
    (lambda a, b: torch.index_add(a, 0, torch.tensor([0, 1, 1, 3]), b, alpha=2.0), (A, B), 2 * 24),
    (torch.kron, (_x(2, 3), _x(3, 2)), 36),
    (torch.addr, (_x(3, 4), _x(3), _x(4)), 2 * 12),
    (torch.cross, (_x(5, 3), _x(5, 3)), 3 * 15),
    (torch.logcumsumexp, (A, 1), 5 * 24),
])
def test_torch_namespace_rules(fn, inputs, flops):
    r = count(fn, *inputs)
    assert (r.total_macs, r.total_flops) == (0, flops)


def test_contractions_of_the_torch_namespace_match_flop_counter():
    a, b = _x(2, 3, 4), _x(3, 4, 5)
    fn = lambda x, y: torch.tensordot(x, y, dims=2)  # noqa: E731 - K = 3·4 = 12 per output element
    assert count(fn, a, b).total_macs == 2 * 5 * 12 == torch_macs(fn, a, b)
    m1, m2, m3 = _x(2, 3), _x(3, 4), _x(4, 5)
    assert count(torch.chain_matmul, m1, m2, m3).total_macs == 2 * 3 * 4 + 2 * 4 * 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # chain_matmul is deprecated
        assert torch_macs(torch.chain_matmul, m1, m2, m3) == 2 * 3 * 4 + 2 * 4 * 5
    x = _x(3, 10)  # 3 variables, 10 observations
    r = count(torch.cov, x)
    assert r.total_macs == 3 * 3 * 10 == torch_macs(torch.cov, x)
    assert r.total_flops == 2 * 90 + 2 * 30 + 3 + 9
    assert count(torch.corrcoef, x).total_flops == r.total_flops + 3 + 4 * 9


def test_roi_align_detection_heads():
    torchvision = pytest.importorskip("torchvision")
    from fxflops.rules.torchvision_ops import roi_align_cost

    x = _x(1, 4, 16, 16)
    rois = torch.tensor([[0, 0.0, 0.0, 8.0, 8.0], [0, 2.0, 2.0, 14.0, 10.0]])
    # 2 RoIs × 4 channels × 2×2 bins, 2×2 samples per bin: 8 per sample and channel, 1 division per output,
    # 14 per sample location shared by the channels.
    per_channel = 2 * 4 * 4
    fixed = 4 * per_channel * 8 + 2 * 4 * 4 + per_channel * 14
    kernel = lambda a, r: torch.ops.torchvision.roi_align(a, r, 1.0, 2, 2, 2, False)  # noqa: E731
    assert count(kernel, x, rois).total_flops == fixed == 1504
    # Adaptive sampling reads the boxes: ceil(8/2)·ceil(8/2) = 16 and ceil(8/2)·ceil(12/2) = 24 samples per bin;
    # on shapes alone (meta) it falls back to 2×2.
    out = torch.empty(2, 4, 2, 2)
    adaptive = roi_align_cost(x, rois, out, 1.0, -1, False)
    assert adaptive.flops == 4 * (40 * 4) * 8 + 32 + (40 * 4) * 14
    assert count(lambda a, r: torchvision.ops.roi_align(a, r, (2, 2)), x, rois).total_flops == fixed


def test_more_torch_namespace_rules():
    y = _x(3, 5)
    assert count(lambda a: torch.mvlgamma(a.abs() + 2, 3), y).total_flops == (1 + 1) * 15 + 9 * 15  # abs, add, mvlgamma
    assert count(torch.polar, y.abs(), y).total_flops == 4 * 15
    assert count(lambda a: torch.trapezoid(a), y).total_flops == 3 * 4 * 4  # 4 intervals per row, 4 FLOPs each
    assert count(lambda a: torch.gradient(a, dim=1)[0], y).total_flops == 2 * 15
    assert count(lambda a: a.sum_to_size(1, 5), y).total_flops == 15
