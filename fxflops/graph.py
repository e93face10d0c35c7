"""The annotated computation graph as a ``networkx.DiGraph``: one node per fx node, edges along data flow.

Node attributes are the report's :class:`~fxflops.report.NodeRecord` fields (op, target, module path,
shapes, dtypes, MACs, FLOPs, params, rule, status) plus ``graph`` (index of the fx graph the node came
from, for captures that produce several) and ``order`` (position in execution order). The edges come
from the fx graph(s) themselves, so a report from either capture path exports the same way.
"""
from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Iterator

import networkx as nx
import torch.fx as fx

if TYPE_CHECKING:
    from .report import NodeRecord, Report


def graphs_of(report: "Report") -> list[fx.GraphModule]:
    """The fx graph(s) behind a report, in execution order."""
    if report.graph_modules:
        return list(report.graph_modules)
    return [report.graph_module] if report.graph_module is not None else []


def paired_nodes(report: "Report") -> Iterator[tuple[int, fx.Node, "NodeRecord"]]:
    """``(graph index, fx node, record)`` for every node. Records are built graph by graph in node
    order (names possibly prefixed per graph), so they are walked in step with the graphs."""
    records = iter(report.nodes)
    for gi, gm in enumerate(graphs_of(report)):
        for node in gm.graph.nodes:
            rec = next(records, None)
            if rec is None or not rec.name.endswith(node.name):
                raise ValueError(
                    f"report.nodes does not follow graph {gi} (expected a record for {node.name!r}, "
                    f"got {getattr(rec, 'name', None)!r}); was the report built from these graphs?"
                )
            yield gi, node, rec


def _attrs(rec: "NodeRecord") -> dict:
    """The record's fields (lists copied, so the graph can be edited freely) plus ``dtype`` as one string."""
    attrs = {f.name: getattr(rec, f.name) for f in fields(rec)}
    for k, v in attrs.items():
        if isinstance(v, list):
            attrs[k] = list(v)
    attrs["dtype"] = ",".join(rec.dtypes)
    return attrs


def to_networkx(report: "Report") -> nx.DiGraph:
    """The report as a DiGraph keyed by record name (unique across graphs)."""
    g = nx.DiGraph(
        name=report.model_name,
        total_macs=report.total_macs,
        total_flops=report.total_flops,
        total_params=report.total_params,
        capture=report.capture,
        input_shapes=list(report.input_shapes),
        modules={p: (m.type, m.depth, m.params, m.macs, m.flops) for p, m in report.modules.items()},
    )
    key: dict[tuple[int, fx.Node], str] = {}
    paired = list(paired_nodes(report))
    for order, (gi, node, rec) in enumerate(paired):
        g.add_node(rec.name, graph=gi, order=order, **_attrs(rec))
        key[(gi, node)] = rec.name
    for gi, node, rec in paired:
        for src in node.all_input_nodes:
            shapes = g.nodes[key[(gi, src)]]["output_shapes"]
            g.add_edge(key[(gi, src)], rec.name, shape=shapes[0] if shapes else None)
    # Records with no graph behind them (none today) still get a node so totals add up.
    order = len(paired)
    for rec in report.nodes[len(paired):]:
        g.add_node(rec.name, graph=-1, order=order, **_attrs(rec))
        order += 1
    return g
