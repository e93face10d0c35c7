"""The networkx export: one node per fx node, costs that add up to the report, edges along data flow."""
from __future__ import annotations

import networkx as nx
import pytest
import torch
import torchvision

import fxflops
from fxflops.passes.records import node_records
from fxflops.report import Report
from tiny_transformer import TinyEncoder

ATTRS = ("op", "target", "module_path", "input_shapes", "output_shapes", "dtype", "macs", "flops", "params",
         "rule", "status", "kind")


@pytest.fixture(scope="module")
def resnet18():
    model = torchvision.models.resnet18()
    return model, fxflops.trace_flops(model, torch.randn(1, 3, 224, 224))


@pytest.fixture(scope="module")
def tiny():
    model = TinyEncoder(layers=2)
    return model, fxflops.trace_flops(model, torch.zeros(2, 16, dtype=torch.long), strict=True)


@pytest.fixture(params=["resnet18", "tiny"])
def case(request):
    return request.getfixturevalue(request.param)


def test_one_node_per_fx_node(case):
    _, report = case
    g = report.to_networkx()
    fx_nodes = list(report.graph_module.graph.nodes)
    assert g.number_of_nodes() == len(fx_nodes)
    assert set(g.nodes) == {n.name for n in fx_nodes}
    kinds = nx.get_node_attributes(g, "kind")
    assert sum(k == "placeholder" for k in kinds.values()) == sum(n.op == "placeholder" for n in fx_nodes) >= 1
    assert sum(k == "output" for k in kinds.values()) == 1
    for _, attrs in g.nodes(data=True):
        assert set(ATTRS) <= set(attrs)


def test_costs_add_up_to_the_totals(case):
    model, report = case
    g = report.to_networkx()
    assert sum(nx.get_node_attributes(g, "flops").values()) == report.total_flops > 0
    assert sum(nx.get_node_attributes(g, "macs").values()) == report.total_macs > 0
    # Every parameter is used once by the graph, so node params add up to the model's own count.
    assert sum(nx.get_node_attributes(g, "params").values()) == sum(p.numel() for p in model.parameters())


def test_acyclic_and_edges_follow_data_flow(case):
    _, report = case
    g = report.to_networkx()
    assert nx.is_directed_acyclic_graph(g)
    for node in report.graph_module.graph.nodes:
        assert set(g.predecessors(node.name)) == {a.name for a in node.all_input_nodes}
        assert set(g.successors(node.name)) == {u.name for u in node.users}
    order = nx.get_node_attributes(g, "order")
    assert all(order[u] < order[v] for u, v in g.edges)


def test_resnet18_by_hand(resnet18):
    _, report = resnet18
    g = report.to_networkx()
    conv1 = g.nodes["conv1"]
    assert conv1["op"] == "conv2d" and conv1["module_path"] == "conv1" and conv1["kind"] == "call_module"
    assert conv1["input_shapes"] == [(1, 3, 224, 224)] and conv1["output_shapes"] == [(1, 64, 112, 112)]
    assert conv1["macs"] == 64 * 112 * 112 * 3 * 7 * 7 and conv1["params"] == 64 * 3 * 7 * 7
    assert conv1["dtype"] == "float32" and conv1["status"] == "counted" and conv1["rule"] == "conv2d"
    # The first residual add joins the block's last norm and the block input (the max-pool output).
    assert set(g.predecessors("add")) == {"layer1_0_bn2", "maxpool"}
    assert g.nodes["add"]["module_path"] == "layer1.0"
    assert g.edges["maxpool", "add"]["shape"] == (1, 64, 56, 56)
    assert list(g.predecessors("output")) == ["fc"]
    # A 2-layer BasicBlock ResNet: 8 blocks of 2 convs, 3 downsample convs, the stem conv.
    assert sum(a["op"] == "conv2d" for _, a in g.nodes(data=True)) == 8 * 2 + 3 + 1


def test_several_graphs_are_exported_side_by_side(resnet18, tiny):
    """A dynamo capture may hold several graphs: names are prefixed per graph, edges stay inside each."""
    # The records live on the graphs' nodes, and recording them again re-labels them (names, graph): fresh reports,
    # so that the fixtures' stay as they are.
    a, b = (fxflops.trace_flops(m, x) for m, x in ((resnet18[0], torch.randn(1, 3, 224, 224)),
                                                   (tiny[0], torch.zeros(2, 16, dtype=torch.long))))
    gms = [a.graph_module, b.graph_module]
    edges = a.to_networkx().number_of_edges() + b.to_networkx().number_of_edges()
    flops = a.total_flops + b.total_flops
    nodes = node_records(gms[0], prefix="g0.") + node_records(gms[1], prefix="g1.", graph=1)
    report = Report("two", nodes, {}, [], "dynamo", "fake", graph_modules=gms)
    g = report.to_networkx()
    assert g.number_of_nodes() == sum(len(gm.graph.nodes) for gm in gms)
    assert g.number_of_edges() == edges
    assert all(u.split(".")[0] == v.split(".")[0] for u, v in g.edges)
    assert {a["graph"] for _, a in g.nodes(data=True)} == {0, 1}
    assert sum(nx.get_node_attributes(g, "flops").values()) == flops
    assert nx.is_directed_acyclic_graph(g)


