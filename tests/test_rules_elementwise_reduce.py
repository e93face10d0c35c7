"""Elementwise arithmetic (priced per *output* element, 0 without a float tensor) and reductions."""
import operator

import pytest
import torch
import torch.nn as nn

from conftest import Fn, count, only, ops

A, B = (3, 4, 5), (3, 4, 5)
N = 3 * 4 * 5

BINARY = [
    ("add", lambda a, b: a + b, "call_function"),
    ("add", lambda a, b: torch.add(a, b), "call_function"),
    ("add", lambda a, b: a.add(b), "call_method"),
    ("add", lambda a, b: a.clone().add_(b), "call_method"),
    ("sub", lambda a, b: a - b, "call_function"),
    ("sub", lambda a, b: torch.sub(a, b), "call_function"),
    ("mul", lambda a, b: a * b, "call_function"),
    ("mul", lambda a, b: torch.mul(a, b), "call_function"),
    ("mul", lambda a, b: a.mul_(b), "call_method"),
    ("div", lambda a, b: a / b, "call_function"),
    ("div", lambda a, b: torch.div(a, b), "call_function"),
    ("div", lambda a, b: a.div(b), "call_method"),
    ("maximum", lambda a, b: torch.maximum(a, b), "call_function"),
    ("pow", lambda a, b: a ** b, "call_function"),
]


@pytest.mark.parametrize("op,fn,kind", BINARY, ids=[f"{o}-{i}" for i, (o, _, _) in enumerate(BINARY)])
def test_binary_one_flop_per_output_element(op, fn, kind):
    r = count(Fn(fn), torch.randn(*A), torch.randn(*B))
    assert (r.total_macs, r.total_flops) == (0, N)
    n = only(r, op)
    assert (n.status, n.kind) == ("counted", kind)
    assert n.output_shapes == [A]


def test_inplace_operators():
    def f(a, b):
        a += b  # fx records these as out-of-place operator calls
        a -= 1.0
        a *= b
        a /= 2
        return a

    r = count(Fn(f), torch.randn(*A), torch.randn(*B))
    assert r.total_flops == 4 * N
    assert [n.op for n in ops(r) if n.status == "counted"] == ["add", "sub", "mul", "div"]


def test_scalar_operands_and_reflected_ops():
    r = count(Fn(lambda a: (2.0 * a, 1.0 - a, a * 3, 1 / a, -a)), torch.randn(*A))
    assert r.total_flops == 5 * N
    assert [n.op for n in ops(r) if n.status == "counted"] == ["mul", "sub", "mul", "div", "neg"]


def test_add_sub_with_alpha_scale_the_other_operand():
    a, b = torch.randn(*A), torch.randn(*B)
    assert count(Fn(lambda x, y: torch.add(x, y, alpha=2)), a, b).total_flops == N * 2  # x + 2·y
    assert count(Fn(lambda x, y: x.sub(y, alpha=0.5)), a, b).total_flops == N * 2
    assert count(Fn(lambda x, y: torch.add(x, y, alpha=1)), a, b).total_flops == N


def test_broadcasting_is_priced_by_output_size():
    # (4, 1, 5) + (3, 1) broadcast to (4, 3, 5): 60 adds, not 20 or 3
    r = count(Fn(lambda a, b: a + b), torch.randn(4, 1, 5), torch.randn(3, 1))
    assert r.total_flops == 4 * 3 * 5
    n = only(r, "add")
    assert n.input_shapes == [(4, 1, 5), (3, 1)] and n.output_shapes == [(4, 3, 5)]
    # a bias-like row vector added to a matrix
    r = count(Fn(lambda a, b: a * b), torch.randn(6, 8), torch.randn(8))
    assert r.total_flops == 6 * 8


def test_integer_only_arithmetic_costs_nothing():
    def f(idx):
        j = idx * 2 + 1
        k = j // 3 - idx
        return k % 5

    r = count(Fn(f), torch.arange(12).reshape(3, 4))
    assert (r.total_macs, r.total_flops) == (0, 0)
    # but an int tensor promoted to float by a float scalar does float work
    r = count(Fn(lambda i: i * 0.5), torch.arange(12))
    assert r.total_flops == 12


def test_python_size_arithmetic_costs_nothing():
    def f(x):
        n = x.size(0) * x.size(1)
        return x.reshape(n, -1)

    r = count(Fn(f), torch.randn(*A))
    assert (r.total_macs, r.total_flops) == (0, 0)
    assert {n.op: n.status for n in ops(r) if n.op in ("metadata", "view")} == {"metadata": "free", "view": "free"}


def test_unary_and_comparison():
    r = count(Fn(lambda a: (a.exp(), torch.sqrt(a), a.abs(), a > 0, torch.clamp(a, 0, 1))), torch.randn(*A))
    assert r.total_flops == 5 * N
    assert [n.op for n in ops(r) if n.status == "counted"] == ["exp", "sqrt", "abs", "gt", "clamp"]


def test_addcmul_and_lerp_three_flops():
    a, b, c = torch.randn(*A), torch.randn(*A), torch.randn(*A)
    assert count(Fn(lambda x, y, z: torch.addcmul(x, y, z, value=0.5)), a, b, c).total_flops == 3 * N
    assert count(Fn(lambda x, y: torch.lerp(x, y, 0.3)), a, b).total_flops == 3 * N


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 8)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Residual()

    def forward(self, x):
        return self.block(x) * 0.5


