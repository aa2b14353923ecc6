"""The GAN: Algorithm 1's update pattern (k discriminator steps, detached fakes), its two
generator losses, mode coverage on the 8-Gaussians ring, and its API."""

import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import latentspace
from latentspace.metrics import make_ring_of_gaussians, mode_coverage
from latentspace.neural import GAN
from latentspace.neural import _nets
from latentspace.neural._trainer import StepContext

RING_STD = 0.02


class SpyContext(StepContext):
    """Records every update (optimizer name, loss, whether G holds gradients); never steps."""

    def __init__(self, net):
        super().__init__({}, None, torch.Generator().manual_seed(0))
        self.net, self.calls = net, []

    def update(self, loss, optimizer="main"):
        loss.backward()
        g_grads = [p.grad for p in self.net.generator.parameters()]
        self.calls.append((optimizer, float(loss.detach()), all(g is None for g in g_grads)))
        for p in self.net.parameters():
            p.grad = None
        return True


def _network(gan, n_features=2):
    gan._check_params()
    gen = torch.Generator().manual_seed(0)
    return _nets.build(lambda: gan._build_network(n_features), torch.device("cpu"), gen)


def test_k_discriminator_steps_per_generator_step_and_detached_fakes():
    gan = GAN(2, generator_sizes=(8,), discriminator_sizes=(8,), k_steps=3)
    net = _network(gan)
    step, ctx = gan._train_step(net), SpyContext(net)
    x = torch.randn(16, 2)
    for i in range(9):
        ctx.step = i
        step(x, ctx)
    names = [c[0] for c in ctx.calls]
    assert names == (["discriminator"] * 3 + ["generator"]) * 3
    # D updates see G(z).detach(): no gradient reaches the generator
    assert all(no_g for name, _, no_g in ctx.calls if name == "discriminator")
    assert not any(no_g for name, _, no_g in ctx.calls if name == "generator")


@pytest.mark.parametrize("loss", ["minimax", "non_saturating"])
def test_losses_match_the_value_function(loss):
    gan = GAN(2, generator_sizes=(8,), discriminator_sizes=(8,), loss=loss)
    net = _network(gan)
    c = 0.7  # a discriminator with constant logit c: D(x) = σ(c) everywhere
    with torch.no_grad():
        last = net.discriminator[-1]
        last.weight.zero_()
        last.bias.fill_(c)
    ctx = SpyContext(net)
    gan._train_step(net)(torch.randn(8, 2), ctx)
    (_, loss_d, _), (_, loss_g, _) = ctx.calls
    d = torch.sigmoid(torch.tensor(c, dtype=torch.float64))
    # -V(D, G) = -[log D(x) + log(1 - D(G(z)))]
    assert loss_d == pytest.approx(float(-(torch.log(d) + torch.log(1 - d))), rel=1e-5)
    expected = torch.log(1 - d) if loss == "minimax" else -torch.log(d)
    assert loss_g == pytest.approx(float(expected), rel=1e-5)
    # the non-saturating loss is steeper where the minimax one saturates (D(G(z)) → 0)
    z = torch.tensor(-6.0, requires_grad=True)
    g_mm = torch.autograd.grad(-F.softplus(z), z)[0]
    g_ns = torch.autograd.grad(F.softplus(-z), z)[0]
    assert abs(g_ns) > 100 * abs(g_mm)


def _ring(n, seed=1234):
    return make_ring_of_gaussians(n, std=RING_STD, random_state=seed)


def _ring_gan(seed, epochs, modes):
    # ReLU in G and no R1 penalty: the ring's modes are 100 times narrower than its spread, and
    # the penalty (in the data's units) keeps D too smooth to resolve them
    return GAN(2, generator_sizes=(128, 128), discriminator_sizes=(128, 128),
               activation="relu", r1_penalty=0.0, learning_rate=1e-3,
               learning_rate_schedule="cosine", batch_size=128,
               max_epochs=epochs, reference_modes=modes, reference_std=RING_STD,
               random_state=seed)


@pytest.mark.filterwarnings("ignore:mode collapse")  # judged below on its own samples
def test_ring_short_run_covers_most_modes():
    X, _, modes = _ring(8000)
    gan = _ring_gan(0, 25, modes).fit(X)
    cov = mode_coverage(gan.sample(2500, random_state=1), modes, RING_STD)
    assert cov["modes_covered"] >= 6 and cov["high_quality"] >= 0.5
    assert {"modes_covered", "high_quality", "loss_d", "loss_g", "d_real", "d_fake"} <= set(
        gan.history_[-1])


@pytest.mark.slow
def test_ring_three_seeds_cover_seven_modes_with_80_percent_quality():
    X, _, modes = _ring(20000)
    runs = [mode_coverage(_ring_gan(s, 40, modes).fit(X).sample(2500, random_state=10 + s),
                          modes, RING_STD) for s in range(3)]
    assert statistics.median(r["modes_covered"] for r in runs) >= 7
    assert statistics.median(r["high_quality"] for r in runs) >= 0.8


def test_mode_collapse_warns_with_the_figures():
    X, _, modes = _ring(1000)
    with pytest.warns(UserWarning, match=r"mode collapse: .* of 8 reference modes"):
        gan = _ring_gan(0, 1, modes).set_params(learning_rate=1e-5).fit(X)
    assert gan.history_[-1]["modes_covered"] < 8


def test_sample_discriminate_and_save_load(tmp_path):
    X, _, _ = _ring(500)
    gan = GAN(3, generator_sizes=(16,), discriminator_sizes=(16,), noise="uniform",
              output_activation="tanh", max_epochs=2, random_state=0).fit(X)
    S = gan.sample(7)
    assert S.shape == (7, 2) and S.dtype == np.float32 and np.abs(S).max() <= 1
    assert np.array_equal(S, gan.sample(7)) and not np.array_equal(S, gan.sample(7, random_state=5))
    D = gan.discriminate(X[:10])
    assert D.shape == (10,) and np.all((D > 0) & (D < 1))
    assert not hasattr(gan, "score")  # no likelihood: use the Parzen-window estimate
    gan.save(tmp_path / "gan.safetensors")
    back = latentspace.load(tmp_path / "gan.safetensors")
    np.testing.assert_array_equal(back.sample(7), S)
    np.testing.assert_array_equal(back.discriminate(X[:10]), D)


def test_sgd_with_momentum_and_separate_discriminator_rate():
    X, _, _ = _ring(300)
    gan = GAN(2, generator_sizes=(8,), discriminator_sizes=(8,), optimizer="sgd",
              learning_rate=0.05, discriminator_learning_rate=0.1, momentum=0.5,
              loss="minimax", k_steps=2, max_epochs=2, random_state=0).fit(X)
    assert gan.n_iter_ == 2 and np.isfinite(gan.history_[-1]["loss_g"])
