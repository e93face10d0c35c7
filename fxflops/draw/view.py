"""What the picture shows: the exported graph reduced to drawable nodes, edges and module clusters.

Three reductions, applied in this order to the DiGraph of :mod:`fxflops.draw.graph`:

* **roll** — runs of consecutive sibling modules that are identical (same type, same nodes with the
  same ops, shapes and costs, wired the same way) are folded onto the first of the run, which then
  stands for all of them ("×12") and carries their summed cost;
* **hide scalars** — nodes that produce no tensor and cost nothing (``x.size()``, ``_assert``, shape
  arithmetic) are left out, so the data flow of tensors stays readable;
* **depth** — every module at depth ``N`` (root is 0) becomes one node carrying the subtotal of the
  nodes it hides; modules above it become nested clusters.

Costs are only ever summed from the nodes of the exported graph, so every subtotal drawn can be
checked against the report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from ..types import OP_KINDS


@dataclass
class ViewNode:
    id: str
    kind: str  # op | module | input | output | const
    members: list[str]  # exported-graph nodes it stands for, rolled copies included
    path: str  # module path: the node's own module, or the collapsed module
    type: str  # op name for ops, class name for modules
    home: str  # the cluster it is drawn in ("" = top level)
    order: int
    macs: int = 0
    flops: int = 0
    params: int = 0
    time: float = 0.0  # roofline seconds, when the graph carries them (render(color="time" | "bound"))
    compute_time: float = 0.0  # the part of ``time`` spent in compute-bound nodes
    status: str = ""
    shape: Any = None
    repeat: int = 1  # ×k of a rolled block
    rolled_paths: list[str] = field(default_factory=list)
    rank: int = 0  # the best of ranks, else 0
    ranks: list[int] = field(default_factory=list)  # which of the top-K costliest graph nodes it holds (1..K)
    calls: int = 1  # a collapsed leaf module called from several places (ResNet's shared relu): how many
    detail: dict = field(default_factory=dict)  # the exported node's attributes, for single nodes


@dataclass
class ViewCluster:
    path: str
    type: str
    parent: str
    order: int
    macs: int = 0
    flops: int = 0
    params: int = 0
    repeat: int = 1
    rolled_paths: list[str] = field(default_factory=list)


@dataclass
class View:
    nodes: dict[str, ViewNode]
    edges: dict[tuple[str, str], Any]  # (u, v) -> tensor shape carried
    clusters: dict[str, ViewCluster]
    total_flops: int
    total_macs: int
    depth: int | None
    rolled: bool
    hidden_scalars: int
    folded_params: int = 0
    breaks: list[tuple[str, str]] = field(default_factory=list)  # graph i's output -> graph i+1's inputs
    notes: list[str] = field(default_factory=list)
    total_time: float = 0.0  # the model's roofline seconds, when the graph carries them
    opened: list[str] | None = None  # the modules a cost-guided view opened (see opening_order)


# ---- module tree helpers ------------------------------------------------------------------------


def parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def path_depth(path: str) -> int:
    return path.count(".") + 1 if path else 0


def truncate(path: str, depth: int) -> str:
    return ".".join(path.split(".")[:depth]) if depth else ""


def is_within(path: str, block: str) -> bool:
    return block == "" or path == block or path.startswith(block + ".")


def _common_path(paths: list[str]) -> str:
    parts = [p.split(".") if p else [] for p in paths]
    out = []
    for level in zip(*parts):
        if any(x != level[0] for x in level):
            break
        out.append(level[0])
    return ".".join(out)


def is_const(attrs: dict) -> bool:
    """Parameters and buffers: ``get_attr`` nodes, or the lifted placeholders of a dynamo graph."""
    if attrs["kind"] == "get_attr":
        return True
    t = str(attrs.get("target", "")).lower()
    return attrs["kind"] == "placeholder" and ("_parameters_" in t or "_buffers_" in t)


def is_scalar(attrs: dict) -> bool:
    """A node that produces no tensor and costs nothing (shape arithmetic, asserts)."""
    return (
        attrs["kind"] in OP_KINDS
        and not attrs.get("output_shapes")
        and not attrs.get("flops")
        and attrs.get("status") != "uncounted"
    )


def node_status(attrs: dict) -> str:
    """The report status of a drawn node (``partial``: priced, with ops inside it left out)."""
    return str(attrs.get("status", ""))


_SEVERITY = {"uncounted": 3, "partial": 2}


def _worse(a: str, b: str) -> str:
    """The status a node standing for several shows: the worst audit finding, else the first status."""
    if _SEVERITY.get(b, 0) > _SEVERITY.get(a, 0):
        return b
    return a or b


def owners(g: nx.DiGraph) -> dict[str, str]:
    """The module each node belongs to. Constants belong where they are used."""
    own: dict[str, str] = {}
    for n, a in g.nodes(data=True):
        own[n] = a.get("module_path", "") if a["kind"] in OP_KINDS else ""
    for n, a in g.nodes(data=True):
        if is_const(a):
            users = [own[s] for s in g.successors(n)]
            own[n] = _common_path(users) if users else ""
    return own


def without_stubs(g: nx.DiGraph) -> nx.DiGraph:
    """``g`` with the stubs of reused blocks (see :mod:`fxflops.draw.graph`) taken out and their inputs
    wired straight to their users: a reused block then looks like the block it copies."""
    stubs = [n for n, a in g.nodes(data=True) if a.get("stub_of")]
    if not stubs:
        return g
    h = g.copy()
    for s in stubs:
        for u in h.predecessors(s):
            for v in h.successors(s):
                h.add_edge(u, v, **h.edges[u, v] if h.has_edge(u, v) else h.edges[u, s])
        h.remove_node(s)
    return h


# ---- roll ---------------------------------------------------------------------------------------


def _rel(path: str, block: str) -> str:
    return path[len(block):] if block and path.startswith(block) else path


def _signature(g: nx.DiGraph, members: list[str], block: str, own: dict[str, str], mtype: str) -> tuple:
    idx = {n: i for i, n in enumerate(members)}
    items = []
    for n in members:
        a = g.nodes[n]
        items.append((
            a["kind"], a["op"], _rel(own[n], block), repr(a.get("output_shapes")), repr(a.get("input_shapes")),
            a.get("flops", 0), a.get("macs", 0), a.get("params", 0), a.get("status", ""),
            _rel(str(a.get("target", "")), block) if is_const(a) else "",
        ))
    inner = sorted((idx[u], idx[v]) for u in members for v in g.successors(u) if v in idx)
    outer_in = sorted({idx[v] for v in members for u in g.predecessors(v) if u not in idx})
    return (mtype, tuple(items), tuple(inner), tuple(outer_in))


def roll_blocks(g: nx.DiGraph, own: dict[str, str], modules: dict) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Fold runs of identical consecutive sibling modules onto their first block.

    Returns ``rep`` (node -> the node of the first block it is folded onto; unfolded nodes are
    absent) and ``runs`` (first block path -> the paths of the whole run)."""
    order = {n: a["order"] for n, a in g.nodes(data=True)}
    placed = [n for n in sorted(g.nodes, key=order.__getitem__) if g.nodes[n]["kind"] not in ("placeholder", "output")
              or is_const(g.nodes[n])]
    rep: dict[str, str] = {}
    runs: dict[str, list[str]] = {}

    def mtype(path: str, members: list[str]) -> str:
        if path in modules:
            return modules[path][0]
        return next((g.nodes[n].get("module_type", "") for n in members if own[n] == path), "")

    # Walk the module tree top-down; each block's nodes are split among its children in one pass.
    stack = [("", placed)]
    while stack:
        block, inside = stack.pop()
        d = path_depth(block)
        children: dict[str, list[str]] = {}  # insertion order = order of first node
        for n in inside:
            if n not in rep and path_depth(own[n]) > d:
                children.setdefault(truncate(own[n], d + 1), []).append(n)
        names = list(children)
        sigs = [_signature(g, children[c], c, own, mtype(c, children[c])) for c in names]
        i = 0
        while i < len(names):
            j = i + 1
            while j < len(names) and sigs[j] == sigs[i]:
                j += 1
            if j - i > 1:
                first = children[names[i]]
                for c in names[i + 1:j]:
                    for a, b in zip(children[c], first):
                        rep[a] = b
                runs[names[i]] = names[i:j]
            stack.append((names[i], children[names[i]]))
            i = j
    return rep, runs


