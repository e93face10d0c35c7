"""#25: a trace interrupted inside the model's forward (an exception, a KeyboardInterrupt) leaves torch's global state
as it was: torch.nn.functional, torch.Tensor's methods, Module.__call__, the function-mode stack, the checkpoint
functions, warning filters, the is_compiling flag and the gc freeze count."""
from __future__ import annotations

import gc
import warnings

import pytest
import torch
import torch.utils.checkpoint as cp

import fxflops
from fxflops.errors import CaptureError


class Exploding(torch.nn.Module):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if y.shape[1] == 8:  # reached on every capture path, after some ops were recorded
            raise self.error
        return y


def _global_state() -> dict:
    return {
        "functional": dict(vars(torch.nn.functional)),
        "tensor": dict(vars(torch.Tensor)),
        "module": dict(vars(torch.nn.Module)),
        "checkpoint": dict(vars(cp)),
        "checkpoint_apply": dict(vars(cp.CheckpointFunction)),
        "function_modes": torch._C._len_torch_function_stack(),
        "dispatch_modes": torch._C._len_torch_dispatch_stack(),
        "freeze": gc.get_freeze_count(),
        "filters": list(warnings.filters),
        "compiling": torch.compiler._is_compiling_flag,
        "grad": torch.is_grad_enabled(),
        "module_hooks": (len(torch.nn.modules.module._global_forward_hooks),
                         len(torch.nn.modules.module._global_forward_pre_hooks)),
    }


@pytest.mark.parametrize("capture", ["auto", "record", "dynamo"])
@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()], ids=["exception", "keyboard"])
def test_interrupted_trace_restores_global_state(capture: str, error: BaseException) -> None:
    model = Exploding(error).eval()
    weight = model.conv.weight.detach().clone()
    before = _global_state()
    expected = KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else CaptureError
    with pytest.raises(expected):
        fxflops.trace_flops(model, torch.randn(1, 3, 16, 16), capture=capture)
    after = _global_state()
    assert after == before
    assert model.conv.weight.device.type == "cpu" and torch.equal(model.conv.weight, weight)
    # and the next trace of a good model counts as before
    good = torch.nn.Conv2d(3, 8, 3)
    assert fxflops.trace_flops(good, torch.randn(1, 3, 16, 16), capture=capture).total_macs == 8 * 14 * 14 * 27
