"""Outcomes of one campaign case and the rules that decide them (see ``campaign.run``).

A case is a function that calls latentspace and checks what came back; it signals a wrong
result by raising :class:`Wrong`. :func:`run_case` turns whatever happened into an outcome.
"""

from __future__ import annotations

import os
import re
import traceback

__all__ = [
    "OK", "TYPED", "CRASH", "SILENT", "HANG", "OUTCOMES", "Wrong", "Crashed", "classify_exception",
    "run_case",
]

OK, TYPED, CRASH, SILENT, HANG = "ok", "typed error", "crash", "silent-wrong", "hang"
OUTCOMES = (OK, TYPED, CRASH, SILENT, HANG)
BAD = (CRASH, SILENT, HANG)

_CAMPAIGN_DIR = os.path.dirname(os.path.abspath(__file__))

# scikit-learn's validation modules may raise on latentspace's behalf (its wording is the
# one scikit-learn's estimator checks expect), and so may BaseEstimator.set_params, which
# names the unknown parameter and lists the valid ones
_SKLEARN_VALIDATION = (
    os.path.join("sklearn", "utils", "validation.py"),
    os.path.join("sklearn", "utils", "_param_validation.py"),
    os.path.join("sklearn", "base.py"),
)

# Messages that come from deep inside numpy, pandas, torch or scipy even when the innermost
# Python frame is ours (a C function raised them): a promised type with such a message is a
# crash, because the user learns nothing about what to fix in their terms.
THIRD_PARTY_MESSAGES = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"could not convert string to float",                 # numpy
    r"invalid literal for int\(\)",                       # python / numpy
    r"setting an array element with a sequence",          # numpy, ragged input
    r"inhomogeneous shape",                               # numpy, ragged input
    r"could not broadcast",                               # numpy
    r"operands could not be broadcast",                   # numpy
    r"cannot reshape (array|tensor)",                     # numpy / torch
    r"zero-size array to reduction operation",            # numpy
    r"the truth value of an? .* is ambiguous",            # numpy / pandas
    r"boolean value of NA is ambiguous",                  # pandas
    r"float\(\) argument must be",                        # python, object arrays
    r"int\(\) argument must be",                          # python
    r"can't convert",                                     # torch
    r"can't call numpy\(\)",                              # torch
    r"mat1 and mat2 shapes cannot be multiplied",         # torch
    r"size of tensor a .* must match",                    # torch
    r"expected scalar type",                              # torch
    r"expected all tensors to be on the same device",     # torch
    r"only (one element|integer) tensors",                # torch
    r"doesn't match the broadcast shape",                 # torch
    r"array must not contain infs or NaNs",               # scipy
    r"not supported between instances of",                # python comparisons
    r"unsupported operand type",                          # python arithmetic
    r"unhashable type",                                   # python
    r"object of type .* has no len\(\)",                  # python
    r"ufunc '",                                           # numpy ufuncs
    r"data type .* not understood",                       # numpy
    r"cannot interpret '",                                # numpy dtypes
    r"axis \d+ is out of bounds",                         # numpy
    r"index \d+ is out of bounds",                        # numpy
    r"Error while deserializing|SafetensorError",         # safetensors
    r"Expecting (value|property name)|Unterminated string|Extra data",  # json
))

# the promised types: bad data/parameters, unsupported types, unfitted use, divergence,
# path problems
def _promised():
    from latentspace.exceptions import NotFittedError, TrainingDivergedError

    return (ValueError, TypeError, NotFittedError, TrainingDivergedError, FileNotFoundError,
            IsADirectoryError, PermissionError)


class Wrong(Exception):
    """Raised by a case's checks: the call returned, but its result is wrong."""


class Crashed(Exception):
    """Raised by a case whose own rule makes a promised type a crash (e.g. a model file
    refused with a plain ``ValueError`` instead of ``ModelFormatError``)."""


def _innermost(exc: BaseException) -> str:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return os.path.abspath(last.tb_frame.f_code.co_filename) if last is not None else ""


def _ours(filename: str) -> bool:
    import latentspace

    pkg = os.path.dirname(os.path.abspath(latentspace.__file__))
    return filename.startswith(pkg + os.sep) or filename.endswith(_SKLEARN_VALIDATION)


def short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{type(exc).__name__}: {text}"


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """(outcome, evidence) of an exception escaping a latentspace call.

    Typed: a promised type, raised in latentspace's own code (or scikit-learn's validation),
    with a message of ours. Anything else is a crash.
    """
    where = _innermost(exc)
    evidence = f"{short(exc)} [raised in {_where(where)}]"
    if isinstance(exc, Wrong):
        return SILENT, str(exc)
    if isinstance(exc, Crashed):
        return CRASH, str(exc)
    if where.startswith(_CAMPAIGN_DIR + os.sep) and not isinstance(exc, _promised()):
        return CRASH, "[harness bug] " + evidence
    if not isinstance(exc, _promised()):
        return CRASH, evidence
    if not _ours(where):
        return CRASH, evidence + " (a promised type, but from a third-party frame)"
    message = str(exc)
    for pat in THIRD_PARTY_MESSAGES:
        if pat.search(message):
            return CRASH, evidence + f" (a third-party message: /{pat.pattern}/)"
    return TYPED, evidence


def _where(filename: str) -> str:
    parts = filename.replace(os.sep, "/").split("/")
    for anchor in ("latentspace", "site-packages", "campaign"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[i:])
    return "/".join(parts[-2:])


def run_case(fn, *args) -> tuple[str, str]:
    """Run ``fn(*args)``; -> (outcome, evidence). ``fn`` returns None or a note for OK."""
    try:
        note = fn(*args)
    except Wrong as exc:
        return SILENT, str(exc)
    except Crashed as exc:
        return CRASH, str(exc)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # MemoryError, RecursionError: crashes, classified here
        outcome, evidence = classify_exception(exc)
        if outcome == CRASH and os.environ.get("CAMPAIGN_TRACEBACK"):
            evidence += "\n" + "".join(traceback.format_exception(exc))
        return outcome, evidence
    return OK, note or ""
