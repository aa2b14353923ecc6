"""PCA's sufficient statistics: count, mean and scatter, in one pass and mergeable.

The covariance route, ``partial_fit``, chunked sources and Dask blocks all reduce data to
:class:`Moments` (merged by Chan et al.'s exact update); :func:`scaled_moments` adds the one
rescaling that keeps the squares of extreme data representable.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch

from .._math import col_sums, gram_upper, symmetrize, working_scale
from ..cluster._blas import intel_cpu, mkl_one_thread

__all__ = ["BlockMoments", "Moments", "all_finite", "centred", "eigh_pool", "moments", "product_pool",
           "scaled_moments"]


class Moments:
    """Count, mean and scatter Σ(x − μ)(x − μ)ᵀ of a set of rows, in float64.

    ``a + b`` merges two sets exactly (Chan, Golub & LeVeque, 1979):
    M₂ = M₂ᵃ + M₂ᵇ + δδᵀ nᵃnᵇ / n, δ = μᵇ − μᵃ, so no approximation accumulates. It is the one
    merge behind ``partial_fit``, chunked sources and Dask blocks.

    Attributes
    ----------
    n : int
    mean : (d,) float64 tensor
    scatter : (d, d) float64 tensor
    """

    def __init__(self, n: int, mean: torch.Tensor, scatter: torch.Tensor):
        self.n, self.mean, self.scatter = n, mean, scatter

    @classmethod
    def of(cls, X: torch.Tensor, scale: float = 1.0) -> "Moments":
        """The moments of the rows of ``X * scale`` (one pass, see :func:`moments`)."""
        mean, scatter = moments(X, scale)
        return cls(X.shape[0], mean, scatter)

    def __add__(self, other: "Moments") -> "Moments":
        n = self.n + other.n
        delta = other.mean - self.mean
        return Moments(n, self.mean + delta * (other.n / n),
                       self.scatter + other.scatter + torch.outer(delta, delta) * (self.n * other.n / n))


class BlockMoments:
    """``chunk -> Moments.of(chunk.X, scale)``: picklable, for a source's ``map_reduce``."""

    def __init__(self, scale: float):
        self.scale = scale

    def __call__(self, chunk) -> Moments:
        return Moments.of(chunk.X, self.scale)


def all_finite(t: torch.Tensor) -> bool:
    # numpy on the CPU: a first torch op right after BLAS work waits for torch's thread pool
    return bool(np.isfinite(t.numpy()).all()) if t.device.type == "cpu" else bool(torch.isfinite(t).all())


def scaled_moments(moments_at: Callable[[float], tuple[torch.Tensor, torch.Tensor]],
                   check_input: Callable[[], None], amax: Callable[[], float],
                   dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mean, scatter, scale) of the covariance route, rescaled only for extreme data.

    ``moments_at(scale)`` is one pass of sufficient statistics. Ordinary data need no
    rescaling, so the first pass is unscaled; a non-finite result is first blamed on the
    input (``check_input`` raises for NaN/inf), otherwise finite values overflowed, and
    moments outside (1e-150, 1e150) are taken again at the working scale
    (:func:`latentspace._math.working_scale`) of ``amax()``, the largest |x|, for data of
    ``dtype``.
    """
    scale = 1.0
    mean, scatter = moments_at(scale)
    finite = all_finite(scatter) and all_finite(mean)
    if not finite:
        check_input()
    peak = float(torch.diagonal(scatter).max()) if finite else float("inf")
    if not 1e-150 < peak < 1e150:
        a = amax()
        scale = working_scale(a, dtype)
        mean, scatter = moments_at(scale)
    return mean, scatter, scale


def centred(X: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
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


def moments(X: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of sufficient statistics -> (mean (d,), scatter Σ(x − μ)(x − μ)ᵀ (d, d)), float64.

    Data on the CPU take the shortest route when it is safe: BLAS ``syrk`` for XᵀX straight
    from the caller's array (float32 in row blocks, each block's product summed in float64)
    and ``gemv`` for Σx, then M₂ = XᵀX − n μμᵀ. That subtraction cancels digits in proportion
    to max_j (σ_j² + μ_j²) / σ_j²; where that factor exceeds what the precision affords (10⁴
    in float64, 4 in float32: a mean far from zero against its spread, e.g. a constant column
    of large values), the statistics are computed again with the shifted pass, which has no
    cancellation.
    """
    if scale == 1.0 and X.device.type == "cpu" and not _pilot_cancels(X.numpy()):
        raw = _moments_raw(X)
        if raw is not None:
            return raw
    return _moments_shifted(X, scale)


