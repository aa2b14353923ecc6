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

from .._backend import ArrayLike, ArrayOrTensor, InputKind, RandomStateLike, SparseMatrix, to_numpy
from .._math import (
    abs_max,
    ldexp_exact,
    representable_log_density,
    row_exponents,
    rounding_floor,
    scaled_half_sq_norm,
    working_scale,
)
from .._memory import check_allocation
from .._validation import (
    check_array_like,
    check_choice,
    check_finite_data,
    check_float,
    check_int,
    check_missing,
    check_n_samples_to_draw,
    check_random_state,
    check_seed,
    check_sparse_data,
    is_sparse,
)
from ..base import LatentModel
from ..data import ChunkedSource, DaskSource, Prepare, is_dask_array
from ._missing import (
    fit_em,
    marginal_log_density,
    posterior_mean,
    scaled_marginal_parts,
    weights_from_fit,
)
from ._moments import BlockMoments, Moments, centred, moments, scaled_moments
from ._solvers import (
    arpack,
    choose_solver,
    choose_sparse_solver,
    from_scatter,
    gram,
    minka_dimension,
    randomized,
    svd,
)
from ._sparse import CentredOperator, column_scatter, sparse_mean, sparse_scatter

__all__ = ["PCA"]

_SOLVERS = ("auto", "full", "covariance_eigh", "gram", "arpack", "randomized")
_EXACT = ("full", "covariance_eigh", "gram")  # routes that see the whole spectrum
_SPARSE_SOLVERS = ("arpack", "covariance_eigh", "randomized")  # and "auto"
_NORMALIZERS = ("auto", "QR", "LU", "none")
_EM_ATTRIBUTES = ("lower_bounds_", "n_iter_", "converged_")  # only fits with missing entries
_MEMMAP_ROWS = 1 << 14  # rows of a memory-mapped array read at a time


def _chunk_nonfinite(chunk) -> float | None:
    """NaN or infinity when the chunk holds one (NaN first), else None."""
    if bool(torch.isnan(chunk.X).any()):
        return float("nan")
    return None if bool(torch.isfinite(chunk.X).all()) else float("inf")


def _chunk_abs_max(chunk) -> float:
    return abs_max(chunk.X)


def _check_memory(solver: str, n: int, d: int, itemsize: int, device) -> None:
    """Up-front ``ValueError`` when the route's largest arrays exceed the available memory.

    The copies counted are those the route makes: the Gram matrix, its eigensolver's copy
    and workspace (3 n²); the centred copy, the SVD's copy of it and its factor U (3 n·d); the
    centred copy and the range basis (2 n·d); the float64 scatter, its symmetric copy, the
    covariance and the eigensolver's copy (4 d²).
    """
    if solver == "gram":
        need, what = 3.0 * n * n * itemsize, f"its {n} x {n} Gram matrix"
        alt = "use svd_solver='covariance_eigh' (a features x features matrix) or 'randomized'"
    elif solver == "full":
        need, what = 3.0 * n * d * itemsize, "the copies of the full SVD"
        alt = "use svd_solver='randomized' or 'covariance_eigh', or fit in chunks (partial_fit)"
    elif solver in ("randomized", "arpack"):
        need, what = 2.0 * n * d * itemsize, "a centred copy of X"
        alt = "use svd_solver='covariance_eigh', or fit in chunks (partial_fit)"
    else:
        need, what = 4.0 * d * d * 8, f"its {d} x {d} covariance"
        alt = "use svd_solver='randomized' or 'gram', or reduce the number of features"
    check_allocation(need, f"PCA(svd_solver={solver!r}) on {n} x {d} data: {what}", alt,
                     device=device)


