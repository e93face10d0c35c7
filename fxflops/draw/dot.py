"""DOT text and rendered pictures (SVG, PNG, PDF) of the annotated graph, through the ``graphviz`` package.

Each drawn node shows a short op name, its output shape and its FLOPs with their share of the total;
the module path and the details are in the tooltip (the SVG ``<title>``/``xlink:title``), so labels
stay short. Fill colour is the FLOPs share on a heat scale (see :mod:`fxflops.draw.style`), ops
that cost nothing are small and grey, ops without a rule have a red outline, modules are nested
clusters titled with their subtotal. A long chain is wrapped into side-by-side columns that fit a
screen, in execution order left to right (:mod:`fxflops.draw.columns`). What is drawn (rolled, collapsed, scalars hidden) is decided by
:mod:`fxflops.draw.view`.

``dot`` is slow on big graphs with many clusters (minutes, or it never ends, past a few thousand
nodes), so a graph with more than ``max_nodes`` drawable nodes is first rolled, then collapsed one
module level at a time until it fits; the title says so. ``max_nodes=None`` draws everything, with
``dot`` options that trade crossing minimisation for speed on big graphs.
"""
from __future__ import annotations

import html
import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphviz
import networkx as nx

from . import style as st
from .columns import FIT_SCALE, MIN_SCALE, PAD, SCREEN, Column, fit, layout, wrap_breaks
from .columns import columns as cut_into
from .columns import dot_id as _dot_id
from .view import BUDGET, View, ViewCluster, ViewNode, build_view, opening_order, owners, path_depth, roll_blocks, without_stubs
from ..devices import default_device
from ..errors import RenderError
from ..units import human, seconds

if TYPE_CHECKING:
    from ..report.report import Report

MAX_NODES = 1500  # past this, dot with clusters takes more than a few seconds (benchmarks/render_scale.py)
BIG = 1000  # from here on, a cap on dot's network-simplex iterations
NS_ITERATIONS = 500
LONG_EDGE = 60  # edges spanning more drawn nodes than this go to a nearby reference copy
FORMATS = ("svg", "png", "pdf")
# A 3-D box's front face is its node less the depth drawn at the top and right (4 points), and browsers set
# Helvetica a little wider and taller than dot measures it: dot's default margin (0.11 × 0.055 in) let the name
# touch the top edge and the cost line the right one.
MODULE_MARGIN = "0.2,0.12"
OP_MARGIN = "0.14,0.055"  # the same for an op's cost line, which is its widest


# ---- choosing what to draw ----------------------------------------------------------------------


def choose_view(g: nx.DiGraph, depth: int | str | None = None, top: int = 0, roll: bool | None = None,
                hide_scalars: bool = True, max_nodes: int | None = MAX_NODES, show_params: bool = False,
                color: str = "flops") -> View:
    """The view asked for: ``depth="auto"`` opens the modules that hold the FLOPs (:func:`cost_guided`);
    otherwise the view at ``depth``, reduced (rolled, then collapsed a level at a time) until it has at most
    ``max_nodes`` nodes, the reductions made written into ``view.notes``. ``roll=None`` rolls with ``"auto"`` only."""
    g = without_stubs(g)
    if depth == "auto":
        return cost_guided(g, top, roll is not False, hide_scalars, show_params, color)
    if isinstance(depth, str):
        raise ValueError(f'depth must be a number, None (every op) or "auto" (cost-guided), got {depth!r}')
    roll = bool(roll)
    rolled: list = []  # roll_blocks' result, worked out once for every depth tried

    def build(d: int | None, r: bool) -> View:
        if r and not rolled:
            rolled.append(roll_blocks(g, owners(g), g.graph.get("modules", {})))
        return build_view(g, d, r, hide_scalars=hide_scalars, top=top, show_params=show_params,
                          rolled=rolled[0] if r else None)

    view = build(depth, roll)
    if max_nodes is None or len(view.nodes) <= max_nodes:
        return view
    asked = len(view.nodes)
    if not roll:
        view = build(depth, True)
    deepest = max((path_depth(a.get("module_path", "")) for _, a in g.nodes(data=True)), default=0)
    d = deepest if depth is None else depth
    while len(view.nodes) > max_nodes and d > 0:
        d -= 1
        view = build(d, True)
    did = ["rolled repeated blocks"] if not roll else []
    if view.depth != depth:
        did.append(f"collapsed modules at depth {view.depth}")
    view.notes.append(f"{asked:,} nodes is more than max_nodes={max_nodes:,}: {' and '.join(did) or 'kept as is'}"
                      f" ({len(view.nodes):,} nodes drawn)")
    return view


