"""Generate ``docs/conventions.md`` from the rule registry, so the published formulas are the code's.

Run ``python -m tools.docgen`` (from the repository root) after changing a rule; ``tests/test_docs.py`` fails when the checked-in
file differs from what this module generates.
"""
from __future__ import annotations

import argparse
import inspect
import operator
import sys
from typing import Any, Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import fxflops.rules  # noqa: F401 - fills the registry
from fxflops.passes.fusion import RULES as FUSION_RULES
from fxflops.rules.backward import default_bytes as default_backward_bytes
from fxflops.rules.bytes import default_bytes
from fxflops.rules.registry import BACKWARD_BYTES, BACKWARD_RULES, REGISTRY, SAVED_RULES, Registry, Rule
from fxflops.types import Status

fxflops.rules.load_extensions(force=True)  # the timm and torchvision rules are documented too

CONVENTIONS = Path(__file__).resolve().parent.parent / "docs" / "conventions.md"  # tools/ lives beside docs/

_NAMESPACES = (
    (F, "F"),
    (torch, "torch"),
    (operator, "operator"),
    (torch.linalg, "torch.linalg"),
    (torch.special, "torch.special"),
    (torch._C._nn, "torch._C._nn"),
)

FAMILY_TITLES = {
    "conv": "Convolutions",
    "linear": "Linear layers",
    "matmul": "Matrix products",
    "attention": "Attention",
    "norm": "Normalisation",
    "activation": "Activations",
    "elementwise": "Elementwise arithmetic",
    "reduction": "Reductions and softmax",
    "pooling": "Pooling",
    "resize": "Resampling",
    "rnn": "Recurrent layers",
    "embedding": "Embeddings",
    "dropout": "Dropout",
    "shape": "Free by design (0 FLOPs)",
}

PREAMBLE = """# Counting conventions

*Generated from the rule registry by `python -m tools.docgen`; do not edit by hand.*

- **MACs** are the multiply-accumulates of contraction ops only: convolutions of every kind, linear layers,
  matmul/bmm/mm/einsum/baddbmm/addmm, and the two matmuls of attention (QKᵀ and AV). Bias is excluded.
- **FLOPs** are 2 × MACs plus every other floating-point operation: bias adds, elementwise arithmetic,
  activations, normalisation, softmax, pooling, reductions, interpolation. Each op's cost per element is
  given below.
- Transcendental functions (exp, log, tanh, erf, sqrt) count as one FLOP each, as does a comparison.
- Ops that only move, select, create or re-type data cost **0** and are listed as free, with the reason.
- Costs are computed from shapes (meta or fake tensors), never from data, so they do not depend on the
  values in the example; they do depend on its shape (batch size included) and on the module's mode
  (train/eval) where the op itself does (BatchNorm statistics, dropout).
- An op with no rule is reported as *uncounted* (counted as 0, with a warning; `strict=True` raises).

Notation: N batch, C channels, L/S sequence lengths, E/D widths, ∏ a product over the listed dims.
"""


def qualname(target) -> str:
    """A public, importable spelling of a rule target."""
    if isinstance(target, str):
        return f"Tensor.{target}"
    if isinstance(target, type):
        mod = target.__module__
        if mod.startswith("torch.nn.modules"):
            return f"nn.{target.__name__}"
        return f"{mod}.{target.__qualname__}"
    name = getattr(target, "__name__", repr(target))
    for ns, label in _NAMESPACES:
        if getattr(ns, name, None) is target:
            return f"{label}.{name}"
    mod = getattr(target, "__module__", None)
    return f"{mod}.{name}" if mod else name


def _groups(registry: Registry) -> dict[str, list[tuple[Rule, list[str]]]]:
    by_rule: dict[tuple, tuple[Rule, list[str]]] = {}
    for _kind, target, r in registry.rules():  # one row per cost formula, whatever byte formulas its targets have
        key = (id(r.fn), r.op, r.status, r.reason, r.family)
        by_rule.setdefault(key, (r, []))[1].append(qualname(target))
    families: dict[str, list[tuple[Rule, list[str]]]] = {}
    for r, targets in by_rule.values():
        fam = "shape" if r.status == Status.FREE else (r.family or "other")
        families.setdefault(fam, []).append((r, sorted(set(targets))))
    for entries in families.values():
        entries.sort(key=lambda e: (e[0].op, e[1][0]))
    return families


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def conventions_markdown(registry: Registry = REGISTRY) -> str:
    families = _groups(registry)
    order = [f for f in FAMILY_TITLES if f in families] + sorted(f for f in families if f not in FAMILY_TITLES)
    out = [PREAMBLE]
    for fam in order:
        out.append(f"\n## {FAMILY_TITLES.get(fam, fam.title())}\n")
        out.append("| op | targets | cost |")
        out.append("|---|---|---|")
        for r, targets in families[fam]:
            names = ", ".join(f"`{t}`" for t in targets)
            out.append(f"| {r.op} | {names} | {_cell(r.reason if r.status == Status.FREE else r.formula)} |")
    return "\n".join(out) + "\n" + bytes_markdown() + fused_markdown() + backward_markdown()


