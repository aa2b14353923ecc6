"""Seeding K-means: greedy k-means++ (Arthur & Vassilvitskii, 2007) over any data source."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._backend import to_numpy
from .._validation import is_sparse
from ..data import InMemorySource, scaled
from ._sparse import row_sq_norms, sq_distances

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
    distances = _InitDistances(source)
    closest = to_numpy(distances(C)[:, 0])
    pot = float(closest @ w)
    for _ in range(1, n_clusters):
        rand = rng.uniform(size=n_local_trials) * pot
        mass = w * closest  # (n,) the D² weights; a row of weight 0 has none
        # side="right" never lands on a row of zero mass (a flat step of the cumulative
        # sum), not even for a draw of exactly 0; a draw past the last step by rounding goes
        # to the last row with mass
        cand = np.searchsorted(np.cumsum(mass), rand, side="right")
        has_mass = np.flatnonzero(mass > 0)
        cand = np.clip(cand, None, has_mass[-1] if has_mass.size else n - 1)
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
