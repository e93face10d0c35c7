"""The roofline estimate of each node, read from its record: which roof limits it and how long it takes.

One formula per node, on a :class:`~fxflops.devices.Device`::

    time = max(FLOPs / peak(dtype, family), bytes / bandwidth)

where a float32 convolution, matmul, linear layer or attention runs at the TF32 peak when torch's switches say it
would on a GPU (:meth:`~fxflops.devices.Device.peak_key`); ``peak`` names the peak used.

``bound`` is compute when the FLOPs term is the larger (the node's intensity FLOPs/bytes is above the
device's ridge point), memory otherwise; a node that moves and computes nothing takes 0 s and has no bound.
A module's time is the sum of its nodes' times (they run one after the other); its bound is the roof its
nodes spent most of that time under.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..devices import Device
from ..paths import ancestors
from ..types import OP_KINDS, NodeRecord, _StrEnum

__all__ = ["Bound", "NodeEstimate", "estimate_node", "estimate_nodes", "module_estimates", "intensity", "main_dtype"]


class Bound(_StrEnum):
    COMPUTE = "compute"
    MEMORY = "memory"
    NONE = ""  # moves and computes nothing


def intensity(flops: int | float, nbytes: int | float) -> float:
    """FLOPs per byte moved; 0 when nothing is moved (a view), so that it sorts with the free nodes."""
    return flops / nbytes if nbytes else 0.0


@dataclass(frozen=True)
class NodeEstimate:
    """The roofline time of one node (or the summed times of a module's nodes)."""

    name: str  # node name, or module path
    flops: int
    bytes: int
    compute_time: float  # FLOPs / peak
    memory_time: float  # bytes / bandwidth
    time: float  # the roofline time (for a module: the sum over its nodes)
    bound: Bound
    peak: str = ""  # the peak the FLOPs ran at (fp32, tf32, bf16...); "" for a module

    @property
    def intensity(self) -> float:
        return intensity(self.flops, self.bytes)

    @property
    def attained(self) -> float:
        """FLOP/s the node attains at its roofline time."""
        return self.flops / self.time if self.time else 0.0


def _float_dtype(rec: NodeRecord) -> str:
    floats = [d for d in rec.dtypes if d.startswith(("float", "bfloat", "int8", "uint8"))]
    return floats[0] if floats else "float32"


def main_dtype(nodes: list[NodeRecord]) -> str:
    """The dtype most of the FLOPs run in: the roof a summary or a chart is drawn for."""
    flops: dict[str, int] = {}
    for n in nodes:
        if n.flops:
            d = _float_dtype(n)
            flops[d] = flops.get(d, 0) + n.flops
    return max(flops, key=flops.get) if flops else "float32"


def estimate_node(rec: NodeRecord, device: Device) -> NodeEstimate:
    dtype, family = _float_dtype(rec), rec.rule.family if rec.rule is not None else ""
    compute = rec.flops / device.peak(dtype, family) if rec.flops else 0.0
    memory = rec.bytes / device.attained_bandwidth
    time = max(compute, memory)
    bound = Bound.NONE if not time else Bound.COMPUTE if compute > memory else Bound.MEMORY
    return NodeEstimate(rec.name, rec.flops, rec.bytes, compute, memory, time, bound,
                        device.peak_key(dtype, family) if rec.flops else "")


def estimate_nodes(nodes: list[NodeRecord], device: Device) -> dict[str, NodeEstimate]:
    """The estimate of every op node, by record name."""
    return {n.name: estimate_node(n, device) for n in nodes if n.kind in OP_KINDS}


def module_estimates(nodes: list[NodeRecord], estimates: dict[str, NodeEstimate]) -> dict[str, NodeEstimate]:
    """Per module path (``""`` = the model): its nodes' summed times; bound by where most of the time went."""
    acc: dict[str, list[float]] = {}  # path -> [flops, bytes, compute, memory, time, time compute-bound]
    for n in nodes:
        e = estimates.get(n.name)
        if e is None or not e.time:
            continue
        for path in ancestors(n.module_path):
            a = acc.setdefault(path, [0, 0, 0.0, 0.0, 0.0, 0.0])
            a[0] += e.flops
            a[1] += e.bytes
            a[2] += e.compute_time
            a[3] += e.memory_time
            a[4] += e.time
            a[5] += e.time if e.bound == Bound.COMPUTE else 0.0
    return {p: NodeEstimate(p, int(a[0]), int(a[1]), a[2], a[3], a[4],
                            Bound.COMPUTE if a[5] > a[4] / 2 else Bound.MEMORY)
            for p, a in acc.items()}
