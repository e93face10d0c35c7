"""The explorer: one self-contained HTML page to walk a report's graph by cost (:meth:`fxflops.Report.explore`).

The page holds the report's numbers as JSON, one Graphviz SVG per module that has children (drawn by ``dot``
here, at export time), and a small vanilla script and stylesheet (``assets/explore.js|css``) inlined: it
makes no network request and needs no framework. A module's drawing shows its own ops and its children
collapsed into boxes (``depth`` = its depth + 1), identical consecutive children rolled into one "×k" box.

Identical consecutive sibling modules (the 80 layers of a Llama) share the drawing of the first of them:
:func:`fxflops.draw.view.roll_blocks` finds them, the page maps ``layers.7`` to ``layers.0``'s drawing
(``aliases``) and each node of ``layers.7`` to its twin in ``layers.0`` (``twin``), so a click in the shared
drawing still selects the node of the block shown. That is what keeps a 70B model's page small and fast.
"""
from __future__ import annotations

import html
import json
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphviz
import networkx as nx

from . import style as st
from .dot import COLORS, annotate, view_to_dot
from .view import build_view, is_const, is_within, owners, parent, path_depth, roll_blocks, without_stubs
from ..devices import default_device
from ..errors import FxFlopsError, RenderError
from ..types import OP_KINDS
from ..units import human, seconds

if TYPE_CHECKING:
    from ..report.report import Report

# The columns of the embedded node table, in this order (the page reads them by name from ``node_columns``).
NODE_COLUMNS = ("name", "op", "module", "target", "shapes", "out", "macs", "flops", "fwd_flops", "bwd_flops",
                "bytes", "params", "rule", "formula", "status", "reason", "time", "bound", "measured", "twin")
MODULE_COLUMNS = ("path", "type", "depth", "params", "macs", "flops", "fwd_flops", "bwd_flops", "bytes", "time",
                  "bound", "measured", "drawing")


def _shape(s: Any) -> str:
    if isinstance(s, (tuple, list)) and all(isinstance(d, int) for d in s):
        return "×".join(map(str, s)) if s else "scalar"
    return str(s)


def _canonical(path: str, aliases: dict[str, str]) -> str:
    """The module whose drawing ``path`` shares: each prefix that is a rolled copy is replaced by the first block."""
    parts = path.split(".") if path else []
    out = ""
    for p in parts:
        out = f"{out}.{p}" if out else p
        out = aliases.get(out, out)
    return out


def _module_graph(g: nx.DiGraph, path: str, own: dict[str, str]) -> nx.DiGraph:
    """The part of ``g`` inside module ``path``: its nodes, the parameters they read, one input per outside
    node they read and one output for what leaves the module."""
    if not path:
        return g
    inside = {n for n in g if own[n] and is_within(own[n], path)}
    keep = set(inside)
    h = nx.DiGraph()
    h.graph.update(g.graph)
    for n in inside:
        h.add_node(n, **g.nodes[n])
    for n in inside:
        for u in g.predecessors(n):
            if u in inside:
                h.add_edge(u, n, **g.edges[u, n])
            elif is_const(g.nodes[u]):
                if u not in keep:
                    keep.add(u)
                    h.add_node(u, **g.nodes[u])
                h.add_edge(u, n, **g.edges[u, n])
            elif g.nodes[u].get("output_shapes") or g.nodes[u]["kind"] == "placeholder":
                a = g.nodes[u]
                src = "in/" + u
                if src not in h:
                    h.add_node(src, name=u, kind="placeholder", op="input", target=u, module_path="",
                               output_shapes=list(a.get("output_shapes", [])), dtype=a.get("dtype", ""),
                               order=a["order"], graph=a.get("graph", 0), flops=0, macs=0, params=0)
                h.add_edge(src, n, **g.edges[u, n])
    leaving = [n for n in inside if any(v not in inside for v in g.successors(n))]
    if leaving:
        last = max(g.nodes[n]["order"] for n in inside) + 1
        h.add_node("out/" + path, name="output", kind="output", op="output", target="output", module_path="",
                   output_shapes=[], order=last, graph=0, flops=0, macs=0, params=0)
        for n in leaving:
            h.add_edge(n, "out/" + path, **{"shape": (g.nodes[n].get("output_shapes") or [None])[0]})
    return h


