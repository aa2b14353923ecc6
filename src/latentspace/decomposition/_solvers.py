"""PCA's eigen-routes: from the scatter matrix, the SVD, the Gram matrix (wide data, with a
float64 Rayleigh–Ritz refinement of float32 eigenvectors) and the randomized range finder.

Each returns descending eigenvalues of the covariance (float64) and the principal axes as
columns; :func:`choose_solver` picks a route by shape.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..cluster._blas import intel_cpu
from .._math import eigh_desc, gram_upper, symmetrize, tcrossprod
from ._moments import all_finite, eigh_pool

__all__ = ["arpack", "choose_solver", "choose_sparse_solver", "from_scatter", "gram",
           "minka_dimension", "randomized", "svd"]


def choose_solver(n: int, d: int, k: object) -> str:
    """The route for ``svd_solver="auto"``: covariance for tall data (d ≤ 2048), Gram for wide
    data (n ≤ 2048), randomized for few components of large data, else the full SVD."""
    small = min(n, d)
    if n >= d and d <= 2048:
        return "covariance_eigh"
    if n < d and n <= 2048:
        return "gram"
    if isinstance(k, int) and not isinstance(k, bool) and 1 <= k < 0.8 * small:
        return "randomized"
    return "full"


def choose_sparse_solver(n: int, d: int, k: object) -> str:
    """The route for ``svd_solver="auto"`` on sparse data: the covariance for d ≤ 2048 (an
    exact one-pass route whose d×d result is small), else ARPACK on the implicitly centred
    matrix for an integer number of components below min(n, d), else the covariance."""
    if d <= 2048:
        return "covariance_eigh"
    if isinstance(k, int) and not isinstance(k, bool) and 1 <= k < min(n, d):
        return "arpack"
    return "covariance_eigh"


def from_scatter(scatter: torch.Tensor, n: int,
                 k: int | float | str) -> tuple[torch.Tensor, torch.Tensor, float]:
    # numpy on the CPU: a torch op on (d, d) ≥ 2^15 entries right after the BLAS pass waits
    # for torch's thread pool while BLAS's threads still spin (10000 x 256: 5 ms of a 17 ms
    # fit)
    C = torch.from_numpy(scatter.numpy() / (n - 1)) if scatter.device.type == "cpu" \
        else scatter / (n - 1)
    if not all_finite(C):
        raise ValueError(
            "the covariance of X overflows float64 (values too large); rescale X, e.g. with "
            "sklearn.preprocessing.StandardScaler or by dividing by its largest absolute value."
        )
    total = float(np.trace(C.numpy())) if C.device.type == "cpu" \
        else float(torch.diagonal(C).sum())
    d = C.shape[0]
    values, vectors = eigh_desc(C, k if isinstance(k, int) and k > 0 else None,
                                pool=eigh_pool(n, d) if C.device.type == "cpu" else "scipy")
    return values, vectors, total


def svd(Xc: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues of the covariance (descending, float64) and all principal axes (columns)
    from the thin SVD of the centred data.

    Wide data on a CPU other than Intel's go through scipy's ``gesdd`` (OpenBLAS's LAPACK):
    torch's (MKL's) took twice as long there (AMD EPYC, 2 cores: 2000 × 10000 float64 19.8
    against 10.2 s, float32 10.3 against 4.0; 1000 × 5000 2.8 against 1.4). On tall data
    the two ran alike, and on Intel processors MKL's is kept.
    """
    if Xc.device.type == "cpu" and Xc.shape[0] < Xc.shape[1] and not intel_cpu():
        from scipy.linalg import LinAlgError, svd as scipy_svd

        try:
            _, s, vt = scipy_svd(Xc.numpy(), full_matrices=False, check_finite=False)
        except LinAlgError:  # gesdd did not converge: torch's solver, as elsewhere
            pass
        else:
            s64 = torch.from_numpy(s.astype(np.float64))
            axes = np.ascontiguousarray(vt.T, dtype=np.float64)
            return s64 * s64 / (n - 1), torch.from_numpy(axes)
    _, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    S = S.to(torch.float64)
    return S * S / (n - 1), Vh.T.to(torch.float64)