def cost_guided(g: nx.DiGraph, top: int = 0, roll: bool = True, hide_scalars: bool = True, show_params: bool = False,
                color: str = "flops") -> View:
    """The modules that hold the cost opened, costliest first (:func:`~fxflops.draw.view.opening_order`), for as long
    as the picture, wrapped into columns, fits a 1400×1000 window shrunk by no more than ``MIN_SCALE`` (by the
    layout's estimate; the picture is then scaled to the window) and has at most ``BUDGET`` nodes. Where even the
    model's top level does not fit, that is drawn."""
    own = owners(g)
    blocks = roll_blocks(g, own, g.graph.get("modules", {})) if roll else ({}, {})

    def view(opened: set[str]) -> View:
        return build_view(g, None, roll, hide_scalars=hide_scalars, top=top, show_params=show_params, rolled=blocks,
                          opened=opened)

    best = view({""})
    opened = {""}
    for modules, nodes in opening_order(g, own, blocks, hide_scalars=hide_scalars):
        if nodes > BUDGET:
            break
        opened.update(modules)
        wider = view(set(opened))
        if len(wider.nodes) > BUDGET or _fits(wider, color) < MIN_SCALE:
            break
        best = wider
    return best


def _fits(view: View, color: str = "flops") -> float:
    """How far the picture of ``view``, wrapped into the best columns, must shrink to fit a 1400×1000 window."""
    edges, refs, _ = _short_edges(view)
    lay = layout(view, edges + _after_previous(view, edges), _sizes(view, color), refs)
    return fit(lay, wrap_breaks(lay))


def _sizes(view: View, color: str) -> dict[str, tuple[float, float]]:
    """Each drawn node's points (width, height), estimated from its label as dot will size it."""
    return {_dot_id(vid): _label_size(_node_attrs(vn, view, 1.0, color)) for vid, vn in view.nodes.items()}


def _label_size(attrs: dict[str, str]) -> tuple[float, float]:
    """Points (width, height) dot gives a node: its label's longest line at about half an em a character, its lines
    at 1.1 em, plus the node's margins (and a 3-D box's depth); never less than its minimum height."""
    size = float(attrs.get("fontsize", 14))
    w = h = 0.0
    for line in re.split(r"<br[^>]*>", attrs["label"].strip("<>")):
        found = re.match(r'<font point-size="([\d.]+)"', line)  # a line of its own size (shapes)
        pt = float(found.group(1)) if found else size
        text = html.unescape(re.sub(r"<[^>]*>", "", line))
        w = max(w, len(text) * pt * (0.55 if "<b>" in line else 0.5))
        h += 1.1 * pt
    mx, my = (float(x) * 72 for x in attrs.get("margin", "0.11,0.055").split(","))
    depth = 4 if attrs.get("shape") == "box3d" else 0
    return w + 2 * mx + depth, max(float(attrs.get("height", 0.5)) * 72, h + 2 * my)


# ---- DOT ----------------------------------------------------------------------------------------


def _shape_text(shape: Any) -> str:
    if isinstance(shape, (tuple, list)) and all(isinstance(d, int) for d in shape):
        return "×".join(str(d) for d in shape) if shape else "scalar"
    if isinstance(shape, (tuple, list)) and shape:
        return _shape_text(shape[0]) + ", …"
    return ""


def _lines(*lines: str) -> str:
    """A tooltip: lines joined by DOT's ``\\n`` escape."""
    return "\\n".join(line.replace("\\", "/") for line in lines if line)


def _short_path(path: str, home: str) -> str:
    """A module path relative to the cluster it is drawn in; bare indices keep their parent's name."""
    rel = path[len(home) + 1:] if home and path.startswith(home + ".") else path
    if rel.isdigit() and "." in path:
        rel = ".".join(path.split(".")[-2:])
    return rel


def _badge(vn: ViewNode) -> str:
    """``#2 `` on the 2nd costliest node; a collapsed module holding several of the top K reads ``#1,3 ``."""
    return "#" + ",".join(map(str, sorted(vn.ranks))) + " " if vn.ranks else ""


def _times(repeat: int) -> str:
    return f" ×{repeat}" if repeat > 1 else ""


def _span(path: str, rolled: list[str]) -> str:
    """``encoder_layer_0`` rolled up to ``encoder_layer_11`` reads ``encoder_layer_0…11``."""
    if len(rolled) < 2:
        return path
    last = rolled[-1].rsplit(".", 1)[-1]
    first = path.rsplit(".", 1)[-1]
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i] and not first[i].isdigit():
        i += 1
    return f"{path}…{last[i:]}"


