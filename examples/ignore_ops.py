"""Leaving activations and dropout out of the count (thop's ``ignore_ops``).

    python examples/ignore_ops.py

``ignore=`` takes module classes (thop style), functions, or op names. An op name such as
``"relu"`` covers every form of the op: ``nn.ReLU``, ``F.relu`` and ``x.relu()`` alike, which
matters because hook-based tools only ever see the module form.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from fxflops import trace_flops


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.drop(self.act(self.fc1(x)))
        x = F.relu(x)  # a functional activation too: no module, no hook
        return F.softmax(self.fc2(x), dim=1)


model = Classifier().eval()
x = torch.randn(1, 784)

everything = trace_flops(model, x)
thop_style = trace_flops(model, x, ignore=[nn.ReLU, nn.Dropout])
by_name = trace_flops(model, x, ignore=["relu", "dropout", "softmax"])

print(f"everything counted:                  {everything.total_flops} FLOPs")
print(f"ignore=[nn.ReLU, nn.Dropout]:        {thop_style.total_flops} FLOPs (F.relu and softmax still counted)")
print(f"ignore=['relu', 'dropout', 'softmax']: {by_name.total_flops} FLOPs (only the two linear layers)")
print(f"MACs are unchanged: {everything.total_macs} = {by_name.total_macs}")
print()
print("What was ignored:")
for node in by_name.nodes:
    if node.status == "ignored":
        print(f"  {node.name:10s} {node.op}")
