"""#25: reports cross processes, and sweep(workers=N) / fxflops sweep --jobs N give the serial results."""
from __future__ import annotations

import copy
import multiprocessing
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torchvision

import fxflops
from fxflops import FxFlopsError, sweep, trace_flops
from fxflops.pipeline import workers as workers_module
from fxflops.rules.registry import REGISTRY, Rule

from test_sweep import LM, ids


def _views(r: fxflops.Report) -> tuple:
    return (r.to_json(), r.table(), r.summary(), r.top_table(5), r.op_table(), str(r.audit()), r.to_markdown(),
            str(r.roofline("a100")), r.to_csv(rows="nodes"))


@pytest.mark.parametrize("capture,mode", [("fx", "train"), ("record", "infer"), ("dynamo", "infer")])
def test_a_pickled_report_gives_every_view_unchanged(capture: str, mode: str) -> None:
    model = torchvision.models.resnet18(num_classes=10)
    model.train(mode == "train")
    r = trace_flops(model, torch.randn(2, 3, 64, 64), capture=capture, mode=mode)
    back = pickle.loads(pickle.dumps(r))
    assert r.capture.value == capture and back.capture == r.capture and back.mode == mode
    assert _views(back) == _views(r)
    assert back.total_flops == r.total_flops and back.total_bytes == r.total_bytes and r.total_flops > 0
    # a registered rule arrives as the very rule of this process's op table, functions and all
    conv = next(n for n in back.nodes if n.op == "conv2d")
    assert conv.rule is next(n for n in r.nodes if n.op == "conv2d").rule
    assert conv.node is None and back.graph_modules == [] and back.model is None
    assert fxflops.compare([r, back], names=["a", "b"]).to_markdown() == \
        fxflops.compare([r, r], names=["a", "b"]).to_markdown()


def test_what_needs_the_graph_says_so_on_a_copy(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).eval()
    r = trace_flops(model, torch.randn(1, 8))
    back = pickle.loads(pickle.dumps(r))
    for call in (lambda: back.render(str(tmp_path / "g.svg")), lambda: back.explore(str(tmp_path / "g.html")),
                 back.to_dot, back.memory):
        with pytest.raises(FxFlopsError, match="stay in the process that traced them"):
            call()
    assert r.to_dot() and r.memory().params == 4 * (8 * 8 + 8)  # the original keeps them
    # a deep copy is a copy too, and it shares the op table's rules instead of copying them
    assert copy.deepcopy(r).nodes[0].rule is r.nodes[0].rule


def test_a_custom_rule_arrives_with_its_name_and_formula() -> None:
    def double(call):
        """FLOPs = 2·numel(output) (a made-up rule)."""
        return fxflops.Cost(0, 2 * call.out_numel)

    r = trace_flops(nn.Sequential(nn.Linear(4, 4), nn.Tanh()).eval(), torch.randn(3, 4),
                    custom_rules={nn.Tanh: double})
    back = pickle.loads(pickle.dumps(r))
    tanh = next(n for n in back.nodes if n.module_type == "Tanh")
    assert isinstance(tanh.rule, Rule) and tanh.rule.op == "Tanh" and tanh.flops == 24
    assert tanh.rule.formula == "FLOPs = 2·numel(output) (a made-up rule)." and tanh.rule.family == "custom"
    with pytest.raises(RuntimeError, match="came from another process without its function"):
        tanh.rule(None)
    assert back.to_json() == r.to_json()


def test_an_extension_rule_is_found_by_its_registration_in_a_fresh_process(tmp_path) -> None:
    timm = pytest.importorskip("timm")
    r = trace_flops(timm.create_model("tf_mobilenetv3_small_minimal_100", num_classes=10).eval(),
                    torch.randn(1, 3, 64, 64))
    same = [n for n in r.nodes if n.rule is not None and n.rule.fn.__module__ == "fxflops.rules.timm_layers"]
    assert same and all(n.op == "conv2d" for n in same)  # timm's Conv2dSame, priced by the timm extension
    back = pickle.loads(pickle.dumps(r))
    assert {n.rule for n in back.nodes if n.rule is not None} == {n.rule for n in r.nodes if n.rule is not None}
    (tmp_path / "r.pkl").write_bytes(pickle.dumps(r))
    # a process that has not imported timm loads the extension's rules when a report cites one
    code = (f"import pickle, sys; r = pickle.load(open({str(tmp_path / 'r.pkl')!r}, 'rb')); "
            "print(sorted({n.rule.fn.__module__ for n in r.nodes if n.rule is not None}), r.total_flops)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "fxflops.rules.timm_layers" in out.stdout and out.stdout.split()[-1] == str(r.total_flops)


# ---- sweep(workers=N) ---------------------------------------------------------------------------------------

def _results(s: fxflops.Sweep) -> tuple:
    """What a sweep found, less how many fx captures it reused (each worker traces the model once)."""
    return ({k: v for k, v in s.to_dict().items() if k != "reused"},
            [line for line in str(s).splitlines() if "reused for" not in line])


def test_sweep_in_two_processes_equals_the_serial_sweep() -> None:
    model = LM(100, 32, 4, 2).eval()

    def build(B, T):  # a closure over the model: the workers inherit it by fork
        return model, ids(B, T)

    serial = sweep(build, B=[1, 2, 3], T=[8, 16, 32, 64])
    two = sweep(build, workers=2, B=[1, 2, 3], T=[8, 16, 32, 64])
    assert _results(two) == _results(serial)
    assert [r.to_json() for r in two.reports] == [r.to_json() for r in serial.reports]
    assert str(two.formula("macs")) == "MACs(B, T) = 27,776·B·T + 128·B·T²"
    # each worker traces the model once and reuses it for its other points; serially it is traced once in all
    assert serial.reused == 11 and 12 - 2 <= two.reused <= 12 - 1


def test_sweep_workers_on_the_record_path() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=256)
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(cfg).eval()

    def build(T):
        return model, {"input_ids": torch.zeros(1, T, dtype=torch.long, device="meta")}

    serial, two = (sweep(build, workers=w, T=[16, 32, 64, 128]) for w in (1, 2))
    assert {r.capture.value for r in two.reports} == {"record"}
    assert _results(two) == _results(serial)
    assert two.formula("macs").terms == {(1,): 12 * 2 * 64 * 64 + 64 * 500, (2,): 2 * 2 * 64}