def _final(rep: dict[str, str], n: str) -> str:
    while n in rep:
        n = rep[n]
    return n


# ---- the view -----------------------------------------------------------------------------------


# ---- cost-guided depth --------------------------------------------------------------------------

BUDGET = 40  # drawn nodes past which a picture is no longer read at a glance, whatever fits the window
MIN_SHARE = 0.01  # a module holding less of the FLOPs than this stays one box


def opening_order(g: nx.DiGraph, own: dict[str, str], rolled: tuple, min_share: float = MIN_SHARE,
                  hide_scalars: bool = True) -> list[tuple[list[str], int]]:
    """The modules a cost-guided picture opens (draws as clusters), in the order it opens them (a module holding only
    one module opens with it, in one step), each step with about how many nodes the picture has after it: starting from the model, the costliest module still closed is opened
    next, so no cheaper module is opened while a costlier one stays closed; modules under ``min_share`` of the FLOPs
    stay closed. Rolled blocks (``rolled``: :func:`roll_blocks`' result) count once, with the FLOPs of their run."""
    rep, runs = rolled
    modules: dict = g.graph.get("modules", {})
    flops: dict[str, int] = {}
    items: dict[str, set] = {}  # module -> what opening it draws: its own ops (as 1-tuples) and its children
    for n, a in g.nodes(data=True):
        if a["kind"] not in OP_KINDS or n in rep or (hide_scalars and is_scalar(a)):
            continue
        path = own[n]
        parts = path.split(".") if path else []
        for d in range(len(parts) + 1):
            block = ".".join(parts[:d])
            # an op's name can equal a module's path (fx names a leaf's call after it): ops are kept apart as (name,)
            items.setdefault(block, set()).add((n,) if d == len(parts) else ".".join(parts[:d + 1]))
    for p, row in modules.items():
        flops[p] = row[4]
    for first, paths in runs.items():
        flops[first] = sum(flops.get(p, 0) for p in paths)
    total = flops.get("", 0) or g.graph.get("total_flops", 0) or 1
    size = len(items.get("", ()))
    heap = [c for c in items.get("", ()) if isinstance(c, str)]
    order: list[tuple[str, int]] = []
    while heap:
        heap.sort(key=lambda c: flops.get(c, 0))
        best = heap.pop()
        inside = items[best]
        if flops.get(best, 0) < min_share * total:
            break
        if len(inside) < 2 and not any(isinstance(c, str) for c in inside):
            continue  # a leaf with one op: opening it shows the same
        size += len(inside) - 1
        # a module holding one module and nothing else (MobileNetV3's features.2 around its block) shows the same
        # opened or not: the one inside is opened with it
        if order and order[-1][1] == size - len(inside) + 1 and items[order[-1][0][-1]] == {best}:
            order[-1] = ([*order[-1][0], best], size)
        else:
            order.append(([best], size))
        heap += [c for c in inside if isinstance(c, str)]
    return order


