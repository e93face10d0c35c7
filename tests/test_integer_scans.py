"""FLOPs are floating-point operations: a scan or reduction over integers costs 0 on every capture path (#20.5)."""
import pytest
import torch

from conftest import Fn
from fxflops import trace_flops

X = torch.arange(24).reshape(4, 6)  # int64


@pytest.mark.parametrize("capture", ["fx", "record", "dynamo"])
@pytest.mark.parametrize("fn", [lambda x: x.cumsum(1), lambda x: torch.cumprod(x, 0), lambda x: x.cumsum_(1),
                                lambda x: x.sum(), lambda x: x.cummax(1)[0]], ids=["cumsum", "cumprod", "cumsum_",
                                                                                  "sum", "cummax"])
def test_integer_scans_cost_nothing(fn, capture):
    assert trace_flops(Fn(fn), X.clone(), capture=capture).total_flops == 0


@pytest.mark.parametrize("capture", ["fx", "record", "dynamo"])
def test_float_scans_count_one_per_element(capture):
    assert trace_flops(Fn(lambda x: x.cumsum(1)), X.float(), capture=capture).total_flops == 24
    # dtype= makes the integer scan a float one: 24 float adds
    assert trace_flops(Fn(lambda x: torch.cumsum(x, 1, dtype=torch.float32)), X, capture=capture).total_flops == 24
