"""Numerical helpers shared by the models.

Dense kernels pick the fastest exact route per device. On the CPU they go through scipy's BLAS
and LAPACK: ``syrk`` for AᵀA and AAᵀ (half the flops of a general product), ``syevr`` for the
leading eigenpairs only, ``gemv``/``gemm`` for the rest. Keeping one library per computation
matters on few cores: numpy, scipy and torch each have their own thread pool, and a pool's
threads keep spinning for a while after each call, so alternating between two leaves the next
call with a core less. The exception is PCA's covariance pass on long products, which goes
through the MKL inside torch's x86 builds (a general product there beats OpenBLAS's ``syrk``
at twice the flops; see :mod:`latentspace.decomposition._moments`). On a GPU, torch does
everything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["Frame", "abs_max", "tcrossprod", "gram_upper", "col_sums", "centring_offset",
           "eigh_desc", "format_unscaled", "ldexp_exact", "mean_log_density", "pow2_scale",
           "representable_log_density", "row_exponents", "rounding_floor",
           "scaled_half_sq_norm", "total_log_density", "working_scale"]


def _blas(name: str, dtype: npt.DTypeLike) -> Callable[..., Any]:
    from scipy.linalg import blas

    return getattr(blas, ("d" if np.dtype(dtype) == np.float64 else "s") + name)


def gram_upper(a: np.ndarray, *, transpose: bool, out: np.ndarray | None = None,
               accumulate: bool = False) -> np.ndarray:
    """The upper triangle of ``aᵀa`` (``transpose=True``) or ``aaᵀ`` by BLAS syrk, no copies.

    ``out`` (Fortran-ordered, square, ``a``'s dtype) receives the result, added to its
    content when ``accumulate``. The strict lower triangle is left as it was (zeros for a
    fresh result); :func:`symmetrize` fills it.
    """
    syrk = _blas("syrk", a.dtype)
    if not a.flags.c_contiguous and not a.flags.f_contiguous:
        a = np.ascontiguousarray(a)
    # a C-ordered (n, d) array is a Fortran-ordered (d, n) one: pick syrk's trans to match
    f = a.T if a.flags.c_contiguous else a
    trans = int(transpose) if a.flags.f_contiguous and not a.flags.c_contiguous else int(not transpose)
    if out is None:
        return syrk(1.0, f, trans=trans)
    return syrk(1.0, f, beta=1.0 if accumulate else 0.0, c=out, trans=trans, overwrite_c=1)


def symmetrize(U: np.ndarray) -> np.ndarray:
    """A full symmetric matrix from its upper triangle."""
    return np.triu(U) + np.triu(U, 1).T


def col_sums(a: np.ndarray, ones: np.ndarray | None = None) -> np.ndarray:
    """Column sums of a 2-D array by BLAS gemv (one streaming pass; numpy's ``sum(0)`` is slower)."""
    if ones is None:
        ones = np.ones(a.shape[0], dtype=a.dtype)
    if a.flags.c_contiguous:
        return _blas("gemv", a.dtype)(1.0, a.T, ones[: a.shape[0]])
    return _blas("gemv", a.dtype)(1.0, a, ones[: a.shape[0]], trans=1)


def tcrossprod(A: torch.Tensor) -> torch.Tensor:
    """``A Aᵀ`` of shape (n, n) for ``A`` of shape (n, d)."""
    if A.device.type == "cpu":
        return torch.from_numpy(symmetrize(gram_upper(A.numpy(), transpose=False)))
    return A @ A.T


def eigh_desc(C: torch.Tensor, k: int | None = None, *, upper_only: bool = False,
              pool: str = "scipy"):
    """Eigenpairs of the symmetric matrix ``C``, largest first.

    Parameters
    ----------
    C : (d, d) symmetric tensor
    k : int or None
        Number of leading pairs wanted; None for all.
    upper_only : bool
        On the CPU, read only the upper triangle of ``C`` (as :func:`gram_upper` leaves it).
    pool : {"scipy", "torch", "numpy"}
        On the CPU, the library whose solver runs: the one whose threads formed ``C`` (see
        :func:`latentspace.decomposition._moments.eigh_pool`), so that no other pool's
        threads still spin beside it. 200000 × 100 after an MKL product: a fit of 87 ms with
        scipy's solver against 57 with torch's; 10000 × 256 after numpy's product, on an AMD
        EPYC: 96 ms with scipy's against 32 with numpy's. scipy's computes only the ``k``
        pairs wanted when they are fewer than d/2; torch's and numpy's compute all d.

    Returns
    -------
    values : (k,) tensor, descending
    vectors : (d, k) tensor, columns are eigenvectors
    """
    d = C.shape[0]
    k = d if k is None else k
    uplo: Literal["U", "L"] = "U" if upper_only else "L"
    if C.device.type == "cpu" and pool == "numpy":
        w, v = np.linalg.eigh(C.numpy(), UPLO=uplo)
        w, v = w[::-1][:k], v[:, ::-1][:, :k]
        return torch.from_numpy(w.copy()), torch.from_numpy(v.copy(order="C"))
    if C.device.type == "cpu" and pool != "torch":
        from scipy.linalg import eigh

        subset = dict(subset_by_index=(d - k, d - 1), driver="evr") if k < d // 2 else dict(driver="evd")
        w, v = eigh(C.numpy(), lower=not upper_only, check_finite=False, **subset)
        w, v = w[::-1][:k], v[:, ::-1][:, :k]
        return torch.from_numpy(w.copy()), torch.from_numpy(v.copy(order="C"))
    w, v = torch.linalg.eigh(C, UPLO=uplo)
    return w.flip(0)[:k], v.flip(1)[:, :k]


def abs_max(X: torch.Tensor) -> float:
    """max |x| without an |X| copy: NaN if X holds a NaN, inf if it holds an infinity, 0 if
    empty (one fused min/max reduction: half the time of numpy's max and min)."""
    if X.numel() == 0:
        return 0.0
    t_lo, t_hi = torch.aminmax(X.detach())
    lo, hi = float(t_lo), float(t_hi)
    if lo != lo or hi != hi:
        return float("nan")
    return max(abs(lo), abs(hi))


def pow2_scale(amax: float) -> float:
    """A power of two ``s`` with ``amax * s`` in [0.5, 1): scaling by it is exact in floating point.

    Working on ``X * s`` keeps squares and products of huge (1e300) or tiny (1e-300) data inside
    the floating-point range while every rounding stays the same as for ordinary data.
    """
    if not np.isfinite(amax) or amax <= 0:
        return 1.0
    _, e = np.frexp(amax)
    return float(np.ldexp(1.0, -int(e)))


def working_scale(amax: float, dtype: torch.dtype) -> float:
    """A power of two to multiply the data by so that squares neither overflow nor underflow.

    1.0 for ordinary data (then nothing is rescaled and no copy is made); for data whose
    largest |x| lies beyond 2^(±emax/4) of the dtype, the exact power of two that brings it
    into [0.5, 1). Scaling by a power of two changes no rounding, so results are those of
    the unscaled arithmetic wherever that arithmetic was representable.
    """
    emax = 1024 if dtype == torch.float64 else 128
    if amax == 0 or not np.isfinite(amax):
        return 1.0
    e = np.frexp(amax)[1]
    if abs(e) < emax // 4:
        return 1.0
    return pow2_scale(amax)


def format_unscaled(value: float, scale: float, power: int = 1) -> str:
    """``value / scale**power`` formatted as ``2.64e-599``, also beyond the float64 range.

    ``value`` is a positive number in working units and ``scale`` the power of two they were
    multiplied by; the exponent is carried in decimal logarithms, so tiny or huge data-unit
    figures in messages read right instead of as 0 or inf.
    """
    if not value > 0 or not np.isfinite(value):
        return f"{value:.3g}"
    return _format_log10(np.log10(value) - power * np.log10(scale))


def _eps(dtype) -> float:
    return float(torch.finfo(dtype).eps) if isinstance(dtype, torch.dtype) else float(np.finfo(dtype).eps)


def centring_offset(mean: torch.Tensor, spread2: float, dtype) -> torch.Tensor | None:
    """The offset to subtract before distances are expanded, or None when none is needed.

    ‖x − c‖² = ‖x‖² − 2xᵀc + ‖c‖² has a rounding error of about ε·(‖x‖² + ‖c‖²), so for data
    at a distance ‖m‖ from the origin it loses log₂(‖m‖² / s²) bits of a squared spread s².
    The offset is taken when that would cost more than a quarter of the precision
    (‖m‖² > ε^(−1/4)·s²: 2¹³ in float64, 2⁶ in float32), so that ordinary data keep their
    exact arithmetic (and no copy); it is the mean rounded to a power-of-two grid below the
    spread, so that the rounding of the sums (chunking, summation order) does not move it.

    Parameters
    ----------
    mean : (d,) float64 tensor
        Mean of the rows (already in working units).
    spread2 : float
        Their total variance Σ_j var_j (same units).
    dtype : torch or numpy dtype of the data (the precision of the products)

    Returns
    -------
    offset : (d,) float64 tensor representable in ``dtype``, or None
    """
    m2 = float((mean * mean).sum())
    if not m2 > spread2 * _eps(dtype) ** -0.25:
        return None
    if spread2 > 0 and np.isfinite(spread2):
        grid = float(np.ldexp(1.0, int(np.frexp(np.sqrt(spread2))[1]) - 1))  # ≤ the spread
        offset = torch.round(mean / grid) * grid
    else:
        offset = mean.clone()
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else getattr(torch, np.dtype(dtype).name)
    return offset.to(torch_dtype).to(torch.float64)


@dataclass(frozen=True)
class Frame:
    """The working frame of a model: working units u = x·scale − offset.

    ``scale`` is an exact power of two (:func:`working_scale`) that keeps squares of huge or
    tiny data representable; ``offset`` (:func:`centring_offset`, in working units, None for
    data near the origin) keeps the expanded distances of data far from the origin from
    cancelling. Both are decided once, from one summary pass over the data; the identity frame
    (scale 1, no offset) leaves the data as they are, without a copy.
    """

    scale: float = 1.0
    offset: torch.Tensor | None = None  # (d,) float64, working units

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset is None

    def to_work(self, X: torch.Tensor) -> torch.Tensor:
        """Rows (n, d) in working units, in their own dtype (X itself for the identity)."""
        if self.scale != 1.0:
            X = X * self.scale
            if self.offset is not None:
                X -= self.offset.to(device=X.device, dtype=X.dtype)
        elif self.offset is not None:
            X = X - self.offset.to(device=X.device, dtype=X.dtype)
        return X

    def points_to_work(self, P: torch.Tensor) -> torch.Tensor:
        """Points in data units (float64, (m, d)) -> working units."""
        P = P * self.scale
        return P - self.offset.to(P.device) if self.offset is not None else P

    def points_to_data(self, P: torch.Tensor) -> torch.Tensor:
        """Points in working units (float64, (m, d)) -> data units."""
        if self.offset is not None:
            P = P + self.offset.to(P.device)
        return P / self.scale


def rounding_floor(values: torch.Tensor, total: float, mean: torch.Tensor, d: int,
                   dtype) -> float:
    """The largest covariance eigenvalue that rounding alone can produce (PCA).

    Two sources, each bounded from the arithmetic:

    - centring: each x − μ carries an error below 2ε|x|, so for a direction u of zero
      variance ‖Xc u‖² ≤ ‖E‖²_F ≤ 4ε² Σ x², i.e. an eigenvalue ≤ 4ε² (total + 2‖μ‖²);
    - the eigensolver (or SVD) is backward stable: its eigenvalues are exact for a matrix
      within about d·ε·λ_max of the covariance, with the float64 ε of every route's
      eigenvalues (float32 routes refine theirs in float64; the null eigenvalues of a
      float32 SVD, ~ε₃₂²·λ_max, are inside the centring term).

    Parameters
    ----------
    values : (m,) array or tensor of computed eigenvalues, descending
    total : float, the trace of the covariance
    mean : (d,) float64 array or tensor, the mean the data were centred on (same units)
    d : int, the number of features
    dtype : the precision the data were centred and multiplied in

    Returns
    -------
    float, in the units of ``values``
    """
    eps = _eps(dtype)
    lam = float(values[0]) if len(values) else 0.0
    centring = 4 * eps * eps * (max(total, 0.0) + 2 * float((mean * mean).sum()))
    return centring + d * _eps(torch.float64) * max(lam, 0.0)


# ----------------------------------------------------------------------------- far queries
def ldexp_exact(A: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``A · 2^k`` (``k`` integer, broadcast against ``A``), exact wherever the result is a
    normal number: two half-steps, so that no factor overflows where the product does not."""
    k = k.to(torch.float64)
    h = torch.floor(k / 2)
    return A * torch.pow(2.0, h) * torch.pow(2.0, k - h)


def row_exponents(A: torch.Tensor) -> torch.Tensor:
    """The exponents e (int64, (m,)) with max |A[i]| · 2^−e in [0.5, 1) for each row of
    ``A`` (m, ...); 0 for a zero row."""
    amax = A.abs().reshape(A.shape[0], -1).amax(1) if A.numel() else A.new_zeros(A.shape[0])
    return torch.frexp(amax)[1].to(torch.int64)


def scaled_half_sq_norm(Y: torch.Tensor, e: torch.Tensor):
    """½‖y‖² and log₂‖y‖ along the last axis of y = Y · 2^e, without overflow.

    ``Y`` (..., D) holds the vectors scaled by 2^−e (``e`` int, broadcast against
    ``Y.shape[:-1]``); each is rescaled once more by a power of two to its largest entry, so
    that its squares are representable, and the square norm is brought back by an exact
    ``ldexp``: the result is that of the unscaled arithmetic wherever it is representable,
    and +inf only where ½‖y‖² itself lies beyond float64.

    Returns
    -------
    half : (...) float64 tensor, ½‖y‖² (+inf beyond the float64 range; NaN where ``Y``
        itself is not finite)
    log2_norm : (...) float64 tensor, log₂‖y‖ (finite for any nonzero y)
    """
    f = torch.frexp(Y.abs().amax(-1))[1].to(torch.int64)  # (...)
    s = 0.5 * (ldexp_exact(Y, -f[..., None]) ** 2).sum(-1)  # in (0, D/2], or 0
    E = 2 * (torch.broadcast_to(e, f.shape) + f)
    with np.errstate(over="ignore"):
        half = np.ldexp(s.cpu().numpy(), E.cpu().numpy())
    half[~np.isfinite(s.cpu().numpy())] = np.nan  # Y itself overflowed: no distance to give
    log2_norm = 0.5 * torch.log2(2 * s) + E.to(torch.float64) / 2
    return torch.from_numpy(half).to(Y.device), log2_norm


def _format_log2(log2: float) -> str:
    """2^log2 as ``1.3e+154``, also beyond the float64 range."""
    if not np.isfinite(log2):
        return "0" if log2 < 0 else "inf"
    return _format_log10(log2 * np.log10(2.0))


def _format_log10(log10: float) -> str:
    e = int(np.floor(log10))
    m = 10.0 ** (log10 - e)
    if m >= 9.995:  # rounding to 3 digits carries into the exponent
        m, e = m / 10, e + 1
    return f"{m:.3g}e{e:+03d}" if abs(e) >= 5 else f"{m * 10.0 ** e:.3g}"


def mean_log_density(ll: torch.Tensor) -> float:
    """The mean of finite float64 values without overflow of their sum (a power-of-two
    rescaling when the plain sum overflows)."""
    total = float(ll.sum())
    if math.isfinite(total):
        return total / ll.numel()
    t = pow2_scale(float(ll.abs().max()))
    return float((ll * t).sum()) / ll.numel() / t


def representable_log_density(ll: torch.Tensor, far, owner: str,
                              dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The policy of every density-like query: a log-density is returned when it is
    representable, else ``ValueError``.

    A row far beyond the model's scale (a query in other units, X · 1e154 against a model
    of X) has a true log-density of order −‖x − μ‖²/σ², a finite number that the ordinary
    route may lose to an overflow of its squares (−inf, or NaN from inf − inf). Only then,
    for those rows only, ``far`` evaluates them again along a power-of-two-scaled route
    (:func:`scaled_half_sq_norm`) that overflows only where the result itself does: rows
    that are merely improbable stay finite, rows whose log-density is below the range of
    ``dtype`` raise a ``ValueError`` naming them and their distance from the model. An
    ordinary query costs one reduction.

    Parameters
    ----------
    ll : (n,) float64 tensor
        Log-densities from the ordinary route.
    far : callable
        ``far(index)`` with ``index`` (m,) int64 rows -> (log-densities (m,) float64,
        log₂ of their distances from the model in standard deviations (m,)).
    owner : str
        The estimator's name, for the message.
    dtype : torch.dtype
        The dtype the result is returned in.

    Returns
    -------
    (n,) float64 tensor, finite but for the rows of a degenerate model (NaN from ``far``)
    """
    lowest = float(torch.finfo(dtype).min)
    if ll.numel() == 0 or float(ll.min()) >= lowest:  # NaN and −inf fail the comparison
        return ll
    lost = torch.nonzero(~(ll >= lowest)).flatten()
    far_ll, log2_dist = far(lost)
    # NaN: the model's own parameters overflow on the scaled route too, a degenerate model
    # rather than a far query; those rows keep their non-finite value for the caller's
    # finiteness check (the command line's exit status 5)
    degenerate = torch.isnan(far_ll)
    ll = ll.clone()
    ll[lost[~degenerate]] = far_ll[~degenerate]
    beyond = ~(far_ll >= lowest) & ~degenerate
    if bool(beyond.any()):
        raise ValueError(_far_message(owner, lost[beyond], log2_dist[beyond], ll.numel(), dtype))
    return ll


def _far_message(owner: str, rows: torch.Tensor, log2_dist: torch.Tensor, n: int,
                 dtype: torch.dtype) -> str:
    shown = rows[:5].tolist()
    more = ", ..." if rows.numel() > 5 else ""
    where = ", ".join(str(r) for r in shown) + more
    dist = ", ".join(_format_log2(float(v)) for v in log2_dist[:5].tolist()) + more
    kind = str(dtype).replace("torch.", "")
    if dtype != torch.float64:
        kind += " (pass float64 X)"
    return (
        f"{rows.numel()} of {n} row(s) of X lie so far from the fitted {owner} that their "
        f"log-density is below the range of {kind}: rows {where} at {dist} standard "
        "deviations from the model; rescale X to the units the model was fitted in, or "
        "check its units."
    )


def total_log_density(ll: torch.Tensor, what: str, owner: str) -> float:
    """Σ ll (finite float64 log-densities) as a float, or ``ValueError`` when the total or
    twice it (the criteria's −2 log L) lies beyond float64 (rows near the bottom of the
    range)."""
    total = float(ll.sum())
    if math.isfinite(2.0 * total):
        return total
    t = pow2_scale(float(ll.abs().max()))
    approx = format_unscaled(-float((ll * t).sum()), t)
    raise ValueError(
        f"the {what} of X under the fitted {owner} is beyond the float64 range (its "
        f"log-likelihood is about -{approx}): X lies far from the model; rescale X to the "
        "units the model was fitted in, or check its units."
    )
