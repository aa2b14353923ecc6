"""The scoreboard chapter: its principal-coordinate mixture against a pixel-space oracle, its
numbers against the models' own scores, and the sanity of a quick digits tour."""

import html
import re

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from latentspace.data import load_dataset
from latentspace.report import TourContext
from latentspace.report._scoring import classes_se
from latentspace.report.chapters import scoreboard
from latentspace.report.chapters.scoreboard import (
    COLUMNS,
    ROWS,
    PCAGaussianMixture,
    fit_density_models,
    sanity_failures,
)
from latentspace.report.tour import run_tour


def _clustered(rng, n=600, d=6):
    """Three anisotropic clusters in 6-D: a mixture, with a low-variance complement."""
    centres = 3.0 * rng.standard_normal((3, d))
    labels = rng.randint(3, size=n)
    A = rng.standard_normal((d, d)) * np.linspace(1.0, 0.1, d)
    return centres[labels] + rng.standard_normal((n, d)) @ A.T


# ----------------------------------------------------------------------------- the density
def test_pca_gaussian_mixture_is_the_pixel_space_mixture_it_claims():
    """log p(x) equals a full-covariance Gaussian mixture in the data space, evaluated by
    scipy, with means μ + VᵀΛ^½ m_k and covariances VᵀΛ^½ S_k Λ^½ V + σ²(I − VᵀV)."""
    rng = np.random.RandomState(0)
    X = _clustered(rng)
    model = PCAGaussianMixture(3, n_pcs=2, random_state=0).fit(X)
    V, lam = model.pca_.components_, model.pca_.explained_variance_
    mu, s2, gm = model.pca_.mean_, model.noise_variance_, model.mixture_
    D = np.sqrt(lam)
    complement = s2 * (np.eye(X.shape[1]) - V.T @ V)
    Xq = _clustered(np.random.RandomState(1), n=50)
    comp = [np.log(w) + multivariate_normal(mu + (m * D) @ V,
                                            V.T @ (D[:, None] * S * D[None]) @ V + complement
                                            ).logpdf(Xq)
            for w, m, S in zip(gm.weights_, gm.means_, gm.covariances_)]
    expected = logsumexp(np.stack(comp), axis=0)
    got = model.score_samples(Xq)
    # float64 throughout; the oracle's Cholesky of a 6×6 matrix with condition ~1e3 loses a
    # few digits: 1e-9 relative to the log-density's scale
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    assert model.score(Xq) == pytest.approx(np.mean(expected), rel=1e-9)


def test_pca_gaussian_mixture_samples_have_the_model_moments():
    rng = np.random.RandomState(2)
    X = _clustered(rng)
    model = PCAGaussianMixture(3, n_pcs=2, random_state=0).fit(X)
    V, D = model.pca_.components_, np.sqrt(model.pca_.explained_variance_)
    gm = model.mixture_
    means = model.pca_.mean_ + (gm.means_ * D) @ V  # (K, d)
    covs = [V.T @ (D[:, None] * S * D[None]) @ V
            + model.noise_variance_ * (np.eye(X.shape[1]) - V.T @ V) for S in gm.covariances_]
    m = gm.weights_ @ means
    C = sum(w * (c + np.outer(a - m, a - m)) for w, c, a in zip(gm.weights_, covs, means))
    n = 200_000
    S, labels = model.sample(n, random_state=3)
    assert S.shape == (n, X.shape[1]) and labels.shape == (n,)
    # standard errors of a sample mean and covariance entry; 6 of them (heavy-ish tails of a
    # mixture are covered by the fourth-moment bound √((C_ii C_jj + C_ij²)(1 + κ)/n), κ ≤ 2)
    sd = np.sqrt(np.diag(C))
    np.testing.assert_array_less(np.abs(S.mean(0) - m), 6 * sd / np.sqrt(n))
    bound = 6 * np.sqrt(3 * (np.outer(sd**2, sd**2) + C**2) / n)
    np.testing.assert_array_less(np.abs(np.cov(S, rowvar=False) - C), bound)


def test_pca_gaussian_mixture_refuses_more_pcs_than_directions_of_variance():
    X = np.zeros((20, 3))
    X[:, 0] = np.arange(20)  # one direction of variance
    with pytest.raises(ValueError, match="lower n_pcs"):
        PCAGaussianMixture(1, n_pcs=2).fit(X)


