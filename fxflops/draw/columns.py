"""Wrapping a tall drawing into side-by-side columns that fit a screen and read left to right in execution order.

A deep model drawn top to bottom is one long strip (ResNet-50 at depth 2 is 537×2022 pt). The strip is cut at
ranks of the layout into columns; the edge across a cut does not rank its head below its tail, so the next
column starts at the top again. A cut between modules keeps every module cluster in one column; a cut
inside a module (MobileNetV3's ``features`` is one chain of 16 blocks) draws that module as one box holding
several columns. Sizes are estimated here, before dot runs, so that choosing what to draw needs no Graphviz.

Left to right is not dot's to choose (``fxflops.draw.dot._order_columns``): a row of invisible points above
the first rank, chained left to right, holds each column by its first and its last node. Where the estimate
needs it, the picture is shrunk to fit, never past ``MIN_SCALE``.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .view import View

SCREEN = (1050, 750)  # points: a 1400×1000 pixel window (96 dpi), what the default layout is fitted to
PAD = 0.3 * 72  # points of the DOT's pad around the drawing, each side
LEGEND_W, TITLE_H = 200, 75  # points the legend takes left of the graph, and the title above it
MIN_SCALE = 0.8  # the most a cost-guided picture is shrunk to fit SCREEN: 12-point labels still read at 13 pixels
FIT_SCALE = 0.75  # any picture wrapped into columns is shrunk to SCREEN down to this; one that needs more is left
NODE_SEP, RANK_SEP = 13, 20  # points between nodes side by side and between ranks (the DOT's nodesep, ranksep)
COLUMN_PAD = 50  # points between columns (edges from one to the next run there)
WIDE = 1.2  # dot spreads a column wider than its widest rank: nodes of a chain do not line up, edges bend round them
CLUSTER_TOP, CLUSTER_SIDE = 42, 8  # a cluster's title and margin above its first rank; its margin at each side
MAX_COLUMNS = 6
MIN_PART = 3  # ranks of a module that a cut through it leaves on each side, at least


def ranks(edges: list[tuple[str, str, Any]], loops: list[tuple[str, str]] | None = None) -> dict[str, int]:
    """dot's rank of each node, as the longest path to it (edges point down the layout). The edges left out to
    break loops are added to ``loops``."""
    g = nx.DiGraph((u, v) for u, v, _ in edges)
    # A module called several times (ResNet's shared relu) and collapsed into one node closes a loop;
    # dot draws the loop's last edge upwards, so rank without it.
    while not nx.is_directed_acyclic_graph(g):
        u, v = nx.find_cycle(g)[-1][:2]
        g.remove_edge(u, v)
        if loops is not None:
            loops.append((u, v))
    rank: dict[str, int] = {}
    for v in nx.topological_sort(g):
        rank[v] = max((rank[u] + 1 for u in g.predecessors(v)), default=0)
    return rank


def dot_id(vid: str) -> str:
    """View ids are ``n:NAME`` or ``m:PATH``; DOT reads ``a:b`` as a port, so spell them without colons."""
    kind, rest = vid.split(":", 1)
    return rest if kind == "n" else f"module/{rest}"


def clusters_of(view: View, vid: str) -> list[str]:
    """The clusters a view node is drawn in, innermost first."""
    vn = view.nodes.get(vid)
    return _chain(view, vn.home if vn is not None else "")


def _chain(view: View, home: str) -> list[str]:
    p, out = (home if home in view.clusters else ""), []
    while p:
        out.append(p)
        p = view.clusters[p].parent if p in view.clusters else ""
    return out


@dataclass
class Layout:
    """What the column choice works from: each drawn node's rank and clusters, and each rank's size."""
    rank: dict[str, int]  # DOT id -> rank
    within: dict[str, list[str]]  # DOT id -> its clusters, innermost first
    heights: list[float]  # points per rank, the space below it included
    widths: list[float]  # points per rank, its nodes side by side
    spans: dict[str, tuple[int, int]]  # cluster -> its first and last rank
    tangled: set[str]  # clusters holding a loop or a module called several times drawn once: no order to cut

    def __post_init__(self) -> None:
        # worked out once: the choice of columns asks for them for every cut of every number of columns tried
        n = len(self.heights)
        self.starting, self.ending, self._crossed = [0] * n, [0] * n, [[] for _ in range(n + 1)]
        for c, (lo, hi) in self.spans.items():
            self.starting[lo] += 1
            self.ending[hi] += 1
            for b in range(lo + 1, hi + 1):
                self._crossed[b].append(c)
        self.nesting = {c: len(chain) - i for chain in self.within.values() for i, c in enumerate(chain)}

    @property
    def n(self) -> int:
        return len(self.heights)

    def crossed(self, b: int) -> list[str]:
        """The clusters a cut before rank ``b`` runs through."""
        return self._crossed[b] if 0 <= b < len(self._crossed) else []


def layout(view: View, edges: list[tuple[str, str, Any]], sizes: dict[str, tuple[float, float]],
           refs: dict[str, list[tuple[str, str]]] | None = None) -> Layout:
    """``edges`` and ``refs`` as the DOT has them (drawn edges, the reference copies drawn in each cluster);
    ``sizes``: each DOT node's estimated points (width, height)."""
    loops: list[tuple[str, str]] = []
    rank = ranks(edges, loops)
    by_id = {dot_id(vid): vid for vid in view.nodes}
    home = {ref: cl for cl, rs in (refs or {}).items() for ref, _ in rs}
    within = {d: clusters_of(view, by_id[d]) if d in by_id else _chain(view, home.get(d, "")) for d in rank}
    n = max(rank.values(), default=-1) + 1
    heights, widths = [0.0] * n, [-NODE_SEP] * n
    for d, r in rank.items():
        w, h = sizes.get(d, (60.0, 20.0))
        heights[r] = max(heights[r], h + RANK_SEP)
        widths[r] += w + NODE_SEP
    spans: dict[str, tuple[int, int]] = {}
    for d, r in rank.items():
        for c in within[d]:
            lo, hi = spans.get(c, (r, r))
            spans[c] = (min(lo, r), max(hi, r))
    tangled = {c for u, v in loops for c in set(within.get(u, ())) & set(within.get(v, ()))}
    # a node standing for several calls gathers edges from all over its module, a loop in all but name
    tangled |= {c for d, vid in by_id.items() if view.nodes[vid].calls > 1 for c in within.get(d, ())}
    return Layout(rank, within, heights, widths, spans, tangled)


