"""Extending fxflops: a rule for your own layer or function in a few lines, reflected at once by the audit.

The seed articles' scenarios, done with fxflops: a custom attention layer priced by class (thop's
``custom_ops={MyAttentionLayer: count_attention}``), and leaving Dropout/ReLU/Sigmoid/Softmax out of the
count (thop's ``ignore_ops=[...]``).
"""
import math
import warnings

import torch
import torch.nn as nn

import fxflops
from fxflops import Call, Cost, contraction


class MyAttentionLayer(nn.Module):
    """Self-attention written out with torch ops, as in the articles."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        return self.proj((attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, d))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = MyAttentionLayer(32, 4)
        self.norm = nn.LayerNorm(32)

    def forward(self, x):
        return self.norm(x + self.attn(x))


B, N, D, H = 2, 10, 32, 4
ATTN_MACS = 3 * B * N * D * D + 2 * B * N * N * D + B * N * D * D  # qkv, QKᵀ and AV, proj
ATTN_EXTRA = B * H * N * N * (1 + 5)  # scale and softmax per score
REST = B * N * D + 7 * B * N * D  # the residual add, LayerNorm (5 + γ + β per element)


def attention_cost(call: Call) -> Cost:
    """x (B, N, D): MACs = 3·B·N·D² + 2·B·N²·D + B·N·D²; FLOPs = 2·MACs + B·H·N²·6."""
    b, n, d = call.args[0].shape
    macs = 3 * b * n * d * d + 2 * b * n * n * d + b * n * d * d
    return contraction(macs, extra_flops=b * call.module.num_heads * n * n * 6)


def x():
    torch.manual_seed(0)
    return torch.randn(B, N, D)


def row(report, target):
    rows = [r for r in report.audit().rows if r.target == target]
    assert len(rows) == 1, [(r.target, r.status) for r in report.audit().rows]
    return rows[0]


def test_traced_through_without_a_rule_matches_the_rule():
    traced = fxflops.trace_flops(Net(), x(), strict=True)
    assert (traced.total_macs, traced.total_flops) == (ATTN_MACS, 2 * ATTN_MACS + ATTN_EXTRA + REST)
    assert row(traced, "operator.matmul").nodes == 2  # no rule needed: its matmuls are graph nodes
    ruled = fxflops.trace_flops(Net(), x(), custom_rules={MyAttentionLayer: attention_cost}, strict=True)
    assert (ruled.total_macs, ruled.total_flops) == (traced.total_macs, traced.total_flops)
    layer = row(ruled, f"{__name__}.MyAttentionLayer")
    assert (layer.kind, layer.status, layer.nodes, layer.macs) == ("module", "counted", 1, ATTN_MACS)
    assert not [r for r in ruled.audit().rows if r.target == "operator.matmul"]  # now inside the leaf


def test_thop_style_custom_op_returning_macs():
    """The article's count_attention: x[0].size(1) * x[0].size(2) * m.head_dim * m.num_heads, an int of MACs."""
    def count_attention(call):
        x0 = call.args[0]
        return x0.size(1) * x0.size(2) * call.module.head_dim * call.module.num_heads

    r = fxflops.trace_flops(Net(), x(), custom_rules={MyAttentionLayer: count_attention}, strict=True)
    macs = N * D * (D // H) * H
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + REST)  # a bare int is MACs: 2 FLOPs each
    assert row(r, f"{__name__}.MyAttentionLayer").macs == macs


def test_global_decorator_and_audit_reflects_it():
    before = fxflops.trace_flops(Net(), x())
    assert row(before, "nn.Linear").nodes == 2  # traced through: its two projections are leaves

    @fxflops.rule(MyAttentionLayer, op="my_attention")
    def my_attention(call: Call) -> Cost:
        """MACs = 3·B·N·D² + 2·B·N²·D + B·N·D²; FLOPs = 2·MACs + B·H·N²·6."""
        return attention_cost(call)

    try:
        after = fxflops.trace_flops(Net(), x())
        layer = row(after, f"{__name__}.MyAttentionLayer")
        assert (layer.op, layer.status, layer.flops) == ("my_attention", "counted", 2 * ATTN_MACS + ATTN_EXTRA)
        assert not [r for r in after.audit().rows if r.target == "nn.Linear"]
        assert fxflops.REGISTRY.for_module(Net().attn).formula.startswith("MACs = 3·B·N·D²")
    finally:
        del fxflops.REGISTRY.modules[MyAttentionLayer]


@torch.fx.wrap
def scaled_tanh(x, alpha: float):
    return alpha * torch.tanh(x)


class WithFunction(nn.Module):
    def forward(self, x):
        return scaled_tanh(x, 0.5).matrix_exp()


def test_function_and_method_rules_turn_uncounted_into_counted():
    sq = torch.randn(3, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        before = fxflops.trace_flops(WithFunction(), sq)
    method = row(before, "Tensor.matrix_exp")
    assert method.status == "uncounted"
    wrapped = row(before, f"{__name__}.scaled_tanh")  # no rule: priced by capturing it with dynamo
    assert wrapped.status == "counted" and wrapped.reason.startswith("counted by recording its call")
    assert wrapped.flops == 2 * 48  # tanh and the scale on 48 elements

    def tanh_rule(call: Call) -> Cost:
        """2 FLOPs per element: tanh and the scale."""
        return fxflops.elementwise(call.out_numel, 2)

    def matrix_exp_rule(call: Call) -> Cost:
        """Scaling and squaring with a degree-4 Padé approximant, taken as 10 matrix products: MACs = 10·B·n³."""
        b, n, _ = call.args[0].shape
        return contraction(10 * b * n**3)

    after = fxflops.trace_flops(WithFunction(), sq, strict=True,
                                custom_rules={scaled_tanh: tanh_rule, "matrix_exp": matrix_exp_rule})
    assert row(after, "Tensor.matrix_exp").status == "counted"
    assert row(after, "Tensor.matrix_exp").macs == 10 * 3 * 64
    own = row(after, f"{__name__}.scaled_tanh")
    assert (own.status, own.reason, own.flops) == ("counted", "", 96)  # priced by the user's rule now
    assert after.audit().incomplete == []


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(32, 8)
        self.gate = nn.Sigmoid()
        self.soft = nn.Softmax(dim=1)

    def forward(self, x):
        return self.soft(self.gate(self.fc2(self.drop(self.act(self.fc1(x))))))


def test_ignore_dropout_and_activations_like_thop_ignore_ops():
    model, inp = Classifier().train(), torch.randn(4, 16)  # training: dropout does its multiply
    full = fxflops.trace_flops(model, inp, strict=True)
    linear = (2 * 4 * 16 * 32 + 4 * 32) + (2 * 4 * 32 * 8 + 4 * 8)
    relu, dropout, sigmoid, softmax = 4 * 32, 4 * 32, 4 * 4 * 8, 5 * 4 * 8
    assert full.total_flops == linear + relu + dropout + sigmoid + softmax
    r = fxflops.trace_flops(model, inp, ignore=[nn.Dropout, nn.ReLU, nn.Sigmoid, nn.Softmax], strict=True)
    assert (r.total_macs, r.total_flops) == (full.total_macs, linear)
    audit = r.audit()
    ignored = {x.target for x in audit.rows if x.status == "ignored"}
    assert ignored == {"nn.Dropout", "nn.ReLU", "nn.Sigmoid", "nn.Softmax"}
    assert all(x.reason == "ignored by the user" for x in audit.rows if x.status == "ignored")