# ----------------------------------------------------------------------------- sanity check
def _f1(p, r):
    return 2 * p * r / (p + r)


def test_sanity_failures_flag_and_classify_models_that_beat_the_real_rows():
    real = {"parzen": 10.0, "parzen_se": 1.0, "frechet": 5.0, "precision": 0.9, "recall": 0.9,
            "pr_f1": 0.9, "classes_found": 10}
    rows = {
        "ppca": dict(real, parzen=9.0, frechet=6.0),  # worse everywhere it differs
        "vae": dict(real, precision=0.95, pr_f1=_f1(0.95, 0.9)),  # within twice the s.e.
        "gan": dict(real, precision=1.0, recall=0.1, pr_f1=_f1(1.0, 0.1)),  # precise only
        "bmm": dict(real, precision=1.0, frechet=4.0, pr_f1=_f1(1.0, 0.9)),  # a bug's mark
        "gmm": dict(real, precision=0.5, recall=1.0, pr_f1=_f1(0.5, 1.0)),  # spread out
        "real": real,
    }
    leads = sanity_failures(rows, 180, 180)
    got = {(f["model"], f["column"]): f for f in leads}
    assert set(got) == {("vae", "precision"), ("vae", "pr_f1"), ("gan", "precision"),
                        ("bmm", "precision"), ("bmm", "frechet"), ("bmm", "pr_f1"),
                        ("gmm", "recall")}
    assert got["gmm", "recall"]["kind"] == "recall without precision"
    se = np.hypot(np.sqrt(0.95 * 0.05 / 180), np.sqrt(0.9 * 0.1 / 180))
    assert got["vae", "precision"]["se"] == pytest.approx(se, rel=1e-12)
    assert got["vae", "precision"]["kind"] == "sampling error"
    assert got["gan", "precision"]["kind"] == "precision without recall"
    assert got["bmm", "precision"]["kind"] == "precision alone"
    assert got["bmm", "frechet"]["se"] is None and got["bmm", "frechet"]["kind"] == "unexplained"
    # F₁'s error by the delta method: the VAE's small lead is noise, the BMM's is not
    assert got["vae", "pr_f1"]["kind"] == "sampling error"
    f1_se = lambda p, r, n=180: np.hypot(2 * r * r / (p + r) ** 2 * np.sqrt(p * (1 - p) / n),  # noqa: E731
                                         2 * p * p / (p + r) ** 2 * np.sqrt(r * (1 - r) / n))
    assert got["bmm", "pr_f1"]["se"] == pytest.approx(np.hypot(f1_se(1.0, 0.9), f1_se(0.9, 0.9)),
                                                      rel=1e-12)
    # the check fails on the pair's F₁ and the Fréchet distance, never on one of the pair
    assert {(f["model"], f["column"]) for f in scoreboard.failed(leads)} == {
        ("bmm", "frechet"), ("bmm", "pr_f1")}
    text = scoreboard.sanity_text(leads, rows)
    assert text.startswith("Sanity check FAILED") and "recall is 0.1 against" in text
    ok = [f for f in leads if f["model"] in ("gan", "gmm")]
    assert scoreboard.failed(ok) == [] and scoreboard.sanity_text(ok, rows).startswith(
        "Sanity check passed")
    assert scoreboard.sanity_text([], rows).startswith("Sanity check passed")


# ----------------------------------------------------------------------------- quick digits tour
@pytest.fixture(scope="module")
def board(quick_digits_tour):
    return quick_digits_tour[1]["scoreboard"]


def test_summary_section_has_stable_keys(board):
    assert set(board) >= {"models", "columns", "feature_space", "n_samples", "split", "sanity",
                          "sources", "settings", "n_classes"}
    assert list(board["models"]) == list(ROWS)
    assert [c["key"] for c in board["columns"]] == list(COLUMNS)  # labelled: every column
    sample_cols = ["parzen", "parzen_se", "frechet", "frechet_se", "precision", "recall",
                   "pr_f1", "classes_found_n", "classes_found", "largest_class_share"]
    for key, row in board["models"].items():
        assert set(sample_cols) <= set(row), key
    assert board["n_samples"] == board["split"]["reference"]
    assert board["n_class_samples"] == {"models": max(board["n_samples"], 2000),
                                        "real": board["n_samples"]}  # quick: 2000 samples
    assert board["feature_space"]["kind"] == "classifier"


