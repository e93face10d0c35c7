"""``FlopsCallback``: a Hugging Face ``TrainerCallback`` that logs each optimizer step's exact FLOPs, TFLOP/s and
MFU, and makes ``state.total_flos`` the exact count instead of the Trainer's ``6·N·tokens``.
Needs ``pip install "fxflops[hf]"``."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..devices import Device
from .meter import StepMeter, now, precision_dtype

__all__ = ["FlopsCallback"]


class FlopsCallback(TrainerCallback):
    """Counts every micro-batch the model trains on exactly (its forward + backward at that batch's shape: traced
    once on meta, then by the fitted formula), and at each log adds ``fxflops/flops_per_step`` (the last optimizer
    step, all its micro-batches), ``fxflops/tflops_per_second`` (model FLOPs per device), ``fxflops/mfu`` and, with
    gradient checkpointing, ``fxflops/hfu`` to the logs.

    ``state.total_flos`` becomes the sum of the exact counts over every device (it is saved with checkpoints and
    reported as ``total_flos`` at the end), which the log says once. The micro-batches are seen by a forward
    pre-hook on the model, removed when training ends. Reporting integrations (TensorBoard, W&B...) run before a
    callback given to ``Trainer(callbacks=...)``; ``FlopsCallback.install(trainer)`` puts it first so they log its
    metrics too. ``device`` (a preset name or a :class:`~fxflops.Device`) and ``dtype`` default to the
    Trainer's device and ``bf16``/``fp16``/``tf32`` flags; ``args.world_size`` devices run, each its own batch.
    """

    def __init__(self, device: str | Device | None = None, dtype: str | None = None,
                 trace_options: Mapping[str, Any] | None = None) -> None:
        self.meter = StepMeter(device, dtype, trace_options=trace_options)
        self._handle: Any = None
        self._batches: list[dict] = []
        self._t0 = 0.0
        self._device: Any = None
        self.last: dict[str, float] = {}
        self.total_flos = 0  # exact, summed over devices
        self._trainer_flos = 0  # what the Trainer's own 6·N·tokens count has added meanwhile

    @classmethod
    def install(cls, trainer: Any, **options: Any) -> "FlopsCallback":
        """A new callback put first in ``trainer``'s callbacks, before the reporting integrations."""
        cb = cls(**options)
        trainer.callback_handler.callbacks.insert(0, cb)
        return cb

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: torch.nn.Module | None = None, **kwargs: Any) -> None:
        self.meter.n_devices = args.world_size
        self._device = args.device
        dtype = "bf16" if args.bf16 else "fp16" if args.fp16 else "tf32" if args.tf32 else precision_dtype("32")
        self.meter.resolve(args.device, dtype)
        self._handle = model.register_forward_pre_hook(self._seen, with_kwargs=True)
        self.meter.once("state.total_flos is fxflops' exact count of each batch's forward + backward, not the "
                        "Trainer's 6·N·tokens")

    def _seen(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if module.training and torch.is_grad_enabled() and not self.meter.fitting:
            inputs = dict(kwargs) if kwargs else {"input_ids": args[0]} if args else {}
            self._batches.append({k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)})

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                      **kwargs: Any) -> None:
        self._batches = []
        self._t0 = now(self._device)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    model: torch.nn.Module | None = None, **kwargs: Any) -> None:
        seconds = now(self._device) - self._t0
        batches, self._batches = self._batches, []
        if not batches:  # a compiled or wrapped model whose forward does not run the hooks of the one given
            self.meter.once("saw no training forward of the model during a step: nothing is logged, and total_flos "
                            "stays the Trainer's")
            return
        flops, model_flops = self.meter.count(model, batches)
        self.last = self.meter.metrics(flops, model_flops, seconds)
        # The Trainer adds its own count per micro-batch to total_flos when it next logs or saves: add the
        # difference now, so that the sum is the exact count then.
        theirs = sum(_trainer_flos(model, b) for b in batches) * args.world_size
        ours = flops * args.world_size
        state.total_flos += ours - theirs
        self.total_flos += ours

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict | None = None, **kwargs: Any) -> None:
        if logs is None or not self.last or "loss" not in logs:
            return
        logs.update(self.last)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(self.last)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _trainer_flos(model: torch.nn.Module, inputs: dict) -> int:
    """``Trainer.floating_point_ops``: 6 × the main input's elements × the parameters outside the embeddings."""
    main = getattr(model, "main_input_name", "input_ids")
    if main in inputs and hasattr(model, "num_parameters"):
        return 6 * inputs[main].numel() * model.num_parameters(exclude_embeddings=True)
    return 0

