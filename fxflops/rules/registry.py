"""The op table: one :class:`Rule` per op, keyed by module class, function object or method name.

A rule is a plain function ``fn(call: Call) -> Cost`` registered with the :func:`rule` decorator; the same
:class:`Rule` carries the op's other formulas: the bytes it moves (:func:`byte_rule`, registered onto the rules of
the targets it names), its backward cost (:func:`backward_rule`) and what autograd saves for it
(:func:`saved_rule`), the last two keyed by the rule's op name or its family, so that a new op of a known family
needs none of its own. The cost pass stores the rule it found on the node's record, and every later pass reads the
formulas from there. Each docstring is the formula: ``docs/conventions.md`` is generated from them, so the
documentation cannot drift from the code.
"""
from __future__ import annotations

import builtins
import inspect
import operator
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

import torch
import torch.nn.functional as F

from ..tensors import tensors_in
from ..types import Cost, Status

__all__ = [
    "Cost",
    "Call",
    "Rule",
    "OpFormula",
    "BACKWARD_RULES",
    "SAVED_RULES",
    "BACKWARD_BYTES",
    "backward_rule",
    "backward_byte_rule",
    "saved_rule",
    "byte_rule",
    "weights_rule",
    "module_weights",
    "Registry",
    "REGISTRY",
    "rule",
    "free",
    "contraction",
    "elementwise",
]


def contraction(macs: int, extra_flops: int = 0) -> Cost:
    """Cost of a contraction: each MAC is two FLOPs, plus ``extra_flops`` (bias adds, scaling...)."""
    macs = int(macs)
    return Cost(macs, 2 * macs + int(extra_flops))


def elementwise(numel: int, per_element: int | float = 1) -> Cost:
    """Cost of ``per_element`` FLOPs on each of ``numel`` elements; no MACs."""
    return Cost(0, int(round(int(numel) * per_element)))


ZERO = Cost()
_MISSING = object()


@dataclass
class Call:
    """One op invocation as a rule sees it: shapes come from meta/fake tensors, never from data.

    ``args``/``kwargs`` hold the node's arguments with every fx node replaced by the value it produced
    during shape propagation (a meta or fake tensor, a Python scalar, a tuple...). For ``call_method``
    nodes ``args[0]`` is the tensor the method is called on; for ``call_module`` nodes ``module`` is
    the submodule.

    A rule that must price a user callable (a loss's ``distance_function``) asks the call for it with
    :meth:`price`, which counts it in the same context as the outer model: same registry, custom rules,
    ``ignore`` and strictness. What it could not price is collected in ``left_out``.
    """

    target: Any
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    out: Any = None
    module: torch.nn.Module | None = None
    # Set by the cost pass: prices ``fn(*args, **kwargs)`` in the outer call's context, returning
    # (cost, output value, what was left out).
    pricer: Callable[..., tuple[Cost, Any, list[str]]] | None = field(default=None, repr=False, compare=False)
    left_out: list[str] = field(default_factory=list, repr=False, compare=False)

    def price(self, fn: Callable, *args: Any, **kwargs: Any) -> tuple[Cost, Any]:
        """Count ``fn(*args, **kwargs)`` (a function or module, on meta tensors) as the outer model is counted;
        returns its cost and its output value."""
        if self.pricer is None:
            raise RuntimeError(f"{target_name(self.target)}: this Call was made outside a count, so it cannot "
                               "price a nested function; call the rule through fxflops.trace_flops")
        cost, out, left = self.pricer(fn, args, kwargs)
        self.left_out.extend(left)
        return cost, out

    def arg(self, index: int, name: str, default: Any = _MISSING) -> Any:
        """The argument given positionally at ``index`` or by keyword ``name``."""
        if index < len(self.args):
            return self.args[index]
        if name in self.kwargs:
            return self.kwargs[name]
        if default is _MISSING:
            raise TypeError(f"{target_name(self.target)}: missing argument {name!r}")
        return default

    @property
    def out_numel(self) -> int:
        """Number of elements of the (first) tensor output; 0 when the op returns no tensor."""
        return numel(self.out)

    @property
    def tensor_args(self) -> list[torch.Tensor]:
        return tensors_in((self.args, dict(self.kwargs)))


def numel(value: Any) -> int:
    """Elements of ``value`` if it is a tensor, of its first tensor if it is a tuple/list, else 0."""
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, (tuple, list)):
        for v in value:
            if isinstance(v, torch.Tensor):
                return v.numel()
    return 0


