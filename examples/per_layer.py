"""Where the FLOPs go: per-module table, per-op-type totals, and the 5 costliest layers.

    python examples/per_layer.py

This is what the articles build with forward hooks on leaf modules; here it comes from the graph,
so the residual adds and other functional ops are in it too.
"""
import torch
import torchvision

from fxflops import trace_flops

model = torchvision.models.resnet18(weights=None).eval()
report = trace_flops(model, torch.randn(1, 3, 224, 224))

print(report.summary())
print()
print("Per module, down to depth 1:")
print(report.table(depth=1))
print()
print("Per op type:")
print(report.op_table())
print()
print("The 5 costliest layers:")
for rank, node in enumerate(report.top(5), 1):
    share = 100 * node.flops / report.total_flops
    print(f"{rank}. {node.module_path or node.name:16s} {node.op:8s} out {node.output_shapes[0]}  "
          f"MACs {node.macs:>11,}  FLOPs {node.flops:>11,}  ({share:.2f}%)")

# Group by module type, the articles' "layer_stats[class_name]" view.
by_type = {}
for node in report.nodes:
    if node.flops:
        key = node.module_type or node.op
        by_type[key] = by_type.get(key, 0) + node.flops
print()
print("FLOPs by module type:", {k: f"{v / 1e9:.3f}G" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])})
