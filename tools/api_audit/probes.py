"""Walk each family of the torch API and classify every entry, checking what fx traces it into."""
from __future__ import annotations

import inspect
import operator
import warnings
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

import fxflops.rules  # noqa: F401 - fills the registry
from fxflops.api import trace_flops
from fxflops.rules.registry import REGISTRY, Registry, Rule, qualified_name

fxflops.rules.load_extensions(force=True)  # the audit covers the timm and torchvision rules too

from .data import _NA_REASON, CONTAINER, F_HELPERS, NN_NOT_APPLICABLE, NN_PROBES, PROTOCOL
from .model import COUNTED, FREE, NA, TRACED, UNCOUNTED, ApiAudit, ApiEntry, _status

class Caller(nn.Module):
    """Calls the probed module (or function) with up to four inputs. A module is never a leaf at the root of a
    trace, and fx cannot trace ``*args`` forwards, hence the wrapper with fixed parameters."""

    def __init__(self, inner: Any, arity: int):
        super().__init__()
        self.inner = inner
        self.arity = arity

    def forward(self, a, b=None, c=None, d=None):
        return self.inner(*(a, b, c, d)[: self.arity])


def module_rule(cls: type, registry: Registry = REGISTRY) -> Rule | None:
    for k in cls.__mro__:
        if k in registry.modules:
            return registry.modules[k]
        if k is nn.Module:
            break
    return None


def probe_module(cls: type, registry: Registry = REGISTRY) -> tuple[str, str]:
    """Run fxflops on the class's probe: ``traced`` when every op it reaches has a rule."""

    make = NN_PROBES.get(cls)
    if make is None:
        return UNCOUNTED, "no rule, and no probe shows that fx traces it into counted ops"
    torch.manual_seed(0)
    with warnings.catch_warnings():  # deprecated classes (NLLLoss2d) and the probes' uncounted ops warn
        warnings.simplefilter("ignore")
        module, example = make()
        report = trace_flops(Caller(module, len(example)), example, registry=registry)
    rows = report.audit().rows
    # A row counted with a reason was priced by a fallback capture (dynamo), not by a rule of its own.
    missing = sorted({r.target for r in rows if r.status.incomplete or (r.status == "counted" and r.reason)})
    if missing:
        return UNCOUNTED, "fx traces it into ops without a rule: " + ", ".join(missing)
    counted = sorted({r.target for r in rows if r.status == "counted"})
    return TRACED, "fx traces it into " + (", ".join(counted) if counted else "free ops only")


def audit_nn_modules(registry: Registry = REGISTRY) -> list[ApiEntry]:
    out = []
    for name in sorted(dir(nn)):
        cls = getattr(nn, name)
        if name.startswith("_") or not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            continue
        r = module_rule(cls, registry)
        if r is not None:
            status, detail = _status(r)
        elif cls in NN_NOT_APPLICABLE:
            status, detail = NA, NN_NOT_APPLICABLE[cls]
        else:
            status, detail = probe_module(cls, registry)
        out.append(ApiEntry("torch.nn modules", f"nn.{name}", status, detail))
    return out


def _recorded_as_node(fn: Callable) -> bool:
    """Whether fx records a call of ``fn`` as one node: C functions, functions that hand tensors-with-
    __torch_function__ to ``handle_torch_function``, and boolean dispatchers (their branches do)."""
    if not inspect.isfunction(fn):
        return True
    if "if_true" in fn.__code__.co_freevars:  # torch._jit_internal.boolean_dispatch
        return True
    try:
        return "handle_torch_function" in inspect.getsource(fn)
    except (OSError, TypeError):
        return True


