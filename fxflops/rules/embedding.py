"""Lookups and dropout: ops whose cost depends on mode rather than shape."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, elementwise, free, rule

free(nn.Embedding, F.embedding, torch.embedding, op="embedding", family="embedding",
     reason="table lookup: rows are gathered, no arithmetic (its parameters are still counted)")


@rule(nn.EmbeddingBag, F.embedding_bag, op="embedding_bag", family="embedding")
def embedding_bag(call: Call) -> Cost:
    """Each looked-up row is added into its bag: (indices)·dim FLOPs for sum/mean (+ output elements for mean's
    division); max compares as many. Per-sample weights add (indices)·dim multiplies."""
    m = call.module
    idx = call.args[0]
    mode = m.mode if m is not None else call.arg(6, "mode", "mean")
    dim = call.out.shape[-1]
    flops = idx.numel() * dim + (call.out.numel() if mode == "mean" else 0)
    weights = call.arg(2, "per_sample_weights", None)
    if weights is not None:
        flops += idx.numel() * dim
    return elementwise(flops)


def _dropout(training: bool, p: float, numel: int) -> Cost:
    # In training each kept element is scaled by 1/(1 − p) through the mask multiply; in eval
    # dropout is the identity.
    return elementwise(numel if training and p > 0 else 0)


@rule(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
      op="dropout", family="dropout")
def dropout_module(call: Call) -> Cost:
    """0 in eval mode; in training, 1 FLOP per element (the scaled mask multiply)."""
    return _dropout(call.module.training, call.module.p, call.out.numel())


@rule(F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
      torch.dropout, torch.feature_dropout, torch.alpha_dropout, op="dropout", family="dropout")
def dropout_function(call: Call) -> Cost:
    """F.dropout(input, p=0.5, training=True): 1 FLOP per element when training and p > 0, else 0
    (F.alpha_dropout and F.feature_alpha_dropout default to training=False)."""
    default = call.target not in (F.alpha_dropout, F.feature_alpha_dropout)
    training = call.arg(2, "training", call.kwargs.get("train", default))  # torch.dropout names it "train"
    return _dropout(bool(training), float(call.arg(1, "p", 0.5)), call.out.numel())
