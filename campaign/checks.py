"""What a returned result must satisfy, per method; a failed check raises ``Wrong``."""

from __future__ import annotations

import numbers

import numpy as np

from .classify import Wrong
from .inputs import CLUSTERINGS, K

__all__ = ["as_array", "check_result", "check_fitted", "n_rows", "same", "same_labels"]


def as_array(value) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().to(dtype=value.dtype if value.dtype != torch.bfloat16
                                       else torch.float32).numpy()
    if hasattr(value, "to_numpy"):
        return value.to_numpy()
    if type(value).__module__.startswith("scipy.sparse"):  # np.asarray gives a 0-d object
        return value.toarray()
    return np.asarray(value)


def n_rows(X):
    if type(X).__module__.startswith("scipy.sparse"):  # len() of a sparse matrix raises
        return X.shape[0]
    try:
        return len(X)
    except TypeError:
        return None


def _is_torch(x) -> bool:
    import torch

    return isinstance(x, torch.Tensor)


def _finite(name, a, *, numeric=True):
    a = np.asarray(a)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise Wrong(f"{name}: {bad} of {a.size} value(s) are NaN or infinite")
    if numeric and a.dtype.kind not in "fciub":
        raise Wrong(f"{name}: an array of dtype {a.dtype} came back")


def _kind(method, X, out):
    if _is_torch(X) and not _is_torch(out):
        raise Wrong(f"{method}: a torch tensor went in, a {type(out).__name__} came back")
    if not _is_torch(X) and _is_torch(out):
        raise Wrong(f"{method}: a {type(X).__name__} went in, a torch tensor came back")


def _dtype32(method, X, out):
    xd = getattr(X, "dtype", None)
    if xd is None:
        return
    if str(xd) in ("float32", "torch.float32") and str(out.dtype) not in ("float32",
                                                                          "torch.float32"):
        raise Wrong(f"{method}: float32 went in, {out.dtype} came back")


def n_classes(est) -> int:
    """K of a fitted clustering (its number of clusters or components)."""
    for name in ("cluster_centers_", "weights_"):
        if hasattr(est, name):
            return len(getattr(est, name))
    return getattr(est, "n_clusters", None) or getattr(est, "n_components", None) or K


