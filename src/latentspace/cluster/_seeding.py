"""Seeding K-means: greedy k-means++ (Arthur & Vassilvitskii, 2007) over any data source."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._backend import to_numpy
from .._memory import available_bytes
from .._validation import is_sparse
from ..data import InMemorySource, scaled
from . import _lloyd
from ._sparse import row_sq_norms, sq_distances

try:  # the compiled seeding pass; without numba the array route below does the same work
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None  # type: ignore[assignment]

__all__ = ["kmeans_plusplus", "random_rows", "weighted_rows"]


class _InitDistances:
    """Squared distances (N, m) of every row to a few rows ``C`` (m, d, float64), in row
    order, as float64.

    ‖x − c‖² = ‖x‖² + ‖c‖² − 2 xᵀc with ‖x‖² computed once per chunk (in float64) and kept,
    and the products in the data's precision, so that the seeding's repeated passes neither
    convert the data to float64 nor recompute its norms (as scikit-learn's seeding does).
    """

    def __init__(self, source):
        self.source = source
        self._norms: dict[int, Any] = {}

    def __call__(self, C: torch.Tensor) -> torch.Tensor:
        def f(chunk):
            if is_sparse(chunk.X):  # CSR rows: the distances in float64 (see _sparse)
                xsq = self._norms.get(chunk.offset)
                if xsq is None:
                    xsq = row_sq_norms(chunk.X)
                    self._norms[chunk.offset] = xsq
                return torch.from_numpy(sq_distances(chunk.X, C.numpy(), xsq))
            xsq = self._norms.get(chunk.offset)
            if xsq is None:
                X64 = chunk.X.to(torch.float64)
                xsq = (X64 * X64).sum(1)
                self._norms[chunk.offset] = xsq
            cross = (chunk.X @ C.to(chunk.X.dtype).T).to(torch.float64)
            d2 = xsq[:, None] + (C * C).sum(1)[None, :] - 2.0 * cross
            return d2.clamp_min_(0)

        return torch.cat(self.source.map_chunks(f))


_TRIAL_BLOCK = 4096  # rows per block of the compiled pass; its partial sums are added in order

if numba is not None:

    @numba.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def _trial_kernel(X, C, closest, w, use_w, out, pots):  # pragma: no cover
        """out[j, i] = min(closest[i], ‖x_i − c_j‖²) and pots[b, j] = Σ_{i in block b} w_i out[j, i]."""
        n, d = X.shape
        m = C.shape[0]
        for b in numba.prange(pots.shape[0]):
            lo = b * _TRIAL_BLOCK
            hi = min(n, lo + _TRIAL_BLOCK)
            part = np.zeros(m)
            for i in range(lo, hi):
                ci = closest[i]
                wi = w[i] if use_w else 1.0
                for j in range(m):
                    s = 0.0
                    for k in range(d):
                        t = X[i, k] - C[j, k]
                        s += t * t
                    v = s if s < ci else ci
                    out[j, i] = v
                    part[j] += wi * v
            for j in range(m):
                pots[b, j] = part[j]


def _dense_rows(source):
    """(rows as a C-ordered numpy array in data units, the frame's offset or None) when the
    compiled pass can read ``source`` directly: dense rows in memory on the CPU, read at
    scale 1 (an offset alone does not change differences of rows); otherwise None."""
    if numba is None or not _lloyd.available:
        return None
    offset = None
    frame = getattr(source, "frame", None)
    if frame is not None:
        if frame.scale != 1.0:
            return None
        offset, source = frame.offset, source.source
    if not isinstance(source, InMemorySource) or not isinstance(source.X, torch.Tensor) \
            or source.X.device.type != "cpu" or source.X.layout != torch.strided \
            or source.X.dtype not in (torch.float32, torch.float64):
        return None
    X = source.X.numpy()
    # the pass writes two (trials, n) float64 buffers
    if 2 * 16 * 8 * X.shape[0] > available_bytes() // 4:
        return None
    return X, offset


class _FusedTrials:
    """The seeding's pass over the rows, compiled: for m candidate centres, each row's
    distance to its nearest centre if that candidate were added, and each candidate's
    potential, in one read of the data and with the differences taken directly (no
    cancellation of ‖x‖² + ‖c‖² − 2xᵀc). Two (m, n) buffers alternate, so that the chosen candidate's row of distances becomes the
    new ``closest`` without a copy."""

    def __init__(self, X: np.ndarray, w: np.ndarray | None, max_trials: int):
        self.X, self.w = np.ascontiguousarray(X), w
        n = X.shape[0]
        self._buffers = [np.empty((max_trials, n)), np.empty((max_trials, n))]
        self._turn = 0
        self._pots = np.empty(((n + _TRIAL_BLOCK - 1) // _TRIAL_BLOCK, max_trials))

    def __call__(self, C: np.ndarray, closest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distances (m, n), each block's potential (blocks, m)) for candidates ``C`` (m, d)
        in data units; a candidate's potential is its column's sum."""
        m = C.shape[0]
        out = self._buffers[self._turn][:m]
        self._turn ^= 1
        pots = self._pots[:, :m]
        w = self.w if self.w is not None else np.ones(1)
        with _lloyd.one_blas_thread():
            _trial_kernel(self.X, np.ascontiguousarray(C, dtype=np.float64), closest, w,
                          self.w is not None, out, pots)
        return out, pots

    def draw(self, rand: np.ndarray, closest: np.ndarray, mass: np.ndarray) -> np.ndarray:
        """Rows drawn with probability ∝ w·closest for uniform draws ``rand`` on [0, total),
        given each block's mass (the block sums of w·closest): a block by the cumulative sum
        of the block masses, then a row by that block's own, so that no cumulative sum over
        all rows is formed (it took 16% of the seeding at 10⁶ rows of 16 features)."""
        edges = np.cumsum(mass)
        blocks = _draw(edges, mass, rand)
        rows = np.empty(rand.shape[0], dtype=np.int64)
        for t, b in enumerate(blocks):
            lo = int(b) * _TRIAL_BLOCK
            part = closest[lo : lo + _TRIAL_BLOCK]
            if self.w is not None:
                part = self.w[lo : lo + _TRIAL_BLOCK] * part
            below = edges[b - 1] if b > 0 else 0.0
            rows[t] = lo + _draw(np.cumsum(part), part, rand[t : t + 1] - below)[0]
        return rows


def _draw(mass_cumsum: np.ndarray, mass: np.ndarray, rand: np.ndarray) -> np.ndarray:
    """Rows drawn with probability ∝ mass for uniform draws ``rand`` on [0, total)."""
    # side="right" never lands on a row of zero mass (a flat step of the cumulative sum), not
    # even for a draw of exactly 0; a draw past the last step by rounding goes to the last
    # row with mass
    cand = np.searchsorted(mass_cumsum, rand, side="right")
    n = mass.shape[0]
    if (cand >= n).any():
        has_mass = np.flatnonzero(mass > 0)
        cand = np.minimum(cand, has_mass[-1] if has_mass.size else n - 1)
    return cand


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
        Working scale of the data: the rows are read multiplied by it, and the centres
        returned are in these units.
    n_local_trials : int or None

    Returns
    -------
    centers : (n_clusters, n_features) float64 tensor
    indices : (n_clusters,) ndarray of int64, the rows chosen
    """
    if isinstance(source, torch.Tensor):
        source = InMemorySource(source)
    source = scaled(source, scale)
    n = source.n_samples
    w = source.take_weights(np.arange(n))
    w = np.ones(n) if w is None else to_numpy(w).astype(np.float64)
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    first = int(rng.choice(n, p=w / w.sum()))
    indices = [first]
    C = source.take([first]).to(torch.float64)
    centers = [C[0]]
    dense = _dense_rows(source)
    if dense is not None:
        X, offset = dense
        unit = source.take_weights(np.arange(n)) is None
        trials = _FusedTrials(X, None if unit else w, max(1, n_local_trials))
        data_units = (lambda P: P) if offset is None else (lambda P: P + offset.numpy())
        out, block_pots = trials(data_units(C.numpy()), np.full(n, np.inf))
        closest, mass = out[0], block_pots[:, 0].copy()
        for _ in range(1, n_clusters):
            cand = trials.draw(rng.uniform(size=n_local_trials) * mass.sum(), closest, mass)
            rows = source.take(cand).to(torch.float64)
            out, block_pots = trials(data_units(rows.numpy()), closest)
            best = int(np.argmin(block_pots.sum(0)))
            closest, mass = out[best], block_pots[:, best].copy()
            indices.append(int(cand[best]))
            centers.append(rows[best])
        return torch.stack(centers), np.asarray(indices, dtype=np.int64)
    distances = _InitDistances(source)
    closest = to_numpy(distances(C)[:, 0])
    pot = float(closest @ w)
    for _ in range(1, n_clusters):
        rand = rng.uniform(size=n_local_trials) * pot
        mass = w * closest  # (n,) the D² weights; a row of weight 0 has none
        cand = _draw(np.cumsum(mass), mass, rand)
        rows = source.take(cand).to(torch.float64)
        d = np.minimum(closest[:, None], to_numpy(distances(rows)))
        pots = w @ d
        best = int(np.argmin(pots))
        pot, closest = float(pots[best]), d[:, best].copy()
        indices.append(int(cand[best]))
        centers.append(rows[best])
    return torch.stack(centers), np.asarray(indices, dtype=np.int64)


def random_rows(source, K: int, rng: np.random.RandomState) -> np.ndarray:
    """Indices of ``K`` distinct rows of ``source`` drawn at random: ``init="random"``.

    Unweighted data: a uniform draw. Weighted data: each row drawn with probability
    proportional to its sample weight, without replacement, so that a row of weight 0 is never
    a centre (as scikit-learn draws them).
    """
    n = source.n_samples
    w = source.take_weights(np.arange(n))
    if w is None:
        return rng.permutation(n)[:K]
    return weighted_rows(w, K, rng, "init='random'", "n_clusters",
                         "give more rows positive weight or lower n_clusters")


def weighted_rows(w, K: int, rng: np.random.RandomState, what: str, count: str,
                  fix: str) -> np.ndarray:
    """``K`` distinct row indices drawn with probability ∝ ``w`` (n,) without replacement, so
    that a row of weight 0 is never drawn; ``ValueError`` when fewer than K rows have positive
    weight (``what`` names the initialisation, ``count`` the parameter, ``fix`` the remedy)."""
    w = to_numpy(w).astype(np.float64)
    positive = int(np.count_nonzero(w > 0))
    if positive < K:
        raise ValueError(
            f"{what} draws {count}={K} distinct rows of positive sample_weight, but only "
            f"{positive} row(s) have one; {fix}."
        )
    return rng.choice(w.shape[0], size=K, replace=False, p=w / w.sum())
