"""The compiled E-step of the Gaussian mixture against the array route and scipy.

Both routes compute the same sums in another order (the compiled one takes the quadratic
forms from the differences, the array one from the expanded form), so they agree to a
relative 1e-12: a few hundred roundings of terms of the data's magnitude, on data whose
quadratic forms do not cancel by more than a factor of 100.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from latentspace import GaussianMixture
from latentspace.mixture import _kernels
from latentspace.mixture._family import e_step_block
from latentspace.mixture._gaussian import GaussParams, _GaussianFamily, _log_det

pytestmark = pytest.mark.skipif(_kernels.numba is None, reason="numba is not installed")

RTOL = 1e-12


def _params(rng, cov_type: str, K: int, D: int) -> GaussParams:
    weights = torch.from_numpy(rng.dirichlet(np.ones(K)))
    means = torch.from_numpy(rng.normal(size=(K, D)) * 2)
    shift = torch.from_numpy(rng.normal(size=D) * 0.1)
    if cov_type == "full":
        A = rng.normal(size=(K, D, D)) * 0.3 + np.eye(D)
        cov = torch.from_numpy(A @ A.transpose(0, 2, 1))
        C = torch.linalg.cholesky(cov)
        eye = torch.eye(D, dtype=torch.float64).expand_as(cov)
        L = torch.linalg.solve_triangular(C, eye, upper=False).transpose(-1, -2)
    elif cov_type == "diag":
        cov = torch.from_numpy(rng.uniform(0.3, 3.0, size=(K, D)))
        L = 1.0 / torch.sqrt(cov)
    else:
        cov = torch.from_numpy(rng.uniform(0.3, 3.0, size=K))
        L = 1.0 / torch.sqrt(cov)
    return GaussParams(weights, means, cov, L, _log_det(L, cov_type, K, D), shift)


def _both(cov_type, K, D, n, hard=False, weighted=False, seed=0):
    rng = np.random.default_rng(seed)
    P = _params(rng, cov_type, K, D)
    X = torch.from_numpy(rng.normal(size=(n, D)) * 1.5)
    w = torch.from_numpy(rng.uniform(0, 2, size=n)) if weighted else None
    family = _GaussianFamily(K, cov_type, 1e-6, 1e-6, {}, fit=True)
    fast = e_step_block(family, hard, X, w, P)
    family._kernel = lambda *a: None  # the array route
    slow = e_step_block(family, hard, X, w, P)
    return fast, slow, X, w, P


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert np.abs(a - b).max() <= rtol * max(1.0, np.abs(b).max())


@pytest.mark.parametrize("cov_type,D", [("diag", 5), ("diag", 70), ("spherical", 7), ("full", 3), ("full", 20)])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_e_step_equals_the_array_route(cov_type, D, hard, weighted):
    # 2500 rows: two sub-blocks of the compiled pass and a partial one, partial tiles too
    fast, slow, *_ = _both(cov_type, 6, D, 2500, hard=hard, weighted=weighted)
    assert fast.n == pytest.approx(slow.n, rel=RTOL)
    _close(fast.loglik, slow.loglik)
    _close(fast.nk, slow.nk)
    _close(fast.sums, slow.sums)
    _close(fast.second, slow.second)
    if cov_type == "full":  # the mirrored lower triangle
        _close(fast.second, fast.second.transpose(1, 2), rtol=0)


def test_compiled_log_likelihood_is_scipys():
    fast, _, X, _, P = _both("full", 5, 4, 900, seed=3)
    dens = np.stack([
        np.log(float(P.weights[k])) + multivariate_normal(
            P.means[k].numpy(), P.covariances[k].numpy()).logpdf(X.numpy())
        for k in range(5)], axis=1)
    assert fast.loglik == pytest.approx(float(logsumexp(dens, axis=1).sum()), rel=1e-12)


def test_far_components_underflow_to_tiny_responsibilities_not_nan():
    # components 10⁴ standard deviations apart: exp of differences below −700 is clipped
    rng = np.random.default_rng(1)
    P = _params(rng, "diag", 3, 2)
    P = GaussParams(P.weights, P.means * 1e4, P.covariances, P.prec_chol, P.log_det, P.shift)
    X = torch.from_numpy(rng.normal(size=(300, 2)))
    family = _GaussianFamily(3, "diag", 1e-6, 1e-6, {}, fit=True)
    S = e_step_block(family, False, X, None, P)
    assert math.isfinite(S.loglik) and bool(torch.isfinite(S.second).all())
    assert float(S.nk.sum()) == pytest.approx(300, rel=1e-12)


def test_result_does_not_depend_on_the_thread_count():
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only")
    rng = np.random.default_rng(2)
    P = _params(rng, "diag", 4, 6)
    X = torch.from_numpy(rng.normal(size=(5000, 6)))
    family = _GaussianFamily(4, "diag", 1e-6, 1e-6, {}, fit=True)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = e_step_block(family, False, X, None, P)
        numba.set_num_threads(2)
        two = e_step_block(family, False, X, None, P)
    finally:
        numba.set_num_threads(old)
    assert one.loglik == two.loglik
    assert torch.equal(one.second, two.second)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::latentspace.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cov_type", ["diag", "spherical", "full"])
def test_fit_with_the_compiled_pass_matches_scikit_learn(cov_type):
    from sklearn.mixture import GaussianMixture as SkGM

    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(size=(400, 3)) + c for c in (0, 6, 12)])
    init = dict(weights_init=np.full(3, 1 / 3), means_init=X[[0, 500, 1000]])
    ours = GaussianMixture(3, covariance_type=cov_type, max_iter=20, tol=0, **init).fit(X)
    sk = SkGM(3, covariance_type=cov_type, max_iter=20, tol=0, **init).fit(X)
    # 20 EM steps of a well-separated mixture: rounding differences do not grow
    np.testing.assert_allclose(ours.means_, sk.means_, rtol=1e-9, atol=1e-9)
    assert ours.score(X) == pytest.approx(sk.score(X), rel=1e-10)
