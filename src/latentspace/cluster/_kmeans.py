"""K-means as hard EM: Lloyd's algorithm on the shared EM engine, plus mini-batch updates.

K-means minimises the inertia J = Σ_n w_n ‖x_n − μ_{z_n}‖² over centres μ and labels z.
Lloyd's algorithm alternates the two exact partial minimisations, which are EM for a Gaussian
mixture with equal weights and a shared spherical variance σ² → 0 (responsibilities become
one-hot, Bishop 2006 §9.3.2):

- E-step (hard): z_n = argmin_k ‖x_n − μ_k‖², with ‖x − μ‖² = ‖x‖² − 2 xᵀμ + ‖μ‖² so that
  all distances of a block come from one matrix product;
- M-step: μ_k = Σ_{z_n=k} w_n x_n / Σ_{z_n=k} w_n (counts and sums are the additive
  statistics, accumulated in float64).

A cluster left empty by the E-step is moved onto the point farthest from its centre (the
statistics carry the K farthest points of the data). The final labels always come from an
E-step with the final centres, so ``labels_ == predict(X)``.

The expansion of ‖x − μ‖² cancels for data far from the origin, so every distance is taken
in a working frame (:class:`latentspace._math.Frame`): x·scale − offset, with the exact
power-of-two scale of extreme data and, for data whose mean is far against their spread, the
mean as the offset (a shift of the data changes no clustering). ``fit`` decides its frame
from the data's summary pass; queries (and ``fit``'s final labelling, so that
``labels_ == predict(X)``) use the frame of the centres and of the query's magnitude.

The kernels are in ``_kernels`` and the seeding in ``_seeding``; ``fit`` builds a frozen
engine model (:class:`_Lloyd`) in the working units and hands it to the EM engine. The Gaussian
mixture that K-means is the limit of is ``GaussianMixture.from_kmeans``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin

from .._backend import ArrayLike, SparseMatrix, input_kind, to_numpy
from .._math import Frame, abs_max, centring_offset, working_scale
from .._validation import (
    check_array_like,
    check_sparse_data,
    is_sparse,
    check_choice,
    check_finite_data,
    check_finite_result,
    check_float,
    check_int,
    check_random_state,
    check_seed,
    check_labels,
    check_param_array,
)
from ..base import LatentModel
from ..data import Chunk, InMemorySource, SourceInput, check_sample_weight, split_rows
from ..em import framed, run_em, summarize_source, working_frame
from ..exceptions import ConvergenceWarning
from . import _elkan, _lloyd
from ._kernels import (
    Centers,
    KMeansStats,
    block_rows,
    chunk_rows,
    farthest,
    kmeans_stats,
    label_chunk,
    refine_small,
    relocate_empty,
    sq_distances,
)
from ._elkan import ElkanState
from ._seeding import kmeans_plusplus, random_rows
from ._sparse import SparseSource, row_sq_norms, sparse_labels, sq_distances as sparse_sq_distances

__all__ = ["KMeans", "kmeans_plusplus"]


@dataclass(frozen=True)
class _Lloyd:
    """The engine model of one K-means fit, in working units (see :mod:`latentspace.em`).

    Its hooks read only these fields and their arguments. ``source`` is the fit's (scaled)
    data, which the M-step reads again in the rare iteration that leaves a cluster empty.
    """

    n_clusters: int
    rows: int  # rows per block of the kernels
    init: str  # "k-means++", "random", "array" or "callable"
    init_centers: torch.Tensor | None  # (K, D) float64, working units, for init="array"
    tol: float  # on Σ_k ‖Δμ_k‖², in working units
    sum_x_sq: float  # Σ w ‖x‖², working units
    source: Any
    # init="callable": a function of the generator giving (K, D) float64 centres, working units
    init_call: Callable[[Any], torch.Tensor] | None = None
    elkan: ElkanState | None = None  # algorithm="elkan": the bounds of this fit's rows

    def _init_params(self, source, rng) -> Centers:
        K = self.n_clusters
        if self.init == "array":
            assert self.init_centers is not None
            centers = self.init_centers
        elif self.init == "callable":
            assert self.init_call is not None
            centers = self.init_call(rng)
        elif self.init == "random":
            centers = source.take(random_rows(source, K, rng)).to(torch.float64)
        else:
            centers, _ = kmeans_plusplus(source, K, rng)
        return Centers.of(centers, source.dtype)

    def _e_step_stats(self, chunk, P: Centers) -> KMeansStats:
        if self.elkan is not None and _elkan.available and isinstance(chunk.X, torch.Tensor) \
                and chunk.X.device.type == "cpu":
            counts, sums = self.elkan.stats(chunk.X, P.centers, chunk.w, chunk.offset,
                                            torch.get_num_threads())
            c = torch.from_numpy(counts)
            return KMeansStats(n=float(c.sum()), loglik=0.0, counts=c, sums=torch.from_numpy(sums))
        return kmeans_stats(chunk, P, self.rows)

    def _m_step(self, stats: KMeansStats, P: Centers) -> Centers:
        counts, sums = stats.counts, stats.sums
        if counts.device.type == "cpu":  # numpy: the per-iteration work of small fits
            c = counts.numpy()
            if bool((c > 0).all()):
                return Centers.of(torch.from_numpy(sums.numpy() / c[:, None]), P.work.dtype)
        if bool((counts <= 0).any()):
            # rare: one more pass to find the points that the current centres explain worst
            far = self.source.map_reduce(lambda c: farthest(c, P, self.rows))
            counts, sums, _ = relocate_empty(counts, sums, far)
        centers = P.centers.clone()
        full = counts > 0
        centers[full] = sums[full] / counts[full, None]
        return Centers.of(centers, P.work.dtype)

    def _lower_bound(self, stats: KMeansStats, P: Centers) -> float:
        """Minus the inertia of the labels in ``stats`` under the centres ``P``.

        Σ_n w‖x_n − c_z‖² = Σ w‖x‖² + Σ_k (N_k‖c_k‖² − 2 c_kᵀS_k), with S_k the weighted sum
        of cluster k's rows: no second pass over the rows is needed.
        """
        C = P.centers
        if C.device.type == "cpu":
            Cn, S = C.numpy(), stats.sums.numpy()
            part = float(stats.counts.numpy() @ np.einsum("kd,kd->k", Cn, Cn)
                         - 2.0 * np.vdot(Cn, S))
        else:
            part = float((stats.counts * (C * C).sum(1)).sum() - 2.0 * (C * stats.sums).sum())
        return -(part + self.sum_x_sq)

    def _em_converged(self, lower_bounds, old: Centers, new: Centers, tol) -> bool:
        if new.centers.device.type == "cpu":
            diff = new.centers.numpy() - old.centers.numpy()
            return float(np.vdot(diff, diff)) <= self.tol
        shift = float(((new.centers - old.centers) ** 2).sum())
        return shift <= self.tol


def _inertia(d2: torch.Tensor, w: torch.Tensor | None) -> float:
    """Σ w d² as a float; ``ValueError`` when it overflows float64 (data far too large)."""
    inertia = float(d2.sum() if w is None else w.to(d2.dtype) @ d2)
    if not math.isfinite(inertia):
        raise ValueError(
            "the inertia overflows float64 at the scale of X; rescale X (e.g. divide it "
            "by its largest absolute value) before clustering."
        )
    return inertia


class KMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, SourceInput, LatentModel):
    """K-means clustering (Lloyd's or Elkan's algorithm as hard EM), with mini-batch updates.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K.
    init : {"k-means++", "random"}, callable or array of shape (n_clusters, n_features), \
