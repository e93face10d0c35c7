"""capture='record': the eager call recorded at the torch-function level, on the models fx cannot trace."""
from __future__ import annotations

import warnings

import pytest
import timm
import torch
import torch.nn as nn
import torchvision
import transformers as T
from torch.utils.flop_counter import FlopCounterMode

from fxflops import CaptureError, ShapeError, UncountedOpError, trace_flops


def fcm_macs(model, *args, **kwargs) -> int:
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(*args, **kwargs)
    return fc.get_total_flops() // 2


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.gru = nn.GRU(16, 12, batch_first=True, bidirectional=True)
        self.head = nn.Linear(24, 3)

    def forward(self, x):
        y, _ = self.lstm(x)
        y, _ = self.gru(y)
        return self.head(y[:, -1])


@pytest.mark.parametrize("make, example", [
    (lambda: Recurrent(), (torch.randn(2, 5, 8),)),
    (lambda: torchvision.models.resnet18(), (torch.randn(1, 3, 64, 64),)),
    (lambda: torchvision.models.swin_t(), (torch.randn(1, 3, 64, 64),)),
    (lambda: torchvision.models.segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None),
     (torch.randn(1, 3, 64, 64),)),
    (lambda: timm.create_model("mobilevit_xxs", pretrained=False), (torch.randn(1, 3, 64, 64),)),
], ids=["lstm-gru", "resnet18", "swin_t", "deeplabv3", "mobilevit"])
def test_record_counts_what_the_other_paths_count(make, example):
    torch.manual_seed(0)
    model = make().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = trace_flops(model, example)
    rec = trace_flops(model, example, capture="record", strict=True)
    assert rec.capture == "record"
    assert (rec.total_macs, rec.total_flops, rec.total_params) == (other.total_macs, other.total_flops, other.total_params)


def test_t5_encoder_decoder_and_kwargs_on_meta():
    with torch.device("meta"):
        model = T.T5ForConditionalGeneration(T.T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=4, d_kv=8,
                                                        vocab_size=50)).eval()
    example = {"input_ids": torch.zeros(1, 12, dtype=torch.long, device="meta"),
               "decoder_input_ids": torch.zeros(1, 5, dtype=torch.long, device="meta")}
    rec = trace_flops(model, example, capture="record", strict=True)
    dyn = trace_flops(model, example, capture="dynamo", strict=True)
    assert rec.shape_mode == "meta" and rec.total_macs == dyn.total_macs == fcm_macs(model, **example)
    assert rec.modules["encoder"].macs == dyn.modules["encoder"].macs > 0
    assert rec.modules["decoder"].macs == dyn.modules["decoder"].macs > 0


def test_a_value_check_meta_cannot_answer_is_recorded_as_compile_would_take_it():
    """HF Llama without a cache checks for packed sequences with ``.all()`` on the mask: no value on meta, and the
    check is skipped under torch.compile, so the recorder takes that branch and the count is the cached call's."""
    cfg = T.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=128, vocab_size=100)
    with torch.device("meta"):
        model = T.LlamaForCausalLM(cfg).eval()
    ids = torch.zeros(1, 16, dtype=torch.long, device="meta")
    plain = trace_flops(model, {"input_ids": ids, "use_cache": False}, capture="record", strict=True)
    assert any("is_compiling() true" in n for n in plain.notes) and plain.shape_mode == "meta"
    cached = trace_flops(model, {"input_ids": ids}, capture="record", strict=True)
    assert plain.total_macs == cached.total_macs == fcm_macs(model, input_ids=ids)
    assert torch.compiler.is_compiling() is False


def _qwen_moe(experts: str | None) -> nn.Module:
    torch.manual_seed(0)
    cfg = T.Qwen2MoeConfig(hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
                           shared_expert_intermediate_size=24, num_experts=4, num_experts_per_tok=2,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=50)
    if experts is not None:
        cfg._experts_implementation = experts
    return T.Qwen2MoeForCausalLM(cfg).eval()


def test_mixture_of_experts_per_expert_loop_is_exact():
    """transformers' eager experts loop over ``nonzero()`` output: dynamo runs it outside its graphs, the recorder
    sees every expert call. Each of the 8 tokens goes to 2 experts whose MLP is gate/up (32→2·16) and down (16→32)."""
    ids = torch.arange(8).view(1, 8)
    eager = trace_flops(_qwen_moe("eager"), {"input_ids": ids}, capture="record", strict=True)
    grouped = trace_flops(_qwen_moe(None), {"input_ids": ids}, capture="record", strict=True)
    per_layer = 8 * 2 * (32 * 2 * 16 + 16 * 32)
    for i in range(2):
        assert eager.modules[f"model.layers.{i}.mlp.experts"].macs == per_layer
        assert grouped.modules[f"model.layers.{i}.mlp.experts"].macs == per_layer
    assert eager.total_macs == grouped.total_macs
    assert any("branch this example took" in n for n in eager.notes)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2"])
def test_detection_models_dynamo_cannot_capture_are_recorded(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None, min_size=128,
                                                        max_size=128).eval()
    images = [torch.rand(3, 128, 128)]
    r = trace_flops(model, (images,), strict=True)
    assert r.capture == "record" and r.shape_mode == "real"
    assert {"nms", "roi_align"} <= {n.op for n in r.nodes}
    assert r.total_macs == fcm_macs(model, images)


