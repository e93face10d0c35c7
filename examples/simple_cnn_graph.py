"""The article's SimpleCNN: its FLOPs per layer and its annotated graph drawn to SVG.

    python examples/simple_cnn_graph.py [OUT.svg]      # default: ./simple_cnn.svg

The model is the article's code unchanged, ``nn.ReLU()`` built inside ``forward`` included (a module
hook cannot see those: they are no submodule of the model). Two unpadded 3×3 convs take an H×W
input to (H-4)×(W-4), and ``fc1`` expects 32·6·6 features, so the model only fits 3×10×10 inputs:
on the article's 3×32×32 fxflops says which node rejects which shape.
"""
import sys

import torch
import torch.nn as nn

from fxflops import ShapeError, trace_flops


class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=16, kernel_size=3)
        self.conv2 = nn.Conv2d(16, 32, 3)
        self.fc1 = nn.Linear(32 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = nn.ReLU()(self.conv1(x))
        x = nn.ReLU()(self.conv2(x))
        x = x.view(x.size(0), -1)
        x = nn.ReLU()(self.fc1(x))
        x = nn.ReLU()(self.fc2(x))
        return self.fc3(x)


model = SimpleCNN().eval()
try:
    trace_flops(model, torch.randn(1, 3, 32, 32))
except ShapeError as err:
    print("on 1×3×32×32:", str(err).replace("\n", "\n    "))
    print()

report = trace_flops(model, torch.randn(1, 3, 10, 10))
print(report.summary())
print()
print("Each layer's FLOPs:")
for node in report.nodes:
    if node.flops:
        print(f"  {node.name:7s} {node.op:7s} out {str(node.output_shapes[0]):14s} MACs {node.macs:>8,}  FLOPs {node.flops:>8,}")
print(f"  total                                   MACs {report.total_macs:>8,}  FLOPs {report.total_flops:>8,}")

out = sys.argv[1] if len(sys.argv) > 1 else "simple_cnn.svg"
path = report.render(out)
print()
print(f"annotated graph written to {path}")
