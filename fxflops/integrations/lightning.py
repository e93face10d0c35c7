"""``FlopsMonitor``: a Lightning callback that logs each training batch's exact FLOPs, TFLOP/s and MFU.
Needs ``pip install "fxflops[lightning]"``."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from lightning.pytorch import Callback, LightningModule, Trainer

from ..devices import Device
from .meter import StepMeter, now, precision_dtype

__all__ = ["FlopsMonitor"]


def model_inputs(batch: Any) -> Any:
    """A batch as the module's forward takes it: a tensor or a dict as is, the first item of an ``(x, y)`` pair."""
    if isinstance(batch, (list, tuple)) and batch and not isinstance(batch[0], (int, float)):
        return batch[0]
    return batch


class FlopsMonitor(Callback):
    """Logs, per training batch, ``fxflops/flops_per_step`` (the module's forward + backward on the batch's shape,
    counted exactly on meta: once for the first shape, then by the fitted formula), ``fxflops/tflops_per_second``
    (model FLOPs per device over the batch's wall time), ``fxflops/mfu`` and, with activation checkpointing,
    ``fxflops/hfu``, to every logger the Trainer has, every ``log_every_n_steps``.

    ``example_fn(batch)`` gives the forward's inputs (default: the batch, or its first item for ``(x, y)``);
    a loss computed in ``training_step`` outside ``forward`` is not counted. ``device`` (a preset name or a
    :class:`~fxflops.Device`) and ``dtype`` default to the Trainer's device and precision; each device's batch is its
    own and ``trainer.world_size`` devices run (per-device metrics).
    """

    def __init__(self, device: str | Device | None = None, dtype: str | None = None,
                 example_fn: Callable[[Any], Any] = model_inputs,
                 trace_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.meter = StepMeter(device, dtype, trace_options=trace_options)
        self.example_fn = example_fn
        self._t0 = 0.0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.meter.n_devices = trainer.world_size
        self.meter.resolve(trainer.strategy.root_device, precision_dtype(trainer.precision))

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._t0 = now(trainer.strategy.root_device)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        seconds = now(trainer.strategy.root_device) - self._t0
        flops, model_flops = self.meter.count(pl_module, [self.example_fn(batch)])
        if trainer.global_step % max(1, trainer.log_every_n_steps) and not trainer.is_last_batch:
            return
        # to the loggers directly, as Lightning's ThroughputMonitor does: pl_module.log would round the FLOPs to
        # float32 (exact only below 2**24)
        for logger in trainer.loggers:
            logger.log_metrics(self.meter.metrics(flops, model_flops, seconds), step=trainer.global_step)