default="k-means++"
        ``k-means++``: greedy k-means++ seeding; ``random``: K distinct rows at random; a
        callable ``init(X, n_clusters, random_state)`` returning an array of shape
        (n_clusters, n_features) (called once per initialisation with the validated X, in
        its own units, and the fit's ``numpy.random.RandomState``); an array: these initial
        centres (then only one initialisation is run).
    n_init : int or "auto", default="auto"
        Number of initialisations; the one with the lowest final inertia is kept. ``auto``
        is 1 for ``k-means++``, callable and array inits, 10 for ``random``. An explicit
        value other than 1 with an array init warns (``RuntimeWarning``) and runs once.
    max_iter : int, default=300
        Maximum number of iterations per run; 0 only initialises (labels and inertia of the
        initial centres).
    tol : float, default=1e-4
        Convergence when the squared centre movement Σ_k ‖Δμ_k‖² falls to
        ``tol × mean feature variance`` (scikit-learn's rule); 0 runs until the labels no
        longer change or ``max_iter``.
    verbose : int, default=0
    random_state : int, RandomState or None, default=None
        Seeds the initialisation (and mini-batch initialisation in ``partial_fit``).
    copy_x : bool, default=True
        Accepted for compatibility. X is never modified, whatever its value: the working
        frame (scaling, centring) is applied to copies of blocks, never to X in place.
    algorithm : {"lloyd", "elkan"}, default="lloyd"
        ``lloyd``: every iteration computes all N × K distances (one matrix product per
        block). ``elkan``: the same iterations with Elkan's triangle-inequality bounds, which
        skip most distances on well separated clusters, at the cost of N × K float64 bounds
        in memory; on sparse input, on a GPU or without numba Lloyd's step is used (same
        results).
    device : {"cpu", "cuda", "auto"}, default="cpu"

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
        Label of each training row, equal to ``predict(X)``.
    inertia_ : float
        Σ w ‖x − μ_label‖² on the training data.
    n_iter_ : int
        Iterations of the best run.
    converged_ : bool
    lower_bounds_ : ndarray of shape (``n_iter_`` + 1,)
        Minus the inertia of the initial centres and after each iteration (the hard-EM
        objective; non-decreasing).
    n_samples_seen_ : float
        Total sample weight seen in ``fit`` (or across ``partial_fit`` calls).
    counts_ : ndarray of shape (n_clusters,)
        Weight assigned to each centre (all of ``fit``, or cumulated by ``partial_fit``).
    n_steps_ : int
        Number of ``partial_fit`` calls since the centres were initialised (0 after ``fit``).
    n_features_in_ : int

    Notes
    -----
    X may be a numpy array, DataFrame, torch tensor, memmap, dask array, chunked source or a
    scipy.sparse matrix or array (CSR, CSC, ...): sparse rows are never densified, and
    ``transform`` returns dense distances.

    Examples
    --------
    >>> from latentspace import KMeans
    >>> import numpy as np
    >>> X = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1]])
    >>> km = KMeans(2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_[:, 0].tolist())
    [0.0, 10.0]
    >>> int(km.predict([[9.0, 0.5]])[0]) == int(km.predict([[10.0, 0.0]])[0])
    True
    >>> from scipy import sparse
    >>> km_sparse = KMeans(2, init=km.cluster_centers_, algorithm="elkan").fit(sparse.csr_matrix(X))
    >>> bool(np.allclose(km_sparse.cluster_centers_, km.cluster_centers_))
    True
    """

    # fitted attributes a saved file may hold: kind, symbolic shape (see latentspace._schema)
    _fitted_schema = {
        "cluster_centers_": ("float", ("n_clusters", "n_features_in_")),
        "counts_": ("float", ("n_clusters",)), "labels_": ("int", ("*",)),
        "lower_bounds_": ("float", ("*",), "optional nonfinite"),
        "inertia_": ("float", None), "n_iter_": ("int", None), "converged_": ("bool", None),
        "n_samples_seen_": ("float", None), "n_steps_": ("int", None),
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: int | str = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: int = 0,
        random_state: Any = None,
        copy_x: bool = True,
        algorithm: str = "lloyd",
        device: str = "cpu",
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.device = device

    # --- parameters -------------------------------------------------------------------
    def _check_params(self):
        K = check_int("n_clusters", self.n_clusters, low=1)
        check_int("max_iter", self.max_iter, low=0)
        check_float("tol", self.tol, low=0)
        check_int("verbose", self.verbose, low=0)
        check_seed("random_state", self.random_state)
        check_choice("algorithm", self.algorithm, ("lloyd", "elkan"))
        if not isinstance(self.copy_x, (bool, np.bool_)):
            raise ValueError(f"copy_x must be True or False; got {self.copy_x!r}.")
        if isinstance(self.init, str):
            check_choice("init", self.init, ("k-means++", "random"))
        elif not callable(self.init) and not hasattr(self.init, "__len__") \
                and not isinstance(self.init, torch.Tensor) and not is_sparse(self.init):
            raise ValueError(
                f"init must be 'k-means++', 'random', a callable or an array of shape "
                f"(n_clusters, n_features); got {self.init!r}."
            )
        if self.n_init == "auto":
            n_init = 10 if isinstance(self.init, str) and self.init == "random" else 1
        else:
            n_init = check_int("n_init", self.n_init, low=1)
        if self.algorithm == "elkan" and K == 1:
            warnings.warn(
                "algorithm='elkan' doesn't make sense for a single cluster (there are no "
                "bounds to keep); using 'lloyd' instead.",
                RuntimeWarning,
                stacklevel=3,
            )
        if self._init_is_array() and n_init != 1:
            warnings.warn(
                f"Explicit initial center position passed: performing only one init in "
                f"{type(self).__name__} instead of n_init={n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            n_init = 1
        return K, n_init

    def _init_is_array(self) -> bool:
        return not isinstance(self.init, str) and not callable(self.init)

    def _checked_centers(self, C, K: int, d: int, what: str) -> torch.Tensor:
        """Initial centres from ``init`` (an array or a callable's result) as a float64
        tensor of shape (K, d), or ``ValueError`` saying what is wrong with them."""
        if is_sparse(C):
            C = C.toarray()
        C = check_param_array(what, C, f"(n_clusters, n_features) = {(K, d)}")
        if C.shape != (K, d):
            raise ValueError(
                f"The shape of the initial centers {C.shape} from {what} does not match "
                + (f"the number of clusters {K}" if C.ndim != 2 or C.shape[0] != K else
                   f"the number of features of the data {d}")
                + f": it must be (n_clusters, n_features) = {(K, d)}."
            )
        if not np.all(np.isfinite(C)):
            raise ValueError(f"{what} contains NaN or infinity; give finite initial centres.")
        return torch.as_tensor(C, device=self._device())

    def _array_init(self, K: int, d: int) -> torch.Tensor | None:
        if not self._init_is_array():
            return None
        return self._checked_centers(self.init, K, d, "init")

    def _callable_init(self, data, K: int, d: int, frame: Frame):
        """The model's initialiser for a callable ``init``: called with the validated data in
        their own units; its centres are checked and moved into the working frame."""
        if not callable(self.init) or isinstance(self.init, str):
            return None
        if data is None:
            raise ValueError(
                "a callable init needs X in memory (an array, tensor or sparse matrix); for "
                "chunked or dask input pass an array of initial centres instead."
            )
        fn = self.init

        def call(rng) -> torch.Tensor:
            C = self._checked_centers(fn(data, K, random_state=rng), K, d,
                                      "the centres returned by init")
            return frame.points_to_work(C.to(torch.float64))

        return call

    # --- fitting ----------------------------------------------------------------------
    def fit(self, X: ArrayLike | SparseMatrix, y: object = None,
            sample_weight: ArrayLike | None = None) -> KMeans:
        """Compute the K-means clustering.

        Parameters
        ----------
        X : array-like, tensor, memmap, scipy.sparse matrix or ChunkedSource of shape \
(n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None
            Weight of each row (None: all ones).

        Returns
        -------
        self : KMeans
            The fitted estimator.
        """
        K, n_init = self._check_params()
        if is_sparse(X):
            return self._fit_sparse(X, sample_weight, K, n_init)
        rows = block_rows(K, self._device())
        shape: tuple[int, ...] = getattr(X, "shape", ())
        n_features = shape[1] if getattr(X, "ndim", 0) == 2 else 1
        source, _ = self._make_source(X, sample_weight,
                                      block_rows=chunk_rows(K, n_features, self._device()))
        if isinstance(source, InMemorySource) and not source.X.is_contiguous():
            source.X = source.X.contiguous()  # once, rather than a copy per block and iteration
        n = source.n_samples
        if n < K:
            raise ValueError(f"n_samples={n} should be >= n_clusters={K}.")
        init_centers = self._array_init(K, source.n_features)
        summary, scale, shift = summarize_source(source, compiled=True)
        if summary.n <= 0:
            raise ValueError(
                "sample weights sum to zero; at least one sample needs a positive weight."
            )
        # the working frame (scale, and centring of data far from the origin), from here to
        # the centres' conversion back
        frame = working_frame(summary, scale, shift, source.dtype)
        view = framed(source, frame)
        s = shift if frame.offset is None else shift - frame.offset  # the shift, frame units
        data = to_numpy(source.X) if isinstance(source, InMemorySource) else None
        model = self._model(
            K, rows, init_centers, frame, data, source.n_features,
            tol=self.tol * float(summary.variance().mean()),
            # Σ w‖x‖² from the shifted moments: Σ w (x−s)² + 2 sᵀ Σ w (x−s) + ‖s‖² Σ w
            sum_x_sq=float((summary.sumsq + 2 * s * summary.sum + s * s * summary.n).sum()),
            source=view,
        )
        rng = check_random_state(self.random_state)
        fast = _lloyd.available and source.device is not None and source.device.type == "cpu"
        with _lloyd.one_blas_thread() if fast else contextlib.nullcontext():
            result = run_em(
                model, view, n_init=n_init, max_iter=self.max_iter, tol=self.tol, rng=rng,
                verbose=self.verbose, warn=False,
            )
        centers = to_numpy(frame.points_to_data(result.params.centers).to(source.dtype))
        check_finite_result("cluster_centers_", centers, "rescale X.")
        # one labelling pass with the final centres, the same computation as predict()
        labels, d2, w = self._label_source(source, summary.amax.value, centers)
        self._set_fitted(result, scale, summary.n, centers, labels, _inertia(d2, w), w)
        return self

    def _model(self, K, rows, init_centers, frame, data, n_features, **fields) -> _Lloyd:
        """The engine model of a fit (dense or sparse) from its validated pieces."""
        call = self._callable_init(data, K, n_features, frame)
        init = "array" if init_centers is not None else "callable" if call is not None \
            else self.init
        return _Lloyd(
            n_clusters=K, rows=rows, init=init,
            init_centers=None if init_centers is None else frame.points_to_work(init_centers),
            init_call=call, elkan=ElkanState() if self.algorithm == "elkan" and K > 1 else None,
            **fields,
        )

    def _fit_sparse(self, X, sample_weight, K: int, n_init: int) -> KMeans:
        """``fit`` for scipy.sparse X: the same engine and model on CSR row blocks."""
        Xs = check_sparse_data(self, X, reset=True)
        n, d = Xs.shape
        if n < K:
            raise ValueError(f"n_samples={n} should be >= n_clusters={K}.")
        w = None if sample_weight is None else check_sample_weight(sample_weight, n)
        init_centers = self._array_init(K, d)
        weights = np.ones(n) if w is None else w
        total = float(weights.sum())
        if total <= 0:
            raise ValueError(
                "sample weights sum to zero; at least one sample needs a positive weight."
            )
        dtype = torch.float64 if Xs.dtype == np.float64 else torch.float32
        amax = float(np.abs(Xs.data).max()) if Xs.nnz else 0.0
        # sparse rows are only scaled (a centring offset would fill every entry)
        frame = Frame(working_scale(amax, dtype))
        Xw = Xs if frame.scale == 1.0 else Xs * frame.scale
        source = SparseSource(Xw, None if w is None else torch.from_numpy(w),
                              chunk_rows=chunk_rows(K, d))
        mean = np.asarray(Xw.T @ weights, dtype=np.float64) / total
        sq = row_sq_norms(Xw)
        col_sq = np.asarray(Xw.multiply(Xw).T @ weights, dtype=np.float64) / total
        variance = np.maximum(col_sq - mean * mean, 0.0)
        model = self._model(K, block_rows(K), init_centers, frame, Xs, d,
                            tol=self.tol * float(variance.mean()),
                            sum_x_sq=float(weights @ sq), source=source)
        rng = check_random_state(self.random_state)
        result = run_em(model, source, n_init=n_init, max_iter=self.max_iter, tol=self.tol,
                        rng=rng, verbose=self.verbose, warn=False)
        centers = to_numpy(frame.points_to_data(result.params.centers).to(dtype))
        check_finite_result("cluster_centers_", centers, "rescale X.")
        labels, d2 = self._sparse_labels(Xs, centers)
        wt = None if w is None else torch.from_numpy(w)
        self._set_fitted(result, frame.scale, total, centers, labels, _inertia(d2, wt), wt)
        return self

    def _set_fitted(self, result, scale, n_weight, centers, labels, inertia, w):
        """Fitted attributes in data units from the working units of the fit."""
        K = result.params.centers.shape[0]
        self.cluster_centers_ = centers
        self.labels_ = to_numpy(labels)
        self.inertia_ = float(inertia)
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        self.lower_bounds_ = np.asarray(result.lower_bounds, dtype=np.float64) / scale / scale
        self.n_samples_seen_ = float(n_weight)
        self.counts_ = to_numpy(torch.bincount(labels, weights=w, minlength=K).to(torch.float64))
        self.n_steps_ = 0
        n_distinct = int(np.count_nonzero(self.counts_ > 0))
        if n_distinct < K:
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than n_clusters "
                f"({K}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=3,
            )
        elif self.max_iter > 0 and not self.converged_:
            warnings.warn(
                f"KMeans did not converge in max_iter={self.max_iter} iterations (tol="
                f"{self.tol}); increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def partial_fit(self, X: ArrayLike | SparseMatrix, y: object = None,
                    sample_weight: ArrayLike | None = None) -> KMeans:
        """Update the centres with one mini-batch (online K-means, MacQueen 1967).

        Each centre moves to the running weighted mean of every point ever assigned to it:
        μ_k ← μ_k + (S_k − w_k μ_k) / c_k, with (w_k, S_k) the weight and weighted sum of the
        batch rows assigned to it and c_k its cumulated weight. The first call initialises
        the centres from its batch (which needs at least ``n_clusters`` rows).

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_batch, n_features)
        y : ignored
        sample_weight : array-like of shape (n_batch,) or None

        Returns
        -------
        self : KMeans
            The updated estimator.
        """
        first = not hasattr(self, "cluster_centers_") or not hasattr(self, "n_steps_")
        if first:
            K, _ = self._check_params()
        else:
            K = self.cluster_centers_.shape[0]
        sparse_in = is_sparse(X)
        if sparse_in:
            Xt = check_sparse_data(self, X, reset=first)
            n_rows, dtype, dev = Xt.shape[0], (
                torch.float64 if Xt.dtype == np.float64 else torch.float32), torch.device("cpu")
        else:
            Xt, _ = self._check_X(X, reset=first)
            n_rows, dtype, dev = Xt.shape[0], Xt.dtype, Xt.device
        if first:
            self._random_state_ = check_random_state(self.random_state)
        w = None if sample_weight is None else torch.as_tensor(
            check_sample_weight(sample_weight, n_rows), device=dev
        )
        f64: dict[str, Any] = {"dtype": torch.float64, "device": dev}
        if first:
            if n_rows < K:
                raise ValueError(
                    f"the first partial_fit batch has n_samples={n_rows}, but it must "
                    f"hold at least n_clusters={K} rows to initialise the centres."
                )
            C = self._initial_batch_centers(Xt, w, K)
            centers = C.to(dtype).to(**f64)
            counts0, steps0, seen0 = torch.zeros(K, **f64), 0, 0.0
        else:
            # a copy: the update below writes into it, and a failed call keeps the old centres
            centers = torch.tensor(self.cluster_centers_).to(**f64)
            counts0 = torch.as_tensor(self.counts_).to(**f64)
            steps0, seen0 = self.n_steps_, self.n_samples_seen_
        # the batch in the frame of the current centres (the one predict uses)
        if sparse_in:
            amax = float(np.abs(Xt.data).max()) if Xt.nnz else 0.0
            frame = Frame(self._query_frame(amax, dtype, centers).scale)
            work = Xt if frame.scale == 1.0 else Xt * frame.scale
        else:
            amax = abs_max(Xt)
            frame = self._query_frame(amax, dtype, centers)
            work = frame.to_work(Xt)
        Cw = frame.points_to_work(centers)
        stats = kmeans_stats(Chunk(work, w, 0), Centers.of(Cw, dtype), block_rows(K, dev))
        counts = counts0 + stats.counts
        batch = stats.counts > 0
        Cw[batch] += (stats.sums[batch] - stats.counts[batch, None] * Cw[batch]) / counts[batch, None]
        new_centers = to_numpy(frame.points_to_data(Cw).to(dtype))
        check_finite_result("cluster_centers_", new_centers, "rescale X.")
        if sparse_in:
            labels, d2 = self._sparse_labels(Xt, new_centers)
        else:
            labels, d2 = self._labels_d2(Xt, centers=new_centers)
        inertia = _inertia(d2, w)  # raises before anything is set when it overflows
        if first:
            self.n_iter_ = 0
            self.converged_ = False
        self.cluster_centers_ = new_centers
        self.counts_ = to_numpy(counts)
        self.n_steps_ = steps0 + 1
        self.n_samples_seen_ = seen0 + float(stats.n)
        self.labels_ = to_numpy(labels)
        self.inertia_ = inertia
        return self

    def _initial_batch_centers(self, Xt, w, K: int) -> torch.Tensor:
        """Initial centres (K, d) in data units from the first ``partial_fit`` batch."""
        d = Xt.shape[1]
        C = self._array_init(K, d)
        if C is not None:
            return C
        if is_sparse(Xt):
            amax = float(np.abs(Xt.data).max()) if Xt.nnz else 0.0
            frame = Frame(working_scale(amax, torch.float64 if Xt.dtype == np.float64
                                        else torch.float32))
            src: Any = SparseSource(Xt if frame.scale == 1.0 else Xt * frame.scale, w,
                                    chunk_rows=chunk_rows(K, d))
            view = src
        else:
            src = InMemorySource(Xt, w)
            summary, scale, shift = summarize_source(src)
            frame = working_frame(summary, scale, shift, Xt.dtype)
            view = framed(src, frame)
        call = self._callable_init(Xt if is_sparse(Xt) else to_numpy(Xt), K, d, frame)
        if call is not None:
            C = call(self._random_state_)
        elif self.init == "random":
            C = view.take(random_rows(view, K, self._random_state_)).to(torch.float64)
        else:  # seeded in the batch's working frame, as fit seeds
            C, _ = kmeans_plusplus(view, K, self._random_state_)
        return frame.points_to_data(C.to(torch.float64))

    # --- queries ----------------------------------------------------------------------
    def _query_frame(self, amax: float, dtype, centers=None) -> Frame:
        """The working frame of a query whose largest |x| is ``amax``, from the centres alone.

        Its scale keeps the squares of the larger of the query and the centres representable
        (so tiny queries stay in the centres' units and huge ones are scaled down); its
        offset is the centres' mean where they lie far from the origin against their spread
        (:func:`~latentspace._math.centring_offset`). ``fit`` labels its data through this
        same frame, so that ``labels_ == predict(X)``.
        """
        C = torch.as_tensor(self.cluster_centers_ if centers is None else centers)
        C = C.to(torch.float64)
        scale = working_scale(max(amax, abs_max(C)), dtype)
        Cs = C * scale
        mean = Cs.mean(0)
        spread2 = float(((Cs - mean) ** 2).sum(1).mean())
        return Frame(scale, centring_offset(mean, spread2, dtype))

    def _sparse_frame(self, Xs, centers):
        """(scale, rows in working units, centres (K, d) float64 in working units) of a
        sparse query: scaled only, never centred."""
        amax = float(np.abs(Xs.data).max()) if Xs.nnz else 0.0
        dtype = torch.float64 if Xs.dtype == np.float64 else torch.float32
        scale = self._query_frame(amax, dtype, centers).scale
        C = np.asarray(centers, dtype=np.float64) * scale
        return scale, (Xs if scale == 1.0 else Xs * scale), C

    def _sparse_labels(self, Xs, centers=None):
        """Labels (n,) int64 and squared distances (n,) float64 tensors of CSR rows."""
        scale, Xw, C = self._sparse_frame(Xs, self.cluster_centers_ if centers is None
                                          else centers)
        labels, d2 = sparse_labels(Xw, C)
        return torch.from_numpy(labels), torch.from_numpy(d2) / scale / scale

    def _label_source(self, source, amax: float, centers=None, distances: bool = True):
        """Labels (n,), squared distances to the assigned centres (n,) float64 in data units
        (None unless ``distances``) and the weights (n,) or None of a source's rows.

        The same frame, chunks, blocks and kernels for ``fit``'s labelling pass and for every
        query, so that ``predict(X_train)`` reproduces ``labels_`` exactly.
        """
        centers = self.cluster_centers_ if centers is None else centers
        frame = self._query_frame(amax, source.dtype, centers)
        C = frame.points_to_work(torch.as_tensor(centers, device=source.device).to(torch.float64))
        P = Centers.of(C, source.dtype)
        rows = block_rows(C.shape[0], source.device)
        parts = framed(source, frame).map_chunks(
            lambda c: (*label_chunk(c, P, rows, distances), c.w))
        labels = torch.cat([p[0] for p in parts])
        w = None if parts[0][2] is None else torch.cat([p[2] for p in parts])
        if not distances:
            return labels, None, w
        # divide twice: scale² alone can underflow for huge data
        return labels, torch.cat([p[1] for p in parts]) / frame.scale / frame.scale, w

    def _labels_d2(self, Xt: torch.Tensor, distances: bool = True, centers=None):
        """Labels (n,) and squared distances to the assigned centres (n,) float64 of a
        query (None unless ``distances``), for the fitted or the given ``centers``."""
        amax = abs_max(Xt)
        if not np.isfinite(amax):  # callers may leave NaN/inf to this pass (predict does)
            check_finite_data(self, Xt)
        K, d = (self.cluster_centers_ if centers is None else centers).shape
        source = InMemorySource(Xt, chunk_rows=chunk_rows(K, d, Xt.device))
        labels, d2, _ = self._label_source(source, amax, centers, distances=distances)
        return labels, d2

    def predict(self, X: ArrayLike | SparseMatrix) -> np.ndarray | torch.Tensor:
        """Index of the nearest centre for each row.

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray (or tensor, for a tensor X) of shape (n_samples,), int64
        """
        self._check_fitted()
        if is_sparse(X):
            return to_numpy(self._sparse_labels(check_sparse_data(self, X, reset=False))[0])
        # NaN and infinity are caught by the scan for the largest |x| that labelling makes
        Xt, kind = self._check_X(X, reset=False, finite=False)
        return self._out(self._labels_d2(Xt, distances=False)[0], kind)

    def fit_predict(self, X: ArrayLike | SparseMatrix, y: object = None,
                    sample_weight: ArrayLike | None = None) -> np.ndarray | torch.Tensor:
        """``fit(X)`` then the training labels (equal to ``predict(X)``).

        Parameters
        ----------
        X : array-like, tensor, memmap, scipy.sparse matrix or ChunkedSource of shape \
(n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        labels : ndarray (or tensor on X's device, for a tensor X) of shape (n_samples,)
        """
        labels = self.fit(X, sample_weight=sample_weight).labels_
        return self._out(torch.from_numpy(labels), input_kind(X))

    def transform(self, X: ArrayLike | SparseMatrix) -> np.ndarray | torch.Tensor:
        """Euclidean distance of each row to each centre.

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray (or tensor, for a tensor X) of shape (n_samples, n_clusters)
            In X's dtype; dense also for sparse X.
        """
        self._check_fitted()
        if is_sparse(X):
            Xs = check_sparse_data(self, X, reset=False)
            scale, Xw, C = self._sparse_frame(Xs, self.cluster_centers_)
            rows = max(1, (1 << 20) // max(C.shape[0], 1))
            Ct = torch.from_numpy(C)
            out = [np.sqrt(refine_small(Xw[i:i + rows], Ct, torch.from_numpy(
                sparse_sq_distances(Xw[i:i + rows], C))).numpy()) / scale
                for i in range(0, Xw.shape[0], rows)]
            return np.concatenate(out).astype(Xs.dtype, copy=False)
        Xt, kind = self._check_X(X, reset=False)
        frame = self._query_frame(abs_max(Xt), Xt.dtype)
        C = frame.points_to_work(torch.as_tensor(self.cluster_centers_, device=Xt.device)
                                 .to(torch.float64)).to(Xt.dtype)
        out = []
        for _, Xb in split_rows(Xt, block_rows(C.shape[0], Xt.device)):
            Xw = frame.to_work(Xb)
            out.append(refine_small(Xw, C, sq_distances(Xw, C)).sqrt_() / frame.scale)
        return self._out(torch.cat(out), kind)

    def fit_transform(self, X: ArrayLike | SparseMatrix, y: object = None,
                      sample_weight: ArrayLike | None = None) -> np.ndarray | torch.Tensor:
        """``fit(X)`` then ``transform(X)``.

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        distances : ndarray (or tensor) of shape (n_samples, n_clusters)
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray | torch.Tensor:
        """Centres of the given labels (n,) or of the nearest centres for distances (n, K).

        Parameters
        ----------
        Z : array-like of shape (n_samples,) or (n_samples, n_clusters)
            Labels in [0, n_clusters), or the distances :meth:`transform` returns.

        Returns
        -------
        X_rec : ndarray or tensor of shape (n_samples, n_features)
            The K-means reconstruction of each row: its cluster's centre, in the dtype of
            float distances ``Z`` (float32 stays float32) or of the centres for labels.
        """
        self._check_fitted()
        K = self.cluster_centers_.shape[0]
        if getattr(Z, "ndim", None) == 1 or (
            isinstance(Z, (list, tuple)) and not any(isinstance(r, (list, tuple)) for r in Z)
        ):
            labels, kind = check_labels(Z, K, name="Z", owner="KMeans")
            centers = torch.as_tensor(self.cluster_centers_, device=self._device())
            return self._out(centers[torch.as_tensor(labels, device=centers.device)], kind)
        Zt, kind = check_array_like(
            Z, device=self._device(), n_features=K, name="Z", owner="KMeans",
            hint="; pass the output of transform() (n_clusters columns) or 1-D labels",
        )
        centers = torch.as_tensor(self.cluster_centers_, device=Zt.device).to(Zt.dtype)
        return self._out(centers[Zt.argmin(1)], kind)

    def score(self, X: ArrayLike | SparseMatrix, y: object = None,
              sample_weight: ArrayLike | None = None) -> float:
        """Minus the inertia of ``X`` under the fitted centres (higher is better).

        Parameters
        ----------
        X : array-like, tensor or scipy.sparse matrix of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        score : float
            −Σ w ‖x − μ_label‖².
        """
        self._check_fitted()
        if is_sparse(X):
            Xs = check_sparse_data(self, X, reset=False)
            w = None if sample_weight is None else torch.from_numpy(
                check_sample_weight(sample_weight, Xs.shape[0]))
            return -_inertia(self._sparse_labels(Xs)[1], w)
        Xt, _ = self._check_X(X, reset=False)
        w = None if sample_weight is None else torch.as_tensor(
            check_sample_weight(sample_weight, Xt.shape[0]), device=Xt.device)
        _, d2 = self._labels_d2(Xt)
        return -_inertia(d2, w)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[0]