def _draw(g: nx.DiGraph, path: str, own: dict[str, str], color: str) -> str:
    """The DOT text of module ``path``: its own ops, its children collapsed, repeated children rolled."""
    h = _module_graph(g, path, own)
    view = build_view(h, depth=path_depth(path) + 1, roll=True, keep_leaves=True)
    # The page's breadcrumbs say where the drawing is: no clusters for the module itself and its parents (a node
    # whose home is not a cluster is drawn at the top level, its label still relative to that home).
    around = [c for c in view.clusters if is_within(path, c)]
    for c in around:
        del view.clusters[c]
    for cl in view.clusters.values():
        cl.parent = "" if cl.parent in around else cl.parent
    # The page's panel scrolls: a short chain reads best as one column, a long one still wraps.
    return view_to_dot(h, view, color=color, title=False, legend=False, columns=1 if len(view.nodes) <= 30 else None)


def _svg(source: str) -> str:
    try:
        out = graphviz.Source(source).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        raise RenderError("the explorer draws its graphs with Graphviz's `dot`, which is not on PATH. What to do: "
                          "install Graphviz (apt install graphviz, brew install graphviz or conda install -c "
                          "conda-forge graphviz)") from None
    return out[out.index("<svg"):]


def _twins(rep: dict[str, str]) -> dict[str, str]:
    out = {}
    for n in rep:
        r = n
        while r in rep:
            r = rep[r]
        out[n] = r
    return out


