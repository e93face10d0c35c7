"""Built-in cost rules, one module per op family. Importing this package fills ``fxflops.REGISTRY``.

The rules of third-party layers (timm, torchvision) are registered lazily by :func:`load_extensions`: importing
timm or torchvision costs seconds, and a model whose classes come from them has imported them already.
"""
import importlib
import importlib.util
import sys

from . import (  # noqa: F401
    activation,
    attention,
    conv,
    distance,
    elementwise,
    embedding,
    linear,
    loss,
    matmul,
    norm,
    pooling,
    quantized,
    reduction,
    resize,
    rnn,
    shape_ops,
    transformer,
)
from . import backward, bytes  # noqa: F401,E402 - the formulas beside the costs: after every cost rule they attach to

# third-party package -> the rule module that prices its layers
EXTENSIONS = {"timm": "timm_layers", "torchvision": "torchvision_ops"}
_loaded: set[str] = set()


def load_extensions(force: bool = False) -> None:
    """Register the rules of every third-party package already imported (with ``force``, of every one installed: for
    the generated docs, the API audit and a pickled report citing one). Cheap when there is nothing new: called at
    the start of every trace."""
    if len(_loaded) == len(EXTENSIONS):
        return
    for package, module in EXTENSIONS.items():
        if module in _loaded:
            continue
        if package in sys.modules or (force and importlib.util.find_spec(package) is not None):
            _loaded.add(module)
            importlib.import_module(f"{__name__}.{module}")
