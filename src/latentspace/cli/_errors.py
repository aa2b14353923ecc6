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

Messages raised by the library's own code are shown in full (they say how to fix the
problem); only messages from third-party code, which may hold huge reprs, are shortened
(:func:`shorten`, the whole text with ``--debug``). A missing optional package adds the pip
command that installs it (``pip install "latentspace[dask]"``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# numpy, torch and the library's own modules are imported where an error is classified, not
# here: ``latentspace --help`` must not pay for them

EXIT_OK = 0
EXIT_ERROR = 1  # anything unexpected (a bug, a full disk)
EXIT_USAGE = 2  # bad command line, rejected hyperparameters, too much memory, missing package
EXIT_DATA = 3  # missing, unreadable or invalid data (NaN, ...), or no package to read it
EXIT_MODEL = 4  # missing, corrupt, unsafe, too new or unfitted model file
EXIT_NUMERIC = 5  # divergence, failed factorisation, non-finite results
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it



def _numeric_errors() -> tuple[type[BaseException], ...]:
    import numpy as np
    import torch

    from ..exceptions import TrainingDivergedError

    return (TrainingDivergedError, torch.linalg.LinAlgError, np.linalg.LinAlgError,
            FloatingPointError, OverflowError, NonFiniteResultError)


class CLIError(Exception):
    """An error the command reports as one line and an exit code.

    Parameters
    ----------
    code : int
        The exit code (see the table above).
    message : str
        What is wrong and how to fix it; shown in full.
    """

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class UsageError(CLIError):
    """A usage error (exit code 2): options, hyperparameters or the installation.

    Parameters
    ----------
    message : str
    """

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


def _names_param(message: str, params: Collection[str]) -> bool:
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


# optional packages -> the extra of latentspace that installs them (pyproject.toml)
EXTRAS = {"dask": "dask", "distributed": "dask", "pyarrow": "parquet"}


def install_hint(module: str | None) -> str:
    """The pip command that installs a missing module: ``pip install "latentspace[dask]"``
    for an optional dependency of ours, else ``pip install NAME``.

    Parameters
    ----------
    module : str or None
        The missing module (``ImportError.name``), dotted or not.

    Returns
    -------
    command : str
        Empty when the module is unknown.
    """
    if not module:
        return ""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    return f'pip install "latentspace[{extra}]"' if extra else f"pip install {top}"


def missing_package_message(exc: ImportError) -> str:
    """The message of a missing optional dependency, with what to install.

    Parameters
    ----------
    exc : ImportError

    Returns
    -------
    message : str
        The exception's message followed by the pip command, unless it gives it already.
    """
    msg = one_line(exc)
    name = getattr(exc, "name", None)
    if name is None:  # our own "needs pyarrow, which is not installed" messages name no module
        m = re.search(r"\bneeds (\w+)", msg)
        name = m.group(1) if m and m.group(1) in EXTRAS else None
    hint = install_hint(name)
    if hint and hint not in msg:
        msg = f"{msg}; install it with: {hint}"
    return msg


def classify(stage: str, exc: BaseException, params: Collection[str] = ()) -> int:
    """Exit code for ``exc`` raised during ``stage``.

    Parameters
    ----------
    stage : {"model", "data", "fit", "compute", "output"}
    exc : BaseException
    params : collection of str
        The estimator's hyperparameter names, so that a rejected value in ``fit`` counts as a
        usage error rather than a data error.

    Returns
    -------
    code : int
    """
    from .._validation import ParameterError
    from ..exceptions import DatasetNotFoundError, ModelFormatError, NotFittedError

    if isinstance(exc, _numeric_errors()):
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
_PACKAGE = Path(__file__).resolve().parents[1]  # src/latentspace


def shorten(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Cut a long message after its last full sentence within ``limit`` characters.

    Parameters
    ----------
    text : str
    limit : int

    Returns
    -------
    text : str
        Unchanged when short enough, else cut and marked ``[...] (--debug shows all)``.
    """
    if len(text) <= limit:
        return text
    cut = text.rfind(". ", 0, limit)
    return (text[: cut + 1] if cut > 0 else text[:limit]) + " [...] (--debug shows all)"


def is_ours(exc: BaseException) -> bool:
    """Whether the exception was raised by this library's code (its message is written for
    the user and is shown in full) rather than deep inside numpy, torch or pandas (whose
    messages may carry huge reprs, and are shortened).

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    ours : bool
    """
    tb = exc.__traceback__
    if tb is None:  # never raised: built by our code to be raised
        return True
    while tb.tb_next is not None:
        tb = tb.tb_next
    try:
        Path(tb.tb_frame.f_code.co_filename).resolve().relative_to(_PACKAGE)
    except ValueError:
        return False
    return True


@contextmanager
def stage(name: str, what: str, params: Collection[str] = (), path: Any = None) -> Iterator[None]:
    """Turn an exception escaping the block into a :class:`CLIError` with its exit code.

    Parameters
    ----------
    name : {"model", "data", "fit", "compute", "output"}
        The stage, which decides the exit code with the exception's type (:func:`classify`).
    what : str
        Prefix of the message, e.g. ``"cannot read data"``.
    params : collection of str
        The estimator's hyperparameter names (see :func:`classify`).
    path : str, os.PathLike or None
        Added to the message unless the exception's own message already names it.

    Yields
    ------
    None
    """
    try:
        yield
    except (CLIError, KeyboardInterrupt):
        raise
    except Exception as exc:
        msg = missing_package_message(exc) if isinstance(exc, ImportError) else one_line(exc)
        if path is not None and str(path) not in msg:
            what = f"{what} {str(path)!r}"
        if not is_ours(exc):
            msg = shorten(msg)
        raise CLIError(classify(name, exc, params), f"{what}: {msg}") from exc


def check_finite(name: str, value: Any) -> None:
    """Raise :class:`NonFiniteResultError` when a result contains NaN or infinity.

    Parameters
    ----------
    name : str
        What the value is, for the message.
    value : array-like or torch.Tensor
    """
    import numpy as np
    import torch

    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise NonFiniteResultError(
            f"{name}: {bad} of {arr.size} value(s) are NaN or infinite; the model or the data "
            "is numerically degenerate (rescale the data or refit the model)."
        )
