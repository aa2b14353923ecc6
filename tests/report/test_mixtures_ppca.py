"""The mixtures chapter's comparison of PPCAMixture with full and diagonal Gaussian mixtures
on held-out digits: its numbers come from the fitted models and its sentence says which
model wins and by how much."""

import re

import numpy as np
from sklearn.datasets import load_digits

from latentspace import PCA, GaussianMixture, PPCAMixture
from latentspace.report import TourContext
from latentspace.report.chapters.mixtures import _ppca_table


def test_the_held_out_table_reads_the_models_and_states_the_winner():
    d = load_digits()
    X = d.data[:1500] / 16.0
    ctx = TourContext(name="digits", X=X, y=d.target[:1500], image_shape=(8, 8), quick=True)
    Z = PCA(0.99, whiten=True, random_state=0).fit_transform(X)
    table, numbers, verdict = _ppca_table(ctx, Z, 10)
    shared = ctx.results["mixtures_heldout"]
    models, test = shared["models"], shared["test"]
    assert len(test) == 375 and table.notes == verdict
    kinds = {GaussianMixture: 0, PPCAMixture: 0}
    for label, (score, n_params) in table.rows:
        est = models[label]
        kinds[type(est)] += 1
        assert est.n_components == 10 and est.n_features_in_ == Z.shape[1]
        assert score == est.score(test) and n_params == est._n_parameters()
    assert kinds == {GaussianMixture: 2, PPCAMixture: 2}
    scores = {label: row[0] for label, row in table.rows}
    best = max((n for n in scores if n.startswith("PPCA")), key=scores.get)
    gap = scores[best] - scores["GaussianMixture(full)"]
    assert shared["best"] == best and list(numbers.values()) == [gap]
    assert ("does not beat" in verdict) == (gap <= 0)
    shown = float(re.search(r"\(([+−])(\d+\.\d\d)\)", verdict).group(2))
    assert abs(shown - abs(gap)) <= 0.005
    assert np.isfinite(gap)
