"""How batch size changes the count: MACs and FLOPs scale with it, parameters do not.

    python examples/batch_size.py

The articles advise benchmarking at batch size 1 so that numbers are comparable; this shows why.
The model is built on the meta device, so even batch 256 allocates nothing.
"""
import torch
import torchvision

from fxflops import trace_flops

with torch.device("meta"):
    model = torchvision.models.resnet18(weights=None).eval()

one = None
for batch in (1, 2, 8, 32, 256):
    r = trace_flops(model, torch.empty(batch, 3, 224, 224, device="meta"))
    one = one or r
    print(f"batch {batch:4d}: MACs {r.total_macs:>15,}  FLOPs {r.total_flops:>15,}  params {r.total_params:,}  "
          f"MACs / batch {r.total_macs // batch:,}  x{r.total_macs / one.total_macs:g} of batch 1")
