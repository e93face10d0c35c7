"""Errors fxflops raises: each says what went wrong in the user's terms and what to do about it."""
from __future__ import annotations

import os
import sys
import traceback
import warnings
from types import TracebackType

import torch


class FxFlopsError(Exception):
    """Base class of every error fxflops raises on purpose."""


class CaptureError(FxFlopsError):
    """The model could not be captured as a graph."""


class ShapeError(FxFlopsError):
    """The example input does not fit the model: a node rejected the shapes it was given."""


class UncountedOpError(FxFlopsError):
    """``strict=True`` and the graph holds ops that no rule counts."""


_TORCH_PKG = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_OWN_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_frame(tb: TracebackType | None) -> str | None:
    """``file:line in function: code`` of the innermost traceback frame outside torch and fxflops."""
    frames = traceback.extract_tb(tb) if tb is not None else []
    for fr in reversed(frames):
        path = os.path.abspath(fr.filename)
        if path.startswith(_TORCH_PKG) or path.startswith(_OWN_PKG):
            continue
        code = (fr.line or "").strip()
        return f"{fr.filename}:{fr.lineno} in {fr.name}: {code}"
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, prefixed by its type."""
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}"


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn with the location of the user's call into fxflops (the first frame outside this package and
    torch), whatever path the count took to get here."""
    level, frame = 2, sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not (path.startswith(_OWN_PKG) or path.startswith(_TORCH_PKG)):
            break
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
