"""One node model: every view of a train-mode report reads the same records, so module rows, exports and the
comparison add up to the report's totals (forward + backward), and each half to its own total.

Linear(8, 16) → ReLU → Linear(16, 4) on a (2, 8) input that needs no gradient, by hand:
  forward: fc1 2·8·16 = 256 MACs (512 + 32 bias = 544 FLOPs), relu 32 FLOPs, fc2 2·16·4 = 128 MACs (256 + 8 = 264)
  backward: fc1 grad-weight only (256 MACs, 512 + 32 bias = 544 FLOPs), relu 32 + 32 = 64 FLOPs,
  fc2 grad-input and grad-weight (256 MACs, 512 + 8 = 520 FLOPs)
"""
from __future__ import annotations

import csv
import io
import json

import torch
import torch.nn as nn

import fxflops

FWD_FLOPS = 544 + 32 + 264
BWD_FLOPS = 544 + 64 + 520


def _report() -> fxflops.Report:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    return fxflops.trace_flops(model, torch.randn(2, 8), mode="train")


def test_train_totals_by_hand():
    r = _report()
    assert (r.forward_flops, r.backward_flops, r.total_flops) == (FWD_FLOPS, BWD_FLOPS, FWD_FLOPS + BWD_FLOPS)
    assert (r.forward_macs, r.backward_macs) == (256 + 128, 256 + 256)


def test_module_rows_sum_to_the_totals_in_every_view():
    r = _report()
    leaves = [r.modules[p] for p in ("0", "1", "2")]
    root = r.modules[""]
    assert (root.macs, root.flops) == (r.total_macs, r.total_flops)
    assert (root.fwd_flops, root.bwd_flops) == (r.forward_flops, r.backward_flops)
    assert sum(m.flops for m in leaves) == r.total_flops and sum(m.macs for m in leaves) == r.total_macs
    assert sum(m.fwd_flops for m in leaves) == r.forward_flops and sum(m.bwd_flops for m in leaves) == r.backward_flops

    rows = list(csv.DictReader(io.StringIO(r.to_csv(depth=1))))
    assert int(rows[0]["flops"]) == r.total_flops and int(rows[0]["macs"]) == r.total_macs
    assert sum(int(x["flops"]) for x in rows[1:]) == r.total_flops
    assert sum(int(x["fwd_flops"]) for x in rows[1:]) == r.forward_flops
    assert sum(int(x["bwd_flops"]) for x in rows[1:]) == r.backward_flops

    ops = list(csv.DictReader(io.StringIO(r.to_csv(rows="ops"))))
    assert sum(int(x["flops"]) for x in ops) == r.total_flops
    assert sum(int(x["bwd_macs"]) for x in ops) == r.backward_macs

    md = r.to_markdown(depth=1, exact=True)
    assert "| (model) | Sequential | 212 | 896 | 840 | 1,128 | 1,968 | 100.00% |" in md
    assert "fwd FLOPs | bwd FLOPs" in md

    data = json.loads(r.to_json())
    mods = {m["path"]: m for m in data["modules"]}
    assert mods[""]["flops"] == data["total_flops"] == FWD_FLOPS + BWD_FLOPS
    assert sum(mods[p]["bwd_flops"] for p in ("0", "1", "2")) == data["backward_flops"]
    assert sum(n["flops"] for n in data["nodes"]) == data["total_flops"]

    table = r.table(depth=1)
    assert "1.97K" in table and "100.00%" in table

    c = fxflops.compare(r, r)
    assert c.module("").values[0]["flops"] == r.total_flops
    assert sum(c.module(p).values[1]["flops"] for p in ("0", "1", "2")) == r.total_flops


def test_a_record_is_its_graph_node():
    """The record holds its fx node and the rule that priced it; copies are told apart by fields, not names."""
    r = _report()
    fc = next(n for n in r.nodes if n.op == "linear")
    assert fc.node in r.graph_module.graph.nodes and fc.node.meta["fxflops"] is fc
    assert fc.rule is not None and fc.rule.op == "linear" and fc.reason == ""
    assert fc.total == fc.fwd + fc.bwd and (fc.run, fc.block) == (1, "")
    relu = next(n for n in r.nodes if n.op == "relu")
    assert relu.to_dict()["rule"] == "relu"
