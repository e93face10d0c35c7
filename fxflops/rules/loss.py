"""Loss functions (``torch.nn.functional``; the ``nn.*Loss`` modules trace into them).

Each loss costs a documented number of FLOPs per element of its pointwise part, plus its reduction:
``'none'`` adds nothing, ``'sum'`` one add per reduced element, ``'mean'`` one add per reduced element
and one division (``'batchmean'`` of kl_div likewise). exp, log, sqrt and pow count as one FLOP each,
a compare or clamp as one. Where the work depends on tensor *values* (which branch of smooth L1 an
element takes, how many labels a multilabel target holds), the docstring says how it is priced.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn import _reduction

from .registry import Call, Cost, contraction, elementwise, rule
from .activation import ACTIVATIONS
from .reduction import SOFTMAX_PER_ELEMENT

LOGSIGMOID = ACTIVATIONS["logsigmoid"][0]
SOFTPLUS = ACTIVATIONS["softplus"][0]


def bind(call: Call) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults filled in, legacy size_average/reduce folded into reduction."""
    bound = inspect.signature(call.target).bind(*call.args, **call.kwargs)
    bound.apply_defaults()
    a = dict(bound.arguments)
    if a.get("size_average") is not None or a.get("reduce") is not None:
        a["reduction"] = _reduction.legacy_get_string(a.get("size_average"), a.get("reduce"), emit_warning=False)
    return a


def reduction_flops(n: int, reduction: str) -> int:
    """'none' 0, 'sum' n adds, 'mean'/'batchmean' n adds + 1 division."""
    if reduction == "sum":
        return n
    if reduction in ("mean", "batchmean", "elementwise_mean"):
        return n + 1
    return 0


def pointwise_loss(per_element: int, n: int, reduction: str) -> Cost:
    return elementwise(per_element * n + reduction_flops(n, reduction))


def _numel(*ts: Any) -> int:
    """Elements of the broadcast of the given tensors."""
    shapes = [t.shape for t in ts if isinstance(t, torch.Tensor)]
    return torch.broadcast_shapes(*shapes).numel()


@rule(F.l1_loss, op="l1_loss", family="loss")
def l1_loss(call: Call) -> Cost:
    """|x − y|: 2 FLOPs per element (subtract, abs) + reduction."""
    a = bind(call)
    return pointwise_loss(2, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.mse_loss, op="mse_loss", family="loss")
def mse_loss(call: Call) -> Cost:
    """(x − y)²: 2 FLOPs per element (subtract, square) + 1 per element with a weight + reduction."""
    a = bind(call)
    per = 2 + (1 if a.get("weight") is not None else 0)
    return pointwise_loss(per, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.smooth_l1_loss, op="smooth_l1_loss", family="loss")
def smooth_l1_loss(call: Call) -> Cost:
    """d = x − y; 0.5·d²/β if |d| < β else |d| − 0.5·β. Which branch an element takes depends on values, so every
    element is priced on the quadratic branch: 6 FLOPs (subtract, abs, compare, square, scale, divide) + reduction
    (β = 0 is plain L1: 2 per element)."""
    a = bind(call)
    per = 2 if a["beta"] == 0 else 6
    return pointwise_loss(per, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.huber_loss, op="huber_loss", family="loss")
def huber_loss(call: Call) -> Cost:
    """d = x − y; 0.5·d² if |d| < δ else δ·(|d| − 0.5·δ): 5 FLOPs per element (subtract, abs, compare and the two of
    either branch) + 1 with a weight + reduction."""
    a = bind(call)
    per = 5 + (1 if a.get("weight") is not None else 0)
    return pointwise_loss(per, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.binary_cross_entropy, op="binary_cross_entropy", family="loss")
def binary_cross_entropy(call: Call) -> Cost:
    """−w·(y·log(x) + (1 − y)·log(1 − x)), logs clamped at −100: 10 FLOPs per element (two logs, two clamps,
    two subtractions from 1, two multiplies, add, negate) + 1 with a weight + reduction."""
    a = bind(call)
    per = 10 + (1 if a["weight"] is not None else 0)
    return pointwise_loss(per, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.binary_cross_entropy_with_logits, op="binary_cross_entropy_with_logits", family="loss")
def binary_cross_entropy_with_logits(call: Call) -> Cost:
    """(1 − y)·x + softplus(−x) (the stable form): 9 FLOPs per element (subtract from 1, multiply, negate,
    softplus 5, add); pos_weight p: 4 more ((p − 1)·y + 1 scales the softplus term); weight: 1 more; + reduction."""
    a = bind(call)
    per = 4 + SOFTPLUS + (4 if a["pos_weight"] is not None else 0) + (1 if a["weight"] is not None else 0)
    return pointwise_loss(per, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.kl_div, op="kl_div", family="loss")
