"""Forwards with a catch-all parameter (``*args``, ``**kwargs``) on the fx path: what the example leaves out is
simply empty, as in a real call, and what it gives beyond the named parameters lands in the catch-all."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import transformers as T
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops


class Keywords(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, **kwargs):
        return self.fc(x)


class Positional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, *args, scale=None, **kwargs):
        y = self.fc(x)
        return y if scale is None else y * scale  # a keyword-only parameter after *args


class UsesExtra(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, **kwargs):
        return self.fc(x) + kwargs["bias"]


# Linear 4→3 on 2 rows: 24 MACs; FLOPs 2·24 + 6 bias adds.
@pytest.mark.parametrize("model", [Keywords(), Positional()], ids=["kwargs", "args"])
@pytest.mark.parametrize("capture", ["fx", "auto"])
def test_catch_all_left_out_is_empty(model: nn.Module, capture: str) -> None:
    r = trace_flops(model, torch.randn(2, 4), capture=capture, strict=True)
    assert r.capture == "fx" and (r.total_macs, r.total_flops) == (24, 54)


def test_keyword_only_after_star_args_gets_its_value() -> None:
    r = trace_flops(Positional(), {"x": torch.randn(2, 4), "scale": torch.randn(2, 3)}, strict=True)
    assert r.capture == "fx" and (r.total_macs, r.total_flops) == (24, 54 + 6)  # + the 6 multiplies by scale


def test_extra_keywords_land_in_kwargs() -> None:
    r = trace_flops(UsesExtra(), {"x": torch.randn(2, 4), "bias": torch.randn(2, 3)}, capture="fx", strict=True)
    assert (r.total_macs, r.total_flops) == (24, 54 + 6)  # + the 6 adds of the extra input


def deberta_v2() -> nn.Module:
    return T.DebertaV2Model(T.DebertaV2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                              intermediate_size=64, vocab_size=100))


def funnel() -> nn.Module:
    return T.FunnelModel(T.FunnelConfig(d_model=32, n_head=2, d_head=16, d_inner=64, block_sizes=[1, 1],
                                        num_decoder_layers=1, vocab_size=100))


# Both forwards end in **kwargs, which used to stop the fx path ("the example gives no value for 'kwargs'").
@pytest.mark.parametrize("build", [deberta_v2, funnel],
                         ids=lambda f: f.__name__)
def test_hf_forward_with_kwargs_on_the_fx_path(build) -> None:
    model = build().eval()
    ids = torch.zeros(1, 16, dtype=torch.long)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(input_ids=ids)
    r = trace_flops(model, {"input_ids": ids}, capture="fx", strict=True)
    assert r.capture == "fx (partial)"  # one submodule needs dynamo; the rest is fx's op-level graph
    assert r.total_macs == fc.get_total_flops() // 2
    assert r.total_params == sum(p.numel() for p in model.parameters())
