"""#25: concurrent trace_flops calls give exactly the serial numbers, on every capture path.

The test was checked against the race it guards: with ``fxflops.capture.patching.GLOBAL`` and ``model_lock`` made
no-ops it failed (wrong numbers) or crashed the interpreter in each of 10 runs.
"""
from __future__ import annotations

import threading

import pytest
import torch

import fxflops

pytestmark = pytest.mark.slow


def _jobs() -> list:
    torchvision = pytest.importorskip("torchvision")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    bert = transformers.BertModel(transformers.BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                                                          intermediate_size=128)).eval()
    resnet = torchvision.models.resnet18(num_classes=10).eval()
    mobilenet = torchvision.models.mobilenet_v3_small(num_classes=10).eval()
    squeeze = torchvision.models.squeezenet1_1(num_classes=10).eval()
    img = torch.randn(1, 3, 64, 64)
    ids = {"input_ids": torch.zeros(1, 16, dtype=torch.long)}
    return [(resnet, img, "fx"), (bert, ids, "auto"),  # BERT: fx fails, record takes it
            (mobilenet, img, "record"), (squeeze, img, "dynamo"), (bert, ids, "dynamo")]


def _result(report: fxflops.Report) -> tuple:
    return (report.total_macs, report.total_flops, report.total_bytes, report.capture,
            [(n.name, n.op, n.module_path, n.flops) for n in report.nodes])


def test_eight_threads_get_the_serial_numbers() -> None:
    jobs = _jobs()
    serial = [_result(fxflops.trace_flops(m, x, capture=c)) for m, x, c in jobs]
    assert {r[3].value for r in serial} >= {"fx", "record", "dynamo"}
    got: list[tuple[int, tuple | BaseException]] = []
    start = threading.Barrier(8)

    def worker(k: int) -> None:
        start.wait()
        for i in range(5):
            j = (k + i) % len(jobs)
            m, x, c = jobs[j]
            try:
                got.append((j, _result(fxflops.trace_flops(m, x, capture=c))))
            except BaseException as exc:  # noqa: BLE001 - reported below, with the job
                got.append((j, exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 40
    wrong = [(j, r if isinstance(r, BaseException) else r[:4], serial[j][:4]) for j, r in got if r != serial[j]]
    assert not wrong
    assert all(p.device.type == "cpu" for m, _, _ in jobs for p in m.parameters())
