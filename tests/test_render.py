"""The drawn graph, read back from the SVG that Graphviz writes (it is XML): nodes, cluster subtotals,
collapsed and rolled nodes, markings and the legend. Expected numbers come from the report's own
per-module table or from hand counts, never from the renderer."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn
import torchvision

import fxflops
from fxflops.draw import style as st
from fxflops.cli import main
from fxflops.draw.dot import choose_view
from fxflops.passes.records import node_records
from fxflops.report import Report
from fxflops.units import human
from tiny_transformer import TinyEncoder
from conftest import needs_dot

NS = {"svg": "http://www.w3.org/2000/svg", "xlink": "http://www.w3.org/1999/xlink"}
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"


@dataclass
class Drawn:
    title: str  # the DOT id: node name, module/PATH, cluster_PATH
    text: str  # every text line of its label, joined by " | "
    tooltip: str
    fill: str
    stroke: str
    font_size: float


def _read(path) -> tuple[dict[str, Drawn], dict[str, Drawn], str]:
    """(nodes, clusters, graph title text) of a Graphviz SVG."""
    root = ET.parse(path).getroot()
    out: dict[str, dict[str, Drawn]] = {"node": {}, "cluster": {}}
    for g in root.iter("{%s}g" % NS["svg"]):
        cls = g.get("class")
        if cls not in out:
            continue
        title = g.find("svg:title", NS).text
        texts = [t.text or "" for t in g.iter("{%s}text" % NS["svg"])]
        link = next((a for a in g.iter("{%s}a" % NS["svg"]) if a.get(XLINK_TITLE)), None)
        shape = next((s for s in g.iter() if s.tag.rsplit("}", 1)[-1] in ("path", "polygon") and s.get("fill")), None)
        sizes = [float(t.get("font-size")) for t in g.iter("{%s}text" % NS["svg"]) if t.get("font-size")]
        out[cls][title] = Drawn(title, " | ".join(texts), link.get(XLINK_TITLE) if link is not None else "",
                                shape.get("fill") if shape is not None else "",
                                shape.get("stroke") if shape is not None else "", max(sizes, default=0.0))
    head = root.find("svg:g", NS)  # the graph's own label sits before any node or cluster
    graph_title = " | ".join(t.text or "" for t in _own_texts(head))
    return out["node"], out["cluster"], graph_title


def _own_texts(graph: ET.Element) -> list[ET.Element]:
    """Text elements of the graph label: those not inside a node, edge or cluster group."""
    inner = {id(t) for g in graph.iter("{%s}g" % NS["svg"]) if g.get("class") in ("node", "edge", "cluster")
             for t in g.iter("{%s}text" % NS["svg"])}
    return [t for t in graph.iter("{%s}text" % NS["svg"]) if id(t) not in inner]


def _drawn_ops(nodes: dict[str, Drawn]) -> dict[str, Drawn]:
    return {k: v for k, v in nodes.items() if not k.startswith("legend_")}


@pytest.fixture(scope="module")
def resnet18():
    return fxflops.trace_flops(torchvision.models.resnet18(), torch.randn(1, 3, 224, 224))


@pytest.fixture(scope="module")
def resnet50():
    with torch.device("meta"):
        model = torchvision.models.resnet50()
    return fxflops.trace_flops(model, torch.empty(1, 3, 224, 224, device="meta"))


@pytest.fixture(scope="module")
def tiny():
    return fxflops.trace_flops(TinyEncoder(layers=4), torch.zeros(2, 16, dtype=torch.long), strict=True)


def _pct(part: int, whole: int) -> str:
    return st.pct(part / whole)


@needs_dot
def test_every_counted_node_appears_with_its_cost(resnet18, tmp_path):
    resnet18.render(tmp_path / "r.svg", depth=None)
    nodes, clusters, title = _read(tmp_path / "r.svg")
    drawn = _drawn_ops(nodes)
    assert set(drawn) == {n.name for n in resnet18.nodes}  # ResNet has no scalar-only nodes to hide
    total = resnet18.total_flops
    for n in resnet18.nodes:
        if n.status == "counted":
            d = drawn[n.name]
            assert f"{human(n.flops)} FLOPs · {_pct(n.flops, total)}" in d.text, d.text
            assert "×".join(map(str, n.output_shapes[0])) in d.text
            assert n.module_path in d.tooltip  # the module path is on hover, not in the label
    assert f"{human(total)} FLOPs" in title and "ResNet" in title


@needs_dot
def test_scalar_nodes_are_hidden_unless_asked(tiny, tmp_path):
    scalars = [n.name for n in tiny.nodes if n.kind.startswith("call") and not n.output_shapes and not n.flops]
    assert len(scalars) >= 4 * 4  # x.shape unpacking in each attention: getattr + 3 getitem
    tiny.render(tmp_path / "a.svg", depth=None)
    tiny.render(tmp_path / "b.svg", depth=None, hide_scalars=False, show_params=True)
    hidden, _, title = _read(tmp_path / "a.svg")
    shown, _, _ = _read(tmp_path / "b.svg")
    assert set(_drawn_ops(shown)) == {n.name for n in tiny.nodes}
    # The positional-embedding parameter is folded into the add that first uses it.
    assert set(_drawn_ops(hidden)) == {n.name for n in tiny.nodes} - set(scalars) - {"pos"}
    assert f"params {16 * 32}" in hidden["add"].tooltip and "params 0" in shown["add"].tooltip
    assert f"{len(scalars)} scalar nodes hidden" in title and "1 parameter inputs folded" in title


@needs_dot
def test_cluster_titles_carry_the_module_subtotals(resnet18, tmp_path):
    resnet18.render(tmp_path / "r.svg", depth=None)
    _, clusters, _ = _read(tmp_path / "r.svg")
    modules = resnet18.modules
    # Clusters are the modules that have submodules; leaf modules are drawn as single nodes.
    expected = {p for p in modules if p and any(q.startswith(p + ".") for q in modules)}
    assert set(clusters) - {"cluster_legend"} == {"cluster_" + p for p in expected}
    for p in expected:
        text = clusters["cluster_" + p].text
        assert [t.strip() for t in text.split("|")][:2] == [p, modules[p].type]
        assert f"{human(modules[p].flops)} FLOPs · {_pct(modules[p].flops, resnet18.total_flops)}" in text


@needs_dot
def test_collapsed_nodes_carry_the_sum_of_what_they_hide(resnet50, tmp_path):
    resnet50.render(tmp_path / "r.svg", depth=2)
    nodes, clusters, title = _read(tmp_path / "r.svg")
    drawn = _drawn_ops(nodes)
    blocks = [p for p, m in resnet50.modules.items() if m.depth == 2]
    assert len(blocks) == 3 + 4 + 6 + 3  # the Bottlenecks of ResNet-50
    # input, conv1, bn1, relu, maxpool, 16 blocks, avgpool, flatten, fc, output
    assert len(drawn) == 25
    for p in blocks:
        d = drawn["module/" + p]
        hidden = [n for n in resnet50.nodes if n.module_path == p or n.module_path.startswith(p + ".")]
        assert f"{human(resnet50.modules[p].flops)} FLOPs" in d.text
        assert f"{len(hidden)} nodes collapsed" in d.tooltip
        assert sum(n.flops for n in hidden) == resnet50.modules[p].flops
    assert set(clusters) == {"cluster_legend", "cluster_layer1", "cluster_layer2", "cluster_layer3", "cluster_layer4"}
    assert "collapsed at depth 2" in title


@pytest.mark.parametrize("depth", [0, 1, 2, 3, None])
@pytest.mark.parametrize("roll", [False, True])
def test_every_view_keeps_the_totals(tiny, depth, roll):
    g = tiny.to_networkx()
    view = choose_view(g, depth=depth, roll=roll)
    assert sum(v.flops for v in view.nodes.values()) == tiny.total_flops
    assert sum(v.macs for v in view.nodes.values()) == tiny.total_macs
    # Rolled copies are folded into their first block but still counted there.
    members = sorted(m for v in view.nodes.values() for m in v.members)
    assert members == sorted(n for n, a in g.nodes(data=True) if a["output_shapes"] or a["flops"]
                             or not a["kind"].startswith("call"))


@needs_dot
def test_roll_folds_identical_layers_into_one_cluster(tiny, tmp_path):
    tiny.render(tmp_path / "r.svg", depth=None, roll=True)
    nodes, clusters, _ = _read(tmp_path / "r.svg")
    rolled = clusters["cluster_layers.0"]
    assert rolled.text.startswith("layers.0…3 ×4")
    four = sum(tiny.modules[f"layers.{i}"].flops for i in range(4))
    assert f"{human(four)} FLOPs" in rolled.text and "sum of the 4 blocks" in rolled.text
    assert not any(c.startswith(("cluster_layers.1", "cluster_layers.2", "cluster_layers.3")) for c in clusters)
    # Nodes of layers 1-3 are folded onto those of layer 0, which carry 4x their own cost.
    drawn = _drawn_ops(nodes)
    assert not any(n.module_path.startswith("layers.1") and n.name in drawn for n in tiny.nodes)
    mlp0 = tiny.graph_module.graph.find_nodes(op="call_module", target="layers.0.mlp.0")[0].name
    one = next(n.flops for n in tiny.nodes if n.name == mlp0)
    assert f"{human(4 * one)} FLOPs" in drawn[mlp0].text
    assert "legend_rolled" in nodes


@needs_dot
def test_roll_at_depth_2_on_resnet50(resnet50, tmp_path):
    resnet50.render(tmp_path / "r.svg", depth=2, roll=True)
    nodes, _, _ = _read(tmp_path / "r.svg")
    drawn = _drawn_ops(nodes)
    # In each stage block 0 downsamples; the others are identical and roll together.
    for stage, n in ((1, 3), (2, 4), (3, 6), (4, 3)):
        d = drawn[f"module/layer{stage}.1"]
        assert f"layer{stage}.1…{n - 1} ×{n - 1}" in d.text
        rest = sum(resnet50.modules[f"layer{stage}.{i}"].flops for i in range(1, n))
        assert f"{human(rest)} FLOPs" in d.text
        assert f"module/layer{stage}.0" in drawn and f"module/layer{stage}.2" not in drawn
    assert len(drawn) == 25 - (2 + 3 + 5 + 2) + 4


@needs_dot
def test_markings_heat_zero_cost_uncounted_top(tmp_path):
    class NoRule(nn.Module):
        def forward(self, x):
            return x * 2

    def broken(call):
        raise NotImplementedError("no formula yet")

    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 8), NoRule(), nn.Flatten())
    with pytest.warns(UserWarning, match="no FLOPs rule"):  # a rule that fails leaves its node uncounted
        report = fxflops.trace_flops(model, torch.randn(4, 8), custom_rules={NoRule: broken})
    assert [n.status for n in report.nodes if n.name == "_3"] == ["uncounted"]
    report.render(tmp_path / "m.svg", depth=None, top=2)
    nodes, _, _ = _read(tmp_path / "m.svg")
    lin0, relu, lin2, norule, flat = (nodes[n] for n in ("_0", "_1", "_2", "_3", "_4"))
    # By hand: a linear is 2·B·in·out + B·out (bias) FLOPs, the ReLU one per element.
    f_lin0, f_relu, f_lin2 = 2 * 4 * 8 * 64 + 4 * 64, 4 * 64, 2 * 4 * 64 * 8 + 4 * 8
    assert report.total_flops == f_lin0 + f_relu + f_lin2
    assert "#1 linear" in lin0.text and "#2 linear" in lin2.text and "#" not in relu.text
    assert lin0.stroke == lin2.stroke == st.TOP_LINE
    assert lin0.fill == st.heat(1.0)  # the costliest node takes the top of the scale
    assert lin2.fill == st.heat(st.heat_position(f_lin2, f_lin0)) != lin0.fill
    assert relu.fill == st.heat(st.heat_position(f_relu, f_lin0))
    assert norule.stroke == st.UNCOUNTED_LINE and "no rule" in norule.text
    assert flat.fill == st.ZERO_FILL and flat.font_size < lin0.font_size
    assert {"legend_scale", "legend_zero", "legend_uncounted", "legend_top"} <= set(nodes)


@needs_dot
def test_legend_shows_the_scale(resnet18, tmp_path):
    resnet18.render(tmp_path / "r.svg", depth=None)
    nodes, clusters, _ = _read(tmp_path / "r.svg")
    assert "cluster_legend" in clusters
    scale = nodes["legend_scale"].text
    assert scale.startswith("FLOPs share per node")
    top_share = max(n.flops for n in resnet18.nodes) / resnet18.total_flops
    assert st.pct(top_share) in scale and "legend_uncounted" not in nodes


def test_heat_scale_runs_light_to_dark():
    def luminance(c: str) -> float:
        r, g, b = (int(c[i:i + 2], 16) for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    stops = [st.heat(i / 20) for i in range(21)]
    assert stops[0] == "#fcfdbf" and stops[-1] == "#3b0f70"
    assert all(luminance(a) > luminance(b) for a, b in zip(stops, stops[1:]))
    assert st.heat_position(0.5, 0.5) == 1.0 and st.heat_position(0.0005, 0.5) == 0.0
    assert st.text_colour(st.heat(1.0)) == "#ffffff" and st.text_colour(st.heat(0.0)) == "#000000"


@needs_dot
def test_big_graphs_are_reduced_and_say_so(tiny, tmp_path):
    full = choose_view(tiny.to_networkx())
    view = choose_view(tiny.to_networkx(), max_nodes=20)
    assert len(full.nodes) > 20 >= len(view.nodes) and view.rolled
    tiny.render(tmp_path / "r.svg", depth=None, max_nodes=20)
    _, _, title = _read(tmp_path / "r.svg")
    assert f"{len(full.nodes)} nodes is more than max_nodes=20" in title
    assert f"({len(view.nodes)} nodes drawn)" in title


@needs_dot
def test_several_graphs_render_together(tmp_path):
    # fresh reports: recording a graph's nodes again re-labels the records they hold (a fixture's would change)
    gms = [fxflops.trace_flops(torchvision.models.resnet18(), torch.randn(1, 3, 224, 224)).graph_module,
           fxflops.trace_flops(TinyEncoder(layers=4), torch.zeros(2, 16, dtype=torch.long)).graph_module]
    nodes = node_records(gms[0], prefix="g0.") + node_records(gms[1], prefix="g1.", graph=1)
    report = Report("two", nodes, {}, [], "dynamo", "fake", graph_modules=gms)
    report.render(tmp_path / "r.svg", depth=None)
    drawn = _drawn_ops(_read(tmp_path / "r.svg")[0])
    assert {"g0.conv1", "g0.fc", "g1.head"} <= set(drawn)


@needs_dot
def test_formats_dot_and_cli(resnet18, tmp_path, capsys):
    assert resnet18.render(tmp_path / "r.png", depth=1).read_bytes().startswith(b"\x89PNG")
    assert resnet18.render(tmp_path / "r.pdf", depth=1).read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match="suffix"):
        resnet18.render(tmp_path / "r.jpeg", depth=None)
    dot = resnet18.to_dot(depth=1)
    assert dot.startswith("digraph") and '"module/layer1"' in dot and "subgraph cluster_legend" in dot
    assert main(["torchvision:resnet18", "--svg", str(tmp_path / "cli.svg"), "--depth", "1", "--top", "2"]) == 0
    drawn = _drawn_ops(_read(tmp_path / "cli.svg")[0])
    assert {"module/layer1", "module/layer4", "module/fc"} <= set(drawn)
    assert sum(d.text.startswith("#") for d in drawn.values()) == 2
    assert "graph written to" in capsys.readouterr().err


@needs_dot
def test_partly_priced_nodes_are_marked(tmp_path):
    """A leaf module no rule knows is priced through the dynamo fallback; an op inside it that has
    no rule leaves it partly priced, drawn with a dashed red outline."""
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)

        def forward(self, x):
            return torch.fft.rfft(self.fc(x)).abs()

    report = fxflops.trace_flops(nn.Sequential(Mixed(), nn.Flatten()), torch.randn(4, 16), leaf_modules=[Mixed])
    partial = [n for n in report.nodes if n.status == fxflops.Status.PARTIAL]
    assert [n.name for n in partial] == ["_0"] and partial[0].left_out == ["fft_rfft"]
    report.render(tmp_path / "s.svg", depth=None)
    nodes, _, _ = _read(tmp_path / "s.svg")
    assert nodes["_0"].stroke == st.UNCOUNTED_LINE and "partly uncounted" in nodes["_0"].text
    assert "legend_partial" in nodes and "legend_uncounted" not in nodes


@pytest.fixture(scope="module")
def tiny_both():
    model = TinyEncoder(layers=4).eval()
    ids = torch.zeros(2, 16, dtype=torch.long)
    return {capture: fxflops.trace_flops(model, ids, capture=capture) for capture in ("fx", "dynamo")}


@needs_dot
@pytest.mark.parametrize("options", [{}, {"depth": 2}, {"roll": True}, {"depth": 3, "roll": True}])
def test_both_capture_paths_look_the_same(tiny_both, options, tmp_path):
    """The dynamo capture (which reuses layer 0 for layers 1-3) draws the same clusters, collapsed
    modules and costly ops as torch.fx, with the same numbers."""
    drawn = {}
    for capture, report in tiny_both.items():
        report.render(tmp_path / f"{capture}.svg", **{"depth": None, **options})
        nodes, clusters, _ = _read(tmp_path / f"{capture}.svg")
        ops = sorted(d.text for k, d in _drawn_ops(nodes).items() if "FLOPs" in d.text and k.startswith("module/"))
        costly = sorted(d.text for d in _drawn_ops(nodes).values() if "FLOPs ·" in d.text)
        drawn[capture] = (sorted(c.text for c in clusters.values()), ops, costly)
    assert drawn["fx"] == drawn["dynamo"]


@needs_dot
def test_graph_breaks_are_drawn_in_order(tmp_path):
    """A data-dependent branch splits the dynamo capture in two graphs; the picture links them."""
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            y = self.a(x)
            if y.sum().item() > 0:
                y = y * 2
            return self.b(y)

    report = fxflops.trace_flops(Branchy(), torch.randn(4, 8), capture="dynamo")
    assert len(report.graph_modules) == 2
    g = report.to_networkx()
    assert {a["graph"] for _, a in g.nodes(data=True)} == {0, 1}
    assert not any(g.nodes[u]["graph"] != g.nodes[v]["graph"] for u, v in g.edges)  # no data flows between them
    report.render(tmp_path / "b.svg", depth=None)
    root = ET.parse(tmp_path / "b.svg").getroot()
    breaks = [e.find("svg:title", NS).text for e in root.iter("{%s}g" % NS["svg"])
              if e.get("class") == "edge" and "graph break" in "".join(t.text or "" for t in e.iter("{%s}text" % NS["svg"]))]
    g1_inputs = [n for n, a in g.nodes(data=True) if a["kind"] == "placeholder" and a["graph"] == 1]
    assert len(g1_inputs) == 1 and breaks == [f"g0.output->{g1_inputs[0]}"]
    drawn = _drawn_ops(_read(tmp_path / "b.svg")[0])
    by_hand = 2 * (2 * 4 * 8 * 8 + 4 * 8)  # two linears: 2·B·in·out + bias
    assert sum(n.flops for n in report.nodes if n.op == "linear") == by_hand
    assert all(n.name in drawn for n in report.nodes if n.flops)


@needs_dot
def test_edges_across_most_of_the_graph_go_to_a_reference(tmp_path):
    """An input read again 70 layers later is drawn a second time next to its far reader."""
    class LongSkip(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(*[nn.Linear(4, 4) for _ in range(70)])

        def forward(self, x):
            return self.body(x) + x

    report = fxflops.trace_flops(LongSkip(), torch.randn(2, 4))
    report.render(tmp_path / "l.svg", depth=None)
    nodes, _, title = _read(tmp_path / "l.svg")
    root = ET.parse(tmp_path / "l.svg").getroot()
    # Graphviz titles an edge aimed at a port "tail->head:ne" (edges entering a cluster, see below).
    edges = {e.find("svg:title", NS).text.removesuffix(":ne") for e in root.iter("{%s}g" % NS["svg"])
             if e.get("class") == "edge"}
    assert "x->add" not in edges and "ref/x/->add" in edges and "x->body_0" in edges
    assert nodes["ref/x/"].text.startswith("↪ x")
    assert "1 edges spanning more than 60 nodes" in title
    assert {n.name for n in report.nodes} <= set(nodes)


def _dot_edges(src: str) -> list[tuple[str, str, str]]:
    """(tail, head, attributes) of every edge in DOT text."""
    return re.findall(r'^\t+"?([^"\s]+)"? -> "?([^"\s]+)"? \[(.*)\]$', src, re.M)


def test_a_long_chain_is_wrapped_into_columns_cut_between_modules(resnet50):
    from fxflops.draw.columns import FIT_SCALE, fit, layout, wrap_breaks
    from fxflops.draw.dot import _graph, _short_edges, _sizes, choose_view

    view = choose_view(_graph(resnet50), depth=2)
    edges, refs, _ = _short_edges(view)
    lay = layout(view, edges, _sizes(view, "flops"), refs)
    breaks = wrap_breaks(lay)
    # 25 ranks in one column (over 2,000 pt) must shrink to a third; cut between modules, the columns fit the window
    # shrunk by at most FIT_SCALE (render then scales them to it).
    assert wrap_breaks(lay, columns=1) == [] and fit(lay, []) < 0.4
    assert len(breaks) >= 3 and not any(lay.crossed(b) for b in breaks) and fit(lay, breaks) >= FIT_SCALE
    cut = [(u, v) for u, v, attrs in _dot_edges(resnet50.to_dot(depth=2)) if 'constraint=false' in attrs]
    # Every cut is between two top-level blocks (a stage and the next, the stem and layer1, layer4 and the pool)...
    assert len(cut) == len(breaks)
    for u, v in cut:
        assert u.split("/")[-1].split(".")[0] != v.split("/")[-1].split(".")[0], (u, v)
    # ...and one column is the old tall strip.
    assert "constraint=false" not in resnet50.to_dot(depth=2, columns=1)
    with pytest.raises(ValueError, match="columns must be 1 or more"):
        resnet50.to_dot(depth=None, columns=0)


@needs_dot
def test_the_default_layout_fits_a_screen(resnet50, tmp_path):
    def size(path):
        w, h = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', path.read_text()).groups()
        return int(w), int(h)

    w, h = size(resnet50.render(tmp_path / "r.svg", depth=2, top=5))
    tall_w, tall_h = size(resnet50.render(tmp_path / "tall.svg", depth=2, top=5, columns=1))
    assert tall_h > 2 * 750 and tall_h > 3 * tall_w  # the strip the issue was about (537×2022 pt)
    assert w <= 1050 and h <= 750  # a 1400×1000 px window at 96 dpi


def test_the_legend_swatch_is_filled_as_the_collapsed_nodes_are(resnet50):
    src = resnet50.to_dot(depth=2)
    fill = dict(re.findall(r'^\t+"?([^"\s]+)"? \[[^\]]*?fillcolor="(#[0-9a-f]+)"', src, re.M))
    collapsed = {k: v for k, v in fill.items() if k.startswith("module/")}
    assert len(collapsed) == 16  # ResNet-50's 3+4+6+3 bottlenecks
    # The costliest collapsed node (layer2.0, 9.1% of the FLOPs) sets the swatch; the old swatch was heat(0.5).
    assert fill["legend_module"] == collapsed["module/layer2.0"] != st.heat(0.5)


def test_forward_defaults_nothing_reads_are_not_drawn():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x, attn_mask=None, is_causal=False):
            return self.fc(x)

    report = fxflops.trace_flops(Block(), torch.randn(2, 8))
    inputs = {n.name.rstrip("_1") for n in report.nodes if n.kind == "placeholder"}  # fx names them attn_mask_1
    assert inputs == {"x", "attn_mask", "is_causal"}
    src = report.to_dot(depth=None)
    assert "input</b>&#160;x" in src and "attn_mask" not in src and "is_causal" not in src


@pytest.mark.parametrize("depth", [None, 2])
def test_top_k_marks_the_nodes_the_top_table_lists(resnet50, depth):
    from fxflops.draw.dot import _graph, choose_view

    view = choose_view(_graph(resnet50), depth=depth, top=5)
    marked = {i for vn in view.nodes.values() for i in vn.ranks}
    assert marked == {1, 2, 3, 4, 5}
    for i, rec in enumerate(resnet50.top(5), 1):
        (holder,) = [vn for vn in view.nodes.values() if rec.name in vn.members]
        assert i in holder.ranks
    if depth == 2:  # conv1 (236M FLOPs) is #1, then the 3×3 convs of layer1.0, 1.1, 1.2 and layer2.0 (231M each)
        src = resnet50.to_dot(depth=2, top=5)
        assert re.search(r"^\t+conv1 \[label=<<b>#1 conv2d", src, re.M | re.S)
        for i, block in enumerate(("layer1.0", "layer1.1", "layer1.2", "layer2.0"), 2):
            assert re.search(rf'^\t+"module/{re.escape(block)}" \[label=<<b>#{i} ', src, re.M | re.S), block


def test_edges_into_a_cluster_pass_right_of_its_title(resnet18):
    src = resnet18.to_dot(depth=None)
    edges = {(u, v): attrs for u, v, attrs in _dot_edges(src)}
    # layer1.0's first op is entered from the stem: aimed at its right corner, past the left-justified title...
    assert "headport=ne" in edges[("maxpool", "layer1_0_conv1")]
    # ...while the residual into layer1.0's add, lower down, and edges within a cluster keep the plain head.
    assert "headport" not in edges[("maxpool", "add")]
    assert "headport" not in edges[("layer1_0_conv1", "layer1_0_bn1")]
    assert 'labeljust=l' in src


def test_a_long_report_note_is_shortened_in_the_picture_title_only():
    from fxflops.draw.dot import _title_note

    note = ("fx could not trace <root> (BertModel): AttributeError: 'NoneType' object has no attribute 'get' at "
            "/site-packages/transformers/utils/generic.py:1127 in wrapper: elif kwargs.get(arg_name):; used record")
    assert _title_note(note) == ("fx could not trace <root> (BertModel): AttributeError: 'NoneType' object has no "
                                 "attribute 'get'; used record")
    assert _title_note("x" * 400).endswith("…") and len(_title_note("x" * 400)) == 150
    assert _title_note("dynamo split the model into 3 graphs") == "dynamo split the model into 3 graphs"