def kl_div(call: Call) -> Cost:
    """y·(log(y) − x), or exp(y)·(y − x) with log_target: 3 FLOPs per element + reduction ('batchmean': the sum
    and one division)."""
    a = bind(call)
    return pointwise_loss(3, _numel(a["input"], a["target"]), a["reduction"])


def _nll(target: torch.Tensor, weighted: bool, reduction: str) -> int:
    # −x[target]: a gather (free) and a negate per target element; a class weight multiplies each; a weighted
    # mean also sums the weights (M adds) before its division.
    m = target.numel()
    flops = m + (m if weighted else 0) + reduction_flops(m, reduction)
    if weighted and reduction == "mean":
        flops += m
    return flops


@rule(F.nll_loss, op="nll_loss", family="loss")
def nll_loss(call: Call) -> Cost:
    """M target elements: M FLOPs (negate the picked log-probability) + M with class weights (+ M more to sum the
    weights for 'mean') + reduction over M."""
    a = bind(call)
    return elementwise(_nll(a["target"], a["weight"] is not None, a["reduction"]))


def cross_entropy_flops(logits: torch.Tensor, target: torch.Tensor, weighted: bool, reduction: str,
                        smoothing: float) -> int:
    n = logits.numel()
    flops = SOFTMAX_PER_ELEMENT * n  # log_softmax over the class dim
    if target.is_floating_point():  # class probabilities: −Σ_c y_c·logp_c per sample
        samples = n // logits.shape[1] if logits.dim() > 1 else 1
        flops += 2 * n + (n if weighted else 0) + reduction_flops(samples, reduction)
        if smoothing > 0:
            flops += 2 * n  # y ← (1 − ε)·y + ε/C
        return flops
    flops += _nll(target, weighted, reduction)
    if smoothing > 0:  # −Σ_c logp_c / C per target (C adds, + C multiplies with weights), then (1 − ε)·nll + ε·smooth
        m = target.numel()
        flops += n + (n if weighted else 0) + 3 * m + reduction_flops(m, reduction)
    return flops


@rule(F.cross_entropy, op="cross_entropy", family="loss")
def cross_entropy(call: Call) -> Cost:
    """log_softmax (5 FLOPs per input element) + nll_loss on class-index targets; with class-probability targets
    2 FLOPs per input element (multiply, sum) + 1 with weights + reduction over samples. label_smoothing ε > 0 adds
    the smoothing term: 1 FLOP per input element (+1 weighted) and 3 per target (two scales, add) with its own
    reduction (probability targets: 2 per input element to blend y with ε/C)."""
    a = bind(call)
    return elementwise(cross_entropy_flops(a["input"], a["target"], a["weight"] is not None, a["reduction"],
                                           float(a["label_smoothing"])))


@rule(F.linear_cross_entropy, op="linear_cross_entropy", family="loss")
def linear_cross_entropy(call: Call) -> Cost:
    """cross_entropy(linear(input, linear_weight, linear_bias), target): MACs = (input rows)·C·D of the projection,
    + output elements for the bias, + the cross_entropy formula on the (rows, C) logits."""
    a = bind(call)
    x, w = a["input"], a["linear_weight"]
    rows = x.numel() // x.shape[-1]
    logits = torch.empty((rows, w.shape[0]), device="meta")
    target = a["target"]
    bias = logits.numel() if a["linear_bias"] is not None else 0
    ce = cross_entropy_flops(logits, target.reshape(-1) if not target.is_floating_point() else logits,
                             a["weight"] is not None, a["reduction"], float(a["label_smoothing"]))
    return contraction(rows * w.shape[0] * w.shape[-1], bias + ce)


@rule(F.poisson_nll_loss, op="poisson_nll_loss", family="loss")
def poisson_nll_loss(call: Call) -> Cost:
    """log_input: exp(x) − y·x (3 FLOPs per element); otherwise x − y·log(x + eps) (4). full=True adds the
    Stirling term y·log(y) − y + 0.5·log(2π·y) where y > 1: 8 per element (log, multiply, subtract, multiply,
    log, multiply, add, compare/mask). + reduction."""
    a = bind(call)
    per = (3 if a["log_input"] else 4) + (8 if a["full"] else 0)
    return pointwise_loss(per, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.gaussian_nll_loss, op="gaussian_nll_loss", family="loss")
def gaussian_nll_loss(call: Call) -> Cost:
    """0.5·(log(max(var, eps)) + (x − y)²/var): 7 FLOPs per element (clamp, log, subtract, square, divide, add,
    halve) + 1 with full=True (the 0.5·log(2π) constant) + reduction."""
    a = bind(call)
    per = 7 + (1 if a["full"] else 0)
    return pointwise_loss(per, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.soft_margin_loss, op="soft_margin_loss", family="loss")
