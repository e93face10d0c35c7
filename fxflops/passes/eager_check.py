"""The eager cross-check of the paths that run the model (record, dynamo): FlopCounterMode's MACs of the eager run
against the report's."""
from __future__ import annotations

from typing import Sequence

from ..captured import Captured
from ..paths import ancestors
from ..types import NodeRecord

__all__ = ["outside_graphs"]


def outside_graphs(cap: Captured, nodes: Sequence[NodeRecord]) -> str | None:
    """A note when the capture counts fewer MACs than FlopCounterMode saw in the eager probe: dynamo ran some
    code outside its graphs (a frame it does not trace), which no rule could see. Names the deepest module short."""
    if not cap.eager_macs or sum(n.fwd.macs for n in nodes) >= cap.eager_macs[""]:
        return None
    ours: dict[str, int] = {}
    for n in nodes:
        for key in ancestors(n.module_path):
            ours[key] = ours.get(key, 0) + n.fwd.macs
    short = {p: m - ours.get(p, 0) for p, m in cap.eager_macs.items() if m > ours.get(p, 0)}
    where = max(short, key=lambda p: (p.count(".") if p else -1, short[p]))
    return (f"{short['']:,} MACs that FlopCounterMode counts in an eager run are missing from this report (most "
            f"likely code dynamo ran outside its graphs)" + (f", in {where}" if where else ""))
