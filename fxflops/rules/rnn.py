"""Recurrent layers: RNN, LSTM, GRU (every layer and direction, projections, biases, gate arithmetic) and their cells."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence

from .registry import Call, Cost, contraction, rule

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




# What nn.LSTM/GRU/RNN and their cells call; dynamo records these builtins instead of the module.
_FUNCTIONAL = {torch.lstm: "LSTM", torch.gru: "GRU", torch.rnn_tanh: "RNN_TANH", torch.rnn_relu: "RNN_RELU"}
_CELLS = {torch.lstm_cell: "LSTM", torch.gru_cell: "GRU", torch.rnn_tanh_cell: "RNN_TANH", torch.rnn_relu_cell: "RNN_RELU"}


@rule(*_FUNCTIONAL, op="rnn", family="rnn")
def functional_rnn(call: Call) -> Cost:
    """torch.lstm/gru/rnn_tanh/rnn_relu(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, ...)
    (or (data, batch_sizes, hx, params, ...) for a packed sequence): the nn.LSTM/GRU/RNN formula, with sizes read from
    the flat weight list [w_ih, w_hh, (b_ih, b_hh,) (w_hr,)] of each layer and direction."""
    mode, a = _FUNCTIONAL[call.target], call.args
    packed = isinstance(a[1], torch.Tensor) and a[1].dim() == 1 and not a[1].is_floating_point()
    params, has_biases, num_layers, _, _, bidirectional = a[3:9] if packed else a[2:8]
    steps = a[0].shape[0] if packed else a[0].numel() // a[0].shape[-1]
    dirs = 2 if bidirectional else 1
    per = len(params) // (num_layers * dirs)
    total = Cost()
    for layer in range(num_layers):
        w_ih, w_hh = params[layer * dirs * per], params[layer * dirs * per + 1]
        hidden = w_ih.shape[0] // GATES[mode]
        proj = w_hh.shape[1] if per in (3, 5) else 0  # a projection adds w_hr to the layer's weights
        total = total + cell_step(mode, w_ih.shape[1], hidden, proj, bool(has_biases)) * (steps * dirs)
    return total


@rule(*_CELLS, op="rnn_cell", family="rnn")
def functional_rnn_cell(call: Call) -> Cost:
    """torch.lstm_cell/gru_cell/rnn_tanh_cell/rnn_relu_cell(input, hx, w_ih, w_hh, b_ih, b_hh): one step of the cell
    formula per sample."""
    mode, x, w_ih = _CELLS[call.target], call.args[0], call.args[2]
    bias = len(call.args) > 4 and call.args[4] is not None
    samples = x.shape[0] if x.dim() == 2 else 1
    return cell_step(mode, w_ih.shape[1], w_ih.shape[0] // GATES[mode], 0, bias) * samples
