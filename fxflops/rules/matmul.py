"""Matrix products: matmul/@, mm, bmm, mv, dot, baddbmm, addmm, addbmm, addmv, einsum."""
from __future__ import annotations

import math
import operator


import torch

from .registry import Call, Cost, contraction, elementwise, rule
from ._util import prod


@rule(torch.matmul, operator.matmul, torch.mm, torch.bmm, torch.mv, torch.dot, torch.inner, torch.vdot,
      "matmul", "__matmul__", "mm", "bmm", "mv", "dot", "inner", "vdot", operator.imatmul,
      op="matmul", family="matmul")
def matmul(call: Call) -> Cost:
    """MACs = (output elements)·K, K the contracted size (a.shape[-1]); covers broadcast batches, mm, bmm, mv and dot."""
    a = call.arg(0, "input")
    return contraction(max(call.out.numel(), 1) * a.shape[-1])


@rule("__rmatmul__", op="matmul", family="matmul")
def rmatmul(call: Call) -> Cost:
    """x.__rmatmul__(y) is y @ x: MACs = (output elements)·K, K = y.shape[-1] (the operands arrive reversed)."""
    return contraction(max(call.out.numel(), 1) * call.args[1].shape[-1])


@rule(torch.addmm, torch.baddbmm, torch.addmv, "addmm", "baddbmm", "addmv", "addmm_", "baddbmm_", "addmv_",
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


@rule(torch.addbmm, "addbmm", "addbmm_", op="addbmm", family="matmul")
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


# Where each private GEMM entry point takes its bias positionally.
_BIAS_INDEX = {"_grouped_mm": 3, "_scaled_grouped_mm": 5, "_scaled_grouped_mm_v2": 9, "_scaled_mm": 4, "_scaled_mm_v2": 8}


def _bias(call: Call) -> torch.Tensor | None:
    b = call.arg(_BIAS_INDEX[call.target.__name__], "bias", None)
    return b if isinstance(b, torch.Tensor) else None


def _grouped_mm_macs(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> int:
    # 3-D operands and the 2-D × 3-D form contract a's last dim; 2-D × 2-D splits K into groups, so each of
    # the G (M, N) outputs sums over its own slice of K and the slices add up to K.
    if a.dim() == 2 and b.dim() == 2:
        return out.numel() // out.shape[0] * a.shape[-1]
    return out.numel() * a.shape[-1]


@rule(*[getattr(torch, n) for n in ("_grouped_mm", "_scaled_grouped_mm", "_scaled_grouped_mm_v2") if hasattr(torch, n)],
      op="grouped_mm", family="matmul")
def grouped_mm(call: Call) -> Cost:
    """F.grouped_mm / F.scaled_grouped_mm (mixture-of-experts GEMMs): MACs = (output elements)·K, K = mat_a's last
    dim; 2-D × 2-D with offsets splits K among the G groups: MACs = M·N·K. FLOPs = 2·MACs + output elements with
    a bias, + 2 per output element for the row/column scales of the scaled form."""
    a, b = call.args[0], call.args[1]
    n = call.out.numel()
    scaled = "scaled" in call.target.__name__
    bias = _bias(call)
    return contraction(_grouped_mm_macs(a, b, call.out), (n if bias is not None else 0) + (2 * n if scaled else 0))


@rule(*[getattr(torch, n) for n in ("_scaled_mm", "_scaled_mm_v2") if hasattr(torch, n)], op="scaled_mm", family="matmul")
def scaled_mm(call: Call) -> Cost:
    """F.scaled_mm (low-precision GEMM with scales): MACs = M·N·K; FLOPs = 2·MACs + 2 per output element (the
    two scales) + 1 per output element with a bias."""
    a = call.args[0]
    n = call.out.numel()
    return contraction(n * a.shape[-1], 2 * n + (n if _bias(call) is not None else 0))


@rule(torch.nn.functional.affine_grid, torch.affine_grid_generator, op="affine_grid", family="matmul")
def affine_grid(call: Call) -> Cost:
    """theta (N, d, d + 1) applied to the base grid of the output size (d = 2 or 3 spatial dims): each of the
    N·∏(spatial) grid points is a (d + 1)-vector times θᵀ, MACs = N·∏(spatial)·d·(d + 1). The base grid itself is
    a linspace (free)."""
    theta = call.args[0]
    d = theta.shape[-2]
    points = call.out.numel() // d
    return contraction(points * d * (d + 1))


@rule(torch.kron, "kron", op="outer", family="matmul")
def kron(call: Call) -> Cost:
    """Kronecker product: one multiplication per output element (no accumulation, so no MACs)."""
    return elementwise(call.out.numel())


@rule(torch.tensordot, op="tensordot", family="matmul")
def tensordot(call: Call) -> Cost:
    """a (free_a, K), b (K, free_b) → (free_a, free_b) after moving the contracted dims together:
    MACs = (output elements)·K, where K = √(|a|·|b| / |out|)."""
    a, b = call.arg(0, "a"), call.arg(1, "b")
    out = max(call.out.numel(), 1)
    k = math.isqrt(a.numel() * b.numel() // out)
    return contraction(out * k)


@rule(torch.chain_matmul, op="matmul", family="matmul")
def chain_matmul(call: Call) -> Cost:
    """Left to right, as torch.chain_matmul multiplies: Σ over the products of rows(m₀)·cols(mᵢ₋₁)·cols(mᵢ) MACs."""
    mats = list(call.args[0]) if len(call.args) == 1 and isinstance(call.args[0], (list, tuple)) else list(call.args)
    rows, macs = mats[0].shape[0], 0
    for m in mats[1:]:
        macs += rows * m.shape[0] * m.shape[1]
    return contraction(macs)


@rule(torch.addr, "addr", "addr_", op="addr", family="matmul")
def addr(call: Call) -> Cost:
    """β·input + α·(v1 ⊗ v2): per output element a multiply (the outer product) and an add (+1 each for α ≠ 1 and
    for β ∉ {0, 1}); no accumulation, so no MACs."""
    n = call.out.numel()
    beta, alpha = call.kwargs.get("beta", 1), call.kwargs.get("alpha", 1)
    return elementwise(n * (1 + (1 if beta != 0 else 0) + (1 if alpha != 1 else 0) + (1 if beta not in (0, 1) else 0)))


@rule(torch.cross, torch.linalg.cross, "cross", op="cross", family="matmul")
def cross(call: Call) -> Cost:
    """3-vector cross product: each output component is a·b − c·d, 3 FLOPs per output element."""
    return elementwise(3 * call.out.numel())


@rule(torch.cov, torch.corrcoef, "cov", "corrcoef", op="cov", family="matmul")
def cov(call: Call) -> Cost:
    """input (V variables, O observations): means (V·O adds + V divisions), centring (V·O), X·Xᵀ (MACs = V²·O) and
    the normalisation (V² divisions). corrcoef adds V square roots of the diagonal, 2·V² divisions and a clamp
    to [−1, 1] per entry (2·V²). Weights (fweights/aweights) are not priced."""
    x = call.arg(0, "input")
    v, o = (x.shape[0], x.shape[1]) if x.dim() == 2 else (1, x.shape[0])
    flops = 2 * v * o + v + v * v
    if call.target in (torch.corrcoef, "corrcoef"):
        flops += v + 4 * v * v
    return contraction(v * v * o, flops)
