"""Every failure a user can cause on the command line is one ``fxflops: error: ...`` line and exit status 2.

Each row runs the command in a fresh interpreter (``python -m fxflops.cli`` from this checkout, as the console
script would), so what is checked is what a user sees: stderr and the exit status, never a Python traceback.
A fresh interpreter costs several seconds (importing torch and torchvision), hence the slow mark; variants of
a row run in-process through ``cli.main``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import fxflops
from fxflops.cli import main
from conftest import needs_dot

ROOT = Path(__file__).resolve().parents[1]
slow = pytest.mark.slow

MYNET = """
import torch
import torch.nn as nn

NOT_A_MODULE = 3


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.special.bessel_j0(self.fc(x))  # no FLOPs rule: uncounted on purpose


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 6 * 6, 10)

    def forward(self, x):
        x = torch.flatten(torch.relu(self.conv(x)), 1)
        return self.fc1(x)
"""


def fxflops_cli(*argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "fxflops.cli", *argv], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


def in_process(capsys, *argv: str) -> subprocess.CompletedProcess:
    """The same run through ``cli.main`` in this interpreter (for the variants of a row: no start-up cost)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


def one_error(res: subprocess.CompletedProcess, *needles: str) -> str:
    """The run failed the way the CLI promises: exit 2, no traceback, one ``fxflops: error:`` line saying ``needles``."""
    err = res.stderr
    assert res.returncode == 2, (res.returncode, err)
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("fxflops: error: ")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


FC1_LINE = textwrap.dedent(MYNET).splitlines().index("        return self.fc1(x)") + 1


@pytest.fixture
def mynet(tmp_path: Path) -> Path:
    path = tmp_path / "mynet.py"
    path.write_text(textwrap.dedent(MYNET))
    return path


@slow
def test_missing_package() -> None:
    one_error(fxflops_cli("nosuchpkg:foo"), "no module named 'nosuchpkg'")


@slow
def test_unknown_torchvision_model() -> None:
    one_error(fxflops_cli("torchvision:nope"), "torchvision has no model 'nope'")


def test_unknown_timm_model_and_close_names(capsys) -> None:
    one_error(in_process(capsys, "timm:nope"), "timm has no model 'nope'")
    one_error(in_process(capsys, "torchvision:resnet5O"), "did you mean resnet50")


@slow
def test_file_with_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad_syntax.py"
    bad.write_text("import torch\nclass Net(torch.nn.Module)\n    pass\n")
    one_error(fxflops_cli(f"{bad}:Net"), f"{bad}:2", "syntax error")


@slow
def test_attribute_that_is_not_a_model(mynet: Path) -> None:
    one_error(fxflops_cli(f"{mynet}:NOT_A_MODULE"), "type int, not a model")


@needs_dot
@slow
def test_svg_unwritable_still_prints_the_report() -> None:
    # /sys is a directory that even root cannot create files in; os.access cannot tell, so the write fails late.
    res = fxflops_cli("torchvision:resnet18", "--input", "1,3,32,32", "--svg", "/sys/x.svg")
    one_error(res, "cannot write the graph to '/sys/x.svg'")
    assert res.stdout.startswith("ResNet: ")


@pytest.mark.parametrize("target, says", [
    ("/nonexistent_dir/x.svg", "there is no directory '/nonexistent_dir'"),
    ("x.txt", "must end in .svg, .png, .pdf"),
])
def test_svg_path_refused_before_the_run(capsys, target: str, says: str) -> None:
    res = in_process(capsys, "torchvision:resnet18", "--input", "1,3,32,32", "--svg", target)
    one_error(res, says)
    assert res.stdout == ""


@slow
def test_svg_without_graphviz(tmp_path: Path) -> None:
    # An empty PATH hides Graphviz's dot; the interpreter itself is run by its absolute path.
    res = fxflops_cli("torchvision:resnet18", "--input", "1,3,32,32", "--svg", str(tmp_path / "g.svg"),
                      env={"PATH": str(tmp_path)})
    one_error(res, "Graphviz's `dot` program, which is not on PATH", "apt install graphviz")
    assert res.stdout.startswith("ResNet: ") and not (tmp_path / "g.svg").exists()


@slow
def test_detection_model_downloads_nothing(tmp_path: Path) -> None:
    # weights_backbone=None: nothing lands in TORCH_HOME (no network here: a download would end in URLError).
    # fx cannot trace detection models, which makes the run short: it must fail on tracing, not on building.
    res = fxflops_cli("torchvision:fasterrcnn_mobilenet_v3_large_fpn", "--capture", "fx",
                      env={"TORCH_HOME": str(tmp_path / "torch_home")})
    one_error(res, "torch.fx could not trace")
    assert not (tmp_path / "torch_home").exists()


