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
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state

from .._backend import to_numpy
from .._math import abs_max, working_scale
from .._validation import (
    check_choice,
    check_finite_data,
    check_finite_result,
    check_float,
    check_int,
)
from ..base import LatentModel
from ..data import Chunk, InMemorySource
from ..data._input import SourceInput, check_sample_weight, split_rows
from ..em import FarthestPoints, Stats, run_em, summarize_source
from ..exceptions import ConvergenceWarning
from . import _lloyd

__all__ = ["KMeans", "kmeans_plusplus"]

_BLOCK_ELEMS = 1 << 16  # rows × clusters per block: the (rows, K) products stay in cache
_GPU_BLOCK_ELEMS = 1 << 24


# ----------------------------------------------------------------------------- kernels
def _sq_distances(X: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """‖x_n − c_k‖² for every pair, clipped at 0: (n, k) from X (n, d) and C (k, d)."""
    d2 = torch.addmm((C * C).sum(1)[None, :], X, C.T, alpha=-2.0)
    d2 += (X * X).sum(1, keepdim=True)
    return d2.clamp_min_(0)


def _block_rows(n_clusters: int, device: torch.device | None = None) -> int:
    """Rows per block. With several threads every array operation opens a parallel region
    whose start and end cost the same whatever its size, so blocks are 4× larger there; on a
    GPU each operation is a kernel launch, so blocks hold up to 2^24 products."""
    if device is not None and device.type != "cpu":
        elems = _GPU_BLOCK_ELEMS
    else:
        elems = _BLOCK_ELEMS if torch.get_num_threads() == 1 else 4 * _BLOCK_ELEMS
    return max(256, elems // max(n_clusters, 1))


def _chunk_rows(n_clusters: int, n_features: int, device: torch.device | None = None) -> int:
    """Rows per chunk handed over by a source: up to 2^22 values (32 MiB in float64); each
    pass splits chunks further into cache-sized blocks. ``fit``'s labelling pass and
    ``predict`` cut the data alike, so that they label every row identically."""
    return max(_block_rows(n_clusters, device), (1 << 22) // max(n_features, 1))


@dataclass(frozen=True)
class _Centers:
    """Centres in the working units: float64 master copy and the compute-dtype copies."""

    centers: torch.Tensor  # (K, D) float64
    work: torch.Tensor  # (K, D) compute dtype
    m2t: torch.Tensor  # (D, K) −2 cᵀ, contiguous, compute dtype
    sq: torch.Tensor  # (K,) ‖c_k‖² in the compute dtype

    @staticmethod
    def of(centers64: torch.Tensor, dtype: torch.dtype) -> "_Centers":
        work = centers64.to(dtype)
        # −2 is a power of two: X @ (−2cᵀ) rounds exactly like −2 (X @ cᵀ)
        return _Centers(centers64, work, (-2.0 * work).T.contiguous(), (work * work).sum(1))


def _labels(X: torch.Tensor, P: _Centers) -> torch.Tensor:
    """Nearest centre of each row of one block: (n,) int64.

    argmin_k ‖x − c_k‖² = argmin_k (‖c_k‖² − 2 xᵀc_k): one GEMM plus a broadcast add. On the
    CPU numpy's argmin (a vectorised single pass) is several times faster than torch's
    ``min(1)`` for short rows.
    """
    part = torch.mm(X, P.m2t)  # (n, K)
    part += P.sq
    if part.device.type == "cpu":
        return torch.from_numpy(part.numpy().argmin(1))
    return part.argmin(1)


@dataclass(frozen=True)
class KMeansStats(Stats):
    """Counts and weighted sums per cluster (float64).

    ``loglik`` is unused (0): the objective follows from the sums, see ``KMeans._lower_bound``.
    """

    counts: torch.Tensor = None  # (K,) float64
    sums: torch.Tensor = None  # (K, D) float64


def _scaled_blocks(chunk: Chunk, scale: float, rows: int):
    """(X block in working units, its weights or None, its global offset)."""
    for start, Xb in split_rows(chunk.X, rows):
        if scale != 1.0:
            Xb = Xb * scale
        wb = None if chunk.w is None else chunk.w[start : start + Xb.shape[0]]
        yield Xb, wb, chunk.offset + start


def _compiled_step(chunk: Chunk, P: _Centers, scale: float, labels: bool):
    """(labels or None, counts, sums) of a chunk by the compiled step, or None where it does
    not apply (GPU, rescaled data, no numba) or cannot be built on this machine (then it is
    switched off, with a warning, for the rest of the process)."""
    if scale != 1.0 or chunk.X.device.type != "cpu" or not _lloyd.available:
        return None
    w = None if chunk.w is None or labels else chunk.w.numpy()
    try:
        return _lloyd.lloyd_stats(chunk.X.numpy(), (-2.0 * P.work).numpy(), P.sq.numpy(), w,
                                  torch.get_num_threads(), labels=labels)
    except _lloyd.CompileError as exc:  # e.g. a numba that cannot target this machine
        _lloyd.disable(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None


def _kmeans_stats(chunk: Chunk, P: _Centers, scale: float, rows: int) -> KMeansStats:
    K, D = P.work.shape
    out = _compiled_step(chunk, P, scale, labels=False)
    if out is not None:
        counts = torch.from_numpy(out[1])
        return KMeansStats(n=float(counts.sum()), loglik=0.0, counts=counts,
                           sums=torch.from_numpy(out[2]))
    total = None
    for Xb, wb, _ in _scaled_blocks(chunk, scale, rows):
        labels = _labels(Xb, P)
        X64 = Xb.to(torch.float64)
        sums = torch.zeros(K, D, dtype=torch.float64, device=Xb.device)
        if wb is None:
            counts = torch.bincount(labels, minlength=K).to(torch.float64)
        else:
            counts = torch.bincount(labels, weights=wb, minlength=K)
            X64 = X64 * wb[:, None]
        # per-row sums into the clusters' rows (index_add_ is slow with two OpenMP threads)
        sums.scatter_add_(0, labels[:, None].expand(-1, D), X64)
        stats = KMeansStats(n=float(counts.sum()), loglik=0.0, counts=counts, sums=sums)
        total = stats if total is None else total + stats
    return total


def _exact_d2(X: torch.Tensor, C: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """‖x_n − c_{label_n}‖² computed from the difference (no cancellation): (n,) float64."""
    diff = X.to(torch.float64) - C[labels]
    return (diff * diff).sum(1)


def _label_chunk(chunk: Chunk, P: _Centers, scale: float, rows: int, distances: bool = True):
    """Labels (n,) and exact squared distances (n,) of one chunk, in working units (the
    distances None unless asked for)."""
    out = _compiled_step(chunk, P, scale, labels=True)
    if out is not None:
        lab = torch.from_numpy(out[0])
        if not distances:
            return lab, None
        d2 = [_exact_d2(Xb, P.centers, lab[start : start + Xb.shape[0]])
              for start, Xb in split_rows(chunk.X, rows)]
        return lab, torch.cat(d2)
    labels, d2 = [], []
    for Xb, _, _ in _scaled_blocks(chunk, scale, rows):
        lab = _labels(Xb, P)
        labels.append(lab)
        if distances:
            d2.append(_exact_d2(Xb, P.centers, lab))
    return torch.cat(labels), (torch.cat(d2) if distances else None)


def _farthest(chunk: Chunk, P: _Centers, scale: float, rows: int) -> FarthestPoints:
    """The K rows of a chunk farthest from their nearest centre (for empty-cluster moves)."""
    K = P.work.shape[0]
    total = None
    for Xb, wb, offset in _scaled_blocks(chunk, scale, rows):
        labels = _labels(Xb, P)
        d2 = _exact_d2(Xb, P.centers, labels)
        w = torch.ones_like(d2) if wb is None else wb
        top = torch.topk(d2 * (w > 0), min(K, Xb.shape[0])).indices  # weightless rows stay
        index = torch.arange(Xb.shape[0], device=Xb.device)[top] + offset
        far = FarthestPoints.select(
            d2[top], index, Xb[top].to(torch.float64), w[top], labels[top], K
        )
        total = far if total is None else total + far
    return total


def _relocate_empty(counts: torch.Tensor, sums: torch.Tensor, far: FarthestPoints):
    """Move each empty cluster onto the farthest point whose own cluster keeps a member.

    Returns new (counts, sums) and the number of clusters that stayed empty (no point was
    away from its centre: duplicate data with fewer distinct points than clusters).
    """
    empty = torch.nonzero(counts <= 0).flatten().tolist()
    if not empty:
        return counts, sums, 0
    counts, sums = counts.clone(), sums.clone()
    candidates = iter(range(far.dist.shape[0]))
    left = 0
    for j in empty:
        for i in candidates:
            old = int(far.label[i])
            w = float(far.weight[i])
            if float(far.dist[i]) <= 0 or w <= 0 or float(counts[old]) - w <= 0:
                continue
            x = far.rows[i]
            sums[old] -= w * x
            counts[old] -= w
            sums[j] = w * x
            counts[j] = w
            break
        else:
            left += 1
    return counts, sums, left


# ----------------------------------------------------------------------------- init
class _InitDistances:
    """Squared distances (N, m) of every row to a few rows ``C`` (m, d, float64, working
    units), in row order, as float64.

    ‖x − c‖² = ‖x‖² + ‖c‖² − 2 xᵀc with ‖x‖² computed once per chunk (in float64) and kept,
    and the products in the data's precision, so that the seeding's repeated passes neither
    convert the data to float64 nor recompute its norms (as scikit-learn's seeding does).
    """

    def __init__(self, source, scale: float):
        self.source, self.scale = source, scale
        self._norms: dict[int, torch.Tensor] = {}

    def __call__(self, C: torch.Tensor) -> torch.Tensor:
        scale = self.scale

        def f(chunk):
            xsq = self._norms.get(chunk.offset)
            if xsq is None:
                X64 = chunk.X.to(torch.float64)
                xsq = (X64 * X64).sum(1) * (scale * scale)
                self._norms[chunk.offset] = xsq
            # C is in working units: scale · (X @ Cᵀ) = (scale · X) @ Cᵀ
            cross = (chunk.X @ C.to(chunk.X.dtype).T).to(torch.float64) * scale
            d2 = xsq[:, None] + (C * C).sum(1)[None, :] - 2.0 * cross
            return d2.clamp_min_(0)

        return torch.cat(self.source.map_chunks(f))


def kmeans_plusplus(source, n_clusters: int, rng, *, scale: float = 1.0, n_local_trials=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with local trials).

    Each new centre is the best, by resulting potential Σ w min_k ‖x − c_k‖², of
    ``2 + ⌊ln K⌋`` candidates drawn with probability ∝ w·D(x)².

    Parameters
    ----------
    source : Source or (n_samples, n_features) tensor
    n_clusters : int
    rng : numpy.random.RandomState
    scale : float
        Working scale of the data (returned centres are in these units).
    n_local_trials : int or None

    Returns
    -------
    centers : (n_clusters, n_features) float64 tensor
    indices : (n_clusters,) ndarray of int64, the rows chosen
    """
    if isinstance(source, torch.Tensor):
        source = InMemorySource(source)
    n = source.n_samples
    w = source.take_weights(np.arange(n))
    w = np.ones(n) if w is None else to_numpy(w).astype(np.float64)
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    first = int(rng.choice(n, p=w / w.sum()))
    indices = [first]
    C = source.take([first]).to(torch.float64) * scale
    centers = [C[0]]
    distances = _InitDistances(source, scale)
    closest = to_numpy(distances(C)[:, 0])
    pot = float(closest @ w)
    for _ in range(1, n_clusters):
        rand = rng.uniform(size=n_local_trials) * pot
        cand = np.searchsorted(np.cumsum(w * closest), rand)
        cand = np.clip(cand, None, n - 1)
        rows = source.take(cand).to(torch.float64) * scale
        d = np.minimum(closest[:, None], to_numpy(distances(rows)))
        pots = w @ d
        best = int(np.argmin(pots))
        pot, closest = float(pots[best]), d[:, best].copy()
        indices.append(int(cand[best]))
        centers.append(rows[best])
    return torch.stack(centers), np.asarray(indices, dtype=np.int64)


# ----------------------------------------------------------------------------- estimator
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
        C = to_numpy(self.init).astype(np.float64)
        if C.shape != (K, d):
            raise ValueError(
                f"init has shape {C.shape}, but it must be (n_clusters, n_features) = {(K, d)}."
            )
        if not np.all(np.isfinite(C)):
            raise ValueError("init contains NaN or infinity; give finite initial centres.")
        return torch.as_tensor(C, device=self._device())

    # --- EM hooks (engine protocol) --------------------------------------------------
    def _init_params(self, source, rng):
        C = self._fit_init_centers
        if C is not None:
            centers = C * self._scale
        elif self.init == "random":
            idx = rng.permutation(source.n_samples)[: self._K]
            centers = source.take(idx).to(torch.float64) * self._scale
        else:
            centers, _ = kmeans_plusplus(source, self._K, rng, scale=self._scale)
        return _Centers.of(centers, source.dtype)

    def _e_step_stats(self, chunk, P):
        return _kmeans_stats(chunk, P, self._scale, self._rows)

    def _m_step(self, stats: KMeansStats, P: _Centers) -> _Centers:
        counts, sums = stats.counts, stats.sums
        if bool((counts <= 0).any()):
            # rare: one more pass to find the points that the current centres explain worst
            far = self._source.map_reduce(lambda c: _farthest(c, P, self._scale, self._rows))
            counts, sums, _ = _relocate_empty(counts, sums, far)
        centers = P.centers.clone()
        full = counts > 0
        centers[full] = sums[full] / counts[full, None]
        return _Centers.of(centers, P.work.dtype)

    def _lower_bound(self, stats, P):
        """Minus the inertia of the labels in ``stats`` under the centres ``P`` (working units).

        Σ_n w‖x_n − c_z‖² = Σ w‖x‖² + Σ_k (N_k‖c_k‖² − 2 c_kᵀS_k), with S_k the weighted sum
        of cluster k's rows: no second pass over the rows is needed.
        """
        C = P.centers
        part = float((stats.counts * (C * C).sum(1)).sum() - 2.0 * (C * stats.sums).sum())
        return -(part + self._sum_x_sq)

    def _em_converged(self, lower_bounds, old: _Centers, new: _Centers, tol):
        shift = float(((new.centers - old.centers) ** 2).sum())
        return shift <= self._tol_scaled

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
        self._K = K
        self._rows = _block_rows(K, self._device())
        n_features = X.shape[1] if getattr(X, "ndim", 0) == 2 else 1
        source, _ = self._make_source(X, sample_weight,
                                      block_rows=_chunk_rows(K, n_features, self._device()))
        if isinstance(source, InMemorySource) and not source.X.is_contiguous():
            source.X = source.X.contiguous()  # once, rather than a copy per block and iteration
        n = source.n_samples
        if n < K:
            raise ValueError(f"n_samples={n} should be >= n_clusters={K}.")
        self._fit_init_centers = self._array_init(K, source.n_features)
        if self._fit_init_centers is not None:
            n_init = 1
        summary, self._scale, shift = summarize_source(source)
        if summary.n <= 0:
            raise ValueError(
                "sample weights sum to zero; at least one sample needs a positive weight."
            )
        self._tol_scaled = self.tol * float(summary.variance().mean())
        # Σ w‖x‖² from the shifted moments: Σ w (x−s)² + 2 sᵀ Σ w (x−s) + ‖s‖² Σ w
        self._sum_x_sq = float(
            (summary.sumsq + 2 * shift * summary.sum + shift * shift * summary.n).sum()
        )
        rng = check_random_state(self.random_state)
        self._source = source
        fast = _lloyd.available and source.device is not None and source.device.type == "cpu"
        try:
            with _lloyd.one_blas_thread() if fast else contextlib.nullcontext():
                result = run_em(
                    self, source, n_init=n_init, max_iter=self.max_iter, tol=self.tol, rng=rng,
                    verbose=self.verbose, warn=False,
                )
            # one labelling pass with the final centres, the same computation as predict()
            P = result.params
            parts = source.map_chunks(lambda c: (*_label_chunk(c, P, self._scale, self._rows), c.w))
        finally:
            del self._source, self._fit_init_centers
        labels = torch.cat([p[0] for p in parts])
        d2 = torch.cat([p[1] for p in parts])
        w = None if parts[0][2] is None else torch.cat([p[2] for p in parts])
        self._set_fitted(result, source.dtype, summary.n, labels, d2, w)
        return self

    def _set_fitted(self, result, dtype, n_weight, labels, d2, w):
        K = self._K
        # divide twice: scale² alone can underflow for huge data
        inertia = float(d2.sum() if w is None else w @ d2) / self._scale / self._scale
        if not math.isfinite(inertia):
            raise ValueError(
                "the inertia overflows float64 at the scale of X; rescale X (e.g. divide it "
                "by its largest absolute value) before clustering."
            )
        centers = to_numpy((result.params.centers / self._scale).to(dtype))
        check_finite_result("cluster_centers_", centers, "rescale X.")
        self.cluster_centers_ = centers
        self.labels_ = to_numpy(labels)
        self.inertia_ = float(inertia)
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        self.lower_bounds_ = np.asarray(result.lower_bounds, dtype=np.float64) / self._scale / self._scale
        self.n_samples_seen_ = float(n_weight)
        self.counts_ = to_numpy(torch.bincount(labels, weights=w, minlength=K).to(torch.float64))
        self.n_steps_ = 0
        n_distinct = int(np.count_nonzero(self.counts_ > 0))
        if n_distinct < self._K:
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than n_clusters "
                f"({self._K}). Possibly due to duplicate points in X.",
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
            self._K = K
            Xt, _ = self._check_X(X, reset=True)
            self._random_state_ = check_random_state(self.random_state)
        else:
            K = self.cluster_centers_.shape[0]
            Xt, _ = self._check_X(X, reset=False)
        w = None if sample_weight is None else torch.as_tensor(
            check_sample_weight(sample_weight, Xt.shape[0]), device=Xt.device
        )
        scale = working_scale(abs_max(Xt), Xt.dtype)
        if first:
            if Xt.shape[0] < K:
                raise ValueError(
                    f"the first partial_fit batch has n_samples={Xt.shape[0]}, but it must "
                    f"hold at least n_clusters={K} rows to initialise the centres."
                )
            src = InMemorySource(Xt, w)
            C = self._array_init(K, Xt.shape[1])
            if C is None and self.init == "random":
                idx = self._random_state_.permutation(Xt.shape[0])[:K]
                C = Xt[torch.as_tensor(idx)].to(torch.float64)
            elif C is None:
                C, _ = kmeans_plusplus(src, K, self._random_state_, scale=scale)
                C = C / scale
            self.cluster_centers_ = to_numpy(C.to(Xt.dtype))
            self.counts_ = np.zeros(K)
            self.n_steps_ = 0
            self.n_samples_seen_ = 0.0
            self.n_iter_ = 0
            self.converged_ = False
        centers = torch.as_tensor(self.cluster_centers_, device=Xt.device).to(torch.float64)
        P = _Centers.of(centers * scale, Xt.dtype)
        stats = _kmeans_stats(Chunk(Xt, w, 0), P, scale, _block_rows(K, Xt.device))
        counts = torch.as_tensor(self.counts_, device=Xt.device) + stats.counts
        batch = stats.counts > 0
        sums = stats.sums / scale
        centers[batch] += (sums[batch] - stats.counts[batch, None] * centers[batch]) / counts[batch, None]
        self.cluster_centers_ = to_numpy(centers.to(Xt.dtype))
        check_finite_result("cluster_centers_", self.cluster_centers_, "rescale X.")
        self.counts_ = to_numpy(counts)
        self.n_steps_ += 1
        self.n_samples_seen_ += float(stats.n)
        self.labels_, d2 = self._labels_d2(Xt)
        self.labels_ = to_numpy(self.labels_)
        self.inertia_ = float(d2.sum() if w is None else w @ d2)
        return self

    # --- queries ----------------------------------------------------------------------
    def _labels_d2(self, Xt: torch.Tensor, distances: bool = True):
        """Labels (n,) and squared distances to the assigned centres (n,), float64 (None
        unless ``distances``).

        The same chunks, blocks and kernels as the labelling pass of ``fit``, so that
        ``predict(X_train)`` reproduces ``labels_`` exactly.
        """
        amax = abs_max(Xt)
        if not np.isfinite(amax):  # callers may leave NaN/inf to this pass (predict does)
            check_finite_data(self, Xt)
        scale = working_scale(amax, Xt.dtype) if Xt.numel() else 1.0
        C = torch.as_tensor(self.cluster_centers_, device=Xt.device).to(torch.float64) * scale
        P = _Centers.of(C, Xt.dtype)
        K, d = C.shape
        rows = _block_rows(K, Xt.device)
        parts = InMemorySource(Xt, chunk_rows=_chunk_rows(K, d, Xt.device)).map_chunks(
            lambda c: _label_chunk(c, P, scale, rows, distances)
        )
        labels = torch.cat([p[0] for p in parts])
        if not distances:
            return labels, None
        return labels, torch.cat([p[1] for p in parts]) / (scale * scale)

    def predict(self, X):
        """Index of the nearest centre for each row: (n_samples,) int64."""
        self._check_fitted()
        # NaN and infinity are caught by the scan for the largest |x| that labelling makes
        Xt, kind = self._check_X(X, reset=False, finite=False)
        return self._out(self._labels_d2(Xt, distances=False)[0], kind)

    def fit_predict(self, X, y=None, sample_weight=None):
        """``fit(X)`` then the training labels (equal to ``predict(X)``)."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distance of each row to each centre: (n_samples, n_clusters), X's dtype."""
        self._check_fitted()
        Xt, kind = self._check_X(X, reset=False)
        scale = working_scale(abs_max(Xt), Xt.dtype) if Xt.numel() else 1.0
        C = torch.as_tensor(self.cluster_centers_, device=Xt.device).to(Xt.dtype) * scale
        out = []
        for _, Xb in split_rows(Xt, _block_rows(C.shape[0], Xt.device)):
            out.append(_sq_distances(Xb * scale if scale != 1.0 else Xb, C).sqrt_() / scale)
        return self._out(torch.cat(out), kind)

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def inverse_transform(self, Z):
        """Centres of the given labels (n,) or of the nearest centres for distances (n, K).

        Returns
        -------
        X_rec : ndarray of shape (n_samples, n_features)
            The K-means reconstruction of each row: its cluster's centre.
        """
        self._check_fitted()
        K = self.cluster_centers_.shape[0]
        kind_torch = isinstance(Z, torch.Tensor)
        Zn = to_numpy(Z)
        if Zn.ndim == 2:
            if Zn.shape[1] != K:
                raise ValueError(
                    f"Z has {Zn.shape[1]} columns, but KMeans has {K} clusters; pass the "
                    "output of transform() or 1-D labels."
                )
            labels = np.argmin(Zn, axis=1)
        elif Zn.ndim == 1:
            if Zn.size and (not np.all(np.isfinite(Zn.astype(float))) or np.any(Zn != np.round(Zn))
                            or Zn.min() < 0 or Zn.max() >= K):
                raise ValueError(f"labels must be integers in [0, {K - 1}].")
            labels = Zn.astype(np.int64)
        else:
            raise ValueError(f"Z must be 1-D labels or 2-D distances, got {Zn.ndim} dimensions.")
        out = self.cluster_centers_[labels]
        return torch.as_tensor(out, device=Z.device) if kind_torch else out

    def score(self, X, y=None, sample_weight=None):
        """Minus the inertia of ``X`` under the fitted centres (higher is better)."""
        self._check_fitted()
        Xt, _ = self._check_X(X, reset=False)
        _, d2 = self._labels_d2(Xt)
        if sample_weight is None:
            return -float(d2.sum())
        w = torch.as_tensor(check_sample_weight(sample_weight, Xt.shape[0]), device=d2.device)
        return -float(w @ d2)

    def to_gaussian_mixture(self):
        """The Gaussian mixture that K-means is the σ → 0 limit of, at the fitted σ.

        Equal weights 1/K, means at the centres and one shared spherical variance
        σ² = inertia / (N·D), the maximum-likelihood variance given the hard assignments.

        Returns
        -------
        GaussianMixture
            Fitted, with ``covariance_type="spherical"``.
        """
        self._check_fitted()
        from ..mixture import GaussianMixture

        K, D = self.cluster_centers_.shape
        var = self.inertia_ / max(self.n_samples_seen_ * D, np.finfo(float).tiny)
        var = max(var, np.finfo(np.float64).tiny)
        gm = GaussianMixture(K, covariance_type="spherical", device=self.device)
        gm._set_params_from(
            weights=np.full(K, 1.0 / K),
            means=self.cluster_centers_.astype(np.float64),
            covariances=np.full(K, var),
            n_features=D,
        )
        return gm

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[0]