BACKWARD_PREAMBLE = """
## Backward (training step)

*The backward rules of `fxflops/rules/backward.py`; `trace_flops(model, x, mode="train")` and
`fxflops SPEC --mode train` read them. See [training.md](training.md).*

**Gradient-aware**: a value needs a gradient when it is a parameter with `requires_grad`, an input that
requires grad, or the floating-point output of an op that reads one. A node whose output needs no gradient has
no backward (`not needed`); otherwise it computes only the gradients its operands need: the first layer has no
grad-input, a frozen weight no grad-weight, an index no gradient at all. Each rule is keyed by the op name the
cost rule reports, or by a whole rule family; shape-only ops are free. A counted op with neither (a custom
rule) has **no backward formula**: its gradient counts as 0, the audit lists it, `strict=True` raises; add one
with `@fxflops.backward_rule(op)`.

| rule | ops / families | backward cost |
|---|---|---|
"""


def formula_rows(table: dict, key_name: Callable[[Any], str] = str) -> list[str]:
    """One Markdown row per formula of a pass's table (a formula registered under several keys lists them all)."""
    by_rule: dict[int, tuple] = {}
    for key, r in table.items():
        by_rule.setdefault(id(r), (r, []))[1].append(key_name(key))
    rows = []
    for r, keys in sorted(by_rule.values(), key=lambda e: e[0].name):
        names = ", ".join(f"`{k}`" for k in sorted(set(keys)))
        rows.append(f"| {r.name} | {names} | {_cell(r.formula)} |")
    return rows


def backward_markdown() -> str:
    return (BACKWARD_PREAMBLE + "\n".join(formula_rows(BACKWARD_RULES)) + "\n" + backward_bytes_markdown()
            + saved_markdown())


BACKWARD_BYTES_PREAMBLE = """
### Bytes the backward moves

*`report.backward_bytes` (train mode); `total_bytes = forward_bytes + backward_bytes`, so `report.intensity` and
`report.roofline()` describe the whole step.* Each node whose output needs a gradient, by rule (op name, then
family), as one unfused kernel like the forward; a node inside an activation-checkpoint region also moves its
forward's bytes again, as it is recomputed.

| rule | ops / families | bytes |
|---|---|---|
"""


def backward_bytes_markdown() -> str:
    default = f"| default | every other op | {_cell(inspect.cleandoc(default_backward_bytes.__doc__))} |"
    return BACKWARD_BYTES_PREAMBLE + "\n".join([default] + formula_rows(BACKWARD_BYTES)) + "\n"


SAVED_PREAMBLE = """
### Activations saved for the backward

*`report.memory()` sums them (train mode).* What autograd keeps for each node whose output needs a gradient,
by rule (op name, then family; any other counted op keeps its floating-point operands). A tensor kept by
several nodes, or through a view, counts once; parameters are not activations.

| rule | ops / families | saved |
|---|---|---|
"""


def saved_markdown() -> str:
    return SAVED_PREAMBLE + "\n".join(formula_rows(SAVED_RULES)) + "\n"


BYTES_PREAMBLE = """
## Bytes moved

*The byte rules of `fxflops/rules/bytes.py`; `report.total_bytes`, `report.intensity` and the roofline read them.*

The model: **every node is one unfused kernel** that reads its inputs from memory and writes its outputs back,
as eager PyTorch runs it. Each distinct tensor counts once per node, at the element size of its actual dtype
(float16 moves half the bytes of float32); a leaf module also reads its parameters and floating-point buffers,
every time it runs. Nothing is assumed to stay in cache between nodes. A fusing compiler (`torch.compile`,
TensorRT) keeps the intermediates of a chain such as batch_norm → relu in registers and moves less. *Note, not
a count:* fusing every chain of memory-bound pointwise nodes would save about a quarter of the bytes counted
here on ResNet-34 (24%) and MobileNetV3-Large (25%); [roofline.md](roofline.md) lists the top chains
(`python benchmarks/latency.py`).

| rule | targets | bytes |
|---|---|---|
"""


def bytes_markdown() -> str:
    rows = [f"| default | every other op | {_cell(inspect.cleandoc(default_bytes.__doc__))} |"]
    table = {target: r.bytes for _, target, r in REGISTRY.rules() if r.bytes is not None}
    return BYTES_PREAMBLE + "\n".join(rows + formula_rows(table, qualname)) + "\n"


FUSED_PREAMBLE = """
## Fused bytes

*The kernel rules of `fxflops/passes/fusion.py`; `trace_flops(..., bytes="fused")`, `fxflops MODEL --bytes fused`
and `fxflops.serving` read them. See [llm.md](llm.md).*

The model: the op nodes are grouped into the **kernels a fusing serving stack runs**, and each kernel moves what
enters it and what leaves it. `NodeRecord.kernel` numbers each node's kernel; a node's `bytes` is its share (a
tensor read from outside the kernel is charged to the first member that reads it, a tensor the kernel writes to
its producer), so the shares add up to the kernel's traffic and the totals, tables and roofline read it as before.
Each tensor is still counted at the element size of its dtype.

| rule | bytes |
|---|---|
"""


def fused_markdown() -> str:
    rows = [f"| {fn.__name__.replace('_', ' ')} | {_cell(inspect.cleandoc(fn.__doc__))} |" for fn in FUSION_RULES]
    return FUSED_PREAMBLE + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.docgen", description=__doc__)
    p.add_argument("--check", action="store_true", help="exit 1 if docs/conventions.md is stale")
    args = p.parse_args(argv)
    text = conventions_markdown()
    if args.check:
        stale = not CONVENTIONS.exists() or CONVENTIONS.read_text() != text
        print("docs/conventions.md is stale: run python -m tools.docgen" if stale else "up to date")
        return int(stale)
    CONVENTIONS.parent.mkdir(exist_ok=True)
    CONVENTIONS.write_text(text)
    print(f"wrote {CONVENTIONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
