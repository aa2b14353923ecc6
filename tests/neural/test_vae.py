"""The VAE against probabilistic PCA (the exact likelihood of its linear-Gaussian case), the
ordering ELBO ≤ IWAE bound ≤ log p(x), and its behaviour under faults (NaN batches,
divergence, a SIGKILLed run resumed from its checkpoint)."""

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA

import latentspace
from latentspace.exceptions import TrainingDivergedError
from latentspace.neural import VAE, load_checkpoint

from _ppca import ppca_loglik

SRC = str(Path(__file__).resolve().parents[2] / "src")


def low_rank_gaussian(n=1000, d=8, L=2, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, L)) * np.array([2.0, 1.0])
    return rng.normal(size=(n, L)) @ W.T + 0.5 * rng.normal(size=(n, d))


def linear_decoder(vae):
    """(W, b) of a linear decoder, read through the public API: g(z) = b + W z."""
    L = vae.latent_dim
    b = vae.inverse_transform(np.zeros((1, L)))[0].astype(np.float64)
    return (vae.inverse_transform(np.eye(L)) - b).T, b


def exact_linear_vae_loglik(vae, X):
    """log p(x) of a linear-Gaussian VAE: x ~ N(b, W Wᵀ + σ² I) (its decoder, integrated)."""
    W, b = linear_decoder(vae)
    var = math.exp(vae.network_.log_var.item())
    cov = W @ W.T + var * np.eye(len(b))
    return multivariate_normal(b, cov).logpdf(X)


@pytest.fixture(scope="module")
def linear_vae():
    X = low_rank_gaussian()
    vae = VAE(2, hidden_sizes=(), likelihood="gaussian", random_state=0).fit(X)  # defaults
    return vae, X


def test_linear_gaussian_vae_matches_ppca(linear_vae):
    vae, X = linear_vae
    ll_ppca = PCA(2).fit(X).score(X)  # exact mean log-likelihood of the PPCA MLE
    elbo = vae.score(X)
    assert vae.converged_ and abs(elbo - ll_ppca) <= 0.01 * abs(ll_ppca)


def test_importance_weighted_bound_lies_between_elbo_and_loglik(linear_vae):
    vae, X = linear_vae
    ll_ppca = ppca_loglik(X, 2)  # the maximum over this model family, in closed form
    ll_model = exact_linear_vae_loglik(vae, X)  # (n,) the VAE's own log p(x)
    # both bounds are Monte-Carlo estimates: compare means over draws, within their errors
    elbo = np.array([vae.score_samples(X, random_state=s).mean() for s in range(5)])
    iw = np.array([vae.score_samples(X, n_importance=1000, random_state=s).mean()
                   for s in range(3)])
    mc = 3 * (elbo.std(ddof=1) / np.sqrt(5) + iw.std(ddof=1) / np.sqrt(3)) + 1e-6
    assert elbo.mean() <= iw.mean() + mc
    assert iw.mean() <= ll_model.mean() + mc
    assert ll_model.mean() <= ll_ppca + 1e-9 * abs(ll_ppca)


def test_iw_bound_rises_with_k_towards_exact_loglik_on_a_loose_model():
    X = low_rank_gaussian(n=300)
    # one slow epoch: the encoder is still far from the posterior, so the bounds are loose
    vae = VAE(2, hidden_sizes=(), likelihood="gaussian", max_epochs=1, batch_size=100,
              learning_rate=1e-3, random_state=0).fit(X)
    exact = exact_linear_vae_loglik(vae, X[:50]).mean()
    bounds = [vae.score_samples(X[:50], n_importance=k, random_state=0).mean()
              for k in (1, 10, 100, 1000)]
    assert bounds == sorted(bounds) and bounds[-1] <= exact
    assert exact - bounds[-1] < 0.25 * (exact - bounds[0])


def test_iw_bound_is_blocked_consistently():
    """Computing the bound in blocks gives the same numbers as one block per row."""
    X = low_rank_gaussian(n=40)
    vae = VAE(2, hidden_sizes=(8,), likelihood="gaussian", max_epochs=2, random_state=0).fit(X)
    a = vae.score_samples(X, n_importance=64, random_state=5)
    from latentspace.neural import _vae

    old = _vae._IW_ROWS
    try:
        _vae._IW_ROWS = 7  # many tiny blocks: other draws, same distribution
        b = vae.score_samples(X, n_importance=64, random_state=5)
    finally:
        _vae._IW_ROWS = old
    assert a.shape == b.shape == (40,)
    assert abs(a.mean() - b.mean()) < 0.1