def soft_margin_loss(call: Call) -> Cost:
    """log(1 + exp(−y·x)): 5 FLOPs per element (multiply, negate, exp, add, log) + reduction."""
    a = bind(call)
    return pointwise_loss(5, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.multilabel_soft_margin_loss, op="multilabel_soft_margin_loss", family="loss")
def multilabel_soft_margin_loss(call: Call) -> Cost:
    """−(y·logsigmoid(x) + (1 − y)·logsigmoid(−x)) per element: 2 logsigmoids (5 each) + negate, subtract from 1,
    two multiplies, add, negate = 16 FLOPs (+1 with a weight); then the mean over the C classes of each sample
    (C adds + 1 division) and the reduction over samples."""
    a = bind(call)
    x = a["input"]
    n = x.numel()
    samples = n // x.shape[-1] if x.dim() > 1 else 1
    per = 2 * LOGSIGMOID + 6 + (1 if a["weight"] is not None else 0)
    return elementwise(per * n + n + samples + reduction_flops(samples, a["reduction"]))


@rule(F.hinge_embedding_loss, op="hinge_embedding_loss", family="loss")
def hinge_embedding_loss(call: Call) -> Cost:
    """x where y = 1, max(0, margin − x) where y = −1: 4 FLOPs per element (subtract, clamp, two compare/selects)
    + reduction."""
    a = bind(call)
    return pointwise_loss(4, _numel(a["input"], a["target"]), a["reduction"])


@rule(F.margin_ranking_loss, op="margin_ranking_loss", family="loss")
def margin_ranking_loss(call: Call) -> Cost:
    """max(0, −y·(x1 − x2) + margin): 5 FLOPs per element (subtract, multiply, negate, add, clamp) + reduction."""
    a = bind(call)
    return pointwise_loss(5, _numel(a["input1"], a["input2"], a["target"]), a["reduction"])


@rule(F.cosine_embedding_loss, op="cosine_embedding_loss", family="loss")
def cosine_embedding_loss(call: Call) -> Cost:
    """Per pair of D-vectors: cos = x1·x2 / √(|x1|²·|x2|²) = three dot products (2·D FLOPs each) + 4 (multiply,
    clamp eps, sqrt, divide); then 1 − cos where y = 1, max(0, cos − margin) where y = −1: 4 per pair; + reduction."""
    a = bind(call)
    x1 = a["input1"]
    d = x1.shape[-1]
    pairs = x1.numel() // d
    return elementwise(pairs * (6 * d + 4 + 4) + reduction_flops(pairs, a["reduction"]))


@rule(F.multi_margin_loss, op="multi_margin_loss", family="loss")
def multi_margin_loss(call: Call) -> Cost:
    """Per sample and class i: max(0, margin − x[y] + x[i])^p · w[y]: subtract, add, clamp, sum = 4 FLOPs per input
    element (+1 for p = 2, +1 with a weight); then one division by C per sample and the reduction over samples."""
    a = bind(call)
    x = a["input"]
    samples = x.numel() // x.shape[-1] if x.dim() > 1 else 1
    per = 4 + (1 if a["p"] == 2 else 0) + (1 if a["weight"] is not None else 0)
    return elementwise(per * x.numel() + samples + reduction_flops(samples, a["reduction"]))


@rule(F.multilabel_margin_loss, op="multilabel_margin_loss", family="loss")
def multilabel_margin_loss(call: Call) -> Cost:
    """Σ over target labels j and non-target classes i of max(0, 1 − (x[y_j] − x[i])) / C. How many labels a sample
    holds is data, so it is priced for one label per sample: 4 FLOPs per input element (subtract, subtract from 1,
    clamp, add) + 1 division per sample + reduction over samples (a lower bound when samples hold more labels)."""
    a = bind(call)
    x = a["input"]
    samples = x.numel() // x.shape[-1] if x.dim() > 1 else 1
    return elementwise(4 * x.numel() + samples + reduction_flops(samples, a["reduction"]))


def pairwise_distance_flops(x1: torch.Tensor, x2: torch.Tensor) -> tuple[int, int]:
    """(FLOPs, distances) of ‖x1 − x2 + eps‖_p over the last dim: 4 per element (subtract, add eps, |·|^p, sum)
    and 1 per distance (the root)."""
    n = _numel(x1, x2)
    rows = n // max(int(torch.broadcast_shapes(x1.shape, x2.shape)[-1]), 1)
    return 4 * n + rows, rows


