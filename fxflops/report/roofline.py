"""The roofline view of a report (:meth:`fxflops.Report.roofline`): estimated time per node and module on one device."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..devices import Device
from ..passes.roofline import Bound, NodeEstimate, estimate_nodes, main_dtype, module_estimates
from ..types import NodeRecord
from ..units import human, seconds
from .tables import grid
from .html import roofline_html

if TYPE_CHECKING:
    from .report import Report

__all__ = ["Roofline", "seconds"]

# The columns est.table() shows; any of Report.table's columns can be asked for instead.
COLUMNS = ["flops", "bytes", "intensity", "est_time", "% time", "bound"]


@dataclass
class Roofline:
    """Roofline estimates of every node of ``report`` on ``device`` (times in seconds)."""

    report: "Report"
    device: Device
    nodes: dict[str, NodeEstimate]  # by record name, op nodes only
    modules: dict[str, NodeEstimate]  # by module path, "" = the model

    @classmethod
    def of(cls, report: "Report", device: Device) -> "Roofline":
        nodes = estimate_nodes(report.nodes, device)
        return cls(report, device, nodes, module_estimates(report.nodes, nodes))

    @property
    def total_time(self) -> float:
        return sum(e.time for e in self.nodes.values())

    def time_by_bound(self) -> dict[str, float]:
        """Seconds spent compute-bound and memory-bound."""
        out = {Bound.COMPUTE.value: 0.0, Bound.MEMORY.value: 0.0}
        for e in self.nodes.values():
            if e.bound:
                out[e.bound.value] += e.time
        return out

    def top(self, k: int = 10) -> list[tuple[NodeRecord, NodeEstimate]]:
        """The ``k`` nodes with the longest estimated time."""
        recs = {n.name: n for n in self.report.nodes}
        ranked = sorted(self.nodes.values(), key=lambda e: (-e.time, e.name))[:k]
        return [(recs[e.name], e) for e in ranked]

    def table(self, depth: int = 2, columns: list[str] | None = None) -> str:
        """The per-module table with estimated times; columns as :meth:`fxflops.Report.table`."""
        return self.report.table(depth, columns=columns or COLUMNS, device=self.device)

    def top_table(self, k: int = 10) -> str:
        total = self.total_time
        rows = [("node", "op", "module", "FLOPs", "bytes", "FLOP/B", "peak", "est. time", "% time", "bound")]
        for n, e in self.top(k):
            rows.append((n.name, n.op, n.module_path or "-", human(n.flops), human(n.bytes), f"{e.intensity:.3g}",
                         e.peak or "-", seconds(e.time), f"{100 * e.time / total:.1f}%" if total else "-",
                         str(e.bound)))
        return grid(rows, align_right=(3, 4, 5, 7, 8))

    def time_by_peak(self) -> dict[str, float]:
        """Seconds of compute-bound time at each peak (``fp32``, ``tf32``, ``bf16``...)."""
        out: dict[str, float] = {}
        for e in self.nodes.values():
            if e.bound == Bound.COMPUTE:
                out[e.peak] = out.get(e.peak, 0.0) + e.time
        return out

    def plot(self, path: str, level: str = "node", depth: int = 2, title: str | None = None):
        """The roofline chart (intensity vs attained FLOP/s, the device's roof drawn) into ``path``; needs
        matplotlib (``pip install "fxflops[plot]"``). See :func:`fxflops.draw.roofline_chart.plot`."""
        from ..draw.roofline_chart import plot  # the drawing stage comes after the report

        return plot(self, path, level=level, depth=depth, title=title)

    @property
    def main_peak(self) -> str:
        """The peak most of the FLOPs ran at (``tf32`` for a float32 CNN on a GPU as torch runs it by default)."""
        flops: dict[str, int] = {}
        for e in self.nodes.values():
            if e.peak:
                flops[e.peak] = flops.get(e.peak, 0) + e.flops
        return max(flops, key=flops.get) if flops else self.device.peak_key(main_dtype(self.report.nodes))

    def summary(self) -> str:
        d = self.device
        dtype = self.main_peak
        split = self.time_by_bound()
        total = self.total_time or 1.0
        return (f"{self.report.model_name} on {d.name}: {seconds(self.total_time)} estimated "
                f"({100 * split['memory'] / total:.0f}% of it memory-bound); "
                f"{human(self.report.total_flops)} FLOPs, {human(self.report.total_bytes)}B moved, "
                f"intensity {self.report.intensity:.3g} FLOP/B, ridge {d.ridge(dtype):.3g} FLOP/B ({dtype})")

    def __str__(self) -> str:
        return self.summary() + "\n\n" + self.table()

    def __repr__(self) -> str:
        return f"<Roofline {self.report.model_name} on {self.device.name}: {seconds(self.total_time)}, {len(self.nodes)} nodes>"

    def _repr_html_(self) -> str:
        return roofline_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device.to_dict(),
            "total_time": self.total_time,
            "time_by_bound": self.time_by_bound(),
            "nodes": {k: _est(e) for k, e in self.nodes.items()},
            "modules": {k: _est(e) for k, e in self.modules.items()},
        }


def _est(e: NodeEstimate) -> dict[str, Any]:
    return {"time": e.time, "bound": str(e.bound), "intensity": e.intensity, "compute_time": e.compute_time,
            "memory_time": e.memory_time, **({"peak": e.peak} if e.peak else {})}