def test_residual_add_inside_a_block_is_attributed_to_the_block():
    r = count(Net(), torch.randn(2, 8))
    fc1, fc2 = 2 * 8 * 16, 2 * 16 * 8
    assert r.total_macs == fc1 + fc2
    assert r.total_flops == 2 * (fc1 + fc2) + 2 * 16 + 2 * 8 + 2 * 16 + 2 * 8 + 2 * 8
    #                                          biases           relu    residual  * 0.5
    add, mul = only(r, "add"), only(r, "mul")
    assert (add.module_path, add.module_type, add.flops) == ("block", "Residual", 2 * 8)
    assert (mul.module_path, mul.flops) == ("", 2 * 8)
    block = r.modules["block"]
    assert block.flops == r.total_flops - 2 * 8 and block.macs == fc1 + fc2


# ---- reductions -------------------------------------------------------------------------------
X = (3, 7, 5)
IN = 3 * 7 * 5

REDUCTIONS = [
    # (op, fn, FLOPs from the documented formula)
    ("mean", lambda x: x.mean(), IN + 1),  # adds + one divide per output
    ("mean", lambda x: x.mean(dim=-1), IN + 3 * 7),
    ("mean", lambda x: torch.mean(x, (1, 2), keepdim=True), IN + 3),
    ("reduce", lambda x: x.sum(), IN),  # one add per input element
    ("reduce", lambda x: torch.sum(x, dim=1), IN),
    ("reduce", lambda x: x.amax(dim=-1), IN),  # one compare per input element
    ("reduce", lambda x: torch.max(x, dim=1)[0], IN),
    ("reduce", lambda x: x.max(), IN),
    ("reduce", lambda x: x.argmax(-1), IN),
    ("reduce", lambda x: torch.prod(x, 0), IN),
    ("var", lambda x: x.var(dim=-1), 4 * IN + 3 * 7),  # mean, subtract, square, sum + divide per output
    ("var", lambda x: torch.std(x, dim=(0, 1)), 4 * IN + 5),
    ("var", lambda x: torch.var_mean(x, dim=0)[0], 4 * IN + 7 * 5),
    ("norm", lambda x: x.norm(dim=-1), 2 * IN + 3 * 7),  # power, add + one root per output
    ("logsumexp", lambda x: torch.logsumexp(x, -1), 4 * IN + 2 * 3 * 7),
    ("cumsum", lambda x: x.cumsum(1), IN),
]


@pytest.mark.parametrize("op,fn,flops", REDUCTIONS, ids=[f"{o}-{i}" for i, (o, _, _) in enumerate(REDUCTIONS)])
def test_reductions(op, fn, flops):
    r = count(Fn(fn), torch.randn(*X))
    assert (r.total_macs, r.total_flops) == (0, flops)
    assert only(r, op).status == "counted"


@pytest.mark.parametrize("fn,flops", [
    (lambda x: torch.sum(input=x, dim=1), IN),
    (lambda x: torch.amax(input=x, dim=1), IN),
    (lambda x: torch.mean(input=x, dim=1), IN + 3 * 5),
    (lambda x: torch.var(input=x, dim=1), 4 * IN + 3 * 5),
    (lambda x: torch.logsumexp(input=x, dim=1), 4 * IN + 2 * 3 * 5),
    (lambda x: torch.softmax(input=x, dim=1), 5 * IN),
    (lambda x: torch.linalg.vector_norm(x=x, dim=1), 2 * IN + 3 * 5),
    (lambda x: torch.max(input=x, other=x), IN),
], ids=["sum", "amax", "mean", "var", "logsumexp", "softmax", "vector_norm", "max-other"])
def test_reductions_with_keyword_input(fn, flops):
    # torch's builtins keep keyword arguments as keywords in the fx graph
    assert count(Fn(fn), torch.randn(*X)).total_flops == flops


def test_binary_max_is_elementwise():
    r = count(Fn(lambda a, b: torch.max(a, b)), torch.randn(4, 1), torch.randn(1, 6))
    assert r.total_flops == 4 * 6


def test_integer_reduction_costs_nothing():
    r = count(Fn(lambda i: i.sum(-1)), torch.arange(12).reshape(3, 4))
    assert r.total_flops == 0


def test_inplace_operator_targets_price_like_their_out_of_place_op():
    # fx turns `a += b` into operator.add, but dynamo graphs keep operator.iadd: it must price the same
    from fxflops import REGISTRY, Call

    a, b = torch.empty(4, 1, 5, device="meta"), torch.empty(3, 1, device="meta")
    out = torch.empty(4, 3, 5, device="meta")
    for target in (operator.iadd, operator.imul, operator.itruediv, "__iadd__", "add_"):
        r = REGISTRY.for_function(target) if not isinstance(target, str) else REGISTRY.for_method(target)
        cost = r(Call(target, (a, b), {}, out))
        assert (r.status, cost.macs, cost.flops) == ("counted", 0, 4 * 3 * 5), target
