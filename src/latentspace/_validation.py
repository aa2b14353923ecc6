"""Input checks with scikit-learn-compatible messages.

numpy, pandas and array-likes go through scikit-learn's public ``validate_data`` (so the
wording matches what its estimator checks expect); torch tensors are checked on their own
device, without a round trip through the host.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from ._backend import InputKind, input_kind, to_tensor

__all__ = [
    "check_data",
    "check_finite_data",
    "check_int",
    "check_float",
    "check_choice",
    "check_finite_result",
]

_FLOATS = (torch.float64, torch.float32)


def _check_torch(
    est, X: torch.Tensor, *, reset: bool, ensure_min_samples: int, name: str, finite: bool = True
):
    if X.is_complex():
        raise TypeError(f"Complex data not supported: {name} is a complex tensor ({X.dtype}).")
    if X.dim() != 2:
        raise ValueError(
            f"Expected a 2D tensor, got {name} with shape {tuple(X.shape)}; reshape your data "
            "with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for one sample."
        )
    n, d = X.shape
    if n < ensure_min_samples:
        raise ValueError(
            f"Found array with {n} sample(s) (shape={tuple(X.shape)}) while a minimum of "
            f"{ensure_min_samples} is required by {type(est).__name__}."
        )
    if d < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
            f"required by {type(est).__name__}."
        )
    if X.dtype not in _FLOATS:
        # bool/int -> float64 like scikit-learn; half precisions -> float32
        X = X.to(torch.float32 if X.is_floating_point() else torch.float64)
    if finite:
        check_finite_data(est, X, name=name)
    if reset:
        est.n_features_in_ = d
        if hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif hasattr(est, "n_features_in_") and d != est.n_features_in_:
        raise ValueError(
            f"X has {d} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    return X


def check_data(
    est,
    X,
    *,
    reset: bool,
    device: torch.device,
    ensure_min_samples: int = 1,
    name: str = "X",
    finite: bool = True,
) -> tuple[torch.Tensor, InputKind]:
    """Validate ``X`` and return it as a float32/float64 tensor on ``device``.

    Parameters
    ----------
    est : estimator
        Receives ``n_features_in_`` (and ``feature_names_in_`` for DataFrames) when ``reset``.
    X : array-like, DataFrame or torch.Tensor of shape (n_samples, n_features)
    reset : bool
        True in ``fit``; False afterwards, when the feature count must match.
    device : torch.device
        Where the returned tensor lives.
    finite : bool, default True
        Reject NaN and infinity here. A caller whose first pass over the data would show them
        anyway (a sum of squares turns non-finite) passes False and calls
        :func:`check_finite_data` only when that pass comes out non-finite, saving one pass.

    Returns
    -------
    X : torch.Tensor of shape (n_samples, n_features), float32 or float64
    kind : InputKind
        What the caller passed, for handing results back in the same type.
    """
    kind = input_kind(X)
    if isinstance(X, torch.Tensor):
        X = _check_torch(
            est, X, reset=reset, ensure_min_samples=ensure_min_samples, name=name, finite=finite
        )
        return X.to(device), kind
    if getattr(X, "dtype", None) == np.float16:
        X = np.asarray(X, dtype=np.float32)
    X = validate_data(
        est,
        X,
        reset=reset,
        dtype=[np.float64, np.float32],
        accept_sparse=False,
        ensure_min_samples=ensure_min_samples,
        ensure_all_finite=finite,
    )
    return to_tensor(X, device), kind


def check_finite_data(est, X: torch.Tensor, *, name: str = "X") -> None:
    """Raise ``ValueError`` naming NaN or infinity when the tensor ``X`` holds either."""
    if not bool(torch.isfinite(X).all()):
        what = "NaN" if bool(torch.isnan(X).any()) else "infinity"
        raise ValueError(
            f"Input {name} contains {what}; {type(est).__name__} does not accept missing or "
            "infinite values. Impute or drop them first (e.g. sklearn.impute.SimpleImputer)."
        )


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int in [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if (low is not None and value < low) or (high is not None and value > high):
        rng = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name}={value} is out of range; it must be in {rng}.")
    return int(value)


def check_float(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a real number in the range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    bad = (
        not np.isfinite(value)
        or (low is not None and (value <= low if low_open else value < low))
        or (high is not None and (value >= high if high_open else value > high))
    )
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(
            f"{name}={value} is out of range; it must be in "
            f"{lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}."
        )
    return value


def check_choice(name: str, value, choices) -> str:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {sorted(choices)}.")
    return value


def check_finite_result(name: str, value, hint: str) -> None:
    """Raise ``ValueError`` when a fitted quantity came out non-finite."""
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} is not finite after fitting; {hint}")


def check_array_like(
    Z, *, device: torch.device, n_features: int, name: str = "Z", owner: str = "the model"
) -> tuple[torch.Tensor, InputKind]:
    """Validate a 2-D array that is not the model's input ``X`` (e.g. latent codes).

    Same conversions and finiteness checks as :func:`check_data`, with the column count
    checked against ``n_features`` instead of ``n_features_in_``.
    """
    from sklearn.utils import check_array

    kind = input_kind(Z)
    if isinstance(Z, torch.Tensor):

        class _Probe:  # carries the expected width through the tensor checks
            n_features_in_ = n_features

        _Probe.__name__ = owner
        Z = _check_torch(_Probe(), Z, reset=False, ensure_min_samples=1, name=name)
        return Z.to(device), kind
    if getattr(Z, "dtype", None) == np.float16:
        Z = np.asarray(Z, dtype=np.float32)
    Z = check_array(Z, dtype=[np.float64, np.float32], input_name=name)
    if Z.shape[1] != n_features:
        raise ValueError(
            f"{name} has {Z.shape[1]} features, but {owner} is expecting {n_features} "
            f"features as input."
        )
    return to_tensor(Z, device), kind
