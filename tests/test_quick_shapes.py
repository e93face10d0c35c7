"""Outputs made by rule on meta (fxflops.quick_shapes) equal what the meta kernel makes, and a call the
kernel would reject is left to the kernel, so its error still reaches the user."""
from __future__ import annotations

import gc
import operator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxflops
from fxflops.errors import FxFlopsError
from fxflops.quick_shapes import broadcast, quick_call, quick_output

M = torch.device("meta")


def meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, dtype=dtype, device=M)


def same(made: torch.Tensor, want: torch.Tensor) -> None:
    assert made is not None
    assert (made.shape, made.dtype, made.stride(), made.device) == (want.shape, want.dtype, want.stride(), want.device)


SDPA_CASES = [
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 8), value=meta(2, 4, 16, 8)),
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 24, 8), value=meta(2, 4, 24, 5)),  # cross attention, Ev != E
    dict(query=meta(1, 8, 7, 16), key=meta(1, 2, 7, 16), value=meta(1, 2, 7, 16), enable_gqa=True),
    dict(query=meta(3, 5, 8), key=meta(3, 7, 8), value=meta(3, 7, 4)),  # no head dimension
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 8), value=meta(2, 4, 16, 8), is_causal=True, scale=0.3),
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 8), value=meta(2, 4, 16, 8),
         attn_mask=meta(16, 16, dtype=torch.bool)),
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 8), value=meta(2, 4, 16, 8), attn_mask=meta(2, 1, 16, 16)),
    dict(query=meta(2, 16, 4, 8).transpose(1, 2), key=meta(2, 16, 4, 8).transpose(1, 2),
         value=meta(2, 16, 4, 8).transpose(1, 2)),  # HF's layout: the kernel's output is contiguous all the same
    dict(query=meta(2, 4, 16, 8, dtype=torch.bfloat16), key=meta(2, 4, 16, 8, dtype=torch.bfloat16),
         value=meta(2, 4, 16, 8, dtype=torch.bfloat16)),
]


@pytest.mark.parametrize("kw", SDPA_CASES, ids=range(len(SDPA_CASES)))
def test_attention_is_made_as_the_kernel_makes_it(kw):
    same(quick_call(F.scaled_dot_product_attention, (), kw), F.scaled_dot_product_attention(**kw))
    q, k, v = kw["query"], kw["key"], kw["value"]
    rest = {n: x for n, x in kw.items() if n not in ("query", "key", "value")}
    same(quick_call(F.scaled_dot_product_attention, (q, k, v), rest), F.scaled_dot_product_attention(**kw))


MISFITS = [
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 9), value=meta(2, 4, 16, 8)),  # head sizes differ
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 8), value=meta(2, 4, 12, 8)),  # key and value lengths differ
    dict(query=meta(1, 8, 7, 16), key=meta(1, 3, 7, 16), value=meta(1, 3, 7, 16), enable_gqa=True),  # 8 % 3
    dict(query=meta(1, 8, 7, 16), key=meta(1, 2, 7, 16), value=meta(1, 2, 7, 16)),  # grouped without enable_gqa
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 8, dtype=torch.float16), value=meta(2, 4, 16, 8)),
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 8), value=meta(2, 4, 16, 8), attn_mask=meta(16, 15)),
    dict(query=meta(2, 4, 16, 8), key=meta(2, 4, 16, 8), value=meta(2, 4, 16, 8), attn_mask=meta(16, 16),
         is_causal=True),
]


@pytest.mark.parametrize("kw", MISFITS, ids=range(len(MISFITS)))
def test_an_attention_the_kernel_would_reject_is_left_to_it(kw):
    assert quick_call(F.scaled_dot_product_attention, (), kw) is None


def test_real_tensors_and_subclasses_are_left_to_the_kernel():
    x = torch.randn(2, 3)
    assert quick_call(torch.add, (x, x), {}) is None
    assert quick_call(F.scaled_dot_product_attention, (x, x, x), {}) is None

    class Sub(torch.Tensor):
        pass

    s = meta(2, 3).as_subclass(Sub)
    assert quick_call(torch.mul, (s, s), {}) is None


ARITH = [torch.add, torch.mul, torch.sub, torch.Tensor.add, torch.Tensor.__mul__, torch.Tensor.__rsub__,
         operator.add, operator.mul, operator.sub]
