"""CSV, Markdown and DataFrame exports: read back with the csv module / a pipe-table parser, numbers exact."""
from __future__ import annotations

import csv
import io
import sys

import pytest
import torch
import torch.nn as nn
import torchvision

from fxflops import FxFlopsError, trace_flops
from fxflops.report.views import table_modules


def small() -> nn.Module:
    # conv 3→8 3×3 at 8×8 → ReLU → flatten → linear 512→10; the ReLU holds no params but costs FLOPs
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(512, 10)).eval()


CONV = 8 * 8 * 8 * 3 * 9  # MACs: out elements × in channels × k²
FC = 512 * 10


def parse_markdown_table(text: str) -> list[list[str]]:
    """The rows of the first pipe table in ``text``: header, separator row checked, then the body."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
    head, sep, body = cells[0], lines[1], cells[2:]
    assert all(set(c) <= set("-:") and c.count("-") >= 3 for c in sep.strip("|").split("|")), sep
    assert all(len(r) == len(head) for r in body), "ragged table"
    return [head] + body


def test_csv_modules_round_trip_exact(tmp_path) -> None:
    r = trace_flops(small(), torch.randn(1, 3, 8, 8))
    path = tmp_path / "out.csv"
    text = r.to_csv(path)
    assert path.read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    by = {row["module"]: row for row in rows}
    assert list(by) == ["", "0", "1", "2", "3"]  # every module down to the depth, as in the table: Flatten too
    assert int(by["2"]["flops"]) == 0 and int(by["2"]["params"]) == 0
    assert int(by["0"]["macs"]) == CONV and int(by["0"]["flops"]) == 2 * CONV
    assert int(by["1"]["flops"]) == 8 * 8 * 8 and int(by["1"]["params"]) == 0  # ReLU: 1 per element
    assert int(by["3"]["macs"]) == FC and int(by["3"]["params"]) == FC + 10
    assert int(by[""]["macs"]) == r.total_macs == CONV + FC and int(by[""]["depth"]) == 0
    assert float(by[""]["flops_share"]) == 1.0


def test_csv_ops_and_nodes_views() -> None:
    r = trace_flops(small(), torch.randn(1, 3, 8, 8))
    ops = {row["op"]: row for row in csv.DictReader(io.StringIO(r.to_csv(rows="ops")))}
    assert int(ops["conv2d"]["macs"]) == CONV and int(ops["linear"]["nodes"]) == 1
    nodes = list(csv.DictReader(io.StringIO(r.to_csv(rows="nodes"))))
    conv = next(n for n in nodes if n["op"] == "conv2d")
    assert conv["output_shapes"] == "(1,8,8,8)" and conv["status"] == "counted" and int(conv["macs"]) == CONV
    assert sum(int(n["flops"]) for n in nodes) == r.total_flops
    with pytest.raises(FxFlopsError, match="rows must be one of"):
        r.to_csv(rows="layers")


def test_markdown_table_parses_and_matches_the_report() -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18().eval()
    r = trace_flops(model, torch.empty(1, 3, 64, 64, device="meta"))
    md = r.to_markdown(depth=1)
    assert md.startswith("**ResNet** (1×3×64×64): ")
    table = parse_markdown_table(md)
    assert table[0] == ["module", "type", "params", "MACs", "FLOPs", "% FLOPs"]
    names = [row[0] for row in table[1:]]
    assert names[0] == "(model)" and "`layer4`" in names and len(names) == len(table_modules(r, 1))
    exact = parse_markdown_table(r.to_markdown(depth=1, exact=True))
    fc = next(row for row in exact if row[0] == "`fc`")
    assert int(fc[3].replace(",", "")) == 512 * 1000 and int(exact[1][4].replace(",", "")) == r.total_flops


def test_markdown_escapes_pipes() -> None:
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("a|b", nn.Linear(4, 4))

        def forward(self, x):
            return getattr(self, "a|b")(x)

    table = parse_markdown_table(trace_flops(Odd(), torch.randn(1, 4)).to_markdown())
    assert table[2][0] == "`a\\|b`"


def test_dataframe_without_pandas_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    r = trace_flops(small(), torch.randn(1, 3, 8, 8))
    with pytest.raises(FxFlopsError, match=r'pip install "fxflops\[pandas\]"'):
        r.to_dataframe()


def test_dataframe_has_the_csv_columns() -> None:
    pd = pytest.importorskip("pandas")
    r = trace_flops(small(), torch.randn(1, 3, 8, 8))
    df = r.to_dataframe()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == list(csv.DictReader(io.StringIO(r.to_csv())).fieldnames)
    assert int(df.set_index("module").loc["0", "macs"]) == CONV
