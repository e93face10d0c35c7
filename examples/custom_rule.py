"""A rule for your own attention layer, by decorator or by ``custom_rules=``.

    python examples/custom_rule.py

fxflops needs no rule for a layer written with torch ops: it traces through it and counts every
matmul, softmax and add it finds. A rule is for when you want the layer priced as one unit: its
forward calls something fxflops cannot see into (a C++/CUDA extension, a kernel library), or you
want your own accounting. A class with a rule stays a single node in the graph, priced by the rule.
"""
import math

import torch
import torch.nn as nn

import fxflops
from fxflops import Cost, contraction, trace_flops


class MyAttentionLayer(nn.Module):
    """Multi-head self-attention written out by hand, as in the articles."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        y = attn.softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


def attention_cost(call: fxflops.Call) -> Cost:
    """x (B, N, D): MACs = 3·B·N·D² (qkv) + 2·B·N²·D (QKᵀ and AV) + B·N·D² (proj);
    FLOPs = 2·MACs + B·H·N²·(1 scale + 5 softmax)."""
    b, n, d = call.args[0].shape
    h = call.module.num_heads
    macs = 3 * b * n * d * d + 2 * b * n * n * d + b * n * d * d
    return contraction(macs, extra_flops=b * h * n * n * 6)


class Net(nn.Module):
    def __init__(self, dim=256, heads=8):
        super().__init__()
        self.attn = MyAttentionLayer(dim, heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(x + self.attn(x))


x = torch.randn(2, 196, 256)
model = Net().eval()

traced = trace_flops(model, x)  # no rule: traced through, op by op
print(f"traced through:   {traced.total_macs:,} MACs, {traced.total_flops:,} FLOPs")
print(traced.op_table())

# 1) per call: custom_rules maps the class to the formula, for this analysis only.
ruled = trace_flops(model, x, custom_rules={MyAttentionLayer: attention_cost})
print(f"custom_rules=:    {ruled.total_macs:,} MACs, {ruled.total_flops:,} FLOPs")

# 2) once for all analyses: the decorator registers it in a registry. Here a private copy,
#    so this example leaves the global one untouched; drop registry= to register globally.
registry = fxflops.REGISTRY.copy()
fxflops.rule(MyAttentionLayer, op="my_attention", registry=registry)(attention_cost)
decorated = trace_flops(model, x, registry=registry)
print(f"@fxflops.rule:    {decorated.total_macs:,} MACs, {decorated.total_flops:,} FLOPs")
node = next(n for n in decorated.nodes if n.module_path == "attn")
print(f"the layer is one node: {node.name} op={node.op} MACs={node.macs:,}")
print(f"rule and trace agree on MACs: {decorated.total_macs == traced.total_macs}")
