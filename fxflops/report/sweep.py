"""A sweep: one report per point of a grid of sizes, and each total as an exact polynomial in the sizes.

The fit is exact arithmetic, never least squares: for degrees ``d`` (at most 3 per symbol, lowest total degree
first), the polynomial with every monomial ``∏ s^e`` (``e ≤ d`` per symbol) is solved with
:class:`fractions.Fraction` through the sub-grid of the ``d + 1`` smallest values of each symbol, and kept only
if it gives every other point exactly. Each symbol therefore needs ``d + 2`` values, so that at least one value
the fit did not use checks it; where no degree passes, the formula says so and only the table is shown.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import FxFlopsError, writing
from .compare import LABELS, METRICS
from .export import markdown_table
from .tables import grid
from .html import sweep_html

if TYPE_CHECKING:
    from .report import Report

MAX_DEGREE = 3
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")

Point = tuple[int, ...]
Exponents = tuple[int, ...]


@dataclass(frozen=True)
class Formula:
    """``metric`` as a polynomial in ``symbols``, or (``terms`` None) the finding that none fits the points."""

    metric: str
    symbols: tuple[str, ...]
    terms: dict[Exponents, Fraction] | None  # exponents per symbol -> coefficient, zero terms left out
    fitted_on: tuple[Point, ...]  # the points the coefficients were solved from
    checked_on: tuple[Point, ...]  # the points the polynomial was verified at, unused by the solve
    reason: str = ""  # why no polynomial fits

    @property
    def fits(self) -> bool:
        return self.terms is not None

    @property
    def integer(self) -> bool:
        """Every coefficient is an integer."""
        return self.fits and all(c.denominator == 1 for c in self.terms.values())

    def coefficient(self, **exponents: int) -> int | Fraction:
        """The coefficient of one monomial: ``formula.coefficient(T=2)`` is ``b`` in ``a·T + b·T²``."""
        self._need_fit()
        unknown = set(exponents) - set(self.symbols)
        if unknown:
            raise FxFlopsError(f"{', '.join(sorted(unknown))} is not a symbol of this sweep ({', '.join(self.symbols)})")
        c = self.terms.get(tuple(exponents.get(s, 0) for s in self.symbols), Fraction(0))
        return int(c) if c.denominator == 1 else c

    def __call__(self, **values: int) -> int | Fraction:
        """The polynomial at ``values`` (every symbol), e.g. ``formula(T=4096)``."""
        self._need_fit()
        missing = [s for s in self.symbols if s not in values]
        if missing:
            raise FxFlopsError(f"give a value for {', '.join(missing)}")
        v = _evaluate(self.terms, tuple(values[s] for s in self.symbols))
        return int(v) if v.denominator == 1 else v

    def _need_fit(self) -> None:
        if not self.fits:
            raise FxFlopsError(f"{self}: there is no formula to evaluate; read the sweep's table instead")

    def __str__(self) -> str:
        head = f"{LABELS.get(self.metric, self.metric)}({', '.join(self.symbols)})"
        if not self.fits:
            return f"{head}: {self.reason}"
        order = sorted(self.terms, key=lambda e: (sum(e), [-x for x in e]))
        parts = [_term(self.terms[e], e, self.symbols) for e in order]
        text = " + ".join(parts).replace("+ -", "- ") if parts else "0"
        return f"{head} = {text}"

    def to_dict(self) -> dict[str, Any]:
        terms = None if self.terms is None else [
            {"exponents": dict(zip(self.symbols, e)), "coefficient": _json_number(c)} for e, c in self.terms.items()]
        return {"metric": self.metric, "symbols": list(self.symbols), "fits": self.fits, "formula": str(self),
                "terms": terms, "fitted_on": [list(p) for p in self.fitted_on],
                "checked_on": [list(p) for p in self.checked_on], "reason": self.reason}


def _json_number(c: Fraction) -> int | str:
    return int(c) if c.denominator == 1 else f"{c.numerator}/{c.denominator}"


def _term(c: Fraction, exps: Exponents, symbols: Sequence[str]) -> str:
    mono = "·".join(s + (str(e).translate(_SUPERSCRIPT) if e > 1 else "") for s, e in zip(symbols, exps) if e)
    num = f"{c.numerator:,}" if c.denominator == 1 else f"{c.numerator:,}/{c.denominator:,}"
    if not mono:
        return num
    return mono if c == 1 else f"{num}·{mono}"


def _evaluate(terms: dict[Exponents, Fraction], point: Point) -> Fraction:
    total = Fraction(0)
    for exps, c in terms.items():
        m = 1
        for x, e in zip(point, exps):
            m *= x**e
        total += c * m
    return total


def solve(matrix: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction] | None:
    """The exact solution of a square system by Gauss-Jordan elimination over the rationals (None: singular)."""
    n = len(matrix)
    a = [row[:] + [b] for row, b in zip(matrix, rhs)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col] != 0), None)
        if pivot is None:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        inv = 1 / a[col][col]
        a[col] = [v * inv for v in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                f = a[r][col]
                a[r] = [v - f * w for v, w in zip(a[r], a[col])]
    return [a[r][n] for r in range(n)]


def fit(metric: str, symbols: Sequence[str], points: Sequence[Point], values: Sequence[int],
        max_degree: int = MAX_DEGREE) -> Formula:
    """The lowest-degree polynomial in ``symbols`` that gives ``values`` at ``points`` (a full grid) exactly,
    solved on a sub-grid and verified at every other point."""
    symbols = tuple(symbols)
    table = {tuple(p): int(v) for p, v in zip(points, values)}
    axes = [sorted({p[k] for p in table}) for k in range(len(symbols))]
    if len(table) != len(list(product(*axes))):
        raise FxFlopsError("the sweep's points must form a full grid (every combination of the symbols' values)")
    top = [min(max_degree, len(ax) - 2) for ax in axes]
    if min(top) < 0:
        one = [s for s, ax in zip(symbols, axes) if len(ax) < 2]
        return Formula(metric, symbols, None, (), tuple(table), f"{', '.join(one)} takes a single value: nothing to fit")
    degrees = sorted(product(*[range(t + 1) for t in top]), key=lambda d: (sum(d), d))
    for deg in degrees:
        used = list(product(*[ax[: d + 1] for ax, d in zip(axes, deg)]))
        monomials = list(product(*[range(d + 1) for d in deg]))
        matrix = [[Fraction(_power(p, e)) for e in monomials] for p in used]
        coeffs = solve(matrix, [Fraction(table[p]) for p in used])
        if coeffs is None:
            continue
        terms = {e: c for e, c in zip(monomials, coeffs) if c != 0}
        checked = [p for p in table if p not in set(used)]
        if all(_evaluate(terms, p) == table[p] for p in checked):
            return Formula(metric, symbols, terms, tuple(used), tuple(checked))
    shown = ", ".join(f"{s} ({len(ax)} values: degree ≤ {t})" for s, ax, t in zip(symbols, axes, top))
    short = [f"{s} takes {len(ax)} values, so one more value of {s} allows degree {t + 1}"
             for s, ax, t in zip(symbols, axes, top) if t < max_degree]
    more = ("; a formula of degree d needs d + 2 values of a symbol (d + 1 to solve it, one to check it): "
            + "; ".join(short)) if short else "; the table is the answer"
    return Formula(metric, symbols, None, (), tuple(table),
                   f"no polynomial fits the {len(table)} points exactly (tried every degree up to {shown}){more}")


def _power(point: Point, exps: Exponents) -> int:
    m = 1
    for x, e in zip(point, exps):
        m *= x**e
    return m


@dataclass
class Sweep:
    """Reports at every point of a grid of ``symbols``; ``formula(metric)`` fits each total exactly."""

    symbols: tuple[str, ...]
    points: list[dict[str, int]]
    reports: list["Report"]
    metrics: tuple[str, ...] = METRICS
    reused: int = 0  # points whose fx capture was reused from an earlier point
    _fits: dict[str, Formula] = field(default_factory=dict, init=False, repr=False)

    def values(self, metric: str) -> list[int]:
        return [getattr(r, f"total_{metric}") for r in self.reports]

    def formula(self, metric: str = "flops") -> Formula:
        """``metric``'s total as an exact polynomial in the symbols, or a :class:`Formula` saying none fits."""
        if metric not in self._fits:
            pts = [tuple(p[s] for s in self.symbols) for p in self.points]
            self._fits[metric] = fit(metric, self.symbols, pts, self.values(metric))
        return self._fits[metric]

    def _rows(self) -> list[tuple]:
        rows = [tuple(self.symbols) + tuple(LABELS.get(m, m) for m in self.metrics)]
        for p, r in zip(self.points, self.reports):
            rows.append(tuple(str(p[s]) for s in self.symbols)
                        + tuple(f"{getattr(r, f'total_{m}'):,}" for m in self.metrics))
        return rows

    def table(self) -> str:
        """Every point with its exact totals."""
        rows = self._rows()
        return grid(rows, align_right=tuple(range(len(rows[0]))))

    def to_markdown(self) -> str:
        """The points as a Markdown pipe table, then one formula per line."""
        rows = self._rows()
        formulas = "\n".join(f"- {self.formula(m)}" for m in self.metrics)
        return markdown_table(rows, align_right=tuple(range(len(rows[0])))) + "\n\n" + formulas + "\n"

    def summary(self) -> str:
        lines = [str(self.formula(m)) for m in self.metrics]
        fitted = next((f for f in map(self.formula, self.metrics) if f.fits and f.checked_on), None)
        if fitted is not None:
            lines.append(f"(solved exactly on {len(fitted.fitted_on)} points, checked on {len(fitted.checked_on)} "
                         f"more: {', '.join(_fmt_point(self.symbols, p) for p in fitted.checked_on[:4])}"
                         f"{' ...' if len(fitted.checked_on) > 4 else ''})")
        if self.reused:
            lines.append(f"fx capture reused for {self.reused} of {len(self.points)} points")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\n\n" + self.summary()

    def __repr__(self) -> str:
        return f"<Sweep over {', '.join(self.symbols)}: {len(self.points)} points; {self.formula(self.metrics[0])}>"

    def _repr_html_(self) -> str:
        return sweep_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {"symbols": list(self.symbols),
                "points": [dict(p, **{m: getattr(r, f"total_{m}") for m in self.metrics})
                           for p, r in zip(self.points, self.reports)],
                "formulas": {m: self.formula(m).to_dict() for m in self.metrics}}

    def to_csv(self, path: str | Path | None = None) -> str:
        """One line per point: the symbols, then each total, exact."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(list(self.symbols) + list(self.metrics))
        for p, r in zip(self.points, self.reports):
            w.writerow([p[s] for s in self.symbols] + [getattr(r, f"total_{m}") for m in self.metrics])
        text = buf.getvalue()
        if path is not None:
            with writing(path, "the CSV"):
                Path(path).write_text(text)
        return text

    def chart(self, path: str | Path, metric: str = "flops", **options: Any) -> Path:
        """The measured points and the fitted curve (matplotlib); see :func:`fxflops.draw.charts.sweep_chart`."""
        from ..draw.charts import sweep_chart

        return sweep_chart(self, path, metric=metric, **options)


def _fmt_point(symbols: Sequence[str], p: Point) -> str:
    return ",".join(f"{s}={x}" for s, x in zip(symbols, p))
