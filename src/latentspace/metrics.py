"""Sample-based quality measures for generative models without a tractable likelihood.

- :func:`parzen_log_likelihood` and :func:`parzen_window_score`: the Gaussian Parzen-window
  estimate of Goodfellow et al. (2014, §5): fit an isotropic Gaussian kernel density to samples
  of the model, choose its width σ by log-likelihood on a validation set, report the mean
  log-likelihood (and its standard error) on a test set. A coarse, high-variance estimate
  (Theis et al., 2016), kept because it is the number the GAN paper reports.
- :func:`make_ring_of_gaussians` and :func:`mode_coverage`: the 8-Gaussians ring of the
  mode-collapse literature (e.g. Metz et al., 2017) and how many of its modes samples reach.
- :func:`frechet_distance` (and :func:`gaussian_frechet_distance` on moments): the Fréchet
  distance between Gaussians fitted to two feature sets (Heusel et al., 2017, the "FID" when
  the features are Inception's); :func:`precision_recall`: the k-NN manifold precision and
  recall of Kynkäänniemi et al. (2019); :func:`class_coverage`: how many classes a
  classifier finds among samples, and how unevenly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from ._backend import ArrayLike

__all__ = [
    "class_coverage",
    "frechet_distance",
    "gaussian_frechet_distance",
    "make_ring_of_gaussians",
    "mode_coverage",
    "parzen_log_likelihood",
    "parzen_window_score",
    "precision_recall",
    "ring_modes",
]


# ----------------------------------------------------------------------------- Parzen window
def _as_tensor(a, name) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return torch.from_numpy(check_array(a, dtype=np.float64, input_name=name))


def _squared_distances(X: torch.Tensor, S: torch.Tensor, batch_size: int):
    """Yield (row slice, ‖x - s‖² of shape (b, m)) for blocks of rows of ``X``."""
    s_sq = S.square().sum(1)  # (m,)
    for i in range(0, X.shape[0], batch_size):
        xb = X[i : i + batch_size]  # (b, d)
        # ‖x‖² + ‖s‖² - 2 x·s, clamped at 0 against round-off
        d2 = (xb.square().sum(1, keepdim=True) + s_sq[None, :] - 2.0 * xb @ S.T).clamp_min(0.0)
        yield slice(i, i + xb.shape[0]), d2


def parzen_log_likelihood(X: ArrayLike, samples: ArrayLike, sigmas: float | ArrayLike, *,
                          batch_size: int = 1000) -> np.ndarray:
    """Log-density of each row of ``X`` under Gaussian Parzen windows centred on ``samples``.

    log p̂(x) = logsumexp_i(-‖x - s_i‖² / 2σ²) - log m - (d/2) log(2πσ²)

    Parameters
    ----------
    X : array-like of shape (n, d)
    samples : array-like of shape (m, d)
        Draws from the model.
    sigmas : float or sequence of floats
        Kernel widths; all are evaluated from one pass over the distances.
    batch_size : int
        Rows of ``X`` per block (memory is O(batch_size × m)).

    Returns
    -------
    ndarray of shape (n,) for a scalar ``sigmas``, else (len(sigmas), n); float64, nats.
    """
    scalar = np.ndim(sigmas) == 0
    sig = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if sig.ndim != 1 or sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise ValueError(f"sigmas must be positive finite numbers, got {sigmas!r}.")
    Xt, St = _as_tensor(X, "X"), _as_tensor(samples, "samples")
    if Xt.shape[1] != St.shape[1]:
        raise ValueError(
            f"X has {Xt.shape[1]} features but samples have {St.shape[1]}; they must match."
        )
    m, d = St.shape
    out = np.empty((sig.size, Xt.shape[0]))
    for rows, d2 in _squared_distances(Xt, St, int(batch_size)):
        for j, s in enumerate(sig):
            lse = torch.logsumexp(-d2 / (2.0 * s * s), dim=1)
            out[j, rows] = (lse - math.log(m) - 0.5 * d * math.log(2 * math.pi * s * s)).numpy()
    return out[0] if scalar else out


def parzen_window_score(samples: ArrayLike, X_val: ArrayLike, X_test: ArrayLike, *,
                        sigmas: Sequence[float] | None = None,
                        batch_size: int = 1000) -> dict[str, Any]:
    """Goodfellow et al.'s protocol: σ chosen on ``X_val``, mean log-likelihood on ``X_test``.

    Parameters
    ----------
    samples : array-like of shape (m, d)
        Draws from the model (Goodfellow et al. use m = 10 000).
    X_val, X_test : array-like of shape (n_val, d), (n_test, d)
    sigmas : sequence of float or None
        Candidate widths; default 20 values log-spaced over [0.05, 1] (the paper's grid
        follows the same idea, σ being searched on the validation set).

    Returns
    -------
    dict with ``sigma`` (chosen width), ``mean`` (test mean log-likelihood, nats), ``se``
    (standard error over test rows), ``val_means`` (validation mean for each candidate) and
    ``sigmas``.
    """
    sig = np.logspace(np.log10(0.05), 0.0, 20) if sigmas is None else np.asarray(sigmas, float)
    val = parzen_log_likelihood(X_val, samples, sig, batch_size=batch_size).mean(axis=1)
    best = float(sig[int(np.argmax(val))])
    test = parzen_log_likelihood(X_test, samples, best, batch_size=batch_size)
    return {
        "sigma": best,
        "mean": float(test.mean()),
        "se": float(test.std(ddof=1) / np.sqrt(test.size)) if test.size > 1 else float("nan"),
        "val_means": val,
        "sigmas": sig,
    }


# ----------------------------------------------------------------------------- ring of Gaussians
def ring_modes(n_modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """Centres of ``n_modes`` Gaussians evenly spaced on a circle.

    Parameters
    ----------
    n_modes : int, default=8
        Number of centres.
    radius : float, default=2.0
        Radius of the circle, centred at the origin.

    Returns
    -------
    modes : ndarray of shape (n_modes, 2)
        The centres, the first on the positive x-axis, counter-clockwise.
    """
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.column_stack([np.cos(angles), np.sin(angles)])


def make_ring_of_gaussians(n_samples: int = 1000, *, n_modes: int = 8, radius: float = 2.0,
                           std: float = 0.02,
                           random_state: int | np.random.RandomState | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of an equal mixture of isotropic Gaussians on a ring.

    Parameters
    ----------
    n_samples : int
    n_modes : int, default=8
    radius : float, default=2.0
    std : float, default=0.02
        Standard deviation of each mode (the usual 8-Gaussians set-up).
    random_state : int, RandomState or None

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
    labels : ndarray of shape (n_samples,), the mode of each sample
    modes : ndarray of shape (n_modes, 2)
    """
    rng = check_random_state(random_state)
    modes = ring_modes(n_modes, radius)
    labels = rng.randint(n_modes, size=n_samples)
    X = modes[labels] + std * rng.standard_normal((n_samples, 2))
    return X.astype(np.float32), labels, modes


