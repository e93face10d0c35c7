"""Compare reports: totals, per module and per op type, absolute and relative deltas against the first.

Modules are aligned to the first report (the baseline) level by level under matched parents: first by
name (so identical structures match by qualified path), then, among what is left, by the same position
among the parent's children *and* the same type. Whatever still has no partner is a row of its own,
present in one report only (:attr:`Align.ABSENT` elsewhere); nothing is matched silently.

The metrics are names (``METRICS``): ``total_<name>`` of a :class:`Report`, an attribute of a
:class:`ModuleRow`, a key of ``Report.by_op()`` rows. A new numeric column is compared by adding its name.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import FxFlopsError, writing
from ..types import ModuleRow
from ..units import human
from .export import markdown_table
from .tables import fmt_shape, grid
from .html import comparison_html

if TYPE_CHECKING:
    from .report import Report

METRICS = ("macs", "flops", "params")
LABELS = {"macs": "MACs", "flops": "FLOPs", "params": "params"}


class Align(str, Enum):
    """How a module of one report was paired with the baseline's."""

    PATH = "path"  # same name under paired parents: the same qualified path when the parents' paths agree
    POSITION = "position"  # same index among the paired parents' children, and the same type
    ABSENT = "absent"  # the report has no module paired with this row

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ModuleMatch:
    """One row of the comparison: a module and its partners, one entry per report."""

    depth: int
    paths: tuple[str | None, ...]  # its qualified path in each report; None where absent
    types: tuple[str | None, ...]
    align: tuple[Align, ...]
    values: tuple[dict[str, int] | None, ...]  # metric -> value, per report; None where absent

    @property
    def name(self) -> str:
        """Its last path component; ``a ~ b`` where the partners are named differently."""
        leaves = []
        for p in self.paths:
            if p is not None:
                leaf = p.rsplit(".", 1)[-1] if p else "model"
                if leaf not in leaves:
                    leaves.append(leaf)
        return " ~ ".join(leaves)

    @property
    def type(self) -> str:
        kinds: list[str] = []
        for t in self.types:
            if t is not None and t not in kinds:
                kinds.append(t)
        return " → ".join(kinds)

    def value(self, metric: str, i: int) -> int:
        """The metric in report ``i``; 0 where the module is absent from it."""
        v = self.values[i]
        return v.get(metric, 0) if v is not None else 0

    def delta(self, metric: str, i: int = 1, base: int = 0) -> int:
        return self.value(metric, i) - self.value(metric, base)

    def only_in(self) -> int | None:
        """The index of the one report holding this module, or None when several do."""
        present = [i for i, v in enumerate(self.values) if v is not None]
        return present[0] if len(present) == 1 and len(self.values) > 1 else None


def _children(modules: dict[str, ModuleRow]) -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {}
    for path in modules:
        if path:
            kids.setdefault(path.rpartition(".")[0], []).append(path)
    return kids


def align(base: dict[str, ModuleRow], other: dict[str, ModuleRow]) -> dict[str, tuple[str, Align]]:
    """``{baseline path: (path in other, how)}`` for every baseline module that has a partner."""
    kids_a, kids_b = _children(base), _children(other)
    pairs: dict[str, tuple[str, Align]] = {"": ("", Align.PATH)}
    todo = [("", "")]
    while todo:
        pa, pb = todo.pop()
        ca, cb = kids_a.get(pa, []), kids_b.get(pb, [])
        by_name = {q.rpartition(".")[2]: q for q in cb}
        taken: set[str] = set()
        for p in ca:
            q = by_name.get(p.rpartition(".")[2])
            if q is not None:
                pairs[p] = (q, Align.PATH)
                taken.add(q)
        for k, p in enumerate(ca):
            if p in pairs or k >= len(cb):
                continue
            q = cb[k]
            if q not in taken and base[p].type == other[q].type:
                pairs[p] = (q, Align.POSITION)
                taken.add(q)
        todo.extend((p, pairs[p][0]) for p in reversed(ca) if p in pairs)
    return pairs


def _metric_values(row: ModuleRow, metrics: Sequence[str]) -> dict[str, int]:
    return {m: getattr(row, m) for m in metrics if hasattr(row, m)}


