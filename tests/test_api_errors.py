"""The Python API's side of the promises tests/test_cli_errors.py checks on the command line."""
from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn as nn

import fxflops
from fxflops import ShapeError, trace_flops


class Small(nn.Module):
    """fc1 expects 32·6·6 features; a 28×28 input gives it 32·28·28."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 6 * 6, 10)

    def forward(self, x):
        x = torch.flatten(torch.relu(self.conv(x)), 1)
        return self.fc1(x)


@pytest.mark.parametrize("shape", [(1, 3, 224, 224), [1, 8], torch.Size([2, 3])])
def test_shape_instead_of_tensor(shape) -> None:
    with pytest.raises(TypeError, match=r"pass a tensor, e\.g\. torch\.randn\(" + ", ".join(map(str, shape))):
        trace_flops(nn.Linear(8, 8), shape)


@pytest.mark.parametrize("capture", ["fx", "auto", "dynamo"])
def test_shape_error_names_the_users_line(capture: str) -> None:
    lines, start = inspect.getsourcelines(Small.forward)
    line = start + next(i for i, text in enumerate(lines) if "return self.fc1(x)" in text)
    with pytest.raises(fxflops.FxFlopsError, match=rf"test_api_errors\.py:{line} in forward: return self\.fc1\(x\)") as info:
        trace_flops(Small(), torch.randn(1, 3, 28, 28), capture=capture)
    assert capture == "dynamo" or isinstance(info.value, ShapeError)