def mode_coverage(samples: ArrayLike, modes: ArrayLike, std: float, *, n_std: float = 3.0,
                  min_fraction: float = 0.01) -> dict[str, Any]:
    """How many modes the samples reach, and how many samples are near any mode.

    A sample is *high quality* if it lies within ``n_std``·``std`` of its nearest mode; a mode
    is *covered* if at least ``min_fraction`` of all samples are high-quality samples of it.

    Parameters
    ----------
    samples : array-like of shape (n, d)
    modes : array-like of shape (n_modes, d)
    std : float
        Standard deviation of each mode.

    Returns
    -------
    dict with ``modes_covered`` (int), ``n_modes``, ``high_quality`` (fraction of samples),
    ``counts`` (high-quality samples per mode, ndarray of shape (n_modes,)).
    """
    S = check_array(np.asarray(samples, dtype=np.float64), input_name="samples")
    M = check_array(np.asarray(modes, dtype=np.float64), input_name="modes")
    if S.shape[1] != M.shape[1]:
        raise ValueError(f"samples have {S.shape[1]} features but modes have {M.shape[1]}.")
    d2 = ((S[:, None, :] - M[None, :, :]) ** 2).sum(-1)  # (n, n_modes)
    nearest = d2.argmin(1)
    good = np.sqrt(d2[np.arange(len(S)), nearest]) <= n_std * std
    counts = np.bincount(nearest[good], minlength=len(M))
    return {
        "modes_covered": int((counts >= max(1.0, min_fraction * len(S))).sum()),
        "n_modes": len(M),
        "high_quality": float(good.mean()),
        "counts": counts,
    }


