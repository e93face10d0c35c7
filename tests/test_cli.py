"""The fxflops command line, run in-process through cli.main."""
from __future__ import annotations

import json
import textwrap

import pytest
import torchvision

from fxflops import trace_flops
from fxflops.cli import main
from conftest import needs_dot


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_torchvision_model_with_depth_and_top(capsys) -> None:
    code, out, _ = run_cli(capsys, "torchvision:resnet18", "--input", "1,3,64,64", "--depth", "1", "--top", "3", "--by-op")
    assert code == 0
    expected = trace_flops(torchvision.models.resnet18().eval(), __import__("torch").randn(1, 3, 64, 64))
    assert out.startswith(f"ResNet: {expected.summary().splitlines()[0].split(': ', 1)[1]}")
    assert "|   layer4  | Sequential" in out and "| node " in out and "| conv2d " in out


def test_json_has_exact_integers(capsys) -> None:
    code, out, _ = run_cli(capsys, "torchvision:resnet18", "--input", "2,3,32,32", "--json")
    d = json.loads(out)
    assert code == 0 and d["input_shapes"] == [[2, 3, 32, 32]]
    assert isinstance(d["total_macs"], int) and d["total_macs"] > 10**7


def test_default_input_for_image_models_and_meta(capsys) -> None:
    code, out, _ = run_cli(capsys, "torchvision:mobilenet_v2", "--meta", "--json")
    d = json.loads(out)
    assert code == 0 and d["input_shapes"] == [[1, 3, 224, 224]] and d["shape_mode"] == "meta"
    assert d["total_macs"] == 300_774_272


def test_python_file_spec_and_keyword_inputs(capsys, tmp_path) -> None:
    src = tmp_path / "mynet.py"
    src.write_text(textwrap.dedent("""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(100, 16)
                self.fc = nn.Linear(16, 4)

            def forward(self, ids):
                return self.fc(self.emb(ids))
    """))
    code, out, _ = run_cli(capsys, f"{src}:Net", "--input", "ids=2,5:long", "--json")
    d = json.loads(out)
    assert code == 0 and d["total_macs"] == 2 * 5 * 16 * 4 and d["input_shapes"] == ["ids=(2, 5)"]


def test_importable_callable_spec(capsys) -> None:
    code, out, _ = run_cli(capsys, "torchvision.models:squeezenet1_1", "--input", "1,3,64,64")
    assert code == 0 and out.startswith("SqueezeNet:")


def test_errors_are_one_line_not_tracebacks(capsys, tmp_path) -> None:
    code, _, err = run_cli(capsys, "nocolon")
    assert code == 2 and err.startswith("fxflops: error:") and "needs a colon" in err
    src = tmp_path / "plain.py"
    src.write_text("import torch.nn as nn\nclass Net(nn.Module):\n    def forward(self, x):\n        return x\n")
    code, _, err = run_cli(capsys, f"{src}:Net")
    assert code == 2 and "--input" in err
    code, _, err = run_cli(capsys, "torchvision:resnet18", "--input", "1,3,abc")
    assert code == 2 and "not a shape" in err


def test_ignore_option(capsys) -> None:
    _, full, _ = run_cli(capsys, "torchvision:resnet18", "--input", "1,3,32,32", "--json")
    _, no_relu, _ = run_cli(capsys, "torchvision:resnet18", "--input", "1,3,32,32", "--json", "--ignore", "relu")
    full_d, no_relu_d = json.loads(full), json.loads(no_relu)
    assert full_d["total_flops"] - no_relu_d["total_flops"] == full_d["by_op"]["relu"]["flops"] > 0


@pytest.mark.parametrize("flag", ["--help"])
def test_help_lists_model_specs(capsys, flag) -> None:
    with pytest.raises(SystemExit):
        main([flag])
    assert "torchvision:resnet50" in capsys.readouterr().out


def test_roofline_and_measure_columns(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FXFLOPS_CACHE", str(tmp_path))  # a fresh cpu calibration, not the user's cache
    code, out, _ = run_cli(capsys, "torchvision:resnet18", "--input", "1,3,32,32", "--depth", "1", "--roofline",
                           "a100", "--top", "2")
    assert code == 0 and "ResNet on a100:" in out and "| est. time |" in out and "| bound " in out
    assert "compute" in out or "memory" in out
    code, out, _ = run_cli(capsys, "torchvision:resnet18", "--input", "1,3,32,32", "--depth", "0", "--roofline",
                           "cpu", "--measure", "--repeats", "1", "--json")
    d = json.loads(out)
    assert code == 0 and d["roofline"]["device"]["name"] == "cpu" and d["total_measured"] > 0
    assert all(n["measured"] > 0 for n in d["nodes"] if n["kind"].startswith("call_"))


def test_devices_lists_presets_with_sources(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FXFLOPS_CACHE", str(tmp_path))
    code, out, _ = run_cli(capsys, "devices")
    assert code == 0
    assert "| a100 " in out and "| h100 " in out and "| cpu " in out
    assert "a100: NVIDIA A100" in out and "cpu: measured on this machine" in out


def test_device_and_roofline_errors(capsys) -> None:
    code, _, err = run_cli(capsys, "torchvision:resnet18", "--roofline", "tpu9")
    assert code == 2 and err.startswith("fxflops: error: unknown device 'tpu9'")
    code, _, err = run_cli(capsys, "torchvision:resnet18", "--device", "nonsense")
    assert code == 2 and "is not a device" in err
    code, _, err = run_cli(capsys, "torchvision:resnet18", "--meta", "--measure")
    assert code == 2 and "drop one of them" in err


@needs_dot
def test_svg_coloured_by_bound(capsys, tmp_path) -> None:
    svg = tmp_path / "r.svg"
    code, _, err = run_cli(capsys, "torchvision:resnet18", "--input", "1,3,32,32", "--svg", str(svg), "--depth", "1",
                           "--roofline", "a100", "--color", "bound")
    assert code == 0 and "graph written" in err
    assert "bound on a100" in svg.read_text()


def test_columns_below_zero_is_refused_before_the_model_is_built(capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:  # argparse refuses it, in one line
        main(["torchvision:resnet18", "--input", "1,3,32,32", "--svg", str(tmp_path / "r.svg"), "--columns", "-1"])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == "" and not (tmp_path / "r.svg").exists()
    assert err.strip() == "fxflops: error: argument --columns: -1 is below 0. `fxflops --help` lists the options"


@needs_dot
def test_columns_one_draws_the_tall_strip(capsys, tmp_path) -> None:
    import re

    sizes = {}
    for columns in ("0", "1"):
        svg = tmp_path / f"c{columns}.svg"
        code, _, _ = run_cli(capsys, "torchvision:resnet50", "--meta", "--svg", str(svg), "--depth", "2",
                             "--columns", columns)
        assert code == 0
        w, h = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', svg.read_text()).groups()
        sizes[columns] = int(w), int(h)
    assert sizes["1"][1] > 2 * sizes["0"][1] and sizes["0"][0] > sizes["1"][0]  # one column: tall and narrow