@slow
@pytest.mark.parametrize("shape, says", [("1,3,x", "is not a shape"), ("0,3,224,224", "has a size below 1")])
def test_bad_input_shape_names_the_flag(shape: str, says: str) -> None:
    one_error(fxflops_cli("torchvision:resnet18", f"--input={shape}"), f"--input {shape!r}", says)


@pytest.mark.parametrize("shape, says", [
    ("", "is not a shape"),
    ("1,,3", "is not a shape"),
    ("1,-3,224,224", "has a size below 1"),
    ("ids=1,,8:long", "is not a shape"),
])
def test_bad_input_shape_variants(capsys, shape: str, says: str) -> None:
    one_error(in_process(capsys, "torchvision:resnet18", f"--input={shape}"), f"--input {shape!r}", says)


@slow
def test_version() -> None:
    res = fxflops_cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"fxflops {fxflops.__version__}", res


@slow
def test_help_mentions_audit() -> None:
    res = fxflops_cli("--help")
    assert res.returncode == 0 and "fxflops audit MODEL" in res.stdout


@slow
def test_audit_model_with_api_flag() -> None:
    one_error(fxflops_cli("audit", "torchvision:resnet18", "--api"), "python -m tools.api_audit",
              "`fxflops audit torchvision:resnet18` (without --api)")


@slow
def test_uncounted_op_is_one_note(mynet: Path) -> None:
    res = fxflops_cli(f"{mynet}:Net", "--input", "2,4")
    assert res.returncode == 0 and res.stdout.startswith("Net: 32 MACs"), res
    assert "Traceback" not in res.stderr and "Warning" not in res.stderr
    notes = res.stderr.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith("fxflops: note: 1 node(s)"), res.stderr
    assert "special_bessel_j0" in notes[0] and "--ignore OP" in notes[0] and "custom_rules=" not in notes[0]


def test_ignore_silences_the_note_by_the_name_it_gives(capsys, mynet: Path) -> None:
    res = in_process(capsys, f"{mynet}:Net", "--input", "2,4", "--ignore", "special_bessel_j0")
    assert res.returncode == 0 and res.stderr == "", res.stderr


@slow
def test_audit_strict_is_exit_2(mynet: Path) -> None:
    res = fxflops_cli("audit", f"{mynet}:Net", "--input", "2,4", "--strict")
    one_error(res, "--strict: 1 node(s)", "would be counted as 0: special_bessel_j0", "--ignore OP")
    assert "uncounted" in res.stdout  # the audit table comes first


def test_strict_is_exit_2_too(capsys, mynet: Path) -> None:
    res = in_process(capsys, f"{mynet}:Net", "--input", "2,4", "--strict")
    one_error(res, "--strict: 1 node(s)", "would be counted as 0: special_bessel_j0", "--ignore OP")
    assert res.stdout == ""


@slow
def test_shape_error_names_the_users_line(mynet: Path) -> None:
    res = fxflops_cli(f"{mynet}:Small", "--input", "1,3,28,28")
    one_error(res, "node 'fc1'", "mat1 and mat2 shapes cannot be multiplied",
              f"{mynet}:{FC1_LINE} in forward: return self.fc1(x)")


def test_module_spec_found_in_the_working_directory(capsys, monkeypatch, mynet: Path) -> None:
    # the console script's sys.path does not hold the directory it is run from; `mynet:Net` must still import
    monkeypatch.chdir(mynet.parent)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(mynet.parent))])
    monkeypatch.delitem(sys.modules, "mynet", raising=False)
    res = in_process(capsys, "mynet:Small", "--input", "1,3,6,6")
    assert res.returncode == 0 and res.stdout.startswith("Small: "), res.stderr


# issue #21: the last tracebacks and silent no-ops; each row one error line, exit 2 (fresh interpreter for the
# writers and the capture path, in-process for argparse's refusals, which never get as far as building a model)
@slow
@pytest.mark.parametrize("argv, says", [
    (("torchvision:resnet18", "--input", "1,3,32,32", "--csv", "/nonexistent/x.csv"), "cannot write the CSV to '/nonexistent/x.csv'"),
    (("torchvision:resnet18", "--input", "1,3,32,32", "--chart", "/nonexistent/x.png"), "cannot write the chart to '/nonexistent/x.png'"),
    (("compare", "torchvision:resnet18", "--input", "1,3,32,32", "--input", "1,3,64,64", "--csv", "/nonexistent/c.csv"),
     "cannot write the CSV to '/nonexistent/c.csv'"),
    (("sweep", "torchvision:resnet18", "--input", "1,3,S,S", "--vary", "S=32,64,96", "--csv", "/nonexistent/s.csv"),
     "cannot write the CSV to '/nonexistent/s.csv'"),
])
def test_unwritable_outputs_name_the_path(argv, says: str) -> None:
    one_error(fxflops_cli(*argv), says)


