"""The default picture as dot lays it out, read back from ``dot -Tjson``: columns read left to right in execution
order, every label lies inside its box, the cost-guided depth opens the blocks that hold the FLOPs, and the picture
fits a 1400×1000 window without shrinking past legibility. Real models, built on the meta device (no weights)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import torch
import torchvision

import fxflops
from conftest import needs_dot
from fxflops.draw.columns import MIN_SCALE

WINDOW = (1050, 750)  # points: 1400×1000 pixels at 96 dpi


def _vision(name: str) -> fxflops.Report:
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None).eval()
    return fxflops.trace_flops(model, torch.empty(1, 3, 224, 224, device="meta"))


def _bert() -> fxflops.Report:
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    with torch.device("meta"):
        model = transformers.BertModel(transformers.BertConfig()).eval()
    return fxflops.trace_flops(model, {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")})


def _llama() -> fxflops.Report:
    """Llama-2-70B's layer shapes; 4 layers instead of 80 (they roll into one block all the same)."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    cfg = transformers.LlamaConfig(num_hidden_layers=4, hidden_size=8192, intermediate_size=28672,
                                   num_attention_heads=64, num_key_value_heads=8)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(cfg).eval()
    return fxflops.trace_flops(model, {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")})


MODELS = {"resnet50": lambda: _vision("resnet50"), "mobilenet_v3_large": lambda: _vision("mobilenet_v3_large"),
          "vit_b_16": lambda: _vision("vit_b_16"), "bert": _bert, "llama": _llama}
# The docs' default pictures: (model, render options).
PICTURES = {
    "resnet50_default": ("resnet50", dict(top=5)),
    "resnet50_depth2": ("resnet50", dict(depth=2, top=3)),
    "mobilenet_v3_bound_default": ("mobilenet_v3_large", dict(color="bound", device="a100")),
    "vit_b_16_default": ("vit_b_16", dict(top=5)),
    "bert_default": ("bert", dict(top=5)),
    "llama_default": ("llama", dict()),
    "vit_b_16_rolled": ("vit_b_16", dict(depth=None, roll=True, top=3)),
    "bert_base_rolled": ("bert", dict(depth=None, roll=True, top=3)),
}


@pytest.fixture(scope="module")
def reports():
    cache: dict[str, fxflops.Report] = {}

    def get(name: str) -> fxflops.Report:
        if name not in cache:
            cache[name] = MODELS[name]()
        return cache[name]

    return get


def _laid_out(src: str) -> dict:
    return json.loads(subprocess.run(["dot", "-Tjson"], input=src.encode(), capture_output=True, check=True).stdout)


def _order(report: fxflops.Report, dot_id: str) -> int:
    """Execution order of a drawn node: an fx node by its name, a collapsed module by its first node."""
    path = dot_id.removeprefix("module/")
    return min(i for i, n in enumerate(report.nodes)
               if n.name == dot_id or (dot_id.startswith("module/") and (n.module_path + ".").startswith(path + ".")))


@needs_dot
@pytest.mark.parametrize("picture", list(PICTURES))
def test_columns_read_left_to_right_in_execution_order(reports, picture):
    """An edge from one column into a later one is one dot does not rank (constraint=false): each lands right of
    where it leaves, which a column drawn left of the one before it would break."""
    model, options = PICTURES[picture]
    report = reports(model)
    js = _laid_out(report.to_dot(**options))
    names = {o["_gvid"]: o["name"] for o in js["objects"]}
    x = {o["name"]: float(o["pos"].split(",")[0]) for o in js["objects"] if "pos" in o}
    cuts = [(names[e["tail"]], names[e["head"]]) for e in js.get("edges", []) if e.get("constraint") == "false"]
    if picture in ("resnet50_default", "resnet50_depth2", "mobilenet_v3_bound_default", "bert_base_rolled"):
        assert len(cuts) >= 2  # too tall for one column
    assert all(_order(report, u) < _order(report, v) for u, v in cuts)
    assert all(x[v] > x[u] + 20 for u, v in cuts), [(u, v, x[u], x[v]) for u, v in cuts]
    graph = [x[n] for n in x if not n.startswith(("legend", "column/"))]
    assert x["legend_scale"] < min(graph)  # the legend stays left of the graph
    if picture == "mobilenet_v3_bound_default":  # the classifier comes after the features, so right of them
        features = [x[n] for n in x if n.startswith("module/features.")]
        assert features and min(x[n] for n in x if n.startswith("module/classifier")) > max(features)


def _front(draw: list[dict]) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a node's box; a 3-D box's front face, without the depth drawn top and right."""
    pts = [p for op in draw if op["op"] in ("P", "p", "b", "B") for p in op["points"]]
    xs, ys = sorted({p[0] for p in pts}), sorted({p[1] for p in pts})
    if any(op["op"] == "L" for op in draw):  # box3d: the depth is the outline's last step right and up
        return xs[0], ys[0], xs[-2], ys[-2]
    return xs[0], ys[0], xs[-1], ys[-1]


def _text_boxes(ldraw: list[dict]) -> list[tuple[str, float, float, float, float]]:
    """Each text line: (text, left, bottom, right, top), with Helvetica's ascent (0.8 em) and descent (0.2 em),
    and 5% more width than dot measures (a browser's Helvetica, Arial or Liberation Sans sets a little wider)."""
    size, out = 14.0, []
    for op in ldraw:
        if op["op"] == "F":
            size = op["size"]
        elif op["op"] == "T":
            # trailing no-break spaces are slack, not ink: only the visible part's share of the width is set
            visible = len(op["text"].rstrip("\xa0")) / max(1, len(op["text"]))
            (x, y), w = op["pt"], op["width"] * 1.05 * visible
            left = {"l": x, "c": x - w / 2, "r": x - w}[op["align"]]
            out.append((op["text"], left, y - 0.2 * size, left + w, y + 0.8 * size))
    return out


@needs_dot
@pytest.mark.parametrize("picture", list(PICTURES))
def test_labels_lie_inside_their_boxes(reports, picture):
    """No name or cost line touches its box's edge: MobileNetV3's ``features`` used to reach the top edge of its
    3-D box, which a browser drew through the text."""
    model, options = PICTURES[picture]
    js = _laid_out(reports(model).to_dot(**options))
    checked = set()
    for o in js["objects"]:
        if o.get("shape") not in ("box", "box3d") or "_ldraw_" not in o or o.get("style", "") == "invis":
            continue
        left, bottom, right, top = _front(o["_draw_"])
        for text, x0, y0, x1, y1 in _text_boxes(o["_ldraw_"]):
            margins = (x0 - left, right - x1, y0 - bottom, top - y1)
            assert min(margins) >= 1.5, (o["name"], text, [round(m, 1) for m in margins])
        checked.add(o["shape"])
    assert "box" in checked and ("box3d" in checked or options.get("depth", "auto") is None)  # every op: no 3-D box
    for o in js["objects"]:  # cluster titles, inside their cluster's box
        if "bb" in o and "_ldraw_" in o and o["name"].startswith("cluster_"):
            left, bottom, right, top = map(float, o["bb"].split(","))
            for text, x0, y0, x1, y1 in _text_boxes(o["_ldraw_"]):
                assert min(x0 - left, right - x1, top - y1) >= 1.5, (o["name"], text)


def _scale(svg: str) -> float:
    found = re.search(r'transform="scale\(([\d.]+) ', svg)
    return float(found.group(1)) if found else 1.0


@needs_dot
@pytest.mark.parametrize("picture", ["resnet50_default", "mobilenet_v3_bound_default", "vit_b_16_default",
                                     "bert_default", "llama_default"])
def test_the_default_picture_fits_the_window_and_stays_legible(reports, picture, tmp_path):
    model, options = PICTURES[picture]
    svg = reports(model).render(tmp_path / "p.svg", **options).read_text()
    w, h = map(float, re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    assert w <= WINDOW[0] and h <= WINDOW[1]
    assert _scale(svg) >= MIN_SCALE - 0.05  # shrunk at most about as far as the layout's estimate allows


def _opened(report: fxflops.Report, **options):
    from fxflops.draw.dot import _graph, choose_view

    color = options.get("color", "flops")
    view = choose_view(_graph(report, color, options.get("device")), "auto", options.get("top", 0), color=color)
    drawn = {vn.path for vn in view.nodes.values() if vn.kind in ("module", "op")}
    return set(view.opened), drawn, view


def test_the_cost_guided_picture_opens_the_blocks_that_hold_the_flops(reports):
    # MobileNetV3: features (93% of the FLOPs) is opened into its blocks, the classifier (1%) stays one box.
    opened, drawn, _ = _opened(reports("mobilenet_v3_large"), color="bound", device="a100")
    assert "features" in opened and "classifier" not in opened and "classifier" in drawn
    assert sum(p.startswith("features.") for p in drawn) >= 10
    # ViT-B/16: the 12 rolled encoder layers are opened into one layer's attention and MLP.
    opened, drawn, view = _opened(reports("vit_b_16"))
    layer = "encoder.layers.encoder_layer_0"
    assert layer in opened and view.clusters[layer].repeat == 12
    assert {"self_attention", "mlp"} <= {p.removeprefix(layer + ".").split(".")[0] for p in drawn | opened
                                         if p.startswith(layer + ".")}
    # ResNet-50: layer3 (36%) is opened; its rolled bottleneck (27%), next in line, is one box of it.
    opened, drawn, _ = _opened(reports("resnet50"))
    assert "layer3" in opened and "layer3.1" in drawn


@pytest.mark.parametrize("model, layer", [("bert", "encoder.layer.0"), ("llama", "model.layers.0")])
def test_the_cost_guided_picture_opens_a_transformer_layer(reports, model, layer):
    """BERT-base and the Llama config: one (rolled) layer opened, its attention and its MLP drawn; the embeddings
    stay one box."""
    report = reports(model)
    opened, drawn, view = _opened(report)
    assert layer in opened and view.clusters[layer].repeat > 1
    attention, mlp = (("attention",), ("intermediate", "output")) if model == "bert" else (("self_attn",), ("mlp",))
    inside = {p.removeprefix(layer + ".").split(".")[0] for p in drawn | opened if p.startswith(layer + ".")}
    assert set(attention) <= inside and set(mlp) <= inside
    assert not any(p.startswith(("embeddings", "model.embed_tokens")) for p in opened)
    assert sum(vn.flops for vn in view.nodes.values()) == report.total_flops


def test_ops_that_read_nothing_hang_below_the_node_before_them(reports):
    """Llama's positions (an ``arange``) and each layer's constant tensors read no drawn node; an invisible edge keeps
    each below the node drawn before it. From the input instead, the edges into the last layers spanned the whole
    graph, and on Llama-70B's every op dot ran for minutes routing them."""
    from fxflops.draw.dot import LONG_EDGE

    report = reports("llama")
    src = report.to_dot(depth=None, max_nodes=None)
    hung = [(u, v) for u, v in re.findall(r'^\t+"?([^"\s]+)"? -> "?([^"\s]+)"? \[style=invis', src, re.M)
            if not u.startswith(("legend", "column/"))]
    assert len(hung) > 4  # the positions, and constants in every layer
    assert all(0 < _order(report, v) - _order(report, u) <= LONG_EDGE for u, v in hung), hung
