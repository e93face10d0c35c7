"""Recurrent layers, embeddings, dropout, shape-only ops and parameter counting.

RNN per time step, sample, layer and direction, with G gates (LSTM 4, GRU 3, RNN 1), H hidden, P = proj_size or H,
I_l the layer input: MACs = G·H·(I_l + P) (+ H·proj_size); FLOPs = 2·MACs + G·H (join) + 2·G·H (biases)
+ gate arithmetic (LSTM 18·H, GRU 15·H, RNN H).

torch's FlopCounterMode sees the gate matmuls of GRU/RNN directly; nn.LSTM on CPU goes to a oneDNN kernel it has
no formula for, so the LSTM comparison runs with oneDNN disabled (torch then decomposes into counted matmuls).
"""
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import Fn, One, count, only, ops, torch_macs


class Seq(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


def reference_macs(m, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # toggling oneDNN warns about TF32 on Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False):
            return torch_macs(m, x)


def test_lstm_two_layers_bidirectional_batch_first():
    lstm = nn.LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 5, 10)  # B=3, T=5
    r = count(Seq(lstm), x)
    steps, dirs, G, H = 3 * 5, 2, 4, 20
    layer0 = G * H * (10 + H)  # input 10
    layer1 = G * H * (2 * H + H)  # input is both directions' hidden states
    macs = (layer0 + layer1) * steps * dirs
    per_step_extra = G * H + 2 * G * H + 18 * H
    assert r.total_macs == macs == 216_000
    assert r.total_flops == 2 * macs + per_step_extra * steps * dirs * 2  # two layers
    assert r.total_macs == reference_macs(lstm, x)
    n = only(r, "rnn")
    assert (n.status, n.module_path, n.module_type) == ("counted", "rnn", "LSTM")
    assert n.input_shapes == [(3, 5, 10)] and n.output_shapes[0] == (3, 5, 40)
    assert r.total_params == sum(p.numel() for p in lstm.parameters())


def test_lstm_projection_and_no_bias():
    lstm = nn.LSTM(10, 20, proj_size=8)
    x = torch.randn(5, 3, 10)  # T=5, B=3 (seq first)
    r = count(Seq(lstm), x)
    steps = 5 * 3
    macs = (4 * 20 * (10 + 8) + 20 * 8) * steps  # gates see the projected hidden state, then H→P projection
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + (4 * 20 + 2 * 4 * 20 + 18 * 20) * steps
    assert r.total_macs == reference_macs(lstm, x)

    lstm = nn.LSTM(10, 20, bias=False)
    r = count(Seq(lstm), x)
    macs = 4 * 20 * (10 + 20) * steps
    assert r.total_flops == 2 * macs + (4 * 20 + 18 * 20) * steps
    assert r.total_macs == reference_macs(lstm, x)


def test_gru_multi_layer():
    gru = nn.GRU(6, 12, num_layers=3, batch_first=True)
    x = torch.randn(2, 7, 6)
    r = count(Seq(gru), x)
    steps = 2 * 7
    macs = (3 * 12 * (6 + 12) + 3 * 12 * (12 + 12) * 2) * steps
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + (3 * 12 + 2 * 3 * 12 + 15 * 12) * steps * 3
    assert r.total_macs == torch_macs(gru, x)


def test_rnn_relu_bidirectional_unbatched():
    rnn = nn.RNN(4, 8, nonlinearity="relu", bidirectional=True)
    x = torch.randn(9, 4)  # unbatched: T=9
    r = count(Seq(rnn), x)
    macs = 8 * (4 + 8) * 9 * 2
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + (8 + 2 * 8 + 8) * 9 * 2
    assert r.total_macs == torch_macs(rnn, x)


def test_rnn_with_initial_state():
    gru = nn.GRU(4, 8)
    m = Fn(lambda x, h: gru(x, h)[0])
    m.gru = gru
    x, h0 = torch.randn(5, 2, 4), torch.zeros(1, 2, 8)
    r = count(m, x, h0)
    assert r.total_macs == 3 * 8 * (4 + 8) * 5 * 2 == torch_macs(m, x, h0)


@pytest.mark.parametrize("cls,gates,gate_flops", [(nn.LSTMCell, 4, 18), (nn.GRUCell, 3, 15), (nn.RNNCell, 1, 1)])
def test_cells(cls, gates, gate_flops):
    cell = cls(5, 7)
    m = Fn(lambda x: cell(x))
    m.cell = cell
    x = torch.randn(3, 5)
    r = count(m, x)
    macs = gates * 7 * (5 + 7) * 3
    assert r.total_macs == macs
    assert r.total_flops == 2 * macs + (gates * 7 + 2 * gates * 7 + gate_flops * 7) * 3
    assert only(r, "rnn_cell").status == "counted"
    assert r.total_macs == reference_macs(m, x)


# ---- embedding and dropout ---------------------------------------------------------------------


class Emb(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)

    def forward(self, idx):
        return self.emb(idx)


def test_embedding_is_free_but_has_params():
    r = count(Emb(), torch.randint(0, 100, (2, 5)))
    assert (r.total_macs, r.total_flops) == (0, 0)
    n = only(r, "embedding")
    assert (n.status, n.module_path, n.output_shapes) == ("free", "emb", [(2, 5, 16)])
    assert r.total_params == n.params == 100 * 16
    w = torch.randn(50, 8)
    r = count(Fn(lambda i: F.embedding(i, w)), torch.randint(0, 50, (3,)))
    assert (r.total_flops, only(r, "embedding").status) == (0, "free")


@pytest.mark.parametrize("layer", [nn.Dropout(0.1), nn.Dropout2d(0.3), nn.AlphaDropout(0.2)])
def test_dropout_module_train_vs_eval(layer):
    x = torch.randn(2, 3, 4, 5)
    m = One(layer)
    assert count(m.train(), x).total_flops == 2 * 3 * 4 * 5  # the scaled mask multiply
    assert count(m.eval(), x).total_flops == 0  # identity
    assert only(count(m, x), "dropout").status == "counted"


def test_dropout_functional():
    x = torch.randn(2, 3, 4)
    assert count(Fn(lambda a: F.dropout(a, 0.2)), x).total_flops == 2 * 3 * 4  # training=True by default
    assert count(Fn(lambda a: F.dropout(a, 0.2, training=False)), x).total_flops == 0
    assert count(Fn(lambda a: F.dropout(a, p=0.0)), x).total_flops == 0
    assert count(Fn(lambda a: F.dropout1d(a, 0.2, False)), x).total_flops == 0
    assert count(Fn(lambda a: torch.dropout(a, 0.2, True)), x).total_flops == 2 * 3 * 4
    # alpha dropout's functional form defaults to training=False: the identity unless asked
    assert count(Fn(lambda a: F.alpha_dropout(a, 0.2)), x).total_flops == 0
    assert count(Fn(lambda a: F.feature_alpha_dropout(a, 0.2, training=True)), x).total_flops == 2 * 3 * 4


class FunctionalDropoutFollowsMode(nn.Module):
    def forward(self, x):
        return F.dropout(x, 0.5, self.training)


def test_functional_dropout_follows_module_mode():
    x = torch.randn(4, 6)
    assert count(FunctionalDropoutFollowsMode().train(), x).total_flops == 4 * 6
    assert count(FunctionalDropoutFollowsMode().eval(), x).total_flops == 0


# ---- shape-only ops ----------------------------------------------------------------------------

SHAPE_OPS = [
    ("view", lambda x: x.view(6, 20)),
    ("view", lambda x: x.reshape(-1)),
    ("view", lambda x: torch.reshape(x, (2, 60))),
    ("view", lambda x: x.flatten(1)),
    ("view", lambda x: torch.flatten(x)),
    ("view", lambda x: x.permute(2, 0, 1)),
    ("view", lambda x: x.transpose(0, 1)),
    ("view", lambda x: x[:, 1]),
    ("view", lambda x: x[..., ::2]),
    ("view", lambda x: x.contiguous()),
    ("view", lambda x: x.unsqueeze(0)),
    ("view", lambda x: x.chunk(2, dim=1)[0]),
    ("view", lambda x: x.split(2, dim=0)[1]),
    ("view", lambda x: torch.split(x, [1, 2], 0)[0]),
    ("copy", lambda x: torch.cat([x, x], dim=0)),
    ("copy", lambda x: torch.stack((x, x))),
    ("metadata", lambda x: x.size(0)),
    ("metadata", lambda x: x.shape[1]),
]


@pytest.mark.parametrize("op,fn", SHAPE_OPS, ids=[f"{o}-{i}" for i, (o, _) in enumerate(SHAPE_OPS)])
def test_shape_only_ops_are_free(op, fn):
    r = count(Fn(fn), torch.randn(3, 4, 10))
    assert (r.total_macs, r.total_flops) == (0, 0)
    nodes = ops(r)
    assert nodes and all(n.status == "free" and n.macs == n.flops == 0 for n in nodes), \
        [(n.name, n.op, n.status) for n in nodes]
    assert op in {n.op for n in nodes}


def test_flatten_module_is_free():
    r = count(One(nn.Flatten()), torch.randn(2, 3, 4))
    n = only(r, "view")
    assert (n.status, n.module_type, n.output_shapes) == ("free", "Flatten", [(2, 12)])


# ---- parameters --------------------------------------------------------------------------------


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(self.fc(x))  # one module, two calls


def test_module_called_twice_counts_params_once_and_work_twice():
    r = count(Reused(), torch.randn(2, 8))
    assert r.total_macs == 2 * (2 * 8 * 8)
    assert r.total_params == 8 * 8 + 8
    assert [n.params for n in ops(r, "linear")] == [8 * 8 + 8, 0]
    assert sum(n.params for n in r.nodes) == r.total_params


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 6)
        self.proj = nn.Linear(6, 6)
        self.head = nn.Linear(6, 30, bias=False)
        self.head.weight = self.emb.weight  # tied input/output embedding
        self.register_buffer("scale", torch.ones(1000))  # a buffer: never a parameter

    def forward(self, idx):
        return self.head(self.proj(self.emb(idx)))


def test_tied_weights_count_once_and_buffers_never():
    r = count(Tied(), torch.randint(0, 30, (2, 4)))
    assert r.total_params == 30 * 6 + 6 * 6 + 6
    assert sum(n.params for n in r.nodes) == r.total_params
    assert only(r, "embedding").params == 30 * 6
    assert ops(r, "linear")[1].params == 0  # the head's only weight was already counted with the embedding
    assert r.total_macs == 2 * 4 * 6 * 6 + 2 * 4 * 6 * 30


class FunctionalParams(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 4))
        self.register_buffer("b", torch.randn(5))

    def forward(self, x):
        return F.linear(x, self.w, self.b) + F.linear(x, self.w)  # one parameter read twice


def test_get_attr_params_counted_once():
    r = count(FunctionalParams(), torch.randn(3, 4))
    assert r.total_params == 5 * 4
    assert sum(n.params for n in r.nodes) == 5 * 4
