"""The vocabulary every stage shares: what an op costs, how a node was priced, and the report's rows.

These are plain data. The passes build one :class:`NodeRecord` per fx node, in ``node.meta["fxflops"]``; the
report holds those records and a :class:`ModuleRow` per module, summed from them. Categories are enums (``str``
subclasses, so they compare equal to and serialise as their value: ``Status.COUNTED == "counted"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["Cost", "Status", "Backward", "Capture", "NodeRecord", "ModuleRow", "OP_KINDS"]

# The fx node kinds that are calls, i.e. that a rule may price.
OP_KINDS = ("call_module", "call_function", "call_method")


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value


class Status(_StrEnum):
    """How a node was priced."""

    COUNTED = "counted"  # a rule computed its cost
    PARTIAL = "partial"  # priced, but some ops inside it could not be (NodeRecord.left_out says which)
    FREE = "free"  # no floating-point work by design (views, copies, lookups); the rule says why
    IGNORED = "ignored"  # the user asked for it to count as 0
    UNCOUNTED = "uncounted"  # no rule knows it, or its rule failed: counted as 0, the total is too low
    NONE = ""  # not an op (placeholder, get_attr, output)

    @property
    def priced(self) -> bool:
        return self in (Status.COUNTED, Status.PARTIAL)

    @property
    def incomplete(self) -> bool:
        """The node's price misses something."""
        return self in (Status.PARTIAL, Status.UNCOUNTED)


class Backward(_StrEnum):
    """How a node's backward was priced (with ``mode="train"``)."""

    COUNTED = "counted"  # a backward rule computed it
    FREE = "free"  # the op does no floating-point work, forward or backward (views, copies)
    NOT_NEEDED = "not needed"  # nothing the node reads needs a gradient: autograd skips it
    MISSING = "missing"  # a counted op without a backward formula (a custom rule): counted as 0, the total is too low
    NONE = ""  # not an op, or not priced


class Capture(_StrEnum):
    """Which path turned the model into graphs."""

    FX = "fx"
    FX_PARTIAL = "fx (partial)"  # fx, with untraceable submodules kept as leaves
    RECORD = "record"  # the eager call recorded at the torch-function level
    DYNAMO = "dynamo"


@dataclass(frozen=True)
class CheckpointRegion:
    """One outermost ``torch.utils.checkpoint`` call, as ``node.meta["checkpoint"]`` of every node made inside it.
    The backward recomputes the region from its saved inputs: all of it when ``reentrant`` or without
    ``early_stop``, else only up to the last value a backward formula needs."""

    index: int  # 1, 2, ... in the order the regions ran
    reentrant: bool = False
    early_stop: bool = True

    @property
    def whole(self) -> bool:
        return self.reentrant or not self.early_stop


@dataclass(frozen=True)
class Cost:
    """What one op costs. ``flops`` is the total: ``2 * macs`` plus every other floating-point op."""

    macs: int = 0
    flops: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.macs + other.macs, self.flops + other.flops)

    def __mul__(self, k: int) -> "Cost":
        return Cost(self.macs * k, self.flops * k)

    __rmul__ = __mul__


class Halves:
    """What a node's record and a module's row both say of their cost: ``macs``, ``flops`` and ``bytes`` are forward +
    backward (their share of the report's ``total_*``), ``fwd_*`` and ``bwd_*`` the halves."""

    fwd: Cost
    bwd: Cost | None
    fwd_bytes: int
    bwd_bytes: int

    @property
    def total(self) -> Cost:
        """Forward + backward."""
        return self.fwd + self.bwd if self.bwd is not None else self.fwd

    @property
    def macs(self) -> int:
        return self.total.macs

    @property
    def flops(self) -> int:
        return self.total.flops

    @property
    def bytes(self) -> int:
        return self.fwd_bytes + self.bwd_bytes

    @property
    def fwd_macs(self) -> int:
        return self.fwd.macs

    @property
    def fwd_flops(self) -> int:
        return self.fwd.flops

    @property
    def bwd_macs(self) -> int:
        return self.bwd.macs if self.bwd is not None else 0

    @property
    def bwd_flops(self) -> int:
        return self.bwd.flops if self.bwd is not None else 0


