"""Normalisation layers, activations and softmax: fixed FLOPs per element, no MACs.

Norm per element: 5 with batch/instance/layer statistics (mean, subtract, square, sum, scale), 2 with stored
running statistics (subtract, scale); +1 for γ, +1 for β. RMSNorm: 3 (square, sum, scale) + 1 for γ.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import Fn, One, count, only, ops


X = (2, 4, 5, 5)
NUMEL = 2 * 4 * 5 * 5


def flops_of(layer, shape=X):
    r = count(One(layer), torch.randn(*shape))
    assert r.total_macs == 0
    return r


def test_batch_norm_train_vs_eval_and_params():
    bn = nn.BatchNorm2d(4)
    r = flops_of(bn.train())
    assert r.total_flops == NUMEL * (5 + 1 + 1)  # batch stats, γ, β
    n = only(r, "batch_norm")
    assert (n.status, n.module_path, n.module_type) == ("counted", "layer", "BatchNorm2d")
    assert n.input_shapes == [X] and n.output_shapes == [X]
    assert flops_of(bn.eval()).total_flops == NUMEL * (2 + 1 + 1)  # running stats, γ, β
    # running_mean, running_var and num_batches_tracked are buffers, not parameters
    assert r.total_params == n.params == 4 + 4


def test_batch_norm_variants():
    assert flops_of(nn.BatchNorm2d(4, affine=False).train()).total_flops == NUMEL * 5
    assert flops_of(nn.BatchNorm2d(4, affine=False).eval()).total_flops == NUMEL * 2
    # without running statistics even eval normalises with the batch's own statistics
    assert flops_of(nn.BatchNorm2d(4, track_running_stats=False).eval()).total_flops == NUMEL * 7
    assert flops_of(nn.BatchNorm1d(3).train(), (6, 3)).total_flops == 6 * 3 * 7
    assert flops_of(nn.BatchNorm1d(3).eval(), (6, 3, 10)).total_flops == 6 * 3 * 10 * 4
    assert flops_of(nn.BatchNorm3d(2).train(), (1, 2, 3, 3, 3)).total_flops == 1 * 2 * 3 * 3 * 3 * 7


class FunctionalBN(nn.Module):
    def __init__(self, training):
        super().__init__()
        self.training_flag = training
        self.register_buffer("rm", torch.zeros(4))
        self.register_buffer("rv", torch.ones(4))
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return F.batch_norm(x, self.rm, self.rv, self.w, None, self.training_flag)


def test_functional_batch_norm():
    assert count(FunctionalBN(True), torch.randn(*X)).total_flops == NUMEL * (5 + 1)
    r = count(FunctionalBN(False), torch.randn(*X))
    assert r.total_flops == NUMEL * (2 + 1)
    assert r.total_params == 4  # w only; rm, rv are buffers


def test_layer_norm():
    assert flops_of(nn.LayerNorm([5, 5])).total_flops == NUMEL * (5 + 1 + 1)
    assert flops_of(nn.LayerNorm(5, elementwise_affine=False)).total_flops == NUMEL * 5
    assert flops_of(nn.LayerNorm(5, bias=False)).total_flops == NUMEL * (5 + 1)
    w, b = torch.ones(5), torch.zeros(5)
    x = torch.randn(*X)
    assert count(Fn(lambda a: F.layer_norm(a, (5,), w, b)), x).total_flops == NUMEL * 7
    assert count(Fn(lambda a: F.layer_norm(a, (5,))), x).total_flops == NUMEL * 5
    r = flops_of(nn.LayerNorm(5))
    assert only(r, "layer_norm").module_type == "LayerNorm" and r.total_params == 5 + 5


def test_group_norm():
    r = flops_of(nn.GroupNorm(2, 4))
    assert r.total_flops == NUMEL * (5 + 1 + 1)
    assert only(r, "group_norm").status == "counted" and r.total_params == 4 + 4
    assert flops_of(nn.GroupNorm(2, 4, affine=False)).total_flops == NUMEL * 5
    x = torch.randn(*X)
    assert count(Fn(lambda a: F.group_norm(a, 2)), x).total_flops == NUMEL * 5
    w = torch.ones(4)
    assert count(Fn(lambda a: F.group_norm(a, 2, w, w)), x).total_flops == NUMEL * 7


def test_instance_norm():
    assert flops_of(nn.InstanceNorm2d(4)).total_flops == NUMEL * 5  # per-instance stats, no affine by default
    assert flops_of(nn.InstanceNorm2d(4, affine=True)).total_flops == NUMEL * 7
    tracked = nn.InstanceNorm2d(4, track_running_stats=True)
    assert flops_of(tracked.train()).total_flops == NUMEL * 5
    assert flops_of(tracked.eval()).total_flops == NUMEL * 2
    assert flops_of(nn.InstanceNorm1d(3, affine=True), (2, 3, 7)).total_flops == 2 * 3 * 7 * 7
    assert flops_of(nn.InstanceNorm3d(2), (1, 2, 2, 3, 4)).total_flops == 1 * 2 * 2 * 3 * 4 * 5
    x = torch.randn(*X)
    assert count(Fn(lambda a: F.instance_norm(a)), x).total_flops == NUMEL * 5


def test_rms_norm():
    r = flops_of(nn.RMSNorm(5))
    assert r.total_flops == NUMEL * (3 + 1)
    assert only(r, "rms_norm").module_type == "RMSNorm" and r.total_params == 5
    assert flops_of(nn.RMSNorm([5, 5], elementwise_affine=False)).total_flops == NUMEL * 3
    w = torch.ones(5)
    x = torch.randn(*X)
    assert count(Fn(lambda a: F.rms_norm(a, (5,), w)), x).total_flops == NUMEL * 4
    assert count(Fn(lambda a: F.rms_norm(a, (5,))), x).total_flops == NUMEL * 3


# ---- activations -------------------------------------------------------------------------------
# (op name, FLOPs per element from its formula, spellings). Formulas count exp/log/tanh/erf as 1 FLOP.
ACTIVATIONS = [
    ("relu", 1, [nn.ReLU(), F.relu, torch.relu, lambda x: x.relu(), lambda x: F.relu(x, inplace=True),
                 lambda x: x.clone().relu_()]),
    ("gelu", 5, [nn.GELU(), F.gelu, lambda x: F.gelu(x, approximate="none")]),  # 0.5·x·(1 + erf(x/√2))
    # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): x³ 2, ·c 1, + 1, ·√(2/π) 1, tanh 1, + 1, ·x 1, ·0.5 1
    ("gelu", 9, [nn.GELU(approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")]),
    ("silu", 5, [nn.SiLU(), F.silu]),  # x·sigmoid(x)
    ("hardswish", 4, [nn.Hardswish(), F.hardswish]),  # x·relu6(x + 3)/6
    ("hardsigmoid", 3, [nn.Hardsigmoid(), F.hardsigmoid]),
    ("sigmoid", 4, [nn.Sigmoid(), torch.sigmoid, F.sigmoid, lambda x: x.sigmoid()]),  # 1/(1 + exp(−x))
    ("tanh", 1, [nn.Tanh(), torch.tanh, F.tanh, lambda x: x.tanh()]),
    ("leaky_relu", 2, [nn.LeakyReLU(0.1), F.leaky_relu, lambda x: F.leaky_relu(x, 0.2)]),
    ("elu", 3, [nn.ELU(), F.elu]),  # α·(exp(x) − 1) for x ≤ 0
    ("mish", 5, [nn.Mish(), F.mish]),  # x·tanh(log(1 + exp(x)))
    ("softplus", 5, [nn.Softplus(), F.softplus, lambda x: F.softplus(x, beta=2.0)]),  # log(1 + exp(βx))/β
    ("relu6", 1, [nn.ReLU6(), F.relu6]),
    ("selu", 4, [nn.SELU(), F.selu, torch.selu]),
    ("celu", 4, [nn.CELU(), F.celu]),
    ("prelu", 2, [nn.PReLU(), lambda x: x.prelu(torch.tensor([0.25]))]),
    ("softsign", 3, [nn.Softsign(), F.softsign]),
    ("logsigmoid", 5, [nn.LogSigmoid(), F.logsigmoid]),
    ("hardtanh", 1, [nn.Hardtanh(), F.hardtanh]),
    ("tanhshrink", 2, [nn.Tanhshrink(), F.tanhshrink]),
    ("hardshrink", 1, [nn.Hardshrink(), F.hardshrink, lambda x: x.hardshrink(0.5)]),
    ("threshold", 1, [nn.Threshold(0.1, 0.0), lambda x: F.threshold(x, 0.1, 0.0), lambda x: torch.threshold(x, 0.1, 0.0)]),
    ("rrelu", 2, [nn.RReLU(), F.rrelu, torch.rrelu]),
    ("celu", 4, [torch.celu]),
    ("sigmoid", 4, [lambda x: torch.sigmoid_(x.clone()), lambda x: x.clone().sigmoid_()]),
    ("tanh", 1, [lambda x: torch.tanh_(x.clone())]),
]
CASES = [(op, per, f) for op, per, fs in ACTIVATIONS for f in fs]


def _wrap(f):
    if isinstance(f, nn.Module):
        return One(f)
    return Fn(lambda x: f(x))


@pytest.mark.parametrize("op,per,f", CASES, ids=[f"{op}-{i}" for i, (op, _, _) in enumerate(CASES)])
def test_activation_per_element(op, per, f):
    x = torch.randn(3, 7, 5)
    r = count(_wrap(f), x)
    assert (r.total_macs, r.total_flops) == (0, 3 * 7 * 5 * per)
    counted = [n for n in ops(r) if n.status == "counted"]
    assert [n.op for n in counted] == [op]
    assert counted[0].output_shapes == [(3, 7, 5)]


def test_glu_is_priced_by_its_halved_output():
    r = count(One(nn.GLU(dim=-1)), torch.randn(4, 10))
    assert r.total_flops == 4 * (10 // 2) * 5  # sigmoid 4 + multiply, per output element


def test_activation_on_integer_tensor_costs_nothing():
    r = count(Fn(lambda x: torch.relu(x)), torch.arange(12).reshape(3, 4))
    assert r.total_flops == 0


def test_activation_module_inside_a_block():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.act = nn.GELU()

        def forward(self, x):
            return F.silu(self.act(self.fc(x)))

    r = count(Block(), torch.randn(2, 8))
    assert r.total_macs == 2 * 8 * 8
    assert r.total_flops == 2 * (2 * 8 * 8) + 2 * 8 + 2 * 8 * 5 + 2 * 8 * 5
    assert only(r, "gelu").module_path == "act"


SOFTMAX = [nn.Softmax(dim=-1), nn.LogSoftmax(dim=1), lambda x: F.softmax(x, dim=-1), lambda x: F.log_softmax(x, -1),
           lambda x: torch.softmax(x, 1), lambda x: torch.log_softmax(x, dim=0), lambda x: x.softmax(-1),
           lambda x: x.log_softmax(dim=2), nn.Softmin(dim=0), lambda x: F.softmin(x, dim=1)]


@pytest.mark.parametrize("f", SOFTMAX, ids=range(len(SOFTMAX)))
def test_softmax_five_flops_per_element(f):
    x = torch.randn(3, 7, 5)
    r = count(_wrap(f), x)
    assert (r.total_macs, r.total_flops) == (0, 3 * 7 * 5 * 5)  # max, subtract, exp, sum, divide
    assert only(r, "softmax").status == "counted"