def _pilot_cancels(A: np.ndarray) -> bool:
    """Whether the first rows of float32 data already show more cancellation than the raw
    route affords (a mean far from zero against the spread: common in float32, whose limit
    is 4), so that its pass would be thrown away. Float64 data go to the raw route, which
    checks its own cancellation exactly."""
    if A.shape[0] < 2 or A.dtype != np.float32:
        return False
    with np.errstate(all="ignore"):
        head = A[:256]
        mean, var = head.mean(0, dtype=np.float64), head.var(0, dtype=np.float64)
        ratio = np.where(var > 0, (var + mean * mean) / np.where(var > 0, var, 1.0), 1.0)
        return bool(ratio.max() > _CANCELLATION_LIMIT[A.dtype])


# largest (σ² + μ²) / σ² accepted in XᵀX − n μμᵀ: about 4 of float64's 16 digits lost; in
# float32, whose products carry 7, no more than a fraction of one
_CANCELLATION_LIMIT = {np.dtype(np.float64): 1e4, np.dtype(np.float32): 4.0}
_F32_BLOCK_ROWS = 4096  # float32 products are summed in float64 every this many rows (or
# every 2²⁰ entries for narrow data, at most 65536 rows, where 4096 rows are too short a product)
# torch's MKL runs the tall product XᵀX as a general product at close to the core's peak on
# Intel processors, well ahead of OpenBLAS's syrk at half the flops; elsewhere (an AMD EPYC
# measured: MKL 1.1–2.8x slower than OpenBLAS) and without MKL, the OpenBLAS routes stay
_MKL = torch.backends.mkl.is_available() and intel_cpu()
# below this many multiply-adds a product is too short to share between threads: OpenBLAS
# runs it on one, while MKL's thread team costs more than the product on a busy machine
_MKL_MIN_WORK = 2**26
# (a short product through the team also leaves its threads spinning while the eigensolver's
# OpenBLAS threads run next: 10000 x 64 then took 8 ms against 1.9 through syrk)
# ... but on one MKL thread a short product of few features still runs 2.2x faster than
# OpenBLAS's syrk (10000 x 16: 68 against 152 µs; from 128 features on, syrk is ahead)
_MKL_ONE_THREAD_MAX_D = 32


def product_pool(n: int, d: int) -> str:
    """Which library forms the covariance product of n rows of d features on the CPU.

    - ``"mkl"``: torch's MKL thread team, on Intel processors, for long products of fewer
      than 256 features. From 256 on, OpenBLAS's syrk takes half a general product's flops;
      MKL's products of column panels (3/4 of them) measured 0.9 of its time alone, but
      within a fit, whose next steps run on other thread pools while MKL's still spin, 1.5
      times it (100000 x 256: 150 against 100 ms).
    - ``"mkl1"``: one MKL thread, on Intel processors, for short products of at most 32
      features.
    - ``"scipy"``: OpenBLAS's syrk through scipy, on Intel processors otherwise.
    - ``"numpy"``: numpy's own OpenBLAS (``aᵀa`` by its syrk) everywhere else. On an AMD
      EPYC its products ran 1.2–1.6x faster than scipy's syrk (another OpenBLAS build) and
      1.1–2.8x faster than MKL's.
    """
    if not _MKL:
        return "numpy"
    if d < 256 and n * d * d >= _MKL_MIN_WORK:
        return "mkl"
    return "mkl1" if d <= _MKL_ONE_THREAD_MAX_D else "scipy"


def eigh_pool(n: int, d: int) -> str:
    """The eigensolver's library after :func:`product_pool`: the same thread pool where it
    has one (``"torch"`` after MKL's team, ``"numpy"`` after numpy's), scipy's otherwise.
    Two OpenBLAS builds in one process each keep their threads spinning for a while after
    a call, so a solver on the other one runs with a core less."""
    pool = product_pool(n, d)
    return {"mkl": "torch", "numpy": "numpy"}.get(pool, "scipy")