COLORS = ("flops", "time", "bound")


def _total_time(view: View) -> float:
    """The model's estimated time: a view of one module (the explorer's) still gives shares of the whole."""
    return view.total_time or sum(vn.time for vn in view.nodes.values())


def _share(vn: ViewNode, view: View, color: str) -> float:
    """What the fill shows: the node's share of the FLOPs, or of the estimated time."""
    if color == "flops":
        return vn.flops / view.total_flops if view.total_flops else 0.0
    total = _total_time(view)
    return vn.time / total if total else 0.0


def _fill(vn: ViewNode, share: float, max_share: float, color: str) -> str | None:
    """The node's fill, or None when it has nothing to show (drawn small and grey)."""
    if color == "flops":
        return st.heat(st.heat_position(share, max_share)) if vn.flops else None
    if not vn.time:
        return None
    if color == "time":
        return st.heat(st.heat_position(share, max_share))
    return st.BOUND_FILLS["compute" if vn.compute_time > vn.time / 2 else "memory"]


def _node_attrs(vn: ViewNode, view: View, max_share: float, color: str = "flops") -> dict[str, str]:
    """Shape, colours, label and tooltip of one drawn node, then the audit and top-K markings."""
    share = _share(vn, view, color)
    if vn.kind in ("input", "output"):
        return _io_attrs(vn)
    if vn.kind == "module":
        attrs = _module_attrs(vn, share, max_share, color)
    else:
        attrs = _op_attrs(vn, share, max_share, color)
    attrs["fontname"] = st.FONT
    if vn.status in ("uncounted", "partial"):
        note = "no rule: counted as 0" if vn.status == "uncounted" else "partly uncounted"
        attrs.update(color=st.UNCOUNTED_LINE, penwidth="3",
                     label=attrs["label"][:-1] + f'<br/><font color="{st.UNCOUNTED_LINE}">{note}</font>>')
        if vn.status == "partial":
            attrs["style"] += ",dashed"
    elif vn.rank:
        attrs.update(color=st.TOP_LINE, penwidth="3.5")
    return attrs


def _io_attrs(vn: ViewNode) -> dict[str, str]:
    name = vn.detail.get("name", "") if vn.kind == "input" else ""
    shape = _shape_text(vn.shape)
    return dict(shape="box", style="rounded,filled", fillcolor="white", color="#333333", fontsize="11",
                fontname=st.FONT, label=f"<<b>{vn.kind}</b>&#160;{html.escape(name)}<br/>{html.escape(shape)}>",
                tooltip=_lines(f"{vn.kind} {name}", f"shape {shape}", f"dtype {vn.detail.get('dtype', '')}"))


def _cost_line(vn: ViewNode, share: float, color: str = "flops") -> str:
    if color == "flops":
        return f"{st.flops_text(vn.flops)} · {st.pct(share)}"
    if color == "bound":  # the fill says the bound; a narrower label lets more of the model fit the window
        return f"{st.flops_text(vn.flops)} · {seconds(vn.time)} ({st.pct(share)})"
    bound = ("compute" if vn.compute_time > vn.time / 2 else "memory") if vn.time else "-"
    return f"{st.flops_text(vn.flops)} · {seconds(vn.time)} ({st.pct(share)}, {bound})"


def _rolled_line(vn: ViewNode) -> str:
    return f"rolled: {', '.join(vn.rolled_paths)} (costs summed)" if vn.repeat > 1 else ""


def _module_attrs(vn: ViewNode, share: float, max_share: float, color: str = "flops") -> dict[str, str]:
    e = html.escape
    name = _span(_short_path(vn.path, vn.home), vn.rolled_paths) if vn.path else "model"
    badge = _badge(vn)
    shape = _shape_text(vn.shape)
    fill = _fill(vn, share, max_share, color) or st.ZERO_FILL
    label = (f"<<b>{e(badge + name)}{_times(vn.repeat)}</b><br/>{e(vn.type)}<br/>"
             f'<font point-size="10">{e(shape)}</font><br/>{e(_cost_line(vn, share, color))}>')
    tip = _lines(f"{vn.path or 'model'} ({vn.type})", _rolled_line(vn), f"{len(vn.members)} nodes collapsed",
                 f"output {shape}", f"MACs {human(vn.macs)}", f"FLOPs {human(vn.flops)} ({st.pct(share)})",
                 f"params {human(vn.params)}")
    return dict(shape="box3d", style="filled", fillcolor=fill, fontcolor=st.text_colour(fill), fontsize="12",
                margin=MODULE_MARGIN, label=label, tooltip=tip)