class Hidden(nn.Module):
    """Runs a matmul with torch-function handling switched off (as some libraries' C++ paths do): the recorder
    cannot see it, the dispatch-level check does."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 4))

    def forward(self, x):
        with torch._C.DisableTorchFunction():
            y = x @ self.w
        return y.relu()


class DirectAten(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 4))

    def forward(self, x):
        return torch.ops.aten.mm.default(x, self.w).relu()


@pytest.mark.parametrize("capture", ["record", "dynamo"])
def test_an_aten_op_called_directly_is_priced_by_its_torch_rule(capture):
    r = trace_flops(DirectAten(), torch.randn(3, 8), capture=capture, strict=True)
    assert r.total_macs == 3 * 8 * 4


def test_work_the_recorder_cannot_see_is_reported_and_strict_raises():
    x = torch.randn(3, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = trace_flops(Hidden(), x, capture="record")
    assert r.total_macs == 0 and r.missing and "96 MACs" in r.missing
    assert any("96 MACs" in str(w.message) for w in caught)
    with pytest.raises(UncountedOpError, match="96 MACs"):
        trace_flops(Hidden(), x, capture="record", strict=True)


def test_the_model_is_left_as_it_was(monkeypatch):
    monkeypatch.setattr(torch._dynamo, "reset", lambda: pytest.fail("the record path must not reset dynamo"))
    model = torchvision.models.resnet18().train()
    calls = []
    model.layer1.register_forward_hook(lambda *a: calls.append(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace_flops(model, torch.randn(2, 3, 64, 64), capture="record")
    after = model.state_dict()
    assert model.training and all(m.training for m in model.modules())
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert len(model.layer1._forward_hooks) == 1
    assert not any(k == "forward" for m in model.modules() for k in vars(m))  # no stub forward left behind


def test_a_user_kv_cache_is_not_appended_to():
    with torch.device("meta"):
        model = T.GPT2LMHeadModel(T.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=50, n_positions=64)).eval()
        with torch.no_grad():
            cache = model(input_ids=torch.zeros(1, 6, dtype=torch.long), use_cache=True).past_key_values
    trace_flops(model, {"input_ids": torch.zeros(1, 1, dtype=torch.long, device="meta"), "past_key_values": cache},
                capture="record")
    assert cache.get_seq_length() == 6


def test_a_model_that_cannot_run_says_so():
    class Broken(nn.Module):
        def forward(self, x):
            raise NotImplementedError("this layer is not written yet")

    with pytest.raises(CaptureError, match="could not record Broken"):
        trace_flops(Broken(), torch.randn(2, 5), capture="record")


def test_a_size_the_model_refuses_is_a_shape_error():
    class Square(nn.Module):
        def forward(self, x):
            return x @ torch.ones(3, 3)

    with pytest.raises(ShapeError, match=r"does not fit the model: Square on the real example raised RuntimeError: "
                                         r"mat1 and mat2 shapes cannot be multiplied \(2x5 and 3x3\)"):
        trace_flops(Square(), torch.randn(2, 5), capture="record")


def test_timm_same_padding_layers_are_priced_by_rule():
    from timm.layers import Conv2dSame
    from timm.layers.pool2d_same import MaxPool2dSame

    model = nn.Sequential(Conv2dSame(3, 8, 3, stride=2), MaxPool2dSame(3, stride=2))
    r = trace_flops(model, torch.randn(1, 3, 15, 15), strict=True)
    assert r.capture == "fx"  # no partial tracing: both are leaves with a rule
    conv, pool = [n for n in r.nodes if n.kind == "call_module"]
    assert conv.output_shapes == [(1, 8, 8, 8)] and conv.macs == 8 * 64 * 3 * 9 and conv.flops == 2 * conv.macs + 8 * 64
    assert pool.output_shapes == [(1, 8, 4, 4)] and pool.flops == 8 * 16 * (9 - 1)
    model = timm.create_model("tf_efficientnet_b0", pretrained=False).eval()
    x = torch.randn(1, 3, 64, 64)
    r = trace_flops(model, x, strict=True)
    assert r.capture == "fx" and r.total_macs == fcm_macs(model, x)


def test_weights_computed_in_the_call_are_counted_on_every_path():
    """Weight norm computes its weight (g · v / ‖v‖) in every call: as a parametrization (traced through by fx,
    recorded) or as an old-style forward pre-hook, which symbolic tracing does not run, so auto records it."""
    from torch.nn.utils import prune
    from torch.nn.utils.parametrizations import weight_norm

    x = torch.randn(2, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = nn.Sequential(nn.utils.weight_norm(nn.Linear(8, 16)), nn.ReLU())
        new = nn.Sequential(weight_norm(nn.Linear(8, 16)), nn.ReLU())
        counts = {(name, cap): trace_flops(m, x, capture=cap, strict=True)
                  for name, m in (("old", old), ("new", new)) for cap in ("auto", "record")}
        counts["new", "fx"] = trace_flops(new, x, capture="fx", strict=True)
        with pytest.raises(CaptureError, match="forward pre-hook computes its weight"):
            trace_flops(old, x, capture="fx")
    assert counts["old", "auto"].capture == "record" and counts["new", "auto"].capture == "fx"
    flops = {k: r.total_flops for k, r in counts.items()}
    assert len(set(flops.values())) == 1
    wn = next(n for n in counts["new", "fx"].nodes if n.op == "weight_norm")
    assert flops["new", "fx"] == 2 * 2 * 8 * 16 + 2 * 16 + 2 * 16 + wn.flops and wn.flops > 0  # linear, bias, relu

    pruned = nn.Linear(8, 16)
    prune.l1_unstructured(pruned, "weight", amount=0.5)
    r = trace_flops(pruned, x, strict=True)
    assert r.capture == "record" and r.total_flops == 2 * 2 * 8 * 16 + 2 * 16 + 8 * 16  # weight_orig · mask