@dataclass(eq=False)
class NodeRecord(Halves):
    """One graph node: what it is, where it lives, what it consumed and produced, and what it cost.

    The passes build it in place: the cost pass creates it in ``node.meta["fxflops"]`` (``fwd``, ``rule`` or
    ``reason``, ``status``), the bytes pass sets ``bytes``, the backward pass ``bwd``, ``bwd_status`` and the
    saved bytes, and the records pass fills in the shapes, the parameters and ``node``. Every view reads this one
    object: ``macs``/``flops`` are its share of the report's ``total_macs``/``total_flops`` (forward + backward in
    train mode), ``fwd``/``bwd`` the halves.
    """

    name: str
    kind: str  # fx node kind: placeholder, call_module, call_function, call_method, get_attr, output
    target: str  # human name of the call target
    op: str = ""  # op type shown in reports: conv2d, linear, add...
    status: Status = Status.NONE
    fwd: Cost = Cost()
    bwd: Cost | None = None  # the gradient's cost in train mode (bwd_status says how it was priced); else None
    rule: Any = field(default=None, repr=False)  # the registered Rule that priced it (fxflops.rules.registry.Rule)
    reason: str = ""  # why it is free, ignored or uncounted, or how it was priced without a rule
    module_path: str = ""  # the innermost module the node belongs to ("" for the root)
    module_type: str = ""
    qualname: str = ""  # the call target's qualified name (nn.Conv2d, F.linear, operator.add, Tensor.add)
    input_shapes: list = field(default_factory=list)
    output_shapes: list = field(default_factory=list)
    dtypes: list = field(default_factory=list)
    params: int = 0  # parameters first used by this node
    left_out: list[str] = field(default_factory=list)  # with Status.PARTIAL: what inside it was left out
    # The module calls the node ran inside, outermost first. A module shared between owners has one path, so
    # module_path alone would charge every call of it to its first owner; the stack says which owner called it.
    module_stack: list[str] = field(default_factory=list)
    # bytes read + written by the forward, one unfused kernel per node (fxflops.passes.bytes; at kernel boundaries
    # with bytes="fused"), and by the backward in train mode (fxflops.passes.backward)
    fwd_bytes: int = 0
    bwd_bytes: int = 0
    measured: float | None = None  # median seconds of the node on real tensors, with measure=True
    bwd_status: Backward = Backward.NONE
    saved_bytes: int = 0  # activations this node keeps for the backward (train mode)
    checkpoint: int = 0  # the activation-checkpoint region (torch.utils.checkpoint) it ran in: 1, 2, ...; 0 if none
    # Inside a checkpoint region (train mode): what the node saves while the backward recomputes it (saved_bytes is
    # then 0, the region's inputs are saved instead); its bwd includes the recomputed forward.
    recompute_saved: int = 0
    # Inside a checkpoint region (train mode): the forward the backward runs again, included in ``bwd`` (MFU leaves
    # it out, HFU counts it); None outside one.
    recompute: Cost | None = None
    # Where the record comes from: the fx node (None for a module a dynamo capture kept whole) and the index of its
    # graph in ``Report.graph_modules``. A copy of another node's record has the same ``node`` and says which copy
    # it is: ``run`` k (its graph ran a k-th time) or ``block`` (the path of the reused block it stands for).
    node: Any = field(default=None, repr=False)
    graph: int = 0
    run: int = 1
    block: str = ""
    kernel: int = 0  # with bytes="fused": the kernel (fused group) it runs in, 1, 2, ...; 0 for none (passes/fusion.py)

    def __getstate__(self) -> dict[str, Any]:
        # The fx node belongs to this process's graph: a record sent to another (a sweep worker's report) keeps its
        # numbers and its rule, and leaves the node behind.
        return {**self.__dict__, "node": None}

    @property
    def rule_name(self) -> str:
        """The op name of the rule that priced it, or ""."""
        return self.rule.op if self.rule is not None else ""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values: costs as exact integers, the rule by name, no graph references."""
        return {
            "name": self.name, "kind": self.kind, "target": self.target, "op": self.op, "status": str(self.status),
            "macs": self.macs, "flops": self.flops, "fwd_macs": self.fwd.macs, "fwd_flops": self.fwd.flops,
            "bwd_macs": self.bwd_macs, "bwd_flops": self.bwd_flops, "bwd_status": str(self.bwd_status),
            "rule": self.rule_name, "reason": self.reason, "module_path": self.module_path,
            "module_type": self.module_type, "qualname": self.qualname,
            "input_shapes": [list(s) for s in self.input_shapes], "output_shapes": [list(s) for s in self.output_shapes],
            "dtypes": list(self.dtypes), "params": self.params, "left_out": list(self.left_out),
            "module_stack": list(self.module_stack), "bytes": self.bytes, "fwd_bytes": self.fwd_bytes,
            "bwd_bytes": self.bwd_bytes, "measured": self.measured,
            "saved_bytes": self.saved_bytes, "checkpoint": self.checkpoint, "recompute_saved": self.recompute_saved,
            "recompute_flops": self.recompute.flops if self.recompute is not None else 0,
            "graph": self.graph, "run": self.run, "block": self.block, "kernel": self.kernel,
        }


@dataclass
class ModuleRow(Halves):
    """One module of the model: params of its subtree and the summed cost of the nodes it ran."""

    path: str
    type: str
    depth: int
    params: int
    fwd: Cost = Cost()
    bwd: Cost = Cost()  # the backward of its nodes (train mode)
    fwd_bytes: int = 0
    bwd_bytes: int = 0
    measured: float | None = None  # summed medians of its nodes, with measure=True

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "depth": self.depth, "params": self.params,
                "macs": self.macs, "flops": self.flops, "fwd_macs": self.fwd.macs, "fwd_flops": self.fwd.flops,
                "bwd_macs": self.bwd.macs, "bwd_flops": self.bwd.flops, "bytes": self.bytes,
                "fwd_bytes": self.fwd_bytes, "bwd_bytes": self.bwd_bytes,
                "measured": self.measured}