def _op_attrs(vn: ViewNode, share: float, max_share: float, color: str = "flops") -> dict[str, str]:
    e = html.escape
    d = vn.detail
    if vn.kind == "const":
        op = str(d.get("target", vn.type)).rsplit(".", 1)[-1]
    elif vn.status in ("uncounted", "ignored"):
        op = str(d.get("target", vn.type))
    else:
        op = vn.type
    shape = _shape_text(vn.shape)
    where = f"{vn.path} ({d.get('module_type', '')})" if vn.path else "(top level)"
    tip = _lines(where, f"node {d.get('name', '')}: {d.get('kind', '')} {d.get('target', '')}",
                 f"op {vn.type}, rule: {d.get('rule', '') or '-'} [{vn.status or '-'}]",
                 "in " + ", ".join(_shape_text(x) for x in d.get("input_shapes", [])),
                 f"out {shape} {d.get('dtype', '')}", _rolled_line(vn),
                 f"MACs {human(vn.macs)}", f"FLOPs {human(vn.flops)} ({st.pct(share)})" if color == "flops"
                 else f"FLOPs {human(vn.flops)}", f"params {human(vn.params)}",
                 f"est. time {seconds(vn.time)} ({st.pct(share)})" if vn.time else "")
    fill = _fill(vn, share, max_share, color)
    if fill is not None or vn.status in ("uncounted", "partial"):
        fill = fill or st.UNCOUNTED_FILL
        badge = _badge(vn)
        label = f"<<b>{e(badge + op)}{_times(vn.repeat)}</b><br/>{e(shape)}<br/>{e(_cost_line(vn, share, color))}>"
        return dict(shape="box", style="rounded,filled", fillcolor=fill, fontcolor=st.text_colour(fill),
                    fontsize="11", color="#555555", margin=OP_MARGIN, label=label, tooltip=tip)
    # Costs nothing: small and grey, so the costly path stands out.
    small = f' <font point-size="7">{e(shape)}</font>' if shape else ""
    return dict(shape="box", style="rounded,filled", fillcolor=st.ZERO_FILL, color=st.ZERO_LINE,
                fontcolor=st.ZERO_TEXT, fontsize="8", height="0.2", margin="0.05,0.01",
                label=f"<{e(op)}{_times(vn.repeat)}{small}>", tooltip=tip)


def _cluster_attrs(cl: ViewCluster, view: View) -> dict[str, str]:
    e = html.escape
    total = view.total_flops
    share = cl.flops / total if total else 0.0
    head = _span(cl.path, cl.rolled_paths)
    times = _times(cl.repeat)
    # trailing spaces keep a browser's slightly wider Helvetica off the cluster's right edge
    label = (f"<<b>{e(head)}{times}</b>  {e(cl.type)}&#160;&#160;<br align='left'/>"
             f"{e(st.flops_text(cl.flops))} · {e(st.pct(share))}"
             f"{' (sum of the ' + str(cl.repeat) + ' blocks)' if cl.repeat > 1 else ''}&#160;&#160;<br align='left'/>>")
    return {
        "label": label.replace("'", '"'),
        "labeljust": "l",
        "fontname": st.FONT,
        "fontsize": "11",
        "style": "rounded,filled",
        "fillcolor": st.CLUSTER_FILLS[path_depth(cl.path) % 2],
        "color": st.ROLLED_LINE if cl.repeat > 1 else st.CLUSTER_LINE,
        "penwidth": "2.5" if cl.repeat > 1 else "1",
        "tooltip": _lines(f"{cl.path} ({cl.type})",
                          f"rolled: {', '.join(cl.rolled_paths)} (costs summed)" if cl.repeat > 1 else "",
                          f"MACs {human(cl.macs)}", f"FLOPs {human(cl.flops)} ({st.pct(share)})",
                          f"params {human(cl.params)}"),
    }


