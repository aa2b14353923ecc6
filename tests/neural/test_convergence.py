"""When default training stops, and what a fit says about it: converged fits are silent,
fits cut short by max_epochs warn, GANs run their epochs and warn when the discriminator wins."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from latentspace.exceptions import ConvergenceWarning
from latentspace.neural import GAN, VAE, Autoencoder


def low_rank(n=1000, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)) + 0.3 * rng.normal(size=(n, d))


MODELS = {
    "autoencoder": lambda **kw: Autoencoder(2, **kw),
    "vae": lambda **kw: VAE(2, hidden_sizes=(), likelihood="gaussian", **kw),
}


def convergence_warnings(est, X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_default_fit_cut_short_by_max_epochs_warns_and_says_so(model):
    X = load_digits().data / 16.0
    est = MODELS[model](max_epochs=5, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"max_epochs=5 while its training loss was "
                                                r"still improving.*raise max_epochs"):
        est.fit(X)
    assert est.n_iter_ == 5 and not est.converged_ and est.stop_reason_ == "max_epochs"


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_converged_default_fit_is_silent_and_ends_at_the_smallest_rate(model):
    est = MODELS[model](random_state=0)
    assert convergence_warnings(est, low_rank()) == []
    bound = est._n_epochs(torch.as_tensor(low_rank(), dtype=torch.float32))  # max_epochs="auto"
    assert est.converged_ and est.stop_reason_ == "converged" and est.n_iter_ < bound
    rates = [h["learning_rate"] for h in est.history_]
    assert rates[0] == est.learning_rate and rates == sorted(rates, reverse=True)
    assert rates[-1] == pytest.approx(est.learning_rate / 64)  # six halvings, then the stop


def test_constant_rate_stops_at_its_first_plateau_as_scikit_learns_mlp():
    est = Autoencoder(2, learning_rate_schedule="constant", random_state=0)
    assert convergence_warnings(est, low_rank()) == []
    assert est.converged_ and {h["learning_rate"] for h in est.history_} == {1e-3}


def test_validation_early_stopping_is_still_available():
    est = Autoencoder(2, hidden_sizes=(32,), early_stopping=True, random_state=0)
    est.fit(low_rank(n=300))
    # plateaus are judged on the held-out loss (the trainer's tests check the best weights)
    assert est.stop_reason_ == "validation" and est.converged_
    assert all("val_loss" in h for h in est.history_)


def test_a_cosine_schedule_is_a_budget_and_runs_all_its_epochs():
    est = Autoencoder(2, learning_rate_schedule="cosine", max_epochs=40, random_state=0)
    est.fit(low_rank(n=300))
    assert est.n_iter_ == 40 and est.history_[-1]["learning_rate"] < 1e-5


def test_gan_runs_all_epochs_and_warns_when_the_discriminator_wins_outright():
    # data far outside what a sigmoid generator can produce: D separates them perfectly
    rng = np.random.default_rng(0)
    X = 10.0 + rng.normal(size=(512, 2))
    gan = GAN(2, generator_sizes=(8,), discriminator_sizes=(16,), output_activation="sigmoid",
              discriminator_learning_rate=1e-2, max_epochs=30, random_state=0)
    with pytest.warns(ConvergenceWarning, match="discriminator wins outright"):
        gan.fit(X)
    assert gan.n_iter_ == 30 and gan.stop_reason_ == "max_epochs" and gan.discriminator_won_
    last = gan.history_[-1]
    assert last["d_real"] > 0.9 and last["d_fake"] < 0.1


def test_gan_that_keeps_the_game_open_does_not_warn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1024, 2))
    # 30 epochs: after 10 the samples still spread over only 0.4 of the data's width, which
    # the diversity monitor rightly reports as mode collapse
    gan = GAN(2, generator_sizes=(32,), discriminator_sizes=(32,), max_epochs=30,
              random_state=0)
    assert convergence_warnings(gan, X) == [] and not gan.discriminator_won_
