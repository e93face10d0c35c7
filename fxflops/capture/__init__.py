"""Stage 1, capture: turn the model and its example into torch.fx graphs.

``fx`` (symbolic tracing, partial where a submodule resists), ``record`` (the eager call recorded at the
torch-function level), ``dynamo`` (torch.compile with a recording backend, after the eager ``probe``),
``graph_module`` (the graph over the model's own modules), ``example`` (the user's example against the
forward's parameters), ``fx_cache`` (fx captures kept across a sweep), and ``patching``: every temporary
change made to the model while it runs.
"""
