"""Built-in cost rules, one module per op family. Importing this package fills ``fxflops.REGISTRY``."""
from . import (  # noqa: F401
    activation,
    attention,
    conv,
    elementwise,
    embedding,
    linear,
    matmul,
    norm,
    pooling,
    reduction,
    resize,
    rnn,
    shape_ops,
    torchvision_ops,
)
