"""fxflops: exact MACs, FLOPs and parameters of PyTorch models, read from their torch.fx graph.

>>> from fxflops import trace_flops
>>> report = trace_flops(model, torch.randn(1, 3, 224, 224))
>>> report.total_macs, report.total_flops, report.total_params
"""
from importlib.metadata import PackageNotFoundError, version

from . import devices
from .api import clear_caches, trace_flops
from .sweeping import sweep
from .llm import Serving, ServingRow, serving
from .devices import Device, get_device
from .errors import CaptureError, FxFlopsError, RenderError, ShapeError, UncountedOpError, UncountedOpWarning
from .report.sweep import Formula, Sweep
from .report.utilization import Utilization, utilization
from .report import Align, Audit, AuditRow, BlindSpot, Comparison, ModuleMatch, Report, compare
from .rules.registry import REGISTRY, Call, Registry, Rule, backward_rule, contraction, elementwise, free, rule
from .rules.backward import BwdCall
from .types import Backward, Capture, Cost, ModuleRow, NodeRecord, Status

try:
    __version__ = version("fxflops")  # pyproject.toml is the one source
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "trace_flops",
    "clear_caches",
    "Device",
    "get_device",
    "compare",
    "sweep",
    "utilization",
    "Utilization",
    "Sweep",
    "serving",
    "Serving",
    "ServingRow",
    "Formula",
    "Report",
    "Comparison",
    "ModuleMatch",
    "Align",
    "NodeRecord",
    "ModuleRow",
    "Audit",
    "AuditRow",
    "BlindSpot",
    "Status",
    "Backward",
    "Capture",
    "Cost",
    "Call",
    "Rule",
    "Registry",
    "REGISTRY",
    "rule",
    "free",
    "backward_rule",
    "BwdCall",
    "contraction",
    "elementwise",
    "FxFlopsError",
    "CaptureError",
    "ShapeError",
    "UncountedOpError",
    "UncountedOpWarning",
    "RenderError",
]
