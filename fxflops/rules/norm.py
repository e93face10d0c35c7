"""Normalisation layers: BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm, LocalResponseNorm, F.normalize."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, elementwise, rule

# Statistics and normalisation from the batch: mean, subtract, square, sum (variance), scale by 1/σ.
STATS_PER_ELEMENT = 5
# Normalisation with stored running statistics: subtract the mean, scale by 1/σ.
RUNNING_PER_ELEMENT = 2


def norm_cost(numel: int, uses_batch_stats: bool, weight: bool, bias: bool) -> Cost:
    per = (STATS_PER_ELEMENT if uses_batch_stats else RUNNING_PER_ELEMENT) + int(weight) + int(bias)
    return elementwise(numel, per)


# The private bases carry the rule to the Lazy* variants, whose MRO skips BatchNorm2d & co.
@rule(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.modules.batchnorm._BatchNorm,
      op="batch_norm", family="norm")
def batch_norm_module(call: Call) -> Cost:
    """Per element: 5 FLOPs (mean, subtract, square, sum, scale) when batch statistics are used (training, or
    track_running_stats=False), 2 (subtract running mean, scale) in eval; +1 for γ and +1 for β when affine."""
    m = call.module
    batch_stats = m.training or m.running_mean is None
    return norm_cost(call.out.numel(), batch_stats, m.weight is not None, m.bias is not None)


@rule(F.batch_norm, torch.batch_norm, op="batch_norm", family="norm")
def batch_norm_function(call: Call) -> Cost:
    """F.batch_norm(input, running_mean, running_var, weight, bias, training): as nn.BatchNorm."""
    x = call.arg(0, "input")
    batch_stats = bool(call.arg(5, "training", False)) or call.arg(1, "running_mean", None) is None
    return norm_cost(x.numel(), batch_stats, call.arg(3, "weight", None) is not None, call.arg(4, "bias", None) is not None)


def stats_norm_module(call: Call) -> Cost:
    """Per element: 5 FLOPs (mean, subtract, square, sum, scale; statistics per sample or group) + 1 for γ + 1 for β
    when affine."""
    m = call.module
    return norm_cost(call.out.numel(), True, m.weight is not None, m.bias is not None)


def stats_norm_function(call: Call) -> Cost:
    """F.layer_norm(input, normalized_shape, weight, bias) / F.group_norm(input, num_groups, weight, bias): as the
    module, 5 FLOPs per element + 1 for γ + 1 for β when given."""
    x = call.arg(0, "input")
    return norm_cost(x.numel(), True, call.arg(2, "weight", None) is not None, call.arg(3, "bias", None) is not None)


rule(nn.LayerNorm, op="layer_norm", family="norm")(stats_norm_module)
rule(nn.GroupNorm, op="group_norm", family="norm")(stats_norm_module)
rule(F.layer_norm, torch.layer_norm, op="layer_norm", family="norm")(stats_norm_function)
rule(F.group_norm, torch.group_norm, op="group_norm", family="norm")(stats_norm_function)


@rule(nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.modules.instancenorm._InstanceNorm,
      op="instance_norm", family="norm")
def instance_norm_module(call: Call) -> Cost:
    """Per element: 5 FLOPs with per-instance statistics (the default), 2 with running statistics in eval
    (track_running_stats=True); +1 for γ and +1 for β when affine."""
    m = call.module
    batch_stats = m.training or not m.track_running_stats
    return norm_cost(call.out.numel(), batch_stats, m.weight is not None, m.bias is not None)


@rule(F.instance_norm, torch.instance_norm, op="instance_norm", family="norm")
def instance_norm_function(call: Call) -> Cost:
    """F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats=True): as nn.InstanceNorm."""
    x = call.arg(0, "input")
    batch_stats = bool(call.arg(5, "use_input_stats", True))
    return norm_cost(x.numel(), batch_stats, call.arg(3, "weight", None) is not None, call.arg(4, "bias", None) is not None)


# Root mean square: square, sum, scale by 1/rms.
RMS_PER_ELEMENT = 3


@rule(nn.RMSNorm, op="rms_norm", family="norm")
def rms_norm_module(call: Call) -> Cost:
    """Per element: 3 FLOPs (square, sum, scale by 1/rms) + 1 for γ when elementwise_affine."""
    m = call.module
    return elementwise(call.out.numel(), RMS_PER_ELEMENT + (1 if m.weight is not None else 0))


@rule(F.rms_norm, torch.rms_norm, op="rms_norm", family="norm")
def rms_norm_function(call: Call) -> Cost:
    """F.rms_norm(input, normalized_shape, weight, eps): as nn.RMSNorm."""
    x = call.arg(0, "input")
    return elementwise(x.numel(), RMS_PER_ELEMENT + (1 if call.arg(2, "weight", None) is not None else 0))


@rule(F.normalize, op="normalize", family="norm")
def normalize(call: Call) -> Cost:
    """F.normalize (Lp normalisation): 3 FLOPs per element (power, sum, divide)."""
    return elementwise(call.arg(0, "input").numel(), 3)


@rule(nn.LocalResponseNorm, nn.CrossMapLRN2d, F.local_response_norm, op="local_response_norm", family="norm")
def local_response_norm(call: Call) -> Cost:
    """Per element: size FLOPs for the windowed sum of squares (square + add per neighbour) + 4 (scale, add k, power, divide)."""
    size = call.module.size if call.module is not None else call.arg(1, "size")
    x = call.args[0]
    return elementwise(x.numel(), size + 4)
