"""nn.Transformer and its encoder/decoder stacks and layers.

torch.fx cannot trace them (their forwards branch on tensor properties to pick a fused fast path), so
each is a leaf priced as the sum of what its math path runs: every submodule (attention, linear,
norm, dropout, activation) is priced by its own registered rule on meta tensors of the shapes it
sees, plus the residual adds. The fused fast path does the same arithmetic, so one price covers both.
With a key padding mask in eval mode the encoder may skip padded tokens (nested tensors); the dense
price is an upper bound there.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from .registry import REGISTRY, Call, Cost, elementwise, rule


def _meta(like: torch.Tensor, last: int | None = None) -> torch.Tensor:
    shape = tuple(like.shape[:-1]) + ((like.shape[-1] if last is None else last),)
    return torch.empty(shape, dtype=like.dtype if like.is_floating_point() else torch.float32, device="meta")


def price(module: Any, *args: Any, out: Any = None, **kwargs: Any) -> Cost:
    """The cost of calling ``module`` (an nn.Module or a function) as its registered rule prices it."""
    if isinstance(module, nn.Module):
        r = REGISTRY.for_module(module)
        target: Any = type(module)
    else:
        r = REGISTRY.for_function(module)
        target = module
        module = None
    if r is None:
        raise NotImplementedError(f"no rule for {getattr(target, '__name__', target)} inside a transformer layer")
    return r(Call(target, args, kwargs, out, module))


def _activation(layer: nn.Module, hidden: torch.Tensor) -> Cost:
    act = layer.activation
    return price(act, hidden, out=hidden)


def _feed_forward(layer: nn.Module, x: torch.Tensor) -> Cost:
    hidden = _meta(x, layer.linear1.out_features)
    out = _meta(x)
    return (price(layer.linear1, x, out=hidden) + _activation(layer, hidden) + price(layer.dropout, hidden, out=hidden)
            + price(layer.linear2, hidden, out=out))


def _attention(attn: nn.MultiheadAttention, q: torch.Tensor, kv: torch.Tensor, mask: Any, padding: Any,
               causal: bool) -> Cost:
    out = (_meta(q), None)
    return price(attn, q, kv, kv, key_padding_mask=padding, need_weights=False, attn_mask=mask, is_causal=causal, out=out)


def _residual(x: torch.Tensor) -> Cost:
    return elementwise(x.numel())


@rule(nn.TransformerEncoderLayer, op="transformer_encoder_layer", family="transformer")
def encoder_layer(call: Call) -> Cost:
    """self_attn (the nn.MultiheadAttention formula, need_weights=False) + dropout1 + residual add (1 FLOP per
    element) + norm1 + linear1 + activation + dropout + linear2 + dropout2 + residual add + norm2, each by its own
    rule on the shapes it sees (norm_first only reorders them)."""
    m = call.module
    x = call.arg(0, "src")
    mask, padding = call.arg(1, "src_mask", None), call.arg(2, "src_key_padding_mask", None)
    causal = bool(call.arg(3, "is_causal", False))
    cost = _attention(m.self_attn, x, x, mask, padding, causal) + price(m.dropout1, x, out=x) + _residual(x)
    cost = cost + _feed_forward(m, x) + price(m.dropout2, x, out=x) + _residual(x)
    return cost + price(m.norm1, x, out=x) + price(m.norm2, x, out=x)


@rule(nn.TransformerDecoderLayer, op="transformer_decoder_layer", family="transformer")
def decoder_layer(call: Call) -> Cost:
    """self_attn on tgt + dropout1 + residual + norm1, multihead_attn (tgt attends to memory) + dropout2 + residual +
    norm2, linear1 + activation + dropout + linear2 + dropout3 + residual + norm3 — each by its own rule."""
    m = call.module
    x, memory = call.arg(0, "tgt"), call.arg(1, "memory")
    cost = _attention(m.self_attn, x, x, call.arg(2, "tgt_mask", None), call.arg(4, "tgt_key_padding_mask", None),
                      bool(call.arg(6, "tgt_is_causal", False)))
    cost = cost + _attention(m.multihead_attn, x, memory, call.arg(3, "memory_mask", None),
                             call.arg(5, "memory_key_padding_mask", None), bool(call.arg(7, "memory_is_causal", False)))
    cost = cost + _feed_forward(m, x) + _residual(x) * 3
    for name in ("dropout1", "dropout2", "dropout3", "norm1", "norm2", "norm3"):
        cost = cost + price(getattr(m, name), x, out=x)
    return cost


@rule(nn.TransformerEncoder, op="transformer_encoder", family="transformer")
def encoder(call: Call) -> Cost:
    """Σ over its layers of the layer's rule, + the final norm when set."""
    m = call.module
    x = call.arg(0, "src")
    mask, padding = call.arg(1, "mask", None), call.arg(2, "src_key_padding_mask", None)
    causal = call.arg(3, "is_causal", None)
    total = Cost()
    for layer in m.layers:
        total = total + price(layer, x, mask, padding, bool(causal), out=x)
    return total + (price(m.norm, x, out=x) if m.norm is not None else Cost())


@rule(nn.TransformerDecoder, op="transformer_decoder", family="transformer")
def decoder(call: Call) -> Cost:
    """Σ over its layers of the layer's rule, + the final norm when set."""
    m = call.module
    x, memory = call.arg(0, "tgt"), call.arg(1, "memory")
    args = (memory, call.arg(2, "tgt_mask", None), call.arg(3, "memory_mask", None),
            call.arg(4, "tgt_key_padding_mask", None), call.arg(5, "memory_key_padding_mask", None),
            bool(call.arg(6, "tgt_is_causal", None)), bool(call.arg(7, "memory_is_causal", False)))
    total = Cost()
    for layer in m.layers:
        total = total + price(layer, x, *args, out=x)
    return total + (price(m.norm, x, out=x) if m.norm is not None else Cost())


@rule(nn.Transformer, op="transformer", family="transformer")
def transformer(call: Call) -> Cost:
    """The encoder's rule on src + the decoder's rule on tgt attending to the encoder output."""
    m = call.module
    src, tgt = call.arg(0, "src"), call.arg(1, "tgt")
    memory = _meta(src)
    enc = price(m.encoder, src, call.arg(2, "src_mask", None), call.arg(5, "src_key_padding_mask", None),
                bool(call.arg(8, "src_is_causal", None)), out=memory)
    dec = price(m.decoder, tgt, memory, call.arg(3, "tgt_mask", None), call.arg(4, "memory_mask", None),
                call.arg(6, "tgt_key_padding_mask", None), call.arg(7, "memory_key_padding_mask", None),
                bool(call.arg(9, "tgt_is_causal", None)), bool(call.arg(10, "memory_is_causal", False)), out=_meta(tgt))
    return enc + dec
