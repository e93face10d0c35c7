"""The fused byte model (``bytes="fused"`` of :func:`fxflops.trace_flops`): memory traffic priced at kernel
boundaries.

The eager model (:mod:`fxflops.passes.bytes`) makes every node one kernel. This pass groups the op nodes of each
captured graph into the kernels a fusing serving stack runs, then prices each kernel as what enters it and what
leaves it. Each record gets its kernel's number (``NodeRecord.kernel``, 1, 2, ... in order of first node; 0 for a
node that runs no kernel: a view, a metadata query) and its share of the kernel's bytes (``NodeRecord.bytes``):
a tensor read from outside the kernel is charged to the first member that reads it, a tensor the kernel writes
to its producer, so the shares add up to the kernel's traffic. The rules are the docstrings of :data:`RULES`,
published in ``docs/conventions.md`` (``python -m tools.docgen``).
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.fx as fx

from ..paths import attr_at, submodule
from ..rules.bytes import ByteCall, nbytes
from ..tensors import tensors_in
from ..types import OP_KINDS, NodeRecord

__all__ = ["fuse_bytes", "fuse_graph", "is_append", "append_past", "kernels", "RULES", "FUSABLE_FAMILIES",
           "CACHE_BYTES"]

# node.meta key: the part of the node's fused bytes that is KV-cache entries (read by attention, written by an
# append), so that an estimate can re-size the cache's dtype (kv_dtype of fxflops.serving).
CACHE_BYTES = "fxflops_cache_bytes"
# Rule families whose ops a fusing compiler folds into one pointwise/row-wise kernel.
FUSABLE_FAMILIES = ("elementwise", "activation", "reduction", "norm", "dropout")
# Free ops that still produce a new tensor: casts, copies (reshape of a permuted tensor, cat), creations.
_DATA_OPS = ("cast", "copy", "view", "create")


def chain_kernel() -> None:
    """**Chains**: elementwise ops, activations, reductions, softmax, norms, dropout, casts, copies (``cat``,
    ``contiguous``), rotary embeddings and residual adds that feed one another form one kernel, which reads each
    tensor entering it once (a tensor read through several views of it, at most its size) plus a leaf module's
    weights, and writes each member's output that a node outside the kernel (or the model's output) uses. A node
    joins a producer's kernel only if none of its other inputs waits on that kernel through a node outside it
    (a kernel cannot wait for a matmul that reads its own output), so the residual stream breaks at each layer,
    and only through an operand it reads whole (not a broadcast one such as rotary's cos table, which is read)."""


def attention_kernel() -> None:
    """**Attention** is one flash-attention kernel: ``scaled_dot_product_attention``, or the eager pattern
    matmul(Q, Kᵀ) → scale / mask / softmax / cast / dropout → matmul(·, V) (the nodes between the two matmuls
    used by nothing else). It reads Q, K, V and the mask and writes the output; the copies that only feed it
    (repeat_kv's expand + reshape for grouped-query attention, a ``contiguous``) are absorbed, as the kernel
    indexes K and V in place, and the T×S scores are never written."""


def append_kernel() -> None:
    """**KV-cache append**: a ``cat`` whose first operand is state the graph did not compute (a cache tensor
    passed in: a graph input or constant that is not a parameter) or an empty tensor writes only the new entries,
    as a serving engine's in-place cache does (eager ``torch.cat`` copies the whole cache); the past entries are
    not read by it. It joins the chain that computes the new entries (rotary on K)."""


def own_kernel() -> None:
    """**Everything else** is a kernel of its own at its eager bytes: linear layers, matmuls, convolutions,
    embeddings and gathers. A view (an output that aliases its input) and an op that returns no tensor (``size``,
    ``numel``) run no kernel: 0 bytes, kernel 0. A model where nothing fuses (convolutions alone) moves the same
    bytes under both models."""


RULES = (chain_kernel, attention_kernel, append_kernel, own_kernel)


def fuse_bytes(nodes: list[NodeRecord]) -> None:
    """Group the records' nodes into kernels and set ``kernel`` and ``bytes`` (the fused share) on each record.
    Records that copy another graph's node (a reused block, a graph that ran again) get the same bytes and a
    kernel number of their own."""
    graphs: dict[int, fx.Graph] = {}
    for rec in nodes:
        if rec.node is not None:
            graphs.setdefault(id(rec.node.graph), rec.node.graph)
    fused: dict[fx.Node, tuple[int, int]] = {}
    for graph in graphs.values():
        fused.update(fuse_graph(graph))
    numbers: dict[tuple, int] = {}
    for rec in nodes:
        if rec.node is None or rec.node not in fused:
            continue
        local, nbytes_ = fused[rec.node]
        rec.fwd_bytes = nbytes_
        if local:
            key = (id(rec.node.graph), rec.run, rec.block, local)
            rec.kernel = numbers.setdefault(key, len(numbers) + 1)
        else:
            rec.kernel = 0


def _rec(node: fx.Node) -> NodeRecord | None:
    return node.meta.get("fxflops")


def _family(node: fx.Node) -> tuple[str, str]:
    rec = _rec(node)
    if rec is None or rec.rule is None:
        return "", rec.op if rec is not None else ""
    return rec.rule.family, rec.op


def _is_view(node: fx.Node) -> bool:
    """Returns a tensor that aliases its input and does no arithmetic: no kernel. An in-place op (``relu_``,
    ``ReLU(inplace=True)``) also returns its input, but it is a kernel writing into it."""
    rec = _rec(node)
    if node.op not in OP_KINDS or rec is None or rec.fwd.flops:
        return False
    outs = tensors_in(node.meta.get("val"))
    if not outs:
        return False
    ins = [v for a in node.all_input_nodes for v in tensors_in(a.meta.get("val"))]
    return bool(ins) and ByteCall(ins, node.meta.get("val")).aliases()


def _no_tensor(node: fx.Node) -> bool:
    return not tensors_in(node.meta.get("val"))


def _fusable(node: fx.Node) -> bool:
    family, op = _family(node)
    return family in FUSABLE_FAMILIES or (family == "shape" and op in _DATA_OPS)


def is_append(node: fx.Node) -> bool:
    """``torch.cat([past, new], dim)`` where ``past`` is state passed in (not a parameter) or empty."""
    if _family(node)[1] != "copy" or getattr(node.target, "__name__", "") not in ("cat", "concat", "concatenate"):
        return False
    seq = node.args[0] if node.args else node.kwargs.get("tensors")
    if not isinstance(seq, (list, tuple)) or len(seq) != 2 or not all(isinstance(a, fx.Node) for a in seq):
        return False
    past = seq[0]
    value = past.meta.get("val")
    if isinstance(value, torch.Tensor) and value.numel() == 0:
        return True
    if past.op == "placeholder":
        return True
    if past.op == "get_attr":
        return not isinstance(attr_at(past.graph.owning_module, past.target), torch.nn.Parameter)
    return False


def fuse_graph(graph: fx.Graph) -> dict[fx.Node, tuple[int, int]]:
    """``{node: (kernel, fused bytes)}`` for every op node of ``graph`` (kernel 0: no kernel)."""
    base: dict[fx.Node, fx.Node] = {}  # a view's source tensor, through chains of views

    def root(n: fx.Node) -> fx.Node:
        return base.get(n, n)

    for n in graph.nodes:
        if _is_view(n):
            src = n.all_input_nodes[0]
            base[n] = root(src)
    group: dict[fx.Node, int] = {}
    for k, members in enumerate(_attention_kernels(graph, base), 1):
        group.update(dict.fromkeys(members, k))
    chains = _Chains(group, root, len(set(group.values())))
    for n in graph.nodes:
        if n.op in OP_KINDS and n not in base and _rec(n) is not None:
            chains.place(n)
    return _price(graph, chains.resolved(), root, base, set(chains.attention))


class _Chains:
    """Kernels grown in graph order. A node joins (and may merge) the kernels of the producers it reads at full
    size (not a broadcast operand such as rotary's cos table; every operand of a ``cat``); a join or merge is
    refused when some input waits on the kernel through a node outside it (``deps``: bit k set = the node waits
    on kernel k). Attention kernels, made first, are closed: nothing joins them."""

    def __init__(self, group: dict[fx.Node, int], root, last: int) -> None:
        self.group = group
        self.root = root
        self.last = last
        self.parent: dict[int, int] = {}
        self.alias: dict[int, int] = {}  # kernel -> bits of every kernel merged into it
        self.members: dict[int, list[fx.Node]] = {}
        self.deps: dict[fx.Node, int] = {}
        self.attention = dict.fromkeys(group)
        for n, g in group.items():
            self.members.setdefault(g, []).append(n)
            self.alias[g] = 1 << g

    def find(self, g: int) -> int:
        while g in self.parent:
            g = self.parent[g]
        return g

    def kernel(self, n: fx.Node) -> int | None:
        g = self.group.get(self.root(n))
        return None if g is None else self.find(g)

    def dep_of(self, n: fx.Node) -> int:
        b = self.root(n)
        return self.deps.get(b, 0) | (1 << self.group[b] if b in self.group else 0)

    def _waits(self, nodes: list[fx.Node], k: int, also: int) -> bool:
        """Some input of ``nodes`` outside kernels ``k`` and ``also`` waits on ``k``."""
        for m in nodes:
            for a in m.all_input_nodes:
                if self.kernel(a) not in (k, also) and self.dep_of(a) & self.alias[k]:
                    return True
        return False

    def place(self, n: fx.Node) -> None:
        size = _numel(n)
        whole = _family(n)[1] == "copy"  # cat's operands are each a part of its output, not broadcast
        if n not in self.group and _fusable(n) and not _no_tensor(n):
            cands = sorted({self.kernel(a) for a in n.all_input_nodes if self._feeds(a, whole or _numel(a) >= size)},
                           reverse=True)
            joined = next((c for c in cands if not self._waits([n], c, c)), None)
            if joined is not None:
                self._add(n, joined)
                for h in cands:
                    if h != joined and not self._waits(self.members[joined], h, joined) \
                            and not self._waits(self.members[h], joined, h):
                        self.parent[h] = joined
                        self.alias[joined] |= self.alias[h]
                        self.members[joined] += self.members.pop(h)
        if n not in self.group and not _no_tensor(n):
            self.last += 1
            self.alias[self.last] = 1 << self.last
            self._add(n, self.last)
        d = 0
        for a in n.all_input_nodes:
            d |= self.dep_of(a)
        self.deps[n] = d

    def _feeds(self, a: fx.Node, whole: bool) -> bool:
        """``a`` is a chain member a reader may join through."""
        src = self.root(a)
        return whole and self.kernel(a) is not None and _fusable(src) and src not in self.attention

    def _add(self, n: fx.Node, k: int) -> None:
        self.group[n] = k
        self.members.setdefault(k, []).append(n)

    def resolved(self) -> dict[fx.Node, int]:
        return {n: self.find(g) for n, g in self.group.items()}


def _numel(n: fx.Node) -> int:
    return sum(int(t.numel()) for t in tensors_in(n.meta.get("val")))


def _attention_kernels(graph: fx.Graph, base: dict[fx.Node, fx.Node]) -> list[set[fx.Node]]:
    """The node sets of each attention kernel (see :func:`attention_kernel`)."""
    nodes = list(graph.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    claimed: set[fx.Node] = set()
    kernels = []
    for n in nodes:
        family, op = _family(n)
        core: set[fx.Node] | None = None
        if family == "attention" and n.op == "call_function":
            core = {n}
        elif family == "matmul" and op == "matmul" and n not in claimed:
            core = _eager_attention(n, nodes, pos, claimed, base)
        if not core:
            continue
        _absorb_copies(core, claimed, base)
        claimed |= core
        kernels.append(core)
    return kernels


def _users_within(n: fx.Node, inside: set[fx.Node], base: dict[fx.Node, fx.Node]) -> bool:
    """Every use of ``n`` (through views of it) is by a node in ``inside``."""
    for u in n.users:
        if u in base:
            if not _users_within(u, inside, base):
                return False
        elif u not in inside:
            return False
    return True


def _eager_attention(pv: fx.Node, nodes: list[fx.Node], pos: dict, claimed: set, base: dict) -> set[fx.Node] | None:
    """The nodes of matmul(Q, Kᵀ) → ... softmax ... → ``pv`` (= matmul(P, V)), or None."""
    if not pv.args or not isinstance(pv.args[0], fx.Node):
        return None
    inside = {pv}
    frontier = {pv.args[0]}
    qk = None
    for n in reversed(nodes[: pos[pv]]):
        if n not in frontier:
            continue
        if n in claimed or not _users_within(n, inside, base):
            continue
        family, op = _family(n)
        if n in base or _fusable(n):
            inside.add(n)
            frontier.update(n.all_input_nodes)
        elif family == "matmul" and op == "matmul" and qk is None:
            qk = n
            inside.add(n)
    if qk is None or not any(_family(m)[1] == "softmax" for m in inside):
        return None
    return {m for m in inside if m not in base}


def _absorb_copies(core: set[fx.Node], claimed: set, base: dict) -> None:
    """Add the copies (reshape, contiguous, expand) that only feed the kernel: it indexes their source in place."""
    grew = True
    while grew:
        grew = False
        for m in list(core):
            for a in m.all_input_nodes:
                src = a
                while src in base:
                    src = src.all_input_nodes[0]
                if src in core or src in claimed or src.op not in OP_KINDS:
                    continue
                if _family(src) == ("shape", "view") and _users_within(src, core, base):
                    core.add(src)
                    grew = True


def _value_bytes(n: fx.Node) -> int:
    return nbytes(n.meta.get("val"))


def _weights(n: fx.Node) -> int:
    if n.op != "call_module":
        return 0
    return ByteCall([], None, submodule(n.graph.owning_module, n.target)).weights


def _price(graph: fx.Graph, group: dict[fx.Node, int], root, base: dict,
           attention: set[fx.Node]) -> dict[fx.Node, tuple[int, int]]:
    """Each kernel's reads and writes, shared out among its nodes; a lone unfusable node keeps its eager bytes."""
    members: dict[int, list[fx.Node]] = {}
    for n in graph.nodes:
        if n in group:
            members.setdefault(group[n], []).append(n)
    out: dict[fx.Node, tuple[int, int]] = {}
    for n in graph.nodes:
        if n.op in OP_KINDS and n not in group:
            out[n] = (0, 0)
    for g, nodes in members.items():
        if len(nodes) == 1 and not _fusable(nodes[0]) and nodes[0] not in attention:
            n = nodes[0]
            out[n] = (g, _rec(n).bytes)  # a kernel of its own: its eager bytes
            continue
        inside = set(nodes)
        reads: dict[fx.Node, tuple[fx.Node, set[fx.Node]]] = {}  # source -> (first reader, the views read)
        for n in nodes:
            skip = append_past(n) if is_append(n) else None
            for a in n.all_input_nodes:
                if a is skip:
                    continue
                src = root(a)
                if src in inside:
                    continue
                entry = reads.setdefault(src, (n, set()))
                entry[1].add(a)
        share = {n: _weights(n) for n in nodes}
        cache = dict.fromkeys(nodes, 0)
        for src, (first, seen) in reads.items():
            read = min(_value_bytes(src), sum(_value_bytes(v) for v in seen))
            share[first] += read
            cache[first] += read if is_append(src) else 0
        for n in nodes:
            if is_append(n):
                new = _value_bytes(n) - _value_bytes(append_past(n))
                share[n] += new
                cache[n] += new
            elif _leaves(n, inside, base):
                share[n] += _value_bytes(n)
        for n in nodes:
            out[n] = (g, share[n])
            n.meta[CACHE_BYTES] = cache[n]
    return out


def append_past(n: fx.Node) -> fx.Node:
    seq = n.args[0] if n.args else n.kwargs.get("tensors")
    return seq[0]


def _leaves(n: fx.Node, inside: set[fx.Node], base: dict) -> bool:
    """The kernel writes ``n``: a node outside it, or the output, uses it (directly or through a view)."""
    for u in n.users:
        if u in base:
            if _leaves(u, inside, base):
                return True
        elif u not in inside:
            return True
    return False


def kernels(nodes: Iterable[NodeRecord]) -> dict[int, list[NodeRecord]]:
    """The records of each kernel, by kernel number (after :func:`fuse_bytes`)."""
    out: dict[int, list[NodeRecord]] = {}
    for rec in nodes:
        if rec.kernel:
            out.setdefault(rec.kernel, []).append(rec)
    return out