def _check_sparse_memory(solver: str, n: int, d: int, nnz: int, k: int, itemsize: int) -> None:
    """Up-front ``ValueError`` for the sparse routes, which never allocate n × d.

    Counted: the covariance route's float64 copy of the stored values, the sparse product
    XᵀX (at most d² stored entries of 16 bytes) and four dense d × d float64 matrices; the
    products-only routes' transposed copy of X (nnz values and indices) and their n × l and
    d × l blocks (l = ARPACK's Lanczos basis max(2k + 1, 20), or k + oversampling for the
    randomized finder, a few of each).
    """
    if solver == "covariance_eigh":
        need = 12.0 * nnz + 16.0 * d * d + 4.0 * d * d * 8
        what, alt = f"its {d} x {d} covariance", "use svd_solver='arpack' or 'randomized'"
    else:
        ell = max(2 * k + 1, 20) if solver == "arpack" else k + 10
        need = (itemsize + 4.0) * nnz + 4.0 * (n + d) * ell * 8
        what, alt = "its Krylov or range basis", "reduce n_components"
    check_allocation(need, f"PCA(svd_solver={solver!r}) on sparse {n} x {d} data: {what}",
                     alt, device=torch.device("cpu"))


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, LatentModel):
    """Principal component analysis with probabilistic-PCA likelihood and sampling.

    Parameters
    ----------
    n_components : int, float in (0, 1), "mle" or None, default=None
        Number of components to keep. An int in [0, min(n_samples, n_features)] (0 keeps
        none: the model is then all noise; ``arpack`` needs 1 ≤ k < min(n, d) and
        ``randomized`` 1 ≤ k). A float keeps the fewest components whose explained variance
        ratio exceeds it. ``"mle"`` picks the number by Minka's (2000) Bayesian evidence
        (needs ``n_samples >= n_features`` and an exact solver). None keeps
        ``min(n_samples, n_features)`` (``min(n_samples, n_features) - 1`` for ``arpack``).
    copy : bool, default=True
        Kept for compatibility with scikit-learn. latentspace never writes into ``X``:
        every route centres a copy or centres implicitly, whatever this value.
    whiten : bool, default=False
        Scale the projections to unit variance in ``transform`` (undone by ``inverse_transform``).
    svd_solver : {"auto", "full", "covariance_eigh", "gram", "arpack", "randomized"}, \
default="auto"
        Route to the eigenvectors (module docstring). ``auto`` picks ``covariance_eigh`` when
        ``n_samples >= n_features <= 2048``, ``gram`` when ``n_samples < n_features`` and
        ``n_samples <= 2048``, else ``randomized`` for ``n_components < 0.8 min(n, d)`` and
        ``full`` otherwise. The route taken is stored in ``fit_svd_solver_``. Sparse
        input (scipy.sparse) is taken by ``covariance_eigh``, ``arpack`` and
        ``randomized``, never densified; there ``auto`` picks ``covariance_eigh`` for
        ``n_features <= 2048``, else ``arpack`` for an integer ``n_components`` below
        ``min(n, d)``. ``arpack`` runs on the CPU.
    tol : float, default=0.0
        Relative accuracy of ARPACK's singular values (``svd_solver="arpack"``); 0 means
        machine precision.
    iterated_power : int or "auto", default="auto"
        Power iterations of the randomized solver: 7 when ``n_components < 0.1 min(n, d)``, else 4.
    n_oversamples : int, default=10
        Extra random directions of the randomized solver. Its documented accuracy: explained
        variances within 1e-4 relative and components within 1e-4 in cosine of the exact
        solvers for components separated by an eigenvalue gap (measured in the tests).
    power_iteration_normalizer : {"auto", "QR", "LU", "none"}, default="auto"
        Normalisation between the randomized solver's power iterations: ``"QR"`` (an
        orthonormal basis each step; what ``"auto"`` means), ``"LU"`` (cheaper, nearly as
        accurate) or ``"none"`` (fastest, but few iterations only: plain powers lose the
        small components to rounding).
    random_state : int, RandomState or None, default=None
        Seeds the randomized solver and ARPACK's start vector, and is the default seed of
        ``sample``.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the computation runs; fitted attributes are numpy arrays either way. Sparse
        input is always computed on the CPU with scipy (its results are numpy arrays).
    missing : {"raise", "marginalize"}, default="raise"
        What NaN means. ``"raise"``: an error, as for any non-finite value. ``"marginalize"``:
        a missing entry. Data with missing entries are then fitted as probabilistic PCA by
        EM on the observed coordinates (:mod:`latentspace.decomposition._missing`; this route
        needs an integer ``n_components`` below ``min(n_samples, n_features)`` and an
        in-memory array, ignores ``svd_solver`` and sets ``fit_svd_solver_="em"``);
        ``score_samples`` marginalises the missing coordinates, ``transform`` gives the
        posterior mean of the projection and :meth:`impute` the conditional mean of the
        missing entries. Complete data take the exact solvers, exactly as with ``"raise"``.

    Attributes
    ----------
    components_ : ndarray of shape (``n_components_``, n_features)
        Principal axes, rows of unit norm, sorted by decreasing variance; each row's
        largest-magnitude entry is positive (a deterministic sign).
    explained_variance_ : ndarray of shape (``n_components_``,)
        Eigenvalues of the covariance (ddof=1).
    explained_variance_ratio_ : ndarray of shape (``n_components_``,)
        Share of the total variance (0 for constant data, never NaN). Directions whose
        variance is at the level of the rounding of centring and of the eigensolver
        (:func:`latentspace._math.rounding_floor`) count as exactly 0.
    singular_values_ : ndarray of shape (``n_components_``,)
        Singular values of the centred data. After an EM fit (missing entries) they are
        √((n − 1) λᵢ): those of n complete centred rows whose covariance is the fitted one.
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : float
        PPCA's σ²: the mean of the ``min(n, d) − k`` discarded eigenvalues (0 when none are).
        After an EM fit: the maximum-likelihood σ², and ``explained_variance_`` are the
        eigenvalues λᵢ = sᵢ² + σ² of the fitted covariance W Wᵀ + σ² I (sᵢ the singular
        values of W), ``explained_variance_ratio_`` their share of its trace.
    n_components_ : int
    n_samples_ : int
    fit_svd_solver_ : str
    n_samples_seen_ : int
        Samples seen so far by ``fit`` or ``partial_fit``.
    scatter_ : ndarray of shape (n_features, n_features)
        Only after ``partial_fit``: Σ (x − μ)(x − μ)ᵀ over all samples seen, the exact
        sufficient statistic that makes incremental fitting equal to a full fit.
    lower_bounds_ : ndarray of shape (``n_iter_``,)
        Only after an EM fit (missing entries): the per-sample observed-data log-likelihood,
        mean over rows of log N(x_o | μ_o, C_oo), after each EM iteration; it never
        decreases (up to rounding) and its last entry is ``score`` on the training data.
    n_iter_ : int
        Only after an EM fit: the number of EM iterations.
    converged_ : bool
        Only after an EM fit: whether the log-likelihood changed by less than 1e-7 per
        observed entry (per row) before 1000 iterations (else a ``ConvergenceWarning``).

    Notes
    -----
    All accumulation runs in float64; float32 input is projected in float32. Data are scaled
    internally by a power of two, so values near 1e±300 give the same components as ordinary
    data; when their variances cannot be represented in float64 a ``ValueError`` asks to rescale.
    ``copy=False`` never lets a route overwrite ``X`` (scikit-learn may centre it in place).

    Examples
    --------
    >>> import numpy as np
    >>> from latentspace import PCA
    >>> X = np.array([[-1.0, -1.0], [-2.0, -1.0], [-3.0, -2.0], [1.0, 1.0], [2.0, 1.0],
    ...               [3.0, 2.0]])
    >>> pca = PCA(n_components=2).fit(X)
    >>> pca.explained_variance_ratio_.round(4)
    array([0.9924, 0.0076])
    >>> pca.transform(X).shape
    (6, 2)
    >>> import scipy.sparse as sp
    >>> PCA(n_components=1, svd_solver="arpack", random_state=0).fit(sp.csr_matrix(X)).n_components_
    1
    """

    # fitted attributes a saved file may hold: kind, symbolic shape (see latentspace._schema)
    _fitted_schema = {
        "components_": ("float", ("n_components_", "n_features_in_")),
        "explained_variance_": ("float", ("n_components_",)),
        "explained_variance_ratio_": ("float", ("n_components_",)),
        "singular_values_": ("float", ("n_components_",)),
        "mean_": ("float", ("n_features_in_",)),
        "scatter_": ("float", ("n_features_in_", "n_features_in_"), "optional"),
        "noise_variance_": ("float", None), "n_components_": ("int", None),
        "n_samples_": ("int", None), "n_samples_seen_": ("int", None),
        "fit_svd_solver_": ("str", None),
        "lower_bounds_": ("float", ("*",), "optional"),
        "n_iter_": ("int", None, "optional"), "converged_": ("bool", None, "optional"),
    }

    def __init__(
        self,
        n_components: int | float | str | None = None,
        *,
        copy: bool = True,
        whiten: bool = False,
        svd_solver: str = "auto",
        tol: float = 0.0,
        iterated_power: int | str = "auto",
        n_oversamples: int = 10,
        power_iteration_normalizer: str = "auto",
        random_state: RandomStateLike = None,
        device: str = "cpu",
        missing: str = "raise",
    ) -> None:
        self.n_components = n_components
        self.copy = copy
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.tol = tol
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.random_state = random_state
        self.device = device
        self.missing = missing

    # ------------------------------------------------------------------ parameters
    def _check_params(self, n: int, d: int, solver: str | None):
        """Check every hyperparameter; return the number of components for ``solver``.

        ``solver`` is the route the fit takes (``"auto"`` where it is not resolved yet);
        the result is an int, a float share of the variance or ``"mle"``.
        """
        check_missing(self.missing)
        check_choice("svd_solver", self.svd_solver, _SOLVERS)
        for name in ("whiten", "copy"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        check_float("tol", self.tol, low=0.0)
        if self.iterated_power != "auto":
            check_int("iterated_power", self.iterated_power, low=0)
        check_int("n_oversamples", self.n_oversamples, low=1)
        check_choice("power_iteration_normalizer", self.power_iteration_normalizer, _NORMALIZERS)
        check_seed("random_state", self.random_state)
        k = self.n_components
        limit = min(n, d)
        shape = f"(n_samples={n}, n_features={d})"
        if k is None:
            return limit - 1 if solver == "arpack" else limit
        if isinstance(k, str) and k == "mle":
            if solver in ("arpack", "randomized"):
                raise ValueError(
                    f"n_components='mle' cannot be a string with svd_solver='{solver}': "
                    "Minka's choice needs the whole spectrum; use svd_solver='full' or "
                    "'covariance_eigh'."
                )
            if n < d:
                raise ValueError(
                    "n_components='mle' is only supported if n_samples >= n_features "
                    f"{shape}; pass an int or a float share of the variance instead."
                )
            return "mle"
        if isinstance(k, numbers.Integral) and not isinstance(k, (bool, np.bool_)):
            low = 1 if solver in ("arpack", "randomized") else 0
            if not low <= k <= limit:
                raise ValueError(
                    f"n_components={k} must be between {low} and min(n_samples, n_features)="
                    f"{limit} with svd_solver={solver!r} {shape}."
                )
            if solver == "arpack" and k == limit:
                raise ValueError(
                    f"n_components={k} must be strictly less than min(n_samples, n_features)="
                    f"{limit} with svd_solver='arpack' {shape}; use svd_solver='full' or "
                    "'covariance_eigh' for all components."
                )
            return int(k)
        if isinstance(k, numbers.Real) and not isinstance(k, (bool, np.bool_)) and 0 < k < 1:
            if solver in ("arpack", "randomized"):
                raise ValueError(
                    f"n_components={k} (a variance fraction) needs an exact solver; "
                    f"svd_solver={solver!r} takes an integer number of components."
                )
            return float(k)
        raise ValueError(
            f"n_components={k!r} is invalid: use an int in [0, {limit}], a float in (0, 1) "
            "for a share of the variance, 'mle', or None."
        )

    _choose_solver = staticmethod(choose_solver)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: ArrayLike | SparseMatrix, y: object = None) -> "PCA":
        """Fit the principal axes on ``X``.

        ``X`` may also be read in chunks: a Dask array (one task per block of rows, on
        whatever scheduler is active), a :class:`~latentspace.data.ChunkedSource`, or a
        ``np.memmap`` whose solver resolves to the covariance route; these are fitted by the
        covariance route, one pass of moments per chunk merged exactly (Chan et al.), so only
        one chunk is in memory at a time. A scipy.sparse matrix or array is never densified
        (``covariance_eigh``, ``arpack`` or ``randomized``; see :mod:`._sparse`).

        Parameters
        ----------
        X : array-like, tensor, DataFrame, scipy.sparse matrix, Dask array or chunked \
source of shape (n_samples, n_features)
            Training data.
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        self : PCA
            The fitted estimator.
        """
        missing = check_missing(self.missing)
        self.__dict__.pop("_fit_output", None)  # chunked and Dask fits: numpy out
        if is_sparse(X):
            return self._fit_sparse(X)
        if is_dask_array(X) or isinstance(X, ChunkedSource):
            return self._fit_source(X)
        if isinstance(X, np.memmap) and X.ndim == 2 and self._memmap_in_chunks(X):
            return self._fit_source(ChunkedSource.from_array(X, _MEMMAP_ROWS))
        if missing == "marginalize":
            # NaN kept as missing entries (infinity and rows with nothing observed refused);
            # complete data take the exact route below
            X, kind = self._check_X(X, reset=True)
            self._remember_fit_output(kind, X.dtype)
            if bool(torch.isnan(X).any()):
                return self._fit_em(X)
        else:
            # NaN and infinity are looked for in the first pass over the data, not in one of
            # its own
            X, kind = self._check_X(X, reset=True, finite=False)
            self._remember_fit_output(kind, X.dtype)
        n, d = X.shape
        if n < 2:
            check_finite_data(self, X)
            raise ValueError(
                f"PCA needs at least 2 samples to estimate a variance; got {n} sample(s)."
            )
        solver = check_choice("svd_solver", self.svd_solver, _SOLVERS)
        if solver == "auto":
            solver = self._choose_solver(n, d, self.n_components)
        k = self._check_params(n, d, solver)
        _check_memory(solver, n, d, X.element_size(), X.device)

        # exact power-of-two scaling keeps squares of huge/tiny data representable
        if solver == "covariance_eigh":
            mean_s, scatter, scale = scaled_moments(
                lambda sc: moments(X, sc), lambda: check_finite_data(self, X),
                lambda: abs_max(X), X.dtype,
            )
            values, vectors, total = from_scatter(scatter, n, k)
        else:
            amax = abs_max(X)
            if not np.isfinite(amax):
                check_finite_data(self, X)  # NaN or infinity: raises
            scale = working_scale(amax, X.dtype)
            # centred, scaled copy in the input's precision: float32 stays float32 here and
            # the sums that need it (mean, trace) are accumulated in float64
            mean_s, Xc = centred(X, scale)
            if solver == "gram":
                values, vectors, total = gram(Xc, n, k)
            else:
                total = float(torch.sum(Xc * Xc, dtype=torch.float64)) / (n - 1)
            if solver == "full":
                values, vectors = svd(Xc, n)
            elif solver == "randomized":
                values, vectors = randomized(
                    Xc, n, k, self.iterated_power, self.n_oversamples,
                    check_random_state(self.random_state), self.power_iteration_normalizer,
                )
            elif solver == "arpack":  # scipy on the CPU, whatever the device
                values, vectors = arpack(to_numpy(Xc), n, k, self.tol,
                                         check_random_state(self.random_state))
        self._set_fitted(values, vectors, total, mean_s, scale, n, d, k, solver, X.dtype)
        self.n_samples_seen_ = n
        self._drop("scatter_", *_EM_ATTRIBUTES)
        return self

    def _fit_sparse(self, X):
        """Fit on a scipy.sparse matrix without densifying it (see :mod:`._sparse`)."""
        solver = check_choice("svd_solver", self.svd_solver, _SOLVERS)
        if check_missing(self.missing) == "marginalize":
            raise TypeError(
                "PCA(missing='marginalize') takes dense input: a sparse matrix has no missing "
                "entries to marginalise (its implicit zeros are observed values). Fit sparse "
                "data with missing='raise', or pass a dense array with NaN for missing entries."
            )
        if solver not in _SPARSE_SOLVERS + ("auto",):
            raise TypeError(
                f'PCA accepts sparse input with the "arpack", "covariance_eigh" and '
                f'"randomized" solvers (and "auto"), while "{solver}" was passed: '
                f"{solver!r} needs the dense centred matrix. Choose one of those solvers, "
                "or pass X.toarray() if it fits in memory."
            )
        X = check_sparse_data(self, X, reset=True)
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        self._remember_fit_output(InputKind("numpy"), dtype)
        n, d = X.shape
        if n < 2:
            raise ValueError(
                f"PCA needs at least 2 samples to estimate a variance; got {n} sample(s)."
            )
        if solver == "auto":
            solver = choose_sparse_solver(n, d, self.n_components)
        k = self._check_params(n, d, solver)
        _check_sparse_memory(solver, n, d, X.nnz, k if isinstance(k, int) else min(n, d),
                             X.dtype.itemsize)
        # exact power-of-two scaling of the stored values for huge or tiny data
        scale = working_scale(float(np.abs(X.data).max()) if X.nnz else 0.0, dtype)
        if scale != 1.0:
            X = X * scale
        mean = sparse_mean(X)
        if solver == "covariance_eigh":
            values, vectors, total = from_scatter(torch.from_numpy(sparse_scatter(X, mean)), n, k)
        else:
            total = float(column_scatter(X, mean).sum()) / (n - 1)
            op = CentredOperator(X, mean)
            rng = check_random_state(self.random_state)
            if solver == "arpack":
                values, vectors = arpack(op.linear_operator(), n, k, self.tol, rng)
            else:
                values, vectors = randomized(
                    None, n, k, self.iterated_power, self.n_oversamples, rng,
                    self.power_iteration_normalizer, op=op,
                )
        self._set_fitted(values, vectors, total, torch.from_numpy(mean), scale, n, d, k,
                         solver, dtype)
        self.n_samples_seen_ = n
        self._drop("scatter_", *_EM_ATTRIBUTES)
        return self

    def _drop(self, *names):
        """Remove attributes of another kind of fit (a refit replaces every one)."""
        for name in names:
            if name in self.__dict__:
                delattr(self, name)

    def _fit_em(self, X):
        """Maximum-likelihood PPCA of ``X`` with NaN entries by EM (see :mod:`._missing`)."""
        n, d = X.shape
        if n < 2:
            raise ValueError(
                f"PCA needs at least 2 samples to estimate a variance; got {n} sample(s)."
            )
        solver = self.svd_solver if isinstance(self.svd_solver, str) else None
        self._check_params(n, d, solver)  # every hyperparameter is checked as on any fit
        k, limit = self.n_components, min(n, d) - 1
        if (not isinstance(k, numbers.Integral) or isinstance(k, (bool, np.bool_))
                or not 1 <= k <= limit):
            raise ValueError(
                f"n_components={k!r} with missing entries: PCA(missing='marginalize') fits "
                "probabilistic PCA by EM and needs an integer number of components in "
                f"[1, min(n_samples, n_features) - 1] = [1, {limit}] (n_samples={n}, "
                f"n_features={d}); a float share of the variance or None is only taken on "
                "complete data."
            )
        k = int(k)
        check_allocation(8.0 * (3 * n * d + d * (k + 1) ** 2),
                         f"PCA(missing='marginalize') on {n} x {d} data",
                         "reduce the number of features or of components", device=X.device)
        fit = fit_em(X, k)
        W, mu, sigma2 = fit.W, fit.mu, fit.sigma2
        U, S, _ = torch.linalg.svd(W, full_matrices=False)  # W = U S Rᵀ: C = U S² Uᵀ + σ² I
        ev = S * S + sigma2
        V = to_numpy(U).T  # (k, d), orthonormal rows sorted by decreasing variance
        signs = np.sign(V[np.arange(k), np.abs(V).argmax(axis=1)])
        V = np.ascontiguousarray(V * np.where(signs == 0, 1.0, signs)[:, None])
        total = float((S * S).sum()) + d * sigma2
        ev_np = to_numpy(ev)
        if not (np.all(np.isfinite(ev_np)) and np.isfinite(total) and np.all(
                np.isfinite(to_numpy(mu)))):
            raise ValueError(
                "the variances of X are outside the float64 range; rescale X, e.g. with "
                "sklearn.preprocessing.StandardScaler or by dividing by its largest absolute "
                "value."
            )
        self.components_ = V
        self.explained_variance_ = ev_np
        self.explained_variance_ratio_ = ev_np / total if total > 0 else np.zeros_like(ev_np)
        self.singular_values_ = np.sqrt(ev_np) * np.sqrt(n - 1)
        self.mean_ = to_numpy(mu)
        self.noise_variance_ = float(sigma2)
        self.n_components_ = k
        self.n_samples_ = int(n)
        self.fit_svd_solver_ = "em"
        self.n_samples_seen_ = int(n)
        self.lower_bounds_ = np.asarray(fit.lower_bounds[1:], dtype=np.float64)
        self.n_iter_ = int(fit.n_iter)
        self.converged_ = bool(fit.converged)
        self._drop("scatter_")
        return self

    def _memmap_in_chunks(self, X) -> bool:
        """A memory-mapped array is read in chunks when its fit takes the covariance route."""
        solver = self.svd_solver if isinstance(self.svd_solver, str) else None
        if solver == "auto" and X.shape[0] >= 2:
            solver = choose_solver(X.shape[0], X.shape[1], self.n_components)
        return solver == "covariance_eigh"

    def _fit_source(self, X):
        """The covariance route over a Dask array or a chunked source, one chunk at a time."""
        solver = self.svd_solver if isinstance(self.svd_solver, str) else None
        if solver not in ("auto", "covariance_eigh"):
            what = "a Dask array" if is_dask_array(X) else "chunked input"
            fix = "X.compute()" if is_dask_array(X) else "np.concatenate over the chunks"
            raise ValueError(
                f"svd_solver={self.svd_solver!r} needs the whole array in memory; {what} is "
                "fitted by the covariance route (svd_solver='auto' or 'covariance_eigh'), or "
                f"load it first ({fix})."
            )
        if is_dask_array(X):
            source = DaskSource(X, prepare=Prepare(self, finite=False),
                                prepare_first=lambda raw: self._check_X(raw, reset=True)[0])
        else:
            first = [True]

            def prepare(raw):  # the first chunk sets n_features_in_, the others are checked
                reset, first[0] = first[0], False
                return self._check_X(raw, reset=reset, finite=False)[0]

            source = X.with_prepare(prepare)
            source.first_chunk()
        n, d = source.n_samples, source.n_features
        if n < 2:
            raise ValueError(
                f"PCA needs at least 2 samples to estimate a variance; got {n} sample(s)."
            )
        k = self._check_params(n, d, "covariance_eigh")
        _check_memory("covariance_eigh", n, d, 8, source.device)

        def nonfinite_input():  # raises the usual error, naming NaN first
            bad = [v for v in source.map_chunks(_chunk_nonfinite) if v is not None]
            if self.missing == "marginalize" and any(np.isnan(v) for v in bad):
                raise ValueError(
                    "PCA(missing='marginalize') fits data with missing entries (NaN) from an "
                    "in-memory array only; chunked or Dask input is fitted by the exact "
                    "covariance route, which needs complete data. Load the data first "
                    "(X.compute() for a Dask array, np.concatenate over the chunks)."
                )
            if bad:
                check_finite_data(self, torch.tensor(sorted(bad, key=np.isinf)))

        def at(scale):
            m = source.map_reduce(BlockMoments(scale))
            return m.mean, m.scatter

        mean, scatter, scale = scaled_moments(
            at, nonfinite_input, lambda: max(source.map_chunks(_chunk_abs_max)), source.dtype)
        values, vectors, total = from_scatter(scatter, n, k)
        self._set_fitted(values, vectors, total, mean, scale, n, d, k, "covariance_eigh",
                         source.dtype)
        self.n_samples_seen_ = n
        self._drop("scatter_", *_EM_ATTRIBUTES)
        return self

    def partial_fit(self, X: ArrayLike | SparseMatrix, y: object = None) -> "PCA":
        """Update the fit with one more batch; equal to a full fit on all batches seen.

        The exact scatter matrix is merged with Chan et al.'s pairwise update
        M₂ = M₂ᵃ + M₂ᵇ + δδᵀ nᵃnᵇ / n, δ = μᵇ − μᵃ, so no approximation accumulates (memory:
        one ``n_features × n_features`` matrix). Sparse batches contribute their moments
        from the sparse product XᵀX, without densifying; dense and sparse batches mix.

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)
            One batch of complete rows.
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        self : PCA
            The estimator, refitted on every batch seen so far.
        """
        first = not hasattr(self, "scatter_")
        if is_sparse(X):  # the moments of a sparse block, from its sparse product XᵀX
            if check_missing(self.missing) == "marginalize":
                raise TypeError("PCA(missing='marginalize') takes dense input; fit sparse "
                                "data with missing='raise'.")
            X = check_sparse_data(self, X, reset=first)
            dtype = torch.float64 if X.dtype == np.float64 else torch.float32
            if first:
                self._remember_fit_output(InputKind("numpy"), dtype)
            mean = sparse_mean(X)
            seen = Moments(X.shape[0], torch.from_numpy(mean),
                           torch.from_numpy(sparse_scatter(X, mean)))
            return self._update_moments(seen, X.shape[1], dtype, torch.device("cpu"))
        X, kind = self._check_X(X, reset=first)
        if first:
            self._remember_fit_output(kind, X.dtype)
        if check_missing(self.missing) == "marginalize" and bool(torch.isnan(X).any()):
            raise ValueError(
                "partial_fit needs complete rows: its exact moments have no missing-value "
                "version. Fit data with missing entries (NaN) in one call, "
                "PCA(missing='marginalize').fit(X)."
            )
        return self._update_moments(Moments.of(X), X.shape[1], X.dtype, X.device)

    def _update_moments(self, seen, d, dtype, device):
        """Merge a batch's moments into those seen so far and refit from them."""
        if hasattr(self, "scatter_"):
            f64 = {"dtype": torch.float64, "device": device}
            seen = Moments(self.n_samples_seen_, torch.as_tensor(self.mean_, **f64),
                           torch.as_tensor(self.scatter_, **f64)) + seen
        n, mean, scatter = seen.n, seen.mean, seen.scatter
        if n < 2:
            raise ValueError(
                f"PCA needs at least 2 samples to estimate a variance; got {n} sample(s) so far."
            )
        k = self._check_params(n, d, "covariance_eigh")
        values, vectors, total = from_scatter(scatter, n, k)
        self._set_fitted(values, vectors, total, mean, 1.0, n, d, k, "covariance_eigh", dtype)
        self.n_samples_seen_ = n
        self.scatter_ = to_numpy(scatter)
        self._drop(*_EM_ATTRIBUTES)
        return self

    def _set_fitted(self, values, vectors, total, mean_s, scale, n, d, k, solver, dtype):
        """Store attributes from descending eigenpairs of the scaled covariance.

        values : (m,) eigenvalues (m ≥ k), vectors : (d, m) columns; ``total`` is the trace of
        the scaled covariance.
        """
        # numpy from here on: the spectrum is small, and a dozen torch calls on it cost more
        # than the covariance pass of a small fit
        values = np.maximum(to_numpy(values), 0.0)
        # directions of pure rounding noise have no variance (constant columns, identical rows)
        floor = rounding_floor(values, total, mean_s, d, dtype)
        values = np.where(values <= floor, 0.0, values).astype(values.dtype, copy=False)
        if total <= floor * min(n, d):
            total = 0.0
        ratio = values / total if total > 0 else np.zeros_like(values)
        if isinstance(k, str):  # "mle": Minka's choice from the whole spectrum, in X's units
            with np.errstate(over="ignore", under="ignore"):
                k = minka_dimension(values / scale / scale, n)
        elif isinstance(k, float):
            cum = np.cumsum(ratio)
            k = int(np.searchsorted(cum, k, side="right")) + 1
            k = min(k, values.shape[0])
        # deterministic signs: the largest-magnitude entry of each component is positive
        V = to_numpy(vectors[:, :k]).T  # (k, d), float64
        signs = np.sign(V[np.arange(k), np.abs(V).argmax(axis=1)])
        V = np.ascontiguousarray(V * np.where(signs == 0, 1.0, signs)[:, None])
        rank = min(n, d)
        kept = float(values[:k].sum())
        noise = max(total - kept, 0.0) / (rank - k) if k < rank else 0.0

        with np.errstate(over="ignore", under="ignore"):  # checked just below
            ev = values[:k] / scale / scale
            noise_u = float(np.float64(noise) / scale / scale)
        if not (np.all(np.isfinite(ev)) and np.isfinite(noise_u)) or (
            np.any((ev == 0) & (values[:k] > 0))
        ):
            raise ValueError(
                "the variances of X are outside the float64 range (data of magnitude about "
                f"{1 / scale:.1e}); rescale X, e.g. with sklearn.preprocessing.StandardScaler "
                "or by dividing by its largest absolute value."
            )
        self.components_ = V
        self.explained_variance_ = ev
        self.explained_variance_ratio_ = ratio[:k].copy()
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
    def transform(self, X: ArrayLike | SparseMatrix) -> ArrayOrTensor:
        """Project ``X`` onto the principal axes: z = V(x − μ), divided by √λ if ``whiten``.

        With ``missing="marginalize"``, a row with missing entries (NaN) gets the posterior
        mean of its projection given its observed entries, E[V(x − μ) | x_o] = V(x̂ − μ) with
        x̂ the row completed by :meth:`impute` (eq. (4) of :mod:`._missing`); a complete row
        gets exactly the ordinary projection. ``whiten`` divides by √λ in both cases.
        Sparse ``X`` is projected as X Vᵀ − μVᵀ, without densifying.

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray or tensor of shape (n_samples, ``n_components_``)
            In ``X``'s type, device and float dtype (a dense ndarray for sparse ``X``).
        """
        self._check_fitted()
        if is_sparse(X):
            return self._transform_sparse(X)
        X, kind = self._check_X(X, reset=False)
        if getattr(self, "missing", "raise") == "marginalize" and bool(torch.isnan(X).any()):
            X = self._completed(X)
        Z = (X - self._fitted("mean_", X)) @ self._fitted("components_", X).T
        if self.whiten:
            Z = Z / self._whiten_scale(Z)
        return self._out(Z, kind)

    def _transform_sparse(self, X) -> np.ndarray:
        """V(x − μ) of sparse rows as X Vᵀ − μVᵀ (dense (n, k) in X's float dtype)."""
        X = check_sparse_data(self, X, reset=False)
        V = self.components_.astype(X.dtype)
        Z = np.asarray(X @ V.T) - (self.mean_.astype(X.dtype) @ V.T)[None, :]
        if self.whiten:
            Z = Z / to_numpy(self._whiten_scale(torch.from_numpy(Z)))
        return np.ascontiguousarray(Z)

    def _dense_blocks(self, X):
        """Rows of a sparse ``X`` as dense tensors of at most about 2²⁰ entries each."""
        X = check_sparse_data(self, X, reset=False)
        rows = max(1, (1 << 20) // max(X.shape[1], 1))
        for start in range(0, X.shape[0], rows):
            yield torch.from_numpy(X[start : start + rows].toarray())

    def inverse_transform(self, Z: ArrayLike) -> ArrayOrTensor:
        """Map latent codes back to data space: x̂ = μ + Vᵀ z (× √λ if ``whiten``).

        Parameters
        ----------
        Z : array-like or tensor of shape (n_samples, ``n_components_``)

        Returns
        -------
        X : ndarray or tensor of shape (n_samples, n_features)
            Dense, in ``Z``'s type, device and float dtype.
        """
        self._check_fitted()
        Zt, kind = check_array_like(
            Z, device=self._device(), n_features=self.n_components_, name="Z",
            owner=type(self).__name__,
        )
        if self.whiten:
            Zt = Zt * self._whiten_scale(Zt)
        X = Zt @ self._fitted("components_", Zt) + self._fitted("mean_", Zt)
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

    def score_samples(self, X: ArrayLike | SparseMatrix) -> ArrayOrTensor:
        """PPCA log-likelihood of each sample (Tipping & Bishop 1999), shape (n_samples,).

        log p(x) = −½ [d log 2π + log|C| + (x−μ)ᵀ C⁻¹ (x−μ)], C = Vᵀ(Λ − σ²I)V + σ²I, with
        log|C| = Σ log λᵢ + (d − k) log σ² and the quadratic form split into the retained
        subspace (Σ zᵢ²/λᵢ) and the residual (‖x − μ − Vᵀz‖² / σ²). Rows so far from the
        model that their log-density is below the float64 range raise ``ValueError``
        (:func:`latentspace._math.representable_log_density`).

        With ``missing="marginalize"``, a row with missing entries (NaN) gets the marginal
        log-density of its observed entries, log N(x_o | μ_o, C_oo), C_oo = W_o W_oᵀ + σ² I
        with W = Vᵀ(Λ − σ²I)^½ (eqs. (1) and (3) of :mod:`._missing`). Sparse ``X`` is
        read in dense blocks of rows (about 2²⁰ entries each).

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray or tensor of shape (n_samples,)
            float64, in ``X``'s type and device (an ndarray for sparse ``X``).
        """
        self._check_fitted()
        if is_sparse(X):  # dense blocks of rows: the same arithmetic, bounded memory
            blocks = [self._log_density(B) for B in self._dense_blocks(X)]
            return to_numpy(torch.cat(blocks)) if blocks else np.zeros(0)
        X, kind = self._check_X(X, reset=False)
        if getattr(self, "missing", "raise") == "marginalize":
            holes = torch.isnan(X).any(1)
            if bool(holes.any()):
                ll = torch.empty(X.shape[0], dtype=torch.float64, device=X.device)
                if not bool(holes.all()):
                    ll[~holes] = self._log_density(X[~holes])
                ll[holes] = self._marginal_log_density(X[holes])
                return self._out(ll, kind)
        return self._out(self._log_density(X), kind)

    def _marginal_log_density(self, X):
        """(1) for rows with missing entries, far rows by the scaled route (as below)."""
        X64 = X.to(torch.float64)
        V, lam, sigma2 = self._ppca(X64)
        W = weights_from_fit(V, lam, sigma2)
        mean = self._fitted("mean_", X64)
        ll = marginal_log_density(X64, W, mean, sigma2)

        def far(rows):
            Xr = X64[rows]
            e = row_exponents(torch.cat([torch.nan_to_num(Xr), mean.expand_as(Xr)], 1))
            const, Y = scaled_marginal_parts(Xr, W, mean, sigma2, e)
            half, log2_norm = scaled_half_sq_norm(Y, e)
            return const - half, log2_norm

        return representable_log_density(ll, far, "PCA", X.dtype)

    def _log_density(self, X):
        """PPCA log-density of complete rows (float64 tensor)."""
        X64 = X.to(torch.float64)
        V, lam, sigma2 = self._ppca(X64)
        mean = self._fitted("mean_", X64)
        Xc = X64 - mean
        Z = Xc @ V.T  # (n, k)
        d, k = X.shape[1], V.shape[0]
        quad = (Z * Z / lam).sum(1)
        logdet = float(torch.log(lam).sum())
        if k < d:
            R = Xc - Z @ V  # residual outside the principal subspace
            quad = quad + (R * R).sum(1) / sigma2
            logdet += (d - k) * np.log(sigma2)
        const = -0.5 * (d * np.log(2 * np.pi) + logdet)
        ll = const - 0.5 * quad

        def far(rows):
            # the same quadratic form on (x − μ)·2^−e, e each row's exponent: no overflow
            Xr = X64[rows]
            e = row_exponents(torch.cat([Xr, mean.expand_as(Xr)], 1))
            U = ldexp_exact(Xr, -e[:, None]) - ldexp_exact(mean[None], -e[:, None])  # (m, d)
            Zr = U @ V.T
            Y = Zr / torch.sqrt(lam)
            if k < d:
                Y = torch.cat([Y, (U - Zr @ V) / np.sqrt(sigma2)], 1)  # (m, k + d)
            half, log2_norm = scaled_half_sq_norm(Y, e)
            return const - half, log2_norm

        return representable_log_density(ll, far, "PCA", X.dtype)

    def impute(self, X: ArrayLike) -> ArrayOrTensor:
        """``X`` with each missing entry (NaN) replaced by its conditional expectation.

        Under the fitted PPCA model, E[x_m | x_o] = μ_m + W_m E[z | x_o] with
        E[z | x_o] = M⁻¹ W_oᵀ (x_o − μ_o), M = W_oᵀ W_o + σ² I and W = Vᵀ(Λ − σ²I)^½
        (eqs. (2) and (4) of :mod:`._missing`), computed in float64. NaN marks a missing
        entry only with ``missing="marginalize"``; otherwise NaN is refused as in every
        method.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A row with no observed entry raises ``ValueError`` naming it.

        Returns
        -------
        X_imputed : array of shape (n_samples, n_features)
            In ``X``'s type, device and float dtype (a DataFrame gives an ndarray, as every
            transform does; :class:`latentspace.impute.ModelImputer` with
            ``set_output(transform="pandas")`` gives a DataFrame); observed entries are
            returned unchanged (bit for bit), and X without NaN comes back as a copy.
        """
        self._check_fitted()
        if getattr(self, "missing", "raise") == "marginalize":
            Xt, kind = self._check_X(X, reset=False)
        else:  # NaN is an error here, with the message that names missing='marginalize'
            Xt, kind = self._check_X(X, reset=False, finite=False)
            check_finite_data(self, Xt)
        Xt = self._completed(Xt) if bool(torch.isnan(Xt).any()) else Xt.clone()
        return self._out(Xt, kind)

    def _completed(self, X):
        """``X`` (tensor) with its NaN entries replaced by (4), in ``X``'s dtype."""
        nan = torch.isnan(X)
        rows = nan.any(1)
        Xr = X[rows]
        X64 = Xr.to(torch.float64)
        V, lam, sigma2 = self._ppca(X64)
        W = weights_from_fit(V, lam, sigma2)
        mean = self._fitted("mean_", X64)
        fill = (mean + posterior_mean(X64, W, mean, sigma2) @ W.T).to(X.dtype)
        hole = nan[rows]
        if not bool(torch.isfinite(fill[hole]).all()):
            raise ValueError(
                "the conditional means of the missing entries are outside the range of "
                f"{str(X.dtype).replace('torch.', '')}: X lies far beyond the scale of the "
                "fitted model; pass X in the units the model was fitted in (or as float64)."
            )
        out = X.clone()
        out[rows] = torch.where(hole, fill, Xr)
        return out

    def score(self, X: ArrayLike | SparseMatrix, y: object = None) -> float:
        """Mean PPCA log-likelihood of the rows of ``X`` (the mean of :meth:`score_samples`).

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        score : float
        """
        return super().score(X, y)

    def fit_transform(self, X: ArrayLike | SparseMatrix, y: object = None) -> ArrayOrTensor:
        """Fit on ``X`` and return its projection; equal to ``fit(X).transform(X)``.

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        Z : ndarray or tensor of shape (n_samples, ``n_components_``)
            As :meth:`transform` gives it (scikit-learn's randomized and ARPACK routes return
            U Σ here instead, which differs from its own ``transform`` by the solver's error).
        """
        return self.fit(X, y).transform(X)

    def get_covariance(self) -> np.ndarray:
        """PPCA model covariance C = Vᵀ diag(λ − σ²) V + σ² I.

        Returns
        -------
        cov : ndarray of shape (n_features, n_features)
        """
        self._check_fitted()
        V = torch.as_tensor(self.components_, dtype=torch.float64)
        ev = torch.as_tensor(self.explained_variance_, dtype=torch.float64)
        s2 = self.noise_variance_
        C = (V.T * torch.clamp(ev - s2, min=0.0)) @ V
        C += s2 * torch.eye(V.shape[1], dtype=torch.float64)
        return to_numpy(C)

    def get_precision(self) -> np.ndarray:
        """Inverse of :meth:`get_covariance` by the matrix inversion lemma (no explicit inverse).

        Returns
        -------
        precision : ndarray of shape (n_features, n_features)
        """
        self._check_fitted()
        like = torch.zeros((), dtype=torch.float64)
        V, lam, sigma2 = self._ppca(like)
        d = V.shape[1]
        P = torch.eye(d, dtype=torch.float64) / sigma2 - (V.T * (1 / sigma2 - 1 / lam)) @ V
        return to_numpy(P)

    def sample(self, n_samples: int = 1, random_state: RandomStateLike = None) -> ArrayOrTensor:
        """Draw ``n_samples`` from the PPCA model: x = μ + Vᵀ (λ − σ²)^½ z + σ ε.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState, Generator or None, default=None
            None uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray or tensor of shape (n_samples, n_features)
            In the container, device and float dtype of the data the model was fitted on
            (numpy float64 for a model loaded from a file)
        """
        self._check_fitted()
        d, k = self.n_features_in_, self.n_components_
        # z (k), eps (d), the projected draw (d) and the output (d) per row, float64
        n_samples = check_n_samples_to_draw(n_samples, 8 * (k + 3 * d), "PCA")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        z = rng.standard_normal((n_samples, k))
        eps = rng.standard_normal((n_samples, d))
        scale = np.sqrt(np.clip(self.explained_variance_ - self.noise_variance_, 0, None))
        return self._drawn_out(
            self.mean_ + (z * scale) @ self.components_ + np.sqrt(self.noise_variance_) * eps
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = getattr(self, "missing", "raise") == "marginalize"
        tags.input_tags.sparse = (getattr(self, "svd_solver", "auto") in _SPARSE_SOLVERS + ("auto",)
                                  and getattr(self, "missing", "raise") == "raise")
        return tags
