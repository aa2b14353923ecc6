"""Density queries far beyond a model's scale, a reg_covar that swamps the data, and the
memory check under a process's address-space limit.

Oracles: the Gaussian log-density in closed form, evaluated by scipy/numpy on the query
scaled down by an exact power of two (so nothing overflows) and scaled back analytically;
the blobs' own labels; the arithmetic of the limits.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.linalg import solve
from scipy.special import logsumexp

from latentspace import PCA, GaussianMixture, _math

RNG = np.random.RandomState(0)
X = RNG.randn(60, 4) @ np.diag([3.0, 2.0, 1.0, 0.5])
BLOBS = np.r_[RNG.randn(50, 2), RNG.randn(50, 2) + 10.0]
BLOB_LABELS = np.r_[np.zeros(50, int), np.ones(50, int)]
COV_TYPES = ["full", "tied", "diag", "spherical"]


def _gauss_log_pdf(x, mean, cov):
    """log N(x | mean, cov) for a far x, without overflow: the quadratic form of
    u = (x − μ)·2^−k with max |u| in [0.5, 1), times 4^k exactly (a power of two); −inf
    where ½ q itself is beyond float64."""
    d = x.shape[0]
    k = int(np.frexp(np.abs(x - mean).max())[1])
    u = np.ldexp(x - mean, -k)
    q_small = float(u @ solve(cov, u, assume_a="pos"))
    with np.errstate(over="ignore"):
        half = np.ldexp(0.5 * q_small, 2 * k)
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (d * np.log(2 * np.pi) + logdet) - half


def _full_covs(gm):
    t, c = gm.covariance_type, gm.covariances_
    K, d = gm.means_.shape
    if t == "full":
        return c
    if t == "tied":
        return np.repeat(c[None], K, 0)
    if t == "diag":
        return np.stack([np.diag(v) for v in c])
    return np.stack([v * np.eye(d) for v in c])


def _gm_oracle(gm, x):
    covs = _full_covs(gm)
    parts = [np.log(w) + _gauss_log_pdf(x, m, C) for w, m, C in zip(gm.weights_, gm.means_, covs)]
    return float(logsumexp(parts))


# a tolerance from the arithmetic: ½q ≈ 1e308 carries the relative rounding of a
# d-term quadratic form (a few ε per term, times the condition of the covariance ≤ 40 here)
RTOL = 1e-12


# ----------------------------------------------------------------------------- representable
def test_pca_far_row_with_representable_log_density_is_finite_and_exact():
    pca = PCA(2).fit(X)
    C = pca.get_covariance()
    lam0 = pca.explained_variance_[0]
    # along the first axis at z = 1.4e154·√λ0: z² overflows, ½ z²/λ0 ≈ 9.8e307 does not
    x = pca.mean_ + 1.4e154 * np.sqrt(lam0) * pca.components_[0]
    got = pca.score_samples(np.r_[X[:3], x[None]])
    want = _gauss_log_pdf(x, pca.mean_, C)
    assert np.all(np.isfinite(got))
    assert np.isfinite(want) and want < -9e307
    np.testing.assert_allclose(got[3], want, rtol=RTOL)
    # the near rows are unaffected by the far one: scoring 3 or 4 rows takes other BLAS blocks,
    # so the two agree to the rounding of the same quadratic forms, not bit for bit
    np.testing.assert_allclose(got[:3], pca.score_samples(X[:3]), rtol=RTOL)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_gm_far_row_with_representable_log_density_is_finite_and_exact(cov_type):
    gm = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(BLOBS)
    covs = _full_covs(gm)
    k = int(np.argmax(gm.weights_))
    w, V = np.linalg.eigh(covs[k])
    # 1.35e154 standard deviations from component k along its widest axis: ½q ≈ 9.1e307
    x = gm.means_[k] + 1.35e154 * np.sqrt(w[-1]) * V[:, -1]
    got = gm.score_samples(np.r_[BLOBS[:2], x[None]])
    want = _gm_oracle(gm, x)
    assert np.all(np.isfinite(got))
    assert np.isfinite(want) and want < -5e307
    np.testing.assert_allclose(got[2], want, rtol=RTOL)


def test_score_of_many_rows_near_the_bottom_of_the_range_is_their_mean():
    # every row's log-density ≈ −1e307: representable, but their sum (−4e308) is not
    pca = PCA(2).fit(X)
    lam0 = pca.explained_variance_[0]
    c = np.linspace(0.8, 0.9, 40) * 1e154 * np.sqrt(lam0)
    Q = pca.mean_ + c[:, None] * pca.components_[0]
    ll = pca.score_samples(Q)
    oracle = np.array([_gauss_log_pdf(q, pca.mean_, pca.get_covariance()) for q in Q])
    assert np.all(np.isfinite(ll))
    np.testing.assert_allclose(ll, oracle, rtol=RTOL)
    s = pca.score(Q)
    np.testing.assert_allclose(s, np.mean(oracle / 40) * 40, rtol=RTOL)


def test_gm_bic_beyond_float64_is_a_value_error_naming_the_criterion():
    gm = GaussianMixture(1, covariance_type="spherical").fit(BLOBS)
    sd = np.sqrt(gm.covariances_[0])
    Q = gm.means_[0] + np.linspace(1.0, 1.1, 40)[:, None] * 1e154 * sd * np.array([1.0, 0.0])
    ll = gm.score_samples(Q)  # each row representable (≈ −5e307)
    assert np.all(np.isfinite(ll))
    np.testing.assert_allclose(gm.score(Q), np.mean(ll / 40) * 40, rtol=RTOL)
    for crit in ("bic", "aic"):
        with pytest.raises(ValueError, match=rf"{crit.upper()}.*beyond the float64 range.*rescale"):
            getattr(gm, crit)(Q)


# ----------------------------------------------------------------------------- not representable
FACTORS = [1e200, 1e300, -1e300]


@pytest.mark.parametrize("factor", FACTORS)
def test_pca_unrepresentable_rows_raise_naming_rows_and_distance(factor):
    pca = PCA(2).fit(X)
    Q = np.r_[X[:3], X[3:5] * factor]
    for method in ("score_samples", "score"):
        with pytest.raises(ValueError) as info:
            getattr(pca, method)(Q)
        msg = str(info.value)
        assert "2 of 5 row(s)" in msg and "rows 3, 4 at" in msg
        assert "standard deviations" in msg and "rescale X" in msg
        # the distance quoted is the Mahalanobis distance under C, to 3 digits
        u = (X[3] - pca.mean_ / factor)
        d = np.sqrt(u @ solve(pca.get_covariance(), u)) * abs(factor)
        assert _math._format_log10(np.log10(d)) in msg


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("factor", [1e154, 1e300, -1e300])
def test_gm_unrepresentable_rows_raise_in_every_density_query(cov_type, factor):
    gm = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(BLOBS)
    Q = BLOBS * factor
    far = [i for i in range(len(Q)) if not np.isfinite(_gm_oracle(gm, Q[i]))]
    assert far  # at 1e154 some rows stay representable, the others do not
    for method in ("score_samples", "score", "bic", "aic"):
        with pytest.raises(ValueError,
                           match="standard deviations from the model; rescale X") as info:
            getattr(gm, method)(Q)
        assert f"{len(far)} of {len(Q)} row(s)" in str(info.value)
        assert "rows " + ", ".join(map(str, far[:5])) in str(info.value)


def test_float32_query_below_float32_range_raises():
    gm = GaussianMixture(1, covariance_type="diag").fit(BLOBS)
    Q = (BLOBS[:4] * 1e20).astype(np.float32)  # log-density ≈ −1e40: float64 yes, float32 no
    assert np.all(np.isfinite(gm.score_samples(Q.astype(np.float64))))
    with pytest.raises(ValueError, match="float32 \\(pass float64 X\\)"):
        gm.score_samples(Q)
    with pytest.raises(ValueError, match="float32"):
        gm.score_samples(torch.from_numpy(Q))


def test_ordinary_queries_unchanged():
    gm = GaussianMixture(2, random_state=0).fit(BLOBS)
    ll = gm.score_samples(BLOBS)
    oracle = [_gm_oracle(gm, x) for x in BLOBS]
    np.testing.assert_allclose(ll, oracle, rtol=1e-10)


# ----------------------------------------------------------------------------- reg_covar
def test_reg_covar_swamping_tiny_data_is_refused():
    var = np.var(BLOBS, axis=0).max() * 1e-300
    with pytest.raises(ValueError, match=r"reg_covar=1e-06 is larger than the largest "
                       rf"variance of X's features \({var:.3g}\).*rescale X .*StandardScaler"
                       r".*reg_covar below"):
        GaussianMixture(2, random_state=0).fit(BLOBS * 1e-150)


def test_reg_covar_swamping_message_gives_the_variance_beyond_float64():
    var = np.var(BLOBS, axis=0).max()
    assert var * 1e-600 == 0.0  # below float64: the message gives it from working units
    with pytest.raises(ValueError, match=_math._format_log10(np.log10(var) - 600)):
        GaussianMixture(2, random_state=0).fit(BLOBS * 1e-300)


def test_reg_covar_below_the_variance_fits_the_tiny_blobs():
    gm = GaussianMixture(2, random_state=0, reg_covar=1e-306).fit(BLOBS * 1e-150)
    labels = gm.predict(BLOBS * 1e-150)
    assert (labels == BLOB_LABELS).all() or (labels == 1 - BLOB_LABELS).all()


def test_all_constant_tiny_data_still_fit():
    gm = GaussianMixture(1).fit(np.full((10, 3), 1e-150))
    for name in ("weights_", "means_", "covariances_", "precisions_"):
        assert np.all(np.isfinite(getattr(gm, name)))


# ----------------------------------------------------------------------------- RLIMIT_AS
_RLIMIT_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from latentspace import PCA
    from latentspace._memory import available_bytes
    X = np.random.RandomState(0).randn(30000, 60)
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
    room = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (vm + room, vm + room))
    print("avail", available_bytes() <= room)
    try:
        PCA(2, svd_solver="gram").fit(X)
        print("fitted")
    except Exception as e:
        print(type(e).__name__, str(e).replace(chr(10), " "))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_gram_solver_under_an_address_space_limit_is_refused_up_front():
    out = subprocess.run([sys.executable, "-c", _RLIMIT_SCRIPT], capture_output=True, text=True,
                         timeout=120, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    lines = out.stdout.strip().splitlines()
    assert lines[:1] == ["avail True"], (out.stdout, out.stderr[-2000:])
    # the 30000 x 30000 Gram matrix (7.2 GB) cannot fit in the 1 GiB the limit leaves
    assert lines[1].startswith("ValueError"), (out.stdout, out.stderr[-2000:])
    assert "needs about" in lines[1] and "svd_solver" in lines[1]
