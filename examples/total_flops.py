"""Total MACs, FLOPs and parameters of a model: the one-liner the articles start with.

    python examples/total_flops.py

thop's ``profile(model, inputs=(x,))`` runs the model with forward hooks; fxflops reads the
torch.fx graph instead and never executes it, so the model can even live on the ``meta`` device.
"""
import torch
import torchvision

from fxflops import trace_flops
from fxflops.units import human

model = torchvision.models.resnet18(weights=None).eval()
report = trace_flops(model, torch.randn(1, 3, 224, 224))

# Exact integers for programs, human units for people.
print(f"MACs:   {report.total_macs}")
print(f"FLOPs:  {report.total_flops}")
print(f"params: {report.total_params}")
print(f"resnet18 @ 224: {human(report.total_macs)} MACs, {human(report.total_flops)} FLOPs, "
      f"{human(report.total_params)} params")

# The same on the meta device: nothing is allocated, the numbers are identical.
with torch.device("meta"):
    meta_model = torchvision.models.resnet18(weights=None).eval()
    meta_report = trace_flops(meta_model, torch.empty(1, 3, 224, 224))
print(f"meta device: {meta_report.total_macs} MACs (shapes: {meta_report.shape_mode})")