@pytest.mark.parametrize("argv, says", [
    (("--measure", "--repeats", "0"), "argument --repeats: 0 is below 1"),
    (("--optimizer", "lion"), "invalid choice: 'lion' (choose from 'adam', 'adamw', 'sgd', 'none')"),
    (("--depth", "abc"), "argument --depth: 'abc' is not an integer"),
    (("--input", "-1,3,224,224"), "takes '=', like --input=-1,3,224,224"),
    (("--depth", "-1"), "argument --depth: -1 is below 0"),
    (("--top", "-3"), "argument --top: -3 is below 0"),
    (("--max-nodes", "-5"), "argument --max-nodes: -5 is below 0"),
    (("--roofline", ""), "unknown device ''"),
    (("--color", "time"), "--color works only with --svg"),
    (("--roll", "--columns", "2"), "--roll, --columns work only with --svg"),
    (("--repeats", "3"), "--repeats works only with --measure"),
])
def test_refusals_are_one_line(capsys, argv, says: str) -> None:
    res = in_process(capsys, "torchvision:resnet18", *argv)
    one_error(res, says)
    assert len(res.stderr.strip().splitlines()) == 1 and res.stdout == "", res.stderr


def test_capture_record_is_a_choice(capsys) -> None:
    res = in_process(capsys, "torchvision:resnet18", "--input", "1,3,32,32", "--capture", "record", "--depth", "0")
    assert res.returncode == 0 and res.stdout.startswith("ResNet: "), res.stderr


BERT = """
import transformers

def build():
    return transformers.BertModel(transformers.BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                                                          intermediate_size=128, max_position_embeddings=512))
"""


@slow
def test_too_long_sequence_is_a_shape_error_without_torch_logs(tmp_path: Path) -> None:
    lm = tmp_path / "lm.py"
    lm.write_text(textwrap.dedent(BERT))
    res = fxflops_cli(f"{lm}:build", "--input", "input_ids=1,600:long", "--meta")
    one_error(res, "the example input does not fit the model (600 > 512 positions)", "What to do:")
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr  # no fake-tensor log, no capture-path list


def test_shape_error_is_one_line_and_verbose_keeps_it_whole(capsys, mynet: Path) -> None:
    res = in_process(capsys, f"{mynet}:Small", "--input", "1,3,28,28")
    line = one_error(res, "mat1 and mat2 shapes cannot be multiplied", "What to do: check the example's shape")
    assert res.stderr.strip() == line
    res = in_process(capsys, f"{mynet}:Small", "--input", "1,3,28,28", "--verbose")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 2


def test_capture_error_hides_each_paths_reason_behind_verbose() -> None:
    from fxflops.cli import one_line

    text = "could not capture M with any path.\n  fx: a\n  record: b\n  dynamo: c\nWhat to do: see the reasons above."
    assert one_line(text, verbose=False) == "could not capture M with any path. (--verbose shows 4 more line(s))"
    assert one_line(text, verbose=True) == text


def test_unused_ignore_warns_with_the_closest_name(capsys) -> None:
    res = in_process(capsys, "torchvision:resnet18", "--input", "1,3,32,32", "--depth", "0", "--ignore", "rleu",
                     "--ignore", "relu")
    assert res.returncode == 0
    assert res.stderr.strip().splitlines() == ["fxflops: warning: --ignore rleu matched nothing in the graph (did you "
                                               "mean relu?); `fxflops audit MODEL` lists the op names"]


def test_depth_lists_every_module_down_to_it(capsys, tmp_path: Path) -> None:
    out = tmp_path / "a.csv"
    res = in_process(capsys, "torchvision:alexnet", "--input", "1,3,64,64", "--depth", "99", "--csv", str(out))
    rows = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert res.returncode == 0 and "classifier.2" in rows and "classifier.0" in rows  # Dropout, free in eval


def test_sweep_with_too_few_values_says_how_many_to_add(capsys) -> None:
    res = in_process(capsys, "sweep", "torchvision:resnet18", "--input", "1,3,S,S", "--vary", "S=32,64,96")
    assert res.returncode == 0, res.stderr
    assert "a formula of degree d needs d + 2 values of a symbol" in res.stdout
    assert "S takes 3 values, so one more value of S allows degree 2" in res.stdout
