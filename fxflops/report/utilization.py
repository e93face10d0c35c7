"""MFU and HFU of a training step: a report's exact FLOPs over the step time and a device's dense peak.

MFU (model FLOPs utilisation) divides the FLOPs the *model* needs per step, forward + backward without the
activation-checkpoint recompute, by ``step time × dense peak of the dtype × devices``; HFU (hardware FLOPs
utilisation) counts the recompute too, since the hardware runs it: each record's ``recompute``, which the backward
pass sets (and includes in its ``bwd``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..devices import Device, dtype_key, get_device
from ..errors import FxFlopsError
from ..passes.roofline import main_dtype

if TYPE_CHECKING:
    from .report import Report

__all__ = ["Utilization", "utilization", "utilization_of", "recompute_flops"]

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
    recompute = recompute_flops(report)
    dropped_model = dropped_hw = 0
    if attention == "causal":
        sdpa = [rec for rec in report.nodes if rec.op == SDPA]
        if not sdpa:
            raise FxFlopsError("attention='causal' found no scaled_dot_product_attention node to halve; leave "
                               "attention='graph' (attention written as matmuls is counted as the graph computes it)")
        for rec in sdpa:
            redo = rec.recompute.flops if rec.recompute is not None else 0
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
    return sum(n.recompute.flops for n in report.nodes if n.recompute is not None)
