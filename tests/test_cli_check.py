"""``fxflops check``: the budget gate. Exit 0 within budget, 1 over a budget or past a baseline (naming the module
responsible), 2 on a usage error; each case run as CI runs it, in a fresh interpreter."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fxflops.cli import main
from fxflops.cli.check import parse_amount, parse_tolerance

ROOT = Path(__file__).resolve().parents[1]

# Two linear layers on 2 rows: fc1 (16 → 64) 2,048 MACs, fc2 (64 → 8) 1,024 MACs; FLOPs 2·MACs + bias adds
# (128 + 16) + ReLU (128) = 6,416; params 16·64 + 64 + 64·8 + 8 = 1,608. A wider fc2 is the "grown" variant.
NETS = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 8)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def wider():
    return Net(hidden=72)
"""


def cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "fxflops.cli", "check", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def nets(tmp_path: Path) -> Path:
    (tmp_path / "nets.py").write_text(textwrap.dedent(NETS))
    return tmp_path


def test_within_budget_exits_0(nets):
    out = cli("nets.py:Net", "--input", "2,16", "--max-flops", "6.5K", "--max-params", "2K", cwd=nets)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("fxflops check: nets.py:Net (infer): ok, flops 6.42K within 6.50K; "
                                  "params 1.61K within 2.00K")


def test_over_budget_exits_1_naming_the_module(nets):
    out = cli("nets.py:Net", "--input", "2,16", "--max-flops", "6K", "--max-params", "1K", cwd=nets)
    assert out.returncode == 1 and out.stderr == ""
    flops, params = out.stdout.strip().splitlines()
    assert flops.startswith("fxflops check: nets.py:Net (infer): FAIL flops 6.42K (6,416) exceeds the budget 6.00K")
    assert flops.endswith("top module: fc1 (Linear): 4.22K, 66%")  # 2·2,048 + 128 bias adds
    assert params.endswith("top module: fc1 (Linear): 1.09K, 68%") and "params 1.61K (1,608) exceeds" in params


def test_baseline_growth_exits_1_listing_the_modules_that_grew(nets, capsys, monkeypatch):
    monkeypatch.chdir(nets)
    assert main(["nets.py:Net", "--input", "2,16", "--json"]) == 0
    base = capsys.readouterr().out
    (nets / "base.json").write_text(base)
    assert json.loads(base)["total_flops"] == 6416
    assert main(["check", "nets.py:Net", "--input", "2,16", "--baseline", "base.json"]) == 0
    assert "flops 6.42K -> 6.42K (+0.00%), within 0.00% of the baseline" in capsys.readouterr().out
    grown = cli("nets.py:wider", "--input", "2,16", "--baseline", "base.json", "--tolerance", "1%",
                "--format", "github", cwd=nets)
    assert grown.returncode == 1
    lines = grown.stdout.strip().splitlines()
    assert all(line.startswith("::error title=fxflops check nets.py:wider::") for line in lines)
    flops = next(line for line in lines if "::flops " in line)
    # hidden 64 → 72: fc1 2·16·72·2 + 144 = 4,752 FLOPs (was 4,224), the ReLU 144 (was 128), fc2 2,320 (was 2,064)
    assert "flops 6.42K -> 7.22K (+12.47%) grew past the baseline's 1.00% tolerance" in flops
    assert "fc1 (Linear) 4.22K -> 4.75K; fc2 (Linear) 2.06K -> 2.32K; act (ReLU) 128 -> 144" in flops


def test_a_real_model_over_its_budget(capsys):
    assert main(["check", "torchvision:resnet18", "--max-flops", "3G"]) == 1
    line = capsys.readouterr().out.strip()
    assert "FAIL flops 3.64G (3,642,773,992) exceeds the budget 3.00G by 21.4%; top module: layer1.0 (BasicBlock)" \
        in line


def test_usage_errors_exit_2_in_one_line(nets, capsys, monkeypatch):
    out = cli("nets.py:Net", "--input", "2,16", "--max-flops", "5Q", cwd=nets)  # as a user sees it
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "fxflops: error: --max-flops '5Q' is not an amount: give a number with an optional " \
                         "K/M/G/T/P suffix, e.g. 5G or 30M\n"
    monkeypatch.chdir(nets)
    for argv, msg in [([], "nothing to check"),
                      (["--baseline", "missing.json"], "--baseline missing.json: cannot read it"),
                      (["--max-flops", "5G", "--tolerance", "abc"], "--tolerance 'abc' is not a number")]:
        assert main(["check", "nets.py:Net", "--input", "2,16", *argv]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1 and msg in captured.err


def test_amounts_and_tolerances():
    assert parse_amount("5G", "x") == 5_000_000_000 and parse_amount("30M", "x") == 30_000_000
    assert parse_amount("1.5e9", "x") == 1_500_000_000 and parse_amount("2GB", "x") == 2_000_000_000
    assert parse_amount("512", "x") == 512 and parse_amount("2k", "x") == 2000
    assert parse_tolerance("1%") == 0.01 and parse_tolerance("0.05") == 0.05
