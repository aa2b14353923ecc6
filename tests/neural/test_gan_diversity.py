"""The GAN's diversity monitor: the measure against closed forms and invariants, the per-epoch
trace, its independence from the fit's random stream, and the mode-collapse warning."""

import math
import warnings

import numpy as np
import pytest
from scipy.special import gammaln

from latentspace.exceptions import ConvergenceWarning
from latentspace.metrics import mean_pairwise_distance, relative_diversity
from latentspace.neural import GAN


def _digits():
    from sklearn.datasets import load_digits

    return (load_digits().data / 16.0).astype(np.float32)


def test_mean_pairwise_distance_matches_brute_force_and_the_gaussian_closed_form():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    brute = np.mean([np.linalg.norm(X[i] - X[j]) for i in range(40) for j in range(i + 1, 40)])
    # distances come from ‖a‖² + ‖b‖² − 2a·b in float64: an absolute error of about
    # √(ε ‖x‖²) ≈ 1e-8 on the zero diagonal, against a mean distance of about 2
    assert mean_pairwise_distance(X) == pytest.approx(brute, rel=1e-7)
    # x - x' ~ N(0, 2σ²I_d): E‖x - x'‖ = 2σ Γ((d+1)/2) / Γ(d/2)
    d, sigma, n = 6, 0.7, 2000
    X = sigma * rng.normal(size=(n, d))
    exact = 2 * sigma * math.exp(gammaln((d + 1) / 2) - gammaln(d / 2))
    # the U-statistic's standard error is below 2 sd(‖x - x'‖) / √n, sd < mean / √(2d)·1.5
    se = 2 * 1.5 * exact / math.sqrt(2 * d) / math.sqrt(n)
    assert abs(mean_pairwise_distance(X) - exact) < 4 * se


def test_relative_diversity_invariants():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 8))
    assert relative_diversity(np.repeat(X[:1], 100, 0), X) == 0.0  # identical samples
    # an affine copy a·X + b has exactly |a| times every distance
    assert relative_diversity(-2.5 * X + 7.0, X) == pytest.approx(2.5, rel=1e-7)
    # two independent draws of the same distribution: 1 up to sampling error (each estimate's
    # relative standard error is below 3 / √(2d n) ≈ 0.034 here, so 0.15 is over 3 of them)
    Y = rng.normal(size=(500, 8))
    assert relative_diversity(Y, X) == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ValueError, match="not all equal"):
        relative_diversity(X, np.ones((5, 8)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        mean_pairwise_distance(X[:1])


@pytest.mark.filterwarnings("ignore:mode collapse")  # 3 epochs of a tiny GAN: not the point
def test_the_training_rows_score_one_and_the_monitor_reports_every_epoch():
    X = _digits()[:600]
    gan = GAN(4, generator_sizes=(32,), discriminator_sizes=(32,), max_epochs=3,
              random_state=0).fit(X)
    assert [("diversity" in h) for h in gan.history_] == [True] * 3
    assert all(np.isfinite(h["diversity"]) and h["diversity"] >= 0 for h in gan.history_)
    assert relative_diversity(X[::2], X[1::2]) == pytest.approx(1.0, abs=0.1)


def test_monitoring_never_shifts_the_fit(monkeypatch):
    X = _digits()[:300]

    def fit():
        return GAN(4, generator_sizes=(16,), discriminator_sizes=(16,), max_epochs=2,
                   random_state=3).fit(X)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        watched = fit().sample(20)
        monkeypatch.setattr(GAN, "_on_epoch_end", lambda self, *a: None)
        unwatched = fit()
    assert "diversity" not in unwatched.history_[-1]
    np.testing.assert_array_equal(watched, unwatched.sample(20))


def test_a_generator_that_cannot_learn_collapses_and_warns():
    # a learning rate of 1e-7 leaves G at its initialisation, whose small weights map every z
    # to about the data's mean image (its output biases): all samples nearly one point
    X = _digits()
    with pytest.warns(ConvergenceWarning, match=r"mode collapse: the samples' mean pairwise "
                                                r"distance is 0\.\d+ of the training rows'"):
        gan = GAN(16, learning_rate=1e-7, max_epochs=2, random_state=0).fit(X)
    assert gan.mode_collapse_ and gan.history_[-1]["diversity"] < 0.5
    S = gan.sample(200)
    assert relative_diversity(S, X) < 0.5  # the flag agrees with fresh samples


def test_a_healthy_fit_does_not_flag_collapse():
    X = _digits()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gan = GAN(16, max_epochs=15, random_state=0).fit(X)
    assert not gan.mode_collapse_ and gan.history_[-1]["diversity"] > 0.5
    assert not [w for w in caught if "mode collapse" in str(w.message)]
    assert gan.output_activation_ == "sigmoid"
    assert relative_diversity(gan.sample(500, random_state=1), X) > 0.5


def test_auto_settings_follow_the_data_range_and_survive_saving(tmp_path):
    import latentspace

    rng = np.random.default_rng(0)
    small = dict(generator_sizes=(8,), discriminator_sizes=(8,), max_epochs=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unit = GAN(2, **small).fit(rng.uniform(size=(64, 3)))
        free = GAN(2, **small).fit(rng.normal(size=(64, 3)))
    assert (unit.output_activation_, unit.r1_penalty_) == ("sigmoid", 10.0)
    assert (free.output_activation_, free.r1_penalty_) == (None, 0.0)
    S = unit.sample(500)
    assert S.min() > 0 and S.max() < 1  # a sigmoid's range
    assert free.sample(500).min() < 0  # unbounded: no sigmoid squeezed in
    unit.save(tmp_path / "gan.safetensors")
    back = latentspace.load(tmp_path / "gan.safetensors")
    assert back.output_activation_ == "sigmoid"
    np.testing.assert_array_equal(back.sample(500), S)
