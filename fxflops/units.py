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
