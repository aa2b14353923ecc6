"""Input checks with scikit-learn-compatible messages.

numpy, pandas and array-likes go through scikit-learn's public ``validate_data`` (so the
wording matches what its estimator checks expect); torch tensors are checked on their own
device, without a round trip through the host.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from scipy import sparse as _sparse
from sklearn.utils.validation import validate_data

from ._backend import InputKind, input_kind, to_tensor

__all__ = [
    "ParameterError",
    "check_data",
    "check_sparse_data",
    "is_sparse",
    "check_finite_data",
    "check_observed_data",
    "check_missing",
    "check_int",
    "check_float",
    "check_choice",
    "check_finite_result",
    "check_random_state",
    "check_seed",
    "check_container",
    "check_tensor_storage",
    "check_array_like",
    "check_labels",
    "check_n_samples_to_draw",
    "check_param_array",
]

_FLOATS = (torch.float64, torch.float32)


class ParameterError(ValueError):
    """A hyperparameter value the estimator rejects (raised by the ``check_*`` helpers for
    parameters), so that callers such as the command line can tell it from bad data."""


_SHAPE_HINT = "pass a 2-D array-like of shape (n_samples, n_features)"


def check_tensor_storage(X: torch.Tensor, name: str) -> torch.Tensor:
    """A dense tensor with data, detached from any autograd graph."""
    if X.layout != torch.strided:
        raise TypeError(
            f"Sparse input is not supported yet: {name} is a {X.layout} tensor; densify it "
            f"with {name}.to_dense()."
        )
    if X.device.type == "meta":
        raise TypeError(
            f"{name} is a tensor on the 'meta' device, which holds no data; create it on a "
            "device that holds values (device='cpu' or 'cuda') before passing it."
        )
    return X.detach()


def _check_torch(
    est, X: torch.Tensor, *, reset: bool, ensure_min_samples: int, name: str,
    finite: bool | str = True,
):
    X = check_tensor_storage(X, name)
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
    if finite == "allow-nan":
        check_observed_data(X, name=name)
    elif finite:
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


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_data(
    est,
    X,
    *,
    reset: bool,
    device: torch.device,
    ensure_min_samples: int = 1,
    name: str = "X",
    finite: bool | str = True,
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
        ``"allow-nan"`` keeps NaN as missing entries (models with ``missing="marginalize"``)
        and still rejects infinity and rows with no observed entry
        (:func:`check_observed_data`).

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
    if (reset and finite is False and type(X) is np.ndarray and X.ndim == 2
            and X.dtype in _FLOAT_DTYPES and X.shape[0] >= max(ensure_min_samples, 1)
            and X.shape[1] >= 1):
        # the common case of a fit, settled without scikit-learn's general checks: all they
        # would do here is record the feature count and forget earlier feature names
        est.n_features_in_ = X.shape[1]
        est.__dict__.pop("feature_names_in_", None)
        return to_tensor(X, device), kind
    X = check_container(X, name)
    if getattr(X, "dtype", None) == np.float16:
        X = np.asarray(X, dtype=np.float32)
    # a model with a ``missing`` hyperparameter names it in its NaN error (check_finite_data)
    nan_hint = finite is True and "missing" in getattr(est, "__dict__", {})
    X = _converted(
        lambda A: validate_data(
            est,
            A,
            reset=reset,
            dtype=[np.float64, np.float32],
            accept_sparse=False,
            ensure_min_samples=ensure_min_samples,
            ensure_all_finite="allow-nan" if nan_hint else finite,
        ),
        X,
        name,
    )
    X = to_tensor(X, device)
    if finite == "allow-nan":
        check_observed_data(X, name=name)
    elif nan_hint:
        check_finite_data(est, X, name=name)
    return X, kind


def is_sparse(X) -> bool:
    """True for a scipy.sparse matrix or array (what :func:`check_sparse_data` accepts)."""
    return _sparse.issparse(X)


def check_sparse_data(
    est,
    X,
    *,
    reset: bool,
    ensure_min_samples: int = 1,
    name: str = "X",
    format: str = "csr",
):
    """Validate a scipy.sparse ``X`` and return it as a float32/float64 CSR (or CSC) matrix.

    For estimators that accept sparse input: the checks and messages of :func:`check_data`
    (shape, feature count, ``n_features_in_``), with NaN and infinity refused among the stored
    values. The result is never densified; integer and boolean data become float64, as
    scikit-learn does. The caller's object is copied only when its format or dtype differs
    (or its indices are not canonical); the result shares no mutable state the estimator
    writes to.

    Parameters
    ----------
    est : estimator
        Receives ``n_features_in_`` when ``reset``.
    X : scipy.sparse matrix or array of shape (n_samples, n_features)
    reset : bool
        True in ``fit``; False afterwards, when the feature count must match.
    format : {"csr", "csc"}, default "csr"
        The layout returned.

    Returns
    -------
    X : scipy.sparse.csr_matrix or csc_matrix of shape (n_samples, n_features)
    """
    if not _sparse.issparse(X):
        raise TypeError(f"{name} is a {type(X).__name__}, not a scipy.sparse matrix.")
    if X.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {X.dtype}; pass real values."
        )
    if X.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{name} is a sparse matrix of dtype {X.dtype}, which is not numeric; pass "
            "float, integer or boolean values."
        )
    X = validate_data(
        est,
        X,
        reset=reset,
        dtype=[np.float64, np.float32],
        accept_sparse=["csr", "csc"],
        ensure_min_samples=ensure_min_samples,
        ensure_all_finite=False,
    )
    X = X.asformat(format)
    if not isinstance(X, (_sparse.csr_matrix, _sparse.csc_matrix)):
        X = (_sparse.csr_matrix if format == "csr" else _sparse.csc_matrix)(X)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.nnz and not np.isfinite(X.data).all():
        what = "NaN" if np.isnan(X.data).any() else "infinity"
        raise ValueError(
            f"Input {name} contains {what}; {type(est).__name__} does not accept missing or "
            "infinite values. Impute or drop them first."
        )
    return X


def _converted(convert, X, name: str):
    """``convert(X)``; when it fails on elements that are not numbers, say which one.

    The check runs only after a failed conversion, so numeric input pays nothing for it.
    """
    try:
        return convert(X)
    except (TypeError, ValueError):
        pd = sys.modules.get("pandas")
        if getattr(getattr(X, "dtype", None), "kind", None) in _NUMERIC_KINDS or (
            pd is not None and isinstance(X, pd.DataFrame)  # columns checked by _check_frame
        ):
            raise
        bad = _non_number_error(X, name)
        if bad is None:
            raise
        raise bad from None


_NUMERIC_KINDS = frozenset("biuf")
_SHOWN = 40  # characters of an offending value quoted in a message


def _shown(value, limit: int = _SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting a value in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _position(index: tuple) -> str:
    if len(index) == 2:
        return f"row {index[0]}, column {index[1]}"
    if len(index) == 1:
        return f"element {index[0]}"
    return f"position {index}"


def _non_number_error(X, name: str) -> Exception | None:
    """The error for the first element of ``X`` that cannot become a float, or None.

    A string (``str``/``bytes``) gives a ``ValueError``, any other object a ``TypeError``;
    None and pandas' NA/NaT count as missing (read as NaN) and are left to the NaN check.
    """
    try:
        arr = np.asarray(X, dtype=object)
    except (TypeError, ValueError):
        return None
    pd = sys.modules.get("pandas")
    missing = (None,) if pd is None else (None, pd.NA, pd.NaT)
    for index in np.ndindex(arr.shape):
        value = arr[index]
        if any(value is m for m in missing):
            continue
        try:
            float(value)
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            continue
        shown = _shown(value)
        where = _position(index) if arr.ndim else "its only element"
        if isinstance(value, (str, bytes, np.str_, np.bytes_)):
            return ValueError(
                f"{name} holds a string at {where}: {shown}, and needs numbers; encode "
                "categorical columns as numbers (e.g. sklearn.preprocessing.OneHotEncoder) "
                f"or drop them, then convert with np.asarray({name}, dtype=float)."
            )
        return TypeError(  # "argument must be a string ... number": scikit-learn's wording
            f"{name} holds a {type(value).__name__} at {where}: {shown}, which is not a "
            "number; as for np.asarray, each element's argument must be a string or a real "
            f"number: pass numbers only (np.asarray({name}, dtype=float) must work)."
        )
    return None


def check_container(X, name: str):
    """Reject what numpy would misread or reject with its own words; numeric input passes
    unchanged (a ragged list comes back as the error, any other list as it was)."""
    if X is None:
        raise TypeError(f"{name} is None; {_SHAPE_HINT}.")
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} is a {type(X).__name__}, not an array; {_SHAPE_HINT}.")
    if _sparse.issparse(X):
        raise TypeError(
            f"Sparse input is not supported yet: {name} is a scipy.sparse "
            f"{type(X).__name__}; densify it with {name}.toarray()."
        )
    if isinstance(X, Mapping):  # after the sparse check: a dok_array is a dict
        raise TypeError(
            f"{name} is a {type(X).__name__}, not an array; {_SHAPE_HINT} (for a mapping of "
            f"column names to values, pass pandas.DataFrame({name}))."
        )
    if isinstance(X, Iterator):
        raise TypeError(
            f"{name} is an iterator ({type(X).__name__}), which cannot be validated without "
            f"consuming it; materialise it first, e.g. np.asarray(list({name}))."
        )
    pd = sys.modules.get("pandas")  # a DataFrame implies pandas is already imported
    if pd is not None and isinstance(X, pd.DataFrame):
        _check_frame(X, name, pd)
        return X
    kind = getattr(getattr(X, "dtype", None), "kind", None)
    if kind in ("M", "m"):
        raise TypeError(
            f"{name} has dtype {X.dtype}, and dates or durations are not numbers; convert "
            f"them explicitly, e.g. to seconds: ({name} - {name}.min()) / np.timedelta64(1, 's')."
        )
    if kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {X.dtype}; pass real values, "
            f"e.g. np.abs({name}) or np.c_[{name}.real, {name}.imag]."
        )
    if isinstance(X, (list, tuple)):
        lengths = {len(r) if isinstance(r, (list, tuple, np.ndarray)) else -1 for r in X}
        if len(lengths) > 1:
            raise ValueError(
                f"{name} is ragged: its rows have different lengths; every row needs the "
                "same number of features (pad or drop the short rows)."
            )
    return X


def _check_frame(X, name: str, pd) -> None:
    """Duplicate and non-numeric columns of a DataFrame, named, before any conversion."""
    dup = X.columns[X.columns.duplicated()].unique()
    if len(dup):
        raise ValueError(
            f"{name} has duplicate column names {[str(c) for c in dup]}; rename them so "
            "that every column name is unique."
        )
    when, other = [], []
    for col, dtype in X.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
        ):
            continue
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            when.append(f"{col!r} ({dtype})")
            continue
        try:  # object columns of numbers convert
            np.asarray(X[col], dtype=np.float64)
        except (TypeError, ValueError):
            other.append(f"{col!r} ({dtype})")
    if when:
        raise TypeError(
            f"{name} has date or duration column(s) {', '.join(when)}; they are not numbers: "
            "convert them (e.g. to seconds since an origin) or drop them."
        )
    if other:
        raise ValueError(
            f"{name} has non-numeric column(s) {', '.join(other)}; encode them as numbers "
            "(e.g. sklearn.preprocessing.OneHotEncoder or OrdinalEncoder) or drop them."
        )


def check_finite_data(est, X: torch.Tensor, *, name: str = "X") -> None:
    """Raise ``ValueError`` naming NaN or infinity when the tensor ``X`` holds either."""
    if not bool(torch.isfinite(X).all()):
        nan = bool(torch.isnan(X).any())
        what = "NaN" if nan else "infinity"
        if nan and "missing" in getattr(est, "__dict__", {}):
            raise ValueError(
                f"Input {name} contains NaN; {type(est).__name__}(missing={est.missing!r}) "
                "does not accept missing values. Pass missing='marginalize' to treat NaN "
                "entries as missing at random, or impute or drop them first."
            )
        raise ValueError(
            f"Input {name} contains {what}; {type(est).__name__} does not accept missing or "
            "infinite values. Impute or drop them first (e.g. sklearn.impute.SimpleImputer)."
        )


def check_observed_data(X: torch.Tensor, *, name: str = "X") -> None:
    """NaN entries are missing values: raise ``ValueError`` for infinity, and for a row with
    no observed entry (naming the first such row)."""
    if bool(torch.isinf(X).any()):
        raise ValueError(
            f"Input {name} contains infinity; only NaN marks a missing entry. Replace the "
            "infinite values (or mark them missing with NaN)."
        )
    if X.numel() and bool(torch.isnan(X).any()):
        empty = torch.isnan(X).all(1)
        if bool(empty.any()):
            row = int(torch.nonzero(empty)[0, 0])
            count = int(empty.sum())
            raise ValueError(
                f"Row {row} of {name} has no observed entry (all {X.shape[1]} values are NaN"
                f"{f'; {count} such rows in all' if count > 1 else ''}): a model cannot say "
                "anything about it. Drop the rows with nothing observed."
            )


def check_missing(value) -> str:
    """The ``missing`` hyperparameter: ``"raise"`` or ``"marginalize"``."""
    return check_choice("missing", value, ("raise", "marginalize"))


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int in [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterError(
            f"{name} must be an integer, got {_shown(value)} ({type(value).__name__})."
        )
    if (low is not None and int(value) < low) or (high is not None and int(value) > high):
        rng = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ParameterError(f"{name}={value} is out of range; it must be in {rng}.")
    return int(value)


def check_float(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a real number in the range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ParameterError(
            f"{name} must be a real number, got {_shown(value)} ({type(value).__name__})."
        )
    value = float(value)
    bad = (
        not np.isfinite(value)
        or (low is not None and (value <= low if low_open else value < low))
        or (high is not None and (value >= high if high_open else value > high))
    )
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ParameterError(
            f"{name}={value} is out of range; it must be in "
            f"{lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}."
        )
    return value


_SEED_MAX = 2**32 - 1


def check_seed(name: str, value):
    """Raise ``ValueError`` naming ``name`` unless ``value`` can seed a random state: None,
    an int in [0, 2**32 - 1], a ``np.random.RandomState`` or a ``np.random.Generator``."""
    if value is None or isinstance(value, (np.random.RandomState, np.random.Generator)):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        if 0 <= int(value) <= _SEED_MAX:
            return int(value)
    raise ParameterError(
        f"{name}={_shown(value)} is invalid; use None, an int in [0, {_SEED_MAX}], a "
        "numpy.random.RandomState or a numpy.random.Generator."
    )


def check_random_state(seed, name: str = "random_state") -> np.random.RandomState:
    """``seed`` as a ``np.random.RandomState``, or ``ValueError`` naming ``name``.

    None gives numpy's global RandomState, an int a new one seeded with it, a RandomState
    itself; a ``np.random.Generator`` seeds a new RandomState from one draw.
    """
    seed = check_seed(name, seed)
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.RandomState(int(seed.integers(_SEED_MAX, endpoint=True)))
    return np.random.RandomState(seed)


def check_n_samples_to_draw(n_samples, row_bytes: float, owner: str, *, device="cpu") -> int:
    """``n_samples`` for ``sample()``: a positive int whose output fits in memory.

    ``row_bytes`` is what one drawn row takes (the output and its temporary draws).
    """
    from ._memory import check_allocation

    n_samples = check_int("n_samples", n_samples, low=1)
    check_allocation(
        float(n_samples) * float(row_bytes), f"{owner}.sample(n_samples={n_samples})",
        "draw the samples in batches (several calls with a smaller n_samples)", device=device,
    )
    return n_samples


def check_param_array(name: str, value, shape: str) -> np.ndarray:
    """An array hyperparameter (e.g. ``means_init``) as float64, or ``ValueError`` naming
    ``name`` and the ``shape`` it must have (e.g. ``"(n_components,) = (3,)"``).

    Strings, bytes, mappings and objects that are not arrays of numbers are refused here,
    before numpy could answer with its own words; the caller checks the shape and values.
    """
    if isinstance(value, torch.Tensor):
        value = check_tensor_storage(value, name).cpu().numpy()
    problem = None
    if isinstance(value, (str, bytes, Mapping)):
        problem = f"a {type(value).__name__}"
    elif np.iscomplexobj(value):
        problem = "complex"
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            problem = f"a {type(value).__name__}, not an array of numbers"
    if problem is not None:
        raise ParameterError(
            f"{name}={_shown(value)} is invalid: it is {problem}; pass an array of real numbers "
            f"of shape {shape}, or None."
        )
    return arr


def check_choice(name: str, value, choices) -> str:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(
            f"{name}={_shown(value)} is not supported; choose one of {sorted(choices)}."
        )
    return value


def check_finite_result(name: str, value, hint: str) -> None:
    """Raise ``ValueError`` when a fitted quantity came out non-finite."""
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} is not finite after fitting; {hint}")


def check_labels(labels, n_labels: int, *, name: str = "labels", owner: str = "the model"):
    """Validate 1-D integer labels in [0, n_labels) -> (int64 numpy array, caller's InputKind).

    Integral floats (``3.0``) are accepted; strings, complex, NaN, fractions, empty or
    out-of-range labels are a ``ValueError`` (other types a ``TypeError``).
    """
    kind = input_kind(labels)
    if isinstance(labels, torch.Tensor):
        labels = check_tensor_storage(labels, name).cpu().numpy()
    arr = np.asarray(check_container(labels, name))
    allowed = f"{owner} labels must be integers in [0, {n_labels - 1}]"
    if arr.ndim != 1:
        raise ValueError(f"{allowed}, given as a 1-D array; got {arr.ndim} dimension(s).")
    if arr.size == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={arr.shape}) in {name}; {allowed}.")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{allowed}; got {name} of dtype {arr.dtype}.")
    as_float = arr.astype(np.float64)
    if not (np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float))
            and as_float.min() >= 0 and as_float.max() < n_labels):
        raise ValueError(f"{allowed}; {name} holds other values (NaN, fractions or out of range).")
    return arr.astype(np.int64), kind


def check_array_like(
    Z, *, device: torch.device, n_features: int | None, name: str = "Z", owner: str = "the model",
    hint: str = "",
) -> tuple[torch.Tensor, InputKind]:
    """Validate a 2-D array that is not the model's input ``X`` (e.g. latent codes).

    Same conversions and finiteness checks as :func:`check_data`, with the column count
    checked against ``n_features`` (None: by the caller) instead of ``n_features_in_``;
    ``hint`` ends the message of a wrong count (e.g. ``"; pass the output of transform()"``).
    """
    from sklearn.utils import check_array

    kind = input_kind(Z)
    if isinstance(Z, torch.Tensor):

        class _Probe:  # names the owner in the tensor checks' messages
            pass

        _Probe.__name__ = owner
        Z = _check_torch(_Probe(), Z, reset=False, ensure_min_samples=1, name=name)
    else:
        Z = check_container(Z, name)
        if getattr(Z, "dtype", None) == np.float16:
            Z = np.asarray(Z, dtype=np.float32)
        Z = _converted(
            lambda A: check_array(A, dtype=[np.float64, np.float32], input_name=name), Z, name
        )
    if n_features is not None and Z.shape[1] != n_features:
        raise ValueError(
            f"{name} has {Z.shape[1]} features, but {owner} is expecting {n_features} "
            f"features as input{hint}."
        )
    return to_tensor(Z, device), kind