def _legend(dot: graphviz.Digraph, max_share: float, view: View, top: int, color: str = "flops",
            device: str = "") -> None:
    with dot.subgraph(name="cluster_legend") as lg:
        lg.attr(label="<<b>legend</b>>", fontname=st.FONT, fontsize="11", style="rounded", color="#c0c0c0",
                tooltip="legend")
        scale = (st.scale_label(max_share) if color == "flops" else st.bound_label(device) if color == "bound"
                 else st.scale_label(max_share, f"estimated time share per node ({device})"))
        lg.node("legend_scale", scale, shape="plaintext", fontname=st.FONT, fontsize="10")
        kinds = {(vn.kind, vn.status, bool(vn.flops)) for vn in view.nodes.values()}
        samples = [
            ("legend_zero", "view / shape op: no FLOPs", dict(shape="box", style="rounded,filled",
             fillcolor=st.ZERO_FILL, color=st.ZERO_LINE, fontcolor=st.ZERO_TEXT, fontsize="8", height="0.2")),
        ]
        if any(status == "uncounted" for _, status, _ in kinds):
            samples.append(("legend_uncounted", "no rule: counted as 0", dict(shape="box", style="rounded,filled",
                            fillcolor=st.UNCOUNTED_FILL, color=st.UNCOUNTED_LINE, penwidth="3", fontsize="10")))
        if any(status == "partial" for _, status, _ in kinds):
            samples.append(("legend_partial", "some ops inside could not be priced", dict(
                shape="box", style="rounded,filled,dashed", fillcolor="white", color=st.UNCOUNTED_LINE,
                penwidth="3", fontsize="10")))
        modules = [vn for vn in view.nodes.values() if vn.kind == "module"]
        if modules:
            # Filled as the costliest collapsed node is drawn, so the swatch matches a node in the picture.
            big = max(modules, key=lambda vn: (_share(vn, view, color), -vn.order))
            fill = _fill(big, _share(big, view, color), max_share, color) or st.ZERO_FILL
            samples.append(("legend_module", "module collapsed into one node\n(its subtotal, filled by its share)",
                            dict(shape="box3d", style="filled", fontsize="10", fillcolor=fill, margin=MODULE_MARGIN,
                                 fontcolor=st.text_colour(fill))))
        if top:
            samples.append(("legend_top", f"#k: the k-th of the {top} costliest nodes\n(the --top table's order)", dict(shape="box", style="rounded",
                            color=st.TOP_LINE, penwidth="3.5", fontsize="10")))
        if view.rolled:
            samples.append(("legend_rolled", "×k: k identical blocks\nrolled into one, costs summed",
                            dict(shape="box", style="rounded", color=st.ROLLED_LINE, penwidth="2.5", fontsize="10")))
        prev = "legend_scale"
        for name, text, attrs in samples:
            lg.node(name, text, fontname=st.FONT, tooltip=text.replace("\n", " "), **attrs)
            lg.edge(prev, name, style="invis")
            prev = name


def _graph_title(g: nx.DiGraph, view: View, notes: list[str] = ()) -> str:
    e = html.escape
    collapsed = view.depth is not None and any(vn.kind == "module" for vn in view.nodes.values())
    shown = [f"modules collapsed at depth {view.depth}" if collapsed else "every module expanded"]
    if view.opened is not None:
        shown = [f"cost-guided: the {len(view.opened)} costliest modules opened" if view.opened else
                 "cost-guided: the costliest module does not fit the window opened"]
    if view.rolled:
        shown.append("identical consecutive blocks rolled (×k)")
    if view.hidden_scalars:
        shown.append(f"{view.hidden_scalars} scalar nodes hidden")
    if view.folded_params:
        shown.append(f"{view.folded_params} parameter inputs folded into their users")
    inputs = ", ".join(_shape_text(s) if isinstance(s, tuple) else str(s) for s in g.graph.get("input_shapes", []))
    lines = [
        f"<b>{e(g.graph.get('name', 'model'))}</b>   {e(human(view.total_macs))} MACs · "
        f"{e(st.flops_text(view.total_flops))} · {e(human(g.graph.get('total_params', 0)))} params",
        *_wrap(f"input {inputs} · {g.graph.get('capture', '')} capture · {len(view.nodes):,} nodes drawn", shown),
    ] + [e(n) for n in [*view.notes, *notes]]
    # Of the report's notes only graph breaks explain the picture; the others (capture fallbacks) are the report's.
    lines += [f"<font point-size='10'>{e(_title_note(n))}</font>".replace("'", '"') for n in g.graph.get("notes", [])
              if "graph break" in n]
    return "<" + "<br/>".join(lines) + ">"


def _wrap(head: str, parts: list[str], width: int = 110) -> list[str]:
    """The title's second line, split in two where one line would make the picture wider than its graph."""
    line = head + ": " + ", ".join(parts)
    return [html.escape(line)] if len(line) <= width else [html.escape(head), html.escape("; ".join(parts))]


def _title_note(note: str, limit: int = 150) -> str:
    """A report note as a line of the picture's title: the source location of an error (a path, often long) is
    left to the report, and what is still too long for the picture's width is cut."""
    head, at, rest = note.partition(" at /")
    if at:
        _, semi, after = rest.partition("; ")
        note = head + (semi + after if semi else "")
    return note if len(note) <= limit else note[: limit - 1].rstrip() + "…"


