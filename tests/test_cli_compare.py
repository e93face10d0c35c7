"""fxflops compare, fxflops sweep and the --csv / --markdown / --chart exports, run in-process through cli.main."""
from __future__ import annotations

import csv
import json
import textwrap

import torch
import torchvision

from fxflops import compare, trace_flops
from fxflops.cli import main
from fxflops.report.views import table_modules


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def meta_report(name: str, *shape: int):
    with torch.device("meta"):
        model = torchvision.models.get_model(name).eval()
    return trace_flops(model, torch.empty(*shape, device="meta"))


def test_compare_two_models_one_input(capsys, tmp_path) -> None:
    path = tmp_path / "cmp.csv"
    code, out, err = run_cli(capsys, "compare", "torchvision:resnet18", "torchvision:mobilenet_v2", "--input",
                             "1,3,64,64", "--meta", "--depth", "1", "--by-op", "--csv", str(path))
    assert code == 0, err
    expected = compare(meta_report("resnet18", 1, 3, 64, 64), meta_report("mobilenet_v2", 1, 3, 64, 64))
    assert out.startswith("A = torchvision:resnet18: ") and expected.summary().splitlines()[2] in out
    assert "| only A" in out and "| only B" in out and "| conv2d " in out
    rows = list(csv.DictReader(path.open()))
    assert int(rows[0]["macs_A"]) == expected.total("macs", 0) and int(rows[0]["delta_macs_B"]) == expected.delta("macs")


def test_compare_one_model_two_batch_sizes(capsys) -> None:
    code, out, _ = run_cli(capsys, "compare", "torchvision:resnet18", "--input", "1,3,64,64", "--input", "8,3,64,64",
                           "--meta", "--json")
    d = json.loads(out)
    assert code == 0 and d["names"] == ["torchvision:resnet18 1,3,64,64", "torchvision:resnet18 8,3,64,64"]
    assert d["totals"][1]["macs"] == 8 * d["totals"][0]["macs"] and d["totals"][1]["params"] == d["totals"][0]["params"]
    assert all(m["values"][1]["macs"] == 8 * m["values"][0]["macs"] for m in d["modules"])


def test_compare_markdown_and_errors(capsys) -> None:
    code, out, _ = run_cli(capsys, "compare", "torchvision:resnet18", "--input", "1,3,32,32", "--input", "2,3,32,32",
                           "--meta", "--markdown", "--depth", "0")
    assert code == 0 and out.startswith("- A = ") and "| (model) | ResNet |" in out
    code, _, err = run_cli(capsys, "compare", "torchvision:resnet18", "torchvision:resnet34", "--input", "1,3,32,32",
                           "--input", "2,3,32,32", "--input", "4,3,32,32", "--meta")
    assert code == 2 and err.startswith("fxflops: error: 2 models and 3 --input values")
    code, _, err = run_cli(capsys, "compare", "torchvision:resnet18", "--meta")
    assert code == 2 and "compare needs two variants" in err


LM_FILE = """
    from test_sweep import LM  # the hand-derived transformer of tests/test_sweep.py

    def build():
        return LM(100, 32, 4, 2)
"""


def test_sweep_prints_table_and_exact_formula(capsys, tmp_path) -> None:
    lm = tmp_path / "lm.py"
    lm.write_text(textwrap.dedent(LM_FILE))
    code, out, err = run_cli(capsys, "sweep", f"{lm}:build", "--input", "ids=1,T:long", "--vary", "T=8,16,32,64",
                             "--meta", "--csv", str(tmp_path / "s.csv"))
    assert code == 0, err
    assert "MACs(T) = 27,776·T + 128·T²" in out  # 12·L·d² + d·V and 2·L·d, L=2, d=32, V=100
    assert "| 64 |" in out and "checked on 1 more: T=64" in out
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [int(r["T"]) for r in rows] == [8, 16, 32, 64] and int(rows[0]["macs"]) == 27_776 * 8 + 128 * 64
    code, out, _ = run_cli(capsys, "sweep", f"{lm}:build", "--input", "ids=B,T:long", "--vary", "B=1,2,3",
                           "--vary", "T=8,16,32,64", "--meta", "--json")
    assert code == 0 and json.loads(out)["formulas"]["macs"]["formula"] == "MACs(B, T) = 27,776·B·T + 128·B·T²"


def test_sweep_errors(capsys, tmp_path) -> None:
    lm = tmp_path / "lm.py"
    lm.write_text(textwrap.dedent(LM_FILE))
    code, _, err = run_cli(capsys, "sweep", f"{lm}:build", "--input", "ids=1,T:long", "--vary", "S=8,16", "--meta")
    assert code == 2 and "--vary S: no --input dimension is named so" in err
    code, _, err = run_cli(capsys, "sweep", f"{lm}:build", "--input", "ids=B,T:long", "--vary", "T=8,16", "--meta")
    assert code == 2 and "uses B, which no --vary gives values for" in err
    code, _, err = run_cli(capsys, "sweep", f"{lm}:build", "--input", "ids=1,T:long", "--vary", "T=8,x", "--meta")
    assert code == 2 and "the values must be integers" in err


def test_main_command_csv_markdown_chart(capsys, tmp_path) -> None:
    code, out, err = run_cli(capsys, "torchvision:resnet18", "--input", "1,3,64,64", "--meta", "--depth", "1",
                             "--markdown", "--csv", str(tmp_path / "r.csv"), "--chart", str(tmp_path / "r.png"))
    assert code == 0, err
    expected = meta_report("resnet18", 1, 3, 64, 64)
    assert out.strip() == expected.to_markdown(depth=1).strip()
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["module"] for r in rows] == [m.path for m in table_modules(expected, 1)]
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "chart written to" in err