def build_view(g: nx.DiGraph, depth: int | None = None, roll: bool = False, hide_scalars: bool = True,
               top: int = 0, show_params: bool = False, rolled: tuple | None = None, keep_leaves: bool = False,
               opened: set[str] | None = None) -> View:
    """The drawable view; ``rolled`` may pass in :func:`roll_blocks`' result when building several views.
    ``keep_leaves`` draws each call of a leaf module at ``depth`` as its op (the explorer's choice: a module called
    twice, collapsed into one node, would draw a loop). ``opened`` (:func:`opening_order`), instead of ``depth``, names
    the modules drawn as clusters: each node goes into its outermost module not opened."""
    g = without_stubs(g)
    modules: dict = g.graph.get("modules", {})
    own = owners(g)
    has_children = {parent(p) for p in modules if p} | {parent(p) for p in own.values() if p}
    if roll:
        rep, runs = rolled if rolled is not None else roll_blocks(g, own, modules)
    else:
        rep, runs = {}, {}
    run_of = {paths[0]: paths for paths in runs.values()}

    hidden = {n for n, a in g.nodes(data=True) if hide_scalars and is_scalar(a)}
    # A forward's defaulted argument that nothing reads (ViT's attn_mask, is_causal) is no input of the model:
    # at most the trace's check that it kept its default (_assert_is_none) reads it, and no output depends on it.
    feeds = set().union(*(nx.ancestors(g, n) for n, a in g.nodes(data=True) if a["kind"] == "output"))
    unused = {n for n, a in g.nodes(data=True) if a["kind"] == "placeholder" and not is_const(a) and n not in feeds}
    # Parameters and buffers are folded into the node that first uses them, as a leaf module's own
    # are: so a dynamo graph, which lifts them all to inputs, looks like an fx graph.
    folded = set() if show_params else {n for n, a in g.nodes(data=True) if is_const(a)}

    def collapsed_into(n: str) -> str | None:
        """The depth-``N`` module a representative node disappears into, if any."""
        a = g.nodes[n]
        if opened is not None:
            if not (a["kind"] in OP_KINDS or is_const(a)):
                return None
            parts = own[n].split(".") if own[n] else []
            return next((".".join(parts[:d]) for d in range(1, len(parts) + 1) if ".".join(parts[:d]) not in opened),
                        None)
        if depth is None or not (a["kind"] in OP_KINDS or is_const(a)) or path_depth(own[n]) < depth:
            return None
        if keep_leaves and a["kind"] == "call_module" and path_depth(own[n]) == depth:
            return None
        return truncate(own[n], depth)

    nodes: dict[str, ViewNode] = {}
    reps_of: dict[str, list[str]] = {}  # view id -> representative exported nodes (first block only)
    for n in sorted(g.nodes, key=lambda x: g.nodes[x]["order"]):
        if n in hidden or n in folded or n in unused:
            continue
        r = _final(rep, n)
        mod = collapsed_into(r)
        vid = "n:" + r if mod is None else "m:" + mod
        a = g.nodes[n]
        vn = nodes.get(vid)
        if vn is None:
            vn = nodes[vid] = _new_node(g, vid, r, mod, own, modules, has_children)
        vn.members.append(n)
        vn.macs += a.get("macs", 0)
        vn.flops += a.get("flops", 0)
        vn.params += a.get("params", 0)
        vn.time += a.get("est_time", 0.0)
        vn.compute_time += a.get("est_time", 0.0) if a.get("bound") == "compute" else 0.0
        vn.status = _worse(vn.status, node_status(a))
        if r == n:
            reps_of.setdefault(vid, []).append(n)
            if vn.kind == "module" and a["kind"] == "call_module" and own[n] == vn.path and len(reps_of[vid]) > 1:
                vn.calls += 1

    view_of = {}
    for vid, vn in nodes.items():
        for n in vn.members:
            view_of[n] = vid
    for n in sorted(folded, key=lambda x: g.nodes[x]["order"]):
        user = min((u for u in g.successors(n) if u in view_of), key=lambda u: g.nodes[u]["order"], default=None)
        if user is None:
            hidden.add(n)
            continue
        vn = nodes[view_of[user]]
        vn.members.append(n)
        vn.params += g.nodes[n].get("params", 0)

    # Edges between drawn nodes; edges between two copies of a rolled block would point backwards.
    edges: dict[tuple[str, str], Any] = {}
    first = {vid: vn.order for vid, vn in nodes.items()}
    for u, v, data in g.edges(data=True):
        if u not in view_of or v not in view_of or u in folded:
            continue
        a, b = view_of[u], view_of[v]
        if a == b or (rep and first[a] >= first[b]):
            continue
        edges.setdefault((a, b), data.get("shape"))

    for vid, vn in nodes.items():
        vn.shape = _exit_shape(g, reps_of.get(vid, vn.members), view_of, vid)
        # A collapsed module, or an op that is a whole leaf module, shows the ×k of its run itself.
        key = vn.path if vn.kind == "module" else own[reps_of[vid][0]] if vn.kind == "op" and vid in reps_of else None
        if key in run_of and (vn.kind == "module" or key not in has_children):
            vn.repeat, vn.rolled_paths = len(run_of[key]), run_of[key]

    clusters = _clusters(nodes, modules, run_of)
    breaks = _graph_breaks(g, view_of)
    # The K costliest graph nodes, ranked as Report.top ranks them, so the picture and the printed
    # table mean the same K; a collapsed or rolled node shows the best rank it holds.
    costliest = sorted((n for n, a in g.nodes(data=True) if a["kind"] in OP_KINDS),
                       key=lambda n: (-g.nodes[n].get("flops", 0), n))[:top]
    for i, n in enumerate(costliest):
        vn = nodes.get(view_of.get(n, ""))
        if vn is not None:
            vn.ranks.append(i + 1)
            vn.rank = vn.rank or i + 1
    return View(nodes, edges, clusters, g.graph.get("total_flops", sum(v.flops for v in nodes.values())),
                g.graph.get("total_macs", sum(v.macs for v in nodes.values())), depth, bool(roll), len(hidden),
                len(folded - hidden), breaks, total_time=g.graph.get("total_time", 0.0),
                opened=sorted(opened - {""}) if opened is not None else None)


