"""Numerical helpers shared by the models.

Dense kernels pick the fastest exact route per device: on the CPU, numpy's ``A.T @ A`` calls
BLAS ``syrk`` (half the flops of a general product, which torch's ``mm`` does), and LAPACK's
``syevr`` through scipy returns only the top eigenpairs; on a GPU, torch does everything.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["crossprod", "tcrossprod", "eigh_desc", "pow2_scale", "safe_log"]


def crossprod(A: torch.Tensor) -> torch.Tensor:
    """``Aᵀ A`` of shape (d, d) for ``A`` of shape (n, d)."""
    if A.device.type == "cpu":
        a = A.numpy()
        with np.errstate(over="ignore", invalid="ignore"):  # callers check finiteness
            return torch.from_numpy(a.T @ a)  # numpy dispatches this pattern to syrk
    return A.T @ A


def tcrossprod(A: torch.Tensor) -> torch.Tensor:
    """``A Aᵀ`` of shape (n, n) for ``A`` of shape (n, d)."""
    if A.device.type == "cpu":
        a = A.numpy()
        with np.errstate(over="ignore", invalid="ignore"):
            return torch.from_numpy(a @ a.T)
    return A @ A.T


def eigh_desc(C: torch.Tensor, k: int | None = None):
    """Eigenpairs of the symmetric matrix ``C``, largest first.

    Parameters
    ----------
    C : (d, d) symmetric tensor
    k : int or None
        Number of leading pairs wanted; None for all.

    Returns
    -------
    values : (k,) tensor, descending
    vectors : (d, k) tensor, columns are eigenvectors
    """
    d = C.shape[0]
    k = d if k is None else k
    if C.device.type == "cpu" and k < d // 2:
        from scipy.linalg import eigh

        w, v = eigh(C.numpy(), subset_by_index=(d - k, d - 1), driver="evr", check_finite=False)
        return torch.from_numpy(w[::-1].copy()), torch.from_numpy(v[:, ::-1].copy())
    w, v = torch.linalg.eigh(C)
    return w.flip(0)[:k], v.flip(1)[:, :k]


def pow2_scale(amax: float) -> float:
    """A power of two ``s`` with ``amax * s`` in [0.5, 1): scaling by it is exact in floating point.

    Working on ``X * s`` keeps squares and products of huge (1e300) or tiny (1e-300) data inside
    the floating-point range while every rounding stays the same as for ordinary data.
    """
    if not np.isfinite(amax) or amax <= 0:
        return 1.0
    _, e = np.frexp(amax)
    return float(np.ldexp(1.0, -int(e)))


def safe_log(x: torch.Tensor, tiny: float | None = None) -> torch.Tensor:
    """``log(max(x, tiny))``: finite for zero inputs."""
    tiny = torch.finfo(x.dtype).tiny if tiny is None else tiny
    return torch.log(torch.clamp(x, min=tiny))
