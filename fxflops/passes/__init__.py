"""Stage 2, passes over the captured graphs, each writing ``node.meta``: ``shapes`` (meta values, with
``quick_shapes`` making slow kernels' outputs by rule), ``costs`` (the rule registry's price of each node),
``dynamo_costs`` (pricing what dynamo captured or fx left opaque), and ``records`` (the report's rows, read once
from the annotated graphs)."""
