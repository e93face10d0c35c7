"""Attention: F.scaled_dot_product_attention and nn.MultiheadAttention.

Both are priced from shapes, so the result is the same whichever kernel torch picks (math, flash,
or the fused fast path nn.MultiheadAttention takes in eval mode under no_grad, which counters
that watch aten matmuls miss).
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, contraction, rule
from ._util import prod
from .reduction import SOFTMAX_PER_ELEMENT


def attention_core(batch: int, q_len: int, kv_len: int, qk_dim: int, v_dim: int, masked: bool, dropout: bool) -> Cost:
    """QKᵀ and AV contractions plus per-score work (scale, optional mask, softmax, optional dropout)."""
    scores = batch * q_len * kv_len
    macs = scores * qk_dim + scores * v_dim
    per_score = 1 + SOFTMAX_PER_ELEMENT + (1 if masked else 0) + (1 if dropout else 0)
    return contraction(macs, scores * per_score)


@rule(F.scaled_dot_product_attention, op="scaled_dot_product_attention", family="attention")
def sdpa(call: Call) -> Cost:
    """q (…, L, E), k (…, S, E), v (…, S, Eᵥ), B = ∏ of q's leading dims (batch·heads):
    MACs = B·L·S·E (QKᵀ) + B·L·S·Eᵥ (AV); FLOPs = 2·MACs + B·L·S·(1 scale + 5 softmax + 1 if a mask or is_causal
    + 1 if dropout_p > 0)."""
    q, k, v = call.arg(0, "query"), call.arg(1, "key"), call.arg(2, "value")
    masked = call.arg(3, "attn_mask", None) is not None or bool(call.arg(5, "is_causal", False))
    dropout = float(call.arg(4, "dropout_p", 0.0)) > 0
    return attention_core(prod(q.shape[:-2]), q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1], masked, dropout)


@rule(nn.MultiheadAttention, op="multi_head_attention", family="attention")
def multihead_attention(call: Call) -> Cost:
    """N batch, L query length, S key length, E embed_dim, kdim/vdim the key/value widths, H heads:
    MACs = N·(L·E·E (q proj) + S·kdim·E (k proj) + S·vdim·E (v proj) + L·S'·E (QKᵀ) + L·S'·E (AV) + L·E·E (out proj)),
    S' = S (+1 with bias_k, +1 with add_zero_attn); FLOPs = 2·MACs + projection biases (N·L·E q, N·S·E k, N·S·E v,
    N·L·E out) + N·H·L·S'·(1 scale + 5 softmax + 1 if masked + 1 if dropout in training) + N·H·L·S' if the returned
    weights are averaged over heads."""
    m: nn.MultiheadAttention = call.module
    query, key = call.arg(0, "query"), call.arg(1, "key")
    batched = query.dim() == 3
    if batched and m.batch_first:
        n, l_q, e = query.shape
        s = key.shape[1]
    elif batched:
        l_q, n, e = query.shape
        s = key.shape[0]
    else:
        (l_q, e), n, s = query.shape, 1, key.shape[0]
    s_eff = s + (1 if m.bias_k is not None else 0) + (1 if m.add_zero_attn else 0)
    h, d = m.num_heads, m.head_dim
    proj = n * (l_q * e * e + s * m.kdim * e + s * m.vdim * e + l_q * e * e)
    bias = (n * (l_q * e + 2 * s * e) if m.in_proj_bias is not None else 0) + \
        (n * l_q * e if m.out_proj.bias is not None else 0)
    masked = call.arg(3, "key_padding_mask", None) is not None or call.arg(5, "attn_mask", None) is not None \
        or bool(call.arg(7, "is_causal", False))
    dropout = m.training and m.dropout > 0
    core = attention_core(n * h, l_q, s_eff, d, d, masked, dropout)
    need_weights = bool(call.arg(4, "need_weights", True))
    average = need_weights and bool(call.arg(6, "average_attn_weights", True))
    return contraction(proj, bias + (n * h * l_q * s_eff if average else 0)) + core


@rule(F.multi_head_attention_forward, op="multi_head_attention", family="attention")
def multi_head_attention_forward(call: Call) -> Cost:
    """The functional form of nn.MultiheadAttention (query (L, N, E) or (L, E), key (S, N, kdim), value (S, N, vdim)):
    the same formula — q/k/v projections, QKᵀ, softmax, AV and the output projection, with their biases, the
    bias_k/add_zero_attn extra key, masks, dropout when training with dropout_p > 0, and head-averaged weights."""
    query, key, value = call.arg(0, "query"), call.arg(1, "key"), call.arg(2, "value")
    h = int(call.arg(4, "num_heads"))
    batched = query.dim() == 3
    l_q, e = query.shape[0], query.shape[-1]
    n = query.shape[1] if batched else 1
    s, kdim, vdim = key.shape[0], key.shape[-1], value.shape[-1]
    s_eff = s + (1 if call.arg(7, "bias_k", None) is not None else 0) + (1 if call.arg(9, "add_zero_attn", False) else 0)
    proj = n * (l_q * e * e + s * kdim * e + s * vdim * e + l_q * e * e)
    bias = (n * (l_q * e + 2 * s * e) if call.arg(6, "in_proj_bias", None) is not None else 0) + \
        (n * l_q * e if call.arg(12, "out_proj_bias", None) is not None else 0)
    masked = call.arg(14, "key_padding_mask", None) is not None or call.arg(16, "attn_mask", None) is not None \
        or bool(call.arg(24, "is_causal", False))
    dropout = bool(call.arg(13, "training", True)) and float(call.arg(10, "dropout_p")) > 0
    core = attention_core(n * h, l_q, s_eff, e // h, e // h, masked, dropout)
    average = bool(call.arg(15, "need_weights", True)) and bool(call.arg(23, "average_attn_weights", True))
    return contraction(proj, bias + (n * h * l_q * s_eff if average else 0)) + core