@dataclass(frozen=True)
class OpFormula:
    """A registered formula of an op beside its cost (bytes, backward, saved); ``formula`` is its docstring."""

    name: str
    fn: Callable[[Any], Any]
    formula: str

    def __call__(self, call: Any) -> Any:
        return self.fn(call)


# The backward formulas and what autograd saves, keyed by a rule's op name or its family (fxflops.rules.backward).
BACKWARD_RULES: dict[str, OpFormula] = {}
SAVED_RULES: dict[str, OpFormula] = {}
# The bytes a backward moves, keyed the same way; an op without one moves what fxflops.rules.backward.default_bytes
# says (the output gradient and what it saved read, the gradients it computes written).
BACKWARD_BYTES: dict[str, OpFormula] = {}


@dataclass(frozen=True)
class Rule:
    """A registered op: its cost formula and, where it has them, its other formulas.

    ``op`` is the op-type name used in reports (``conv2d``, ``add``...). ``status`` is ``Status.COUNTED``
    for rules that compute a cost and ``Status.FREE`` for ops that do no floating-point work by design
    (the ``reason`` says why). ``formula`` is the rule's docstring. ``bytes`` is the op's byte formula when it
    moves other than its inputs and outputs (:func:`byte_rule`).
    """

    op: str
    fn: Callable[[Call], Cost]
    status: Status = Status.COUNTED
    formula: str = ""
    reason: str = ""
    family: str = ""
    bytes: OpFormula | None = None
    # fn(module) -> tensors: the weights a module holds outside nn.Parameters (a quantized layer's packed int8
    # weight), counted as its parameters and read by its byte formula (weights_rule)
    weights: OpFormula | None = None

    def __call__(self, call: Call) -> Cost:
        return self.fn(call)

    def _own_or_family(self, table: dict[str, OpFormula]) -> OpFormula | None:
        """The op's formula in ``table``, else its family's (a custom rule has no family to fall back on)."""
        found = table.get(self.op)
        if found is None and self.family not in ("", "custom"):
            found = table.get(self.family)
        return found

    @property
    def backward(self) -> OpFormula | None:
        """The op's backward formula, or its family's; None for a custom rule without one."""
        return self._own_or_family(BACKWARD_RULES)

    @property
    def backward_bytes(self) -> OpFormula | None:
        """The bytes the op's backward moves: its own formula, or its family's, or None (the default formula)."""
        return self._own_or_family(BACKWARD_BYTES)

    def __reduce__(self) -> tuple:
        # A report crosses processes (sweep workers) with the rules that priced it; their functions may be local
        # (one per generated op), so a registered rule travels as its registration and is looked up on arrival.
        return _arrived, (_registration(self), self.op, self.status, self.formula, self.reason, self.family)

    def __deepcopy__(self, memo: dict) -> "Rule":
        return self  # a rule is a shared constant of the op table, never copied with the report that cites it

    @property
    def saved(self) -> OpFormula | None:
        """What autograd saves for the op's backward: the op's formula, or its family's (a free op's only its own)."""
        found = SAVED_RULES.get(self.op)
        if found is None and self.status != Status.FREE:
            found = SAVED_RULES.get(self.family)
        return found


Target = Any  # an nn.Module subclass, a callable, or a method name (str)


class Registry:
    """Maps op targets to rules. Module classes are looked up along the MRO, so subclasses inherit."""

    def __init__(self) -> None:
        self.modules: dict[type, Rule] = {}
        self.functions: dict[Any, Rule] = {}
        self.methods: dict[str, Rule] = {}

    def _table(self, target: Target) -> dict:
        if isinstance(target, str):
            return self.methods
        if isinstance(target, type) and issubclass(target, torch.nn.Module):
            return self.modules
        if callable(target):
            return self.functions
        raise TypeError(
            f"cannot register a rule for {target!r}: expected an nn.Module subclass, "
            "a function, or a Tensor method name"
        )

    def add(self, target: Target, r: Rule) -> None:
        self._table(target)[target] = r

    def attach(self, target: Target, **formulas: Any) -> None:
        """Give the rule of ``target`` more formulas (``bytes=...``); the target must have a rule."""
        table = self._table(target)
        r = table.get(target)
        if r is None:
            raise LookupError(f"{target_name(target)} has no cost rule to attach {', '.join(formulas)} to")
        table[target] = replace(r, **formulas)

    def for_module(self, module: torch.nn.Module) -> Rule | None:
        """The rule of the module's class or of its nearest ruled base class, unless a class in between
        defines its own ``forward``: that subclass computes something else (timm's BatchNormAct2d adds an
        activation, a LoRA Linear adds matmuls), so it is traced through rather than priced as its base."""
        for cls in type(module).__mro__:
            r = self.modules.get(cls)
            if r is not None:
                return r
            if cls is torch.nn.Module or "forward" in cls.__dict__:
                return None
        return None

    def for_function(self, fn: Any) -> Rule | None:
        try:
            return self.functions.get(fn)
        except TypeError:  # unhashable target
            return None

    def for_method(self, name: str) -> Rule | None:
        return self.methods.get(name)

    def copy(self) -> "Registry":
        new = Registry()
        new.modules = dict(self.modules)
        new.functions = dict(self.functions)
        new.methods = dict(self.methods)
        return new

    def rules(self) -> Iterable[tuple[str, Target, Rule]]:
        """Every registration as ``(kind, target, rule)``; kind is module, function or method."""
        for t, r in self.modules.items():
            yield "module", t, r
        for t, r in self.functions.items():
            yield "function", t, r
        for t, r in self.methods.items():
            yield "method", t, r


