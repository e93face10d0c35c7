"""fxflops: exact MACs, FLOPs and parameters of PyTorch models, read from their torch.fx graph.

>>> from fxflops import trace_flops
>>> report = trace_flops(model, torch.randn(1, 3, 224, 224))
>>> report.total_macs, report.total_flops, report.total_params
"""
from .api import trace_flops
from .errors import CaptureError, FxFlopsError, ShapeError, UncountedOpError
from .registry import REGISTRY, Call, Cost, Registry, Rule, contraction, elementwise, free, rule
from .report import ModuleRow, NodeRecord, Report

__all__ = [
    "trace_flops",
    "Report",
    "NodeRecord",
    "ModuleRow",
    "Cost",
    "Call",
    "Rule",
    "Registry",
    "REGISTRY",
    "rule",
    "free",
    "contraction",
    "elementwise",
    "FxFlopsError",
    "CaptureError",
    "ShapeError",
    "UncountedOpError",
]
__version__ = "0.1.0"
