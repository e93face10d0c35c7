"""Inference memory (#20.10): weights, and the peak of the activations alive at once when each tensor is freed
after its last use (views share their source's storage), at their dtypes, on every capture path."""
import pytest
import torch
import torch.nn as nn
import torchvision

from fxflops import trace_flops
from fxflops.cli import main
from fxflops.errors import FxFlopsError

PATHS = ["fx", "record", "dynamo"]


class Chain(nn.Module):
    def forward(self, x):
        a = x * 2  # new tensor
        b = a.view(-1)  # a view: keeps a alive, adds nothing
        c = b + 1  # x, a and c alive here: the peak; a is dead after it
        d = torch.relu(c)  # x, c, d
        return d.sum()


class Residual(nn.Module):
    """y = conv0(x); out = relu(conv2(relu(conv1(y))) + y): y lives across the branch."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv0(x)
        return torch.relu(self.conv2(torch.relu(self.conv1(y))) + y)


@pytest.mark.parametrize("capture", PATHS)
@pytest.mark.parametrize("dtype,size", [(torch.float32, 4), (torch.float16, 2)])
def test_chain(capture, dtype, size):
    mem = trace_flops(Chain(), torch.randn(32, 32, dtype=dtype), capture=capture).memory()
    # 1024 elements each: x (held by the caller), a (and its view b), c
    assert (mem.activations, mem.params, mem.total) == (3 * 1024 * size, 0, 3 * 1024 * size)


@pytest.mark.parametrize("capture", PATHS)
def test_residual_block(capture):
    m = Residual()
    mem = trace_flops(m, torch.randn(1, 4, 8, 8), capture=capture).memory()
    # 4×8×8 floats = 1 KiB, 8×8×8 = 2 KiB. At the first relu: x 1024 + y 1024 + conv1's 2048 + relu's 2048 = 6144
    # (later: conv2 out 1024 with x, y, relu 2048 = 5120; the add 4096; the last relu 3072)
    assert mem.activations == 6144
    assert mem.params == (4 * 4 * 9 + 4 * 8 * 9 + 8 * 4 * 9) * 4 and mem.buffers == 0
    assert mem.total == mem.params + 6144
    assert "peak activations 6.14KB" in str(mem)


def test_resnet18_paths_agree():
    m = torchvision.models.resnet18(weights=None).eval()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    mems = [trace_flops(m, torch.randn(1, 3, 224, 224), capture=c).memory() for c in PATHS]
    # the input (602,112 B), conv1's output and bn1's (3,211,264 B each) at bn1
    assert {x.activations for x in mems} == {602_112 + 2 * 3_211_264}
    assert mems[0].params == 11_689_512 * 4 and mems[0].to_dict()["total"] == mems[0].total
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items()) and not m.training


def test_optimizer_needs_train_mode():
    with pytest.raises(FxFlopsError, match='mode="train"'):
        trace_flops(Chain(), torch.randn(4, 4)).memory("adam")
    assert trace_flops(Residual(), torch.randn(1, 4, 8, 8), mode="train").memory().optimizer > 0  # adam


def test_cli_memory(capsys):
    assert main(["torchvision:resnet18", "--memory", "--depth", "0"]) == 0
    out = capsys.readouterr().out
    assert "memory of inference: params 46.8MB, buffers 38.6KB, peak activations 7.02MB (at bn1), total 53.8MB" in out


class InPlace(nn.Module):
    """y = relu in place, three ways (a module, a function, a method), then scaled in place: no new storage."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(256, 256)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.act(self.fc(x))
        torch.relu_(y)
        return y.mul_(2)


@pytest.mark.parametrize("capture", PATHS)
def test_in_place_ops_allocate_nothing(capture):
    r = trace_flops(InPlace().eval(), torch.randn(64, 256), capture=capture)
    # 64×256 floats = 65,536 B: the input and fc's output, which every in-place op writes into; nothing else
    assert r.memory().activations == 2 * 65_536
    # ... but each in-place op is still a kernel: it reads and writes the 65,536 B, one FLOP per element
    acts = [n for n in r.nodes if n.op in ("relu", "mul")]
    assert len(acts) == 3 and all(n.fwd_bytes == 2 * 65_536 and n.flops == 64 * 256 for n in acts)
    fused = trace_flops(InPlace().eval(), torch.randn(64, 256), capture=capture, bytes="fused")
    assert {n.kernel for n in fused.nodes if n.op in ("relu", "mul")} == {2}
