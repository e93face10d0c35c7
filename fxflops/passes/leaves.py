"""Modules a capture kept whole, outside its graphs (a custom-ruled module under dynamo): each call priced by its
rule on the values the eager probe saw, with its bytes and, in train mode, its backward, like an fx ``call_module``."""
from __future__ import annotations

from ..captured import LeafCall
from ..rules.bytes import ByteCall, default_bytes
from ..rules.registry import Call, qualified_name
from ..tensors import dtype_name, tensors_in
from ..types import Backward, NodeRecord, Status
from .backward import backward_cost, leaf_call
from .costs import Counting, as_cost

__all__ = ["leaf_record"]


def leaf_record(call: LeafCall, ctx: Counting) -> NodeRecord:
    """The record of a module kept whole, priced by its rule on the values the probe saw, like fx's call_module."""
    m = call.module
    rule = ctx.registry.for_module(m)
    c = Call(type(m), call.args, call.kwargs, call.out, m, pricer=ctx.price)
    cost = as_cost(rule(c), type(m).__name__)
    ins = tensors_in((call.args, call.kwargs))
    outs = tensors_in(call.out)
    rec = NodeRecord(
        name=call.path.replace(".", "_"), kind="call_module", target=type(m).__name__, op=rule.op,
        status=Status.PARTIAL if c.left_out else Status.COUNTED, fwd=cost, rule=rule,
        module_path=call.path, module_type=type(m).__name__, qualname=qualified_name(type(m)),
        input_shapes=[tuple(t.shape) for t in ins], output_shapes=[tuple(t.shape) for t in outs],
        dtypes=sorted({dtype_name(t) for t in outs}), params=sum(p.numel() for p in m.parameters()),
        left_out=list(c.left_out), fwd_bytes=default_bytes(ByteCall(ins, call.out, m)),
    )
    if not ctx.train:
        return rec
    if any(t.requires_grad for t in ins) or any(p.requires_grad for p in m.parameters()):
        backward_cost(rec, leaf_call(cost, (call.args, call.kwargs), call.out, m, rec.fwd_bytes))
    else:
        rec.bwd_status = Backward.NOT_NEEDED
    return rec
