"""How the default training length follows the data's size: the plateau patience of the
autoencoders and the VAE and the GAN's epoch budget are counted in optimiser steps, so that a
default fit on tens of thousands of rows takes minutes' fraction rather than hours, while
small data sets keep the epochs they had (the figures are the documented rule, worked out by
hand here)."""

import math
import warnings

import numpy as np
import pytest
import torch

from latentspace.exceptions import ConvergenceWarning
from latentspace.neural import GAN, VAE, Autoencoder
from latentspace.neural._trainer import StepContext


def _rows(n):
    return torch.zeros(n, 2)


@pytest.mark.parametrize("cls", [Autoencoder, VAE])
@pytest.mark.parametrize("n, epochs", [
    (400, 20),      # batch 32: 13 steps an epoch, 640 steps would be 50 epochs -> at most 20
    (4096, 20),     # batch 128: 32 steps, exactly 20 epochs of them
    (5000, 16),     # 40 steps: ceil(640 / 40)
    (20000, 5),     # 157 steps: ceil(640 / 157)
    (100000, 3),    # 782 steps: one epoch would do, at least 3
])
def test_auto_patience_is_640_steps_in_whole_epochs_between_3_and_20(cls, n, epochs):
    steps = math.ceil(n / min(128, max(32, n // 32)))
    assert min(20, max(3, math.ceil(640 / steps))) == epochs  # the rule as documented
    assert cls(2)._patience(_rows(n)) == epochs


@pytest.mark.parametrize("cls", [Autoencoder, VAE])
@pytest.mark.parametrize("n, epochs", [
    (400, 1000),    # 13 steps an epoch: 1000 epochs are 13 000 <= 16 000 steps
    (1797, 485),    # the digits: batch 56, 33 steps: ceil(16 000 / 33)
    (5000, 400),    # 40 steps
    (20000, 102),   # 157 steps
    (10**6, 20),    # 7 813 steps: 3 epochs would make the budget, at least 20
])
def test_auto_max_epochs_is_16000_steps_within_20_to_1000_epochs(cls, n, epochs):
    steps = math.ceil(n / min(128, max(32, n // 32)))
    assert min(1000, max(20, math.ceil(16000 / steps))) == epochs  # the rule as documented
    assert cls(2)._n_epochs(_rows(n)) == epochs
    assert cls(2, max_epochs=7)._n_epochs(_rows(n)) == 7


@pytest.mark.parametrize("bad", ["long", 0, 1.5])
def test_a_bad_max_epochs_is_refused_naming_the_parameter(bad):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="max_epochs"):
        VAE(2, max_epochs=bad).fit(X)


def test_an_integer_patience_keeps_its_meaning_in_epochs():
    assert Autoencoder(2, n_iter_no_change=7)._patience(_rows(20000)) == 7
    assert VAE(2, n_iter_no_change=30)._patience(_rows(100)) == 30


@pytest.mark.parametrize("bad", ["fast", "", 0, -1, 2.5])
def test_a_bad_patience_is_refused_naming_the_parameter(bad):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="n_iter_no_change"):
        Autoencoder(2, n_iter_no_change=bad, max_epochs=1).fit(X)


def test_the_unconverged_warning_names_the_patience_used():
    X = np.random.default_rng(0).normal(size=(5000, 3)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Autoencoder(2, max_epochs=1, random_state=0).fit(X)
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning))
    assert "for 16 epochs" in text and "n_iter_no_change='auto'" in text


@pytest.mark.parametrize("n, k, epochs", [
    (1257, 1, 100),   # the digits: 20 steps an epoch, 100 epochs are 2 000 steps
    (3000, 1, 100),   # 47 steps: 100 epochs are 4 700 <= 5 000 steps
    (20000, 1, 16),   # 313 steps: 100 epochs would be 31 300; ceil(5000 / 313)
    (20000, 2, 32),   # two batches a generator step: twice the batches
    (100, 1, 1000),   # 2 steps an epoch: 2 000 steps are 1 000 epochs
])
def test_gan_auto_epochs_take_2000_to_5000_steps(n, k, epochs):
    steps = math.ceil(n / 64)
    rule = max(math.ceil(2000 * k / steps), min(100, math.ceil(5000 * k / steps)))
    assert rule == epochs
    assert GAN(2, k_steps=k)._n_epochs(_rows(n)) == epochs


def test_gan_generator_step_computes_no_gradient_for_the_discriminator():
    X = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    gan = GAN(2, generator_sizes=(8,), discriminator_sizes=(8,), max_epochs=1, batch_size=64,
              random_state=0).fit(X)
    net = gan.network_
    calls = []
    for p in net.discriminator.parameters():  # fires each time a gradient of p is computed
        p.register_hook(lambda g: calls.append(1))
    ctx = StepContext(gan._make_optimizers(net), None, gan._new_generator(0))
    gan._train_step(net)(torch.as_tensor(X), ctx)  # a D step, then (k = 1) a G step
    n_params = len(list(net.discriminator.parameters()))
    assert len(calls) == n_params  # the D step's gradients only, not the G step's
    assert all(p.requires_grad for p in net.discriminator.parameters())  # trainable again