OPERANDS = [
    (meta(4, 1, 3), meta(5, 1)),
    (meta(2, 3), 2.5),
    (3, meta(2, 3)),
    (meta(2, 3, dtype=torch.long), 2.5),  # int tensor and float scalar: float
    (meta(2, 3, dtype=torch.float16), meta(3)),  # promoted to float32
    (meta(2, 3, dtype=torch.float16), meta((), dtype=torch.float32)),  # a 0-dim tensor does not promote
    (meta(0, 3), meta(1, 3)),
]


@pytest.mark.parametrize("op", ARITH, ids=lambda f: getattr(f, "__name__", str(f)))
@pytest.mark.parametrize("ab", OPERANDS, ids=range(len(OPERANDS)))
def test_arithmetic_broadcasts_and_promotes_as_the_kernel_does(op, ab):
    a, b = ab
    if not isinstance(a, torch.Tensor) and op in (torch.Tensor.add, torch.Tensor.__mul__, torch.Tensor.__rsub__):
        a, b = b, a
    same(quick_call(op, (a, b), {}), op(a, b))


def test_arithmetic_the_kernel_would_reject_or_lay_out_otherwise_is_left_to_it():
    assert quick_call(torch.add, (meta(2, 3), meta(4, 3)), {}) is None  # sizes clash
    assert quick_call(torch.sub, (meta(2, dtype=torch.bool), meta(2, dtype=torch.bool)), {}) is None
    assert quick_call(torch.add, (meta(2, 3), meta(2, 3)), {"alpha": 2}) is None
    assert quick_call(torch.add, (meta(3, 2).t(), meta(2, 3)), {}) is None  # not contiguous: its layout may follow
    assert quick_call(torch.add, (meta(2, 3), 1j), {}) is None


CONTRACTIONS = [
    (F.linear, (meta(3, 7, 5), meta(4, 5)), {}),
    (F.linear, (meta(3, 7, 5), meta(4, 5), meta(4)), {}),
    (F.linear, (meta(3, 5, 7).transpose(1, 2), meta(4, 5)), {}),  # a transposed input: the output is fresh
    (F.linear, (meta(5), meta(4, 5)), {}),
    (F.linear, (), {"input": meta(2, 5), "weight": meta(4, 5), "bias": None}),
    (torch.matmul, (meta(2, 3, 4, 5), meta(5, 6)), {}),
    (torch.matmul, (meta(4, 5), meta(3, 5, 6)), {}),
    (torch.Tensor.__matmul__, (meta(2, 1, 4, 5), meta(3, 5, 6)), {}),
    (operator.matmul, (meta(7, 4, 5).transpose(1, 2), meta(7, 4, 2)), {}),
]


@pytest.mark.parametrize("op, args, kwargs", CONTRACTIONS, ids=range(len(CONTRACTIONS)))
def test_contractions_are_made_as_the_kernel_makes_them(op, args, kwargs):
    same(quick_call(op, args, kwargs), op(*args, **kwargs))


@pytest.mark.parametrize("op, args", [
    (F.linear, (meta(3, 6), meta(4, 5))),  # in-features differ
    (F.linear, (meta(3, 5), meta(4, 5), meta(3))),  # bias of the wrong size
    (F.linear, (meta(3, 5, dtype=torch.float16), meta(4, 5))),
    (torch.matmul, (meta(4, 5), meta(6, 2))),
    (torch.matmul, (meta(2, 4, 5), meta(3, 5, 2))),  # batch dimensions clash
    (torch.matmul, (meta(5), meta(5, 2))),  # a 1-D operand: left to the kernel
])
def test_a_contraction_the_kernel_would_reject_is_left_to_it(op, args):
    assert quick_call(op, args, {}) is None


def test_broadcast():
    assert broadcast((4, 1, 3), (5, 1)) == (4, 5, 3)
    assert broadcast((0, 3), (1, 3)) == (0, 3)
    assert broadcast((2, 3), (3, 3)) is None
    assert broadcast((), (2,)) == (2,)


@pytest.mark.parametrize("module, shape", [
    (nn.AdaptiveAvgPool2d(1), (2, 8, 7, 7)),
    (nn.AdaptiveAvgPool2d((None, 3)), (8, 7, 9)),
    (nn.AdaptiveAvgPool1d(4), (2, 3, 16)),
    (nn.AdaptiveAvgPool3d((1, 2, 3)), (1, 2, 4, 4, 4)),
    (nn.BatchNorm2d(8), (2, 8, 5, 5)),
    (nn.Conv2d(8, 4, 3, stride=2, padding=1), (2, 8, 9, 9)),
    (nn.Linear(8, 5), (3, 7, 8)),
])
def test_module_outputs_are_made_as_the_forward_makes_them(module, shape):
    with torch.device("meta"):
        module = module.to("meta")
    x = meta(*shape)
    same(quick_output(module, (x,), {}), module(x))


