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


def within(path: str, blocks: Iterable[str]) -> bool:
    """``path`` is strictly inside one of ``blocks``."""
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