def size(lay: Layout, breaks: list[int]) -> tuple[float, float]:
    """Estimated points (width, height) of the graph cut at ``breaks``, legend and title left out.

    dot's ranks run across every column: a column starts on the first rank, or, cut through a module, on the rank
    where that module starts in the previous column; a rank is as tall as its tallest node in any column, and
    a cluster title starting on it (in any column) pushes it down in all of them."""
    cuts = [0, *breaks, lay.n]
    height: dict[int, float] = {}
    w, offset = 0.0, 0
    for k, (a, b) in enumerate(zip(cuts, cuts[1:])):
        if k:
            inner = max(lay.crossed(a), key=lambda p: p.count("."), default=None)
            offset = offset + max(lay.spans[inner][0], cuts[k - 1]) - cuts[k - 1] if inner else 0
        for r in range(a, b):
            v = offset + r - a
            height[v] = max(height.get(v, 0.0),
                            lay.heights[r] + lay.starting[r] * CLUSTER_TOP + lay.ending[r] * CLUSTER_SIDE)
        # each level of clusters open in the column adds their margins at its sides
        nesting = max((lay.nesting[c] for c, (lo, hi) in lay.spans.items() if lo < b and hi >= a), default=0)
        w += WIDE * max(lay.widths[a:b]) + COLUMN_PAD + 2 * CLUSTER_SIDE * nesting
    # with columns, a row of invisible points above the first rank orders them (see fxflops.draw.dot)
    return w - COLUMN_PAD, sum(height.values()) - RANK_SEP + (RANK_SEP if breaks else 0)


def fit(lay: Layout, breaks: list[int]) -> float:
    """How far the picture cut at ``breaks`` must shrink to fit SCREEN (1 = not at all; smaller is worse)."""
    if not lay.n:
        return 1.0
    w, h = size(lay, breaks)
    return min(1.0, (SCREEN[0] - 2 * PAD - LEGEND_W) / w, (SCREEN[1] - 2 * PAD - TITLE_H) / h)