def check_result(est_name: str, method: str, X, out, *, est=None, d=None, k=None):
    """Check ``out = est.method(X)`` for shape, type, finiteness and ranges; ``k`` is the
    number of clusters (default: the estimator's, else the campaign's K)."""
    K = k or (n_classes(est) if est is not None else globals()["K"])
    n = n_rows(X) if method not in ("sample",) else None
    if method in ("fit", "partial_fit"):
        if out is not est:
            raise Wrong(f"{method} returned {type(out).__name__}, not the estimator")
        check_fitted(est_name, est)
        return
    if method in ("score", "bic", "aic"):
        if not isinstance(out, numbers.Real) or isinstance(out, bool):
            raise Wrong(f"{method} returned {type(out).__name__}, not a float")
        if not np.isfinite(float(out)):
            raise Wrong(f"{method} returned {out}")
        return
    if method == "sample":
        samples = out[0] if isinstance(out, tuple) else out
        a = as_array(samples)
        if a.ndim != 2 or (d is not None and a.shape[1] != d):
            raise Wrong(f"sample returned shape {a.shape}, expected (n, {d})")
        _finite("sample", a)
        if isinstance(out, tuple):
            lab = as_array(out[1])
            if lab.shape != (a.shape[0],) or (lab.size and (lab.min() < 0 or lab.max() >= K)):
                raise Wrong(f"sample's labels have shape {lab.shape} or values out of [0, {K})")
        return
    if not (_is_torch(out) or isinstance(out, np.ndarray) or hasattr(out, "to_numpy")):
        raise Wrong(f"{method} returned {type(out).__name__}, not an array")
    _kind(method, X, out)
    a = as_array(out)
    if method in ("transform", "fit_transform", "inverse_transform", "impute"):
        _dtype32(method, X, out)
        want = (n, d) if d is not None else None
        if a.ndim != 2 or (want is not None and a.shape != want):
            raise Wrong(f"{method} returned shape {a.shape}, expected {want}")
        _finite(method, a)
    elif method in ("predict", "fit_predict"):
        if a.shape != (n,):
            raise Wrong(f"{method} returned shape {a.shape}, expected ({n},)")
        if a.dtype.kind not in "iu":
            raise Wrong(f"{method} returned labels of dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= K):
            raise Wrong(f"{method} returned labels outside [0, {K}): {np.unique(a)[:5]}")
    elif method == "predict_proba":
        if a.shape != (n, K):
            raise Wrong(f"predict_proba returned shape {a.shape}, expected ({n}, {K})")
        _finite(method, a)
        tol = 1e-4 if a.dtype == np.float32 else 1e-8
        if a.size and (a.min() < -tol or a.max() > 1 + tol
                       or np.abs(a.sum(1) - 1).max() > tol * K):
            raise Wrong("predict_proba: rows are not probabilities summing to 1")
    elif method == "impute":
        _dtype32(method, X, out)
        want = (n, d) if d is not None else None
        if a.ndim != 2 or (want is not None and a.shape != want):
            raise Wrong(f"impute returned shape {a.shape}, expected {want}")
        _finite(method, a)
        try:  # the observed entries of X, where they read as a float64 array
            Xa = np.asarray(as_array(X), dtype=np.float64)
        except (TypeError, ValueError):
            Xa = None
        if Xa is not None and Xa.shape == a.shape:
            seen = np.isfinite(Xa)
            if not np.array_equal(a[seen].astype(np.float64), Xa[seen].astype(a.dtype)
                                  .astype(np.float64)):
                raise Wrong("impute changed observed entries")
    elif method == "score_samples":
        if a.shape != (n,):
            raise Wrong(f"score_samples returned shape {a.shape}, expected ({n},)")
        _finite(method, a)


def check_fitted(est_name: str, est):
    """Every fitted float attribute finite; labels in range."""
    K = n_classes(est)
    for name, value in vars(est).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if isinstance(value, (float, np.floating)) and not np.isfinite(value):
            raise Wrong(f"fitted attribute {name} = {value}")
        if isinstance(value, np.ndarray) or _is_torch(value):
            _finite(f"fitted attribute {name}", as_array(value), numeric=False)
    if est_name in CLUSTERINGS and hasattr(est, "labels_"):
        lab = np.asarray(est.labels_)
        if lab.size and (lab.min() < 0 or lab.max() >= K):
            raise Wrong(f"labels_ outside [0, {K})")


def same(name: str, a, b, rtol: float, atol_scale: float = 1.0):
    """Raise unless two results agree to ``rtol`` of their magnitude."""
    a, b = as_array(a).astype(np.float64), as_array(b).astype(np.float64)
    if a.shape != b.shape:
        raise Wrong(f"{name}: shape {a.shape} differs from the reference's {b.shape}")
    if not a.size:
        return
    scale = max(np.abs(b).max(), atol_scale)
    err = np.abs(a - b).max()
    if not err <= rtol * scale:
        raise Wrong(f"{name}: differs from the reference by {err:.3g} (allowed "
                    f"{rtol * scale:.3g})")


def same_labels(name: str, a, b):
    """Raise unless two labelings agree up to a permutation of the labels."""
    a, b = as_array(a).ravel(), as_array(b).ravel()
    if a.shape != b.shape:
        raise Wrong(f"{name}: {a.shape} labels, reference {b.shape}")
    pairs = set(zip(a.tolist(), b.tolist()))
    if len(pairs) != len(set(a.tolist())) or len(pairs) != len(set(b.tolist())):
        raise Wrong(f"{name}: the labeling differs from the reference's "
                    f"(clusters {sorted(set(a.tolist()))} vs {sorted(set(b.tolist()))}, "
                    f"{len(pairs)} label pairs)")


def short_exc(exc) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:150]}"
