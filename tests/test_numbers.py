"""Numbers that were wrong (#20), each against an independent reference or a hand count."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops


class Gated(nn.Module):
    """Python control flow on a shape: fx keeps it as a leaf and prices it by recording its call."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        return self.fc(x) if x.shape[1] > 4 else x


def test_a_recorded_leaf_gets_its_backward_from_the_ops_it_recorded():
    """Linear(16, 16) then Gated's Linear(16, 16) on (2, 8, 16): forward 2 × 4,096 MACs; backward: the first layer's
    grad-weight (4,096) and the second's grad-input and grad-weight (8,192) = 12,288, as a real backward counts."""
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(16, 16), Gated()), torch.randn(2, 8, 16)
    r = trace_flops(model, x, mode="train")
    assert r.capture == "fx (partial)"
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    assert (r.forward_macs, r.backward_macs) == (8192, 12288)
    assert 2 * (r.forward_macs + r.backward_macs) == counter.get_total_flops()
    gated = next(n for n in r.nodes if n.module_path == "1")
    assert gated.bwd_status == "counted" and gated.bwd_bytes > 0 and gated.saved_bytes == 2 * 8 * 16 * 4  # fc's input
    assert r.no_backward == []


class Meta(nn.Module):
    """Shape reads and an eval-mode functional dropout, as Hugging Face attention writes them."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        b, t = x.shape[0], x.size(1)
        y = F.dropout(self.fc(x).view(b, t, 16), 0.1, training=False)
        return y * x.numel() / x.dim()


def test_metadata_reads_and_a_returned_input_move_no_bytes_on_every_path():
    """fc: x (2,048 B) + weight and bias (1,088 B) read, output (2,048 B) written; the scaled mul and div each read and
    write 2,048 B; view, dropout(training=False), x.shape, x.size(1), x.numel() and x.dim() move nothing."""
    x = torch.randn(4, 8, 16)
    totals = {c: trace_flops(Meta().eval(), x, capture=c).total_bytes for c in ("fx", "record", "dynamo")}
    assert set(totals.values()) == {2048 + 1088 + 2048 + 2 * 4096}, totals