# ----------------------------------------------------------------------------- feature-space scores
def _features(a, name: str) -> np.ndarray:
    """A 2-D float64 feature array (rows are samples) from an array or tensor."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return check_array(a, dtype=np.float64, input_name=name)


def _same_width(A: np.ndarray, B: np.ndarray, a: str, b: str) -> None:
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{a} has {A.shape[1]} features but {b} has {B.shape[1]}; both must come from the "
            "same feature map."
        )


def _sym_sqrt(S: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix, (d, d) -> (d, d).

    From ``eigh`` of the symmetrised matrix; eigenvalues below 0 (round-off of a PSD matrix)
    are set to 0.
    """
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def gaussian_frechet_distance(mean_a: ArrayLike, cov_a: ArrayLike, mean_b: ArrayLike,
                              cov_b: ArrayLike) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(μa, Σa) and N(μb, Σb).

    d² = ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½)

    ``tr (Σa Σb)^½`` is computed as ``tr (Σa^½ Σb Σa^½)^½`` — the two matrices are similar, and
    the second is symmetric, so both square roots come from symmetric eigen-decompositions
    (no complex round-off as with a general ``sqrtm``); tiny negative eigenvalues are set to 0.

    Parameters
    ----------
    mean_a, mean_b : array-like of shape (d,)
    cov_a, cov_b : array-like of shape (d, d)
        Symmetric positive semi-definite covariance matrices.

    Returns
    -------
    float
        d² ≥ 0, in squared feature units (negative round-off is returned as 0).
    """
    ma, mb = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mean_a, mean_b))
    Ca, Cb = (np.atleast_2d(np.asarray(c, dtype=np.float64)) for c in (cov_a, cov_b))
    d = ma.shape[0]
    if ma.ndim != 1 or mb.shape != (d,) or Ca.shape != (d, d) or Cb.shape != (d, d):
        raise ValueError(
            f"means must have shape (d,) and covariances (d, d) with one d; got means "
            f"{ma.shape}, {mb.shape} and covariances {Ca.shape}, {Cb.shape}."
        )
    for name, arr in (("mean_a", ma), ("mean_b", mb), ("cov_a", Ca), ("cov_b", Cb)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinity; moments must be finite.")
    Sa = _sym_sqrt(Ca)
    M = Sa @ Cb @ Sa  # (d, d), symmetric PSD, similar to Σa Σb
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (M + M.T)), 0.0, None)).sum())
    diff = ma - mb
    d2 = float(diff @ diff) + float(np.trace(Ca) + np.trace(Cb)) - 2.0 * tr_sqrt
    return max(d2, 0.0)


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors.

    The sample means and covariances (``ddof=1``) of each set go through
    :func:`gaussian_frechet_distance`. With Inception features this is the FID of Heusel et
    al. (2017); any fixed feature map works, and only distances computed in the same map and
    from the same numbers of rows are comparable (the estimate is biased upwards, the more so
    the fewer rows).

    Parameters
    ----------
    features_a : array-like of shape (n_a, d)
    features_b : array-like of shape (n_b, d)
        n_a, n_b ≥ 2.

    Returns
    -------
    float
        ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½) ≥ 0.
    """
    A, B = _features(features_a, "features_a"), _features(features_b, "features_b")
    _same_width(A, B, "features_a", "features_b")
    for name, F in (("features_a", A), ("features_b", B)):
        if F.shape[0] < 2:
            raise ValueError(
                f"{name} has {F.shape[0]} row(s); a covariance needs at least 2 rows."
            )
    cov = lambda F: np.atleast_2d(np.cov(F, rowvar=False))  # noqa: E731  (d, d)
    return gaussian_frechet_distance(A.mean(0), cov(A), B.mean(0), cov(B))


def _kth_neighbour_radii(F: np.ndarray, k: int, batch_size: int) -> torch.Tensor:
    """Distance of each row of ``F`` to its k-th nearest other row -> (n,) float64."""
    Ft = torch.from_numpy(F)
    radii = torch.empty(F.shape[0], dtype=torch.float64)
    for rows, d2 in _squared_distances(Ft, Ft, batch_size):
        # the row itself is at distance 0 and comes first: the k-th other row is index k
        radii[rows] = d2.kthvalue(k + 1, dim=1).values.sqrt()
    return radii


def _inside_share(centres: np.ndarray, radii: torch.Tensor, queries: np.ndarray,
                  batch_size: int) -> float:
    """Share of ``queries`` within ``radii[i]`` of at least one ``centres[i]``."""
    C, Q = torch.from_numpy(centres), torch.from_numpy(queries)
    inside = 0
    for _, d2 in _squared_distances(Q, C, batch_size):
        inside += int((d2.sqrt() <= radii[None, :]).any(dim=1).sum())
    return inside / Q.shape[0]