def test_records_out_of_step_with_the_graph_are_refused(resnet18):
    report = resnet18[1]
    broken = Report("x", report.nodes[1:], report.modules, [], "fx", "meta", graph_modules=[report.graph_module])
    with pytest.raises(ValueError, match="a record for every node of graph 0"):
        broken.to_networkx()


@pytest.fixture(scope="module")
def tiny_dynamo():
    """The dynamo capture traces layer 0 once and reuses it for layers 1-3: their nodes are copies."""
    model = TinyEncoder(layers=4).eval()
    return fxflops.trace_flops(model, torch.zeros(2, 16, dtype=torch.long), capture="dynamo")


def test_dynamo_reused_blocks_are_wired_in(tiny_dynamo):
    report = tiny_dynamo
    assert any("reused" in n for n in report.notes)
    g = report.to_networkx()
    copies = [n for n in g if "@layers." in n]
    assert copies and g.number_of_nodes() == len(report.nodes)
    assert sum(nx.get_node_attributes(g, "flops").values()) == report.total_flops
    assert nx.is_directed_acyclic_graph(g) and nx.is_weakly_connected(g)
    order = nx.get_node_attributes(g, "order")
    assert all(order[u] < order[v] for u, v in g.edges)
    # A copy takes the edges of the node it copies, inside its own block.
    for c in copies:
        source, block = c.rsplit("@", 1)
        inner = {u + "@" + block for u in g.predecessors(source)} & set(g)
        assert inner <= set(g.predecessors(c))
    # Data flows through the four layers in turn: every layer's first norm is reached from the input.
    norms = [n for n, a in g.nodes(data=True) if a["module_path"].endswith(".ln1")]
    assert len(norms) == 4
    ids = next(n for n, a in g.nodes(data=True) if a["kind"] == "placeholder" and a["output_shapes"] == [(2, 16)])
    assert all(nx.has_path(g, ids, n) for n in norms)
    assert all(nx.has_path(g, a, b) for a, b in zip(sorted(norms, key=order.get), sorted(norms, key=order.get)[1:]))


def test_both_capture_paths_export_the_same_costs(tiny_dynamo):
    fx_report = fxflops.trace_flops(TinyEncoder(layers=4).eval(), torch.zeros(2, 16, dtype=torch.long))
    per_module = {}
    for report in (fx_report, tiny_dynamo):
        g = report.to_networkx()
        costs: dict[str, int] = {}
        for _, a in g.nodes(data=True):
            costs[a["module_path"]] = costs.get(a["module_path"], 0) + a["flops"]
        per_module[report.capture] = {p: f for p, f in costs.items() if f}
    assert per_module["fx"] == per_module["dynamo"]


def test_dynamo_reused_blocks_read_shared_inputs():
    """HF Llama: layer 0 is traced, layers 1-3 reuse it. Each copy reads the rotary tables the
    model computed once, and the previous layer's output; the rolled picture folds all four."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from fxflops.draw.dot import choose_view

    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=100)
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg).eval()
    report = fxflops.trace_flops(model, {"input_ids": torch.zeros(1, 16, dtype=torch.long, device="meta")})
    g = report.to_networkx()
    order = nx.get_node_attributes(g, "order")
    assert nx.is_directed_acyclic_graph(g) and all(order[u] < order[v] for u, v in g.edges)
    rotary = {n for n, a in g.nodes(data=True) if a["module_path"] == "model.rotary_emb" and a["output_shapes"]}
    readers = {g.nodes[v]["module_path"].split(".")[2] for u in rotary for v in g.successors(u)
               if g.nodes[v]["module_path"].startswith("model.layers.")}
    assert readers == {"0", "1", "2", "3"}
    view = choose_view(g, roll=True)
    assert [(c.path, c.repeat) for c in view.clusters.values() if c.repeat > 1] == [("model.layers.0", 4)]
    assert sum(v.flops for v in view.nodes.values()) == report.total_flops