def gram(Xc: torch.Tensor, n: int,
         k: int | float | str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Eigenpairs of the covariance from the n×n Gram matrix Xc Xcᵀ (wide data).

    Xc Xcᵀ U = U Σ², so its eigenvectors are the left singular vectors U and the principal
    axes are V = Xcᵀ U Σ⁻¹. On the CPU, float32 data get a float32 Gram matrix and
    eigensolver (each eigenvalue to about 1e-7 of the largest), then one float64
    Rayleigh–Ritz step on those vectors (:func:`_rayleigh_ritz`), which brings the small
    eigenvalues to float64 accuracy (LFW faces: 1.3e-8 relative instead of 2.8e-5) except
    inside a cluster of nearly equal eigenvalues cut by k. On a GPU the route runs in float64.
    The total variance is the trace, summed in float64. Returns (values, vectors, total
    variance).
    """
    cpu = Xc.device.type == "cpu"
    if not cpu:
        # a GPU works in float64 here: its float32 products and eigensolver lose the small
        # eigenvalues (1e-2 relative on the LFW faces, against 3e-5 for the CPU's float32
        # route), and n ≤ a few thousand keeps float64 cheap
        Xc = Xc.to(torch.float64)
    # on the CPU only the upper triangle is formed, and only it is read
    G = torch.from_numpy(gram_upper(Xc.numpy(), transpose=False)) if cpu else tcrossprod(Xc)
    total = float(torch.sum(torch.diagonal(G), dtype=torch.float64)) / (n - 1)
    want = k if isinstance(k, int) and k > 0 else None
    if cpu and Xc.dtype == torch.float32 and want is not None:
        assert isinstance(k, int)
        want = min(n, k + _RITZ_EXTRA)  # a few more for the float64 refinement below
    values, U = eigh_desc(G, want, upper_only=cpu)
    values = torch.clamp(values, min=0.0)
    # directions with (numerically) zero singular value carry no information in Xcᵀ U;
    # fall back to the SVD, which gives them an orthonormal completion
    m = values.shape[0] if not isinstance(k, int) else k
    cutoff = float(values[0]) * 16 * torch.finfo(Xc.dtype).eps if values.numel() else 0.0
    if not isinstance(k, int) or k == 0 or float(values[m - 1]) <= cutoff:
        return (*svd(Xc, n), total)
    if cpu and Xc.dtype == torch.float32:
        return (*_rayleigh_ritz(Xc.numpy(), U.numpy(), k, n), total)
    s = torch.sqrt(values)
    if cpu:  # in the same BLAS as the steps before it (see _math)
        from scipy.linalg import blas

        XtU = torch.from_numpy(blas.dgemm(1.0, Xc.numpy().T, U.numpy()))
    else:
        XtU = Xc.T @ U.to(Xc.dtype)
    V = XtU.to(torch.float64) / s.to(torch.float64)  # (d, k)
    return values.to(torch.float64) / (n - 1), V, total


_RITZ_EXTRA = 10  # float32 eigenvectors beyond k that the float64 refinement sees


def _rayleigh_ritz(Xc: np.ndarray, U32: np.ndarray, k: int, n: int):
    """Float64 eigenpairs of the covariance from float32 Gram eigenvectors (one Rayleigh–Ritz
    step): Q holds the float32 eigenvectors, B = Xcᵀ Q, BᵀB = Qᵀ (Xc Xcᵀ) Q and QᵀQ are formed
    in float64 and the small generalised problem is solved exactly; W is then S-orthonormal,
    so the sample-space vectors Q W are orthonormal and V = B W θ^(-1/2). The Ritz values' error is of the order of the square of the
    float32 vectors' angles, so the small eigenvalues become as accurate as float64 allows
    where float32 alone kept only about 1e-7 of the largest one.
    """
    from scipy.linalg import blas, eigh

    Q = U32.astype(np.float64)  # (n, m): orthonormal to float32 rounding only
    B = blas.dgemm(1.0, Xc.astype(np.float64).T, Q)  # (d, m) = Xcᵀ Q, exact products of floats
    M = symmetrize(blas.dsyrk(1.0, B, trans=1))  # Bᵀ B = Qᵀ G Q (m, m)
    S = symmetrize(blas.dsyrk(1.0, Q, trans=1))  # Qᵀ Q, the basis' own inner products
    # M w = θ S w: the Ritz pairs of the subspace without orthonormalising Q first
    theta, W = eigh(M, S, lower=False, check_finite=False)
    theta, W = np.clip(theta[::-1][:k], 0.0, None), W[:, ::-1][:, :k]
    V = blas.dgemm(1.0, B, W) / np.sqrt(np.where(theta > 0, theta, 1.0))  # (d, k) axes
    return torch.from_numpy(theta / (n - 1)), torch.from_numpy(np.ascontiguousarray(V))


def _normalize(Y: torch.Tensor, how: str) -> torch.Tensor:
    """One power step's normalisation of the basis Y (m, l): QR, LU (the permuted unit-lower
    factor P L, cheaper than QR and stable enough between products) or none."""
    if how == "QR":
        return torch.linalg.qr(Y)[0]
    if how == "LU":
        P, L, _ = torch.linalg.lu(Y)
        return P @ L
    return Y


def randomized(Xc: torch.Tensor | None, n: int, k: int, iterated_power: int | str,
               n_oversamples: int, rng: np.random.RandomState, normalizer: str = "auto", *,
               op=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomized range finder (Halko et al. 2011, Alg. 4.3/4.4) -> (values (k,), axes (d, k)).

    ``Xc`` is the centred data (m, d) as a tensor, or None when ``op`` gives the products
    (``op.mul(M)`` = Xc M, ``op.rmul(M)`` = Xcᵀ M, with ``op.shape`` and ``op.torch_dtype``:
    an implicitly centred sparse matrix, :class:`._sparse.CentredOperator`). The power
    steps are normalised by ``normalizer``: ``"QR"`` (Alg. 4.4, the most accurate; what
    ``"auto"`` means), ``"LU"`` or ``"none"`` (Alg. 4.3: plain powers, which lose the small
    directions to rounding after a few steps); the final basis is always orthonormalised by
    QR.
    """
    mul: Callable[[torch.Tensor], torch.Tensor]
    rmul: Callable[[torch.Tensor], torch.Tensor]
    if Xc is not None:
        shape, dtype, device = tuple(Xc.shape), Xc.dtype, Xc.device
        data = Xc

        def mul(M):
            return data @ M

        def rmul(M):
            return data.T @ M
    else:
        mul, rmul = op.mul, op.rmul
        shape, dtype, device = op.shape, op.torch_dtype, torch.device("cpu")
    how = "QR" if normalizer == "auto" else normalizer
    small = min(shape)
    q = (7 if k < 0.1 * small else 4) if iterated_power == "auto" else int(iterated_power)
    ell = min(k + n_oversamples, small)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(rng.randint(0, 2**31 - 1)))
    Omega = torch.randn((shape[1], ell), generator=gen, dtype=dtype, device=device)
    Y = mul(Omega)  # (m, ell)
    for _ in range(q):
        Y = mul(_normalize(rmul(_normalize(Y, how)), how))
    Q, _ = torch.linalg.qr(Y)
    B = rmul(Q).T  # (ell, d) = Qᵀ Xc
    _, S, Vh = torch.linalg.svd(B, full_matrices=False)
    S = S.to(torch.float64)
    return (S * S / (n - 1))[:k], Vh[:k].T.to(torch.float64)


