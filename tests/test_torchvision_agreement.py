"""fxflops MACs equal FlopCounterMode's on torchvision classifiers, exactly.

Both counters run on the same meta-device model (nothing is computed), so the check is cheap. With
grad enabled nn.MultiheadAttention takes its unfused path and FlopCounterMode sees every
contraction, so exact agreement is expected on every model here. (Under no_grad in eval it misses
the fused fast path; tests/test_rules_attention.py covers that case against a hand computation.)
"""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from fxflops import trace_flops

MODELS = [
    ("resnet50", 224),
    ("mobilenet_v2", 224),
    ("mobilenet_v3_large", 224),
    ("efficientnet_b0", 224),
    ("regnet_y_400mf", 224),
    ("densenet121", 224),
    ("convnext_tiny", 224),
    ("vit_b_16", 224),
    ("inception_v3", 299),
    ("googlenet", 224),
    ("shufflenet_v2_x1_0", 224),
    ("squeezenet1_0", 224),
    ("maxvit_t", 224),
    ("resnext50_32x4d", 224),
    ("swin_t", 224),  # its torch.fx.wrap'ped window attention is counted through the dynamo fallback
]


def meta_model(name: str) -> torch.nn.Module:
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}
    try:
        with torch.device("meta"):
            return torchvision.models.get_model(name, weights=None, **kwargs).eval()
    except NotImplementedError:  # builders that read tensor values (RegNet) need real init, then move
        return torchvision.models.get_model(name, weights=None, **kwargs).eval().to("meta")


def flop_counter_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("name,size", MODELS, ids=[m for m, _ in MODELS])
def test_macs_and_params_match_flop_counter(name: str, size: int) -> None:
    model = meta_model(name)
    x = torch.empty(1, 3, size, size, device="meta")
    report = trace_flops(model, x, strict=True)
    assert report.capture == "fx"
    assert report.shape_mode == "meta"
    assert report.total_macs == flop_counter_macs(model, x)
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert report.total_flops > 2 * report.total_macs  # norms, activations, pooling are on top


def test_vit_fast_path_is_counted_under_no_grad() -> None:
    """In eval under no_grad nn.MultiheadAttention runs a fused kernel that FlopCounterMode cannot see;
    fxflops prices the module from shapes, so its figure does not change."""
    model = torchvision.models.vit_b_16(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        report = trace_flops(model, x)
        blind = flop_counter_macs(model, x)
    # 12 layers × (4 projections of 197×768×768 + QKᵀ and AV of 197×197×768) missed by the counter.
    tokens, width, layers = 197, 768, 12
    missed = layers * (4 * tokens * width * width + 2 * tokens * tokens * width)
    assert report.total_macs == 17_563_828_224
    assert blind == report.total_macs - missed
