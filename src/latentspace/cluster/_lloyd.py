"""The Lloyd step fused into one compiled pass over the rows (CPU).

The rows are split into one contiguous range per thread. Each thread takes its rows a block
at a time (1024 rows; 4096 on one thread): one small BLAS product gives −2 Cxᵀ for the block
(in cache), the argmin over clusters of ‖c_k‖² − 2 xᵀc_k runs across the block's rows in SIMD
lanes (the constant ‖x‖² does not change it; ties go to the lowest k, as numpy's argmin), and
each row is added to its cluster's count and sum in the block's accumulators (data precision,
at most 4096 rows), added to the thread's float64 ones after each block and summed over
threads at the end. The data are read once per iteration and no (n, K) array is written.
Compiled by numba when it is installed; otherwise ``available`` is False and the model uses
array operations.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import warnings

import numpy as np

try:  # an optional accelerator: everything works without it, only slower
    import numba
    from numba.core.errors import NumbaError as CompileError
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None  # type: ignore[assignment]

    class CompileError(Exception):  # type: ignore[no-redef]
        """Stands in for numba's error class where numba is absent."""

__all__ = ["CompileError", "assigned_d2", "available", "disable", "lloyd_stats", "one_blas_thread"]

# rows per block: the (K, rows) products stay in the core's cache; one thread amortises its
# per-block work over more rows, while with several threads concurrent BLAS calls on larger
# blocks measured slower
_BLOCK_ONE_THREAD, _BLOCK = 4096, 1024
# ... and a block of wide rows is cut to 512 KiB, so that the product leaves it in the core's
# cache for the sums that follow (AMD EPYC, L2 512 KiB per core: 20000 x 784, K=10, float64
# took 21 ms per step in blocks of 83 rows against 32 in blocks of 1024; 100000 x 256
# float32 22 against 24)
_BLOCK_BYTES, _MIN_BLOCK = 2**19, 64

available = numba is not None
if available:
    from . import _blas

    _dgemm, _sgemm, _local_threads = _blas.intrinsics()


def disable(reason: str) -> None:
    """Fall back to the array route for the rest of the process, saying why once."""
    global available
    if available:
        available = False
        warnings.warn(f"the compiled K-means step is unavailable ({reason}); using array "
                      "operations instead (same results, slower).", RuntimeWarning, stacklevel=3)


_controller = None
_limiter = None
_depth = 0
_lock = threading.Lock()