def test_every_row_uses_the_same_number_of_samples(quick_digits_tour, board):
    # the precision of n samples is a multiple of 1/n; recall a multiple of 1/n_test
    n, n_test = board["n_samples"], board["split"]["test"]
    for key, row in board["models"].items():
        assert row["precision"] * n == pytest.approx(round(row["precision"] * n), abs=1e-9), key
        assert row["recall"] * n_test == pytest.approx(round(row["recall"] * n_test), abs=1e-9)


def test_real_rows_best_on_every_sample_based_column(board):
    """Real held-out rows beat every model on the Parzen estimate, the Fréchet distance and
    the harmonic mean of precision and recall — or the model's lead is within twice the
    standard error of the gap (a model as good as the data ties with the real rows up to
    sampling error) — and on classes found (ties allowed: all classes); on precision (recall)
    alone a model may also be ahead while clearly behind on recall (precision). The errors are
    recomputed here from the rows' own values: Parzen's test means, the bootstrap of the
    Fréchet distance, binomial shares for precision and recall and the delta method for F₁."""
    real = board["models"]["real"]
    n, n_test = board["n_samples"], board["split"]["test"]

    def share_se(p, m):
        return np.sqrt(p * (1 - p) / m)

    def f1_se(row):
        p, r = row["precision"], row["recall"]
        return np.hypot(2 * r * r / (p + r) ** 2 * share_se(p, n),
                        2 * p * p / (p + r) ** 2 * share_se(r, n_test))

    def se(row, col):
        if col == "parzen":
            return np.hypot(row["parzen_se"], real["parzen_se"])
        if col == "frechet":
            return np.hypot(row["frechet_se"], real["frechet_se"])
        if col == "pr_f1":
            return np.hypot(f1_se(row), f1_se(real))
        m = n if col == "precision" else n_test
        return np.hypot(share_se(row[col], m), share_se(real[col], m))

    for key, row in board["models"].items():
        if key == "real":
            continue
        assert row["parzen"] < real["parzen"] + 2 * se(row, "parzen"), key
        assert row["frechet"] > real["frechet"] - 2 * se(row, "frechet"), key
        assert row["pr_f1"] < real["pr_f1"] + 2 * se(row, "pr_f1"), key
        assert row["classes_found_n"] <= real["classes_found_n"], key  # 10 classes, 180 rows
        assert row["classes_found_n"] <= row["classes_found"], key  # more samples, more classes
        assert row["pr_f1"] == pytest.approx(_f1(row["precision"], row["recall"]), rel=1e-12)
        assert row["frechet_se"] > 0
        for col, other in (("precision", "recall"), ("recall", "precision")):
            assert (row[col] <= real[col] + 2 * se(row, col)
                    or row[other] < real[other] - 2 * se(row, other)), (key, col)
    assert board["sanity"]["failed"] == 0 and board["sanity"]["real_best_on_sample_columns"]


def test_exact_log_likelihoods_equal_the_models_own_scores(board):
    """Refit the cheap models on the same split (same seed) and score the test rows."""
    ds = load_dataset("digits")
    ctx = TourContext(name="digits", X=np.asarray(ds.data, dtype=np.float64),
                      y=np.asarray(ds.target), image_shape=(8, 8), quick=True, random_state=0)
    split = ctx.holdout()
    assert len(split.test) == board["split"]["test"]
    assert len(split.train) == board["split"]["train"]
    models = fit_density_models(ctx)
    rows = board["models"]
    # the same computation on the same rows: equal to float64 round-off
    assert rows["ppca"]["log_likelihood"] == pytest.approx(models["ppca"].score(split.test),
                                                           rel=1e-12)
    assert rows["gmm"]["log_likelihood"] == pytest.approx(models["gmm"].score(split.test),
                                                          rel=1e-12)
    assert rows["bmm"]["log_mass"] == pytest.approx(models["bmm"].score(split.test), rel=1e-12)
    # the PPCA number is PCA's own score, i.e. the mean of its PPCA log-density
    assert models["ppca"].n_components_ == board["settings"]["ppca_components"]
    # a density and a mass: a binary image has probability at most 1
    assert rows["bmm"]["log_mass"] < 0