def default_names(reports: Sequence["Report"]) -> list[str]:
    """Model names, with the input shapes where two reports share a model name (two batch sizes)."""
    names = [r.model_name for r in reports]
    return [f"{n} {', '.join(fmt_shape(s) for s in r.input_shapes)}" if names.count(n) > 1 else n
            for n, r in zip(names, reports)]


class Comparison:
    """Reports side by side; the first is the baseline every delta is taken against."""

    def __init__(self, reports: Sequence["Report"], names: Sequence[str] | None = None,
                 metrics: Sequence[str] = METRICS):
        if len(reports) < 2:
            raise FxFlopsError(f"compare needs at least two reports, got {len(reports)}")
        self.reports = list(reports)
        self.names = list(names) if names is not None else default_names(self.reports)
        if len(self.names) != len(self.reports):
            raise FxFlopsError(f"compare got {len(self.names)} names for {len(self.reports)} reports")
        self.metrics = tuple(metrics)
        unknown = [m for m in self.metrics if not all(hasattr(r, f"total_{m}") for r in self.reports)]
        if unknown:
            raise FxFlopsError(f"cannot compare {', '.join(unknown)}: a report has no total_<name> for it; "
                               f"the metrics every report has are {', '.join(METRICS)}")
        self.modules = self._rows()

    # ---- the aligned rows ---------------------------------------------------------------------------
    def _rows(self) -> list[ModuleMatch]:
        n = len(self.reports)
        mods = [r.modules for r in self.reports]
        pairs = [align(mods[0], m) for m in mods[1:]]
        partner_of = [{q: p for p, (q, _) in pr.items()} for pr in pairs]  # other path -> baseline path
        kids = [_children(m) for m in mods]
        rows: list[ModuleMatch] = []

        def lone(i: int, path: str) -> None:  # a subtree of report i with no baseline partner
            entry = [None] * n
            m = mods[i][path]
            rows.append(ModuleMatch(m.depth, _put(entry, i, path), _put(entry, i, m.type),
                                    tuple(Align.PATH if j == i else Align.ABSENT for j in range(n)),
                                    _put(entry, i, _metric_values(m, self.metrics))))
            for c in kids[i].get(path, []):
                lone(i, c)

        def visit(p: str) -> None:
            paths: list[Any] = [p] + [pr[p][0] if p in pr else None for pr in pairs]
            how = [Align.PATH] + [pr[p][1] if p in pr else Align.ABSENT for pr in pairs]
            found = [mods[i][q] if q is not None else None for i, q in enumerate(paths)]
            rows.append(ModuleMatch(
                mods[0][p].depth, tuple(paths), tuple(m.type if m else None for m in found), tuple(how),
                tuple(_metric_values(m, self.metrics) if m else None for m in found)))
            for c in kids[0].get(p, []):
                visit(c)
            for i in range(1, n):  # what report i has under this module that the baseline has not
                q = paths[i]
                if q is not None:
                    for c in kids[i].get(q, []):
                        if c not in partner_of[i - 1]:
                            lone(i, c)

        visit("")
        return rows

    def only_in(self, i: int) -> list[ModuleMatch]:
        """Rows held by report ``i`` alone (every module of an unmatched subtree)."""
        return [r for r in self.modules if r.only_in() == i]

    def module(self, path: str, report: int = 0) -> ModuleMatch:
        """The row holding the module at ``path`` in report ``report``."""
        for r in self.modules:
            if r.paths[report] == path:
                return r
        raise FxFlopsError(f"{self.names[report]} has no module {path!r}")

    # ---- totals and op types ------------------------------------------------------------------------
    def total(self, metric: str, i: int = 0) -> int:
        return getattr(self.reports[i], f"total_{metric}")

    def delta(self, metric: str, i: int = 1, base: int = 0) -> int:
        """Report ``i``'s total minus the baseline's."""
        return self.total(metric, i) - self.total(metric, base)

    def ratio(self, metric: str, i: int = 1, base: int = 0) -> float | None:
        """Report ``i``'s total over the baseline's (None when the baseline's is 0)."""
        b = self.total(metric, base)
        return self.total(metric, i) / b if b else None

    def by_op(self) -> dict[str, list[dict[str, int] | None]]:
        """``{op: [row of report i, or None]}``: ``Report.by_op()`` rows side by side, baseline's order first."""
        per = [r.by_op() for r in self.reports]
        ops: list[str] = []
        for p in per:
            ops.extend(op for op in p if op not in ops)
        return {op: [p.get(op) for p in per] for op in ops}

    # ---- text ---------------------------------------------------------------------------------------
    def _letters(self) -> list[str]:
        return [chr(ord("A") + i) if i < 26 else f"R{i}" for i in range(len(self.reports))]

    def legend(self) -> list[str]:
        out = []
        for i, (letter, name) in enumerate(zip(self._letters(), self.names)):
            totals = ", ".join(f"{human(self.total(m, i))} {LABELS.get(m, m)}" for m in self.metrics)
            out.append(f"{letter} = {name}: {totals}")
        return out

    def summary(self) -> str:
        letters = self._letters()
        lines = self.legend()
        for i in range(1, len(self.reports)):
            parts = [f"{LABELS.get(m, m)} {_delta(self.total(m, 0), self.total(m, i))}" for m in self.metrics]
            lines.append(f"{letters[i]} vs A: " + ", ".join(parts))
        for i in range(len(self.reports)):
            lone = self.only_in(i)
            held = {r.paths[i] for r in lone}
            alone = [r for r in lone if r.paths[i].rpartition(".")[0] not in held]  # the tops of unmatched subtrees
            if alone:
                lines.append(f"only in {letters[i]}: {len(lone)} modules, under "
                             + ", ".join(r.paths[i] for r in alone[:8]) + (" ..." if len(alone) > 8 else ""))
        return "\n".join(lines)

    def _module_rows(self, depth: int | None, fmt) -> list[tuple]:
        letters = self._letters()
        n = len(self.reports)
        head: list[str] = ["module", "type"]
        for m in self.metrics:
            label = LABELS.get(m, m)
            head += [f"{label} {x}" for x in letters] + [f"Δ {label} {letters[i]}-A" if n > 2 else f"Δ {label}"
                                                         for i in range(1, n)]
        head.append("match")
        rows = [tuple(head)]
        for r in self.modules:
            if depth is not None and r.depth > depth:
                continue
            if r.depth and not any(r.value(m, i) for m in self.metrics for i in range(n)):
                continue
            cells: list[str] = [fmt.name(r), r.type]
            for m in self.metrics:
                cells += [fmt.num(r.values[i][m]) if r.values[i] is not None and m in r.values[i] else "-"
                          for i in range(n)]
                cells += [_delta(_get(r.values[0], m), _get(r.values[i], m), fmt.num) for i in range(1, n)]
            cells.append(_how(r, letters))
            rows.append(tuple(cells))
        return rows

    def table(self, depth: int = 2) -> str:
        """The legend (totals of each report), then per module: each report's value and the delta against A."""
        rows = self._module_rows(depth, _Text)
        right = tuple(range(2, len(rows[0]) - 1))
        return "\n".join(self.summary().splitlines()) + "\n\n" + grid(rows, align_right=right)

    def op_table(self) -> str:
        letters = self._letters()
        n = len(self.reports)
        metrics = [m for m in self.metrics if any(row and m in row for rows in self.by_op().values() for row in rows)]
        head = ["op"] + [f"nodes {x}" for x in letters]
        for m in metrics:
            head += [f"{LABELS.get(m, m)} {x}" for x in letters] + [f"Δ {LABELS.get(m, m)}" + (f" {letters[i]}-A" if n > 2 else "")
                                                                  for i in range(1, n)]
        rows = [tuple(head)]
        for op, per in self.by_op().items():
            cells = [op] + [str(p["count"]) if p else "-" for p in per]
            for m in metrics:
                cells += [human(p[m]) if p else "-" for p in per]
                cells += [_delta(_get(per[0], m), _get(per[i], m)) for i in range(1, n)]
            rows.append(tuple(cells))
        return grid(rows, align_right=tuple(range(1, len(head))))

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<Comparison of {len(self.reports)} reports: {', '.join(self.names)}>"

    def _repr_html_(self) -> str:
        return comparison_html(self)

    # ---- machine-readable ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "metrics": list(self.metrics),
            "totals": [{m: self.total(m, i) for m in self.metrics} for i in range(len(self.reports))],
            "modules": [{"depth": r.depth, "paths": list(r.paths), "types": list(r.types),
                         "align": [str(a) for a in r.align], "values": list(r.values)} for r in self.modules],
            "by_op": self.by_op(),
        }

    def to_csv(self, path: str | Path | None = None, depth: int | None = None) -> str:
        """One line per aligned module: path, type and alignment in each report, then each metric per report
        and its delta against the first; exact integers, empty cells where a report lacks the module."""
        import csv
        import io

        n = len(self.reports)
        head = ["depth"] + [f"{k}_{x}" for x in self._letters() for k in ("module", "type", "align")]
        for m in self.metrics:
            head += [f"{m}_{x}" for x in self._letters()] + [f"delta_{m}_{x}" for x in self._letters()[1:]]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(head)
        for r in self.modules:
            if depth is not None and r.depth > depth:
                continue
            line: list[Any] = [r.depth]
            for i in range(n):
                line += ["" if r.paths[i] is None else r.paths[i], r.types[i] or "", str(r.align[i])]
            for m in self.metrics:
                line += ["" if r.values[i] is None else r.values[i].get(m, "") for i in range(n)]
                line += [r.delta(m, i) for i in range(1, n)]
            w.writerow(line)
        text = buf.getvalue()
        if path is not None:
            with writing(path, "the CSV"):
                Path(path).write_text(text)
        return text

    def to_markdown(self, depth: int = 2) -> str:
        """The legend as a list, then the module table as a Markdown pipe table (full paths, not indentation)."""
        rows = self._module_rows(depth, _Markdown)
        legend = "\n".join(f"- {line}" for line in self.summary().splitlines())
        return legend + "\n\n" + markdown_table(rows, align_right=tuple(range(2, len(rows[0]) - 1))) + "\n"


