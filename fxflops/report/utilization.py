"""MFU and HFU of a training step: a report's exact FLOPs over the step time and a device's dense peak.

MFU (model FLOPs utilisation) divides the FLOPs the *model* needs per step, forward + backward without the
activation-checkpoint recompute, by ``step time × dense peak of the dtype × devices``; HFU (hardware FLOPs
utilisation) counts the recompute too, since the hardware runs it. The recompute is not a field of the records
(their ``bwd`` includes it), so :func:`recompute_by_node` takes it back out of the backward exactly, by running
the backward pass's own decisions again over the report's graphs and checking that they give every record's
``bwd``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.fx as fx

from ..devices import Device, dtype_key, get_device
from ..errors import FxFlopsError
from ..paths import attr_at, submodule
from ..passes.backward import _call, _recomputed, _saved_bytes, backward_of, needs_grad
from ..passes.roofline import main_dtype
from ..tensors import tensors_in
from ..types import OP_KINDS, Backward, Cost

if TYPE_CHECKING:
    from .report import Report

__all__ = ["Utilization", "utilization", "utilization_of", "recompute_flops", "recompute_by_node"]

ATTENTION = ("graph", "causal")
BATCH = ("device", "global")
SDPA = "scaled_dot_product_attention"


@dataclass(frozen=True)
class Utilization:
    """Throughput and utilisation of a training step. Conventions (also in ``str()``):

    - ``model_flops``: the step's model FLOPs on one device: forward + backward of the report (× ``micro_batches``),
      without the activation-checkpoint recompute; ``hardware_flops`` adds the recompute back.
    - ``mfu = model_flops / (step_seconds × peak)``, ``hfu = hardware_flops / (step_seconds × peak)``, where
      ``peak`` is the device's dense (non-sparse) vendor figure for ``dtype``, per device (``device.source``).
    - ``flops_per_second_per_device = model_flops / step_seconds``; ``flops_per_second`` is that × ``n_devices``.
    - ``attention == "causal"``: fused attention (``scaled_dot_product_attention``) counts half its FLOPs, the
      half a causal kernel computes; ``"graph"`` counts what the graph computes.
    """

    model_flops: int
    hardware_flops: int
    recompute_flops: int
    step_seconds: float
    peak: float  # dense FLOP/s of one device for ``dtype``
    dtype: str
    device: Device
    n_devices: int = 1
    attention: str = "graph"
    attention_flops_dropped: int = 0  # per device and step: what attention="causal" left out

    @property
    def flops_per_second_per_device(self) -> float:
        return self.model_flops / self.step_seconds

    @property
    def flops_per_second(self) -> float:
        """Model FLOP/s of all ``n_devices`` together."""
        return self.flops_per_second_per_device * self.n_devices

    @property
    def hardware_flops_per_second(self) -> float:
        return self.hardware_flops / self.step_seconds * self.n_devices

    @property
    def mfu(self) -> float:
        return self.model_flops / (self.step_seconds * self.peak)

    @property
    def hfu(self) -> float:
        return self.hardware_flops / (self.step_seconds * self.peak)

    def __str__(self) -> str:
        hfu = f"HFU {self.hfu:.1%} (with {self.recompute_flops:,} recompute FLOPs)" if self.recompute_flops else \
            "HFU = MFU (no recompute)"
        causal = " causal attention counted half;" if self.attention == "causal" else ""
        return (f"MFU {self.mfu:.1%}, {hfu}: {self.flops_per_second_per_device / 1e12:.4g} TFLOP/s per device, "
                f"{self.flops_per_second / 1e12:.4g} on {self.n_devices} device(s); model FLOPs per device and step "
                f"{self.model_flops:,} (forward + backward, recompute excluded;{causal} {self.step_seconds:.4g} s) "
                f"over the dense {self.dtype} peak of {self.device.name}, {self.peak / 1e12:.4g} TFLOP/s per device")

    def to_dict(self) -> dict[str, Any]:
        return {"mfu": self.mfu, "hfu": self.hfu, "model_flops": self.model_flops,
                "hardware_flops": self.hardware_flops,
                "recompute_flops": self.recompute_flops, "step_seconds": self.step_seconds,
                "flops_per_second": self.flops_per_second,
                "flops_per_second_per_device": self.flops_per_second_per_device, "n_devices": self.n_devices,
                "dtype": self.dtype, "peak": self.peak, "device": self.device.name, "source": self.device.source,
                "attention": self.attention, "attention_flops_dropped": self.attention_flops_dropped}


def utilization(report: "Report", step_seconds: float, device: str | Device = "cpu", n_devices: int = 1,
                dtype: str | None = None, attention: str = "graph", *, micro_batches: int = 1,
                batch: str = "device") -> Utilization:
    """MFU, HFU and FLOP/s of a step that took ``step_seconds``.

    ``report`` is a ``mode="train"`` count of one device's micro-batch (``batch="global"``:
    for the batch of all ``n_devices`` together, split evenly); the step ran ``micro_batches`` of them (gradient
    accumulation). ``dtype`` picks the peak (``"bf16"``, ``"fp16"``, ``"tf32"``, ``"float32"``...; default: the
    dtype most of the report's FLOPs run in); ``device`` is a preset name or a :class:`~fxflops.Device`.
    """
    if int(micro_batches) < 1:
        raise FxFlopsError(f"micro_batches must be at least 1, got {micro_batches!r}")
    if attention not in ATTENTION:
        raise FxFlopsError(f"attention must be one of {ATTENTION}, got {attention!r}")
    if batch not in BATCH:
        raise FxFlopsError(f"batch must be one of {BATCH} (what the report's example is), got {batch!r}")
    key = dtype_key(dtype or main_dtype(report.nodes))
    again = recompute_by_node(report)
    recompute = _summed(report, again)
    dropped_model = dropped_hw = 0
    if attention == "causal":
        sdpa = [rec for rec in report.nodes if rec.op == SDPA]
        if not sdpa:
            raise FxFlopsError("attention='causal' found no scaled_dot_product_attention node to halve; leave "
                               "attention='graph' (attention written as matmuls is counted as the graph computes it)")
        for rec in sdpa:
            redo = again.get(rec.node, Cost()).flops
            dropped_model += (rec.flops - redo) // 2
            dropped_hw += rec.flops // 2
    share = int(n_devices) if batch == "global" else 1
    k = int(micro_batches)
    return utilization_of((report.total_flops - recompute - dropped_model) * k // share,
                          (report.total_flops - dropped_hw) * k // share, step_seconds, device, n_devices, key,
                          attention=attention, attention_flops_dropped=dropped_model * k // share)


def utilization_of(model_flops: int, hardware_flops: int, step_seconds: float, device: str | Device = "cpu",
                   n_devices: int = 1, dtype: str = "fp32", *, attention: str = "graph",
                   attention_flops_dropped: int = 0) -> Utilization:
    """:class:`Utilization` of one device's step from its FLOPs (model: without recompute; hardware: with it)."""
    if not step_seconds or step_seconds <= 0:
        raise FxFlopsError(f"step_seconds must be positive, got {step_seconds!r}: pass the wall time of one step")
    if int(n_devices) < 1:
        raise FxFlopsError(f"n_devices must be at least 1, got {n_devices!r}")
    dev = get_device(device)
    key = dtype_key(dtype)
    peak = dev.with_efficiency(1.0, 1.0).peak(key)
    u = Utilization(int(model_flops), int(hardware_flops), int(hardware_flops) - int(model_flops), float(step_seconds),
                    peak, key, dev, int(n_devices), attention, int(attention_flops_dropped))
    if u.hfu > 1:
        warnings.warn(f"HFU {u.hfu:.0%} is above 100%: check that the FLOPs are one device's (batch='device') or "
                      f"the global batch's (batch='global'), the dtype ({key}) and the step time", stacklevel=3)
    return u


def recompute_flops(report: "Report") -> int:
    """The FLOPs of the activation-checkpoint recompute in ``report.total_flops`` (0 without checkpointing)."""
    return _summed(report, recompute_by_node(report))


def _summed(report: "Report", again: dict[fx.Node, Cost]) -> int:
    return sum(again[rec.node].flops for rec in report.nodes if rec.node in again)


def recompute_by_node(report: "Report") -> dict[fx.Node, Cost]:
    """The activation-checkpoint recompute each fx node's ``bwd`` includes, {} without checkpointing. A record
    that copies another (``run``, ``block``) shares its node, so summing over ``report.nodes`` gives the total."""
    if report.mode != "train":
        return {}
    out: dict[fx.Node, Cost] = {}
    for gm in report.graph_modules:
        out.update(_graph_recompute(gm))
    return out


def _graph_recompute(gm: fx.GraphModule) -> dict[fx.Node, Cost]:
    out: dict[fx.Node, Cost] = {}
    regions: dict[Any, list[fx.Node]] = {}
    for node in gm.graph.nodes:
        rec = node.meta.get("fxflops")
        if node.op not in OP_KINDS or rec is None:
            continue
        if node.target is torch.ops.higher_order.tag_activation_checkpoint and rec.bwd is not None:
            # dynamo: the node's bwd is its body's backward plus the body's recomputed forward
            body = attr_at(gm, node.args[0].target)
            inner = sum((n.meta["fxflops"].bwd for n in body.graph.nodes
                         if n.op in OP_KINDS and "fxflops" in n.meta and n.meta["fxflops"].bwd is not None), Cost())
            out[node] = Cost(rec.bwd.macs - inner.macs, rec.bwd.flops - inner.flops)
        if node.meta.get("checkpoint") is not None:
            regions.setdefault(node.meta["checkpoint"], []).append(node)
    if not regions:
        return out
    placeholders = sum(1 for n in gm.graph.nodes if n.op == "placeholder")
    # the example's requires_grad is not kept on the graph: try the placeholders' values, then every input needing
    # a gradient, and keep the one that gives every checkpointed record's backward exactly
    for input_needs in (None, [True] * placeholders):
        found = _replay(gm, regions, needs_grad(gm, input_needs=input_needs))
        if found is not None:
            out.update(found)
            return out
    raise FxFlopsError("could not take the activation-checkpoint recompute out of this report's backward; use "
                       "report.total_flops as the hardware FLOPs (HFU) and report it as an fxflops issue")


def _replay(gm: fx.GraphModule, regions: dict[Any, list[fx.Node]], needs: dict[fx.Node, bool]
            ) -> dict[fx.Node, Cost] | None:
    """Each checkpointed node's recomputed forward as :func:`count_backward` decides it under ``needs``, or None
    when that decision does not give back every record's ``bwd``."""
    out: dict[fx.Node, Cost] = {}
    for region, nodes in regions.items():
        if not any(needs.get(n) for n in nodes):
            continue  # a region nothing in which needs a gradient is not run again
        kept: set[fx.Node] = set()
        base: dict[fx.Node, Cost] = {}
        for node in nodes:
            rec = node.meta["fxflops"]
            base[node] = Cost()
            if not needs.get(node):
                continue
            operands = [a for a in node.all_input_nodes
                        if any(t.is_floating_point() or t.is_complex() for t in tensors_in(a.meta.get("val")))]
            ins = [tensors_in(a.meta.get("val"))[0] for a in operands]
            module = submodule(gm, node.target) if node.op == "call_module" else None
            try:  # as count_backward: an odd value leaves the node's backward missing, and what it saves unknown
                call = _call(rec.fwd, ins, [needs[a] for a in operands], node.meta.get("val"), module)
                formula = backward_of(rec)
                if rec.bwd_status == Backward.COUNTED and formula is not None:
                    c = formula(call)
                    base[node] = Cost(int(c.macs), int(c.flops))
                _saved_bytes(node, operands, call, rec, kept)
            except Exception:  # noqa: BLE001
                continue
        again = set(_recomputed(region, nodes, kept))
        for node in nodes:
            rec = node.meta["fxflops"]
            redo = rec.fwd if node in again and rec.status.priced else Cost()
            if rec.bwd_status != Backward.MISSING and (rec.bwd or Cost()) != base[node] + redo:
                return None
            if redo != Cost():
                out[node] = redo
    return out