def _gram_sums(X: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(XᵀX (d, d), Σx (d,)) of a CPU tensor by MKL products, in X's dtype."""
    n, d = X.shape
    ones = torch.ones(n, 1, dtype=X.dtype)
    return torch.mm(X.T, X).numpy(), torch.mm(X.T, ones)[:, 0].numpy()


def _numpy_sums(A: np.ndarray, ones: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AᵀA (d, d), Σa (d,)) by numpy's BLAS (syrk and gemv), in A's dtype."""
    return A.T @ A, ones[: A.shape[0]] @ A


# OpenBLAS's threaded syrk hardly gains from a second thread on tall data of few features
# (AMD EPYC, 2 cores: 200000 x 100 float64 96 ms on two threads, 84 on one), while two
# threads each multiplying half of the rows on one BLAS thread took 44 ms. The numpy pool
# therefore deals float64 row blocks to one Python thread per core (numpy releases the
# GIL) where the product is long: whole fits at 200000 x 100 went from 107 to 83 ms,
# 1000000 x 64 from 245 to 178, 100000 x 256 from 188 to 157. Below 2³⁰ multiply-adds the
# split fits measured slower (10000 x 256: 26 against 21 ms; 100000 x 64: 26 against 23),
# and so did float32 blocks (100000 x 256: 107 against 97), which keep the threaded syrk.
_SPLIT_MIN_WORK = 2**30
# from this many features on the threaded syrk is kept (wider products were not measured)
_SPLIT_MAX_D = 512
_executor: tuple | None = None  # (process id, threads, pool) of the row-block threads


def _split_threads(n: int, d: int, dtype) -> int:
    """How many threads the numpy pool's row blocks are dealt to (1: the calling thread,
    with BLAS's own threads)."""
    if dtype != np.float64 or d >= _SPLIT_MAX_D or n * d * d < _SPLIT_MIN_WORK:
        return 1
    return max(1, min(torch.get_num_threads(), n // 1024))


def _numpy_blocks(A: np.ndarray, rows: int, shift: np.ndarray | None = None,
                  scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(Σ bᵀb, Σ b) over the blocks b of ``rows`` rows of A by numpy's syrk, summed in
    float64 (C order, both triangles exactly equal); each block first becomes
    b·scale − shift in A's precision when ``shift`` is given.

    With T threads (:func:`_split_threads`), thread t takes blocks t, t + T, … and sums
    them in their order on one BLAS thread; the T partial sums are added in thread order,
    so a result depends on T and the block size only, never on timing.
    """
    n, d = A.shape
    rows = max(1, min(rows, n))
    T = min(_split_threads(n, d, A.dtype), -(-n // rows))

    def part(t: int) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore"):  # the caller checks overflow
            return _part(t)

    def _part(t: int) -> tuple[np.ndarray, np.ndarray]:
        S, s1 = np.zeros((d, d)), np.zeros(d)
        ones = np.ones(rows, dtype=A.dtype)
        buf = None if shift is None else np.empty((rows, d), dtype=A.dtype)
        for start in range(t * rows, n, T * rows):
            block = A[start : start + rows]
            if buf is not None and shift is not None:
                c = buf[: block.shape[0]]
                if scale != 1.0:
                    np.multiply(block, scale, out=c)
                    c -= shift
                else:
                    np.subtract(block, shift, out=c)
                block = c
            block_S, block_s1 = _numpy_sums(block, ones)
            if T == 1 and rows == n and A.dtype == np.float64:
                return block_S, block_s1  # one product: no sum to form
            S += block_S
            s1 += block_s1
        return S, s1

    if T == 1:
        return part(0)
    global _executor
    from concurrent.futures import ThreadPoolExecutor

    from ..cluster._lloyd import one_blas_thread

    # a new pool in a forked child (the parent's threads do not exist there) or for more
    # threads than before
    if _executor is None or _executor[0] != os.getpid() or _executor[1] < T:
        _executor = (os.getpid(), T,
                     ThreadPoolExecutor(T, thread_name_prefix="latentspace-moments"))
    with one_blas_thread():
        parts = list(_executor[2].map(part, range(T)))
    S, s1 = parts[0]
    for S_t, s1_t in parts[1:]:
        S += S_t
        s1 += s1_t
    return S, s1


def _blocked_sums_f32(X: torch.Tensor, A: np.ndarray, rows: int, pool: str):
    """(Σ bᵀb, Σ b) of float32 rows in float64 over blocks of ``rows`` rows, by MKL
    (``pool="mkl"``, at most eight calls) or scipy's syrk (the upper triangles, filled in by
    the caller)."""
    n, d = A.shape
    # the sum in the order of the products it adds (read across, a sum of 256 features
    # took 17x longer)
    S = np.zeros((d, d), order="C" if pool == "mkl" else "F")
    s1 = np.zeros(d)
    prod = np.zeros((d, d), dtype=A.dtype, order="F")
    if pool == "mkl":  # each MKL call gathers its thread team: at most 8 of them
        rows = max(rows, -(-n // 8))
    ones = np.ones(min(n, rows), dtype=A.dtype)
    for start in range(0, n, rows):
        block = A[start : start + rows]
        if pool == "mkl":
            block_S, block_s1 = _gram_sums(X[start : start + rows])
        else:  # upper triangles, filled in once at the end
            block_S = gram_upper(block, transpose=True, out=prod)
            block_s1 = col_sums(block, ones)
        S += block_S
        s1 += block_s1
    return S, s1


def _moments_raw(X: torch.Tensor):
    """Uncentred moments of a 2-D CPU tensor, or None when their cancellation is too large."""
    A = X.numpy()
    n, d = A.shape
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked by the caller
        if A.dtype == np.float64:
            pool = product_pool(n, d)
            if pool == "mkl":
                S, s1 = _gram_sums(X)
            elif pool == "mkl1":
                with mkl_one_thread():
                    S, s1 = _gram_sums(X)
            elif pool == "numpy":
                S, s1 = _numpy_blocks(A, -(-n // _split_threads(n, d, A.dtype)))
            else:
                S, s1 = gram_upper(A, transpose=True), col_sums(A)
        else:
            rows = min(65536, max(_F32_BLOCK_ROWS, 2**20 // max(d, 1)))
            pool = product_pool(min(n, rows), d)
            if pool == "numpy":
                S, s1 = _numpy_blocks(A, rows)
            else:
                S, s1 = _blocked_sums_f32(X, A, rows, pool)
        if pool != "numpy":  # numpy's syrk fills both triangles alike; MKL's gemm may not
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

    Each chunk is centred on a fixed shift c (on the CPU the mean of the first 1024 rows) in
    the input's precision, and Σ(x − c) and Σ(x − c)(x − c)ᵀ are summed in float64. The
    scatter about the true mean follows as M₂ = Σ(x − c)(x − c)ᵀ − n (μ − c)(μ − c)ᵀ, where
    μ − c is small. On the CPU the loop runs in numpy alone (its ``cᵀc`` is BLAS syrk, by
    the pool :func:`product_pool` picks), which also avoids handing the cores back and forth
    between two thread pools at every chunk.
    """
    n, d = X.shape
    rows = min(n, max(256, 4 * d, 2**20 // (X.element_size() * d)))
    if d >= 512:  # wide rows: chunks of 16 MiB, so that each syrk is long enough to run at speed
        rows = min(n, max(rows, 2**24 // (X.element_size() * d)))
    if X.device.type != "cpu":
        f64 = torch.float64
        tshift = (X[:rows].to(f64).mean(0) * scale).to(X.dtype)
        tS = torch.zeros((d, d), dtype=f64, device=X.device)
        ts1 = torch.zeros(d, dtype=f64, device=X.device)
        for start in range(0, n, rows):
            tc = X[start : start + rows] * scale - tshift
            tS += (tc.T @ tc).to(f64)
            ts1 += torch.sum(tc, 0, dtype=f64)
        tdelta = ts1 / n  # μ − c
        return tshift.to(f64) + tdelta, tS - n * torch.outer(tdelta, tdelta)
    A = X.numpy()
    # any shift near the mean will do (the correction is exact): the first rows' mean
    shift = (A[:1024].mean(0, dtype=np.float64) * scale).astype(A.dtype)
    pool = product_pool(min(n, 65536), d)
    mkl = pool == "mkl"
    if mkl:  # long products through MKL (as in the raw route), at most eight of them
        rows = min(n, max(rows, 65536, -(-n // 8)))
    elif pool == "numpy":  # chunks of at least 4096 rows: numpy's syrk measured 1.1-1.25x
        rows = min(n, max(rows, 4096))  # faster on them than on 1024 (AMD EPYC)
        S, s1 = _numpy_blocks(A, rows, shift, scale)
        delta = s1 / n
        mean, scatter = shift.astype(np.float64) + delta, S - n * np.outer(delta, delta)
        return torch.from_numpy(mean), torch.from_numpy(scatter)
    buf = np.empty((rows, d), dtype=A.dtype)
    ones = np.ones(rows, dtype=A.dtype)
    # scipy's OpenBLAS: float64 chunks accumulate in place; float32 ones (and the others') are
    # added
    full = mkl  # products with both triangles (made symmetric after)
    wide = A.dtype == np.float64 and not full
    # (C order where full products are added: a Fortran-ordered sum of C-ordered ones reads
    # them across, 17x slower at 256 features)
    S = np.zeros((d, d), order="C" if full else "F")
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
            if full:
                # centred values: the input precision suffices for μ − c
                block_S, block_s1 = _gram_sums(torch.from_numpy(c))
                S += block_S
                s1 += block_s1
                continue
            prod = gram_upper(c, transpose=True, out=prod, accumulate=wide)
            if not wide:
                S += prod
            s1 += col_sums(c, ones)  # centred values: the input precision suffices for μ − c
    S = symmetrize(prod if wide else S)
    delta = s1 / n
    mean, scatter = shift.astype(np.float64) + delta, S - n * np.outer(delta, delta)
    return torch.from_numpy(mean), torch.from_numpy(scatter)
