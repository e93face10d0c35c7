"""#25: no per-call memory growth after warm-up, and no cache keeps a user's model alive."""
from __future__ import annotations

import gc
import tracemalloc
import weakref

import pytest
import torch

import fxflops

MIB = 2**20


def _small() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                               torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(16, 10)).eval()


@pytest.mark.slow
def test_two_hundred_traces_do_not_grow_memory() -> None:
    model, x = _small(), torch.randn(1, 3, 32, 32)
    for _ in range(10):
        fxflops.trace_flops(model, x)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            report = fxflops.trace_flops(model, x)
        del report
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 5 * MIB, f"{grown / MIB:.1f} MiB after 200 traces"


@pytest.mark.parametrize("capture", ["auto", "record", "dynamo"])
def test_no_model_stays_referenced_after_the_report_is_dropped(capture: str) -> None:
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(num_classes=10).eval()
    report = fxflops.trace_flops(model, torch.randn(1, 3, 32, 32), capture=capture)
    assert report.total_macs > 0
    alive = weakref.ref(model)
    del model, report
    gc.collect()
    assert alive() is None


def test_a_sweep_cache_does_not_keep_models_alive_and_clears() -> None:
    from fxflops.capture.fx_cache import MAX_ENTRIES, FxCache, cached_capture_fx
    from fxflops.rules.registry import REGISTRY

    cache = FxCache()
    model = _small()
    for training in (False, True):
        model.train(training)
        cached_capture_fx(model, REGISTRY, (), None, cache, (REGISTRY,))
    cached_capture_fx(model, REGISTRY, (), None, cache, (REGISTRY,))
    assert cache.hits == 1 and len(cache.entries[model]) == 2
    for k in range(MAX_ENTRIES + 3):  # different leaf types: different entries, the oldest dropped
        cached_capture_fx(model, REGISTRY, (type(f"Leaf{k}", (torch.nn.Module,), {}),), None, cache, (REGISTRY,))
    assert len(cache.entries[model]) == MAX_ENTRIES
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None and not cache.entries
    other = _small()
    cached_capture_fx(other, REGISTRY, (), None, cache, (REGISTRY,))
    fxflops.clear_caches()
    assert not cache.entries