def _graph_breaks(g: nx.DiGraph, view_of: dict[str, str]) -> list[tuple[str, str]]:
    """Where one captured graph hands over to the next (Python runs in between, so this is order,
    not a data-flow edge): each graph's output to the next graph's inputs."""
    outputs: dict[int, str] = {}
    inputs: dict[int, list[str]] = {}
    for n, a in g.nodes(data=True):
        if n not in view_of or a.get("graph", -1) < 0:
            continue
        if a["kind"] == "output":
            outputs[a["graph"]] = view_of[n]
        elif a["kind"] == "placeholder" and not is_const(a):
            inputs.setdefault(a["graph"], []).append(view_of[n])
    return [(outputs[i], v) for i in sorted(outputs) for v in inputs.get(i + 1, [])]


def _new_node(g: nx.DiGraph, vid: str, r: str, mod: str | None, own: dict[str, str], modules: dict,
              has_children: set[str]) -> ViewNode:
    ra = g.nodes[r]
    if mod is not None:
        typ = modules[mod][0] if mod in modules else (ra.get("module_type", "") if own[r] == mod else "")
        return ViewNode(vid, "module", [], mod, typ or (g.graph.get("name", "model") if not mod else ""),
                        parent(mod) if mod else "", ra["order"])
    if ra["kind"] == "output":
        kind = "output"
    elif is_const(ra):
        kind = "const"
    elif ra["kind"] == "placeholder":
        kind = "input"
    else:
        kind = "op"
    p = own[r]
    if kind in ("input", "output") or not p:
        home = ""
    elif ra["kind"] == "call_module" or p not in has_children:
        home = parent(p)  # a leaf module is the node itself, not a cluster around it
    else:
        home = p
    path = ra.get("module_path", "") if kind == "op" else str(ra.get("target", ""))
    return ViewNode(vid, kind, [], path, ra["op"], home, ra["order"], detail=dict(ra))


