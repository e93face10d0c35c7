"""The vocabulary every stage shares: what an op costs, how a node was priced, and the report's rows.

These are plain data. Passes write a :class:`NodeCost` into each fx node's ``node.meta["fxflops"]``; the
report reads them once into :class:`NodeRecord` and :class:`ModuleRow`. Categories are enums (``str``
subclasses, so they compare equal to and serialise as their value: ``Status.COUNTED == "counted"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Cost", "Status", "Backward", "Capture", "NodeCost", "NodeRecord", "ModuleRow", "OP_KINDS"]

# The fx node kinds that are calls, i.e. that a rule may price.
OP_KINDS = ("call_module", "call_function", "call_method")


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value


class Status(_StrEnum):
    """How a node was priced."""

    COUNTED = "counted"  # a rule computed its cost
    PARTIAL = "partial"  # priced, but some ops inside it could not be (NodeCost.left_out says which)
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


@dataclass
class NodeCost:
    """The cost of one fx node, as stored in ``node.meta["fxflops"]``."""

    op: str  # op type shown in reports: conv2d, linear, add...
    status: Status
    macs: int = 0
    flops: int = 0
    rule: str = ""  # the rule that priced it, or why it is free / ignored / uncounted
    module_path: str = ""  # the innermost module the node belongs to ("" for the root)
    module_type: str = ""
    target: str = ""  # human name of the call target
    qualname: str = ""  # its qualified name: nn.Conv2d, F.linear, operator.add, Tensor.softmax
    left_out: tuple[str, ...] = ()  # with Status.PARTIAL: what inside the node could not be priced
    bytes: int = 0  # memory traffic, set by the bytes pass (fxflops.passes.bytes)
    bwd_macs: int = 0  # the gradient's cost, set by the backward pass (fxflops.passes.backward)
    bwd_flops: int = 0
    bwd: Backward = Backward.NONE
    saved_bytes: int = 0  # activations this node keeps for the backward (train mode)
    # Inside an activation-checkpoint region (train mode): what the node saves while the backward recomputes it
    # (saved_bytes is then 0, the region's inputs are saved instead); its bwd_* include the recomputed forward.
    recompute_saved: int = 0


@dataclass
class NodeRecord:
    """One graph node: what it is, where it lives, what it consumed and produced, and what it cost."""

    name: str
    kind: str  # fx op: placeholder, call_module, call_function, call_method, get_attr, output
    target: str
    op: str
    module_path: str
    module_type: str
    input_shapes: list
    output_shapes: list
    dtypes: list
    macs: int
    flops: int
    params: int
    rule: str
    status: Status
    left_out: list[str] = field(default_factory=list)  # with Status.PARTIAL: what inside it was left out
    qualname: str = ""  # the call target's qualified name (nn.Conv2d, F.linear, operator.add, Tensor.add)
    # The module calls the node ran inside, outermost first. A module shared between owners has one path, so
    # module_path alone would charge every call of it to its first owner; the stack says which owner called it.
    module_stack: list[str] = field(default_factory=list)
    bytes: int = 0  # bytes read + written when the node runs as one unfused kernel (fxflops.passes.bytes)
    measured: float | None = None  # median seconds of the node on real tensors, with measure=True
    bwd_macs: int = 0  # the backward's MACs and FLOPs (fxflops.passes.backward); macs/flops are the forward's
    bwd_flops: int = 0
    bwd: Backward = Backward.NONE
    saved_bytes: int = 0  # activations this node keeps for the backward (train mode)
    checkpoint: int = 0  # the activation-checkpoint region (torch.utils.checkpoint) it ran in: 1, 2, ...; 0 if none
    recompute_saved: int = 0  # in a region, train mode: what it saves while the backward recomputes it


@dataclass
class ModuleRow:
    """One module of the model: params of its subtree and the summed cost of the nodes it ran."""

    path: str
    type: str
    depth: int
    params: int
    macs: int
    flops: int
    bytes: int = 0
    measured: float | None = None  # summed medians of its nodes, with measure=True
    bwd_macs: int = 0
    bwd_flops: int = 0
