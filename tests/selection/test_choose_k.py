"""choose_k against known truths and its own definitions of each criterion."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.model_selection import KFold

from latentspace import BernoulliMixture, GaussianMixture, KMeans, choose_k
from latentspace.selection import reconstruction_error


def _grid_blobs(k, n_per=80, seed=0):
    centres = [[10.0 * (i % 3), 10.0 * (i // 3)] for i in range(k)]
    return make_blobs(n_per * k, centers=centres, cluster_std=1.0, random_state=seed)[0]


@pytest.mark.parametrize("true_k", [2, 3, 4, 5])
def test_elbow_finds_the_true_k_on_separated_blobs(true_k):
    X = _grid_blobs(true_k)
    res = choose_k(KMeans(random_state=0, n_init=3), X, range(1, 9))
    assert res.best_k == true_k
    # E(K) is K-means' inertia (the lecture's reconstruction error)
    for k, est in res.estimators.items():
        assert res.scores[list(res.ks).index(k)] == pytest.approx(est.inertia_, rel=1e-9)
    assert np.all(np.diff(res.scores) < 0)


def test_reconstruction_error_of_a_mixture_uses_its_means():
    X = _grid_blobs(3)
    gm = GaussianMixture(3, random_state=0).fit(X)
    expected = ((X - gm.means_[gm.predict(X)]) ** 2).sum()
    assert reconstruction_error(gm, X) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("criterion", ["bic", "aic"])
def test_information_criteria_are_the_models_own(criterion):
    X = _grid_blobs(3)
    res = choose_k(GaussianMixture(random_state=0), X, [1, 2, 3, 4, 5], criterion=criterion)
    assert res.best_k == 3
    for i, k in enumerate(res.ks):
        assert res.scores[i] == pytest.approx(getattr(res.estimators[int(k)], criterion)(X))


def test_heldout_is_the_mean_validation_nll_over_folds():
    X = _grid_blobs(3, n_per=60)
    res = choose_k(GaussianMixture(random_state=0), X, [1, 2, 3, 4], criterion="heldout", cv=3,
                   random_state=0)
    assert res.best_k == 3
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    for i, k in enumerate(res.ks):
        nll = [-GaussianMixture(int(k), random_state=0).fit(X[tr]).score(X[va]) for tr, va in folds]
        assert res.scores[i] == pytest.approx(np.mean(nll), rel=1e-10)
        assert res.scores_std[i] == pytest.approx(np.std(nll), rel=1e-8, abs=1e-12)


def test_heldout_for_kmeans_scores_its_gaussian_limit_and_for_bernoulli():
    X = _grid_blobs(3, n_per=60)
    res = choose_k(KMeans(random_state=0), X, [1, 2, 3, 4, 5], criterion="heldout", cv=3,
                   random_state=0)
    assert res.best_k == 3
    rng = np.random.RandomState(0)
    protos = np.array([[0.9] * 8 + [0.1] * 8, [0.1] * 8 + [0.9] * 8])
    B = (rng.uniform(size=(400, 16)) < protos[rng.randint(2, size=400)]).astype(float)
    res = choose_k(BernoulliMixture(random_state=0), B, [1, 2, 3, 4], criterion="heldout", cv=3,
                   random_state=0)
    assert res.best_k == 2


def test_bad_arguments_are_named():
    X = _grid_blobs(2)
    with pytest.raises(ValueError, match="criterion"):
        choose_k(KMeans(), X, [1, 2], criterion="gap")
    with pytest.raises(ValueError, match="increasing"):
        choose_k(KMeans(), X, [3, 2])
    with pytest.raises(ValueError, match="integers"):
        choose_k(KMeans(), X, [0, 1])
    with pytest.raises(ValueError, match="bic"):
        choose_k(KMeans(), X, [1, 2], criterion="bic")
    with pytest.raises(ValueError, match="exceeds"):
        choose_k(KMeans(), X[:5], [1, 6])
    from sklearn.decomposition import PCA

    with pytest.raises(ValueError, match="predict"):
        choose_k(PCA(), X, [1, 2], criterion="elbow")
    with pytest.raises(ValueError, match="n_clusters nor n_components"):
        choose_k(KFoldLike(), X, [1, 2])


class KFoldLike:
    def get_params(self, deep=False):
        return {"n_splits": 3}