@contextlib.contextmanager
def one_blas_thread():
    """BLAS limited to one thread while the kernel's own threads each call it.

    Re-entrant and thread-safe: a fit holds it across all its iterations (setting the limit
    back and forth at every call wakes BLAS's own worker threads, which then spin beside the
    kernel's and cost 5–10% per iteration), and calls inside it, also from Dask's worker
    threads, leave the limit as it is; the outermost exit restores it.
    """
    global _controller, _limiter, _depth
    with _lock:
        if _depth == 0:
            if _controller is None:
                importlib.import_module("scipy.linalg.cython_blas")  # the kernel's BLAS, first
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
            _limiter = _controller.limit(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _limiter.restore_original_limits()
                _limiter = None


if available:

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _lloyd_kernel(X, MT, sq, w, use_w, n_parts, block, want_labels, labels, counts, sums):  # pragma: no cover
        n, d = X.shape
        K = MT.shape[0]
        step = (n + n_parts - 1) // n_parts
        for t in numba.prange(n_parts):
            prev = _local_threads(np.int32(1))  # MKL: one thread per kernel thread
            lo = t * step
            hi = min(n, lo + step)
            buf = np.empty((K, block), dtype=X.dtype)
            best = np.empty(block, dtype=X.dtype)
            lab = np.empty(block, dtype=np.int32)
            best2 = np.empty(block, dtype=X.dtype)  # each cluster's pass writes the other pair
            lab2 = np.empty(block, dtype=np.int32)
            bsum = np.zeros((K, d), dtype=X.dtype)
            bcount = np.zeros(K)
            # gemm's arguments (Fortran, by reference): the block's −2Cxᵀ into buf (K, nb),
            # as the column-major product (X_block)ᵀᵀ(−2C)ᵀ of shape (nb, K), ld = block
            ints = np.empty(6, dtype=np.int32)
            ab = np.zeros(2, dtype=X.dtype)
            ab[0] = 1.0
            flags = np.array([84, 78], dtype=np.uint8)  # "T", "N"
            for b0 in range(lo, hi, block):
                b1 = min(hi, b0 + block)
                nb = b1 - b0
                ints[0], ints[1], ints[2] = nb, K, d
                ints[3], ints[4], ints[5] = d, d, block
                args = (flags[0:].ctypes.data, flags[1:].ctypes.data, ints[0:].ctypes.data,
                        ints[1:].ctypes.data, ints[2:].ctypes.data, ab[0:].ctypes.data,
                        X[b0:].ctypes.data, ints[3:].ctypes.data, MT.ctypes.data,
                        ints[4:].ctypes.data, ab[1:].ctypes.data, buf.ctypes.data,
                        ints[5:].ctypes.data)
                if X.itemsize == 8:
                    _dgemm(*args)
                else:
                    _sgemm(*args)
                part = buf
                # argmin over clusters, vectorised across the block's rows (ties: lowest k).
                # Each pass reads one pair of arrays and writes the other in full: an
                # update in place (a[r] = v if lt else a[r]) compiles to masked stores,
                # which AMD's cores run at a fraction of a plain store's speed (the pass
                # took 2.5-3.7x longer on an EPYC)
                s0 = sq[0]
                for r in range(nb):
                    best[r] = part[0, r] + s0
                    lab[r] = 0
                for k in range(1, K):
                    sk = sq[k]
                    for r in range(nb):
                        v = part[k, r] + sk
                        b = best[r]
                        lt = v < b
                        best2[r] = v if lt else b
                        lab2[r] = k if lt else lab[r]
                    best, best2 = best2, best
                    lab, lab2 = lab2, lab
                # the block's sums in the data's precision (in cache), then into float64
                for r in range(nb):
                    i = b0 + r
                    bk = lab[r]
                    if want_labels:
                        labels[i] = bk
                    if use_w:
                        wi = w[i]
                        bcount[bk] += wi
                        for j in range(d):
                            bsum[bk, j] += wi * X[i, j]
                    else:
                        bcount[bk] += 1.0
                        for j in range(d):
                            bsum[bk, j] += X[i, j]
                for k in range(K):
                    counts[t, k] += bcount[k]
                    bcount[k] = 0.0
                    for j in range(d):
                        sums[t, k, j] += bsum[k, j]
                        bsum[k, j] = 0.0
            _local_threads(prev)


if available:

    @numba.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def _assigned_d2_kernel(X, C, labels, out):  # pragma: no cover
        n, d = X.shape
        for i in numba.prange(n):
            k = labels[i]
            s = 0.0
            for j in range(d):
                t = X[i, j] - C[k, j]
                s += t * t
            out[i] = s


def assigned_d2(X: np.ndarray, C: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """‖x_n − c_{label_n}‖² from the differences (no cancellation), in float64, one pass.

    Parameters
    ----------
    X : (n, d) float32 or float64 array
    C : (K, d) float64 array
    labels : (n,) int64 array

    Returns
    -------
    d2 : (n,) float64 array
    """
    out = np.empty(X.shape[0])
    _assigned_d2_kernel(np.ascontiguousarray(X), np.ascontiguousarray(C, dtype=np.float64),
                        labels, out)
    return out


def _block_rows(parts: int, d: int, itemsize: int) -> int:
    """Rows per block of the Lloyd step on ``parts`` threads for rows of ``d`` features."""
    rows = _BLOCK_ONE_THREAD if parts == 1 else _BLOCK
    return max(_MIN_BLOCK, min(rows, _BLOCK_BYTES // max(1, d * itemsize)))


def lloyd_stats(X: np.ndarray, MT: np.ndarray, sq: np.ndarray, w: np.ndarray | None,
                n_threads: int, *, labels: bool = True):
    """One hard E-step with its statistics.

    Parameters
    ----------
    X : (n, d) float32 or float64 array
    MT : (K, d) array, −2 C in X's dtype
    sq : (K,) array, ‖c_k‖² in X's dtype
    w : (n,) float64 weights or None
    n_threads : int
    labels : bool
        False when only the statistics are wanted (saves writing n labels).

    Returns
    -------
    labels : (n,) int64 or None, counts : (K,) float64, sums : (K, d) float64
    """
    X = np.ascontiguousarray(X)
    n, d = X.shape
    K = MT.shape[0]
    parts = max(1, min(int(n_threads), n // _BLOCK + 1))
    out = np.empty(n if labels else 1, dtype=np.int64)
    counts = np.zeros((parts, K))
    sums = np.zeros((parts, K, d))
    weights = np.ones(1) if w is None else np.ascontiguousarray(w, dtype=np.float64)
    _blas.bind()
    with one_blas_thread():
        _lloyd_kernel(X, np.ascontiguousarray(MT, dtype=X.dtype),
                      np.ascontiguousarray(sq, dtype=X.dtype), weights, w is not None, parts,
                      _block_rows(parts, d, X.itemsize), labels, out, counts, sums)
    return (out if labels else None), counts.sum(0), sums.sum(0)