def _layout_attrs(n: int) -> dict[str, str]:
    attrs = dict(rankdir="TB", nodesep="0.18", ranksep="0.28", outputorder="edgesfirst", newrank="true",
                 fontname=st.FONT, fontsize="13", labelloc="t", bgcolor="white", pad=f"{PAD / 72:.1f}")
    if n > BIG:
        # dot's x-placement runs network simplex until it converges: over a minute on 5,000 nodes.
        # About 500 iterations give a near-identical picture in well under a second.
        limit = f"{NS_ITERATIONS / n:.3f}"
        attrs.update(nslimit=limit, nslimit1=limit)
    return attrs


def view_to_dot(g: nx.DiGraph, view: View, top: int = 0, color: str = "flops", columns: int | None = None,
                title: bool = True, legend: bool = True) -> str:
    """DOT text of ``view``; the explorer leaves out the ``title`` and the ``legend``, which its page shows."""
    edges, refs, note = _short_edges(view)
    after = _after_previous(view, edges)
    lay = layout(view, edges + after, _sizes(view, color), refs)
    breaks = wrap_breaks(lay, columns)
    rank = lay.rank
    dot = graphviz.Digraph(name=g.graph.get("name", "model"))
    dot.attr("graph", label=_graph_title(g, view, [note] if note else []) if title else "",
             tooltip=g.graph.get("name", "model"), **_layout_attrs(len(view.nodes)))
    if columns is None and title and fit(lay, breaks) >= FIT_SCALE:
        # Columns were chosen to fit the window, by an estimate; where they do by shrinking the picture somewhat
        # (as the cost-guided picture is chosen to), dot scales it down to the window. Past that, text would be
        # too small to read: the picture keeps its size.
        dot.attr("graph", size=f"{(SCREEN[0] - 2 * PAD) / 72:.3f},{(SCREEN[1] - 2 * PAD) / 72:.3f}")
    dot.attr("edge", color=st.EDGE, arrowsize="0.6", penwidth="1.1")
    shares = [_share(vn, view, color) for vn in view.nodes.values()]
    max_share = max((x for x in shares if x > 0), default=1.0)
    if legend:
        _legend(dot, max_share, view, top, color, g.graph.get("roofline_device", ""))

    children: dict[str, list[ViewCluster]] = {}
    for cl in sorted(view.clusters.values(), key=lambda c: c.order):
        children.setdefault(cl.parent, []).append(cl)
    homed: dict[str, list[ViewNode]] = {}
    for vn in sorted(view.nodes.values(), key=lambda v: v.order):
        homed.setdefault(vn.home if vn.home in view.clusters else "", []).append(vn)

    def fill(sub: graphviz.Digraph, path: str) -> None:
        for vn in homed.get(path, []):
            sub.node(_dot_id(vn.id), **_node_attrs(vn, view, max_share, color))
        for ref, of in refs.get(path, []):
            sub.node(ref, **_ref_attrs(view.nodes[of]))
        for cl in children.get(path, []):
            with sub.subgraph(name="cluster_" + cl.path) as c:
                c.attr(**_cluster_attrs(cl, view))
                fill(c, cl.path)

    fill(dot, "")

    def clusters_of(dot_id: str) -> set[str]:
        return set(lay.within.get(dot_id, ()))

    top_rank = {p: lo for p, (lo, _) in lay.spans.items()}  # each cluster's first rank: where its title sits

    for u, v, shape in edges:
        attrs = {"tooltip": _shape_text(shape)}
        # An edge across a column break does not rank its head below its tail: the next column starts at the top.
        if any(rank[u] < b <= rank[v] for b in breaks):
            attrs["constraint"] = "false"
        # An edge entering a cluster at its first rank comes down through its title, which is
        # left-justified: aim it at the head's right corner so it passes right of the title.
        if any(top_rank[p] == rank[v] for p in clusters_of(v) - clusters_of(u)):
            attrs["headport"] = "ne"
        dot.edge(u, v, **attrs)
    for u, v, _ in after:
        dot.edge(u, v, style="invis", **({"constraint": "false"} if any(rank[u] < b <= rank[v] for b in breaks) else {}))
    if breaks:
        _order_columns(dot, cut_into(lay, breaks, {_dot_id(vid): vn.order for vid, vn in view.nodes.items()}), legend)
    for u, v in view.breaks:
        dot.edge(_dot_id(u), _dot_id(v), style="dashed", color=st.ZERO_LINE, label="graph break", fontsize="9",
                 fontname=st.FONT, fontcolor=st.ZERO_TEXT, tooltip="graph break: Python runs between these graphs")
    return dot.source