@pytest.mark.filterwarnings("ignore:posterior collapse")  # random bits: nothing to encode
def test_bernoulli_vae_api():
    rng = np.random.default_rng(0)
    X = (rng.random((200, 30)) < 0.3).astype(np.float32)
    vae = VAE(3, hidden_sizes=(16,), max_epochs=3, random_state=0).fit(X)
    Z = vae.transform(X)
    assert Z.shape == (200, 3) and Z.dtype == np.float32
    P = vae.inverse_transform(Z)
    assert P.shape == (200, 30) and P.min() >= 0 and P.max() <= 1
    S = vae.sample(5)
    assert S.shape == (5, 30) and np.array_equal(S, vae.sample(5))  # repeatable
    B = vae.sample(50, noise=True, random_state=1)
    assert set(np.unique(B)) <= {0.0, 1.0}
    hist = vae.history_[-1]
    assert {"loss", "reconstruction", "kl", "elbo", "active_units"} <= set(hist)
    assert hist["loss"] == pytest.approx(hist["reconstruction"] + hist["kl"])
    # ELBO ≤ 0 for binary data under a Bernoulli likelihood
    assert np.all(vae.score_samples(X) <= 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        VAE(max_epochs=1).fit(X * 3)


def test_score_samples_torch_in_torch_out():
    X = low_rank_gaussian(n=50)
    vae = VAE(2, hidden_sizes=(), likelihood="gaussian", max_epochs=2, random_state=0).fit(X)
    out = vae.score_samples(torch.from_numpy(X), n_importance=5)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (50,)
    np.testing.assert_allclose(out.numpy(), vae.score_samples(X, n_importance=5))


def test_fixed_and_per_feature_decoder_variance():
    X = low_rank_gaussian(n=200)
    fixed = VAE(2, hidden_sizes=(), likelihood="gaussian", decoder_variance=0.25,
                max_epochs=2, random_state=0).fit(X)
    assert fixed.network_.log_var is None
    feat = VAE(2, hidden_sizes=(), likelihood="gaussian", decoder_variance="feature",
               max_epochs=2, random_state=0).fit(X)
    assert feat.network_.log_var.shape == (8,)
    with pytest.raises(ValueError, match="decoder_variance"):
        VAE(likelihood="gaussian", decoder_variance="learned").fit(X)
    with pytest.raises(ValueError, match="decoder_variance"):
        VAE(likelihood="gaussian", decoder_variance=-1.0).fit(X)


def test_posterior_collapse_warns_with_active_units():
    # white noise has no latent structure; with β = 5 the encoder collapses onto the prior
    X = np.random.default_rng(0).normal(size=(500, 8))
    with pytest.warns(UserWarning, match="posterior collapse"):
        vae = VAE(2, hidden_sizes=(), likelihood="gaussian", beta=5.0, max_epochs=30,
                  batch_size=100, learning_rate=0.02, random_state=0).fit(X)
    assert vae.history_[0]["active_units"] == 2
    assert vae.active_units_ == 0 and vae.history_[-1]["active_units"] == 0
    assert np.all(vae.transform(X).var(0) <= 1e-2)  # the definition, through the public API


def test_save_load_round_trip(tmp_path):
    X = low_rank_gaussian(n=100)
    vae = VAE(2, hidden_sizes=(8,), likelihood="gaussian", max_epochs=2, random_state=0).fit(X)
    vae.save(tmp_path / "vae.safetensors")
    back = latentspace.load(tmp_path / "vae.safetensors")
    np.testing.assert_array_equal(back.transform(X), vae.transform(X))
    np.testing.assert_array_equal(back.score_samples(X, n_importance=3),
                                  vae.score_samples(X, n_importance=3))
    np.testing.assert_array_equal(back.sample(4), vae.sample(4))


# ----------------------------------------------------------------------------- faults
def test_nan_batches_from_a_dataloader_are_skipped_and_counted():
    from torch.utils.data import DataLoader, TensorDataset

    X = torch.from_numpy(low_rank_gaussian(n=200)).float()
    X[40:60] = math.nan  # the 3rd of 10 batches (batch_size 20, no shuffling)
    X[100:101, 3] = math.inf  # one bad value poisons the 6th batch
    loader = DataLoader(TensorDataset(X), batch_size=20, shuffle=False)
    vae = VAE(2, hidden_sizes=(8,), likelihood="gaussian", max_epochs=3, random_state=0)
    vae.fit(loader)
    assert vae.n_skipped_steps_ == 6
    assert [h["n_skipped"] for h in vae.history_] == [2, 2, 2]
    assert all(torch.isfinite(p).all() for p in vae.network_.parameters())
    assert np.isfinite(vae.score(low_rank_gaussian(n=20)))


def test_diverging_vae_raises_and_leaves_no_nonfinite_checkpoint(tmp_path):
    X = low_rank_gaussian(n=200) * 1e3
    ckpt = tmp_path / "vae.ckpt"
    vae = VAE(2, hidden_sizes=(16,), likelihood="gaussian", optimizer="sgd",
              learning_rate=1e3, max_epochs=50, batch_size=20, checkpoint_path=str(ckpt),
              random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+"):
        vae.fit(X)
    if ckpt.exists():
        state = load_checkpoint(ckpt)
        assert all(torch.isfinite(t).all() for t in state["module"].values())


_TRAIN_SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, {src!r})
from latentspace.neural import VAE
rng = np.random.default_rng(0)
X = rng.random((3000, 20)).astype(np.float32)
VAE(4, hidden_sizes=(64,), max_epochs={epochs}, batch_size=25, checkpoint_path={ckpt!r},
    random_state=0).fit(X)
"""


def _make_vae(ckpt, epochs):
    return VAE(4, hidden_sizes=(64,), max_epochs=epochs, batch_size=25,
               checkpoint_path=str(ckpt), random_state=0)


@pytest.mark.filterwarnings("ignore:posterior collapse")  # uniform noise data
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path):
    epochs = 12
    ckpt = tmp_path / "ckpt.safetensors"  # the natural name: a safetensors checkpoint
    X = np.random.default_rng(0).random((3000, 20)).astype(np.float32)
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRAIN_SCRIPT.format(src=SRC, epochs=epochs, ckpt=str(ckpt))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists():  # wait for the first checkpoint (end of epoch 1) ...
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        first = ckpt.stat().st_mtime_ns
        while ckpt.stat().st_mtime_ns == first:  # ... and the second, then kill mid-epoch 3
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.005)
        time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = load_checkpoint(ckpt)["epoch"]
    assert 2 <= done < epochs, "the run was not interrupted mid-training"
    assert not [p for p in tmp_path.iterdir() if p.name != ckpt.name]  # no temp files left

    resumed = _make_vae(ckpt, epochs).fit(X, resume=ckpt)
    straight = _make_vae(tmp_path / "straight.ckpt", epochs).fit(X)
    assert len(resumed.history_) == epochs
    for a, b in zip(resumed.network_.state_dict().values(), straight.network_.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore:posterior collapse")
def test_convolutional_vae_on_28x28_images():
    X = (np.random.default_rng(0).random((30, 784)) < 0.2).astype(np.float32)
    vae = VAE(3, network="conv", max_epochs=1, batch_size=15, random_state=0).fit(X)
    assert vae.transform(X).shape == (30, 3) and vae.sample(2).shape == (2, 784)
    assert np.all(np.isfinite(vae.score_samples(X[:4], n_importance=3)))
    assert isinstance(vae.network_.decoder[3], torch.nn.ConvTranspose2d)


def test_the_network_is_a_vae_module_with_its_own_elbo_parts():
    """The model's pieces are the module's own methods (encode, reparameterize, decode, KL),
    each against an independent computation."""
    from torch.distributions import Normal, kl_divergence

    from latentspace.neural._vae_module import VAEModule

    X = np.random.default_rng(0).uniform(size=(64, 6)).astype(np.float32)
    vae = VAE(3, hidden_sizes=(8,), max_epochs=2, random_state=0).fit(X)
    net = vae.network_
    assert isinstance(net, VAEModule)
    x = torch.as_tensor(X[:10])
    with torch.no_grad():
        mu, log_var = net.encode(x)
        np.testing.assert_allclose(mu.numpy(), vae.transform(X[:10]), rtol=1e-6, atol=1e-7)
        q = Normal(mu.double(), torch.exp(0.5 * log_var.double()))
        p = Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))
        np.testing.assert_allclose(net.kl(mu.double(), log_var.double()).numpy(),
                                   kl_divergence(q, p).sum(-1).numpy(), rtol=1e-12)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
        z = net.reparameterize(mu, log_var, eps)
        np.testing.assert_allclose(z.numpy(), (mu + log_var.mul(0.5).exp() * eps).numpy())
        np.testing.assert_allclose(net.mean(z).numpy(), vae.inverse_transform(z.numpy()),
                                   rtol=1e-6, atol=1e-7)
