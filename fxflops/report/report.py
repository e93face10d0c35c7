"""The report: the records of every node, a row per module, the notes, and the totals read from them.

It is data plus a few verbs. The views (tables, exports, the audit, the drawings) are functions of a report in their
own modules; the methods of the same names call them, so that ``report.table()`` and its friends read as users
expect. The graphs stay attached only so that the drawing can follow their edges.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import torch.fx as fx

from ..devices import Device, get_device
from ..errors import FxFlopsError
from ..passes.roofline import intensity
from ..types import Backward, Capture, ModuleRow, NodeRecord, Status
from . import export, views
from .audit import Audit, BlindSpot, audit, hook_blind_spot, shortfall
from .memory import InferenceMemory, Memory, memory
from .roofline import Roofline
from .html import report_html

# Re-exported: the table's columns are documented on Report.table.
COLUMNS, DEFAULT_COLUMNS, TRAIN_COLUMNS = views.COLUMNS, views.DEFAULT_COLUMNS, views.TRAIN_COLUMNS


def _here(method: Callable) -> Callable:
    """Refuse ``method`` on a report copied from another process (pickled): it needs the graphs or the model."""
    @functools.wraps(method)
    def checked(self: "Report", *args: Any, **kwargs: Any) -> Any:
        if self.__dict__.get("_copied"):
            raise FxFlopsError(f"{method.__name__}() needs the graph and the model, which stay in the process that "
                               "traced them: call it on a report from trace_flops in this process")
        return method(self, *args, **kwargs)

    return checked


@dataclass
class Report:
    """The result of :func:`fxflops.trace_flops`."""

    model_name: str
    nodes: list[NodeRecord]
    modules: dict[str, ModuleRow]
    input_shapes: list
    capture: Capture
    shape_mode: str  # "meta", "fake" or "real"
    notes: list[str] = field(default_factory=list)
    # MACs an eager FlopCounterMode run saw that no node holds (work run outside the captured graphs), as a note
    missing: str | None = None
    graph_modules: list[fx.GraphModule] = field(default_factory=list, repr=False, compare=False)
    # where measure=True timed the nodes ("cpu", "cuda:0"), and the device estimates default to there
    measured_on: str | None = None
    mode: str = "infer"  # "train": totals are forward + backward
    model: Any = field(default=None, repr=False, compare=False)  # the model counted, for memory()

    def __getstate__(self) -> dict[str, Any]:
        # A report crosses processes (sweep(workers=N)) with every number, table and export; the graphs and the
        # model are the tracing process's objects (the model would carry its weights), so they stay behind.
        return {**self.__dict__, "graph_modules": [], "model": None, "_copied": True}

    @property
    def graph_module(self) -> fx.GraphModule | None:
        """The (first) captured graph; ``graph_modules`` holds them all."""
        return self.graph_modules[0] if self.graph_modules else None

    # ---- totals -------------------------------------------------------------------------------
    @property
    def forward_macs(self) -> int:
        return sum(n.fwd.macs for n in self.nodes)

    @property
    def forward_flops(self) -> int:
        return sum(n.fwd.flops for n in self.nodes)

    @property
    def backward_macs(self) -> int:
        """The backward's MACs in train mode (0 in infer mode)."""
        return sum(n.bwd_macs for n in self.nodes)

    @property
    def backward_flops(self) -> int:
        return sum(n.bwd_flops for n in self.nodes)

    @property
    def total_macs(self) -> int:
        """forward_macs + backward_macs: the forward alone in infer mode, one training step in train mode."""
        return self.forward_macs + self.backward_macs

    @property
    def total_flops(self) -> int:
        return self.forward_flops + self.backward_flops

    @property
    def total_params(self) -> int:
        root = self.modules.get("")
        return root.params if root is not None else 0

    @property
    def forward_bytes(self) -> int:
        """Bytes read and written by the forward, each node run as one unfused kernel (see docs/conventions.md)."""
        return sum(n.fwd_bytes for n in self.nodes)

    @property
    def backward_bytes(self) -> int:
        """Bytes read and written by the backward in train mode (0 in infer mode)."""
        return sum(n.bwd_bytes for n in self.nodes)

    @property
    def total_bytes(self) -> int:
        """forward_bytes + backward_bytes: what one forward, or one training step, moves."""
        return self.forward_bytes + self.backward_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity of the whole model: FLOPs per byte moved."""
        return intensity(self.total_flops, self.total_bytes)

    @property
    def total_measured(self) -> float | None:
        """Summed per-node median seconds, with ``measure=True``; None otherwise."""
        times = [n.measured for n in self.nodes if n.measured is not None]
        return sum(times) if times else None

    # ---- coverage -----------------------------------------------------------------------------
    @property
    def uncounted(self) -> list[NodeRecord]:
        return [n for n in self.nodes if n.status == Status.UNCOUNTED]

    @property
    def no_backward(self) -> list[NodeRecord]:
        """In train mode, the nodes whose op has no backward formula (a custom rule): their gradient counts as 0."""
        return [n for n in self.nodes if n.bwd_status == Backward.MISSING]

    def shortfall(self, strict: bool = False) -> str | None:
        """What the count could not price, in one sentence without advice (None when nothing); ``strict`` words it for
        an error ("would be counted as 0")."""
        return shortfall(self, strict)

    def audit(self) -> Audit:
        """Every distinct call target with its rule, cost and status (counted/partial/free/ignored/uncounted)."""
        return audit(self)

    def hook_blind_spot(self) -> BlindSpot:
        """FLOPs and MACs outside any leaf module call: what a forward-hook counter cannot see."""
        return hook_blind_spot(self)

    # ---- estimates ----------------------------------------------------------------------------
    def roofline(self, device: "str | Device" = "cpu") -> Roofline:
        """Roofline estimate on ``device``: a preset name (``a100``, ``h100``, ``h200``, ``v100``), ``"cpu"``
        (measured on this machine, cached) or an :class:`fxflops.Device`. Times are in seconds."""
        return Roofline.of(self, get_device(device))

    @_here
    def memory(self, optimizer: str | None = None) -> "Memory | InferenceMemory":
        """Bytes of one training step (train mode): parameters, gradients, ``optimizer`` state (``adam``, the default,
        and ``adamw``: 2 fp32 per trainable element, ``sgd`` with momentum: 1, ``none``) and the activations saved for
        the backward; in infer mode an :class:`InferenceMemory`: parameters, buffers and the peak of the activations
        alive at once. Needs the model the report was made from (kept as ``report.model``)."""
        if self.model is None:
            raise FxFlopsError("this report holds no model: memory() needs one made by fxflops.trace_flops")
        return memory(self, self.model, optimizer)

    # ---- views (fxflops.report.views) ---------------------------------------------------------
    def by_op(self) -> dict[str, dict[str, int]]:
        """``{op: {"count", "macs", "flops"}}`` over op nodes, costliest first (the halves too in train mode)."""
        return views.by_op(self)

    def top(self, k: int = 10) -> list[NodeRecord]:
        """The ``k`` costliest nodes by FLOPs (ties in execution order)."""
        return views.top(self, k)

    def summary(self) -> str:
        return views.summary(self)

    def table(self, depth: int = 2, columns: list[str] | tuple[str, ...] | None = None,
              device: "str | Device | None" = None) -> str:
        """The per-module table (fvcore style); by default params, MACs, FLOPs and share of total FLOPs.

        ``columns`` picks others from :data:`COLUMNS`: ``bytes``, ``intensity`` (FLOP/B), ``measured`` (seconds,
        with ``measure=True``), and, on the roofline of ``device`` (default: ``"cpu"``), ``est_time``,
        ``% time``, ``bound`` and ``measured/est``. In train mode ``macs``/``flops`` are forward + backward,
        ``fwd_macs``/``fwd_flops``/``bwd_macs``/``bwd_flops`` the halves (the default there: :data:`TRAIN_COLUMNS`)."""
        return views.table(self, depth, columns, device)

    def top_table(self, k: int = 10) -> str:
        return views.top_table(self, k)

    def op_table(self) -> str:
        return views.op_table(self)

    def __str__(self) -> str:
        return self.summary() + "\n\n" + self.table()

    def __repr__(self) -> str:
        return (f"<Report {self.model_name}: {self.total_macs:,} MACs, {self.total_flops:,} FLOPs, "
                f"{self.total_params:,} params, {len(self.nodes)} nodes, capture={self.capture}>")

    def _repr_html_(self) -> str:
        return report_html(self)

    # ---- exports (fxflops.report.export) ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return views.as_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self, path: str | None = None, *, rows: str = "modules", depth: int | None = None) -> str:
        """CSV of ``rows`` (``"modules"`` down to ``depth``, ``"ops"`` or ``"nodes"``), exact integers; also
        written to ``path`` when given. See :mod:`fxflops.report.export`."""
        return export.to_csv(self, path, rows=rows, depth=depth)

    def to_markdown(self, depth: int = 2, *, exact: bool = False) -> str:
        """The totals and the per-module table as a Markdown pipe table (``exact=True``: integers, not 4.09G)."""
        return export.to_markdown(self, depth, exact=exact)

    def to_dataframe(self, rows: str = "modules", depth: int | None = None):
        """A ``pandas.DataFrame`` of ``rows`` (the CSV's columns); needs pandas (``pip install "fxflops[pandas]"``)."""
        return export.to_dataframe(self, rows, depth)

    # ---- the annotated graph (fxflops.draw; imported on use, the drawing stage comes after the report) -----------
    @_here
    def to_networkx(self):
        """A ``networkx.DiGraph``: one node per fx node with its costs and shapes, edges along data flow."""
        from ..draw.graph import to_networkx

        return to_networkx(self)

    @_here
    def to_dot(self, **options: Any) -> str:
        """DOT text of the annotated graph; options as :func:`fxflops.draw.dot.to_dot` (depth, top, roll...)."""
        from ..draw.dot import to_dot

        return to_dot(self, **options)

    def chart(self, path: str, depth: int = 3, metric: str = "flops"):
        """An icicle chart of ``metric`` by module down to ``depth`` (.png/.svg/.pdf; needs ``fxflops[plot]``)."""
        from ..draw.charts import module_chart

        return module_chart(self, path, depth=depth, metric=metric)

    @_here
    def render(self, path: str, **options: Any):
        """Draw the annotated graph into ``path`` (.svg, .png or .pdf); options as :func:`fxflops.draw.dot.render`."""
        from ..draw.dot import render

        return render(self, path, **options)

    @_here
    def explore(self, path: str, **options: Any):
        """Write the explorer, one self-contained HTML page (``color``, ``device``: see :func:`fxflops.draw.explore.explore`)."""
        from ..draw.explore import explore

        return explore(self, path, **options)
