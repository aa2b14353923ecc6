"""Fréchet distance, k-NN precision/recall and class coverage against closed forms."""

import numpy as np
import pytest
import scipy.linalg

from latentspace.metrics import (
    class_coverage,
    frechet_distance,
    gaussian_frechet_distance,
    precision_recall,
)

EPS = np.finfo(np.float64).eps


def _random_spd(rng, d, scale=1.0):
    A = rng.standard_normal((d, d))
    return scale * (A @ A.T / d + 0.1 * np.eye(d))


def _with_moments(rng, n, mean, cov):
    """n rows whose sample mean and covariance (ddof=1) are exactly ``mean`` and ``cov``."""
    d = len(mean)
    Z = rng.standard_normal((n, d))
    Z -= Z.mean(0)
    L = np.linalg.cholesky(np.cov(Z, rowvar=False))
    Z = np.linalg.solve(L, Z.T).T  # sample covariance now exactly I (up to round-off)
    return mean + Z @ np.linalg.cholesky(cov).T


# ----------------------------------------------------------------------------- Fréchet distance
def test_gaussian_frechet_distance_one_dimension_closed_form():
    # W2² between N(m1, s1²) and N(m2, s2²) is (m1 − m2)² + (s1 − s2)²
    got = gaussian_frechet_distance([1.5], [[4.0]], [-0.5], [[0.25]])
    assert got == pytest.approx(2.0**2 + (2.0 - 0.5) ** 2, rel=1e-14)