def wrap_breaks(lay: Layout, columns: int | None = None) -> list[int]:
    """The ranks where the layout starts a new column: cut into ``columns``, or (None) into the number that lets
    the picture fit SCREEN with the least shrinking. Cuts between modules are preferred; a cut runs through a module
    only where that fits better."""
    n = lay.n
    if n < 2 or columns == 1:
        return []
    start = [0.0]
    for h in lay.heights:
        start.append(start[-1] + h)

    # A cut runs through a module only where it leaves at least MIN_PART of the module's ranks on each side (a
    # module of a few nodes cut in two reads worse than a column that shrinks), never through a loop, and next to
    # one of the module's own nodes: between two of its sub-modules' boxes (BERT's self-attention and its output
    # projection) dot orders those boxes by itself, and put the later one on the left.
    held: dict[str, list[int]] = {}  # the ranks each cluster has nodes on
    own: set[tuple[str, int]] = set()  # (cluster, rank) where a node is drawn in the cluster itself
    for d, r in lay.rank.items():
        for c in lay.within[d]:
            held.setdefault(c, []).append(r)
        if lay.within[d]:
            own.add((lay.within[d][0], r))
    held = {c: sorted(set(rs)) for c, rs in held.items()}

    def can_cut(b: int) -> bool:
        crossed = lay.crossed(b)
        inner = max(crossed, key=lambda p: p.count("."), default=None)
        return all(c not in lay.tangled and MIN_PART <= bisect_left(held[c], b) <= len(held[c]) - MIN_PART
                   for c in crossed) and (inner is None or (inner, b - 1) in own or (inner, b) in own)

    through = [b for b in range(1, n) if can_cut(b)]

    def cut(c: int, clean: bool) -> list[int]:
        breaks: list[int] = []
        for k in range(1, c):
            target = k * start[-1] / c
            ok = [b for b in through if (not breaks or b >= breaks[-1] + (MIN_PART if lay.crossed(b) else 2))
                  and not (clean and lay.crossed(b))]
            if ok:  # closest to an even share of the height; of two as close, the one through fewer modules
                breaks.append(min(ok, key=lambda b: (abs(start[b] - target) + 30 * len(lay.crossed(b)), b)))
        return breaks

    if columns is not None:
        return cut(columns, clean=_has_clean(lay, columns))
    best = {clean: max((cut(c, clean) for c in range(1, MAX_COLUMNS + 1)), key=lambda b: (round(fit(lay, b), 2), -len(b)))
            for clean in (True, False)}
    # through modules only where that fits clearly better: a module drawn whole reads better
    return best[False] if fit(lay, best[False]) > fit(lay, best[True]) + 0.05 else best[True]


def _has_clean(lay: Layout, columns: int) -> bool:
    """Whether ``columns`` columns can all be cut between modules."""
    return sum(1 for b in range(1, lay.n) if not lay.crossed(b)) >= columns - 1


@dataclass
class Column:
    first: str  # DOT id of its first node (smallest rank, then execution order)
    last: str  # and of its last
    partner: str | None = None  # cut through modules: the first node of the innermost module cut, previous column


def columns(lay: Layout, breaks: list[int], order: dict[str, int]) -> list[Column]:
    """The columns the cuts at ``breaks`` make, left to right."""
    cuts = [0, *breaks, lay.n]
    column = {d: next(i for i, b in enumerate(cuts[1:]) if r < b) for d, r in lay.rank.items()}

    def first(nodes: list[str]) -> str | None:
        return min(nodes, key=lambda d: (lay.rank[d], order.get(d, 0)), default=None)

    out: list[Column] = []
    for i, a in enumerate(cuts[:-1]):
        inner = max(lay.crossed(a), key=lambda p: p.count("."), default="") if i else ""
        here = [d for d in column if column[d] == i]
        head = first([d for d in here if not inner or inner in lay.within[d]])
        if head is None:
            continue
        partner = first([d for d in column if column[d] == i - 1 and inner in lay.within[d]]) if inner else None
        last = max(here, key=lambda d: (lay.rank[d], order.get(d, 0)))
        out.append(Column(head, last, partner))
    return out