REGISTRY = Registry()


# (kind, qualified target name) <-> rule of REGISTRY, for pickling rules by registration; rebuilt on a miss
_BY_RULE: dict[int, tuple[str, str]] = {}
_BY_KEY: dict[tuple[str, str], Rule] = {}


def _index() -> None:
    _BY_RULE.clear()
    _BY_KEY.clear()
    for kind, target, r in REGISTRY.rules():
        key = (kind, qualified_name(target))
        _BY_RULE.setdefault(id(r), key)
        _BY_KEY[key] = r


def _registration(r: Rule) -> tuple[str, str] | None:
    """Where ``r`` is registered in REGISTRY, as (kind, qualified target name); None for a custom rule."""
    for attempt in range(2):
        key = _BY_RULE.get(id(r))
        if key is not None and _BY_KEY.get(key) is r:
            return key
        if attempt == 0:
            _index()
    return None


def _arrived(key: tuple[str, str] | None, op: str, status: Status, formula: str, reason: str, family: str) -> Rule:
    """A pickled rule on arrival: the rule registered under ``key`` here (the extensions' rules loaded if need be),
    else one that knows its name and formula, which is all a report's views read from it."""
    if key is not None and key not in _BY_KEY:
        from . import load_extensions

        load_extensions(force=True)  # the packages installed here; a rule of one that is not stays described
        _index()
    found = _BY_KEY.get(key) if key is not None else None
    if found is not None:
        return found
    return Rule(op=op, fn=_Elsewhere(op), status=status, formula=formula, reason=reason, family=family)


@dataclass(frozen=True)
class _Elsewhere:
    """The function of a rule that was pickled without it (a custom rule of another process)."""

    op: str

    def __call__(self, call: Call) -> Cost:
        raise RuntimeError(f"rule {self.op!r} came from another process without its function: its formula is in "
                           "rule.formula; pass it as custom_rules to count in this process")


def _doc(fn: Callable) -> str:
    return inspect.cleandoc(fn.__doc__ or "")


def rule(*targets: Target, op: str | None = None, family: str = "", registry: Registry | None = None):
    """Register the decorated function as the cost rule of every target given.

    Targets are module classes (``nn.Conv2d``), functions (``F.conv2d``, ``operator.add``) or
    Tensor method names (``"add_"``). ``op`` names the op type in reports (defaults to the function
    name). The docstring must state the formula: it is published in ``docs/conventions.md``.

    >>> @rule(MyAttention, op="my_attention")
    ... def my_attention(call):
    ...     "MACs = 2·B·L²·D (QKᵀ and AV)."
    ...     b, l, d = call.args[0].shape
    ...     return contraction(2 * b * l * l * d)
    """
    reg = registry if registry is not None else REGISTRY

    def deco(fn: Callable[[Call], Cost]) -> Callable[[Call], Cost]:
        r = Rule(op=op or fn.__name__, fn=fn, formula=_doc(fn), family=family or _family_of(fn))
        for t in targets:
            reg.add(t, r)
        return fn

    return deco


def free(*targets: Target, op: str | None = None, reason: str, family: str = "", registry: Registry | None = None) -> None:
    """Declare targets that do no floating-point work by design (views, copies, indexing...)."""
    reg = registry if registry is not None else REGISTRY
    r = Rule(op=op or target_name(targets[0]), fn=lambda call: ZERO, status=Status.FREE, reason=reason,
             formula=f"0 — {reason}", family=family)
    for t in targets:
        reg.add(t, r)


def _formula(fn: Callable, name: str | None) -> OpFormula:
    return OpFormula(name or fn.__name__, fn, _doc(fn))