def _order_columns(dot: graphviz.Digraph, cols: list[Column], legend: bool = True) -> None:
    """Columns left to right in execution order. dot orders the nodes of a rank to cross few edges, so a column
    could land left of the one before it (ResNet-50's layer1 did), and an invisible edge between two columns' first
    nodes on one rank does not hold them once they lie in different clusters (BERT's did not). What holds: a row of
    invisible points above the first rank, outside every cluster and chained left to right, each with edges down to
    its column's first and last nodes, which cross the others' unless the columns lie in the points' order (a cut
    through a module is kept next to the module's own nodes for the same reason: see ``wrap_breaks``). A column
    starts on the first rank, or, where it was cut through a module, on the rank where that module starts in the
    previous column."""
    # the legend, leftmost, starts on the graph's first rank like the columns (not on the points', above it)
    for i, col in enumerate([Column("legend_scale", "legend_scale")] * legend + cols):
        point = f"column/{i}"
        dot.node(point, shape="point", style="invis", width="0", height="0")
        dot.edge(point, col.first, style="invis")
        if col.last != col.first:
            dot.edge(point, col.last, style="invis")
        if i:
            dot.body.append(f'\t{{rank=same; "column/0"; {_q(point)}}}\n')
            dot.edge(f"column/{i - 1}", point, style="invis")
        if col is not cols[0] and col.first != "legend_scale":
            dot.body.append(f"\t{{rank=same; {_q(col.partner or cols[0].first)}; {_q(col.first)}}}\n")