def test_a_workers_error_reaches_the_caller_as_itself() -> None:
    model = LM(100, 32, 4, 2).eval()

    def build(T):
        if T == 32:
            return model  # not (model, example)
        return model, ids(1, T)

    with pytest.raises(FxFlopsError, match=r"sweep's build\(T=32\) must return \(model, example\), got LM"):
        sweep(build, workers=2, T=[8, 16, 32, 64])


def test_sweep_worker_options_are_checked() -> None:
    model = LM(100, 32, 4, 2).eval()
    with pytest.raises(FxFlopsError, match="workers must be a positive integer, got 0"):
        sweep(lambda T: (model, ids(1, T)), workers=0, T=[8, 16])
    with pytest.raises(FxFlopsError, match="measure=True times the nodes"):
        sweep(lambda T: (model, ids(1, T)), workers=2, trace_options={"measure": True}, T=[8, 16])


def test_without_fork_the_build_must_pickle(monkeypatch) -> None:
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    model = LM(100, 32, 4, 2).eval()
    with pytest.raises(FxFlopsError, match="to be a module-level function on this platform"):
        sweep(lambda T: (model, ids(1, T)), workers=2, T=[8, 16])


def build_small_lm(T):
    """A module-level build: what a sweep with workers needs where processes are spawned (macOS, Windows)."""
    torch.manual_seed(0)
    return LM(100, 32, 4, 2).eval(), ids(1, T)


@pytest.mark.slow
def test_spawned_workers_give_the_serial_sweep(monkeypatch) -> None:
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    serial = sweep(build_small_lm, T=[8, 16, 32])
    spawned = sweep(build_small_lm, workers=2, T=[8, 16, 32])
    assert _results(spawned) == _results(serial)


def test_progress_bar_shows_on_request(capsys, monkeypatch) -> None:
    monkeypatch.setattr(workers_module, "PROGRESS_AFTER", 0)
    model = LM(100, 32, 4, 2).eval()
    sweep(lambda T: (model, ids(1, T)), progress=True, T=[8, 16, 32])
    err = capsys.readouterr().err
    assert "sweep:" in err and "0/3" in err
    sweep(lambda T: (model, ids(1, T)), T=[8, 16, 32])  # progress=None: not a terminal, so no bar
    sweep(lambda T: (model, ids(1, T)), progress=False, T=[8, 16, 32])
    assert capsys.readouterr().err == ""


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "reused for" not in line]


def test_cli_sweep_jobs(capsys, tmp_path) -> None:
    from test_cli_compare import LM_FILE, run_cli
    import textwrap

    lm = tmp_path / "lm.py"
    lm.write_text(textwrap.dedent(LM_FILE))
    args = ("sweep", f"{lm}:build", "--input", "ids=B,T:long", "--vary", "B=1,2,3", "--vary", "T=8,16,32,64", "--meta")
    code, one, err = run_cli(capsys, *args)
    assert code == 0, err
    code, two, err = run_cli(capsys, *args, "--jobs", "2")
    assert code == 0, err
    assert _lines(two) == _lines(one) and "MACs(B, T) = 27,776·B·T + 128·B·T²" in two
    code, _, err = run_cli(capsys, *args, "--jobs", "0")
    assert code == 2 and "--jobs 0: give the number of worker processes" in err


@pytest.mark.slow
def test_sweep_workers_fork_beside_other_threads_analyses() -> None:
    """Workers fork while other threads analyse the same model (holding its lock, torch's patches, the heap freeze):
    the fork waits for their patches to come off, and each worker starts with fresh locks, so nothing hangs and
    every number is the serial one."""
    import threading

    model = LM(100, 32, 4, 2).eval()
    resnet = torchvision.models.resnet18(num_classes=10).eval()

    def build(T):
        return model, ids(1, T)

    serial = _results(sweep(build, T=[8, 16, 32, 64]))
    expected = [trace_flops(model, ids(1, 8)).total_flops, trace_flops(resnet, torch.randn(1, 3, 32, 32)).total_flops]
    stop, seen, done = threading.Event(), [], []

    def busy(k: int) -> None:
        while not stop.is_set():
            r = trace_flops(model, ids(1, 8)) if k == 0 else trace_flops(resnet, torch.randn(1, 3, 32, 32))
            seen.append(r.total_flops == expected[k])

    threads = [threading.Thread(target=busy, args=(k,), daemon=True) for k in (0, 1)]
    for t in threads:
        t.start()

    def sweeps() -> None:
        for _ in range(3):
            done.append(_results(sweep(build, workers=2, T=[8, 16, 32, 64])))

    runner = threading.Thread(target=sweeps, daemon=True)
    runner.start()
    runner.join(timeout=240)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not runner.is_alive(), "a sweep with workers hung beside other threads' analyses"
    assert done == [serial] * 3 and seen and all(seen)
