"""The backward pass (mode="train"): each backward rule family against a hand count, gradient-awareness (first
layer, frozen weights, embeddings), the three capture paths, the audit's missing formulas, and the CLI."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxflops
from fxflops.cli import main
from fxflops.errors import UncountedOpError
from fxflops.types import Backward

from conftest import Fn, One, ops, only


def train(model, *inputs, **kw) -> fxflops.Report:
    return fxflops.trace_flops(model, tuple(inputs), strict=True, mode="train", **kw)


def grad(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, requires_grad=True)


# ---- layers: grad-input, grad-weight, bias ------------------------------------------------------------------------


def test_linear_first_layer_has_no_grad_input() -> None:
    n = only(train(One(nn.Linear(8, 16)), torch.randn(4, 8)), "linear")
    assert (n.fwd_macs, n.bwd_macs) == (4 * 8 * 16, 4 * 8 * 16)  # grad-weight only
    assert n.bwd_flops == 2 * 4 * 8 * 16 + 4 * 16  # + the bias gradient: the output gradient summed over the batch


def test_linear_with_input_needing_grad_has_both_gradients() -> None:
    n = only(train(One(nn.Linear(8, 16)), grad(4, 8)), "linear")
    assert n.bwd_macs == 2 * 4 * 8 * 16


def test_frozen_weight_costs_no_weight_gradient() -> None:
    layer = nn.Linear(8, 16)
    layer.weight.requires_grad_(False)
    n = only(train(One(layer), grad(4, 8)), "linear")
    assert (n.bwd_macs, n.bwd_flops) == (4 * 8 * 16, 2 * 4 * 8 * 16 + 4 * 16)  # grad-input; the bias still learns
    layer.bias.requires_grad_(False)
    r = train(One(layer), torch.randn(4, 8))
    assert only(r, "linear").bwd_status == Backward.NOT_NEEDED and r.backward_flops == 0


def test_conv_grad_weight_equals_forward() -> None:
    n = only(train(One(nn.Conv2d(3, 8, 3, bias=False)), torch.randn(2, 3, 10, 10)), "conv2d")
    assert n.fwd_macs == 2 * 8 * 8 * 8 * 3 * 9 and n.bwd_macs == n.fwd_macs and n.bwd_flops == 2 * n.fwd_macs


def test_functional_linear_reads_grad_from_the_weight_get_attr() -> None:
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 8))

        def forward(self, x):
            return F.linear(x, self.w)

    assert only(train(M(), torch.randn(4, 8)), "linear").bwd_macs == 4 * 8 * 16
    assert only(train(M(), grad(4, 8)), "linear").bwd_macs == 2 * 4 * 8 * 16


def test_matmul_counts_each_operand_needing_grad() -> None:
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    assert only(train(Fn(lambda a, b: a @ b), a.requires_grad_(), b), "matmul").bwd_macs == 3 * 4 * 5
    assert only(train(Fn(lambda a, b: a @ b), grad(3, 4), grad(4, 5)), "matmul").bwd_macs == 2 * 3 * 4 * 5
    r = train(Fn(lambda a, b: a @ b), torch.randn(3, 4), torch.randn(4, 5))
    assert r.backward_macs == 0 and only(r, "matmul").bwd_status == Backward.NOT_NEEDED


def test_attention_backward_per_needed_gradient() -> None:
    b, h, l, s, e = 1, 2, 4, 6, 8
    q, k, v = grad(b, h, l, e), grad(b, h, s, e), grad(b, h, s, e)
    n = only(train(Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v)), q, k, v), "scaled_dot_product_attention")
    one = b * h * l * s * e  # the MACs of one of the four backward products
    assert n.fwd_macs == 2 * one and n.bwd_macs == 4 * one  # dV, dP, dQ, dK
    assert n.bwd_flops == 2 * 4 * one + 4 * b * h * l * s  # + the softmax backward, 4 per score
    n = only(train(Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v)), q, k.detach(), v.detach()), "scaled_dot_product_attention")
    assert n.bwd_macs == 2 * one  # dP and dQ


# ---- non-contractions ---------------------------------------------------------------------------------------------


def test_elementwise_per_operand_needing_grad() -> None:
    assert only(train(Fn(lambda a, b: a * b), grad(5, 6), grad(5, 6)), "mul").bwd_flops == 2 * 30
    assert only(train(Fn(lambda a, b: a * b), grad(5, 6), torch.randn(5, 6)), "mul").bwd_flops == 30


def test_activation_norm_softmax() -> None:
    x = grad(4, 10)
    relu = only(train(Fn(F.relu), x), "relu")
    assert (relu.fwd_flops, relu.bwd_flops) == (40, 80)  # derivative + the multiply by the output gradient
    ln = only(train(One(nn.LayerNorm(10)), x), "layer_norm")
    assert ln.bwd_flops == 2 * ln.fwd_flops
    sm = only(train(Fn(lambda t: t.softmax(-1)), x), "softmax")
    assert sm.bwd_flops == 4 * 40


def test_pooling_spreads_the_gradient_back() -> None:
    n = only(train(One(nn.AvgPool2d(2)), grad(1, 2, 4, 4)), "avg_pool2d")
    assert n.bwd_flops == n.fwd_flops > 0


def test_embedding_has_no_grad_input_and_scatters_into_the_table() -> None:
    m = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3, bias=False))
    r = train(m, torch.zeros(2, 5, dtype=torch.long))
    emb, lin = only(r, "embedding"), only(r, "linear")
    assert (emb.bwd_macs, emb.bwd_flops) == (0, 2 * 5 * 4)
    assert lin.bwd_macs == 2 * 2 * 5 * 4 * 3  # the lookup's output needs grad, so the linear has a grad-input
    m[0].weight.requires_grad_(False)
    r = train(m, torch.zeros(2, 5, dtype=torch.long))
    assert only(r, "embedding").bwd_status == Backward.NOT_NEEDED and only(r, "linear").bwd_macs == 2 * 5 * 4 * 3


def test_views_are_free() -> None:
    r = train(Fn(lambda t: t.view(-1).relu()), grad(3, 4))
    assert only(r, "relu").bwd_flops == 24
    assert all(n.bwd_flops == 0 for n in ops(r) if n.op != "relu")


# ---- totals, modes, paths -----------------------------------------------------------------------------------------

MLP = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
X = torch.randn(2, 3, 8, 8)


@pytest.mark.parametrize("capture", ["fx", "record", "dynamo"])
def test_totals_on_every_capture_path(capture) -> None:
    r = fxflops.trace_flops(MLP, X, mode="train", capture=capture)
    conv, lin = 2 * 8 * 6 * 6 * 27, 2 * 288 * 10
    assert r.forward_macs == conv + lin and r.backward_macs == conv + 2 * lin
    assert r.total_macs == r.forward_macs + r.backward_macs
    assert r.total_flops == r.forward_flops + r.backward_flops
    d = r.to_dict()
    assert d["mode"] == "train" and d["backward_macs"] == conv + 2 * lin
    assert d["modules"][0]["bwd_macs"] == conv + 2 * lin and r.by_op()["linear"]["bwd_macs"] == 2 * lin


def test_infer_mode_is_unchanged() -> None:
    r = fxflops.trace_flops(MLP, X)
    assert r.total_macs == r.forward_macs == 2 * 8 * 6 * 6 * 27 + 2 * 288 * 10 and r.backward_flops == 0
    assert "bwd" not in r.table() and "bwd_macs" not in r.by_op()["linear"]
    with pytest.raises(ValueError, match="mode must be one of"):
        fxflops.trace_flops(MLP, X, mode="training")


def test_train_table_columns() -> None:
    r = fxflops.trace_flops(MLP, X, mode="train")
    text = r.table(depth=1)
    assert "fwd FLOPs" in text and "bwd FLOPs" in text
    text = r.table(depth=1, columns=["fwd_macs", "bwd_macs", "macs"])
    row = next(line for line in text.splitlines() if "Linear" in line)
    assert [c.strip() for c in row.split("|")[3:6]] == ["5.76K", "11.5K", "17.3K"]


class Odd(nn.Module):
    """A module only a custom rule prices."""

    def forward(self, x):
        return x * 2


def odd(call):
    "FLOPs = elements."
    return fxflops.Cost(0, call.out.numel())


def test_custom_rule_without_backward_is_reported_and_strict_raises() -> None:
    m = nn.Sequential(nn.Linear(4, 4), Odd())
    with pytest.warns(fxflops.UncountedOpWarning, match="no backward formula"):
        r = fxflops.trace_flops(m, torch.randn(2, 4), custom_rules={Odd: odd}, mode="train")
    a = r.audit()
    assert [row.op for row in a.no_backward] == ["Odd"] and a.to_dict()["no_backward"]
    assert "no backward formula" in a.summary() and r.no_backward[0].bwd_status == Backward.MISSING
    with pytest.raises(UncountedOpError, match="backward_rule"):
        fxflops.trace_flops(m, torch.randn(2, 4), custom_rules={Odd: odd}, mode="train", strict=True)
    fxflops.trace_flops(m, torch.randn(2, 4), custom_rules={Odd: odd}, strict=True)  # infer mode needs no backward


def test_a_backward_rule_for_a_custom_op() -> None:
    @fxflops.backward_rule("Odd")
    def odd_backward(call: fxflops.BwdCall) -> fxflops.Cost:
        "FLOPs = output elements (the output gradient times 2)."
        return fxflops.Cost(0, call.out_numel)

    try:
        r = fxflops.trace_flops(Odd(), grad(3, 4), custom_rules={Odd: odd}, mode="train", strict=True)
    finally:
        from fxflops.rules.registry import BACKWARD_RULES
        del BACKWARD_RULES["Odd"]
    assert r.backward_flops == 12


def test_cli_mode_train(capsys) -> None:
    code = main(["torchvision:resnet18", "--input", "1,3,32,32", "--mode", "train", "--depth", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "bwd FLOPs" in out and "one training step" in out


def test_cli_optimizer_memory(capsys) -> None:
    code = main(["torchvision:resnet18", "--input", "1,3,32,32", "--mode", "train", "--optimizer", "sgd", "--json"])
    mem = __import__("json").loads(capsys.readouterr().out)["memory"]
    params = 11_689_512
    assert code == 0 and mem["params"] == mem["grads"] == mem["optimizer"] == 4 * params and mem["activations"] > 0
    assert main(["torchvision:resnet18", "--input", "1,3,32,32", "--optimizer", "adam"]) == 2
    assert "add --mode train" in capsys.readouterr().err


def test_dynamo_traces_every_block_in_train_mode() -> None:
    """A reused block would copy its source's backward, but the first block's input needs no gradient and the
    next blocks' do: in train mode dynamo traces every block, and its totals equal fx's."""
    from test_capture_dynamo import Stack

    model, x, d = Stack(n=6), torch.randn(3, 8), 8
    a = fxflops.trace_flops(model, x, capture="fx", mode="train")
    b = fxflops.trace_flops(model, x, capture="dynamo", mode="train")
    # the first block's fc has no grad-input (x needs none), the five others and the head have both
    assert a.backward_macs == b.backward_macs == (1 + 5 * 2) * 3 * d * d + 2 * 3 * d * 3
    assert a.backward_flops == b.backward_flops


def test_addmm_and_whole_blocks() -> None:
    n = only(train(Fn(lambda c, a, b: torch.addmm(c, a, b)), grad(3, 5), grad(3, 4), torch.randn(4, 5)), "addmm")
    assert n.bwd_macs == 3 * 4 * 5  # dA only; the added term's gradient is the output gradient itself
    lstm = nn.LSTM(4, 6, batch_first=True)
    n = only(train(One(lstm), torch.randn(2, 3, 4)), "rnn")
    assert n.bwd_macs == 2 * n.fwd_macs  # the inner grad-inputs and the weight gradients
    lstm.requires_grad_(False)
    n = only(train(One(lstm), grad(2, 3, 4)), "rnn")
    assert n.bwd_macs == n.fwd_macs  # frozen: the grad-inputs only