def arpack(A, n: int, k: int, tol: float,
           rng: np.random.RandomState) -> tuple[torch.Tensor, torch.Tensor]:
    """Leading k singular triplets of the centred data by ARPACK (``scipy.sparse.linalg.svds``).

    ``A`` is the centred data (ndarray) or a ``LinearOperator`` for it; ``tol`` is ARPACK's
    relative accuracy of the Ritz values (0: machine precision). The start vector is drawn
    from ``rng`` (uniform in [−1, 1]), so a fixed ``random_state`` gives a fixed result.
    Returns (eigenvalues of the covariance (k,), axes (d, k)), float64, descending.
    """
    from scipy.sparse.linalg import svds

    v0 = rng.uniform(-1.0, 1.0, min(A.shape))
    _, S, Vt = svds(A, k=k, tol=tol, v0=v0)
    order = np.argsort(S)[::-1]
    S = S[order].astype(np.float64)
    V = np.ascontiguousarray(Vt[order].T, dtype=np.float64)
    return torch.from_numpy(S * S / (n - 1)), torch.from_numpy(V)


def minka_dimension(spectrum: np.ndarray, n: int) -> int:
    """Minka's (2000) Laplace-approximated evidence for each rank -> the most probable one.

    ``spectrum`` holds all d covariance eigenvalues, descending, of n ≥ d samples. For a
    rank k in [1, d − 1], with v the mean of the d − k discarded eigenvalues (at least 1e-15),
    m = dk − k(k + 1)/2 and λ̃ the spectrum with its tail replaced by v, the log evidence is
    (up to terms that do not depend on k)

        log p(U) − (n/2) Σᵢ≤ₖ log λᵢ − (n(d − k)/2) log v + ((m + k)/2) log 2π
        − ½ Σᵢ≤ₖ Σⱼ>ᵢ log(n (λᵢ − λⱼ)(1/λ̃ⱼ − 1/λ̃ᵢ)) − (k/2) log n,

    log p(U) = −k log 2 + Σᵢ≤ₖ [log Γ((d − i + 1)/2) − ((d − i + 1)/2) log π] (eq. 30 of the
    paper). A rank whose k-th eigenvalue is below 1e-15 is not a candidate. Returns the
    argmax in [1, d − 1] (0 only if no rank is a candidate, i.e. d = 1 or all-zero data).
    """
    from scipy.special import gammaln

    lam = np.asarray(spectrum, dtype=np.float64)
    d = lam.shape[0]
    eps = 1e-15
    i = np.arange(1, d + 1, dtype=np.float64)
    log_pu = np.cumsum(gammaln((d - i + 1) / 2.0) - np.log(np.pi) * (d - i + 1) / 2.0)
    log_l = np.cumsum(np.log(np.where(lam > 0, lam, 1.0)))
    tail = np.cumsum(lam[::-1])[::-1]  # tail[k] = Σⱼ≥k λⱼ
    best, best_ll = 0, -np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(1, d):
            if lam[k - 1] < eps:
                continue
            v = max(eps, tail[k] / (d - k))
            m = d * k - k * (k + 1) / 2.0
            tilde = lam.copy()
            tilde[k:] = v
            rows = np.arange(k)[:, None]
            cols = np.arange(d)[None, :]
            terms = (lam[:k, None] - lam[None, :]) * (1.0 / tilde[None, :] - 1.0 / tilde[:k, None])
            upper = cols > rows
            pa = float(np.sum(np.log(terms[upper]))) + upper.sum() * np.log(n)
            ll = (-k * np.log(2.0) + log_pu[k - 1] - n / 2.0 * log_l[k - 1]
                  - n * (d - k) / 2.0 * np.log(v) + np.log(2.0 * np.pi) * (m + k) / 2.0
                  - pa / 2.0 - k * np.log(n) / 2.0)
            if ll > best_ll:
                best, best_ll = k, ll
    return best