def traced_targets(fn: Callable) -> list[fx.Node]:
    """The call nodes fx records when it traces through ``fn`` called with its required arguments as proxies."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    tracer = fx.Tracer()
    tracer.graph = fx.Graph()
    tracer.root = nn.Module()
    tracer.tensor_attrs = {}
    fn(*[fx.Proxy(tracer.graph.placeholder(p.name), tracer) for p in params])
    return [n for n in tracer.graph.nodes if n.op in ("call_function", "call_method")]


def _lookup(node: fx.Node, registry: Registry) -> Rule | None:
    return registry.for_function(node.target) if node.op == "call_function" else registry.for_method(node.target)


def probe_function(fn: Callable, registry: Registry = REGISTRY) -> tuple[str, str]:
    nodes = traced_targets(fn)
    missing = sorted({qualified_name(n.target) for n in nodes if _lookup(n, registry) is None})
    if missing:
        return UNCOUNTED, "fx traces it into ops without a rule: " + ", ".join(missing)
    counted = sorted({qualified_name(n.target) for n in nodes if _lookup(n, registry).status == "counted"})
    return TRACED, "fx traces it into " + (", ".join(counted) if counted else "free ops only")


def audit_functional(registry: Registry = REGISTRY) -> list[ApiEntry]:
    out = []
    for name in sorted(dir(F)):
        fn = getattr(F, name)
        if name.startswith("_") or isinstance(fn, type) or not callable(fn):
            continue
        r = registry.for_function(fn)
        if r is not None:
            status, detail = _status(r)
        elif name in F_HELPERS or not (getattr(fn, "__module__", None) or "").startswith("torch"):
            status, detail = NA, "helper re-exported by torch.nn.functional, not a tensor op"
        elif _recorded_as_node(fn):
            status, detail = UNCOUNTED, "no rule"
        else:
            status, detail = probe_function(fn, registry)
        out.append(ApiEntry("torch.nn.functional", f"F.{name}", status, detail))
    return out


def audit_torch(registry: Registry = REGISTRY) -> list[ApiEntry]:
    fns = {}
    for fn in torch.overrides.get_overridable_functions()[torch]:
        name = getattr(fn, "__name__", "")
        if name and not name.startswith("_") and getattr(torch, name, None) is fn:
            fns[name] = fn
    out = []
    for name in sorted(fns):
        r = registry.for_function(fns[name])
        if r is not None:
            status, detail = _status(r)
        elif name in _NA_REASON:
            status, detail = NA, _NA_REASON[name]
        else:
            status, detail = UNCOUNTED, "no rule"
        out.append(ApiEntry("torch", f"torch.{name}", status, detail))
    return out


def _tensor_names() -> set[str]:
    names = set()
    for f in torch.overrides.get_overridable_functions()[torch.Tensor]:
        name = getattr(f, "__name__", None) or getattr(getattr(f, "fget", None), "__name__", None)
        if name and (not name.startswith("_") or name.startswith("__")) and hasattr(torch.Tensor, name):
            names.add(name)
    return names


def audit_tensor_methods(registry: Registry = REGISTRY) -> list[ApiEntry]:
    out = []
    for name in sorted(_tensor_names()):
        r = registry.for_method(name)
        if r is not None:
            status, detail = _status(r)
        elif name in _NA_REASON:
            status, detail = NA, _NA_REASON[name]
        elif name.startswith("__"):
            status, detail = NA, PROTOCOL
        else:
            status, detail = UNCOUNTED, "no rule"
        out.append(ApiEntry("Tensor methods", f"Tensor.{name}", status, detail))
    return out


def fx_operators() -> dict[str, Callable]:
    """The operator functions fx emits: its magic and reflected methods, the in-place forms dynamo emits, getattr."""
    names = set(fx.graph.magic_methods) | set(fx.graph.reflectable_magic_methods) | set(fx.graph.inplace_methods)
    ops = {f"operator.{n}": getattr(operator, n) for n in sorted(names) if hasattr(operator, n)}
    ops["builtins.getattr"] = getattr
    return ops


def audit_operators(registry: Registry = REGISTRY) -> list[ApiEntry]:
    out = []
    for name, fn in fx_operators().items():
        r = registry.for_function(fn)
        status, detail = _status(r) if r is not None else (UNCOUNTED, "no rule")
        out.append(ApiEntry("operator", name, status, detail))
    return out


def api_audit(registry: Registry = REGISTRY) -> ApiAudit:
    """Classify the installed torch's public API; see the module docstring."""
    entries = (audit_nn_modules(registry) + audit_functional(registry) + audit_torch(registry)
               + audit_tensor_methods(registry) + audit_operators(registry))
    return ApiAudit(torch.__version__.split("+")[0], entries)
