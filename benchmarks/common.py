"""Helpers shared by the benchmark scripts: isolated runs, peak memory, timing, formatting, fits.

Every measurement runs in a child process forked from a forkserver that has already imported torch
and friends, so a measurement pays neither for imports nor for the heap left behind by the one before
it. Peak memory is the growth of the child's resident set during one call: the kernel's high-water
mark (``VmHWM``) is reset through ``/proc/self/clear_refs`` right before the call and read right
after, which catches C++ allocations (tensors, activations) that ``tracemalloc`` cannot see.
"""
from __future__ import annotations

import gc
import math
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable


# ---- memory ---------------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """Current resident set size of this process."""
    kib = _status_kib("VmRSS")
    if kib is None:  # no procfs: the lifetime peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return kib * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # "5" resets the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


class PeakRSS:
    """``with PeakRSS() as m: ...`` then ``m.extra`` is the peak RSS growth (bytes) inside the block.

    ``m.exact`` is False where the peak could not be reset (no procfs); ``extra`` is then measured
    against the process's lifetime peak and only an upper bound on what the block added.
    """

    def __enter__(self) -> "PeakRSS":
        self.before = rss_bytes()
        self.exact = _reset_peak()
        return self

    def __exit__(self, *exc: Any) -> None:
        hwm = _status_kib("VmHWM") if self.exact else None
        peak = hwm * 1024 if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak = peak
        self.extra = max(0, peak - self.before)


# ---- time -----------------------------------------------------------------------------------------


def best_of(fn: Callable[[], Any], repeat: int, min_total: float = 0.0, max_repeat: int = 20) -> tuple[float, float]:
    """``(wall, cpu)``: the fastest of ``repeat`` calls in wall-clock seconds and in CPU seconds of this
    process (all its threads). On a shared machine CPU time is the steadier of the two: it does not
    count the time other jobs held the cores. Calls go on past ``repeat`` (up to ``max_repeat``) until
    ``min_total`` seconds were spent, so that short calls get more tries; garbage is collected before
    each call so that no call pays for the previous one's."""
    wall = cpu = math.inf
    spent, n = 0.0, 0
    while n < max(1, repeat) or (spent < min_total and n < max_repeat):
        n += 1
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        fn()
        elapsed = time.perf_counter() - t
        spent += elapsed
        wall = min(wall, elapsed)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


# ---- isolation ------------------------------------------------------------------------------------

_CTX: Any = None


def isolation(preload: Iterable[str]) -> None:
    """Start the forkserver children come from, with ``preload`` modules imported once in it.
    Modules that fail to import are skipped (a missing peer is reported by the benchmark itself)."""
    global _CTX
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    _CTX = ctx


def _child(conn: Any, fn: Callable, args: tuple, quiet: bool) -> None:
    if quiet:  # peers print tables and banners; the parent prints the results
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - the failure is the result
        conn.send(("error", failure(exc)))
    finally:
        conn.close()


def failure(exc: BaseException) -> str:
    """``Type: first line of the message (file:line)`` of the root cause, at its innermost frame
    outside torch: wrappers such as "ShapeProp error for node x" hide what actually went wrong."""
    if not type(exc).__module__.startswith("fxflops"):  # fxflops' own errors already say what happened
        while exc.__cause__ is not None:
            exc = exc.__cause__
    msg = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {msg[0] if msg else ''}".strip()
    frames = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(frames):
        if "/torch/" in fr.filename or "benchmarks/" in fr.filename:
            continue
        pkg = fr.filename.split("site-packages/")[-1]
        return f"{text} ({pkg}:{fr.lineno})"
    return text


def isolated(fn: Callable, *args: Any, timeout: float = 600, quiet: bool = True) -> tuple[str, Any]:
    """Run ``fn(*args)`` in a fresh child; ``("ok", value)``, ``("error", reason)`` or ``("timeout", reason)``."""
    ctx = _CTX or mp.get_context("forkserver")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(child, fn, args, quiet))
    p.start()
    child.close()
    if parent.poll(timeout):
        try:
            status, value = parent.recv()
        except EOFError:
            status, value = "error", None
    else:
        status, value = "timeout", f"no result after {timeout:.0f} s"
    p.join(5)
    if p.is_alive():
        p.kill()
        p.join()
    if status == "error" and value is None:
        value = f"crashed (exit code {p.exitcode})"
    return status, value


# ---- reporting ------------------------------------------------------------------------------------


def human(n: float | None, digits: int = 3) -> str:
    from fxflops.units import human as _human

    return "—" if n is None else _human(n, digits)


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "—"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1e3:.0f} ms" if s >= 0.01 else f"{s * 1e3:.1f} ms"


def markdown_table(head: list[str], rows: list[list[str]], right: Iterable[int] = ()) -> str:
    right = set(right)
    sep = ["---:" if i in right else "---" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    """CPU model, cores and software versions, for the header of a results file."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {sys.version.split()[0]}, {platform.system()}"
    )


@dataclass
class Fit:
    """Least-squares line ``y = slope·x + intercept`` with its coefficient of determination."""

    slope: float
    intercept: float
    r2: float

    def describe(self, x: str = "x", y: str = "y") -> str:
        return f"{y} ≈ {self.slope:.4g}·{x} {'+' if self.intercept >= 0 else '-'} {abs(self.intercept):.4g}  (R² = {self.r2:.4f})"


def linear_fit(xs: list[float], ys: list[float]) -> Fit:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx if sxx else 0.0
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys))
    return Fit(slope, intercept, 1 - ss_res / ss_tot if ss_tot else 1.0)


def loglog_exponent(xs: list[float], ys: list[float]) -> float:
    """The ``k`` of ``y ∝ x^k`` fitted on log-log axes: 1 means linear growth."""
    return linear_fit([math.log(x) for x in xs], [math.log(y) for y in ys]).slope
