"""The bytes pass: the memory traffic of each op node, written into ``node.meta["fxflops"].bytes``.

The model is that of an eager run: every node is one unfused kernel that reads its inputs (and a leaf
module's parameters and buffers) from memory and writes its outputs back, each tensor at the element size
of its actual dtype. A fusing compiler keeps intermediates in registers; that saving is not subtracted
here (``docs/roofline.md`` shows it as a note beside the count). The formulas are in :mod:`fxflops.rules.bytes`.
"""
from __future__ import annotations

import torch.fx as fx

from ..captured import INNER
from ..paths import submodule
from ..rules.bytes import ByteCall, default_bytes
from ..rules.registry import Rule
from ..types import OP_KINDS

__all__ = ["count_bytes", "node_bytes"]


def node_bytes(gm: fx.GraphModule, node: fx.Node, rule: Rule | None = None) -> int:
    """The bytes one op node moves, by the byte formula of the rule that priced it or :func:`default_bytes`."""
    module = submodule(gm, node.target) if node.op == "call_module" else None
    call = ByteCall([a.meta.get("val") for a in node.all_input_nodes], node.meta.get("val"), module)
    formula = rule.bytes if rule is not None else None
    return int(formula(call)) if formula is not None else default_bytes(call)


def count_bytes(gm: fx.GraphModule) -> None:
    """Set ``bytes`` on the cost of every op node of ``gm`` (after :func:`fxflops.passes.costs.count_graph`)."""
    for node in gm.graph.nodes:
        cost = node.meta.get("fxflops")
        if node.op in OP_KINDS and cost is not None:
            inner = node.meta.get(INNER)
            if inner is not None:  # priced by recording its call: it moves what its recorded ops move
                count_bytes(inner)
                cost.fwd_bytes = sum(n.meta["fxflops"].fwd_bytes for n in inner.graph.nodes if "fxflops" in n.meta)
                continue
            try:
                cost.fwd_bytes = node_bytes(gm, node, cost.rule)
            except Exception:  # noqa: BLE001 - an odd value (a symbolic size, an opaque object) must not sink the count
                cost.fwd_bytes = 0
