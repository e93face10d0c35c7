"""The bytes a training step's backward moves (rules/backward.py byte formulas), each against a hand count, and the
totals, intensity and roofline of a step built from them. fp32 throughout: 4 bytes an element."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from fxflops import trace_flops

from conftest import Fn, only


def train(model: nn.Module, *inputs: torch.Tensor):
    return trace_flops(model, tuple(inputs), mode="train", strict=True)


def test_linear_layer_grad_input_and_grad_weight():
    """Linear(8, 16) on (4, 8) behind a first Linear, so that its input needs a gradient:
    G = 4·16·4 = 256 B, W = 16·8·4 = 512 B, X = 4·8·4 = 128 B, bias 16·4 = 64 B.
    grad-input G + W + X = 896, grad-weight G + X + W = 896, grad-bias G + B = 320."""
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 16))
    r = train(model, torch.randn(4, 8))
    second = next(n for n in r.nodes if n.module_path == "1")
    assert second.bwd_bytes == 896 + 896 + 320
    first = next(n for n in r.nodes if n.module_path == "0")  # no grad-input: the example needs none
    assert first.bwd_bytes == (128 + 128 + 256) + (128 + 32)  # grad-weight (G 128, X 128, W 256) + bias (G 128, B 32)


def test_functional_linear_without_bias_input_needing_no_grad():
    """F.linear(x, w) with x a plain input: grad-weight only, G + X + W = 4·6·4 + 4·5·4 + 6·5·4 = 96 + 80 + 120."""
    w = nn.Parameter(torch.randn(6, 5))
    r = train(Fn(lambda x: F.linear(x, w)), torch.randn(4, 5))
    assert only(r, "linear").bwd_bytes == 96 + 80 + 120


def test_matmul_both_factors():
    """a @ b, (3, 4) @ (4, 5), both needing a gradient: 2 × (G 60 + A 48 + B 80) bytes."""
    a, b = torch.randn(3, 4, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    r = train(Fn(lambda x, y: x @ y), a, b)
    assert only(r, "matmul").bwd_bytes == 2 * (60 + 48 + 80)


def test_relu_default_reads_the_output_gradient_and_what_it_saved():
    """relu after a Linear(4, 4) on (2, 4): the default formula: G (32) + its saved output (32) + grad-input written (32)."""
    r = train(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), torch.randn(2, 4))
    assert only(r, "relu").bwd_bytes == 32 + 32 + 32


def test_sdpa_flash_backward():
    """q, k, v (1, 2, 8, 4) needing gradients, 64 elements (256 B) each: reads Q, K, V, O and dO and 16 rows of fp32
    log-sum-exp (64 B), writes dQ, dK, dV."""
    q, k, v = (torch.randn(1, 2, 8, 4, requires_grad=True) for _ in range(3))
    r = train(Fn(lambda a, b, c: F.scaled_dot_product_attention(a, b, c)), q, k, v)
    assert only(r, "scaled_dot_product_attention").bwd_bytes == 3 * 256 + 2 * 256 + 64 + 3 * 256 == 2112


def test_embedding_scatter_add_into_the_table():
    """Embedding(10, 4) looked up at (2, 3): G = 6·4·4 = 96 B, 6 int64 indices (48 B), the rows read and written."""
    r = train(nn.Embedding(10, 4), torch.zeros(2, 3, dtype=torch.long))
    assert only(r, "embedding").bwd_bytes == 3 * 96 + 48


def test_no_gradient_no_bytes_and_infer_mode_has_none():
    frozen = nn.Linear(4, 4).requires_grad_(False)
    r = train(frozen, torch.randn(2, 4))
    assert r.backward_bytes == 0 and r.total_bytes == r.forward_bytes
    infer = trace_flops(nn.Linear(4, 4), torch.randn(2, 4))
    assert infer.backward_bytes == 0


def test_a_training_step_moves_more_and_its_roofline_says_so():
    """resnet18 on a100: the step's bytes are forward + backward, the intensity divides the step's FLOPs by them, and
    the roofline of a step is slower than an inference (the bug: both gave the forward's 212 µs)."""
    model = torchvision.models.resnet18()
    x = torch.randn(1, 3, 224, 224)
    infer = trace_flops(model.eval(), x)
    step = trace_flops(model.eval(), x, mode="train")
    assert step.forward_bytes == infer.total_bytes and step.backward_bytes > step.forward_bytes
    assert step.total_bytes == step.forward_bytes + step.backward_bytes == sum(n.bytes for n in step.nodes)
    assert step.intensity == step.total_flops / step.total_bytes
    assert step.modules[""].bytes == step.total_bytes and step.modules[""].bwd_bytes == step.backward_bytes
    assert step.roofline("a100").total_time > 2.5 * infer.roofline("a100").total_time


def test_a_checkpointed_region_moves_its_forward_again():
    """Inside torch.utils.checkpoint the recomputed forward's bytes are part of the backward's."""
    from torch.utils.checkpoint import checkpoint

    inner = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    plain = train(Fn(lambda x: inner(x)), torch.randn(4, 8, requires_grad=True))
    ckpt = train(Fn(lambda x: checkpoint(inner, x, use_reentrant=False)), torch.randn(4, 8, requires_grad=True))
    recomputed = sum(n.fwd_bytes for n in ckpt.nodes if n.recompute is not None)
    assert recomputed > 0 and ckpt.backward_bytes == plain.backward_bytes + recomputed
