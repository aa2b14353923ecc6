"""The tour's clustering chapters on digits (quick mode): figures exist, numbers come from models."""

import matplotlib

matplotlib.use("Agg")

import importlib

import numpy as np
import pytest
from sklearn.datasets import load_digits

from latentspace.report import Chapter, TourContext


def _ctx():
    d = load_digits()
    return TourContext(name="digits", X=d.data / 16.0, y=d.target, image_shape=(8, 8), quick=True)


def _run(key, ctx):
    module = importlib.import_module(f"latentspace.report.chapters.{key}")
    assert module.KEY == key and module.TITLE
    chapter = module.run(ctx)
    assert isinstance(chapter, Chapter) and chapter.key == key
    assert chapter.figures and all(f.caption and f.alt for f in chapter.figures)
    return chapter


def test_kmeans_chapter_reads_its_numbers_from_the_fit():
    ctx = _ctx()
    ch = _run("kmeans", ctx)
    km = ctx.results["kmeans"]
    assert ch.numbers["inertia E(10)"] == km.inertia_
    assert 2 <= ch.numbers["K at the elbow"] <= 12
    assert ch.numbers["label-matched accuracy (K=10)"] > 0.6
    assert len(ch.figures) == 2


def test_bernoulli_chapter_shows_means_and_compares_two_k():
    ctx = _ctx()
    ch = _run("bernoulli", ctx)
    bm = ctx.results["bernoulli"]
    assert bm.n_components == 20 and bm.binarize == 0.5
    assert ch.numbers["lower bound never decreased"] is True
    assert len(ch.figures) == 4
    image = ch.figures[0].figure.axes[0].images[0].get_array()
    assert image.shape == (8, 8)


def test_hard_em_chapter_reaches_kmeans():
    ch = _run("hard_em", _ctx())
    assert ch.numbers["agreement with K-means at the smallest σ²"] == 1.0
    assert ch.numbers["agreement with K-means at the largest σ²"] < 1.0
    assert ch.numbers["largest distance between annealed means and K-means centres"] < 1e-9


@pytest.mark.slow
def test_mixtures_chapter_handbook_experiment():
    ctx = _ctx()
    ch = _run("mixtures", ctx)
    assert ch.numbers["PCA dimensions keeping 99% variance (whitened)"] == 41
    assert ch.numbers["lower bound never decreased"] is True
    assert ch.numbers["Handbook experiment: components at the AIC minimum"] in (50, 100, 150, 200)
    assert ctx.results["gmm"].n_components == ch.numbers[
        "Handbook experiment: components at the AIC minimum"]
    assert len(ch.figures) == 5
    assert np.isfinite(ch.numbers["2-D projection: mixture log-likelihood per sample"])


def test_mixtures_chapter_caps_the_pca_dimensions_of_wide_images():
    # images with many pixels and a flat spectrum need hundreds of dimensions for 99% of the
    # variance; the chapter keeps 50 and says so (digits keeps its 41, tested above)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    X = np.clip(rng.random((3, 400))[y] + 0.3 * rng.standard_normal((600, 400)), 0, 1)
    ctx = TourContext(name="wide", X=X, y=y, image_shape=(20, 20), quick=True)
    ch = _run("mixtures", ctx)
    assert ch.numbers["PCA dimensions keeping 99% variance (whitened)"] > 50
    assert ch.numbers["PCA dimensions used (at most 50)"] == 50
    assert 0 < ch.numbers["share of variance in them"] < 0.99
    assert ctx.results["gmm"].means_.shape[1] == 50
