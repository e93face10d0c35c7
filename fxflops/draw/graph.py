"""The annotated computation graph as a ``networkx.DiGraph``: one node per fx node, edges along data flow.

Node attributes are the report's :class:`~fxflops.report.NodeRecord` fields (op, target, module path,
shapes, dtypes, MACs, FLOPs, params, rule, status) plus ``dtype`` (the dtypes as one string),
``graph`` (index of the fx graph the node came from, for captures that produce several) and ``order``
(position in execution order). Edges come from the fx graph(s) themselves and carry the ``shape`` of
the tensor they pass, so a report from either capture path exports the same way.

A dynamo capture also reports nodes that have no fx node of their own, as copies of nodes that do (the
record keeps the fx node it copies): ``run`` k of a graph that ran several times (named ``NAME#k``), or a node
of a block that was traced once and reused for the identical ``block`` at PATH (named ``NAME@PATH``; the graph
holds that block only as a stub making its output). Their edges mirror those of the node they copy; a reused block's copies take
the stub's inputs and feed the stub (marked with a ``stub_of`` attribute), so data still flows
through them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import torch.fx as fx

if TYPE_CHECKING:
    from ..report.report import Report
    from ..types import NodeRecord


def graphs_of(report: "Report") -> list[fx.GraphModule]:
    """The fx graph(s) behind a report, in execution order."""
    return list(report.graph_modules)


def paired_nodes(report: "Report") -> list[tuple[int, fx.Node, "NodeRecord"]]:
    """``(graph index, fx node, record)`` for every record that is its fx node's own (not a copy)."""
    out = [(r.graph, r.node, r) for r in report.nodes if r.node is not None and r.run == 1 and not r.block]
    held = {(gi, node) for gi, node, _ in out}
    for gi, gm in enumerate(graphs_of(report)):
        if any((gi, node) not in held for node in gm.graph.nodes):
            raise ValueError(f"report.nodes does not hold a record for every node of graph {gi}; "
                             "was the report built from these graphs?")
    return out


def _attrs(rec: "NodeRecord") -> dict:
    """The record's values (fresh lists, so the graph can be edited freely; shapes as tuples) plus ``dtype`` as one
    string."""
    attrs = rec.to_dict()
    del attrs["graph"]  # set by the caller: -1 for a copy with no fx node to follow
    attrs["input_shapes"] = list(rec.input_shapes)
    attrs["output_shapes"] = list(rec.output_shapes)
    attrs["dtype"] = ",".join(rec.dtypes)
    return attrs


def _within(path: str, block: str) -> bool:
    return path == block or path.startswith(block + ".")


def to_networkx(report: "Report") -> nx.DiGraph:
    """The report as a DiGraph keyed by record name (unique across graphs)."""
    g = nx.DiGraph(
        name=report.model_name,
        total_macs=report.total_macs,
        total_flops=report.total_flops,
        total_params=report.total_params,
        capture=report.capture,
        input_shapes=list(report.input_shapes),
        notes=list(report.notes),
        modules={p: (m.type, m.depth, m.params, m.macs, m.flops) for p, m in report.modules.items()},
    )
    position = {r.name: i for i, r in enumerate(report.nodes)}
    paired = paired_nodes(report)
    key: dict[tuple[int, fx.Node], str] = {}
    for gi, node, rec in paired:
        g.add_node(rec.name, graph=gi, order=position[rec.name], **_attrs(rec))
        key[(gi, node)] = rec.name
    for gi, node, rec in paired:
        for src in node.all_input_nodes:
            _edge(g, key[(gi, src)], rec.name)
    _add_copies(report, g, position, key)
    return g


def _edge(g: nx.DiGraph, u: str, v: str) -> None:
    shapes = g.nodes[u]["output_shapes"]
    g.add_edge(u, v, shape=shapes[0] if shapes else None)


def _add_copies(report: "Report", g: nx.DiGraph, position: dict[str, int], key: dict[tuple[int, fx.Node], str]) -> None:
    """Nodes for the records no fx node of their own stands behind (see the module docstring)."""
    rest = [r for r in report.nodes if r.name not in g]
    copy_of: dict[tuple[str, int, str], str] = {}  # (source name, run, block) -> the copy's name
    sources: dict[str, str] = {}
    for rec in rest:
        source = key.get((rec.graph, rec.node)) if rec.node is not None else None
        g.add_node(rec.name, graph=g.nodes[source]["graph"] if source else -1, order=position[rec.name], **_attrs(rec))
        if source is not None:
            copy_of[(source, rec.run, rec.block)] = rec.name
            sources[rec.name] = source
    blocks: dict[str, list[str]] = {}  # reused block path -> its copies, in report order
    for rec in rest:
        source = sources.get(rec.name)
        if source is None:
            continue  # nothing to mirror: the node stays unconnected but its costs still add up
        for u in g.predecessors(source):
            u_copy = copy_of.get((u, rec.run, rec.block))
            if u_copy is not None:
                _edge(g, u_copy, rec.name)
        if rec.block:
            blocks.setdefault(rec.block, []).append(rec.name)
    for path, copies in blocks.items():
        _wire_reused_block(g, path, copies, sources)


def _wire_reused_block(g: nx.DiGraph, path: str, copies: list[str], sources: dict[str, str]) -> None:
    """Connect the copies of a reused block to the graph around the stub that stands for it.

    The source block's main input (what its first op reads) is replaced by the stub's inputs; its
    other inputs from outside (rotary tables, masks) are shared, so the copies read the same nodes.
    The copy of the block's last op feeds the stub, and copies whose source fed the graph's output
    (a KV cache) feed it too. The copies are ordered just before the stub."""
    stubs = [n for n, a in g.nodes(data=True) if a.get("module_path") == path and a.get("block") != path
             and a["kind"].startswith("call")]
    ops = sorted((c for c in copies if g.nodes[c]["kind"] != "get_attr"), key=lambda c: g.nodes[c]["order"])
    if not stubs or not ops:
        return
    stub = max(stubs, key=lambda n: g.nodes[n]["order"])
    g.nodes[stub]["stub_of"] = path
    at = g.nodes[stub]["order"]
    inputs = [u for u in g.predecessors(stub) if g.nodes[u]["kind"] != "get_attr"]
    if not inputs:
        # A stub that ignores its inputs leaves the block's input computed but unused: the last
        # such dead end before the stub is what the block read.
        dead = [n for n, a in g.nodes(data=True) if a["order"] < at and a["kind"].startswith("call")
                and a.get("output_shapes") and g.out_degree(n) == 0]
        inputs = [max(dead, key=lambda n: g.nodes[n]["order"])] if dead else []
    source = {c: sources[c] for c in copies}
    inside = set(source.values())

    def outside(n: str) -> list[str]:
        return [u for u in g.predecessors(n) if u not in inside and g.nodes[u]["kind"] != "get_attr"]

    main = set(outside(source[ops[0]]))
    for c in ops:
        s = source[c]
        for u in outside(s):
            for w in (inputs if u in main else [u]):
                _edge(g, w, c)
        for v in g.successors(s):
            if v not in inside and g.nodes[v]["kind"] == "output":
                _edge(g, c, v)
    _edge(g, ops[-1], stub)
    for i, c in enumerate(sorted(copies, key=lambda c: g.nodes[c]["order"])):
        g.nodes[c]["order"] = at - 1 + (i + 1) / (len(copies) + 1)
