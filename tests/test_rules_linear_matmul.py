"""Linear layers and matrix products, checked against hand computations and torch's FlopCounterMode.

linear:  MACs = ∏(batch dims)·in·out, bias adds one FLOP per output element.
matmul:  MACs = (output elements)·K.
addmm:   MACs = (output elements)·K; + n for adding input (beta ≠ 0), + n for beta ∉ {0, 1}, + n for alpha ≠ 1.
einsum:  pairwise left to right, MACs = ∏ sizes of the union of both operands' indices; indices in one operand
         only, needed nowhere later, are summed first at 1 FLOP per element.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import Fn, count, only, ops, torch_macs


class Lin(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.fc = nn.Linear(16, 8, **kw)

    def forward(self, x):
        return self.fc(x)


def test_linear_2d_input():
    m = Lin()
    x = torch.randn(4, 16)
    r = count(m, x)
    macs = 4 * 16 * 8
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + 4 * 8
    assert r.total_macs == torch_macs(m, x)
    n = only(r, "linear")
    assert (n.status, n.module_path, n.module_type) == ("counted", "fc", "Linear")
    assert n.input_shapes == [(4, 16)] and n.output_shapes == [(4, 8)]
    assert r.total_params == n.params == 16 * 8 + 8


def test_linear_3d_input_without_bias():
    m = Lin(bias=False)
    x = torch.randn(2, 5, 16)
    r = count(m, x)
    macs = 2 * 5 * 16 * 8
    assert r.total_macs == macs and r.total_flops == 2 * macs
    assert r.total_macs == torch_macs(m, x)
    assert r.total_params == 16 * 8


class FunctionalLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(7, 12))
        self.b = nn.Parameter(torch.randn(7))

    def forward(self, x):
        return F.linear(x, self.w, self.b) + F.linear(x, self.w)


def test_functional_linear_with_and_without_bias():
    m = FunctionalLinear()
    x = torch.randn(3, 4, 12)
    r = count(m, x)
    macs = 3 * 4 * 12 * 7
    lin = ops(r, "linear")
    assert [(n.macs, n.flops) for n in lin] == [(macs, 2 * macs + 3 * 4 * 7), (macs, 2 * macs)]
    add = only(r, "add")
    assert add.flops == 3 * 4 * 7
    assert r.total_macs == 2 * macs == torch_macs(m, x)
    assert r.total_flops == 2 * (2 * macs) + 3 * 4 * 7 + 3 * 4 * 7
    assert r.total_params == 7 * 12 + 7


def test_bilinear_module_and_functional():
    bil = nn.Bilinear(4, 5, 6)
    m = Fn(lambda a, b: bil(a, b))
    m.bil = bil
    x1, x2 = torch.randn(3, 4), torch.randn(3, 5)
    r = count(m, x1, x2)
    macs = 3 * 6 * 4 * 5
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + 3 * 4 * 5 + 3 * 6  # outer product x1⊗x2, then the bias
    assert only(r, "bilinear").module_type == "Bilinear"
    assert r.total_params == 6 * 4 * 5 + 6

    w = torch.randn(6, 4, 5)
    rf = count(Fn(lambda a, b: F.bilinear(a, b, w)), torch.randn(2, 7, 4), torch.randn(2, 7, 5))
    macs = 2 * 7 * 6 * 4 * 5
    assert rf.total_macs == macs
    assert rf.total_flops == 2 * macs + 2 * 7 * 4 * 5


MATMULS = {
    "operator @": lambda a, b: a @ b,
    "torch.matmul": lambda a, b: torch.matmul(a, b),
    "Tensor.matmul": lambda a, b: a.matmul(b),
    "torch.mm": lambda a, b: torch.mm(a, b),
    "Tensor.mm": lambda a, b: a.mm(b),
}


@pytest.mark.parametrize("name", list(MATMULS))
def test_2d_matmul_every_spelling(name):
    m = Fn(MATMULS[name])
    a, b = torch.randn(6, 5), torch.randn(5, 7)
    r = count(m, a, b)
    macs = 6 * 5 * 7
    assert r.total_macs == macs and r.total_flops == 2 * macs
    assert r.total_macs == torch_macs(m, a, b)
    n = only(r, "matmul")
    assert n.status == "counted" and n.input_shapes == [(6, 5), (5, 7)] and n.output_shapes == [(6, 7)]


# FlopCounterMode has no formula for mv and dot (it reports 0): those are checked by hand only (torch_too=False).
@pytest.mark.parametrize("fn,shapes,macs,torch_too", [
    (lambda a, b: torch.bmm(a, b), [(3, 4, 5), (3, 5, 6)], 3 * 4 * 5 * 6, True),
    (lambda a, b: a.bmm(b), [(3, 4, 5), (3, 5, 6)], 3 * 4 * 5 * 6, True),
    (lambda a, b: a @ b, [(2, 3, 4, 5), (5, 6)], 2 * 3 * 4 * 5 * 6, True),  # broadcast batch
    (lambda a, b: a @ b, [(2, 1, 4, 5), (3, 5, 6)], 2 * 3 * 4 * 5 * 6, True),  # both sides broadcast
    (lambda a, b: a @ b, [(5,), (5, 6)], 5 * 6, True),  # vector · matrix
    (lambda a, b: a @ b, [(4, 5), (5,)], 4 * 5, False),  # matrix · vector (aten.mv)
    (lambda a, b: torch.mv(a, b), [(4, 5), (5,)], 4 * 5, False),
    (lambda a, b: torch.dot(a, b), [(9,), (9,)], 9, False),
], ids=["bmm", "Tensor.bmm", "broadcast", "broadcast-both", "vec@mat", "mat@vec", "mv", "dot"])
def test_batched_and_vector_products(fn, shapes, macs, torch_too):
    m = Fn(fn)
    xs = [torch.randn(*s) for s in shapes]
    r = count(m, *xs)
    assert r.total_macs == macs and r.total_flops == 2 * macs
    if torch_too:
        assert r.total_macs == torch_macs(m, *xs)
    else:
        assert torch_macs(m, *xs) == 0


def test_addmm_alpha_beta():
    inp, a, b = torch.randn(4, 6), torch.randn(4, 5), torch.randn(5, 6)
    macs = 4 * 5 * 6
    n = 4 * 6
    cases = [
        (lambda i, x, y: torch.addmm(i, x, y), 2 * macs + n),  # + input
        (lambda i, x, y: torch.addmm(i, x, y, beta=0.5), 2 * macs + n + n),  # + input, scale input
        (lambda i, x, y: torch.addmm(i, x, y, alpha=2.0), 2 * macs + n + n),  # + input, scale product
        (lambda i, x, y: torch.addmm(i, x, y, beta=0, alpha=3.0), 2 * macs + n),  # no input, scale product
        (lambda i, x, y: i.addmm(x, y, beta=2.0, alpha=2.0), 2 * macs + 3 * n),
    ]
    for fn, flops in cases:
        m = Fn(fn)
        r = count(m, inp, a, b)
        assert (r.total_macs, r.total_flops) == (macs, flops)
        assert r.total_macs == torch_macs(m, inp, a, b)
        assert only(r, "addmm").status == "counted"


def test_baddbmm_alpha_beta():
    inp, a, b = torch.randn(3, 4, 6), torch.randn(3, 4, 5), torch.randn(3, 5, 6)
    macs = 3 * 4 * 5 * 6
    n = 3 * 4 * 6
    for fn, flops in [
        (lambda i, x, y: torch.baddbmm(i, x, y), 2 * macs + n),
        (lambda i, x, y: torch.baddbmm(i, x, y, beta=0.0, alpha=0.125), 2 * macs + n),
        (lambda i, x, y: i.baddbmm(x, y, alpha=0.5, beta=3), 2 * macs + 3 * n),
    ]:
        m = Fn(fn)
        r = count(m, inp, a, b)
        assert (r.total_macs, r.total_flops) == (macs, flops)
        assert r.total_macs == torch_macs(m, inp, a, b)


def test_products_with_keyword_operands():
    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    assert count(Fn(lambda x, y: torch.matmul(input=x, other=y)), a, b).total_macs == 2 * 3 * 4 * 5
    assert count(Fn(lambda x, y: torch.bmm(input=x, mat2=y)), a, b).total_macs == 2 * 3 * 4 * 5
    assert count(Fn(lambda x, y: torch.mm(input=x[0], mat2=y[0])), a, b).total_macs == 3 * 4 * 5


def test_addmm_baddbmm_keyword_operands():
    inp, a, b = torch.randn(4, 6), torch.randn(4, 5), torch.randn(5, 6)
    r = count(Fn(lambda i, x, y: torch.addmm(i, mat1=x, mat2=y)), inp, a, b)
    assert r.total_macs == 4 * 5 * 6
    inp, a, b = torch.randn(3, 4, 6), torch.randn(3, 4, 5), torch.randn(3, 5, 6)
    r = count(Fn(lambda i, x, y: torch.baddbmm(i, batch1=x, batch2=y)), inp, a, b)
    assert r.total_macs == 3 * 4 * 5 * 6


EINSUMS = [
    # equation, operand shapes, MACs, extra FLOPs (summations)
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5, 0),
    ("...ij,...jk->...ik", [(2, 3, 4, 5), (2, 3, 5, 6)], 2 * 3 * 4 * 5 * 6, 0),
    ("bhqd,bhkd->bhqk", [(2, 4, 8, 16), (2, 4, 6, 16)], 2 * 4 * 8 * 6 * 16, 0),
    # the first operand has fewer broadcast dims: its one unnamed dim lines up with the second's last (3)
    ("...ij,...jk->...ik", [(3, 4, 5), (2, 3, 5, 6)], 2 * 3 * 4 * 5 * 6, 0),
    ("...ij,...jk", [(1, 4, 5), (2, 3, 5, 6)], 2 * 3 * 4 * 5 * 6, 0),  # size-1 dim broadcast, implicit output
    ("Bij,Bjk->Bik", [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5, 0),  # upper-case index letters
    ("...Ij,jk->...Ik", [(2, 3, 4), (4, 5)], 2 * 3 * 4 * 5, 0),
    ("ij,jk", [(3, 4), (4, 5)], 3 * 4 * 5, 0),  # implicit output ik
    ("i,j->ij", [(3,), (4,)], 0, 3 * 4),  # outer product: multiplies, nothing accumulated
    ("bi,bi->bi", [(3, 4), (3, 4)], 0, 3 * 4),  # Hadamard product: multiplies, nothing accumulated
    ("bi,bi->b", [(3, 4), (3, 4)], 3 * 4, 0),  # batched dot product
    # three operands, left to right: (ij,jk)→ik costs i·j·k, then (ik,kl)→il costs i·k·l
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], 2 * 3 * 4 + 2 * 4 * 5, 0),
    # k appears only in the second operand and not in the output: summed first (j·k adds), then i·j MACs
    ("ij,jk->i", [(3, 4), (4, 5)], 3 * 4, 4 * 5),
    ("ij->", [(3, 4)], 0, 3 * 4),  # a pure sum
    ("ij->ji", [(3, 4)], 0, 0),  # a transpose
]


@pytest.mark.parametrize("eq,shapes,macs,extra", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(eq, shapes, macs, extra):
    xs = [torch.randn(*s) for s in shapes]
    m = Fn([lambda a: torch.einsum(eq, a), lambda a, b: torch.einsum(eq, a, b),
            lambda a, b, c: torch.einsum(eq, a, b, c)][len(xs) - 1])
    r = count(m, *xs)
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + extra)
    n = only(r, "einsum")
    assert n.status == "counted" and n.kind == "call_function"
    with torch.backends.opt_einsum.flags(enabled=False):  # torch then also contracts left to right
        assert r.total_macs == torch_macs(m, *xs)


def test_einsum_operands_as_a_list():
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    r = count(Fn(lambda x, y: torch.einsum("ij,jk->ik", [x, y])), a, b)
    assert r.total_macs == 3 * 4 * 5


def test_einsum_trace_sums_the_diagonal_only():
    r = count(Fn(lambda a: torch.einsum("ii->", a)), torch.randn(6, 6))
    assert (r.total_macs, r.total_flops) == (0, 6)  # six diagonal elements summed


def test_outer_product_is_multiplies_not_macs():
    for fn in (lambda a, b: torch.outer(a, b), lambda a, b: a.outer(b)):
        r = count(Fn(fn), torch.randn(3), torch.randn(4))
        assert (r.total_macs, r.total_flops) == (0, 3 * 4)
        assert only(r, "outer").status == "counted"


def test_addbmm_sums_the_batch_into_one_matrix():
    inp, a, b = torch.randn(4, 6), torch.randn(3, 4, 5), torch.randn(3, 5, 6)
    m = Fn(lambda i, x, y: torch.addbmm(i, x, y))
    r = count(m, inp, a, b)
    macs = 3 * 4 * 5 * 6
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + 4 * 6)
