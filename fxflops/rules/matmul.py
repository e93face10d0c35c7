"""Matrix products: matmul/@, mm, bmm, mv, dot, baddbmm, addmm, addbmm, addmv, einsum."""
from __future__ import annotations

import operator


import torch

from ..registry import Call, Cost, contraction, elementwise, rule
from ._util import prod


@rule(torch.matmul, operator.matmul, torch.mm, torch.bmm, torch.mv, torch.dot, torch.inner, torch.vdot,
      "matmul", "__matmul__", "mm", "bmm", "mv", "dot", op="matmul", family="matmul")
def matmul(call: Call) -> Cost:
    """MACs = (output elements)·K, K the contracted size (a.shape[-1]); covers broadcast batches, mm, bmm, mv and dot."""
    a = call.arg(0, "input")
    return contraction(max(call.out.numel(), 1) * a.shape[-1])


@rule(torch.addmm, torch.baddbmm, torch.addmv, "addmm", "baddbmm", "addmv", "addmm_", "baddbmm_",
      op="addmm", family="matmul")
def addmm(call: Call) -> Cost:
    """addmm/baddbmm/addmv(input, a, b, beta=1, alpha=1): MACs = (output elements)·K;
    FLOPs = 2·MACs + output elements (adding input, unless beta=0) + output elements for each of alpha, beta ≠ 1."""
    a = call.args[1] if len(call.args) > 1 else next(call.kwargs[k] for k in ("mat1", "batch1", "mat") if k in call.kwargs)
    n = call.out.numel()
    beta = call.kwargs.get("beta", 1)
    alpha = call.kwargs.get("alpha", 1)
    extra = (n if beta != 0 else 0) + (n if beta not in (0, 1) else 0) + (n if alpha != 1 else 0)
    return contraction(n * a.shape[-1], extra)


@rule(torch.addbmm, "addbmm", op="addbmm", family="matmul")
def addbmm(call: Call) -> Cost:
    """addbmm(input, b1, b2): MACs = B·n·k·m (the batch is summed into one n×m result); FLOPs = 2·MACs + n·m for adding input."""
    b1, b2 = call.arg(1, "batch1"), call.arg(2, "batch2")
    bsz, n, k = b1.shape
    m = b2.shape[-1]
    return contraction(bsz * n * k * m, call.out.numel())


@rule(torch.outer, torch.ger, "outer", "ger", op="outer", family="matmul")
def outer(call: Call) -> Cost:
    """outer(a, b): one multiplication per output element (no accumulation, so no MACs)."""
    return elementwise(call.out.numel())


def _parse_einsum(equation: str, operands) -> tuple[list[str], str]:
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    # Expand '...' into fresh symbols (Greek letters: torch equations use only a-z, A-Z), right-aligned so that
    # an operand with fewer broadcast dims lines up with the trailing ones of the others.
    unnamed = [op.dim() - (len(term) - 3) if "..." in term else 0 for term, op in zip(terms, operands)]
    ell_dims = max(unnamed, default=0)
    ell = "".join(chr(0x3B1 + i) for i in range(ell_dims))
    expanded = [term.replace("...", ell[ell_dims - n:]) for term, n in zip(terms, unnamed)]
    if not _:
        counts = {c: "".join(expanded).count(c) for c in set("".join(expanded))}
        rhs = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    return expanded, rhs


@rule(torch.einsum, op="einsum", family="matmul")
def einsum(call: Call) -> Cost:
    """Operands are contracted left to right, as torch does without opt_einsum. For each pair that sums an index
    away, MACs = ∏ of the sizes of every index in either operand; a pair that sums nothing (outer or Hadamard
    product) costs that many multiplies and no MACs. Indices found in only one operand and needed nowhere later
    are summed first (1 FLOP per element of that operand). A single operand costs its summations only."""
    equation = call.args[0]
    operands = list(call.args[1:])
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    terms, rhs = _parse_einsum(equation, operands)
    sizes: dict[str, int] = {}
    for term, op in zip(terms, operands):
        for c, d in zip(term, op.shape):
            sizes[c] = max(sizes.get(c, 1), int(d))
    macs, extra = 0, 0
    cur = terms[0]
    rest = terms[1:]
    cur, e = _presum(cur, rest, rhs, sizes)
    extra += e
    for i, term in enumerate(rest):
        later = rest[i + 1:]
        term, e = _presum(term, later + [cur], rhs, sizes)
        extra += e
        union = sorted(set(cur) | set(term))
        keep = set(rhs) | set("".join(later))
        if set(union) - keep:
            macs += prod(sizes[c] for c in union)
        else:  # nothing is accumulated: one multiply per element, as for torch.outer
            extra += prod(sizes[c] for c in union)
        cur = "".join(c for c in union if c in keep)
    return contraction(macs, extra)


def _presum(term: str, others: list[str], rhs: str, sizes: dict[str, int]) -> tuple[str, int]:
    needed = set(rhs) | set("".join(others))
    kept = "".join(c for c in term if c in needed)
    if kept == term:
        return term, 0
    return kept, prod(sizes[c] for c in dict.fromkeys(term))  # a repeated index reads the diagonal only


