"""Notebook display: a short ``repr`` and a short HTML table for the report and what is made from it."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
import torch
import torchvision

import fxflops
from fxflops.units import human, seconds


class _Cells(HTMLParser):
    """The text of every table cell, and a check that every tag opened is closed."""

    def __init__(self):
        super().__init__()
        self.open, self.cells, self._in = [], [], False

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)
        self._in = tag in ("td", "th")
        if self._in:
            self.cells.append("")

    def handle_endtag(self, tag):
        assert self.open.pop() == tag
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.cells[-1] += data


def cells(text: str) -> list[str]:
    p = _Cells()
    p.feed(text)
    assert p.open == []
    return p.cells


@pytest.fixture(scope="module")
def resnet18():
    return fxflops.trace_flops(torchvision.models.resnet18().eval(), torch.randn(1, 3, 224, 224))


def test_report(resnet18):
    assert len(repr(resnet18)) < 200
    got = cells(resnet18._repr_html_())
    top = resnet18.top(5)
    assert [n.name for n in top] == [got[got.index(n.name)] for n in top]
    assert human(resnet18.total_flops) in resnet18._repr_html_()
    costliest = max((m for m in resnet18.modules.values() if m.depth), key=lambda m: m.flops)
    assert got[got.index(costliest.path) + 3] == human(costliest.flops)


def test_roofline(resnet18):
    est = resnet18.roofline("a100")
    assert repr(est) == f"<Roofline ResNet on a100: {seconds(est.total_time)}, {len(est.nodes)} nodes>"
    got = cells(est._repr_html_())
    name, e = max(((p, e) for p, e in est.modules.items() if p and "." not in p), key=lambda pe: pe[1].time)
    assert got[got.index(name) + 1] == seconds(e.time)


def test_audit_memory_compare_sweep(resnet18):
    a = resnet18.audit()
    assert repr(a) == f"<Audit ResNet: {len(a.rows)} targets, 0 not fully priced>"
    assert "counted" in cells(a._repr_html_())
    model = torchvision.models.resnet18()
    m = fxflops.trace_flops(model, torch.randn(2, 3, 64, 64), mode="train").memory("adam")
    assert repr(m).startswith("<Memory params ") and len(repr(m)) < 200
    got = cells(m._repr_html_())
    assert got[got.index("optimizer state") + 1] == f"{human(m.optimizer)}B"
    other = fxflops.trace_flops(torchvision.models.resnet34().eval(), torch.randn(1, 3, 224, 224))
    c = fxflops.compare(resnet18, other)
    got = cells(c._repr_html_())
    assert "· layer3" in got and human(other.modules["layer3"].flops) in got
    s = fxflops.sweep(lambda H: (model.eval(), torch.randn(1, 3, H, H)), H=[32, 64, 96, 128])
    assert repr(s) == f"<Sweep over H: 4 points; {s.formula('macs')}>"
    assert str(s.formula("flops")) in s._repr_html_()
    assert f"{s.reports[2].total_flops:,}" in cells(s._repr_html_())