def test_vae_bound_is_the_vae_chapters_model(quick_digits_tour, board):
    assert board["sources"]["vae"] == "the VAE chapter's model"
    chapter = quick_digits_tour[1]["chapters"]["vae"]["numbers"]
    held_out = chapter["held-out importance-weighted bound, K=20 (nats)"]
    # the VAE chapter scores the same test rows with the same K, from another random stream
    # of importance samples: the two agree up to Monte-Carlo error, well below 1 nat here
    assert board["models"]["vae"]["iw_bound"] == pytest.approx(held_out, abs=1.0)
    assert chapter["training / held-out rows"] == (
        f"{board['split']['train']} / {board['split']['test']}")


def test_the_table_is_in_the_html(quick_digits_tour, board):
    out, _ = quick_digits_tour
    page = (out / "index.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="scoreboard">'):]
    section = section[:section.index("</section>")]
    table = re.search(r'<table class="models">(.*?)</table>', section, re.S).group(1)
    assert "<caption>" in table and "held-out test rows" in table
    heads = [html.unescape(h) for h in re.findall(r'<th scope="col">(.*?)</th>', table)]
    assert heads == ["model"] + [c["label"] for c in board["columns"]]
    labels = [html.unescape(h) for h in re.findall(r'<th scope="row">(.*?)</th>', table)]
    assert labels == list(ROWS.values())
    # one cell per column on every row, dashes where a column does not apply
    for row in re.findall(r"<tr><th scope=\"row\">.*?</tr>", table):
        assert row.count("<td>") == len(board["columns"])
    assert "Sanity check" in section and "How to read it" in section


def test_chapter_runs_alone_and_fits_what_it_needs(tmp_path):
    summary = run_tour("digits", out=tmp_path, quick=True, chapters="scoreboard",
                       progress=False)
    board = summary["scoreboard"]
    assert list(summary["chapters"]) == ["scoreboard"]
    assert board["sources"] == {"vae": "fitted here as in the VAE chapter",
                                "gan": "fitted here: GAN(latent_dim=16), defaults"}
    assert set(board["models"]) == set(ROWS)


def test_unlabelled_data_use_whitened_principal_coordinates():
    rng = np.random.RandomState(4)
    X = np.clip(rng.rand(400, 16) * 0.3 + rng.rand(400, 1) * 0.7, 0, 1)
    ctx = TourContext(name="toy", X=X, y=None, image_shape=(4, 4), quick=True, random_state=0)
    fmap, info = scoreboard.fit_feature_space(ctx)
    assert info["kind"] == "whitened_pca" and not hasattr(fmap, "predict")
    F = fmap.features(ctx.holdout().train)
    # whitened coordinates of the rows the PCA was fitted on: unit variance, uncorrelated
    np.testing.assert_allclose(np.cov(F, rowvar=False), np.eye(info["dim"]), atol=1e-8)


def test_a_parzen_lead_without_recall_is_parzens_blind_spot_not_a_failure():
    """Blurry samples near the data's centre beat real rows on Parzen in many dimensions
    (Theis et al. 2016); with recall far behind, the lead is explained, not a failure —
    the same lead with recall intact fails the check."""
    real = {"parzen": 10.0, "parzen_se": 1.0, "frechet": 5.0, "frechet_se": 0.1,
            "precision": 0.9, "recall": 0.9, "pr_f1": 0.9}
    blurry = dict(real, parzen=20.0, precision=1.0, recall=0.05, pr_f1=_f1(1.0, 0.05),
                  frechet=50.0)
    suspicious = dict(real, parzen=20.0)
    leads = sanity_failures({"vae": blurry, "gan": suspicious, "real": real}, 180, 180)
    kinds = {(f["model"], f["column"]): f["kind"] for f in leads}
    assert kinds["vae", "parzen"] == "parzen without recall"
    assert kinds["gan", "parzen"] == "unexplained"
    assert [(f["model"], f["column"]) for f in scoreboard.failed(leads)] == [("gan", "parzen")]
    assert "Theis" in scoreboard.sanity_text([f for f in leads if f["model"] == "vae"],
                                              {"vae": blurry, "real": real})


def test_classes_found_error_is_the_occupancy_problems():
    """The spread of the number of distinct classes among m uniform draws of C classes, against
    a simulation (an oracle independent of the closed form)."""
    rng = np.random.default_rng(0)
    for C, m in ((40, 40), (10, 30), (10, 180)):
        counts = [len(np.unique(rng.integers(0, C, m))) for _ in range(20000)]
        assert classes_se(C, m) == pytest.approx(np.std(counts), rel=0.05, abs=0.01)
