"""What the trainer callbacks share: the step's exact FLOPs from its batches' shapes, and the metrics they log."""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Mapping

import torch

from ..devices import Device, get_device, preset_for
from ..report.utilization import utilization_of
from .step_flops import StepFlops, step_flops

__all__ = ["StepMeter", "PREFIX"]

PREFIX = "fxflops/"
log = logging.getLogger("fxflops")


class StepMeter:
    """Counts a training step's FLOPs from the shapes of the micro-batches it ran (the first one fits the model's
    :class:`StepFlops` on meta) and turns a step time into ``fxflops/...`` metrics: ``flops_per_step`` (what ran,
    recompute included), ``tflops_per_second`` (model FLOPs per device), ``mfu`` and, with checkpointing, ``hfu``."""

    def __init__(self, device: str | Device | None = None, dtype: str | None = None, n_devices: int = 1,
                 trace_options: Mapping[str, Any] | None = None) -> None:
        self.device = device
        self.dtype = dtype
        self.n_devices = n_devices
        self.trace_options = dict(trace_options or {})
        self.counter: StepFlops | None = None
        self.fitting = False  # while the fit traces the model, its own forward hooks must not count
        self.told: set[str] = set()

    def resolve(self, torch_device: torch.device | str, dtype: str) -> None:
        """The peak's device and dtype, unless given: the preset of the device the trainer runs on, if any."""
        if self.device is None:
            self.device = preset_for(torch_device)
            if self.device is None:
                self.once(f"no preset for {torch_device}: fxflops logs FLOPs and TFLOP/s but no MFU; pass "
                          "device=fxflops.Device(...) or a preset name for it")
        self.dtype = self.dtype or dtype

    def count(self, model: torch.nn.Module, batches: Iterable[Any]) -> tuple[int, int]:
        """(FLOPs, model FLOPs) of a step on ``batches``: recompute included, then left out."""
        flops = model_flops = 0
        for batch in batches:
            if self.counter is None:
                self.fitting = True
                try:
                    self.counter = step_flops(model, batch, trace_options=self.trace_options)
                finally:
                    self.fitting = False
                self.once(f"step FLOPs of {type(model).__name__}: {self.counter.note}")
            c = self.counter.of(batch)
            flops, model_flops = flops + c.flops, model_flops + c.model_flops
        return flops, model_flops

    def metrics(self, flops: int, model_flops: int, seconds: float) -> dict[str, float]:
        out = {f"{PREFIX}flops_per_step": float(flops),
               f"{PREFIX}tflops_per_second": model_flops / seconds / 1e12 if seconds > 0 else 0.0}
        if self.device is not None and seconds > 0:
            u = utilization_of(model_flops, flops, seconds, get_device(self.device), self.n_devices,
                               self.dtype or "fp32")
            out[f"{PREFIX}mfu"] = u.mfu
            if u.recompute_flops:
                out[f"{PREFIX}hfu"] = u.hfu
        return out

    def once(self, message: str) -> None:
        if message not in self.told:
            self.told.add(message)
            log.warning("fxflops: %s", message)


def now(device: torch.device | str | None = None) -> float:
    """perf_counter after the device's queued work is done (a CUDA step ends when its kernels do)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def precision_dtype(precision: str) -> str:
    """The peak's dtype for a trainer's precision setting (``bf16-mixed``, ``16-mixed``, ``32-true``, ``bf16``...)."""
    p = str(precision).lower()
    if "bf16" in p:
        return "bf16"
    if p.startswith("16") or "fp16" in p:
        return "fp16"
    if p.startswith("64"):
        return "fp64"
    return "tf32" if torch.backends.cuda.matmul.allow_tf32 and torch.cuda.is_available() else "fp32"
