"""Rules called directly on meta ``Call``s, one family at a time: argument order and keyword handling cannot
hide behind fx's lowering (fx turns ``x.__rmatmul__(y)`` into ``y @ x``; dynamo records the method as called)."""
from __future__ import annotations

import operator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fxflops import REGISTRY, Call, Cost

M = torch.device("meta")


def t(*shape, dtype=torch.float32):
    return torch.empty(*shape, device=M, dtype=dtype)


def price(target, *args, module=None, **kwargs) -> Cost:
    """The rule of ``target`` on a Call built as a graph node would be: its output computed on meta."""
    if module is not None:
        out = module(*args, **kwargs)
        rule = REGISTRY.for_module(module)
    elif isinstance(target, str):
        out = getattr(args[0], target)(*args[1:], **kwargs)
        rule = REGISTRY.for_method(target)
    else:
        out = target(*args, **kwargs)
        rule = REGISTRY.for_function(target)
    assert rule is not None, target
    return rule(Call(target if module is None else type(module), args, kwargs, out, module))


CASES = [
    # family, target, args, kwargs, (MACs, FLOPs) by hand
    ("conv", F.conv2d, (t(1, 3, 8, 8), t(4, 3, 3, 3), t(4)), {}, (4 * 36 * 27, 2 * 4 * 36 * 27 + 4 * 36)),
    ("linear", F.linear, (t(2, 5), t(7, 5), t(7)), {}, (70, 140 + 14)),
    ("matmul", torch.matmul, (t(4, 3), t(3, 6)), {}, (72, 144)),
    ("matmul", operator.matmul, (t(2, 4, 3), t(3, 6)), {}, (144, 288)),
    ("matmul", "__rmatmul__", (t(8, 3), t(5, 8)), {}, (120, 240)),
    ("matmul", "mm", (t(4, 3), t(3, 6)), {}, (72, 144)),
    ("matmul", torch.bmm, (t(2, 4, 3), t(2, 3, 6)), {}, (144, 288)),
    ("matmul", torch.einsum, ("ij,jk->ik", t(4, 3), t(3, 6)), {}, (72, 144)),
    ("matmul", torch.addmm, (t(6), t(4, 3), t(3, 6)), {}, (72, 144 + 24)),
    ("attention", F.scaled_dot_product_attention, (t(1, 2, 4, 8), t(1, 2, 5, 8), t(1, 2, 5, 3)), {},
     (2 * 4 * 5 * 8 + 2 * 4 * 5 * 3, 2 * (2 * 4 * 5 * 8 + 2 * 4 * 5 * 3) + 2 * 4 * 5 * 6)),
    ("norm", F.layer_norm, (t(2, 10), (10,)), {}, (0, 5 * 20)),
    ("activation", F.relu, (t(3, 7),), {}, (0, 21)),
    ("activation", F.gelu, (t(3, 7),), {}, (0, 5 * 21)),
    ("elementwise", operator.sub, (t(3, 7), t(7)), {}, (0, 21)),
    ("elementwise", "__rsub__", (t(3, 7), 1.0), {}, (0, 21)),
    ("elementwise", "__rtruediv__", (t(3, 7), 2.0), {}, (0, 21)),
    ("reduction", torch.softmax, (t(3, 7), -1), {}, (0, 5 * 21)),
    ("reduction", "sum", (t(3, 7),), {"dim": -1}, (0, 21)),
    ("pooling", F.max_pool2d, (t(1, 2, 8, 8), 2), {}, (0, 3 * 2 * 16)),
    ("resize", F.interpolate, (t(1, 2, 4, 4),), {"scale_factor": 2, "mode": "bilinear"}, (0, 9 * 2 * 64)),
    ("embedding", F.embedding, (t(3, 4, dtype=torch.long), t(10, 6)), {}, (0, 0)),
    ("distance", F.pairwise_distance, (t(4, 8), t(4, 8)), {}, (0, 4 * 32 + 4)),
    ("loss", F.mse_loss, (t(4, 3), t(4, 3)), {"reduction": "sum"}, (0, 2 * 12 + 12)),
    ("dropout", F.dropout, (t(3, 7),), {"p": 0.1, "training": True}, (0, 21)),
    ("shape", torch.reshape, (t(3, 8), (4, 6)), {}, (0, 0)),
]


@pytest.mark.parametrize("family, target, args, kwargs, expected", CASES,
                         ids=[f"{c[0]}-{getattr(c[1], '__name__', c[1])}" for c in CASES])
def test_rule_called_directly(family, target, args, kwargs, expected):
    rule = REGISTRY.for_method(target) if isinstance(target, str) else REGISTRY.for_function(target)
    assert rule.family == family
    assert price(target, *args, **kwargs) == Cost(*expected)


MODULE_CASES = [
    ("conv", nn.Conv2d(3, 4, 3, bias=False), (t(1, 3, 8, 8),), (4 * 36 * 27, 2 * 4 * 36 * 27)),
    ("linear", nn.Linear(5, 7, bias=False), (t(2, 5),), (70, 140)),
    ("rnn", nn.RNN(4, 6, batch_first=True, bias=False), (t(2, 3, 4),), (2 * 3 * 6 * (4 + 6), None)),
    ("attention", nn.MultiheadAttention(8, 2, bias=False, batch_first=True), (t(1, 4, 8), t(1, 4, 8), t(1, 4, 8)),
     (4 * 64 * 4 + 2 * 4 * 4 * 8, None)),
]


@pytest.mark.parametrize("family, module, args, expected", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_module_rule_called_directly(family, module, args, expected):
    module = module.to(M)
    assert REGISTRY.for_module(module).family == family
    cost = price(None, *args, module=module)
    assert cost.macs == expected[0] and (expected[1] is None or cost.flops == expected[1])


REFLECTED = sorted(m for m in REGISTRY.methods if m.startswith("__r") and "__" + m[3:] in REGISTRY.methods)


@pytest.mark.parametrize("name", REFLECTED)
def test_reflected_methods_price_the_operation_they_perform(name):
    """``x.__rOP__(y)`` is ``y OP x``: priced as the plain method on the swapped operands."""
    plain = "__" + name[3:]
    float_op = name not in ("__rand__", "__ror__", "__rxor__", "__rlshift__", "__rrshift__")
    x = t(8, 3) if float_op else t(8, 3, dtype=torch.int64)
    y = (t(5, 8) if name == "__rmatmul__" else t(8, 3)) if float_op else t(8, 3, dtype=torch.int64)
    assert price(name, x, y) == price(plain, y, x)
