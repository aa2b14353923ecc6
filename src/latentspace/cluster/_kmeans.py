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
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin

from .._backend import input_kind, to_numpy
from .._math import Frame, abs_max, centring_offset, working_scale
from .._validation import (
    check_array_like,
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
from . import _lloyd
from ._kernels import (
    Centers,
    KMeansStats,
    block_rows,
    chunk_rows,
    farthest,
    kmeans_stats,
    label_chunk,
    relocate_empty,
    sq_distances,
)
from ._seeding import kmeans_plusplus, random_rows

__all__ = ["KMeans", "kmeans_plusplus"]


@dataclass(frozen=True)
class _Lloyd:
    """The engine model of one K-means fit, in working units (see :mod:`latentspace.em`).

    Its hooks read only these fields and their arguments. ``source`` is the fit's (scaled)
    data, which the M-step reads again in the rare iteration that leaves a cluster empty.
    """

    n_clusters: int
    rows: int  # rows per block of the kernels
    init: str  # "k-means++", "random" or "array"
    init_centers: torch.Tensor | None  # (K, D) float64, working units, for init="array"
    tol: float  # on Σ_k ‖Δμ_k‖², in working units
    sum_x_sq: float  # Σ w ‖x‖², working units
    source: object

    def _init_params(self, source, rng) -> Centers:
        K = self.n_clusters
        if self.init == "array":
            centers = self.init_centers
        elif self.init == "random":
            centers = source.take(random_rows(source, K, rng)).to(torch.float64)
        else:
            centers, _ = kmeans_plusplus(source, K, rng)
        return Centers.of(centers, source.dtype)

    def _e_step_stats(self, chunk, P: Centers) -> KMeansStats:
        return kmeans_stats(chunk, P, self.rows)

    def _m_step(self, stats: KMeansStats, P: Centers) -> Centers:
        counts, sums = stats.counts, stats.sums
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
        part = float((stats.counts * (C * C).sum(1)).sum() - 2.0 * (C * stats.sums).sum())
        return -(part + self.sum_x_sq)

    def _em_converged(self, lower_bounds, old: Centers, new: Centers, tol) -> bool:
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
    """K-means clustering (Lloyd's algorithm as hard EM), with mini-batch updates.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K.
    init : {"k-means++", "random"} or array of shape (n_clusters, n_features), default="k-means++"
        ``k-means++``: greedy k-means++ seeding; ``random``: K distinct rows at random; an
        array: these initial centres (then ``n_init`` is 1).
    n_init : int or "auto", default="auto"
        Number of initialisations; the one with the lowest final inertia is kept. ``auto``
        is 1 for ``k-means++`` and array inits, 10 for ``random``.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per run; 0 only initialises (labels and inertia
        of the initial centres).
    tol : float, default=1e-4
        Convergence when the squared centre movement Σ_k ‖Δμ_k‖² falls to
        ``tol × mean feature variance`` (scikit-learn's rule); 0 runs until the labels no
        longer change or ``max_iter``.
    verbose : int, default=0
    random_state : int, RandomState or None, default=None
        Seeds the initialisation (and mini-batch initialisation in ``partial_fit``).
    device : {"cpu", "cuda", "auto"}, default="cpu"

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
        Label of each training row, equal to ``predict(X)``.
    inertia_ : float
        Σ w ‖x − μ_label‖² on the training data.
    n_iter_ : int
        Lloyd iterations of the best run.
    converged_ : bool
    lower_bounds_ : ndarray of shape (n_iter_ + 1,)
        Minus the inertia of the initial centres and after each iteration (the hard-EM
        objective; non-decreasing).
    n_samples_seen_ : float
        Total sample weight seen in ``fit`` (or across ``partial_fit`` calls).
    counts_ : ndarray of shape (n_clusters,)
        Weight assigned to each centre (all of ``fit``, or cumulated by ``partial_fit``).
    n_steps_ : int
        Number of ``partial_fit`` calls since the centres were initialised (0 after ``fit``).
    n_features_in_ : int

    Examples
    --------
    >>> from latentspace import KMeans
    >>> import numpy as np
    >>> X = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1]])
    >>> km = KMeans(2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_[:, 0].tolist())
    [0.0, 10.0]
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
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        device="cpu",
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.device = device

    # --- parameters -------------------------------------------------------------------
    def _check_params(self):
        K = check_int("n_clusters", self.n_clusters, low=1)
        check_int("max_iter", self.max_iter, low=0)
        check_float("tol", self.tol, low=0)
        check_int("verbose", self.verbose, low=0)
        check_seed("random_state", self.random_state)
        if isinstance(self.init, str):
            check_choice("init", self.init, ("k-means++", "random"))
        elif not hasattr(self.init, "__len__") and not isinstance(self.init, torch.Tensor):
            raise ValueError(
                f"init must be 'k-means++', 'random' or an array of shape (n_clusters, "
                f"n_features); got {self.init!r}."
            )
        if self.n_init == "auto":
            n_init = 10 if isinstance(self.init, str) and self.init == "random" else 1
        else:
            n_init = check_int("n_init", self.n_init, low=1)
        return K, n_init

    def _array_init(self, K: int, d: int) -> torch.Tensor | None:
        if isinstance(self.init, str):
            return None
        C = check_param_array("init", self.init, f"(n_clusters, n_features) = {(K, d)}")
        if C.shape != (K, d):
            raise ValueError(
                f"init has shape {C.shape}, but it must be (n_clusters, n_features) = {(K, d)}."
            )
        if not np.all(np.isfinite(C)):
            raise ValueError("init contains NaN or infinity; give finite initial centres.")
        return torch.as_tensor(C, device=self._device())

    # --- fitting ----------------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Compute the K-means clustering.

        Parameters
        ----------
        X : array-like, tensor, memmap or ChunkedSource of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        self
        """
        K, n_init = self._check_params()
        rows = block_rows(K, self._device())
        n_features = X.shape[1] if getattr(X, "ndim", 0) == 2 else 1
        source, _ = self._make_source(X, sample_weight,
                                      block_rows=chunk_rows(K, n_features, self._device()))
        if isinstance(source, InMemorySource) and not source.X.is_contiguous():
            source.X = source.X.contiguous()  # once, rather than a copy per block and iteration
        n = source.n_samples
        if n < K:
            raise ValueError(f"n_samples={n} should be >= n_clusters={K}.")
        init_centers = self._array_init(K, source.n_features)
        if init_centers is not None:
            n_init = 1
        summary, scale, shift = summarize_source(source)
        if summary.n <= 0:
            raise ValueError(
                "sample weights sum to zero; at least one sample needs a positive weight."
            )
        # the working frame (scale, and centring of data far from the origin), from here to
        # the centres' conversion back
        frame = working_frame(summary, scale, shift, source.dtype)
        view = framed(source, frame)
        s = shift if frame.offset is None else shift - frame.offset  # the shift, frame units
        model = _Lloyd(
            n_clusters=K, rows=rows, init=self.init if init_centers is None else "array",
            init_centers=None if init_centers is None else frame.points_to_work(init_centers),
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

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the centres with one mini-batch (online K-means, MacQueen 1967).

        Each centre moves to the running weighted mean of every point ever assigned to it:
        μ_k ← μ_k + (S_k − w_k μ_k) / c_k, with (w_k, S_k) the weight and weighted sum of the
        batch rows assigned to it and c_k its cumulated weight. The first call initialises
        the centres from its batch (which needs at least ``n_clusters`` rows).

        Parameters
        ----------
        X : array-like of shape (n_batch, n_features)
        y : ignored
        sample_weight : array-like of shape (n_batch,) or None

        Returns
        -------
        self
        """
        first = not hasattr(self, "cluster_centers_") or not hasattr(self, "n_steps_")
        if first:
            K, _ = self._check_params()
            Xt, _ = self._check_X(X, reset=True)
            self._random_state_ = check_random_state(self.random_state)
        else:
            K = self.cluster_centers_.shape[0]
            Xt, _ = self._check_X(X, reset=False)
        w = None if sample_weight is None else torch.as_tensor(
            check_sample_weight(sample_weight, Xt.shape[0]), device=Xt.device
        )
        f64 = {"dtype": torch.float64, "device": Xt.device}
        if first:
            if Xt.shape[0] < K:
                raise ValueError(
                    f"the first partial_fit batch has n_samples={Xt.shape[0]}, but it must "
                    f"hold at least n_clusters={K} rows to initialise the centres."
                )
            src = InMemorySource(Xt, w)
            C = self._array_init(K, Xt.shape[1])
            if C is None and self.init == "random":
                idx = random_rows(src, K, self._random_state_)
                C = Xt[torch.as_tensor(idx)].to(torch.float64)
            elif C is None:  # seeded in the batch's working frame, as fit seeds
                summary, scale, shift = summarize_source(src)
                frame = working_frame(summary, scale, shift, Xt.dtype)
                C, _ = kmeans_plusplus(framed(src, frame), K, self._random_state_)
                C = frame.points_to_data(C)
            centers = C.to(Xt.dtype).to(**f64)
            counts0, steps0, seen0 = torch.zeros(K, **f64), 0, 0.0
        else:
            # a copy: the update below writes into it, and a failed call keeps the old centres
            centers = torch.tensor(self.cluster_centers_).to(**f64)
            counts0 = torch.as_tensor(self.counts_).to(**f64)
            steps0, seen0 = self.n_steps_, self.n_samples_seen_
        # the batch in the frame of the current centres (the one predict uses)
        amax = abs_max(Xt)
        frame = self._query_frame(amax, Xt.dtype, centers)
        Cw = frame.points_to_work(centers)
        stats = kmeans_stats(Chunk(frame.to_work(Xt), w, 0), Centers.of(Cw, Xt.dtype),
                             block_rows(K, Xt.device))
        counts = counts0 + stats.counts
        batch = stats.counts > 0
        Cw[batch] += (stats.sums[batch] - stats.counts[batch, None] * Cw[batch]) / counts[batch, None]
        new_centers = to_numpy(frame.points_to_data(Cw).to(Xt.dtype))
        check_finite_result("cluster_centers_", new_centers, "rescale X.")
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

    def predict(self, X):
        """Index of the nearest centre for each row: (n_samples,) int64."""
        self._check_fitted()
        # NaN and infinity are caught by the scan for the largest |x| that labelling makes
        Xt, kind = self._check_X(X, reset=False, finite=False)
        return self._out(self._labels_d2(Xt, distances=False)[0], kind)

    def fit_predict(self, X, y=None, sample_weight=None):
        """``fit(X)`` then the training labels (equal to ``predict(X)``), as the same kind of
        array as ``X`` (a tensor on its device for a tensor)."""
        labels = self.fit(X, sample_weight=sample_weight).labels_
        return self._out(torch.from_numpy(labels), input_kind(X))

    def transform(self, X):
        """Euclidean distance of each row to each centre: (n_samples, n_clusters), X's dtype."""
        self._check_fitted()
        Xt, kind = self._check_X(X, reset=False)
        frame = self._query_frame(abs_max(Xt), Xt.dtype)
        C = frame.points_to_work(torch.as_tensor(self.cluster_centers_, device=Xt.device)
                                 .to(torch.float64)).to(Xt.dtype)
        out = []
        for _, Xb in split_rows(Xt, block_rows(C.shape[0], Xt.device)):
            out.append(sq_distances(frame.to_work(Xb), C).sqrt_() / frame.scale)
        return self._out(torch.cat(out), kind)

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def inverse_transform(self, Z):
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

    def score(self, X, y=None, sample_weight=None):
        """Minus the inertia of ``X`` under the fitted centres (higher is better)."""
        self._check_fitted()
        Xt, _ = self._check_X(X, reset=False)
        w = None if sample_weight is None else torch.as_tensor(
            check_sample_weight(sample_weight, Xt.shape[0]), device=Xt.device)
        _, d2 = self._labels_d2(Xt)
        return -_inertia(d2, w)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[0]
