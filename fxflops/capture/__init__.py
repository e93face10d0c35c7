"""Stage 1, capture: turn the model and its example into torch.fx graphs.

``fx`` (symbolic tracing, partial where a submodule resists), ``dynamo`` (torch.compile with a recording
backend, after the eager ``probe``), and ``patching``: every temporary change made to the model while it runs.
"""