def _after_previous(view: View, edges: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """Invisible edges to each op that reads no drawn node (Llama's positions, an ``arange``) from the node drawn
    before it in execution order: dot would put it on the first rank, above the input, and stretch its module's box
    up to the top with it. (An edge from the input instead would span the whole graph for a layer's constants far
    down, and dot spends minutes on hundreds of such edges.)"""
    fed = {v for _, v, _ in edges}
    out, prev = [], None
    for vid, vn in sorted(view.nodes.items(), key=lambda item: item[1].order):
        if vn.kind in ("op", "module") and _dot_id(vid) not in fed and prev is not None:
            out.append((prev, _dot_id(vid), None))
        if vn.kind != "const":
            prev = _dot_id(vid)
    return out


def _short_edges(view: View) -> tuple[list[tuple[str, str, Any]], dict[str, list[tuple[str, str]]], str]:
    """The edges to draw, with DOT ids. An edge spanning more than ``LONG_EDGE`` nodes (a rotary
    table or a mask read by every layer, a KV cache written to the output by every layer) is drawn
    to a reference copy of its far end instead: it would cross most of the picture, and dot spends
    minutes routing hundreds of such edges. Returns the edges, the references per cluster and a note."""
    order = {vid: i for i, vid in enumerate(sorted(view.nodes, key=lambda x: view.nodes[x].order))}
    long = [(u, v) for (u, v) in view.edges if order[v] - order[u] > LONG_EDGE]
    fan_out, fan_in = Counter(u for u, _ in long), Counter(v for _, v in long)
    edges, refs, made = [], {}, set()

    def home(vid: str) -> str:
        h = view.nodes[vid].home
        return h if h in view.clusters else ""

    for (u, v), shape in view.edges.items():
        if (u, v) not in long:
            edges.append((_dot_id(u), _dot_id(v), shape))
            continue
        # Copy the end shared by more long edges, next to the other end.
        of, near = (u, v) if fan_out[u] >= fan_in[v] else (v, u)
        ref = f"ref/{_dot_id(of)}/{home(near)}"
        if ref not in made:
            made.add(ref)
            refs.setdefault(home(near), []).append((ref, of))
        edges.append((ref, _dot_id(v), shape) if of == u else (_dot_id(u), ref, shape))
    note = (f"{len(long)} edges spanning more than {LONG_EDGE} nodes go to a copy of their far end drawn again "
            f"nearby (↪, {len(made)} copies)") if made else ""
    return edges, refs, note


def _ref_attrs(vn: ViewNode) -> dict[str, str]:
    name = _span(vn.path, vn.rolled_paths) if vn.kind == "module" else vn.detail.get("name", vn.type)
    shape = _shape_text(vn.shape)
    return dict(shape="box", style="rounded,dashed", color=st.ZERO_LINE, fontcolor=st.ZERO_TEXT, fontsize="8",
                fontname=st.FONT, height="0.2", margin="0.05,0.01",
                label=f"<↪ {html.escape(name)}" + (f' <font point-size="7">{html.escape(shape)}</font>>' if shape else ">"),
                tooltip=_lines(f"{name}, drawn again here", "the edge from where it is drawn would cross most of the graph"))


def _q(dot_id: str) -> str:
    return '"' + dot_id.replace('"', '\\"') + '"'


# ---- public entry points ------------------------------------------------------------------------


def _graph(source: "Report | nx.DiGraph", color: str = "flops", device: Any = None) -> nx.DiGraph:
    """The graph to draw; for ``color="time"`` or ``"bound"``, with each node's roofline time and bound on
    ``device`` (by default where the report was measured, else this machine's cpu) as ``est_time`` and
    ``bound`` attributes (a DiGraph must already carry them)."""
    if color not in COLORS:
        raise ValueError(f"color must be one of {', '.join(COLORS)}, got {color!r}")
    if isinstance(source, nx.DiGraph):
        return source
    from .graph import to_networkx

    g = to_networkx(source)
    if color != "flops":
        annotate(g, source.roofline(device if device is not None else default_device(source.measured_on)))
    return g


def annotate(g: nx.DiGraph, est: Any) -> None:
    """Give each node of ``g`` its roofline time and bound from ``est`` (a :class:`~fxflops.report.Roofline`)."""
    for name, e in est.nodes.items():
        if name in g:
            g.nodes[name]["est_time"] = e.time
            g.nodes[name]["bound"] = str(e.bound)
    g.graph["roofline_device"] = est.device.name
    g.graph["total_time"] = est.total_time


def to_dot(source: "Report | nx.DiGraph", *, depth: int | str | None = "auto", top: int = 0, roll: bool | None = None,
           hide_scalars: bool = True, show_params: bool = False, max_nodes: int | None = MAX_NODES,
           color: str = "flops", device: Any = None, columns: int | None = None) -> str:
    """DOT text of the annotated graph. ``depth="auto"`` (the default, as the CLI's) opens the modules that hold
    the FLOPs and collapses the rest, for as long as the picture fits a 1400×1000 window; ``depth=N`` collapses
    every module at depth N (root 0) into one node, ``depth=None`` draws every op; ``top=K`` marks the K costliest drawn nodes; ``roll=True`` rolls
    identical consecutive blocks into one (×k), ``None`` rolls with ``"auto"`` only; ``hide_scalars`` leaves out nodes that make no tensor and cost nothing;
    ``show_params`` draws parameters and buffers as nodes of their own instead of folding them into
    their first user. Past ``max_nodes`` drawn nodes the graph is rolled, then collapsed. ``color`` is what
    the fill shows: ``"flops"`` (share of the FLOPs), ``"time"`` (share of the roofline time on ``device``)
    or ``"bound"`` (compute- or memory-bound on ``device``); ``device`` defaults to where the report was
    measured, else this machine's ``"cpu"``. A long chain is wrapped into side-by-side columns, cut
    only between modules: ``columns=None`` picks the number that fits a 1400×1000 pixel window best,
    ``columns=1`` draws one tall strip."""
    if columns is not None and columns < 1:
        raise ValueError(f"columns must be 1 or more (None picks them), got {columns}")
    g = _graph(source, color, device)
    view = choose_view(g, depth, top, roll, hide_scalars, max_nodes, show_params, color)
    return view_to_dot(g, view, top, color, columns)


def render(source: "Report | nx.DiGraph", path: str | os.PathLike, *, format: str | None = None,
           depth: int | str | None = "auto", top: int = 0, roll: bool | None = None, hide_scalars: bool = True,
           show_params: bool = False, max_nodes: int | None = MAX_NODES, engine: str = "dot",
           color: str = "flops", device: Any = None, columns: int | None = None) -> Path:
    """Draw the annotated graph into ``path``; the format (svg, png, pdf) comes from its suffix."""
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"cannot render to {path.name!r}: the suffix must be one of {', '.join('.' + f for f in FORMATS)}")
    src = to_dot(source, depth=depth, top=top, roll=roll, hide_scalars=hide_scalars, show_params=show_params,
                 max_nodes=max_nodes, color=color, device=device, columns=columns)
    try:
        data = graphviz.Source(src, engine=engine).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RenderError(
            f"drawing needs Graphviz's `{engine}` program, which is not on PATH. What to do: install Graphviz "
            "(apt install graphviz, brew install graphviz or conda install -c conda-forge graphviz), or write the "
            "DOT text with report.to_dot() and draw it elsewhere"
        ) from None
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise RenderError(f"cannot write the graph to {str(path)!r}: {exc.strerror or exc}. What to do: "
                          "choose a path in a directory you can write to") from None
    return path
