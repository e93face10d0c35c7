"""Activation functions, as modules, functions and Tensor methods.

Each costs a fixed number of FLOPs per output element: the arithmetic of its defining formula, with
exp, log, tanh, erf and sqrt counted as one FLOP each, and a compare/select as one.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import Call, Cost, elementwise, rule
from ._util import is_float

# name: (FLOPs per element, formula, module classes, functions, Tensor methods)
ACTIVATIONS: dict[str, tuple[int, str, tuple, tuple, tuple]] = {
    "relu": (1, "max(x, 0)", (nn.ReLU,), (F.relu, F.relu_, torch.relu, torch.relu_), ("relu", "relu_")),
    "relu6": (1, "min(max(x, 0), 6)", (nn.ReLU6,), (F.relu6,), ()),
    "hardtanh": (1, "clamp(x, min, max)", (nn.Hardtanh,), (F.hardtanh, F.hardtanh_), ()),
    "leaky_relu": (2, "x if x > 0 else a·x: compare, multiply", (nn.LeakyReLU,),
                   (F.leaky_relu, F.leaky_relu_), ()),
    "prelu": (2, "x if x > 0 else a·x: compare, multiply", (nn.PReLU,), (F.prelu, torch.prelu), ("prelu",)),
    "threshold": (1, "x if x > t else v", (nn.Threshold,), (F.threshold, F.threshold_, torch.threshold, torch.threshold_), ()),
    "rrelu": (2, "x if x > 0 else a·x with a random: compare, multiply", (nn.RReLU,), (F.rrelu, F.rrelu_, torch.rrelu, torch.rrelu_), ()),
    "elu": (3, "x if x > 0 else α·(exp(x) − 1): exp, subtract, multiply", (nn.ELU,), (F.elu, F.elu_), ()),
    "celu": (4, "max(0, x) + min(0, α·(exp(x/α) − 1)): divide, exp, subtract, multiply", (nn.CELU,), (F.celu, F.celu_, torch.celu, torch.celu_), ()),
    "selu": (4, "λ·elu(x): elu 3 + scale 1", (nn.SELU,), (F.selu, F.selu_, torch.selu, torch.selu_), ()),
    "gelu": (5, "x·Φ(x) = 0.5·x·(1 + erf(x/√2)): divide, erf, add, two multiplies; the tanh approximation "
                "0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) costs 9", (nn.GELU,), (F.gelu,), ()),
    "silu": (5, "x·sigmoid(x): sigmoid 4 + multiply", (nn.SiLU,), (F.silu,), ()),
    "sigmoid": (4, "1/(1 + exp(−x)): negate, exp, add, divide", (nn.Sigmoid,), (torch.sigmoid, torch.sigmoid_, F.sigmoid),
                ("sigmoid", "sigmoid_")),
    "tanh": (1, "tanh(x), one transcendental", (nn.Tanh,), (torch.tanh, torch.tanh_, F.tanh), ("tanh", "tanh_")),
    "hardswish": (4, "x·relu6(x + 3)/6: add, clamp, multiply, divide", (nn.Hardswish,), (F.hardswish,), ()),
    "hardsigmoid": (3, "relu6(x + 3)/6: add, clamp, divide", (nn.Hardsigmoid,), (F.hardsigmoid,), ()),
    "mish": (5, "x·tanh(softplus(x)): exp, add, log, tanh, multiply", (nn.Mish,), (F.mish,), ()),
    "softplus": (5, "log(1 + exp(β·x))/β: multiply, exp, add, log, divide", (nn.Softplus,), (F.softplus,), ()),
    "softsign": (3, "x/(1 + |x|): abs, add, divide", (nn.Softsign,), (F.softsign,), ()),
    "tanhshrink": (2, "x − tanh(x)", (nn.Tanhshrink,), (F.tanhshrink,), ()),
    "softshrink": (2, "x ∓ λ where |x| > λ: compare, subtract", (nn.Softshrink,), (F.softshrink,), ()),
    "hardshrink": (1, "x where |x| > λ: compare", (nn.Hardshrink,), (F.hardshrink, torch.hardshrink), ("hardshrink",)),
    "logsigmoid": (5, "log(sigmoid(x)): sigmoid 4 + log", (nn.LogSigmoid,), (F.logsigmoid,), ()),
    "glu": (5, "a·sigmoid(b) on the two halves, per output element: sigmoid 4 + multiply", (nn.GLU,), (F.glu,), ()),
}

GELU_TANH_PER_ELEMENT = 9


def _make(name: str, per: int, formula: str) -> Callable[[Call], Cost]:
    def activation(call: Call) -> Cost:
        x = call.args[0] if call.args else next(iter(call.kwargs.values()))
        if not is_float(x):
            return Cost()
        cost = per
        if name == "gelu":
            approximate: Any = call.module.approximate if call.module is not None else call.kwargs.get("approximate", "none")
            cost = GELU_TANH_PER_ELEMENT if approximate == "tanh" else per
        return elementwise(call.out_numel, cost)

    activation.__name__ = name
    activation.__doc__ = f"{per} FLOPs per output element: {formula}."
    return activation


for _name, (_per, _formula, _mods, _fns, _methods) in ACTIVATIONS.items():
    rule(*_mods, *_fns, *_methods, op=_name, family="activation")(_make(_name, _per, _formula))