@rule(F.triplet_margin_loss, op="triplet_margin_loss", family="loss")
def triplet_margin_loss(call: Call) -> Cost:
    """max(d(a, p) − d(a, n) + margin, 0) with d the pairwise p-distance (4 FLOPs per element + 1 root per row, see
    pairwise_distance): two distances (three with swap, plus a min per row), then 3 FLOPs per row (subtract, add,
    clamp) + reduction over rows."""
    a = bind(call)
    d, rows = pairwise_distance_flops(a["anchor"], a["positive"])
    flops = 2 * d + 3 * rows
    if a["swap"]:
        flops += d + rows
    return elementwise(flops + reduction_flops(rows, a["reduction"]))


@rule(F.triplet_margin_with_distance_loss, op="triplet_margin_with_distance_loss", family="loss")
def triplet_margin_with_distance_loss(call: Call) -> Cost:
    """As triplet_margin_loss, with the distance priced by its own rule: pairwise_distance when distance_function is
    None, else the given function counted on the same shapes, with the outer count's rules and ignore list."""
    a = bind(call)
    fn = a["distance_function"]
    anchor, positive = a["anchor"], a["positive"]
    if fn is None:
        d, rows = pairwise_distance_flops(anchor, positive)
        dist = elementwise(d)
    else:
        dist, out = call.price(fn, anchor, positive)
        rows = out.numel() if isinstance(out, torch.Tensor) else 1
    total = dist * (3 if a["swap"] else 2)
    return total + elementwise(3 * rows + (rows if a["swap"] else 0) + reduction_flops(rows, a["reduction"]))


@rule(torch.nn.TripletMarginWithDistanceLoss, op="triplet_margin_with_distance_loss", family="loss")
def triplet_margin_with_distance_module(call: Call) -> Cost:
    """As F.triplet_margin_with_distance_loss with the module's distance_function, margin, swap and reduction. The
    module is a leaf because fx cannot put a Python callable (a lambda distance) into a graph node."""
    m = call.module
    kwargs = dict(distance_function=m.distance_function, margin=m.margin, swap=m.swap, reduction=m.reduction)
    args = tuple(call.arg(i, name) for i, name in enumerate(("anchor", "positive", "negative")))
    return triplet_margin_with_distance_loss(Call(F.triplet_margin_with_distance_loss, args, kwargs, call.out,
                                                  pricer=call.pricer, left_out=call.left_out))


# One step of the CTC forward recursion per (time, sample, extended label): a log-sum-exp of up to three
# predecessors (2 compares for the max, 3 subtracts, 3 exps, 2 adds, log, add the max back = 12) plus the
# emission log-probability (1).
CTC_PER_STATE = 13


@rule(F.ctc_loss, op="ctc_loss", family="loss")
def ctc_loss(call: Call) -> Cost:
    """The forward (alpha) recursion over T time steps × N samples × (2·S + 1) extended labels, S the (padded)
    target length: 13 FLOPs per state (log-sum-exp of three predecessors + the emission), then 1 division per
    sample by its target length for 'mean' + reduction over samples."""
    a = bind(call)
    log_probs, targets = a["log_probs"], a["targets"]
    t = log_probs.shape[0]
    n = log_probs.shape[1] if log_probs.dim() == 3 else 1
    s = targets.shape[-1] if targets.dim() == 2 else targets.numel() // max(n, 1)
    flops = CTC_PER_STATE * t * n * (2 * s + 1)
    if a["reduction"] == "mean":
        flops += n
    return elementwise(flops + reduction_flops(n, a["reduction"]))


@rule(torch.nn.AdaptiveLogSoftmaxWithLoss, op="adaptive_log_softmax", family="loss")
def adaptive_log_softmax(call: Call) -> Cost:
    """forward(input, target) projects each row through the head (in → shortlist + clusters) and, for the rows whose
    target falls in tail cluster i, through that cluster's two projections (in → in/div_value^(i+1) → cluster size).
    Which rows reach which cluster is data, so it is priced as log_prob(input): every row through the head and
    every cluster (an upper bound). MACs = R·(in·head + Σ_i (in·h_i + h_i·c_i)); FLOPs = 2·MACs + head bias (R·head
    when head_bias) + log_softmax 5 per element over the head and each cluster output + 1 add per cluster
    output element (the cluster's head log-probability) + R·2 for gathering the target log-probability and the
    mean of the loss."""
    m = call.module
    x = call.args[0]
    rows = x.numel() // m.in_features
    head = m.head.out_features
    macs = rows * m.in_features * head
    flops = SOFTMAX_PER_ELEMENT * rows * head + (rows * head if m.head.bias is not None else 0)
    for tail in m.tail:
        proj, out = tail[0], tail[1]
        macs += rows * (proj.in_features * proj.out_features + out.in_features * out.out_features)
        flops += (SOFTMAX_PER_ELEMENT + 1) * rows * out.out_features
    return contraction(macs, flops + 2 * rows)