def test_gaussian_frechet_distance_diagonal_closed_form():
    a, b = np.array([1.0, 2.0, 9.0]), np.array([4.0, 0.5, 1.0])
    ma, mb = np.array([0.0, 1.0, -1.0]), np.array([2.0, 1.0, 3.0])
    expected = np.sum((ma - mb) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = gaussian_frechet_distance(ma, np.diag(a), mb, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-13)


def test_gaussian_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
    rng = np.random.RandomState(0)
    d = 6
    Ca, Cb = _random_spd(rng, d), _random_spd(rng, d, 3.0)
    ma, mb = rng.standard_normal(d), rng.standard_normal(d)
    root = scipy.linalg.sqrtm(Ca @ Cb)  # oracle: the general (non-symmetric) square root
    expected = np.sum((ma - mb) ** 2) + np.trace(Ca + Cb - 2 * root.real)
    got = gaussian_frechet_distance(ma, Ca, mb, Cb)
    assert got == pytest.approx(expected, rel=1e-10)


def test_gaussian_frechet_distance_survives_rank_deficient_covariances():
    # a rank-1 covariance has eigenvalues that round to tiny negatives; the result stays exact
    v = np.array([1.0, 2.0, -1.0])
    C = np.outer(v, v)
    assert gaussian_frechet_distance(np.zeros(3), C, np.zeros(3), C) == pytest.approx(
        0.0, abs=1e-6 * np.trace(C))
    # N(0, vvᵀ) vs N(0, 4vvᵀ): along v the spreads are ‖v‖ and 2‖v‖, so W2² = ‖v‖²
    got = gaussian_frechet_distance(np.zeros(3), C, np.zeros(3), 4 * C)
    assert got == pytest.approx(v @ v, rel=1e-6)


def test_frechet_distance_of_samples_with_exact_moments_equals_the_closed_form():
    rng = np.random.RandomState(1)
    d = 5
    Ca, Cb = _random_spd(rng, d), _random_spd(rng, d, 0.5)
    ma, mb = rng.standard_normal(d), rng.standard_normal(d) + 1.0
    A, B = _with_moments(rng, 400, ma, Ca), _with_moments(rng, 300, mb, Cb)
    expected = gaussian_frechet_distance(ma, Ca, mb, Cb)
    # moments exact to ~1e-15 relative: the distance too, up to the conditioning of sqrt
    assert frechet_distance(A, B) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_two_large_gaussian_samples_within_sampling_error():
    rng = np.random.RandomState(2)
    n, ma, mb = 200_000, np.array([0.0, 0.0]), np.array([1.0, -2.0])
    Ca, Cb = np.array([[1.0, 0.3], [0.3, 0.5]]), np.array([[2.0, -0.4], [-0.4, 1.0]])
    A = rng.multivariate_normal(ma, Ca, n)
    B = rng.multivariate_normal(mb, Cb, n)
    expected = gaussian_frechet_distance(ma, Ca, mb, Cb)
    # the mean term dominates the error: ‖Δμ̂‖² − ‖Δμ‖² ≈ 2 Δμᵀε, ε ~ N(0, (Ca + Cb)/n); the
    # covariance terms move by O(‖Σ‖ √(2/n)) each. Five standard errors of their sum:
    dm = mb - ma
    se_mean = 2 * np.sqrt(dm @ (Ca + Cb) @ dm / n)
    se_cov = 2 * (np.trace(Ca) + np.trace(Cb)) * np.sqrt(2 / n)
    assert abs(frechet_distance(A, B) - expected) < 5 * (se_mean + se_cov)


def test_frechet_distance_of_a_set_with_itself_is_zero_to_round_off():
    rng = np.random.RandomState(3)
    A = rng.standard_normal((500, 8)) * 3 + 10
    tr = np.trace(np.cov(A, rowvar=False))
    assert 0.0 <= frechet_distance(A, A) <= 1e3 * EPS * 8 * tr


def test_frechet_distance_translation_adds_the_squared_shift():
    rng = np.random.RandomState(4)
    A = rng.standard_normal((300, 4))
    B = rng.standard_normal((250, 4)) @ rng.standard_normal((4, 4))
    v = np.array([3.0, -1.0, 0.5, 2.0])
    tr = np.trace(np.cov(A, rowvar=False))
    assert frechet_distance(A, A + v) == pytest.approx(v @ v, abs=1e3 * EPS * 4 * (tr + v @ v))
    # a common translation changes nothing
    assert frechet_distance(A + v, B + v) == pytest.approx(frechet_distance(A, B), rel=1e-10)


def test_frechet_distance_rejects_mismatched_or_too_small_sets():
    with pytest.raises(ValueError, match="same feature map"):
        frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(np.zeros((1, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        gaussian_frechet_distance([np.nan], [[1.0]], [0.0], [[1.0]])


# ----------------------------------------------------------------------------- precision / recall
def test_precision_recall_of_identical_sets_is_one_and_one():
    A = np.random.RandomState(5).standard_normal((200, 3))
    pr = precision_recall(A, A.copy())
    assert (pr["precision"], pr["recall"], pr["k"]) == (1.0, 1.0, 3)


def test_precision_recall_of_far_apart_sets_is_zero_and_zero():
    rng = np.random.RandomState(6)
    real, fake = rng.standard_normal((150, 3)), rng.standard_normal((120, 3)) + 100.0
    pr = precision_recall(real, fake)
    assert (pr["precision"], pr["recall"]) == (0.0, 0.0)


def test_precision_recall_of_a_fake_set_on_half_the_real_modes():
    # four well separated modes of 50 points each; the fake set copies two of them. Every
    # fake point is a real point (precision 1); the real points of the two covered modes are
    # fake points, those of the two missed modes are 100 units from any fake ball, whose radii
    # are a few units (recall exactly 1/2).
    rng = np.random.RandomState(7)
    centres = 100.0 * np.eye(4)
    real = np.vstack([c + rng.standard_normal((50, 4)) for c in centres])
    fake = real[:100].copy()
    pr = precision_recall(real, fake, k=3)
    assert pr["precision"] == 1.0
    assert pr["recall"] == 0.5


def test_precision_recall_matches_a_brute_force_oracle_for_several_k():
    # overlapping uniform squares: shares strictly between 0 and 1, checked against the
    # definition written out with numpy (all pairwise distances, k-th neighbour radii)
    rng = np.random.RandomState(8)
    real, fake = rng.uniform(0, 10, (40, 2)), rng.uniform(3, 13, (30, 2))
    for k in (1, 3, 5):
        def manifold_share(centres, queries):
            dc = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
            radius = np.sort(dc, axis=1)[:, k]  # column 0 is the point itself
            dq = np.linalg.norm(queries[:, None] - centres[None], axis=-1)
            return float((dq <= radius[None]).any(1).mean())
        pr = precision_recall(real, fake, k=k)
        assert pr["precision"] == pytest.approx(manifold_share(real, fake), abs=1e-12)
        assert pr["recall"] == pytest.approx(manifold_share(fake, real), abs=1e-12)


def test_precision_recall_rejects_bad_k_and_small_sets():
    A = np.zeros((4, 2))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        precision_recall(A, A, k=0)
    with pytest.raises(ValueError, match="more than k=4"):
        precision_recall(A, A, k=4)
    with pytest.raises(ValueError, match="same feature map"):
        precision_recall(A, np.zeros((4, 3)))


# ----------------------------------------------------------------------------- class coverage
def test_class_coverage_counts_classes_and_the_largest_share():
    got = class_coverage(np.array([0, 0, 0, 2, 2, 5]), 10)
    assert got == {"classes_found": 3, "n_classes": 10, "coverage": 0.3,
                   "largest_class_share": 0.5}


def test_class_coverage_of_a_balanced_and_a_collapsed_set():
    balanced = class_coverage(np.repeat(np.arange(4), 25), 4)
    assert (balanced["classes_found"], balanced["largest_class_share"]) == (4, 0.25)
    collapsed = class_coverage(np.full(7, 3), 4)
    assert (collapsed["classes_found"], collapsed["largest_class_share"]) == (1, 1.0)


def test_class_coverage_rejects_out_of_range_classes():
    with pytest.raises(ValueError, match=r"integer classes in \[0, 3\)"):
        class_coverage(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="non-empty"):
        class_coverage(np.array([], dtype=int), 3)