def _exit_shape(g: nx.DiGraph, members: list[str], view_of: dict[str, str], vid: str) -> Any:
    """The shape that leaves a node: the last member with a tensor output used outside it."""
    with_shape = [n for n in members if g.nodes[n].get("output_shapes")]
    for n in reversed(with_shape):
        if any(view_of.get(s) != vid for s in g.successors(n)):
            return g.nodes[n]["output_shapes"][0]
    return g.nodes[with_shape[-1]]["output_shapes"][0] if with_shape else None


def _clusters(nodes: dict[str, ViewNode], modules: dict, run_of: dict[str, list[str]]) -> dict[str, ViewCluster]:
    clusters: dict[str, ViewCluster] = {}
    for vn in sorted(nodes.values(), key=lambda v: v.order):
        p = vn.home
        chain = []
        while p:
            chain.append(p)
            p = parent(p)
        for c in reversed(chain):
            if c not in clusters:
                typ = modules.get(c, ("",))[0]
                clusters[c] = ViewCluster(c, typ, parent(c), vn.order)
        for c in chain:
            clusters[c].macs += vn.macs
            clusters[c].flops += vn.flops
            clusters[c].params += vn.params
    for c, cl in clusters.items():
        if c in run_of:
            cl.repeat, cl.rolled_paths = len(run_of[c]), run_of[c]

    # A cluster holding a single node and nothing else is just that node: draw it one level up.
    while True:
        inside: dict[str, list] = {c: [] for c in clusters}
        for vn in nodes.values():
            if vn.home:
                inside[vn.home].append(vn)
        for cl in clusters.values():
            if cl.parent:
                inside[cl.parent].append(cl)
        lone = [c for c, items in inside.items() if len(items) == 1 and isinstance(items[0], ViewNode)]
        # A cluster holding only one cluster (BERT's encoder around encoder.layer around layer 0) adds a title and
        # a margin and says nothing the inner one does not: the inner one is drawn in its place.
        wrappers = [c for c, items in inside.items() if len(items) == 1 and isinstance(items[0], ViewCluster)
                    and clusters[c].repeat == 1]
        if not lone and not wrappers:
            break
        for c in lone:
            vn = inside[c][0]
            vn.home = clusters[c].parent
            if clusters[c].repeat > 1 and vn.repeat == 1:
                vn.repeat, vn.rolled_paths = clusters[c].repeat, clusters[c].rolled_paths
            del clusters[c]
        for c in wrappers if not lone else ():
            inside[c][0].parent = clusters[c].parent
            del clusters[c]
    return clusters