def precision_recall(real_features: ArrayLike, fake_features: ArrayLike, k: int = 3, *,
                     batch_size: int = 1000) -> dict[str, float]:
    """Improved precision and recall of Kynkäänniemi et al. (2019).

    Each set's manifold is the union of balls centred on its points, of radius the distance
    to the point's k-th nearest neighbour within the set. *Precision* is the share of fake
    points inside the real manifold (are the samples realistic?); *recall* the share of real
    points inside the fake manifold (does the model cover the data?).

    Parameters
    ----------
    real_features : array-like of shape (n_real, d)
    fake_features : array-like of shape (n_fake, d)
        n_real, n_fake > k. Compare numbers only at equal set sizes: the balls shrink as sets
        grow.
    k : int, default=3
        Neighbour defining each ball's radius (the paper uses 3).
    batch_size : int, default=1000
        Query rows per block (memory O(batch_size × n)).

    Returns
    -------
    dict with ``precision`` and ``recall`` (floats in [0, 1]) and ``k``.
    """
    R, F = _features(real_features, "real_features"), _features(fake_features, "fake_features")
    _same_width(R, F, "real_features", "fake_features")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    k = int(k)
    for name, A in (("real_features", R), ("fake_features", F)):
        if A.shape[0] <= k:
            raise ValueError(
                f"{name} has {A.shape[0]} row(s); the k-th neighbour needs more than k={k} rows "
                "(lower k or pass more rows)."
            )
    b = int(batch_size)
    r_real, r_fake = _kth_neighbour_radii(R, k, b), _kth_neighbour_radii(F, k, b)
    return {
        "precision": _inside_share(R, r_real, F, b),
        "recall": _inside_share(F, r_fake, R, b),
        "k": k,
    }


def class_coverage(predicted: ArrayLike, n_classes: int) -> dict[str, Any]:
    """How many classes a classifier finds among samples, and the largest class's share.

    Parameters
    ----------
    predicted : array-like of shape (n,)
        Class predicted for each sample, integers in [0, n_classes).
    n_classes : int

    Returns
    -------
    dict with ``classes_found`` (int: classes predicted at least once), ``n_classes``,
    ``coverage`` (classes_found / n_classes) and ``largest_class_share`` (the most frequent
    class's share of the samples; 1/n_classes when perfectly balanced, 1 when collapsed).
    """
    p = np.asarray(predicted)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"predicted must be a non-empty 1-D array, got shape {p.shape}.")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
            or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}.")
    if not np.issubdtype(p.dtype, np.integer) or p.min() < 0 or p.max() >= n_classes:
        raise ValueError(
            f"predicted must hold integer classes in [0, {n_classes}); got dtype {p.dtype} "
            f"with values in [{p.min()}, {p.max()}]."
        )
    counts = np.bincount(p, minlength=int(n_classes))
    found = int((counts > 0).sum())
    return {
        "classes_found": found,
        "n_classes": int(n_classes),
        "coverage": found / int(n_classes),
        "largest_class_share": float(counts.max() / p.size),
    }


# ----------------------------------------------------------------------------- sample diversity
__all__ += ["mean_pairwise_distance", "relative_diversity"]


def mean_pairwise_distance(X: ArrayLike) -> float:
    """Mean Euclidean distance over the n(n-1)/2 pairs of distinct rows of ``X``.

    Parameters
    ----------
    X : array-like or tensor of shape (n, d), n >= 2

    Returns
    -------
    float
        (2 / (n (n - 1))) Σ_{i<j} ‖x_i − x_j‖, computed in float64.
    """
    Xt = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X.detach())
    Xt = Xt.to(torch.float64).reshape(Xt.shape[0], -1)
    n = Xt.shape[0]
    if n < 2:
        raise ValueError(f"mean_pairwise_distance needs at least 2 rows, got {n}.")
    Xt = Xt - Xt.mean(0)  # distances are shift-invariant; centring keeps cdist accurate
    total = torch.zeros((), dtype=torch.float64, device=Xt.device)
    for i in range(0, n, 1024):  # row blocks bound the (block, n) distance matrix
        total += torch.cdist(Xt[i : i + 1024], Xt).sum()
    return float(total) / (n * (n - 1))  # the diagonal is 0; each pair counted twice


def relative_diversity(samples: ArrayLike, reference: ArrayLike) -> float:
    """How spread out generated samples are, relative to real rows.

    ``mean_pairwise_distance(samples) / mean_pairwise_distance(reference)``: about 1 when the
    samples are as varied as the data (for samples drawn from the data's own distribution, 1
    up to sampling error), 0 when every sample is the same point (mode collapse). It is exactly
    ``|a|`` for samples ``a * reference + b``. A generator that reaches only some modes of a
    multimodal distribution scores between the within-mode and the overall spread: on image
    data whose classes are modes, the mean distance between two images of one class is 0.57 to
    0.99 of that between two images of any class (digits, MNIST and Fashion-MNIST, the most
    compact class of each at 0.57, 0.64 and 0.60), so the measure flags a full collapse surely
    and a partial one only when few modes remain.

    Parameters
    ----------
    samples : array-like of shape (m, d)
    reference : array-like of shape (n, d)
        Real rows, not all equal.

    Returns
    -------
    float >= 0
    """
    ref = mean_pairwise_distance(reference)
    if not ref > 0:
        raise ValueError("relative_diversity needs reference rows that are not all equal.")
    return mean_pairwise_distance(samples) / ref
