"""Displays: data preparation checked against oracles without drawing, then a drawing smoke test."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA

from latentspace.decomposition import PCA
from latentspace.plotting import (
    ExplainedVarianceDisplay,
    ImageGridDisplay,
    ProjectionDisplay,
    ReconstructionDisplay,
    truncated_reconstruction,
)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data / 16.0, d.target, d.target_names


@pytest.fixture(scope="module")
def pca(digits):
    return PCA().fit(digits[0])


# ----------------------------------------------------------------------------- explained variance
def test_explained_variance_is_cumsum_of_estimator_ratio(pca):
    disp = ExplainedVarianceDisplay.from_estimator(pca)
    np.testing.assert_array_equal(disp.ratio, pca.explained_variance_ratio_)
    np.testing.assert_array_equal(disp.cumulative, np.cumsum(pca.explained_variance_ratio_))


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.95])
def test_threshold_count_matches_sklearn_variance_fraction(digits, pca, threshold):
    # scikit-learn's PCA(n_components=float) keeps the fewest components reaching the fraction
    expected = SkPCA(n_components=threshold, svd_solver="full").fit(digits[0]).n_components_
    disp = ExplainedVarianceDisplay.from_estimator(pca, threshold=threshold)
    assert disp.n_components_threshold == expected


def test_threshold_not_reached_is_none():
    disp = ExplainedVarianceDisplay.from_data([0.3, 0.2, 0.1], threshold=0.9)
    assert disp.n_components_threshold is None
    with pytest.raises(ValueError, match="threshold"):
        ExplainedVarianceDisplay.from_data([0.5], threshold=1.5)
    with pytest.raises(ValueError, match="empty"):
        ExplainedVarianceDisplay.from_data([])


def test_unfitted_estimator_is_a_clear_error():
    with pytest.raises(ValueError, match="explained_variance_ratio_"):
        ExplainedVarianceDisplay.from_estimator(PCA())


# ----------------------------------------------------------------------------- image grid
@pytest.mark.parametrize("n_images, n_cols, shape", [(24, 8, (3, 8)), (10, 4, (3, 4)),
                                                     (3, 8, (1, 3)), (64, 8, (8, 8))])
def test_component_grid_shape_and_images(pca, n_images, n_cols, shape):
    disp = ImageGridDisplay.from_estimator(pca, (8, 8), n_images=n_images, n_cols=n_cols)
    assert disp.grid_shape == shape
    np.testing.assert_array_equal(disp.images, pca.components_[:n_images].reshape(-1, 8, 8))
    # diverging map centred on 0: each image's limits are ±max|pixel|
    m = np.abs(disp.images).reshape(len(disp.images), -1).max(1)
    np.testing.assert_allclose(disp.limits, np.stack([-m, m], 1))
    ratio = pca.explained_variance_ratio_
    assert disp.titles[0] == f"PC 1 ({100 * ratio[0]:.1f}%)"


def test_data_grid_uses_shared_limits(digits):
    X = digits[0]
    disp = ImageGridDisplay.from_data(X, (8, 8), n_images=5, titles=list("abcdefg"))
    assert disp.images.shape == (5, 8, 8) and disp.titles == list("abcde")
    np.testing.assert_array_equal(disp.images[2], X[2].reshape(8, 8))
    assert np.all(disp.limits[:, 0] == X[:5].min()) and np.all(disp.limits[:, 1] == X[:5].max())


def test_grid_rejects_wrong_image_shape(digits):
    with pytest.raises(ValueError, match="64 values|7x9"):
        ImageGridDisplay.from_data(digits[0], (7, 9))


# ----------------------------------------------------------------------------- reconstructions
def test_available_ks_are_clipped():
    ks = (5, 10, 20, 50, 150)
    assert ReconstructionDisplay.available_ks(ks, 64) == [5, 10, 20, 50, 64]
    assert ReconstructionDisplay.available_ks(ks, 150) == [5, 10, 20, 50, 150]
    assert ReconstructionDisplay.available_ks(ks, 3) == [3]
    assert ReconstructionDisplay.available_ks((2, 1), 9) == [1, 2]


def test_reconstruction_equals_truncated_projection(digits, pca):
    X = digits[0]
    idx = [0, 5, 17, 300]
    disp = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8), indices=idx)
    assert disp.ks == [5, 10, 20, 50, 64]
    assert disp.grid_shape == (6, 4)
    np.testing.assert_array_equal(disp.originals, X[idx].reshape(-1, 8, 8))
    Z = pca.transform(X[idx])
    C, mu = pca.components_, pca.mean_
    for i, k in enumerate(disp.ks):
        # x̂_k = μ + Z[:, :k] C[:k]  (the truncated projection, written out)
        expected = (mu + Z[:, :k] @ C[:k]).reshape(-1, 8, 8)
        np.testing.assert_allclose(disp.reconstructions[i], expected, atol=1e-12)
        zk = Z.copy()
        zk[:, k:] = 0
        np.testing.assert_allclose(disp.reconstructions[i],
                                   pca.inverse_transform(zk).reshape(-1, 8, 8), atol=1e-12)


@pytest.mark.parametrize("k", [5, 20])
def test_truncation_equals_a_pca_fitted_with_k_components(digits, pca, k):
    # nested subspaces: the first k axes of the full fit are those of a k-component fit
    X = digits[0]
    ref = SkPCA(n_components=k, svd_solver="full").fit(X)
    got = truncated_reconstruction(pca, pca.transform(X[:50]), k)
    np.testing.assert_allclose(got, ref.inverse_transform(ref.transform(X[:50])), atol=1e-9)


def test_reconstruction_mse_is_sum_of_discarded_eigenvalues(digits, pca):
    X = digits[0]
    n, d = X.shape
    disp = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8), batch_size=500)
    ev = pca.explained_variance_
    for k, mse in zip(disp.ks, disp.mse):
        # in-sample: mean ‖x − x̂_k‖² / d = (n−1)/n Σ_{j>k} λ_j / d
        assert mse == pytest.approx((n - 1) / n * ev[k:].sum() / d, rel=1e-9, abs=1e-15)


def test_reconstruction_mse_on_a_seeded_subset(digits, pca):
    X = digits[0]
    full = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8))
    same = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8), mse_max_samples=5000)
    assert full.mse_n_samples == same.mse_n_samples == len(X)
    np.testing.assert_array_equal(full.mse, same.mse)
    a = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8), mse_max_samples=600,
                                             random_state=1)
    b = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8), mse_max_samples=600,
                                             random_state=1)
    assert a.mse_n_samples == 600
    np.testing.assert_array_equal(a.mse, b.mse)
    # per-row errors at k: their mean over all rows is the full MSE; a subset's lies within
    # the range of the per-row values and near the full mean
    Z = pca.transform(X)
    for i, k in enumerate(a.ks[:-1]):
        per_row = ((truncated_reconstruction(pca, Z, k) - X) ** 2).mean(1)
        assert per_row.min() <= a.mse[i] <= per_row.max()
        assert a.mse[i] == pytest.approx(full.mse[i], rel=0.15)


def test_reconstruction_with_whitening_undoes_the_scaling(digits, pca):
    X = digits[0]
    white = PCA(whiten=True).fit(X)
    a = ReconstructionDisplay.from_estimator(pca, X[:300], image_shape=(8, 8), ks=(10,))
    b = ReconstructionDisplay.from_estimator(white, X[:300], image_shape=(8, 8), ks=(10,))
    np.testing.assert_allclose(a.reconstructions, b.reconstructions, atol=1e-9)


# ----------------------------------------------------------------------------- projection
def test_projection_is_transform_restricted_to_two_dims(digits, pca):
    X, y, names = digits
    disp = ProjectionDisplay.from_estimator(pca, X, y, target_names=names)
    np.testing.assert_array_equal(disp.Z, pca.transform(X)[:, :2])
    assert disp.categorical and disp.xlabel == "PC 1"
    other = ProjectionDisplay.from_estimator(pca, X, dims=(2, 0))
    np.testing.assert_array_equal(other.Z, pca.transform(X)[:, [2, 0]])
    with pytest.raises(ValueError, match="latent dimensions"):
        ProjectionDisplay.from_estimator(PCA(2).fit(X), X, dims=(0, 2))


def test_projection_subset_keeps_labels_aligned(digits, pca):
    X, y, _ = digits
    a = ProjectionDisplay.from_estimator(pca, X, y, max_points=100, random_state=3)
    b = ProjectionDisplay.from_estimator(pca, X, y, max_points=100, random_state=3)
    assert a.Z.shape == (100, 2)
    np.testing.assert_array_equal(a.Z, b.Z)
    # the display projects its subset, we project all rows: another matrix product, whose
    # BLAS blocking differs, so rows are matched to float64 precision, not bit for bit
    full = pca.transform(X)[:, :2]
    tol = 1e-9 * np.abs(full).max()
    dist = np.abs(full[None, :, :] - a.Z[:, None, :]).max(-1)  # (100, n_samples)
    for i, label in enumerate(a.labels):
        matches = np.flatnonzero(dist[i] <= tol)
        assert matches.size >= 1, f"projected row {i} is no row of the full projection"
        assert label in y[matches]  # duplicated images may carry either label


def test_projection_continuous_labels_and_bad_shapes():
    rng = np.random.default_rng(0)
    disp = ProjectionDisplay.from_data(rng.normal(size=(50, 2)), rng.normal(size=50))
    assert not disp.categorical
    with pytest.raises(ValueError, match="n_samples, 2"):
        ProjectionDisplay.from_data(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="labels"):
        ProjectionDisplay.from_data(np.zeros((5, 2)), np.zeros(4))


# ----------------------------------------------------------------------------- drawing
def test_plot_smoke(digits, pca):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y, names = digits
    ev = ExplainedVarianceDisplay.from_estimator(pca).plot()
    assert ev.ax_.figure is ev.figure_ and len(ev.ax_.lines) >= 2
    grid = ImageGridDisplay.from_estimator(pca, (8, 8), n_images=10, n_cols=4).plot()
    assert grid.axes_.shape == (3, 4)
    assert sum(ax.get_visible() for ax in grid.axes_.ravel()) == 10
    assert len(grid.axes_[0, 0].images) == 1
    rec = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8), n_images=3).plot()
    assert rec.axes_.shape == (6, 3) and rec.axes_[1, 0].get_ylabel().startswith("k = 5")
    proj = ProjectionDisplay.from_estimator(pca, X, y, target_names=names).plot()
    legend = proj.ax_.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [str(n) for n in names]
    fig, ax = plt.subplots()
    assert ExplainedVarianceDisplay.from_estimator(pca).plot(ax=ax).ax_ is ax
    for d in (ev, grid, rec, proj):
        d.figure_.canvas.draw()
    plt.close("all")


def test_preparing_displays_does_not_import_pyplot():
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        "import sys, numpy as np\n"
        "from latentspace.decomposition import PCA\n"
        "from latentspace.plotting import ExplainedVarianceDisplay, ImageGridDisplay, "
        "ProjectionDisplay, ReconstructionDisplay\n"
        "X = np.random.default_rng(0).random((40, 16))\n"
        "p = PCA().fit(X)\n"
        "ExplainedVarianceDisplay.from_estimator(p)\n"
        "ImageGridDisplay.from_estimator(p, (4, 4))\n"
        "ReconstructionDisplay.from_estimator(p, X, image_shape=(4, 4))\n"
        "ProjectionDisplay.from_estimator(p, X)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
