"""The memory a report's model needs (:meth:`fxflops.Report.memory`): for one training step its parameters, their
gradients, the optimizer's state and the activations the forward saves for the backward; for inference its weights
and the peak of the activations alive at once (:mod:`fxflops.passes.liveness`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import FxFlopsError
from ..passes.liveness import peak_activations
from ..units import human
from .html import memory_html

if TYPE_CHECKING:
    from .report import Report

# fp32 states per trainable element: Adam/AdamW keep exp_avg and exp_avg_sq, SGD with momentum one buffer.
OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "sgd": 1, "none": 0}


@dataclass
class Memory:
    """Bytes of one training step. ``activations`` are the tensors the forward saves for the backward (each once,
    at its dtype), alive together at the end of the forward; with activation checkpointing a region saves only its
    inputs, and ``recompute`` is what the largest region holds again while the backward recomputes it. ``total``
    is everything alive at once, with the gradients of the previous step still held
    (``zero_grad(set_to_none=False)``), an upper bound of the peak."""

    params: int
    grads: int
    optimizer: int
    activations: int
    recompute: int = 0

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer + self.activations + self.recompute

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}

    def __repr__(self) -> str:
        return f"<Memory {self}>"

    def _repr_html_(self) -> str:
        return memory_html(self)

    def __str__(self) -> str:
        return (f"params {human(self.params)}B, grads {human(self.grads)}B, optimizer {human(self.optimizer)}B, "
                f"saved activations {human(self.activations)}B"
                + (f", recomputed {human(self.recompute)}B" if self.recompute else "") + f", total {human(self.total)}B")


@dataclass
class InferenceMemory:
    """Bytes of one inference forward, as torchinfo reports them: ``params`` (every parameter at its dtype),
    ``buffers`` (batch-norm statistics and other buffers) and ``activations``, the peak of the tensors alive at once
    when each is freed after its last use, reached at node ``peak_node``; the inputs are held throughout."""

    params: int
    buffers: int
    activations: int
    peak_node: str = ""

    @property
    def total(self) -> int:
        return self.params + self.buffers + self.activations

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}

    def __str__(self) -> str:
        return (f"params {human(self.params)}B, buffers {human(self.buffers)}B, peak activations "
                f"{human(self.activations)}B (at {self.peak_node or '-'}), total {human(self.total)}B")


def memory(report: "Report", model: torch.nn.Module, optimizer: str | None = None) -> "Memory | InferenceMemory":
    if report.mode != "train":
        if optimizer is not None:
            raise FxFlopsError(f"optimizer={optimizer!r} prices a training step's memory: count the model with "
                               'mode="train", or leave optimizer out for the inference memory')
        return _inference(report, model)
    optimizer = optimizer or "adam"
    if optimizer not in OPTIMIZER_STATES:
        raise FxFlopsError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}, got {optimizer!r}")
    params = list({id(p): p for p in model.parameters()}.values())
    trainable = [p for p in params if p.requires_grad]
    return Memory(
        params=sum(p.numel() * p.element_size() for p in params),
        grads=sum(p.numel() * p.element_size() for p in trainable),
        optimizer=OPTIMIZER_STATES[optimizer] * 4 * sum(p.numel() for p in trainable),
        activations=sum(n.saved_bytes for n in report.nodes),
        recompute=max(_by_region(report).values(), default=0),
    )


def _inference(report: "Report", model: torch.nn.Module) -> InferenceMemory:
    live = peak_activations(report.nodes)
    params = {id(p): p for p in model.parameters()}.values()
    buffers = {id(b): b for b in model.buffers()}.values()
    return InferenceMemory(params=sum(p.numel() * p.element_size() for p in params),
                           buffers=sum(b.numel() * b.element_size() for b in buffers),
                           activations=live.peak, peak_node=live.node)


def _by_region(report: "Report") -> dict[int, int]:
    """Bytes each activation-checkpoint region saves while the backward recomputes it."""
    out: dict[int, int] = {}
    for n in report.nodes:
        if n.checkpoint:
            out[n.checkpoint] = out.get(n.checkpoint, 0) + n.recompute_saved
    return out