def test_a_misfit_module_call_runs_the_forward():
    assert quick_output(nn.AdaptiveAvgPool2d(0).to("meta"), (meta(2, 8, 7, 7),), {}) is None
    assert quick_output(nn.Linear(8, 5).to("meta"), (meta(3, 7),), {}) is None
    assert quick_output(nn.AdaptiveAvgPool2d(2).to("meta"), (meta(2, 8, 7, 7).to(memory_format=torch.channels_last),),
                        {}) is None


class Attend(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.q, self.k = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x, y):
        return F.scaled_dot_product_attention(self.q(x), self.k(y), y) + x * 0.5 - x


@pytest.mark.parametrize("capture", ["fx", "record"])
def test_a_model_counts_the_same_with_the_shortcuts(capture):
    x, y = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 9, 8)
    r = fxflops.trace_flops(Attend(8), (x, y), capture=capture, strict=True)
    sdpa = next(n for n in r.nodes if n.op == "scaled_dot_product_attention")
    assert sdpa.output_shapes == [(2, 4, 6, 8)] and sdpa.macs == 2 * 2 * 4 * 6 * 9 * 8
    assert r.total_macs == 2 * 4 * 6 * 8 * 8 + 2 * 4 * 9 * 8 * 8 + sdpa.macs


@pytest.mark.parametrize("capture", ["fx", "record"])
def test_a_shape_error_inside_a_shortcut_op_still_reaches_the_user(capture):
    x, y = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 9, 8)
    model = Attend(8)
    model.k = nn.Linear(8, 9)  # keys of size 9 against queries of 8
    with pytest.raises(FxFlopsError):
        fxflops.trace_flops(model.to("meta"), (x.to("meta"), y.to("meta")), capture=capture)


def test_the_heap_is_unfrozen_after_a_trace_and_a_frozen_one_left_so():
    model, x = nn.Linear(4, 4), torch.randn(2, 4)
    fxflops.trace_flops(model, x)
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        fxflops.trace_flops(model, x)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_fx_tensor_constants_stay_off_the_model():
    class Shift(nn.Module):
        def forward(self, x):
            return x + torch.tensor([1.0, 2.0])

    model = Shift()
    before = set(vars(model))
    r = fxflops.trace_flops(model, torch.randn(3, 2), capture="fx")
    assert set(vars(model)) == before and r.total_flops == 6


MHA_CASES = [  # (batch_first, kdim, vdim, q shape, k shape, v shape)
    (True, None, None, (2, 5, 32), (2, 5, 32), (2, 5, 32)),
    (False, None, None, (5, 2, 32), (5, 2, 32), (5, 2, 32)),
    (True, 16, 24, (2, 5, 32), (2, 7, 16), (2, 7, 24)),  # cross attention, separate projections
    (False, 16, 24, (5, 3, 32), (9, 3, 16), (9, 3, 24)),
]


@pytest.mark.parametrize("batch_first,kdim,vdim,qs,ks,vs", MHA_CASES)
def test_multihead_attention_without_weights_is_what_the_forward_returns(batch_first, kdim, vdim, qs, ks, vs):
    with torch.device(M):
        mha = nn.MultiheadAttention(32, 4, batch_first=batch_first, kdim=kdim, vdim=vdim)
    q, k, v = meta(*qs), meta(*ks), meta(*vs)
    made, none = quick_output(mha, (q, k, v), {"need_weights": False})
    want, _ = mha(q, k, v, need_weights=False)
    same(made, want)
    assert none is None and made._is_view() == want._is_view() is True  # a view of the out-projection, as real


def test_multihead_attention_cases_left_to_the_forward():
    with torch.device(M):
        mha = nn.MultiheadAttention(32, 4, batch_first=True)
    x = meta(2, 5, 32)
    assert quick_output(mha, (x, x, x), {}) is None  # need_weights defaults to True: the weights' shape varies
    assert quick_output(mha, (x, x, x), {"need_weights": False, "attn_mask": meta(5, 5)}) is None
    assert quick_output(mha, (x, x, x), {"need_weights": False, "key_padding_mask": meta(2, 5)}) is None
    assert quick_output(mha, (meta(5, 32),) * 3, {"need_weights": False}) is None  # unbatched
    assert quick_output(mha, (meta(2, 5, 16),) * 3, {"need_weights": False}) is None  # the forward raises on it
    assert quick_output(mha, (meta(2, 5, 32, dtype=torch.float16),) * 3, {"need_weights": False}) is None
