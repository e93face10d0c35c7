"""Elementwise arithmetic on tensors: the residual adds, scalings and gates hook-based counters miss.

Every op here costs a fixed number of FLOPs per *output* element (so broadcasting is priced by the
result), and nothing when no floating-point tensor is involved (integer index arithmetic, bool masks).
"""
from __future__ import annotations

import operator
from typing import Callable

import torch

from .registry import Call, Cost, elementwise, rule
from ._util import is_float


def _any_float(call: Call) -> bool:
    return any(is_float(t) for t in call.tensor_args) or is_float(call.out)


def _per_element(per: int, what: str, alpha: bool = False) -> Callable[[Call], Cost]:
    def fn(call: Call) -> Cost:
        if not _any_float(call):
            return Cost()
        scaled = alpha and call.kwargs.get("alpha", 1) != 1  # add/sub(a, b, alpha=k) compute a ± k·b
        return elementwise(call.out_numel, per + int(scaled))

    fn.__doc__ = f"{per} FLOP{'s' if per != 1 else ''} per output element ({what}); 0 without a floating-point tensor."
    if alpha:
        fn.__doc__ += " One more per output element when alpha ≠ 1 (a ± alpha·b)."
    return fn


_BINARY = ("add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow", "atan2",
           "maximum", "minimum", "fmax", "fmin", "hypot", "xlogy", "copysign", "rsub", "subtract", "multiply",
           "divide")
_UNARY = ("neg", "abs", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal",
          "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf", "erfc",
          "erfinv", "sign", "sgn", "floor", "ceil", "round", "trunc", "frac", "square", "clamp", "clip",
          "clamp_min", "clamp_max", "nan_to_num", "logit", "sinc", "positive", "negative", "absolute")
_COMPARE = ("eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite", "greater", "less", "equal",
            "greater_equal", "less_equal", "not_equal", "isclose")

_OPERATORS_ARITH = (operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
                    operator.pow, operator.neg, operator.iadd, operator.isub, operator.imul, operator.itruediv,
                    operator.ifloordiv, operator.imod, operator.ipow, operator.abs, operator.pos)
_OPERATORS_COMPARE = (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge)
_DUNDER = ("__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__", "__rmul__", "__imul__",
           "__truediv__", "__rtruediv__", "__itruediv__", "__pow__", "__rpow__", "__neg__", "__abs__",
           "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__div__", "__rdiv__", "__idiv__", "__ipow__",
           "__ifloordiv__", "__imod__")


def _names(names: tuple[str, ...]) -> list:
    """torch.<name>, Tensor.<name>() and the in-place Tensor.<name>_() for each name that exists."""
    out: list = []
    for n in names:
        if hasattr(torch, n):
            out.append(getattr(torch, n))
        out.extend([n, n + "_"])
    return out


_ALIASES = {"truediv": "div", "true_divide": "div", "divide": "div", "subtract": "sub", "multiply": "mul",
            "floordiv": "floor_divide", "mod": "remainder", "pos": "positive", "negative": "neg",
            "absolute": "abs", "clip": "clamp", "greater": "gt", "less": "lt", "equal": "eq", "not_equal": "ne",
            "greater_equal": "ge", "less_equal": "le", "rsub": "sub"}


def canonical(target) -> str:
    """The op name reports use for an elementwise target: operator.iadd, Tensor.add_, "__radd__" → add."""
    name = target if isinstance(target, str) else target.__name__
    name = name.strip("_")
    if not isinstance(target, str) and getattr(target, "__module__", None) in ("_operator", "operator") \
            and name.startswith("i") and name[1:] in {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow"}:
        name = name[1:]
    if isinstance(target, str) and target.startswith("__r") and target.endswith("__"):
        name = name[1:]
    if isinstance(target, str) and not target.startswith("__") and target.endswith("_"):
        name = name.rstrip("_")
    return _ALIASES.get(name, name)


def _register(targets, per: int, what: str, family: str = "elementwise") -> None:
    """One rule per canonical op name, so reports say add/mul/div rather than a family name."""
    groups: dict[str, list] = {}
    for t in targets:
        groups.setdefault(canonical(t), []).append(t)
    for op, ts in groups.items():
        rule(*ts, op=op, family=family)(_per_element(per, what, alpha=op in ("add", "sub")))


_register((*_OPERATORS_ARITH, *_DUNDER, *_names(_BINARY + _UNARY)), 1,
          "one arithmetic operation or one transcendental function")
_register((*_OPERATORS_COMPARE, "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", *_names(_COMPARE)), 1,
          "one floating-point comparison")
_register((torch.addcmul, torch.addcdiv, "addcmul", "addcmul_", "addcdiv", "addcdiv_"), 3,
          "input + value·(t1 ∘ t2): multiply/divide, scale, add")
_register((torch.lerp, "lerp", "lerp_"), 3, "start + w·(end − start): subtract, multiply, add")


# The rest of torch's pointwise math: arc* spellings of the inverse trigonometric functions, special functions
# (one transcendental each) and float predicates.
_ALIASES.update({"arccos": "acos", "arccosh": "acosh", "arcsin": "asin", "arcsinh": "asinh", "arctan": "atan",
                 "arctanh": "atanh", "arctan2": "atan2", "fix": "trunc"})
_register(_names(("arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "arctan2", "fix", "deg2rad",
                  "rad2deg", "lgamma", "digamma", "i0", "angle", "conj_physical", "float_power", "nextafter",
                  "heaviside", "igamma", "igammac", "polygamma", "signbit")), 1,
          "one arithmetic operation or one transcendental function")
_register(_names(("isneginf", "isposinf", "isreal")), 1, "one floating-point comparison")
_register(_names(("ldexp",)), 2, "x·2^e: exp2, multiply")
_register(_names(("logaddexp", "logaddexp2")), 5,
          "log(e^a + e^b) as max + log1p(exp(−|a − b|)): subtract, exp, log1p, max, add")


@rule(torch.mvlgamma, "mvlgamma", "mvlgamma_", op="mvlgamma", family="elementwise")
def mvlgamma(call: Call) -> Cost:
    """Multivariate log-gamma of order p: Σ_{i<p} lgamma(x − i/2) + const, 3·p FLOPs per element (shift, lgamma, add)."""
    return elementwise(call.out_numel, 3 * int(call.arg(1, "p")))


@rule(torch.polar, op="polar", family="elementwise")
def polar(call: Call) -> Cost:
    """abs·(cos θ + i·sin θ): cos, sin and two multiplies, 4 FLOPs per output element."""
    return elementwise(call.out_numel, 4)
