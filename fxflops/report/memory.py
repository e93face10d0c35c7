"""The memory of one training step (:meth:`fxflops.Report.memory`): parameters, their gradients, the optimizer's
state and the activations the forward saves for the backward."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import FxFlopsError
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


def memory(report: "Report", model: torch.nn.Module, optimizer: str = "adam") -> Memory:
    if optimizer not in OPTIMIZER_STATES:
        raise FxFlopsError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}, got {optimizer!r}")
    if report.mode != "train":
        raise FxFlopsError('memory() needs a train-mode report: count it with mode="train"')
    params = list({id(p): p for p in model.parameters()}.values())
    trainable = [p for p in params if p.requires_grad]
    return Memory(
        params=sum(p.numel() * p.element_size() for p in params),
        grads=sum(p.numel() * p.element_size() for p in trainable),
        optimizer=OPTIMIZER_STATES[optimizer] * 4 * sum(p.numel() for p in trainable),
        activations=sum(n.saved_bytes for n in report.nodes),
        recompute=max(_by_region(report).values(), default=0),
    )


def _by_region(report: "Report") -> dict[int, int]:
    """Bytes each activation-checkpoint region saves while the backward recomputes it."""
    out: dict[int, int] = {}
    for n in report.nodes:
        if n.checkpoint:
            out[n.checkpoint] = out.get(n.checkpoint, 0) + n.recompute_saved
    return out
