"""LLM serving from the graph: prefill, decode, KV cache and tokens/s on a device (``docs/llm.md``)."""
from .estimate import WEIGHT_FORMATS, Serving, ServingRow, serving

__all__ = ["serving", "Serving", "ServingRow", "WEIGHT_FORMATS"]
