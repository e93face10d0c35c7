"""Attention rules: F.scaled_dot_product_attention and nn.MultiheadAttention.

SDPA with q (…, L, E), k (…, S, E), v (…, S, Eᵥ), B = ∏ q's leading dims:
    MACs = B·L·S·E + B·L·S·Eᵥ; FLOPs = 2·MACs + B·L·S·(1 scale + 5 softmax + 1 mask/causal + 1 dropout).
MHA adds the four projections (q: L·E·E, k: S·kdim·E, v: S·vdim·E, out: L·E·E MACs per sample), their biases, and
N·H·L·S to average the returned weights over heads.

torch's FlopCounterMode has no formula for the fused CPU kernels (flash attention, the MHA fast path), so the
independent check runs it with the math backend, where attention decomposes into counted bmm calls.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from conftest import Fn, count, only, torch_macs


def math_macs(model, *xs):
    with sdpa_kernel(SDPBackend.MATH):
        return torch_macs(model, *xs)


def sdpa_flops(b, l, s, e, ev, per_score):
    macs = b * l * s * e + b * l * s * ev
    return macs, 2 * macs + b * l * s * per_score


def test_sdpa_plain():
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 6)
    m = Fn(lambda a, b, c: F.scaled_dot_product_attention(a, b, c))
    r = count(m, q, k, v)
    macs = 2 * 4 * 5 * 7 * 8 + 2 * 4 * 5 * 7 * 6  # QKᵀ + AV
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + 2 * 4 * 5 * 7 * (1 + 5)  # scale + softmax per score
    assert r.total_macs == math_macs(m, q, k, v)
    n = only(r, "scaled_dot_product_attention")
    assert n.status == "counted" and n.output_shapes == [(2, 4, 5, 6)]


def test_sdpa_mask_causal_dropout():
    q = k = v = torch.randn(1, 2, 6, 4)
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    b, l, s, e = 1 * 2, 6, 6, 4
    cases = [
        (lambda a, b_, c, d: F.scaled_dot_product_attention(a, b_, c, attn_mask=d), 1 + 5 + 1),
        (lambda a, b_, c, d: F.scaled_dot_product_attention(a, b_, c, d), 1 + 5 + 1),  # mask given positionally
        (lambda a, b_, c, d: F.scaled_dot_product_attention(a, b_, c, is_causal=True), 1 + 5 + 1),
        (lambda a, b_, c, d: F.scaled_dot_product_attention(a, b_, c, dropout_p=0.1), 1 + 5 + 1),
        (lambda a, b_, c, d: F.scaled_dot_product_attention(a, b_, c, d, 0.1), 1 + 5 + 1 + 1),
    ]
    for fn, per_score in cases:
        m = Fn(fn)
        r = count(m, q, k, v, mask)
        assert (r.total_macs, r.total_flops) == sdpa_flops(b, l, s, e, e, per_score)
        assert r.total_macs == math_macs(m, q, k, v, mask)


def test_sdpa_gqa_and_broadcast_kv_heads():
    # 8 query heads share 2 key/value heads: the work is per query head.
    q, k, v = torch.randn(2, 8, 5, 4), torch.randn(2, 2, 9, 4), torch.randn(2, 2, 9, 4)
    m = Fn(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, enable_gqa=True))
    r = count(m, q, k, v)
    macs = 2 * 8 * 5 * 9 * 4 + 2 * 8 * 5 * 9 * 4
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + 2 * 8 * 5 * 9 * 6)
    assert r.total_macs == math_macs(m, q, k, v)
    # one key/value head broadcast over all query heads
    k1, v1 = torch.randn(2, 1, 9, 4), torch.randn(2, 1, 9, 4)
    m = Fn(lambda a, b, c: F.scaled_dot_product_attention(a, b, c))
    r = count(m, q, k1, v1)
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + 2 * 8 * 5 * 9 * 6)
    assert r.total_macs == math_macs(m, q, k1, v1)


def test_sdpa_three_dim_inputs():
    q, k, v = torch.randn(3, 5, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 8)
    m = Fn(lambda a, b, c: F.scaled_dot_product_attention(a, b, c))
    r = count(m, q, k, v)
    assert (r.total_macs, r.total_flops) == sdpa_flops(3, 5, 6, 8, 8, 6)
    assert r.total_macs == math_macs(m, q, k, v)


class SelfAttn(nn.Module):
    def __init__(self, attn, **call_kw):
        super().__init__()
        self.attn = attn
        self.call_kw = call_kw

    def forward(self, x):
        return self.attn(x, x, x, **self.call_kw)[0]


class CrossAttn(nn.Module):
    def __init__(self, attn, **call_kw):
        super().__init__()
        self.attn = attn
        self.call_kw = call_kw

    def forward(self, q, k, v):
        return self.attn(q, k, v, **self.call_kw)[0]


def test_mha_seq_first_self_attention_need_weights():
    N, L, E, H = 2, 5, 16, 4
    attn = nn.MultiheadAttention(E, H)
    m = SelfAttn(attn)
    x = torch.randn(L, N, E)  # (L, N, E): batch_first=False
    r = count(m, x)
    S = L
    macs = N * (L * E * E + S * E * E + S * E * E + L * S * E + L * S * E + L * E * E)
    bias = N * (L * E + S * E + S * E) + N * L * E
    scores = N * H * L * S
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + bias + scores * (1 + 5) + scores  # + averaging the weights over heads
    assert r.total_macs == torch_macs(m, x)
    n = only(r, "multi_head_attention")
    assert (n.status, n.module_path, n.module_type) == ("counted", "attn", "MultiheadAttention")
    assert n.input_shapes == [(L, N, E)]  # one input node, used as q, k and v
    assert n.output_shapes[0] == (L, N, E)
    assert r.total_params == 3 * E * E + 3 * E + E * E + E


def test_mha_batch_first_kdim_vdim_no_bias_no_weights():
    N, L, S, E, H, kdim, vdim = 2, 5, 7, 16, 4, 10, 12
    attn = nn.MultiheadAttention(E, H, bias=False, kdim=kdim, vdim=vdim, batch_first=True)
    m = CrossAttn(attn, need_weights=False)
    q, k, v = torch.randn(N, L, E), torch.randn(N, S, kdim), torch.randn(N, S, vdim)
    r = count(m, q, k, v)
    macs = N * (L * E * E + S * kdim * E + S * vdim * E + L * S * E + L * S * E + L * E * E)
    scores = N * H * L * S
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + scores * (1 + 5)  # no biases, no averaged weights
    assert r.total_macs == math_macs(m, q, k, v)
    assert r.total_params == E * E + kdim * E + vdim * E + E * E


def test_mha_key_padding_mask_and_per_head_weights():
    N, L, S, E, H = 3, 4, 6, 8, 2
    attn = nn.MultiheadAttention(E, H, batch_first=True)
    m = CrossAttn(attn, average_attn_weights=False)
    q, kv = torch.randn(N, L, E), torch.randn(N, S, E)
    mask = torch.zeros(N, S, dtype=torch.bool)
    m2 = Fn(lambda a, b, c: attn(a, b, b, key_padding_mask=c)[0])
    m2.attn = attn
    macs = N * (L * E * E + S * E * E + S * E * E + L * S * E + L * S * E + L * E * E)
    bias = N * (L * E + S * E + S * E) + N * L * E
    scores = N * H * L * S
    r = count(m, q, kv, kv)
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + bias + scores * 6)  # weights not averaged
    r2 = count(m2, q, kv, mask)
    assert (r2.total_macs, r2.total_flops) == (macs, 2 * macs + bias + scores * (6 + 1) + scores)  # mask + average
    assert r2.total_macs == torch_macs(m2, q, kv, mask)


def test_mha_dropout_counts_in_training_only():
    N, L, E, H = 2, 3, 8, 2
    attn = nn.MultiheadAttention(E, H, dropout=0.1, batch_first=True)
    m = SelfAttn(attn, need_weights=False)
    x = torch.randn(N, L, E)
    macs = N * (4 * L * E * E + 2 * L * L * E)
    bias = N * 4 * L * E
    scores = N * H * L * L
    assert count(m.train(), x).total_flops == 2 * macs + bias + scores * (6 + 1)
    assert count(m.eval(), x).total_flops == 2 * macs + bias + scores * 6


def test_mha_eval_no_grad_fast_path_is_counted():
    """In eval mode under no_grad torch runs the fused _native_multi_head_attention kernel, which
    FlopCounterMode does not see; fxflops prices the module from shapes and is unaffected."""
    N, L, E, H = 2, 5, 16, 4
    attn = nn.MultiheadAttention(E, H, batch_first=True).eval()
    m = SelfAttn(attn, need_weights=False).eval()
    x = torch.randn(N, L, E)
    macs = N * (L * E * E + L * E * E + L * E * E + L * L * E + L * L * E + L * E * E)
    bias = N * 4 * L * E
    scores = N * H * L * L
    with torch.no_grad():
        r = count(m, x)
        assert torch_macs(m, x) == 0  # the fused kernel is invisible to FlopCounterMode
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + bias + scores * 6)
    assert r.total_macs == math_macs(m, x)  # outside no_grad torch takes the decomposed path and agrees


def test_mha_bias_kv_and_zero_attn_extend_keys():
    N, L, E, H = 1, 4, 8, 2
    attn = nn.MultiheadAttention(E, H, add_bias_kv=True, add_zero_attn=True)
    m = SelfAttn(attn)
    x = torch.randn(L, N, E)
    s_eff = L + 1 + 1  # bias_k appends one key, add_zero_attn another
    macs = N * (4 * L * E * E + 2 * L * s_eff * E)
    bias = N * 4 * L * E
    scores = N * H * L * s_eff
    r = count(m, x)
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + bias + scores * 6 + scores)
    assert r.total_macs == torch_macs(m, x)


def test_mha_unbatched_input():
    L, E, H = 4, 8, 2
    attn = nn.MultiheadAttention(E, H)
    m = SelfAttn(attn)
    x = torch.randn(L, E)
    macs = 4 * L * E * E + 2 * L * L * E
    r = count(m, x)
    assert (r.total_macs, r.total_flops) == (macs, 2 * macs + 4 * L * E + H * L * L * 6 + H * L * L)
    assert r.total_macs == torch_macs(m, x)
