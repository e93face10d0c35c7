"""Human-readable numbers: 4.09G, 25.6M, 512."""
from __future__ import annotations

_PREFIXES = ((10**15, "P"), (10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def human(n: int | float, digits: int = 3) -> str:
    """``n`` with a K/M/G/T/P suffix and ``digits`` significant digits; small numbers stay exact."""
    if n == 0:
        return "0"
    a = abs(n)
    for scale, prefix in _PREFIXES:
        if a >= scale:
            v = n / scale
            decimals = max(0, digits - len(str(int(abs(v)))))
            return f"{v:.{decimals}f}{prefix}"
    return f"{n:g}" if isinstance(n, float) else str(n)


def percent(part: int | float, whole: int | float) -> str:
    if not whole:
        return "-"
    p = 100.0 * part / whole
    if p and p < 0.01:
        return "<0.01%"
    return f"{p:.2f}%"


def seconds(t: float | None) -> str:
    """``1.23 ms``, ``45.6 µs`` with three significant digits; "-" for no value."""
    if t is None:
        return "-"
    if t == 0:
        return "0"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"
