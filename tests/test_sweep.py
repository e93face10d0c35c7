"""sweep(): a report per point and each total as an exact polynomial, recovered against hand derivations,
verified at points the fit did not use, and refused where no polynomial fits."""
from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn as nn
import torchvision

from fxflops import FxFlopsError, Sweep, sweep, trace_flops
from fxflops.report.sweep import fit, solve


class Block(nn.Module):
    """Pre-norm attention + MLP, written out so that every matmul is a node: QKᵀ and AV give the T² terms."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, -1)
        q, k, v = [z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v)]
        a = (q @ k.transpose(-2, -1)).softmax(-1) @ v
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class LM(nn.Module):
    def __init__(self, vocab: int = 100, d: int = 32, heads: int = 4, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(layers)])
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        return self.head(self.blocks(self.embed(ids)))


V, D, L = 100, 32, 2
# per layer and token: qkv 3d², proj d², MLP 4d² + 4d²; the head d·V. Per layer: QKᵀ and AV, T·T·d each.
LINEAR = 12 * L * D * D + D * V
QUADRATIC = 2 * L * D


def ids(*shape):
    return {"ids": torch.zeros(*shape, dtype=torch.long)}


@pytest.fixture(scope="module")
def lm_sweep():
    model = LM(V, D, 4, L).eval()
    return model, sweep(lambda T: (model, ids(1, T)), T=[8, 16, 32, 64, 128])


def test_transformer_formula_is_the_hand_derivation(lm_sweep) -> None:
    model, s = lm_sweep
    assert {n.op for n in s.reports[0].nodes} >= {"matmul", "softmax", "linear"}  # traced down to the ops
    macs = s.formula("macs")
    assert macs.fits and macs.integer
    assert macs.terms == {(1,): LINEAR, (2,): QUADRATIC}  # a·T + b·T², no constant, nothing cubic
    assert str(macs) == f"MACs(T) = {LINEAR:,}·T + {QUADRATIC}·T²"
    assert macs.fitted_on == ((8,), (16,), (32,)) and macs.checked_on == ((64,), (128,))
    flops = s.formula("flops")
    assert flops(T=300) == trace_flops(model, ids(1, 300)).total_flops  # a size the sweep never ran
    assert s.formula("params").terms == {(0,): sum(p.numel() for p in model.parameters())}
    assert s.reused == 4 and "fx capture reused for 4 of 5 points" in str(s)


def test_two_symbols_batch_times_sequence() -> None:
    model = LM(V, 16, 2, 1).eval()  # one layer: 12 grid points
    s = sweep(lambda B, T: (model, ids(B, T)), B=[1, 2, 3], T=[8, 16, 32, 64])
    macs = s.formula("macs")
    linear, quadratic = 12 * 16 * 16 + 16 * V, 2 * 16
    assert macs.terms == {(1, 1): linear, (1, 2): quadratic}  # B·(a·T + b·T²)
    assert macs.coefficient(B=1, T=2) == quadratic and macs.coefficient(T=2) == 0
    assert macs(B=4, T=100) == 4 * (linear * 100 + quadratic * 100**2)
    assert len(s.points) == 12 and len(macs.checked_on) == 12 - 6


def test_reused_capture_gives_each_point_its_own_graph() -> None:
    model = LM(V, D, 4, L).eval()
    s = sweep(lambda T: (model, ids(1, T)), T=[8, 16])
    a, b = s.reports
    assert a.graph_module is not b.graph_module
    shapes = [next(n.output_shapes for n in r.nodes if n.module_path == "blocks.0.qkv") for r in (a, b)]
    assert shapes == [[(1, 8, 96)], [(1, 16, 96)]]  # the first report's graph was not overwritten by the second
    fresh = [trace_flops(model, ids(1, t)) for t in (8, 16)]
    assert [r.total_flops for r in s.reports] == [r.total_flops for r in fresh]
    assert [len(r.nodes) for r in s.reports] == [len(r.nodes) for r in fresh]


@pytest.mark.slow
def test_gpt2_from_config_over_sequence_length() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=512)
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(cfg).eval()
    s = sweep(lambda T: (model, {"input_ids": torch.zeros(1, T, dtype=torch.long, device="meta")}),
              T=[16, 32, 64, 128])
    # Conv1D c_attn 3d², c_proj d², MLP 8d² per token and layer; tied lm_head d·V; SDPA 2·T²·d per layer
    assert s.formula("macs").terms == {(1,): 12 * 2 * 64 * 64 + 64 * 500, (2,): 2 * 2 * 64}


def test_cnn_over_image_size() -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18().eval()
    s = sweep(lambda H: (model, torch.empty(1, 3, H, H, device="meta")), H=[64, 96, 128, 160, 192])
    macs = s.formula("macs")
    # sizes divisible by 32: every feature map is H/2^k exactly, so the convs are c·H²; only fc is constant
    assert macs.coefficient(H=0) == 512 * 1000 and macs.coefficient(H=1) == 0 and set(macs.terms) == {(0,), (2,)}
    assert macs(H=224) == 1_814_073_344  # docs/cli.md's resnet18 at 224, a size the sweep never ran
    assert macs.coefficient(H=2) == Fraction(1_814_073_344 - 512_000, 224**2)


def test_no_polynomial_is_reported_not_faked() -> None:
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2)).eval()  # output side floor((H - 3) / 2) + 1
    s = sweep(lambda H: (conv, torch.empty(1, 3, H, H, device="meta")), H=range(8, 15))
    macs = s.formula("macs")
    assert [r.total_macs for r in s.reports] == [4 * 3 * 9 * ((h - 3) // 2 + 1) ** 2 for h in range(8, 15)]
    assert not macs.fits and "no polynomial fits the 7 points exactly" in str(macs)
    with pytest.raises(FxFlopsError, match="no formula to evaluate"):
        macs(H=20)
    assert s.formula("params").fits  # the params do not depend on H
    assert "MACs(H): no polynomial" in str(s) and "| 14 |" in s.table()


def test_fit_needs_a_held_out_value_per_symbol() -> None:
    # two values of a symbol fit a line through both with nothing left to check it: only a constant is tried
    f = fit("macs", ("T",), [(1,), (2,)], [3, 5])
    assert not f.fits and "T (2 values: degree ≤ 0)" in f.reason
    assert fit("macs", ("T",), [(1,), (2,), (3,)], [3, 5, 7]).terms == {(0,): 1, (1,): 2}


def test_fit_keeps_exact_fractions() -> None:
    f = fit("flops", ("T",), [(t,) for t in (2, 4, 6, 8)], [t * t // 4 for t in (2, 4, 6, 8)])
    assert f.terms == {(2,): Fraction(1, 4)} and not f.integer and str(f) == "FLOPs(T) = 1/4·T²"
    assert solve([[Fraction(1), Fraction(2)], [Fraction(2), Fraction(4)]], [Fraction(1), Fraction(2)]) is None


def test_cubic_is_found_and_quartic_is_not() -> None:
    pts = [(t,) for t in range(1, 7)]
    assert fit("macs", ("n",), pts, [t**3 - 2 * t for (t,) in pts]).terms == {(1,): -2, (3,): 1}
    assert not fit("macs", ("n",), pts, [t**4 for (t,) in pts]).fits  # degree 4 is past the limit of 3


def test_sweep_errors_say_what_to_do() -> None:
    model = LM(V, D, 4, L).eval()
    with pytest.raises(FxFlopsError, match="needs the values to vary"):
        sweep(lambda T: (model, ids(1, T)))
    with pytest.raises(FxFlopsError, match="at least 2"):
        sweep(lambda T: (model, ids(1, T)), T=[8])
    with pytest.raises(FxFlopsError, match=r"must return \(model, example\)"):
        sweep(lambda T: model, T=[8, 16])


def test_sweep_csv_and_dict_are_exact(lm_sweep) -> None:
    _, s = lm_sweep
    assert isinstance(s, Sweep)
    lines = s.to_csv().splitlines()
    assert lines[0] == "T,macs,flops,params" and lines[1].startswith(f"8,{s.reports[0].total_macs},")
    d = s.to_dict()
    assert d["formulas"]["macs"]["terms"] == [{"exponents": {"T": 1}, "coefficient": LINEAR},
                                              {"exponents": {"T": 2}, "coefficient": QUADRATIC}]
