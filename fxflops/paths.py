"""Dotted module paths (``encoder.layer.0.attention``): their ancestors, containment, and the object at one."""
from __future__ import annotations

from typing import Any, Iterable


def ancestors(path: str) -> list[str]:
    """``""`` and every prefix of ``path``, outermost first, ``path`` itself last."""
    if not path:
        return [""]
    parts = path.split(".")
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]


def under(path: str, block: str) -> bool:
    """``path`` is ``block`` or inside it."""
    return path == block or path.startswith(block + ".")


def within(path: str, blocks: Iterable[str], ancestors: bool = False) -> bool:
    """``path`` is strictly inside one of ``blocks``. With ``ancestors`` (``blocks`` a set or dict), the path's
    prefixes are looked up instead of scanning every block: linear instead of quadratic over a whole model."""
    if ancestors:
        parts = path.split(".")
        return any(".".join(parts[:i]) in blocks for i in range(1, len(parts)))
    return any(path.startswith(b + ".") for b in blocks)


def moved(path: str, source: str, dest: str) -> str:
    """``path`` with the ``source`` prefix replaced by ``dest`` (unchanged when not under ``source``)."""
    return dest + path[len(source):] if under(path, source) else path


def attr_at(root: Any, target: str) -> Any:
    """The object at dotted ``target`` below ``root`` (a module, a parameter, a subgraph), or None."""
    obj: Any = root
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj


def submodule(root: Any, target: str) -> Any:
    """The submodule of ``root`` at dotted ``target`` (a ``call_module`` node's), read straight from the
    ``_modules`` dicts: ``nn.Module.get_submodule`` checks every level and costs more than pricing the node."""
    m = root
    try:
        for part in target.split("."):
            m = m._modules[part]
    except (KeyError, AttributeError):
        return root.get_submodule(target)  # its error says what is missing
    if m is None:
        return root.get_submodule(target)
    return m