def page_data(report: "Report", color: str = "flops", device: Any = None) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values: totals, modules, nodes and one SVG per drawn module."""
    if color not in COLORS:
        raise FxFlopsError(f"color must be one of {', '.join(COLORS)}, got {color!r}")
    if device is None and (color != "flops" or report.measured_on is not None):
        device = default_device(report.measured_on)
    est = report.roofline(device) if device is not None else None
    g = report.to_networkx()
    if est is not None:
        annotate(g, est)
    g = without_stubs(g)
    own = owners(g)
    rep, runs = roll_blocks(g, own, g.graph.get("modules", {}))
    aliases = {p: paths[0] for paths in runs.values() for p in paths[1:]}
    twin = _twins(rep)

    children: dict[str, list[str]] = {}
    for p in report.modules:
        if p:
            children.setdefault(parent(p), []).append(p)
    drawn = [p for p in report.modules if (p == "" or p in children) and _canonical(p, aliases) == p]
    sources = [_draw(g, p, own, color) for p in drawn]
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        svgs = list(pool.map(_svg, sources))

    ops = [r for r in report.nodes if r.kind in OP_KINDS]
    index = {r.name: i for i, r in enumerate(ops)}
    strings: dict[str, int] = {}  # formulas and reasons are long and repeat: stored once

    def s(text: str) -> int:
        return strings.setdefault(text, len(strings))

    rows = []
    for r in ops:
        e = est.nodes.get(r.name) if est is not None else None
        t = twin.get(r.name)
        rows.append([
            r.name, r.op, r.module_path, r.target, s(", ".join(_shape(x) for x in r.input_shapes)),
            _shape(r.output_shapes[0]) if r.output_shapes else "", r.macs, r.flops, r.fwd_flops, r.bwd_flops,
            r.bytes, r.params, r.rule_name, s(r.rule.formula.strip() if r.rule is not None else ""), str(r.status),
            s(r.reason), e.time if e else None, str(e.bound or "") if e else "", r.measured,
            index.get(t, -1) if t else -1,
        ])
    modules = []
    for p, m in report.modules.items():
        e = est.modules.get(p) if est is not None else None
        modules.append([p, m.type, m.depth, m.params, m.macs, m.flops, m.fwd_flops, m.bwd_flops, m.bytes,
                        e.time if e else None, str(e.bound or "") if e else "", m.measured,
                        drawn.index(_canonical(p, aliases)) if _canonical(p, aliases) in drawn else -1])
    return {
        "model": report.model_name, "mode": report.mode, "capture": str(report.capture), "color": color,
        "device": est.device.name if est is not None else None,
        "totals": {"macs": report.total_macs, "flops": report.total_flops, "params": report.total_params,
                   "bytes": report.total_bytes, "forward_flops": report.forward_flops,
                   "backward_flops": report.backward_flops, "time": est.total_time if est is not None else None,
                   "measured": report.total_measured},
        "node_columns": list(NODE_COLUMNS), "nodes": rows, "strings": list(strings),
        "module_columns": list(MODULE_COLUMNS), "modules": modules,
        "aliases": aliases, "drawn": drawn, "svgs": svgs,
        "heat": [st.heat(i / 20) for i in range(21)], "decades": st.DECADES, "bound_fills": st.BOUND_FILLS,
    }


def _header(report: "Report", data: dict[str, Any]) -> str:
    e = html.escape
    t = data["totals"]
    facts = [("MACs", human(t["macs"])), ("FLOPs", human(t["flops"])), ("params", human(t["params"])),
             ("bytes", human(t["bytes"]) + "B")]
    if report.mode == "train":
        facts += [("forward FLOPs", human(t["forward_flops"])), ("backward FLOPs", human(t["backward_flops"]))]
    if t["time"] is not None:
        facts.append((f"est. time on {data['device']}", seconds(t["time"])))
    if t["measured"] is not None:
        facts.append(("measured", seconds(t["measured"])))
    shortfall = report.shortfall()
    status = (f'<span class="bad">{e(shortfall)}</span>' if shortfall else
              '<span class="ok">every node priced</span>')
    inputs = ", ".join(_shape(s) for s in report.input_shapes)
    notes = "".join(f"<li>{e(n)}</li>" for n in report.notes)
    return (
        f'<header><h1>{e(report.model_name)}</h1><dl>'
        + "".join(f"<div><dt>{e(k)}</dt><dd>{e(v)}</dd></div>" for k, v in facts)
        + f'</dl><p class="meta">{"one training step (forward + backward)" if report.mode == "train" else "inference"} · '
        f"input {e(inputs)} · {e(str(report.capture))} capture · {len(data['nodes']):,} op nodes · {status}</p>"
        + (f"<details><summary>{len(report.notes)} note(s)</summary><ul>{notes}</ul></details>" if notes else "")
        + "</header>"
    )


def _asset(name: str) -> str:
    return resources.files("fxflops.draw").joinpath("assets", name).read_text(encoding="utf-8")


def explore_html(report: "Report", color: str = "flops", device: Any = None) -> str:
    """The page as one string (see :func:`explore`)."""
    data = page_data(report, color, device)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fxflops: {html.escape(report.model_name)}</title><style>{_asset('explore.css')}</style></head>"
        f"<body>{_header(report, data)}"
        '<section id="breakdown"><div class="bar"><b>Modules</b> <span id="metric"></span>'
        '<span class="hint">click a module to open it, click the top bar to go back up</span></div>'
        '<div id="icicle"></div></section>'
        '<main><section id="graph"><nav id="crumbs"></nav><div id="drawing"></div></section>'
        '<section id="table"><div class="bar"><input id="filter" type="search" placeholder="filter nodes: op, module, '
        'name, rule, status"><span id="scope"></span><span id="count"></span></div>'
        '<div class="scroll"><table id="nodes"><thead></thead><tbody></tbody></table></div></section></main>'
        f'<script type="application/json" id="fx-data">{payload}</script>'
        f"<script>{_asset('explore.js')}</script></body></html>\n"
    )


def explore(report: "Report", path: str | os.PathLike, *, color: str = "flops", device: Any = None) -> Path:
    """Write the explorer page of ``report`` to ``path`` (one .html file, no network needed to open it).

    ``color`` is what fills the drawings, the breakdown and the table's share bars: ``"flops"`` (share of the
    FLOPs), ``"time"`` (share of the roofline time on ``device``) or ``"bound"`` (compute- or memory-bound there).
    With ``device`` (a preset name or :class:`fxflops.Device`), or a report made with ``measure=True``, the page
    also shows each node's and module's estimated time and bound."""
    path = Path(path)
    text = explore_html(report, color, device)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"cannot write the explorer page to {str(path)!r}: {exc.strerror or exc}. What to do: "
                          "choose a path in a directory you can write to") from None
    return path
