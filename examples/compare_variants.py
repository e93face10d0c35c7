"""Compare variants instead of subtracting by hand, and get the cost of a transformer as a formula of its length.

    python examples/compare_variants.py

1. The articles' conv block against the same block with ``groups=in_c`` and against a depthwise-separable block
   (1×64×112×112): totals, per-module and per-op deltas, and the table as Markdown for a paper.
2. One model at batch 1 and batch 8 (meta device, nothing allocated): every module's MACs exactly ×8.
3. A small transformer swept over its sequence length: MACs(T) = a·T + b·T², exact integers, checked at a
   length the fit did not use.
"""
import torch
import torch.nn as nn
import torchvision
from torchvision.ops import Conv2dNormActivation

from fxflops import compare, sweep, trace_flops

# 1 · three variants of one block -------------------------------------------------------------------------------
x = torch.randn(1, 64, 112, 112)
standard = Conv2dNormActivation(64, 128).eval()
grouped = Conv2dNormActivation(64, 128, groups=64).eval()  # the article's use_dw=True
separable = nn.Sequential(Conv2dNormActivation(64, 64, groups=64), Conv2dNormActivation(64, 128, kernel_size=1)).eval()
blocks = compare(trace_flops(standard, x), trace_flops(grouped, x), trace_flops(separable, x),
                 names=["standard 3×3", "groups=64", "depthwise-separable"])
print(blocks.table(depth=1))
print()
for i, name in enumerate(blocks.names[1:], start=1):
    print(f"{name}: MACs {blocks.total('macs', i):,} ({blocks.delta('macs', i):+,}), "
          f"FLOPs {blocks.total('flops', i):,} ({blocks.delta('flops', i):+,}), "
          f"params {blocks.total('params', i):,} ({blocks.delta('params', i):+,})")
print()
print(compare(trace_flops(standard, x), trace_flops(grouped, x), names=["standard", "groups=64"]).to_markdown(depth=1))

# 2 · batch 1 against batch 8 ----------------------------------------------------------------------------------
with torch.device("meta"):
    resnet = torchvision.models.resnet18(weights=None).eval()
batches = compare(trace_flops(resnet, torch.empty(1, 3, 224, 224, device="meta")),
                  trace_flops(resnet, torch.empty(8, 3, 224, 224, device="meta")))
exact = all(row.value("macs", 1) == 8 * row.value("macs", 0) for row in batches.modules)
print(f"batch 8 / batch 1: MACs {batches.total('macs', 1):,} / {batches.total('macs', 0):,}; "
      f"every one of {len(batches.modules)} modules exactly x8: {exact}")


# 3 · a transformer over its sequence length -------------------------------------------------------------------
class Layer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.ln1, self.ln2 = heads, nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = [z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v)]
        y = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    def __init__(self, vocab=1000, d=64, heads=4, layers=4):
        super().__init__()
        self.embed, self.head = nn.Embedding(vocab, d), nn.Linear(d, vocab)
        self.layers = nn.Sequential(*[Layer(d, heads) for _ in range(layers)])

    def forward(self, input_ids):
        return self.head(self.layers(self.embed(input_ids)))


lm = TinyLM().eval()
s = sweep(lambda T: (lm, {"input_ids": torch.zeros(1, T, dtype=torch.long)}), T=[64, 128, 256, 512])
print()
print(s)
macs = s.formula("macs")
print(f"MACs at T=2048 from the formula: {macs(T=2048):,}; traced: "
      f"{trace_flops(lm, {'input_ids': torch.zeros(1, 2048, dtype=torch.long)}).total_macs:,}")
