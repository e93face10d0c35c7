"""``measure=True`` of :func:`fxflops.trace_flops`: time every node of a finished report on real tensors
(:mod:`fxflops.pipeline.latency`) and return the report with the times on its records and module rows."""
from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Callable

import torch

from .capture.example import placeholder_values
from .capture.record import capture_record
from .errors import FxFlopsError, first_line
from .passes.records import module_rows
from .pipeline.latency import apply_timings, model_device, real_example, time_dynamo, time_fx
from .report.report import Report
from .types import OP_KINDS, Capture


def measure(report: Report, model: torch.nn.Module, args: tuple, kwargs: dict, repeats: int,
            record_leaf: Callable[[torch.nn.Module], bool]) -> Report:
    """A copy of ``report`` with every node timed on real tensors (:mod:`fxflops.pipeline.latency`)."""
    device = model_device(model)
    args, kwargs = real_example((args, kwargs), device)
    try:
        if report.capture == Capture.DYNAMO:
            timed = time_dynamo(model, args, kwargs, device, len(report.graph_modules) > 1, mode=report.shape_mode,
                                repeats=repeats)
        elif report.capture == Capture.RECORD:  # recorded again on real tensors: a meta recording holds meta constants
            gm = capture_record(model, args, kwargs, record_leaf, meta=False).graph_module
            timed = time_fx(gm, (*args, *kwargs.values()), device, repeats=repeats)
        else:
            gm = report.graph_modules[0]
            timed = time_fx(gm, placeholder_values(gm, model, args, kwargs), device, repeats=repeats)
    except FxFlopsError:
        raise
    except Exception as exc:  # noqa: BLE001 - the count is done; say why the timing run failed, in the user's terms
        raise FxFlopsError(
            f"measure=True could not run {type(model).__name__} on real tensors on {device}: {first_line(exc)}. "
            "What to do: pass a real example on the model's device (a meta tensor is replaced by a random one, "
            "but not inside other objects such as a KV cache), or leave measure off."
        ) from exc
    nodes = [replace(n) for n in report.nodes]
    done = apply_timings(nodes, timed.medians())
    ops = sum(n.kind in OP_KINDS for n in nodes)
    missed = f" ({ops - done} of {ops} op nodes had no counterpart in the timed run)" if done < ops else ""
    total = sum(n.measured for n in nodes if n.measured is not None)
    note = (f"measured on {device}: each node's median of {repeats} runs; they sum to {1e3 * total:.3g} ms, the timed "
            f"forward took {1e3 * statistics.median(timed.forwards):.3g} ms{missed}")
    return replace(report, nodes=nodes, modules=module_rows(model, nodes), measured_on=str(device),
                   notes=[*report.notes, note])
