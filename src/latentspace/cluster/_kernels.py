"""K-means' numerical kernels: distances, nearest centres, the per-cluster statistics of a
pass, labelling, the farthest points and empty-cluster relocation.

Every kernel works on chunks of a source in the units it is given (the estimator hands it a
view scaled by the working scale); distances of a block come from one matrix product,
‖x − μ‖² = ‖x‖² − 2 xᵀμ + ‖μ‖², and on the CPU the compiled Lloyd step (``_lloyd``) does a
whole chunk in one parallel pass where numba is available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validation import is_sparse
from ..data import Chunk, split_rows
from ..em import FarthestPoints, Stats
from . import _lloyd
from ._sparse import compiled_sparse_stats, row_sq_norms, sparse_labels, sparse_sums

__all__ = ["Centers", "KMeansStats", "block_rows", "chunk_rows", "exact_d2", "farthest",
           "kmeans_stats", "label_chunk", "nearest", "refine_small", "relocate_empty", "sq_distances"]

_BLOCK_ELEMS = 1 << 16  # rows × clusters per block: the (rows, K) products stay in cache
_GPU_BLOCK_ELEMS = 1 << 24


def sq_distances(X: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """‖x_n − c_k‖² for every pair, clipped at 0: (n, k) from X (n, d) and C (k, d)."""
    d2 = torch.addmm((C * C).sum(1)[None, :], X, C.T, alpha=-2.0)
    d2 += (X * X).sum(1, keepdim=True)
    return d2.clamp_min_(0)


def refine_small(X, C: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """``d2`` (n, K) from the expansion, with its small entries recomputed from differences.

    The expansion ‖x‖² − 2 xᵀc + ‖c‖² loses about eps·(‖x‖² + ‖c‖²) to cancellation, which
    is all of a distance near 0 (a point on its centre would be at √eps, not 0). Entries below
    ``t·(‖x‖² + ‖c‖²)`` (t = 1e-4 in float64, 1e-2 in float32, so that the expansion's relative
    error elsewhere stays below ~1e-12 and ~1e-5) are recomputed exactly; they are few except
    for data much tighter than their distance to the origin. ``X`` (n, d) is a tensor or CSR
    rows; written into ``d2`` in place and returned.
    """
    sparse_rows = is_sparse(X)
    if sparse_rows:
        xsq = torch.from_numpy(row_sq_norms(X))
    else:
        xsq = (X.to(torch.float64) ** 2).sum(1)
    C64 = C.to(torch.float64)
    csq = (C64 * C64).sum(1)
    t = 1e-4 if d2.dtype == torch.float64 else 1e-2
    r, k = torch.nonzero(d2.to(torch.float64) <= t * (xsq[:, None] + csq[None, :]), as_tuple=True)
    step = max(1, (1 << 20) // max(C.shape[1], 1))  # bounded (m, d) differences
    for i in range(0, r.numel(), step):
        ri, ki = r[i : i + step], k[i : i + step]
        rows = (torch.from_numpy(X[ri.numpy()].toarray()).to(torch.float64) if sparse_rows
                else X[ri].to(torch.float64))
        diff = rows - C64[ki]
        d2[ri, ki] = (diff * diff).sum(1).to(d2.dtype)
    return d2


def block_rows(n_clusters: int, device: torch.device | None = None) -> int:
    """Rows per block. With several threads every array operation opens a parallel region
    whose start and end cost the same whatever its size, so blocks are 4× larger there; on a
    GPU each operation is a kernel launch, so blocks hold up to 2^24 products."""
    if device is not None and device.type != "cpu":
        elems = _GPU_BLOCK_ELEMS
    else:
        elems = _BLOCK_ELEMS if torch.get_num_threads() == 1 else 4 * _BLOCK_ELEMS
    return max(256, elems // max(n_clusters, 1))


def chunk_rows(n_clusters: int, n_features: int, device: torch.device | None = None) -> int:
    """Rows per chunk handed over by a source: up to 2^22 values (32 MiB in float64); each
    pass splits chunks further into cache-sized blocks. ``fit``'s labelling pass and
    ``predict`` cut the data alike, so that they label every row identically."""
    return max(block_rows(n_clusters, device), (1 << 24) // max(n_features, 1))


_NUMPY = {torch.float64: np.float64, torch.float32: np.float32}


@dataclass(frozen=True)
class Centers:
    """Centres in the working units: float64 master copy and the compute-dtype copies."""

    centers: torch.Tensor  # (K, D) float64
    work: torch.Tensor  # (K, D) compute dtype
    m2t: torch.Tensor  # (D, K) −2 cᵀ, contiguous, compute dtype
    sq: torch.Tensor  # (K,) ‖c_k‖² in the compute dtype
    m2: torch.Tensor  # (K, D) −2 c, contiguous, compute dtype (the compiled step's operand)

    @staticmethod
    def of(centers64: torch.Tensor, dtype: torch.dtype) -> "Centers":
        # −2 is a power of two: X @ (−2cᵀ) rounds exactly like −2 (X @ cᵀ)
        if centers64.device.type == "cpu" and dtype in _NUMPY:  # numpy: a few µs less per iteration than torch
            work_np = centers64.numpy().astype(_NUMPY[dtype], copy=False)
            m2 = -2.0 * work_np
            return Centers(centers64, torch.from_numpy(work_np),
                           torch.from_numpy(np.ascontiguousarray(m2.T)),
                           torch.from_numpy(np.einsum("kd,kd->k", work_np, work_np)),
                           torch.from_numpy(m2))
        work = centers64.to(dtype)
        m2t = -2.0 * work
        return Centers(centers64, work, m2t.T.contiguous(), (work * work).sum(1), m2t)


def nearest(X: torch.Tensor, P: Centers) -> torch.Tensor:
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

    counts: torch.Tensor = None  # type: ignore[assignment]  # (K,) float64
    sums: torch.Tensor = None  # type: ignore[assignment]  # (K, D) float64


def _blocks(chunk: Chunk, rows: int):
    """(X block, its weights or None, its global offset) for blocks of ``rows`` rows."""
    for start, Xb in split_rows(chunk.X, rows):
        wb = None if chunk.w is None else chunk.w[start : start + Xb.shape[0]]
        yield Xb, wb, chunk.offset + start


def _compiled_step(chunk: Chunk, P: Centers, labels: bool):
    """(labels or None, counts, sums) of a chunk by the compiled step, or None where it does
    not apply (GPU, no numba) or cannot be built on this machine (then it is switched off,
    with a warning, for the rest of the process)."""
    if chunk.X.device.type != "cpu" or not _lloyd.available:
        return None
    w = None if chunk.w is None or labels else chunk.w.numpy()
    try:
        return _lloyd.lloyd_stats(chunk.X.numpy(), P.m2.numpy(), P.sq.numpy(), w,
                                  torch.get_num_threads(), labels=labels)
    except _lloyd.CompileError as exc:  # e.g. a numba that cannot target this machine
        _lloyd.disable(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None


def kmeans_stats(chunk: Chunk, P: Centers, rows: int) -> KMeansStats:
    """Counts and weighted sums per cluster of one chunk under the centres ``P``."""
    K, D = P.work.shape
    if is_sparse(chunk.X):
        w = None if chunk.w is None else chunk.w.numpy()
        out = compiled_sparse_stats(chunk.X, P.centers.numpy(), w, torch.get_num_threads())
        if out is None:
            lab, _ = sparse_labels(chunk.X, P.centers.numpy())
            out = sparse_sums(chunk.X, lab, w, K)
        counts_np, sums_np = out
        counts = torch.from_numpy(counts_np)
        return KMeansStats(n=float(counts.sum()), loglik=0.0, counts=counts,
                           sums=torch.from_numpy(sums_np))
    out = _compiled_step(chunk, P, labels=False)
    if out is not None:
        counts = torch.from_numpy(out[1])
        return KMeansStats(n=float(counts.sum()), loglik=0.0, counts=counts,
                           sums=torch.from_numpy(out[2]))
    total: Any = None
    for Xb, wb, _ in _blocks(chunk, rows):
        labels = nearest(Xb, P)
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


def exact_d2(X: torch.Tensor, C: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """‖x_n − c_{label_n}‖² computed from the difference (no cancellation): (n,) float64."""
    diff = X.to(torch.float64) - C[labels]
    return (diff * diff).sum(1)


def label_chunk(chunk: Chunk, P: Centers, rows: int, distances: bool = True):
    """Labels (n,) and exact squared distances (n,) of one chunk (the distances None unless
    asked for). Sparse rows give their distances from the expansion, in float64."""
    if is_sparse(chunk.X):
        lab_np, d2_np = sparse_labels(chunk.X, P.centers.numpy())
        return torch.from_numpy(lab_np), (torch.from_numpy(d2_np) if distances else None)
    out = _compiled_step(chunk, P, labels=True)
    if out is not None:
        lab = torch.from_numpy(out[0])
        if not distances:
            return lab, None
        return lab, torch.from_numpy(_lloyd.assigned_d2(chunk.X.numpy(), P.centers.numpy(),
                                                        out[0]))
    labels, d2 = [], []
    for Xb, _, _ in _blocks(chunk, rows):
        lab = nearest(Xb, P)
        labels.append(lab)
        if distances:
            d2.append(exact_d2(Xb, P.centers, lab))
    return torch.cat(labels), (torch.cat(d2) if distances else None)


def farthest(chunk: Chunk, P: Centers, rows: int) -> FarthestPoints:
    """The K rows of a chunk farthest from their nearest centre (for empty-cluster moves)."""
    K = P.work.shape[0]
    if is_sparse(chunk.X):
        return _farthest_sparse(chunk, P)
    total: Any = None
    for Xb, wb, offset in _blocks(chunk, rows):
        labels = nearest(Xb, P)
        d2 = exact_d2(Xb, P.centers, labels)
        w = torch.ones_like(d2) if wb is None else wb
        top = torch.topk(d2 * (w > 0), min(K, Xb.shape[0])).indices  # weightless rows stay
        index = torch.arange(Xb.shape[0], device=Xb.device)[top] + offset
        far = FarthestPoints.select(
            d2[top], index, Xb[top].to(torch.float64), w[top], labels[top], K
        )
        total = far if total is None else total + far
    return total


def _farthest_sparse(chunk: Chunk, P: Centers) -> FarthestPoints:
    """:func:`farthest` for a chunk of CSR rows."""
    K = P.work.shape[0]
    lab_np, d2_np = sparse_labels(chunk.X, P.centers.numpy())
    d2, labels = torch.from_numpy(d2_np), torch.from_numpy(lab_np)
    w = torch.ones_like(d2) if chunk.w is None else chunk.w
    top = torch.topk(d2 * (w > 0), min(K, d2.shape[0])).indices
    Xs: Any = chunk.X  # a CSR block here
    rows = torch.from_numpy(Xs[top.numpy()].toarray().astype("float64"))
    return FarthestPoints.select(d2[top], top + chunk.offset, rows, w[top], labels[top], K)


def relocate_empty(counts: torch.Tensor, sums: torch.Tensor, far: FarthestPoints):
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
