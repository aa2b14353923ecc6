"""Typed errors and warnings of latentspace.

Each error subclasses what scikit-learn's estimator checks and users already catch
(``ValueError``, ``TypeError``, ``RuntimeError``), so ``except ValueError`` keeps working.
Messages say what is wrong, where, and how to fix it.
"""

from sklearn.exceptions import ConvergenceWarning, NotFittedError

__all__ = [
    "ChecksumError",
    "ConvergenceWarning",
    "DatasetNotFoundError",
    "ModelFormatError",
    "NotFittedError",
    "TrainingDivergedError",
    "UnsafeFormatError",
    "UnsupportedFormatVersionError",
]


class ModelFormatError(ValueError):
    """A model file is not a valid latentspace file (corrupt, truncated, lying header)."""


class UnsupportedFormatVersionError(ModelFormatError):
    """A model file was written by a newer format version than this library reads."""


class ChecksumError(ModelFormatError):
    """A tensor in a model file does not match the SHA-256 recorded in its manifest."""


class UnsafeFormatError(ModelFormatError):
    """A file holds a pickle-based payload (pickle, joblib, ``torch.save``); it is refused unread."""


class TrainingDivergedError(RuntimeError):
    """Training produced non-finite losses or gradients too many times in a row."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither in the data folder nor downloadable right now."""
