"""The serving chart: decode time per token against the context (one line per batch) and tokens/s per batch."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import writing

if TYPE_CHECKING:
    from .estimate import Serving


def serving_chart(s: "Serving", path: str | Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        from ..errors import FxFlopsError

        raise FxFlopsError('the serving chart needs matplotlib: pip install "fxflops[plot]"') from err
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for b, (contexts, times) in sorted(s.curves.items()):
        left.plot(contexts, [t * 1e3 for t in times], label=f"batch {b}")
    floor = s.rows[0].weights_bytes / s.device.attained_bandwidth * 1e3
    left.axhline(floor, color="grey", linestyle="--", linewidth=1)
    left.annotate("every weight read once", (0.01, floor), xycoords=("axes fraction", "data"), fontsize=8,
                  color="grey", va="bottom")
    left.set_xlabel("context (tokens in the KV cache)")
    left.set_ylabel("decode step (ms)")
    left.set_title("time per output token")
    left.legend()
    left.grid(alpha=0.3)
    batches = [r.batch for r in s.rows]
    labels = [str(b) for b in batches]
    bars = right.bar(labels, [r.tokens_per_second for r in s.rows],
                     color=["#4c72b0" if r.fits else "#c44e52" for r in s.rows])
    right.bar_label(bars, labels=[f"{r.tokens_per_second:,.0f}" for r in s.rows], fontsize=8)
    right.set_xlabel("batch" + ("" if all(r.fits for r in s.rows) else " (red: does not fit in memory)"))
    right.set_ylabel("tokens / s")
    right.set_title(f"throughput, prompt {s.prompt} + {s.generate} generated")
    right.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{s.model_name} on {s.device.name}" + (f", weights {s.weights}" if s.weights else ""))
    fig.tight_layout()
    out = Path(path)
    with writing(out, "the chart"):
        fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
