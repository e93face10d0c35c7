"""The model audit (report.audit(), `fxflops audit`) and the hook blind spot, against hand computations.

The hand model below mixes leaf modules (what forward hooks see) with functional ops (what they don't):

    x (2,4,8,8) → conv 3×3 (leaf) → ReLU (leaf) → + x → F.interpolate ×2 bilinear → flatten (2,4,256)
      → Linear 256→32 (leaf) → q @ qᵀ → softmax → matrix_exp (no rule) → @ q → · 0.5 → doubled (fx.wrap)

`doubled` is a user function fx keeps opaque (torch.fx.wrap): no rule knows it, so fxflops prices it by
capturing it with dynamo. `Tensor.matrix_exp` has no rule at all: it stays uncounted.
"""
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import fxflops
from fxflops.cli import main


@torch.fx.wrap
def doubled(x):
    return x * 2


class Hand(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.proj = nn.Linear(256, 32)

    def forward(self, x):
        y = self.act(self.conv(x)) + x
        y = F.interpolate(y, scale_factor=2, mode="bilinear")
        q = self.proj(y.flatten(2))
        a = (q @ q.transpose(-1, -2)).softmax(-1).matrix_exp()
        return doubled((a @ q) * 0.5)


# Hand costs (N=2, C=4, 8×8 → 16×16 after interpolation, 4 tokens of 256 → 32 features).
CONV_MACS = 2 * 4 * 8 * 8 * 4 * 9  # N·C_out·H·W·C_in·k²
CONV_FLOPS = 2 * CONV_MACS + 2 * 4 * 8 * 8  # + bias
RELU = 2 * 4 * 8 * 8
LINEAR_MACS = 2 * 4 * 32 * 256
LINEAR_FLOPS = 2 * LINEAR_MACS + 2 * 4 * 32
ADD = 2 * 4 * 8 * 8
INTERP = 9 * 2 * 4 * 16 * 16  # three lerps of 3 FLOPs per output element
MATMUL_MACS = 2 * 4 * 4 * 32 + 2 * 4 * 32 * 4  # q·qᵀ (2,4,4) over 32, then a·q (2,4,32) over 4
SOFTMAX = 5 * 2 * 4 * 4
SCALE = 2 * 4 * 32
DOUBLED = 2 * 4 * 32  # x * 2 inside the wrapped function, found by the dynamo fallback
BLIND_MACS = MATMUL_MACS
BLIND_FLOPS = ADD + INTERP + 2 * MATMUL_MACS + SOFTMAX + SCALE + DOUBLED
TOTAL_MACS = CONV_MACS + LINEAR_MACS + MATMUL_MACS
TOTAL_FLOPS = CONV_FLOPS + RELU + LINEAR_FLOPS + BLIND_FLOPS


def hand_report(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # matrix_exp is uncounted on purpose
        return fxflops.trace_flops(Hand(), torch.randn(2, 4, 8, 8), **kw)


def row(audit, target, status=None):
    found = [r for r in audit.rows if r.target == target and (status is None or r.status == status)]
    assert len(found) == 1, [(r.target, r.status) for r in audit.rows]
    return found[0]


def test_audit_rows_hand_model():
    r = hand_report()
    assert (r.total_macs, r.total_flops) == (TOTAL_MACS, TOTAL_FLOPS)
    a = r.audit()
    conv = row(a, "nn.Conv2d")
    assert (conv.kind, conv.status, conv.nodes, conv.op, conv.macs, conv.flops) == \
        ("module", "counted", 1, "conv2d", CONV_MACS, CONV_FLOPS)
    mm = row(a, "operator.matmul")
    assert (mm.kind, mm.nodes, mm.macs, mm.flops) == ("function", 2, MATMUL_MACS, 2 * MATMUL_MACS)
    assert row(a, "operator.add").flops == ADD
    assert row(a, "F.interpolate").flops == INTERP
    assert (row(a, "Tensor.softmax").kind, row(a, "Tensor.softmax").flops) == ("method", SOFTMAX)
    assert row(a, "operator.mul").flops == SCALE
    free = row(a, "Tensor.transpose")
    assert free.status == "free" and "no arithmetic" in free.reason and free.flops == 0
    wrapped = row(a, f"{__name__}.doubled")
    assert (wrapped.status, wrapped.flops, wrapped.kind) == ("counted", DOUBLED, "function")
    assert wrapped.reason.startswith("counted by recording its call")  # how it was priced, shown in the table
    unc = row(a, "Tensor.matrix_exp")
    assert (unc.status, unc.nodes, unc.flops, unc.kind) == ("uncounted", 1, 0, "method")
    assert a.uncounted == [unc] == a.incomplete and a.rows[0] is unc  # uncounted first: the numbers to distrust
    # Every op node is in exactly one row, so the rows add up to the report.
    assert sum(x.flops for x in a.rows) == r.total_flops and sum(x.macs for x in a.rows) == r.total_macs
    assert sum(x.nodes for x in a.rows) == sum(1 for n in r.nodes if n.kind.startswith("call_"))
    assert a.by_status()["uncounted"] == {"targets": 1, "nodes": 1, "flops": 0}


def test_audit_ignored_and_renderings():
    r = hand_report(ignore=[nn.ReLU])
    a = r.audit()
    relu = row(a, "nn.ReLU")
    assert (relu.status, relu.flops, relu.reason) == ("ignored", 0, "ignored by the user")
    assert r.total_flops == TOTAL_FLOPS - RELU
    text = a.table()
    assert "uncounted" in text and "Tensor.matrix_exp" in text and "counted by recording its call" in text
    d = a.to_dict()
    assert d["uncounted"] == ["Tensor.matrix_exp"]
    assert d["by_status"]["ignored"]["nodes"] == 1
    assert sum(x["flops"] for x in d["rows"]) == r.total_flops


def test_hook_blind_spot_hand_model():
    r = hand_report()
    b = r.hook_blind_spot()
    assert (b.macs, b.flops) == (BLIND_MACS, BLIND_FLOPS)
    assert b.flops_share == pytest.approx(BLIND_FLOPS / TOTAL_FLOPS)
    assert b.macs_share == pytest.approx(BLIND_MACS / TOTAL_MACS)
    assert r.audit().blind_spot == b
    assert r.to_dict()["hook_blind_spot"]["flops"] == BLIND_FLOPS
    assert "hook blind spot: 12.29% of FLOPs" in r.summary()  # 23712 / 192928 FLOPs
    assert round(100 * BLIND_FLOPS / TOTAL_FLOPS, 2) == 12.29


def test_hook_blind_spot_vit_against_flop_counter_per_module():
    """timm ViT: attention is F.scaled_dot_product_attention and the residuals are `+`, outside any leaf module.
    Independent check: torch's FlopCounterMode attributes aten matmuls to modules; its counts for the leaf
    modules (qkv/proj/fc Linear, patch conv) are exactly what fxflops finds inside leaf modules."""
    timm = pytest.importorskip("timm")
    model = timm.create_model("vit_tiny_patch16_224").eval()
    x = torch.randn(1, 3, 224, 224)
    r = fxflops.trace_flops(model, x, strict=True)
    b = r.hook_blind_spot()
    # The blind MACs are the two matmuls of SDPA: 12 blocks · 3 heads · 197² scores · (64 + 64).
    assert b.macs == 12 * 3 * 197 * 197 * (64 + 64)
    # FLOPs share by hand from the node records: everything that is neither a call_module node nor inside
    # timm's LayerNorm (a childless nn.LayerNorm subclass with its own forward, so fx traces through it, while a
    # forward hook still sees it as a LayerNorm).
    ops = [n for n in r.nodes if n.kind.startswith("call_")]
    outside = sum(n.flops for n in ops if n.kind != "call_module" and n.module_type != "LayerNorm")
    assert b.flops == outside and b.flops_share == pytest.approx(outside / sum(n.flops for n in ops))
    assert 0.10 < b.flops_share < 0.20
    leaves = [n.module_path for n in ops if n.kind == "call_module"]
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    per_module = fc.get_flop_counts()
    seen = sum(sum(per_module.get(f"VisionTransformer.{p}", {}).values()) for p in set(leaves))
    assert seen == 2 * (r.total_macs - b.macs)


def _write_model(tmp_path):
    f = tmp_path / "audited.py"
    f.write_text(
        "import torch\n"
        "import torch.nn as nn\n\n"
        "@torch.fx.wrap\n"
        "def mystery(x):\n"
        "    return x.matrix_exp()\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, how='method'):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(8, 3)\n"
        "        self.how = how\n\n"
        "    def forward(self, x):\n"
        "        y = self.fc(x) + 1.0\n"
        "        if self.how == 'method':\n"
        "            return y.matrix_exp()\n"
        "        return mystery(y) if self.how == 'wrapped' else y\n\n"
        "def clean():\n"
        "    return Net(how='none')\n\n"
        "def wrapped():\n"
        "    return Net(how='wrapped')\n"
    )
    return f


def test_cli_audit_table_and_strict_exit(tmp_path, capsys):
    f = _write_model(tmp_path)
    assert main(["audit", f"{f}:Net", "--input", "3,8"]) == 0
    out = capsys.readouterr().out
    assert "Tensor.matrix_exp" in out and "nn.Linear" in out and "hook blind spot" in out
    assert main(["audit", f"{f}:Net", "--input", "3,8", "--strict"]) == 2  # as for the main command's --strict
    assert "would be counted as 0: matrix_exp" in capsys.readouterr().err
    assert main(["audit", f"{f}:clean", "--input", "3,8", "--strict"]) == 0
    out = capsys.readouterr().out
    # Linear 8→3 on 3 rows: 72 MACs, 2·72 + 9 bias FLOPs; the + 1.0 adds 9 outside the leaf.
    assert "hook blind spot: 5.56% of FLOPs (9)" in out and round(100 * 9 / (2 * 72 + 9 + 9), 2) == 5.56
    # A wrapped function priced by recording its call, with an uncounted op inside is incomplete too.
    assert main(["audit", f"{f}:wrapped", "--input", "3,8", "--strict"]) == 2
    out = capsys.readouterr()
    assert "uncounted ops inside" in out.out and "priced only in part" in out.err


def test_cli_audit_json(tmp_path, capsys):
    import json

    f = _write_model(tmp_path)
    assert main(["audit", f"{f}:Net", "--input", "3,8", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["uncounted"] == ["Tensor.matrix_exp"]
    assert d["hook_blind_spot"]["flops"] == 9 and d["hook_blind_spot"]["macs"] == 0


def test_audit_and_blind_spot_on_the_dynamo_path():
    """A Hugging Face BERT goes through dynamo, which records layer 1 as a reuse of layer 0's captured block: the
    audit still names every target precisely (F.linear, not "linear") and adds up to the report. Forward hooks
    would see nn.Linear/nn.LayerNorm/nn.Tanh, but not SDPA, the residual adds, nor HF's own GELUActivation."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    model = transformers.BertModel(cfg).eval()
    r = fxflops.trace_flops(model, {"input_ids": torch.randint(0, 100, (1, 16))}, capture="dynamo", strict=True)
    a = r.audit()
    assert sum(x.flops for x in a.rows) == r.total_flops and sum(x.macs for x in a.rows) == r.total_macs
    linear = row(a, "F.linear")
    assert linear.nodes == 2 * 6 + 1  # q, k, v, out, two MLP projections per layer, and the pooler
    assert linear.macs == 2 * 16 * (4 * 64 * 64 + 2 * 64 * 128) + 64 * 64
    sdpa = row(a, "F.scaled_dot_product_attention")
    assert sdpa.macs == 2 * 2 * 16 * 16 * (32 + 32)  # layers · heads · L · S · (E + Eᵥ)
    gelu = [n for n in r.nodes if n.op == "gelu"]
    assert {n.module_type for n in gelu} == {"GELUActivation"}
    b = a.blind_spot
    assert b.macs == sdpa.macs
    assert b.flops == sdpa.flops + row(a, "operator.add").flops + sum(n.flops for n in gelu)