class _Text:
    num = staticmethod(human)

    @staticmethod
    def name(r: ModuleMatch) -> str:
        return "  " * r.depth + r.name


class _Markdown:
    num = staticmethod(human)

    @staticmethod
    def name(r: ModuleMatch) -> str:
        paths = []
        for p in r.paths:
            if p is not None and p not in paths:
                paths.append(p)
        return " ~ ".join(f"`{p}`" if p else "(model)" for p in paths)


def _get(values: dict[str, int] | None, metric: str) -> int | None:
    return None if values is None else values.get(metric, 0)


def _put(entry: list, i: int, value: Any) -> tuple:
    out = list(entry)
    out[i] = value
    return tuple(out)


def _how(r: ModuleMatch, letters: list[str]) -> str:
    only = r.only_in()
    if only is not None:
        return f"only {letters[only]}"
    absent = [letters[i] for i, a in enumerate(r.align) if a == Align.ABSENT]
    if absent:
        return "not in " + ",".join(absent)
    return "position" if Align.POSITION in r.align else "path"


def _delta(a: int | None, b: int | None, fmt=human) -> str:
    """``b - a`` with its sign and the relative change, ``-3.45G (-94.1%)``; None is a module or op the report
    lacks (counted as 0: ``+7.23M (new)``, ``-1.61M (-100.0%)``)."""
    if a is None and b is None:
        return "-"
    d = (b or 0) - (a or 0)
    if not d:
        return "0"
    text = ("+" if d > 0 else "") + fmt(d)
    if a is None:
        return text + " (new)"
    return f"{text} ({100 * d / a:+.1f}%)" if a else text


def compare(*reports: "Report", names: Sequence[str] | None = None, metrics: Sequence[str] = METRICS) -> Comparison:
    """Compare any number of reports (of :func:`fxflops.trace_flops`) against the first."""
    if len(reports) == 1 and isinstance(reports[0], (list, tuple)):
        reports = tuple(reports[0])
    return Comparison(reports, names, metrics)
