"""Distances and similarities: cosine_similarity, pairwise_distance, pdist, cdist.

Their sums of products are reductions, not contractions in the MAC convention (MACs are convs, linear
layers and matrix products), so they are FLOPs only — except cdist's matrix-product path, which torch
runs as a real matmul and which is priced as one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import Call, Cost, contraction, elementwise, rule
from ._util import prod


@rule(F.cosine_similarity, torch.cosine_similarity, op="cosine_similarity", family="distance")
def cosine_similarity(call: Call) -> Cost:
    """x1·x2 / √(max(|x1|²·|x2|², eps²)) along dim, over the broadcast of x1 and x2: per output element, three dot
    products of D terms (2·D FLOPs each: multiply, add) + 4 (multiply the squared norms, clamp, sqrt, divide)."""
    x1, x2 = call.arg(0, "x1"), call.arg(1, "x2")
    dim = call.arg(2, "dim", 1)
    shape = torch.broadcast_shapes(x1.shape, x2.shape)
    d = shape[dim] if len(shape) else 1
    return elementwise(call.out_numel * (6 * d + 4))


@rule(F.pairwise_distance, torch.pairwise_distance, op="pairwise_distance", family="distance")
def pairwise_distance(call: Call) -> Cost:
    """‖x1 − x2 + eps‖_p over the last dim of the broadcast inputs: 4 FLOPs per element (subtract, add eps, |·|^p,
    sum) + 1 per output element (the p-th root)."""
    x1, x2 = call.arg(0, "x1"), call.arg(1, "x2")
    n = prod(torch.broadcast_shapes(x1.shape, x2.shape))
    return elementwise(4 * n + call.out_numel)


@rule(F.pdist, torch.pdist, op="pdist", family="distance")
def pdist(call: Call) -> Cost:
    """input (N, M): the N·(N − 1)/2 row-pair distances, each 3·M FLOPs (subtract, |·|^p, sum) + 1 (the root)."""
    x = call.arg(0, "input")
    n, m = x.shape
    return elementwise(n * (n - 1) // 2 * (3 * m + 1))


def _cdist_uses_mm(p: float, r1: int, r2: int, mode: str | None) -> bool:
    # torch's own test (aten/src/ATen/native/Distance.cpp): the Euclidean distance goes through a matmul
    # when asked to, or by default when either side has more than 25 rows.
    if p != 2:
        return False
    mode = mode or "use_mm_for_euclid_dist_if_necessary"
    if mode == "use_mm_for_euclid_dist":
        return True
    return mode == "use_mm_for_euclid_dist_if_necessary" and (r1 > 25 or r2 > 25)


@rule(torch.cdist, op="cdist", family="distance")
def cdist(call: Call) -> Cost:
    """x1 (B, P, M), x2 (B, R, M) → (B, P, R). Direct: 3·M FLOPs per distance (subtract, |·|^p, sum) + 1 (root).
    Euclidean through a matrix product (p = 2 with compute_mode use_mm_for_euclid_dist, or the default mode
    when P > 25 or R > 25, as torch decides): torch appends the squared norms as two extra columns, so
    [−2·x1, |x1|², 1]·[x2, 1, |x2|²]ᵀ is one matmul with MACs = B·P·R·(M + 2); FLOPs = 2·MACs + 2 per input element
    (the squared norms) + 1 per x1 element (the −2 scale) + 2 per distance (clamp at 0, sqrt)."""
    x1, x2 = call.arg(0, "x1"), call.arg(1, "x2")
    p = float(call.arg(2, "p", 2.0))
    mode = call.arg(3, "compute_mode", None)
    m = x1.shape[-1]
    out = call.out_numel
    if _cdist_uses_mm(p, x1.shape[-2], x2.shape[-2], mode):
        return contraction(out * (m + 2), 2 * (x1.numel() + x2.numel()) + x1.numel() + 2 * out)
    return elementwise(out * (3 * m + 1))
