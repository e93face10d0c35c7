"""The module icicle and the sweep curve: geometry from the report's rows, files written, clear errors."""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest
import torch
import torch.nn as nn

from fxflops import FxFlopsError, sweep, trace_flops
from fxflops.draw.charts import icicle_blocks


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(16, 32), nn.ReLU())
        self.b = nn.Linear(32, 8)

    def forward(self, x):
        return self.b(self.a(x)) * 2  # the mul is the root's own work: the gap at the right of the root


def test_icicle_blocks_nest_children_inside_parents() -> None:
    r = trace_flops(Net(), torch.randn(4, 16))
    blocks = {p: (d, x, w) for p, d, x, w in icicle_blocks(r, depth=2)}
    a, relu_free = 4 * (2 * 16 * 32 + 32), 4 * 32  # linear: 2·MACs + bias; ReLU 1 per element
    assert blocks["a.0"] == (2, 0.0, a) and blocks["a.1"] == (2, a, relu_free)
    assert blocks["a"] == (1, 0.0, a + relu_free)
    assert blocks["b"] == (1, a + relu_free, 4 * (2 * 32 * 8 + 8))
    assert blocks[""][2] == r.total_flops == a + relu_free + blocks["b"][2] + 4 * 8  # + the root's mul
    assert set(icicle_blocks(r, depth=1)) == {(p, d, x, w) for p, (d, x, w) in blocks.items() if d <= 1}


def test_module_chart_png_and_svg(tmp_path) -> None:
    r = trace_flops(Net(), torch.randn(4, 16))
    png = r.chart(tmp_path / "net.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    svg = r.chart(tmp_path / "net.svg", depth=1)
    texts = [t.text or "" for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert "Net (4×16): FLOPs by module" in texts and "a" in " ".join(texts)
    with pytest.raises(FxFlopsError, match="end the path in .png, .svg or .pdf"):
        r.chart(tmp_path / "net.jpg")


def test_sweep_chart_with_and_without_a_fit(tmp_path) -> None:
    lin = nn.Sequential(nn.Linear(8, 8)).eval()
    s = sweep(lambda T: (lin, torch.randn(T, 8)), T=[1, 2, 4, 8])
    assert s.chart(tmp_path / "fit.png", metric="macs").stat().st_size > 10_000
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2)).eval()
    bad = sweep(lambda H: (conv, torch.empty(1, 3, H, H, device="meta")), H=range(8, 14))
    assert not bad.formula("flops").fits
    assert bad.chart(tmp_path / "nofit.png").exists()  # the points alone, titled with the finding


def test_charts_without_matplotlib_say_how_to_install(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = trace_flops(Net(), torch.randn(4, 16))
    with pytest.raises(FxFlopsError, match=r'pip install "fxflops\[plot\]"'):
        r.chart(tmp_path / "net.png")


def test_roofline_chart_warns_of_measured_points_above_the_roof(tmp_path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.axes

    from fxflops import Device

    r = trace_flops(nn.Sequential(nn.Linear(64, 64), nn.ReLU()).eval(), torch.randn(8, 64), measure=True, repeats=1)
    said: list[str] = []
    text = matplotlib.axes.Axes.text
    monkeypatch.setattr(matplotlib.axes.Axes, "text", lambda ax, x, y, s, *a, **k: said.append(s) or text(ax, x, y, s, *a, **k))
    r.roofline(Device(peak_flops=1e3, bandwidth=1e3, name="abacus")).plot(str(tmp_path / "low.png"))  # any run beats it
    assert any(s.startswith("warning: 2 measured point(s) above the roof") for s in said), said
    said.clear()
    r.roofline(Device(peak_flops=1e18, bandwidth=1e18, name="oracle")).plot(str(tmp_path / "high.png"))
    assert said and not any(s.startswith("warning") for s in said), said
