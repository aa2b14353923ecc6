"""Displays for clustering: prepared numbers checked without drawing, then a smoke draw."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from latentspace import GaussianMixture, KMeans, choose_k
from latentspace.mixture import anneal_variance
from latentspace.plotting import (
    AnnealingDisplay,
    ChooseKDisplay,
    EllipsesDisplay,
    EMTraceDisplay,
    covariance_ellipses,
)


def test_choose_k_display_marks_the_chosen_k():
    X, _ = make_blobs(300, centers=[[0, 0], [10, 0], [0, 10]], random_state=0)
    res = choose_k(KMeans(random_state=0), X, range(1, 7))
    disp = res.display
    assert isinstance(disp, ChooseKDisplay)
    np.testing.assert_array_equal(disp.scores, res.scores)
    assert disp.best_k == res.best_k and disp.best_score == res.scores[res.best_k - 1]
    disp.plot()
    assert disp.ax_.get_xlabel() == "K"
    assert disp.ax_.lines[-1].get_xdata()[0] == res.best_k
    with pytest.raises(ValueError, match="best_k"):
        ChooseKDisplay([1, 2], [3.0, 2.0], 5, "elbow")


def test_covariance_ellipses_closed_forms():
    means = np.array([[0.0, 0.0], [1.0, 2.0]])
    ell = covariance_ellipses(means, np.array([4.0, 1.0]), "spherical", n_std=2)
    np.testing.assert_allclose(ell[:, 2:4], [[8, 8], [4, 4]])
    ell = covariance_ellipses(means, np.array([[9.0, 1.0], [1.0, 4.0]]), "diag", n_std=1)
    np.testing.assert_allclose(ell[0, 2:], [6, 2, 0], atol=1e-12)
    np.testing.assert_allclose(ell[1, 2:4], [4, 2])
    assert abs(ell[1, 4]) in (90.0, -90.0) or np.isclose(abs(ell[1, 4]), 90)
    rot = np.array([[2.0, 1.0], [1.0, 2.0]])  # eigenvalues 3 and 1 along the diagonals
    ell = covariance_ellipses(means[:1], rot[None], "full", n_std=1)
    np.testing.assert_allclose(ell[0, 2:4], [2 * np.sqrt(3), 2])
    assert np.isclose(ell[0, 4] % 180, 45)
    with pytest.raises(ValueError, match="2-D"):
        covariance_ellipses(np.zeros((2, 3)), np.ones(2), "spherical")


def test_ellipses_em_trace_and_annealing_displays_draw():
    X, _ = make_blobs(200, centers=3, random_state=1)
    gm = GaussianMixture(3, random_state=0).fit(X)
    km = KMeans(3, random_state=0).fit(X)
    d = EllipsesDisplay.from_estimator(gm, X).plot()
    assert len(d.ax_.patches) == 3
    d = EllipsesDisplay.from_estimator(km, X).plot()
    np.testing.assert_allclose(d.ellipses[:, :2], km.cluster_centers_)
    t = EMTraceDisplay.from_estimators([gm], ["full"]).plot()
    assert t.monotone == [True]
    path = anneal_variance(X, km.cluster_centers_, [10.0, 1e-3])
    a = AnnealingDisplay.from_path(path, km.labels_).plot()
    assert a.agreement[-1] == 1.0
