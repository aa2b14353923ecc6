"""Principal component analysis, its probabilistic model, and incremental fitting.

PCA finds the orthonormal directions V (k×d) that maximise the variance of the projections
z = V(x − μ), i.e. the leading eigenvectors of the covariance S = Xcᵀ Xc / (n − 1). Four exact
routes compute them and one approximate one:

- ``full``: SVD of the centred data, Xc = U Σ Vᵀ, eigenvalues Σ² / (n − 1);
- ``covariance_eigh``: one pass of sufficient statistics (n, Σx, Σ(x − μ)(x − μ)ᵀ), then ``eigh(S)``
  — the fastest route for tall, narrow data;
- ``gram``: for wide data (n < d) the eigendecomposition of Xc Xcᵀ (n×n), whose eigenvectors
  are U; the components follow as V = Xcᵀ U Σ⁻¹;
- ``randomized``: Halko, Martinsson & Tropp (2011) range finder with power iterations;
- ``auto`` picks by shape (see ``_choose_solver``).

Probabilistic PCA (Tipping & Bishop, 1999) reads the same fit as the Gaussian model
x = μ + W z + ε, z ~ N(0, I_k), ε ~ N(0, σ² I_d), with σ² the mean of the discarded eigenvalues
and W = Vᵀ (Λ − σ² I)^½: ``score_samples`` is its exact log-likelihood, ``sample`` draws from it.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state

from .._backend import to_numpy
from .._math import (
    abs_max,
    col_sums,
    eigh_desc,
    gram_upper,
    pow2_scale,
    symmetrize,
    tcrossprod,
)
from .._validation import check_array_like, check_choice, check_finite_data, check_int
from ..base import LatentModel
from ..data._dask import DaskSource, is_dask_array
from ..data._input import Prepare

__all__ = ["PCA"]

_SOLVERS = ("auto", "full", "covariance_eigh", "gram", "randomized")


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, LatentModel):
    """Principal component analysis with probabilistic-PCA likelihood and sampling.

    Parameters
    ----------
    n_components : int, float in (0, 1), or None, default=None
        Number of components to keep. A float keeps the fewest components whose explained
        variance ratio exceeds it; None keeps ``min(n_samples, n_features)``.
    svd_solver : {"auto", "full", "covariance_eigh", "gram", "randomized"}, default="auto"
        Route to the eigenvectors (module docstring). ``auto`` picks ``covariance_eigh`` when
        ``n_samples >= n_features <= 2048``, ``gram`` when ``n_samples < n_features`` and
        ``n_samples <= 2048``, else ``randomized`` for ``n_components < 0.8 min(n, d)`` and
        ``full`` otherwise. The route taken is stored in ``fit_svd_solver_``.
    whiten : bool, default=False
        Scale the projections to unit variance in ``transform`` (undone by ``inverse_transform``).
    iterated_power : int or "auto", default="auto"
        Power iterations of the randomized solver: 7 when ``n_components < 0.1 min(n, d)``, else 4.
    n_oversamples : int, default=10
        Extra random directions of the randomized solver. Its documented accuracy: explained
        variances within 1e-4 relative and components within 1e-4 in cosine of the exact
        solvers for components separated by an eigenvalue gap (measured in the tests).
    random_state : int, RandomState or None, default=None
        Seeds the randomized solver and is the default seed of ``sample``.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the computation runs; fitted attributes are numpy arrays either way.

    Attributes
    ----------
    components_ : ndarray of shape (n_components_, n_features)
        Principal axes, rows of unit norm, sorted by decreasing variance; each row's
        largest-magnitude entry is positive (a deterministic sign).
    explained_variance_ : ndarray of shape (n_components_,)
        Eigenvalues of the covariance (ddof=1).
    explained_variance_ratio_ : ndarray of shape (n_components_,)
        Share of the total variance (0 for constant data, never NaN).
    singular_values_ : ndarray of shape (n_components_,)
        Singular values of the centred data.
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : float
        PPCA's σ²: the mean of the ``min(n, d) − k`` discarded eigenvalues (0 when none are).
    n_components_ : int
    n_samples_ : int
    fit_svd_solver_ : str
    n_samples_seen_ : int
        Samples seen so far by ``fit`` or ``partial_fit``.
    scatter_ : ndarray of shape (n_features, n_features)
        Only after ``partial_fit``: Σ (x − μ)(x − μ)ᵀ over all samples seen, the exact
        sufficient statistic that makes incremental fitting equal to a full fit.

    Notes
    -----
    All accumulation runs in float64; float32 input is projected in float32. Data are scaled
    internally by a power of two, so values near 1e±300 give the same components as ordinary
    data; when their variances cannot be represented in float64 a ``ValueError`` asks to rescale.
    """

    def __init__(
        self,
        n_components=None,
        *,
        svd_solver="auto",
        whiten=False,
        iterated_power="auto",
        n_oversamples=10,
        random_state=None,
        device="cpu",
    ):
        self.n_components = n_components
        self.svd_solver = svd_solver
        self.whiten = whiten
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ parameters
    def _check_params(self, n: int, d: int, solver: str):
        check_choice("svd_solver", self.svd_solver, _SOLVERS)
        if not isinstance(self.whiten, (bool, np.bool_)):
            raise ValueError(f"whiten must be True or False, got {self.whiten!r}.")
        if self.iterated_power != "auto":
            check_int("iterated_power", self.iterated_power, low=0)
        check_int("n_oversamples", self.n_oversamples, low=1)
        k = self.n_components
        limit = min(n, d)
        if k is None:
            return limit
        if isinstance(k, numbers.Integral) and not isinstance(k, (bool, np.bool_)):
            if not 1 <= k <= limit:
                raise ValueError(
                    f"n_components={k} must be between 1 and min(n_samples, n_features)="
                    f"{limit} (n_samples={n}, n_features={d})."
                )
            return int(k)
        if isinstance(k, numbers.Real) and not isinstance(k, (bool, np.bool_)) and 0 < k < 1:
            if solver == "randomized":
                raise ValueError(
                    f"n_components={k} (a variance fraction) needs an exact solver; "
                    "svd_solver='randomized' takes an integer number of components."
                )
            return float(k)
        raise ValueError(
            f"n_components={k!r} is invalid: use an int in [1, {limit}], a float in (0, 1) "
            "for a share of the variance, or None."
        )

    @staticmethod
    def _choose_solver(n: int, d: int, k) -> str:
        small = min(n, d)
        if n >= d and d <= 2048:
            return "covariance_eigh"
        if n < d and n <= 2048:
            return "gram"
        if isinstance(k, int) and k < 0.8 * small:
            return "randomized"
        return "full"

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Fit the principal axes on ``X`` of shape (n_samples, n_features).

        ``X`` may also be a Dask array: it is then fitted by the covariance route, one task
        per block of rows (moments per block, merged pairwise), on whatever scheduler is
        active.
        """
        if is_dask_array(X):
            return self._fit_dask(X)
        # NaN and infinity are looked for in the first pass over the data, not in one of its own
        X, _ = self._check_X(X, reset=True, finite=False)
        n, d = X.shape
        if n < 2:
            check_finite_data(self, X)
            raise ValueError(
                f"PCA needs at least 2 samples to estimate a variance; got {n} sample(s)."
            )
        solver = self.svd_solver if isinstance(self.svd_solver, str) else None
        k = self._check_params(n, d, solver)
        if solver == "auto":
            solver = self._choose_solver(n, d, k)

        # exact power-of-two scaling keeps squares of huge/tiny data representable
        if solver == "covariance_eigh":
            mean_s, scatter, scale = _scaled_moments(
                lambda sc: _moments(X, sc), lambda: check_finite_data(self, X),
                lambda: abs_max(X),
            )
            values, vectors, total = _from_scatter(scatter, n, k)
        else:
            amax = abs_max(X)
            if not np.isfinite(amax):
                check_finite_data(self, X)  # NaN or infinity: raises
            scale = 1.0 if 1e-100 < amax < 1e100 else pow2_scale(amax)
            # centred, scaled copy in the input's precision: float32 stays float32 here and
            # the sums that need it (mean, trace) are accumulated in float64
            mean_s, Xc = _centred(X, scale)
            if solver == "gram":
                values, vectors, total = _gram(Xc, n, k)
            else:
                total = float(torch.sum(Xc * Xc, dtype=torch.float64)) / (n - 1)
            if solver == "full":
                values, vectors = _svd(Xc, n)
            elif solver == "randomized":
                values, vectors = _randomized(
                    Xc, n, k, self.iterated_power, self.n_oversamples,
                    check_random_state(self.random_state),
                )
        self._set_fitted(values, vectors, total, mean_s, scale, n, d, k, solver)
        self.n_samples_seen_ = n
        if hasattr(self, "scatter_"):
            del self.scatter_
        return self

    def _fit_dask(self, X):
        solver = self.svd_solver if isinstance(self.svd_solver, str) else None
        if solver not in ("auto", "covariance_eigh"):
            raise ValueError(
                f"svd_solver={self.svd_solver!r} needs the whole array in memory; a Dask array "
                "is fitted by the covariance route (svd_solver='auto' or 'covariance_eigh'), "
                "or call X.compute() first."
            )
        source = DaskSource(X, prepare=Prepare(self, finite=False),
                            prepare_first=lambda raw: self._check_X(raw, reset=True)[0])
        n, d = source.n_samples, source.n_features
        if n < 2:
            raise ValueError(
                f"PCA needs at least 2 samples to estimate a variance; got {n} sample(s)."
            )
        k = self._check_params(n, d, "covariance_eigh")

        def nonfinite_input():
            import dask.array as da

            if not bool(da.isfinite(source._X).all().compute()):
                raise ValueError(
                    "Input X contains NaN or infinity; PCA does not accept missing or infinite "
                    "values. Impute or drop them first (e.g. sklearn.impute.SimpleImputer)."
                )

        def at(scale):
            m = source.map_reduce(_BlockMoments(scale))
            return m.mean, m.scatter

        mean, scatter, scale = _scaled_moments(
            at, nonfinite_input, lambda: float(abs(source._X).max().compute()))
        values, vectors, total = _from_scatter(scatter, n, k)
        self._set_fitted(values, vectors, total, mean, scale, n, d, k, "covariance_eigh")
        self.n_samples_seen_ = n
        if hasattr(self, "scatter_"):
            del self.scatter_
        return self

    def partial_fit(self, X, y=None):
        """Update the fit with one more batch; equal to a full fit on all batches seen.

        The exact scatter matrix is merged with Chan et al.'s pairwise update
        M₂ = M₂ᵃ + M₂ᵇ + δδᵀ nᵃnᵇ / n, δ = μᵇ − μᵃ, so no approximation accumulates (memory:
        one ``n_features × n_features`` matrix).
        """
        first = not hasattr(self, "scatter_")
        X, _ = self._check_X(X, reset=first)
        nb, d = X.shape
        mean_b, scatter_b = _moments(X, 1.0)
        if first:
            n, mean, scatter = nb, mean_b, scatter_b
        else:
            na = self.n_samples_seen_
            n = na + nb
            mean_a = torch.as_tensor(self.mean_, dtype=torch.float64, device=X.device)
            delta = mean_b - mean_a
            mean = mean_a + delta * (nb / n)
            scatter = (
                torch.as_tensor(self.scatter_, dtype=torch.float64, device=X.device)
                + scatter_b
                + torch.outer(delta, delta) * (na * nb / n)
            )
        if n < 2:
            raise ValueError(
                f"PCA needs at least 2 samples to estimate a variance; got {n} sample(s) so far."
            )
        k = self._check_params(n, d, "covariance_eigh")
        values, vectors, total = _from_scatter(scatter, n, k)
        self._set_fitted(values, vectors, total, mean, 1.0, n, d, k, "covariance_eigh")
        self.n_samples_seen_ = n
        self.scatter_ = to_numpy(scatter)
        return self

    def _set_fitted(self, values, vectors, total, mean_s, scale, n, d, k, solver):
        """Store attributes from descending eigenpairs of the scaled covariance.

        values : (m,) eigenvalues (m ≥ k), vectors : (d, m) columns; ``total`` is the trace of
        the scaled covariance.
        """
        values = torch.clamp(values, min=0.0)
        ratio = values / total if total > 0 else torch.zeros_like(values)
        if isinstance(k, float):
            cum = torch.cumsum(ratio, 0)
            k = int(torch.searchsorted(cum, torch.tensor([k], dtype=cum.dtype, device=cum.device), right=True)) + 1
            k = min(k, values.shape[0])
        # deterministic signs: the largest-magnitude entry of each component is positive
        V = to_numpy(vectors[:, :k]).T  # (k, d), float64
        signs = np.sign(V[np.arange(k), np.abs(V).argmax(axis=1)])
        V = np.ascontiguousarray(V * np.where(signs == 0, 1.0, signs)[:, None])
        rank = min(n, d)
        kept = float(values[:k].sum())
        noise = max(total - kept, 0.0) / (rank - k) if k < rank else 0.0

        with np.errstate(over="ignore", under="ignore"):  # checked just below
            ev = to_numpy(values[:k]) / scale / scale
            noise_u = float(np.float64(noise) / scale / scale)
        if not (np.all(np.isfinite(ev)) and np.isfinite(noise_u)) or (
            np.any((ev == 0) & (to_numpy(values[:k]) > 0))
        ):
            raise ValueError(
                "the variances of X are outside the float64 range (data of magnitude about "
                f"{1 / scale:.1e}); rescale X, e.g. with sklearn.preprocessing.StandardScaler "
                "or by dividing by its largest absolute value."
            )
        self.components_ = V
        self.explained_variance_ = ev
        self.explained_variance_ratio_ = to_numpy(ratio[:k])
        self.singular_values_ = np.sqrt(ev) * np.sqrt(n - 1)  # no overflow near the float64 limit
        self.mean_ = to_numpy(mean_s) / scale
        self.noise_variance_ = float(noise_u)
        self.n_components_ = int(k)
        self.n_samples_ = int(n)
        self.fit_svd_solver_ = solver

    @property
    def _n_features_out(self):
        return self.n_components_

    # ------------------------------------------------------------------ latent maps
    def transform(self, X):
        """Project ``X`` onto the principal axes: z = V(x − μ), divided by √λ if ``whiten``.

        Returns an array of shape (n_samples, n_components_) in ``X``'s type, device and
        float dtype.
        """
        self._check_fitted()
        X, kind = self._check_X(X, reset=False)
        Z = (X - self._fitted("mean_", X)) @ self._fitted("components_", X).T
        if self.whiten:
            Z = Z / self._whiten_scale(Z)
        return self._out(Z, kind)

    def inverse_transform(self, Z):
        """Map latent codes back to data space: x̂ = μ + Vᵀ z (× √λ if ``whiten``)."""
        self._check_fitted()
        Z, kind = check_array_like(
            Z, device=self._device(), n_features=self.n_components_, name="Z",
            owner=type(self).__name__,
        )
        if self.whiten:
            Z = Z * self._whiten_scale(Z)
        X = Z @ self._fitted("components_", Z) + self._fitted("mean_", Z)
        return self._out(X, kind)

    def _whiten_scale(self, like):
        ev = self._fitted("explained_variance_", like)
        floor = float(ev.max()) * torch.finfo(like.dtype).eps if ev.numel() else 0.0
        # zero-variance directions project to 0; dividing by a floor keeps them 0, not NaN
        return torch.sqrt(torch.clamp(ev, min=floor if floor > 0 else 1.0))

    # ------------------------------------------------------------------ PPCA
    def _ppca(self, like):
        """PPCA pieces as tensors: (V (k,d), λ (k,), σ²) with λ ≥ σ² > 0."""
        V = self._fitted("components_", like)
        ev = self._fitted("explained_variance_", like)
        total = float(np.sum(self.explained_variance_)) + self.noise_variance_ * max(
            self.n_features_in_ - self.n_components_, 0
        )
        # a degenerate model (σ² = 0: exactly low-rank or constant data) gets a tiny floor
        # so the density stays finite; it does not affect any non-degenerate fit
        floor = 1e-12 * (total / self.n_features_in_) if total > 0 else 1e-300
        sigma2 = max(self.noise_variance_, floor)
        lam = torch.clamp(ev, min=sigma2)
        return V, lam, sigma2

    def score_samples(self, X):
        """PPCA log-likelihood of each sample (Tipping & Bishop 1999), shape (n_samples,).

        log p(x) = −½ [d log 2π + log|C| + (x−μ)ᵀ C⁻¹ (x−μ)], C = Vᵀ(Λ − σ²I)V + σ²I, with
        log|C| = Σ log λᵢ + (d − k) log σ² and the quadratic form split into the retained
        subspace (Σ zᵢ²/λᵢ) and the residual (‖x − μ − Vᵀz‖² / σ²).
        """
        self._check_fitted()
        X, kind = self._check_X(X, reset=False)
        X64 = X.to(torch.float64)
        V, lam, sigma2 = self._ppca(X64)
        Xc = X64 - self._fitted("mean_", X64)
        Z = Xc @ V.T  # (n, k)
        d, k = X.shape[1], V.shape[0]
        quad = (Z * Z / lam).sum(1)
        logdet = float(torch.log(lam).sum())
        if k < d:
            R = Xc - Z @ V  # residual outside the principal subspace
            quad = quad + (R * R).sum(1) / sigma2
            logdet += (d - k) * np.log(sigma2)
        ll = -0.5 * (d * np.log(2 * np.pi) + logdet + quad)
        return self._out(ll, kind)

    def get_covariance(self):
        """PPCA model covariance C = Vᵀ diag(λ − σ²) V + σ² I, shape (n_features, n_features)."""
        self._check_fitted()
        V = torch.as_tensor(self.components_, dtype=torch.float64)
        ev = torch.as_tensor(self.explained_variance_, dtype=torch.float64)
        s2 = self.noise_variance_
        C = (V.T * torch.clamp(ev - s2, min=0.0)) @ V
        C += s2 * torch.eye(V.shape[1], dtype=torch.float64)
        return to_numpy(C)

    def get_precision(self):
        """Inverse of :meth:`get_covariance` by the matrix inversion lemma (no explicit inverse)."""
        self._check_fitted()
        like = torch.zeros((), dtype=torch.float64)
        V, lam, sigma2 = self._ppca(like)
        d = V.shape[1]
        P = torch.eye(d, dtype=torch.float64) / sigma2 - (V.T * (1 / sigma2 - 1 / lam)) @ V
        return to_numpy(P)

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` from the PPCA model: x = μ + Vᵀ (λ − σ²)^½ z + σ ε.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), float64
        """
        self._check_fitted()
        n_samples = check_int("n_samples", n_samples, low=1)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        d, k = self.n_features_in_, self.n_components_
        z = rng.standard_normal((n_samples, k))
        eps = rng.standard_normal((n_samples, d))
        scale = np.sqrt(np.clip(self.explained_variance_ - self.noise_variance_, 0, None))
        return self.mean_ + (z * scale) @ self.components_ + np.sqrt(self.noise_variance_) * eps

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


# ---------------------------------------------------------------------- Dask blocks
class _Moments:
    """Count, mean and scatter of a block of rows; ``+`` merges two blocks exactly (Chan et
    al.: M₂ = M₂ᵃ + M₂ᵇ + δδᵀ nᵃnᵇ / n, δ = μᵇ − μᵃ)."""

    def __init__(self, n: int, mean: torch.Tensor, scatter: torch.Tensor):
        self.n, self.mean, self.scatter = n, mean, scatter

    def __add__(self, other: "_Moments") -> "_Moments":
        n = self.n + other.n
        delta = other.mean - self.mean
        return _Moments(n, self.mean + delta * (other.n / n),
                        self.scatter + other.scatter + torch.outer(delta, delta) * (self.n * other.n / n))


class _BlockMoments:
    def __init__(self, scale: float):
        self.scale = scale

    def __call__(self, chunk) -> _Moments:
        mean, scatter = _moments(chunk.X, self.scale)
        return _Moments(chunk.X.shape[0], mean, scatter)


# ---------------------------------------------------------------------- kernels
def _all_finite(t: torch.Tensor) -> bool:
    # numpy on the CPU: a first torch op right after BLAS work waits for torch's thread pool
    return bool(np.isfinite(t.numpy()).all()) if t.device.type == "cpu" else bool(torch.isfinite(t).all())


def _scaled_moments(moments_at, check_input, amax):
    """(mean, scatter, scale) of the covariance route, rescaled only for extreme data.

    ``moments_at(scale)`` is one pass of sufficient statistics. Ordinary data need no
    rescaling, so the first pass is unscaled; a non-finite result is first blamed on the
    input (``check_input`` raises for NaN/inf), otherwise finite values overflowed, and
    moments outside (1e-150, 1e150) are taken again after an exact power-of-two rescaling by
    ``amax()``, the largest |x|.
    """
    scale = 1.0
    mean, scatter = moments_at(scale)
    finite = _all_finite(scatter) and _all_finite(mean)
    if not finite:
        check_input()
    peak = float(torch.diagonal(scatter).max()) if finite else float("inf")
    if not 1e-150 < peak < 1e150:
        a = amax()
        scale = 1.0 if 1e-100 < a < 1e100 else pow2_scale(a)
        mean, scatter = moments_at(scale)
    return mean, scatter, scale


def _centred(X: torch.Tensor, scale: float):
    """(scaled mean in float64 (d,), scaled and centred copy of X in its own precision)."""
    n = X.shape[0]
    if X.device.type == "cpu":  # numpy alone on the CPU (see _math on thread pools)
        a = X.numpy()
        if scale != 1.0:
            a = a * scale
        mean = a.sum(0, dtype=np.float64) / n
        return torch.from_numpy(mean), torch.from_numpy(a - mean.astype(a.dtype))
    mean = torch.sum(X * scale, 0, dtype=torch.float64) / n
    return mean, X * scale - mean.to(X.dtype)


def _moments(X: torch.Tensor, scale: float):
    """One pass of sufficient statistics -> (mean (d,), scatter Σ(x − μ)(x − μ)ᵀ (d, d)), float64.

    Data on the CPU take the shortest route when it is safe: BLAS ``syrk`` for XᵀX straight
    from the caller's array (float32 in row blocks, each block's product summed in float64)
    and ``gemv`` for Σx, then M₂ = XᵀX − n μμᵀ. That subtraction cancels digits in proportion
    to max_j (σ_j² + μ_j²) / σ_j²; where that factor exceeds what the precision affords (10⁴
    in float64, 4 in float32: a mean far from zero against its spread, e.g. a constant column
    of large values), the statistics are computed again with the shifted pass, which has no
    cancellation.
    """
    if scale == 1.0 and X.device.type == "cpu":
        raw = _moments_raw(X.numpy())
        if raw is not None:
            return raw
    return _moments_shifted(X, scale)


# largest (σ² + μ²) / σ² accepted in XᵀX − n μμᵀ: about 4 of float64's 16 digits lost; in
# float32, whose products carry 7, no more than a fraction of one
_CANCELLATION_LIMIT = {np.dtype(np.float64): 1e4, np.dtype(np.float32): 4.0}
_F32_BLOCK_ROWS = 4096  # float32 products are summed in float64 every this many rows


def _moments_raw(A: np.ndarray):
    """Uncentred moments of a 2-D array, or None when their cancellation is too large."""
    n, d = A.shape
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked by the caller
        if A.dtype == np.float64:
            S = gram_upper(A, transpose=True)
            s1 = col_sums(A)
        else:
            S, s1 = np.zeros((d, d)), np.zeros(d)
            prod = np.zeros((d, d), dtype=A.dtype, order="F")
            ones = np.ones(min(n, _F32_BLOCK_ROWS), dtype=A.dtype)
            for start in range(0, n, _F32_BLOCK_ROWS):
                block = A[start : start + _F32_BLOCK_ROWS]
                S += gram_upper(block, transpose=True, out=prod)
                s1 += col_sums(block, ones)
        S = symmetrize(S)
        mean = s1 / n
        if not (np.isfinite(S).all() and np.isfinite(mean).all()):
            return torch.from_numpy(mean), torch.from_numpy(S)  # the caller rescales or raises
        scatter = S - n * np.outer(mean, mean)
        centred, raw = np.diagonal(scatter), np.diagonal(S)
    # raw / centred second moment per column; an all-zero column is exact
    with np.errstate(divide="ignore", invalid="ignore"):
        worst = np.where(raw > 0, raw / np.where(centred > 0, centred, 0.0), 1.0).max()
    if not worst <= _CANCELLATION_LIMIT[A.dtype]:
        return None
    return torch.from_numpy(mean), torch.from_numpy(scatter)


def _moments_shifted(X: torch.Tensor, scale: float):
    """Shifted sufficient statistics in cache-sized chunks, without cancellation.

    Each chunk is centred on a fixed shift c (the first chunk's mean) in the input's precision,
    and Σ(x − c) and Σ(x − c)(x − c)ᵀ are summed in float64. The scatter about the true mean
    follows as M₂ = Σ(x − c)(x − c)ᵀ − n (μ − c)(μ − c)ᵀ, where μ − c is small. On the CPU
    the loop runs in numpy alone (its ``cᵀc`` is BLAS syrk, into reused buffers), which also
    avoids handing the cores back and forth between two thread pools at every chunk.
    """
    n, d = X.shape
    rows = min(n, max(256, 4 * d, 2**20 // (X.element_size() * d)))
    if X.device.type != "cpu":
        f64 = torch.float64
        shift = (X[:rows].to(f64).mean(0) * scale).to(X.dtype)
        S = torch.zeros((d, d), dtype=f64, device=X.device)
        s1 = torch.zeros(d, dtype=f64, device=X.device)
        for start in range(0, n, rows):
            c = X[start : start + rows] * scale - shift
            S += (c.T @ c).to(f64)
            s1 += torch.sum(c, 0, dtype=f64)
        delta = s1 / n  # μ − c
        return shift.to(f64) + delta, S - n * torch.outer(delta, delta)
    A = X.numpy()
    shift = (A[:rows].mean(0, dtype=np.float64) * scale).astype(A.dtype)
    buf = np.empty((rows, d), dtype=A.dtype)
    ones = np.ones(rows, dtype=A.dtype)
    wide = A.dtype == np.float64  # float64 chunks accumulate in place; float32 ones are added
    S = np.zeros((d, d), order="F")
    prod = S if wide else np.zeros((d, d), dtype=A.dtype, order="F")
    s1 = np.zeros(d)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked by the caller
        for start in range(0, n, rows):
            chunk = A[start : start + rows]
            m = chunk.shape[0]
            c = buf[:m]
            if scale != 1.0:
                np.multiply(chunk, scale, out=c)
                c -= shift
            else:
                np.subtract(chunk, shift, out=c)
            prod = gram_upper(c, transpose=True, out=prod, accumulate=wide)
            if not wide:
                S += prod
            s1 += col_sums(c, ones)  # centred values: the input precision suffices for μ − c
    S = symmetrize(prod if wide else S)
    delta = s1 / n
    mean, scatter = shift.astype(np.float64) + delta, S - n * np.outer(delta, delta)
    return torch.from_numpy(mean), torch.from_numpy(scatter)


def _from_scatter(scatter: torch.Tensor, n: int, k):
    C = scatter / (n - 1)
    if not _all_finite(C):
        raise ValueError(
            "the covariance of X overflows float64 (values too large); rescale X, e.g. with "
            "sklearn.preprocessing.StandardScaler or by dividing by its largest absolute value."
        )
    total = float(torch.diagonal(C).sum())
    values, vectors = eigh_desc(C, k if isinstance(k, int) else None)
    return values, vectors, total


def _svd(Xc: torch.Tensor, n: int):
    _, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    S = S.to(torch.float64)
    return S * S / (n - 1), Vh.T.to(torch.float64)


def _gram(Xc: torch.Tensor, n: int, k):
    """Eigenpairs of the covariance from the n×n Gram matrix Xc Xcᵀ (wide data).

    Xc Xcᵀ U = U Σ², so its eigenvectors are the left singular vectors U and the principal
    axes are V = Xcᵀ U Σ⁻¹. On the CPU, float32 data get a float32 Gram matrix and
    eigensolver (each eigenvalue to about 1e-7 of the largest), then one float64
    Rayleigh–Ritz step on those vectors (:func:`_rayleigh_ritz`), which brings the small
    eigenvalues to float64 accuracy (LFW faces: 1.3e-8 relative instead of 2.8e-5) except
    inside a cluster of nearly equal eigenvalues cut by k. On a GPU the route runs in float64.
    The total variance is the trace, summed in float64. Returns (values, vectors, total
    variance).
    """
    cpu = Xc.device.type == "cpu"
    if not cpu:
        # a GPU works in float64 here: its float32 products and eigensolver lose the small
        # eigenvalues (1e-2 relative on the LFW faces, against 3e-5 for the CPU's float32
        # route), and n ≤ a few thousand keeps float64 cheap
        Xc = Xc.to(torch.float64)
    # on the CPU only the upper triangle is formed, and only it is read
    G = torch.from_numpy(gram_upper(Xc.numpy(), transpose=False)) if cpu else tcrossprod(Xc)
    total = float(torch.sum(torch.diagonal(G), dtype=torch.float64)) / (n - 1)
    want = k if isinstance(k, int) else None
    if cpu and Xc.dtype == torch.float32 and want is not None:
        want = min(n, k + _RITZ_EXTRA)  # a few more for the float64 refinement below
    values, U = eigh_desc(G, want, upper_only=cpu)
    values = torch.clamp(values, min=0.0)
    # directions with (numerically) zero singular value carry no information in Xcᵀ U;
    # fall back to the SVD, which gives them an orthonormal completion
    m = values.shape[0] if not isinstance(k, int) else k
    cutoff = float(values[0]) * 16 * torch.finfo(Xc.dtype).eps if values.numel() else 0.0
    if not isinstance(k, int) or float(values[m - 1]) <= cutoff:
        return (*_svd(Xc, n), total)
    if cpu and Xc.dtype == torch.float32:
        return (*_rayleigh_ritz(Xc.numpy(), U.numpy(), k, n), total)
    s = torch.sqrt(values)
    if cpu:  # in the same BLAS as the steps before it (see _math)
        from scipy.linalg import blas

        XtU = torch.from_numpy(blas.dgemm(1.0, Xc.numpy().T, U.numpy()))
    else:
        XtU = Xc.T @ U.to(Xc.dtype)
    V = XtU.to(torch.float64) / s.to(torch.float64)  # (d, k)
    return values.to(torch.float64) / (n - 1), V, total


_RITZ_EXTRA = 10  # float32 eigenvectors beyond k that the float64 refinement sees


def _rayleigh_ritz(Xc: np.ndarray, U32: np.ndarray, k: int, n: int):
    """Float64 eigenpairs of the covariance from float32 Gram eigenvectors (one Rayleigh–Ritz
    step): Q holds the float32 eigenvectors, B = Xcᵀ Q, BᵀB = Qᵀ (Xc Xcᵀ) Q and QᵀQ are formed
    in float64 and the small generalised problem is solved exactly; W is then S-orthonormal,
    so the sample-space vectors Q W are orthonormal and V = B W θ^(-1/2). The Ritz values' error is of the order of the square of the
    float32 vectors' angles, so the small eigenvalues become as accurate as float64 allows
    where float32 alone kept only about 1e-7 of the largest one.
    """
    from scipy.linalg import blas, eigh

    Q = U32.astype(np.float64)  # (n, m): orthonormal to float32 rounding only
    B = blas.dgemm(1.0, Xc.astype(np.float64).T, Q)  # (d, m) = Xcᵀ Q, exact products of floats
    M = symmetrize(blas.dsyrk(1.0, B, trans=1))  # Bᵀ B = Qᵀ G Q (m, m)
    S = symmetrize(blas.dsyrk(1.0, Q, trans=1))  # Qᵀ Q, the basis' own inner products
    # M w = θ S w: the Ritz pairs of the subspace without orthonormalising Q first
    theta, W = eigh(M, S, lower=False, check_finite=False)
    theta, W = np.clip(theta[::-1][:k], 0.0, None), W[:, ::-1][:, :k]
    V = blas.dgemm(1.0, B, W) / np.sqrt(np.where(theta > 0, theta, 1.0))  # (d, k) axes
    return torch.from_numpy(theta / (n - 1)), torch.from_numpy(np.ascontiguousarray(V))


def _randomized(Xc, n, k, iterated_power, n_oversamples, rng):
    """Randomized range finder (Halko et al. 2011, Alg. 4.4) with QR-normalised power steps."""
    small = min(Xc.shape)
    q = (7 if k < 0.1 * small else 4) if iterated_power == "auto" else int(iterated_power)
    ell = min(k + n_oversamples, small)
    gen = torch.Generator(device=Xc.device)
    gen.manual_seed(int(rng.randint(0, 2**31 - 1)))
    Omega = torch.randn((Xc.shape[1], ell), generator=gen, dtype=Xc.dtype, device=Xc.device)
    Q, _ = torch.linalg.qr(Xc @ Omega)
    for _ in range(q):
        Q, _ = torch.linalg.qr(Xc.T @ Q)
        Q, _ = torch.linalg.qr(Xc @ Q)
    B = Q.T @ Xc  # (ell, d)
    _, S, Vh = torch.linalg.svd(B, full_matrices=False)
    S = S.to(torch.float64)
    return (S * S / (n - 1))[:k], Vh[:k].T.to(torch.float64)
