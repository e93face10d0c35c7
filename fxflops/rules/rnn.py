"""Recurrent layers: RNN, LSTM, GRU (every layer and direction, projections, biases, gate arithmetic) and their cells."""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence

from ..registry import Call, Cost, contraction, rule

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
# Per hidden unit and step, after the gate pre-activations are summed:
#  LSTM: 3 sigmoids (4 each) + 2 tanh (1 each) + c' = f·c + i·g (3) + h' = o·tanh(c') (1) = 18
#  GRU:  2 sigmoids (8) + r·(W_hn·h + b_hn) (1) + add (1) + tanh (1) + h' = (1 − z)·n + z·h (4) = 15
#  RNN:  the nonlinearity (tanh or relu: 1)
GATE_FLOPS = {"LSTM": 18, "GRU": 15, "RNN_TANH": 1, "RNN_RELU": 1}


def cell_step(mode: str, input_size: int, hidden: int, proj: int, bias: bool) -> Cost:
    """Cost of one time step of one cell for one sample."""
    g = GATES[mode]
    h_out = proj or hidden
    macs = g * hidden * (input_size + h_out) + (hidden * proj if proj else 0)
    # G·H adds join the input and hidden projections; each of the two biases adds G·H more.
    extra = g * hidden + (2 * g * hidden if bias else 0) + GATE_FLOPS[mode] * hidden
    return contraction(macs, extra)


def _steps(x) -> int:
    """(time step, sample) pairs the layer processes."""
    if isinstance(x, PackedSequence):
        return int(x.data.shape[0])
    return x.numel() // x.shape[-1]


@rule(nn.RNN, nn.LSTM, nn.GRU, op="rnn", family="rnn")
def rnn(call: Call) -> Cost:
    """For each layer l and direction, per time step and sample, with G gates (LSTM 4, GRU 3, RNN 1), H hidden,
    P = proj_size or H, I_l the layer input (input_size, then P·directions):
    MACs = G·H·(I_l + P) (+ H·proj_size for an LSTM projection); FLOPs = 2·MACs + G·H (joining input and hidden
    projections) + 2·G·H with biases + per-unit gate arithmetic (LSTM 18·H, GRU 15·H, RNN H)."""
    m = call.module
    steps = _steps(call.args[0])
    proj = getattr(m, "proj_size", 0)
    dirs = 2 if m.bidirectional else 1
    total = Cost()
    for layer in range(m.num_layers):
        in_size = m.input_size if layer == 0 else (proj or m.hidden_size) * dirs
        total = total + cell_step(m.mode, in_size, m.hidden_size, proj, m.bias) * (steps * dirs)
    return total


@rule(nn.RNNCell, nn.LSTMCell, nn.GRUCell, op="rnn_cell", family="rnn")
def rnn_cell(call: Call) -> Cost:
    """One step of the cell per sample: the per-step formula of nn.LSTM/GRU/RNN for a single layer and direction."""
    m = call.module
    x = call.args[0]
    samples = x.shape[0] if x.dim() == 2 else 1
    mode = {nn.LSTMCell: "LSTM", nn.GRUCell: "GRU"}.get(type(m), "RNN_TANH" if getattr(m, "nonlinearity", "tanh") == "tanh" else "RNN_RELU")
    return cell_step(mode, m.input_size, m.hidden_size, 0, m.bias) * samples


