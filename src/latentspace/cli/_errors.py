"""Exit codes of the ``latentspace`` command and the mapping from exceptions to them.

====  ==================================================================================
0     success
1     unexpected error (a bug; the message says to rerun with ``--debug``)
2     usage: bad options, hyperparameter values a model rejects (also a
      ``--checkpoint-path`` that cannot be written), a model or request (``-n``) larger
      than the memory available (the message gives the estimate), or a missing optional
      package outside reading data: all fixed on the command line or in the installation
3     data: missing, empty, unreadable or invalid data files (NaN, wrong number of
      features, values the model cannot represent, a data file too large to read), and
      a data file whose reader needs a package that is not installed (pyarrow for
      ``.parquet``; the message says what to ``pip install``)
4     model file: missing, a folder, corrupt, unsafe, too new, unfitted
5     numerical failure: divergence, a failed factorisation, NaN/inf results
130   interrupted (Ctrl-C)
====  ==================================================================================

The exception's type decides the code, and so does the stage it escaped from: a
``FileNotFoundError`` while opening the model file is a model-file error (4), the same error
while reading the data is a data error (3). A hyperparameter check raises
:class:`latentspace._validation.ParameterError`, so a rejected value counts as usage (2)
wherever in ``fit`` it is found, even after the data has been looked at.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import numpy as np
import torch

from .._validation import ParameterError
from ..exceptions import (
    DatasetNotFoundError,
    ModelFormatError,
    NotFittedError,
    TrainingDivergedError,
)

EXIT_OK = 0
EXIT_ERROR = 1  # anything unexpected (a bug, a full disk)
EXIT_USAGE = 2  # bad command line, rejected hyperparameters, too much memory, missing package
EXIT_DATA = 3  # missing, unreadable or invalid data (NaN, ...), or no package to read it
EXIT_MODEL = 4  # missing, corrupt, unsafe, too new or unfitted model file
EXIT_NUMERIC = 5  # divergence, failed factorisation, non-finite results
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

_NUMERIC = (TrainingDivergedError, torch.linalg.LinAlgError, np.linalg.LinAlgError,
            FloatingPointError, OverflowError)


class CLIError(Exception):
    """An error the command reports as one line and an exit code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class UsageError(CLIError):
    def __init__(self, message: str):
        super().__init__(EXIT_USAGE, message)


class NonFiniteResultError(ArithmeticError):
    """A model produced NaN or infinite output."""


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name if it has none)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and text.startswith("'"):
        text = f"missing key {text}"
    return text or type(exc).__name__


def _names_param(message: str, params) -> bool:
    """Whether a ``ValueError`` message is about a hyperparameter, as our checks word them.

    ``check_int``/``check_float``/``check_choice`` start their messages with the parameter's
    name followed by ``=``, ``[`` (an entry of a tuple), `` must`` or `` is``.
    """
    for name in params:
        if re.match(rf"{re.escape(name)}(=|\[| must\b| is\b)", message):
            return True
    return False


# the wording of latentspace._memory.check_allocation's refusal
_MEMORY = re.compile(r"needs about .+, but only .+ is available on ")


def missing_package_message(exc: ImportError) -> str:
    """The message of a missing optional dependency, with what to install."""
    msg = one_line(exc)
    if "pip install" not in msg and getattr(exc, "name", None):
        msg = f"{msg}; install it with: pip install {exc.name.split('.')[0]}"
    return msg


def classify(stage: str, exc: BaseException, params=()) -> int:
    """Exit code for ``exc`` raised during ``stage`` ("model", "data", "fit", "compute",
    "output").

    ``params`` are the estimator's hyperparameter names, so that a rejected value in ``fit``
    counts as a usage error rather than a data error.
    """
    if isinstance(exc, _NUMERIC) or isinstance(exc, NonFiniteResultError):
        return EXIT_NUMERIC
    if isinstance(exc, (ModelFormatError, NotFittedError)):
        return EXIT_MODEL
    if isinstance(exc, DatasetNotFoundError):
        return EXIT_DATA
    if isinstance(exc, ImportError):  # an optional dependency is not installed
        return EXIT_DATA if stage == "data" else EXIT_USAGE
    if isinstance(exc, ParameterError) and stage in ("fit", "compute", "output"):
        return EXIT_USAGE
    if stage != "data" and isinstance(exc, ValueError) and _MEMORY.search(one_line(exc)):
        return EXIT_USAGE  # too large for this machine: a smaller option, not other data
    if stage == "model":
        if isinstance(exc, (OSError, ValueError, TypeError, KeyError, EOFError)):
            return EXIT_MODEL
    elif stage == "data":
        if isinstance(exc, (OSError, ValueError, TypeError, KeyError)):
            return EXIT_DATA
    elif stage in ("fit", "compute"):
        if stage == "fit" and isinstance(exc, ValueError) and _names_param(one_line(exc), params):
            return EXIT_USAGE
        if stage == "fit" and isinstance(exc, OSError):  # only checkpoints are written in fit
            return EXIT_USAGE
        if isinstance(exc, (ValueError, TypeError)):
            return EXIT_DATA
    elif stage == "output":
        if isinstance(exc, ValueError):
            return EXIT_USAGE
    return EXIT_ERROR


_MAX_MESSAGE = 320


def shorten(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Cut a long message after its last full sentence within ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text.rfind(". ", 0, limit)
    return (text[: cut + 1] if cut > 0 else text[:limit]) + " [...] (--debug shows all)"


@contextmanager
def stage(name: str, what: str, params=(), path=None):
    """Turn an exception escaping the block into a :class:`CLIError` with its exit code.

    ``what`` prefixes the message, e.g. ``"cannot read data"``; ``path`` is added to it unless
    the exception's own message already names it.
    """
    try:
        yield
    except (CLIError, KeyboardInterrupt):
        raise
    except Exception as exc:
        msg = missing_package_message(exc) if isinstance(exc, ImportError) else one_line(exc)
        if path is not None and str(path) not in msg:
            what = f"{what} {str(path)!r}"
        raise CLIError(classify(name, exc, params), f"{what}: {shorten(msg)}") from exc


def check_finite(name: str, value) -> None:
    """Raise :class:`NonFiniteResultError` when a result contains NaN or infinity."""
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise NonFiniteResultError(
            f"{name}: {bad} of {arr.size} value(s) are NaN or infinite; the model or the data "
            "is numerically degenerate (rescale the data or refit the model)."
        )
