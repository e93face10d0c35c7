"""Errors fxflops raises: each says what went wrong in the user's terms and what to do about it."""
from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
import warnings
from types import TracebackType
from typing import Iterator

import torch


class FxFlopsError(Exception):
    """Base class of every error fxflops raises on purpose."""


class CaptureError(FxFlopsError):
    """The model could not be captured as a graph."""


class ShapeError(FxFlopsError):
    """The example input does not fit the model: a node rejected the shapes it was given.

    ``node`` names that node; ``located`` says whether the message already names the user's source line."""

    def __init__(self, message: str, node: str | None = None, located: bool = True):
        super().__init__(message)
        self.node = node
        self.located = located


class UncountedOpError(FxFlopsError):
    """``strict=True`` and the graph holds ops that no rule counts."""


class RenderError(FxFlopsError):
    """A graph, chart or exported file could not be drawn or written (no Graphviz, an unwritable path)."""


class TrainModeWarning(UserWarning):
    """An inference count of a model left in training mode (dropout, batch-norm batch statistics)."""


class UncountedOpWarning(UserWarning):
    """Some ops have no rule and were counted as 0 (or were priced only in part); the CLI shows it as a note."""


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


def user_frame_in_stack(stack_trace: str | None) -> str | None:
    """:func:`user_frame` of a recorded stack trace (an fx node's ``stack_trace``, outermost frame first)."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)', stack_trace or "")
    for filename, lineno, name, code in reversed(frames):
        path = os.path.abspath(filename)
        if not (path.startswith(_TORCH_PKG) or path.startswith(_OWN_PKG)):
            return f"{filename}:{lineno} in {name}: {code.strip()}"
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


@contextlib.contextmanager
def writing(path: object, what: str = "the file") -> Iterator[None]:
    """Around a write to ``path``: an OS failure (no such directory, no permission) becomes one
    :class:`RenderError` naming the path, the same from every writer (CSV, charts, the graph)."""
    try:
        yield
    except OSError as exc:
        raise RenderError(f"cannot write {what} to {str(path)!r}: {exc.strerror or exc}. What to do: choose a path "
                          "in a directory that exists and that you can write to") from None
