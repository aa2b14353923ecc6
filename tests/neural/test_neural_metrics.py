"""Parzen-window log-likelihood and ring mode coverage against direct computations."""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

from latentspace.metrics import (
    make_ring_of_gaussians,
    mode_coverage,
    parzen_log_likelihood,
    parzen_window_score,
    ring_modes,
)


def scipy_parzen(X, S, sigma):
    """Mixture of N(s_i, σ² I) with equal weights, evaluated by scipy, one kernel at a time."""
    logs = np.stack([multivariate_normal(s, sigma**2 * np.eye(len(s))).logpdf(X) for s in S])
    return logsumexp(logs, axis=0) - np.log(len(S))


def test_parzen_matches_scipy_and_is_blocked_consistently():
    rng = np.random.default_rng(0)
    X, S = rng.normal(size=(13, 4)), rng.normal(size=(50, 4))
    for sigma in (0.1, 0.5, 2.0):
        ref = scipy_parzen(X, S, sigma)
        np.testing.assert_allclose(parzen_log_likelihood(X, S, sigma), ref, rtol=1e-10)
        np.testing.assert_allclose(parzen_log_likelihood(X, S, sigma, batch_size=3), ref, rtol=1e-10)
    many = parzen_log_likelihood(X, S, [0.1, 0.5])
    assert many.shape == (2, 13)
    np.testing.assert_allclose(many[1], scipy_parzen(X, S, 0.5), rtol=1e-10)


def test_parzen_window_score_selects_sigma_on_validation_and_estimates_entropy():
    rng = np.random.default_rng(1)
    samples, val, test = rng.normal(size=(5000, 1)), rng.normal(size=(500, 1)), rng.normal(size=(2000, 1))
    sigmas = np.logspace(-2, 0.5, 25)
    res = parzen_window_score(samples, val, test, sigmas=sigmas)
    val_means = parzen_log_likelihood(val, samples, sigmas).mean(1)
    assert res["sigma"] == sigmas[np.argmax(val_means)]
    assert res["mean"] == pytest.approx(parzen_log_likelihood(test, samples, res["sigma"]).mean())
    # a good kernel estimate of N(0, 1) recovers its mean log-density, -½ log(2πe)
    assert res["mean"] == pytest.approx(norm.entropy() * -1, abs=0.05)
    assert 0 < res["se"] < 0.05


def test_parzen_rejects_bad_sigma_and_width_mismatch():
    with pytest.raises(ValueError, match="sigmas"):
        parzen_log_likelihood(np.zeros((2, 2)), np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError, match="features"):
        parzen_log_likelihood(np.zeros((2, 2)), np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        parzen_log_likelihood(np.full((2, 2), np.nan), np.zeros((3, 2)), 1.0)


def test_ring_of_gaussians():
    X, labels, modes = make_ring_of_gaussians(8000, random_state=0)
    assert X.shape == (8000, 2) and X.dtype == np.float32 and modes.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(modes, axis=1), 2.0)
    np.testing.assert_allclose(modes, ring_modes(8, 2.0))
    resid = X - modes[labels]
    assert resid.std() == pytest.approx(0.02, rel=0.05)
    assert np.bincount(labels).min() > 800


def test_mode_coverage_of_true_data_collapsed_and_far_samples():
    X, _, modes = make_ring_of_gaussians(20000, random_state=0)
    cov = mode_coverage(X, modes, 0.02)
    assert cov["modes_covered"] == 8
    # P(‖ε‖ ≤ 3σ) for a 2-D isotropic Gaussian is 1 - exp(-9/2)
    assert cov["high_quality"] == pytest.approx(1 - np.exp(-4.5), abs=0.003)
    one = mode_coverage(np.repeat(modes[:1], 100, 0), modes, 0.02)
    assert one["modes_covered"] == 1 and one["high_quality"] == 1.0
    far = mode_coverage(np.zeros((50, 2)), modes, 0.02)
    assert far["modes_covered"] == 0 and far["high_quality"] == 0.0
    # a mode reached by fewer than min_fraction of the samples does not count
    few = np.vstack([np.repeat(modes[:1], 995, 0), np.repeat(modes[1:2], 5, 0)])
    assert mode_coverage(few, modes, 0.02)["modes_covered"] == 1