def _keyed(table: dict[str, OpFormula], keys: tuple[str, ...], name: str | None):
    """A decorator putting the decorated function into ``table`` under every op name or family of ``keys``."""
    def deco(fn: Callable) -> Callable:
        f = _formula(fn, name)
        for k in keys:
            table[k] = f
        return fn

    return deco


def backward_rule(*keys: str, name: str | None = None):
    """Register the decorated ``fn(call: BwdCall) -> Cost`` as the backward formula of every op name or family."""
    return _keyed(BACKWARD_RULES, keys, name)


def backward_byte_rule(*keys: str, name: str | None = None):
    """Register ``fn(call: BwdCall) -> int`` as the bytes the backward of the ops or families ``keys`` moves."""
    return _keyed(BACKWARD_BYTES, keys, name)


def saved_rule(*keys: str, name: str | None = None):
    """Register ``fn(call: BwdCall) -> Saved`` as what the ops or families ``keys`` save for the backward."""
    return _keyed(SAVED_RULES, keys, name)


def _attaching(kind: str, targets: tuple, name: str | None, registry: Registry | None):
    """A decorator giving the rules of ``targets`` the decorated function as their ``kind`` formula."""
    reg = registry if registry is not None else REGISTRY

    def deco(fn: Callable) -> Callable:
        f = _formula(fn, name)
        for t in targets:
            reg.attach(t, **{kind: f})
        return fn

    return deco


def byte_rule(*targets: Target, name: str | None = None, registry: Registry | None = None):
    """Register the decorated ``fn(call: ByteCall) -> int`` as the byte formula of every target given, on the rule
    that prices its forward."""
    return _attaching("bytes", targets, name, registry)


def weights_rule(*targets: type, name: str | None = None, registry: Registry | None = None):
    """Register ``fn(module) -> list[Tensor]`` as the weights modules of the classes ``targets`` hold outside
    ``nn.Parameter`` (packed quantized weights): counted as their parameters, read at their dtype by the byte model."""
    return _attaching("weights", targets, name, registry)


def module_weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """The module's own weights (not its children's): its parameters, and what its rule's weights formula adds."""
    own = [p for p in module._parameters.values() if p is not None]
    r = REGISTRY.for_module(module)
    return own + list(r.weights(module)) if r is not None and r.weights is not None else own


def _family_of(fn: Callable) -> str:
    mod = getattr(fn, "__module__", "") or ""
    return mod.rsplit(".", 1)[-1] if mod.startswith("fxflops.rules") else "custom"


def target_name(target: Any) -> str:
    """A short human name for a rule target: ``Conv2d``, ``conv2d``, ``add``, ``"add_"``..."""
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", None) or repr(target)


def as_custom_rules(custom: Mapping[Target, Callable] | None, base: Registry) -> Registry:
    """A copy of ``base`` with the user's ``custom_rules`` added on top (they win)."""
    reg = base.copy()
    for target, fn in (custom or {}).items():
        if isinstance(fn, Rule):
            reg.add(target, fn)
        else:
            reg.add(target, Rule(op=target_name(target), fn=fn, formula=_doc(fn), family="custom"))
    return reg


_NAMESPACES = ((F, "F"), (torch, "torch"), (torch.linalg, "torch.linalg"), (torch.special, "torch.special"),
               (torch.fft, "torch.fft"), (torch._C._nn, "torch._C._nn"), (operator, "operator"),
               (builtins, "builtins"))


def qualified_name(target: Any) -> str:
    """``nn.Conv2d``, ``F.interpolate``, ``torch.add``, ``operator.add``, ``Tensor.softmax``, or module.qualname."""
    if isinstance(target, str):
        return f"Tensor.{target}"
    if isinstance(target, torch._ops.OpOverloadPacket):  # torch.ops.<namespace>.<op>
        return "torch.ops." + target._qualified_op_name.replace("::", ".")
    if isinstance(target, torch._ops.OpOverload):  # name() leaves the default overload out
        name = target.name()
        return "torch.ops." + name.replace("::", ".") + ("" if "." in name.split("::")[-1] else ".default")
    name = getattr(target, "__name__", None)
    if isinstance(target, type):
        if getattr(torch.nn, target.__name__, None) is target:
            return f"nn.{target.__name__}"
        return f"{target.__module__}.{target.__qualname__}"
    if name is not None:
        for ns, label in _NAMESPACES:
            if getattr(ns, name, None) is target:
                return f"{label}.{name}"
        mod = getattr(target, "__module__", None)
        return f"{mod}.{getattr(target, '__qualname__', name)}" if mod else name
    return repr(target)
