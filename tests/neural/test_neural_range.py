"""Neural models at the edges of float32 and of their hyperparameters' ranges.

The networks compute in float32: data it cannot hold get an up-front ``ValueError`` that says
"rescale"; data it holds whose loss still overflows end in ``TrainingDivergedError`` naming
epoch and step; queries never return NaN or infinity. Every hyperparameter either works over
its documented range or is refused in ``fit`` with a ``ValueError`` naming it, and networks
too large for the memory are refused before torch allocates them.
"""

import math
import re

import numpy as np
import pytest
import torch

from latentspace.exceptions import TrainingDivergedError
from latentspace.neural import GAN, VAE, Autoencoder
from latentspace.neural import _nets
from latentspace.neural._trainer import make_optimizer, train

pytestmark = [pytest.mark.filterwarnings("ignore:mode collapse"),
              pytest.mark.filterwarnings("ignore:posterior collapse"),
              pytest.mark.filterwarnings("ignore:the discriminator wins")]

F32 = np.finfo(np.float32)
F32_MAX, F32_TINY = float(F32.max), float(F32.tiny)


def make(name, **kw):
    """Tiny, fast versions of the three models (a few steps per fit)."""
    kw = {"max_epochs": 2, "batch_size": 10, "random_state": 0, "latent_dim": 2, **kw}
    if name == "ae":
        return Autoencoder(**kw)
    if name == "vae":
        return VAE(**{"hidden_sizes": (4,), "likelihood": "gaussian", **kw})
    return GAN(**{"generator_sizes": (4,), "discriminator_sizes": (4,), **kw})


NAMES = ("ae", "vae", "gan")


@pytest.fixture(autouse=True)
def _no_huge_network(no_huge_network):
    """Every test here runs with the shared guard against allocating a huge network."""


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(30, 3))


@pytest.fixture(scope="module")
def fitted(X):
    return {name: make(name).fit(X) for name in NAMES}


def queries(est):
    """Every query of ``est`` that takes data rows."""
    out = {}
    for m in ("transform", "reconstruct", "score_samples", "discriminate"):
        if hasattr(est, m):
            out[m] = getattr(est, m)
    return out


# ----------------------------------------------------------------------------- fit: range
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [1e39, 1e150, 1e300])
def test_fit_on_data_beyond_float32_max_says_rescale(name, scale, X):
    assert np.abs(X * scale).max() > F32_MAX  # the oracle: float32 cannot hold these
    with pytest.raises(ValueError, match=r"rescale X .*StandardScaler"):
        make(name).fit(X * scale)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [1e-40, 1e-300])
def test_fit_on_data_below_float32_smallest_normal_says_rescale(name, scale, X):
    assert 0 < np.abs(X * scale).max() < F32_TINY
    with pytest.raises(ValueError, match=r"smallest normal float32.*rescale X"):
        make(name).fit(X * scale)


@pytest.mark.filterwarnings("ignore:posterior collapse")
@pytest.mark.parametrize("name", NAMES)
def test_all_zero_data_is_not_refused_as_tiny(name):
    make(name).fit(np.zeros((20, 3)))  # 0 is exact in float32: nothing to rescale


@pytest.mark.parametrize("name", NAMES)
def test_data_within_float32_whose_loss_overflows_diverge_naming_epoch_and_step(name, X):
    # |x| ~ 1e30 fits float32 (max 3.4e38), but squared errors (~1e60) and the GAN's
    # discriminator outputs overflow it: every step is refused. Only 6 steps run, fewer than
    # the 10 refused in a row that also raise, so this is the rule that a run in which every
    # step was refused never returns normally.
    Xb = X * 1e30
    assert np.abs(Xb).max() < F32_MAX and float(np.abs(Xb).max()) ** 2 > F32_MAX
    est = make(name, max_epochs=2)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step \d+") as info:
        est.fit(Xb)
    assert "rescale" in str(info.value)
    assert not hasattr(est, "network_")


def test_a_run_whose_every_batch_is_refused_raises_even_below_max_bad_steps():
    net = torch.nn.Linear(3, 1)
    opt = {"main": make_optimizer(net.parameters(), "sgd", 0.1, 0.0)}

    def step(batch, ctx):
        loss = net(batch).square().mean() * math.inf
        ctx.update(loss)
        return {"loss": loss.detach()}

    data = torch.ones(12, 3)  # 3 batches of 4 an epoch, 6 in all, max_bad_steps = 10
    with pytest.raises(TrainingDivergedError, match=r"every one of the 6 batches.*epoch 2, step 6"):
        train(net, data, step, opt, n_epochs=2, generator=torch.Generator(), batch_size=4,
              max_bad_steps=10)


def test_a_run_with_some_applied_steps_still_returns():
    net = torch.nn.Linear(3, 1)
    opt = {"main": make_optimizer(net.parameters(), "sgd", 0.1, 0.0)}

    def step(batch, ctx):
        loss = net(batch).square().mean()
        if ctx.step % 2:  # every other batch is refused
            loss = loss * math.inf
        ctx.update(loss)
        return {"loss": loss.detach()}

    res = train(net, torch.ones(12, 3), step, opt, n_epochs=2, generator=torch.Generator(),
                batch_size=4)
    assert res.n_skipped == 3 and res.step == 6


def test_streamed_batches_beyond_float32_say_rescale(X):
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.from_numpy(X * 1e150)), batch_size=10)
    with pytest.raises(ValueError, match="rescale a batch"):
        make("ae").fit(loader)


# ----------------------------------------------------------------------------- queries
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [1e150, 1e-300])
def test_queries_on_data_float32_cannot_hold_say_rescale(name, scale, fitted, X):
    est = fitted[name]
    for method, f in queries(est).items():
        with pytest.raises(ValueError, match="rescale X"):
            f(X * scale)
    # a tensor input goes through the same check
    with pytest.raises(ValueError, match="rescale X"):
        next(iter(queries(est).values()))(torch.from_numpy(X * scale))


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_inverse_transform_of_codes_float32_cannot_hold_says_rescale(name, fitted):
    with pytest.raises(ValueError, match="rescale Z"):
        fitted[name].inverse_transform(np.full((2, 2), 1e150))


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_scores_that_overflow_float32_raise_instead_of_inf(name, fitted, X):
    # |x| = 1e37 fits float32 but its squared error does not: the score would be -inf
    Xb = X * 1e37
    assert float(np.abs(Xb).max()) ** 2 > F32_MAX
    with pytest.raises(ValueError, match=r"overflowed float32 .*row 0.*rescale"):
        fitted[name].score_samples(Xb)


@pytest.mark.parametrize("name", NAMES)
def test_queries_on_ordinary_data_are_finite(name, fitted, X):
    for f in queries(fitted[name]).values():
        assert np.isfinite(np.asarray(f(X))).all()


# ----------------------------------------------------------------------------- momentum
def test_adam_momentum_is_beta1_and_zero_works_as_int_and_float():
    # Adam with beta1 = 0 steps by lr * g / (sqrt(g^2) + eps) in its first step (bias
    # corrections 1 - 0 = 1 and 1 - beta2 cancel the second moment's): -lr * sign(g)
    for m in (0, 0.0, np.float32(0.0)):
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        opt = make_optimizer([p], "adam", 0.1, m)
        assert opt.param_groups[0]["betas"] == (0.0, 0.999)
        p.grad = torch.tensor([3.0, -0.5])
        opt.step()
        g = torch.tensor([3.0, -0.5])
        expected = torch.tensor([1.0, -2.0]) - 0.1 * g / (g.abs() + 1e-8)
        torch.testing.assert_close(p.detach(), expected)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("momentum", [0, 0.0, 0.999, np.float64(0.5)])
def test_every_momentum_in_the_documented_range_fits(name, optimizer, momentum, X):
    est = make(name, optimizer=optimizer, momentum=momentum).fit(X)
    assert all(np.isfinite(p.detach().numpy()).all() for p in est.network_.parameters())


# ----------------------------------------------------------------------------- parameter edges
_EDGE_OK = {
    "ae": [dict(hidden_sizes=()), dict(hidden_sizes=[3]), dict(latent_dim=1), dict(batch_size=1),
           dict(weight_decay=0), dict(learning_rate=1e-12), dict(noise=("mask", 0.0)),
           dict(sparsity_target=0.5, sparsity_weight=0), dict(grad_clip=1e-9),
           dict(early_stopping=True, validation_fraction=0.5), dict(n_iter_no_change=1),
           dict(tol=0), dict(max_epochs=1), dict(batch_size=10**9)],
    "vae": [dict(hidden_sizes=()), dict(beta=0), dict(decoder_variance=1e-3),
            dict(decoder_variance="feature"), dict(batch_size=1), dict(latent_dim=1)],
    "gan": [dict(generator_sizes=(), discriminator_sizes=()), dict(k_steps=5),
            dict(r1_penalty=0), dict(r1_penalty=1.0), dict(minibatch_std=False),
            dict(noise="uniform"), dict(loss="minimax"), dict(discriminator_learning_rate=1e-9),
            dict(learning_rate_schedule="cosine"), dict(batch_size=1)],
}


@pytest.mark.parametrize("name, params",
                         [(n, p) for n, ps in _EDGE_OK.items() for p in ps],
                         ids=lambda v: str(v))
def test_edges_of_documented_ranges_work(name, params, X):
    est = make(name, **params).fit(X)
    for f in queries(est).values():
        assert np.isfinite(np.asarray(f(X))).all()


_NAN, _INF = float("nan"), float("inf")
_COMMON_BAD = [("latent_dim", v) for v in (0, -1, 2.5, _NAN, "2", None, True, 2**31, 10**19)] + [
    ("max_epochs", v) for v in (0, -3, 1.5, _NAN, "x")] + [
    ("batch_size", v) for v in (0, -1, _INF, "big", None)] + [
    ("learning_rate", v) for v in (0, -1e-3, _NAN, _INF, "fast")] + [
    ("momentum", v) for v in (-0.1, 1, 1.0, _NAN, _INF, "x", None)] + [
    ("weight_decay", v) for v in (-1, _NAN, _INF)] + [
    ("grad_clip", v) for v in (0, -1, _NAN, _INF, "x")] + [
    ("optimizer", v) for v in ("rmsprop", None, 1)] + [
    ("checkpoint_every", v) for v in (0, -1, 1.5)] + [
    ("verbose", v) for v in (-1, 0.5, "x")]
_SIZES_BAD = [(), 5, "4", (0,), (-1,), (4, 0), ("a",), (1.5,), (_NAN,), (2**31,), (10**19,),
              (True,)]
_SPECIFIC_BAD = {
    "ae": [("hidden_sizes", v) for v in _SIZES_BAD if v != ()] + [
        ("noise", v) for v in (("gaussian", 0), ("gaussian", -1), ("gaussian", _NAN),
                               ("gaussian", _INF), ("mask", 1.0), ("mask", -0.1), ("salt", 0.1),
                               (), "gaussian")] + [
        ("sparsity_target", v) for v in (0, 1, _NAN, -0.5)] + [
        ("sparsity_weight", v) for v in (-1, _NAN, _INF)] + [
        ("loss", "l1"), ("activation", "gelu"), ("code_activation", "x"), ("network", "rnn"),
        ("validation_fraction", 0), ("validation_fraction", 1), ("n_iter_no_change", 0),
        ("tol", -1), ("tol", _NAN), ("early_stopping", "yes"),
        ("learning_rate_schedule", "step")],
    "vae": [("hidden_sizes", v) for v in _SIZES_BAD if v != ()] + [
        ("decoder_variance", v) for v in (0, -1, _NAN, _INF, "learned", None)] + [
        ("beta", v) for v in (-1, _NAN, _INF)] + [("likelihood", "poisson")],
    "gan": [("generator_sizes", v) for v in _SIZES_BAD if v != ()] + [
        ("discriminator_sizes", v) for v in _SIZES_BAD if v != ()] + [
        ("k_steps", v) for v in (0, -1, 1.5)] + [
        ("r1_penalty", v) for v in (-1, _NAN, _INF, "x")] + [
        ("discriminator_learning_rate", v) for v in (0, -1, _NAN)] + [
        ("reference_std", v) for v in (0, -1, _NAN)] + [
        ("minibatch_std", "no"), ("output_activation", "softmax"),
        ("learning_rate_schedule", "plateau")],
}
_BAD = [(n, k, v) for n in NAMES for k, v in _COMMON_BAD] + [
    (n, k, v) for n, cases in _SPECIFIC_BAD.items() for k, v in cases]


@pytest.mark.parametrize("name, param, value", _BAD, ids=lambda v: repr(v)[:30])
def test_values_outside_documented_ranges_raise_valueerror_naming_the_parameter(
        name, param, value, X):
    est = make(name, **{param: value})
    if param == "reference_std":
        est.set_params(reference_modes=np.zeros((2, 3)))
    with pytest.raises(ValueError) as info:
        est.fit(X)
    msg = str(info.value)
    assert re.search(rf"\b{param}\b", msg), msg
    # the message comes from our checks, not from deep inside torch
    assert "torch" not in msg and "Tensor" not in msg


# ----------------------------------------------------------------------------- memory
def _n_params_ae(d, L, hidden=()):
    sizes = (d, *hidden, L)
    enc = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    dec_sizes = (L, *hidden[::-1], d)
    return enc + sum(a * b + b for a, b in zip(dec_sizes[:-1], dec_sizes[1:]))


@pytest.mark.parametrize("name, params, n_params", [
    ("ae", dict(latent_dim=10**9), _n_params_ae(3, 10**9)),
    ("ae", dict(hidden_sizes=(10**9,)), _n_params_ae(3, 2, (10**9,))),
    ("vae", dict(latent_dim=10**9, hidden_sizes=()), None),
    ("gan", dict(generator_sizes=(10**9,)), None),
    ("gan", dict(discriminator_sizes=(10**9, 10**9)), None),
])
def test_huge_networks_are_refused_before_torch_allocates(name, params, n_params, X,
                                                           monkeypatch):
    monkeypatch.setattr(_nets, "materialize", _never)
    est = make(name, **params)
    with pytest.raises(ValueError, match=r"needs about .* available.*smaller latent_dim") as info:
        est.fit(X)
    msg = str(info.value)
    key = next(iter(params))
    assert f"{key}=" in msg
    if n_params is not None:  # the closed-form count of a linear or one-hidden-layer pair
        shown = float(re.search(r"\(([\d.e+]+) parameters", msg).group(1))
        assert shown == pytest.approx(n_params, rel=5e-3)  # printed to 3 significant digits
    assert not hasattr(est, "network_")


def _never(*a, **k):  # pragma: no cover - the failure the memory tests guard against
    raise AssertionError("the network was materialised")


def test_a_refused_huge_refit_keeps_the_earlier_fit(fitted, X, monkeypatch):
    monkeypatch.setattr(_nets, "materialize", _never)
    est = fitted["ae"]
    before = est.transform(X)
    with pytest.raises(ValueError, match="needs about"):
        est.set_params(latent_dim=10**9).fit(X)
    est.set_params(latent_dim=2)
    np.testing.assert_array_equal(est.transform(X), before)


# ----------------------------------------------------------------------------- scale
def _rel_err(X, s):
    """Relative reconstruction error of a linear Adam autoencoder fitted on X * s."""
    est = Autoencoder(2, max_epochs=150, random_state=0).fit(X * s)
    R = est.reconstruct(X * s) / s
    return np.square(R - X).sum() / np.square(X - X.mean(0)).sum()


@pytest.fixture(scope="module")
def scale_case():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    pca = PCA(2).fit(X)
    pca_err = 1 - pca.explained_variance_ratio_.sum()
    ref = _rel_err(X, 1.0)
    assert ref < 2 * pca_err  # it learned: PCA is the optimum, an untrained network gives ~1.6
    return X, ref


@pytest.mark.parametrize("scale", [1e-6, 1e-15, 1e10, 1e15])
def test_adam_autoencoder_learns_the_same_at_any_representable_scale(scale, scale_case):
    # the squared error's gradients scale with s²: without the power-of-two factor, Adam's
    # ε (low end) or float32's range for its second moment (high end) froze the weights with
    # no step refused (relative error about 1.6, the untrained network's). Invariance
    # oracle: the relative error of the fit on X, to float32 rounding of other data.
    X, ref = scale_case
    assert _rel_err(X, scale) == pytest.approx(ref, rel=1e-3)


def test_skipped_steps_are_never_hidden():
    """A fit that had to skip steps (non-finite batches from a loader) warns with their
    count, which equals the trainer's own tally; a clean fit gives no such warning."""
    import warnings as _w

    from torch.utils.data import DataLoader, TensorDataset

    from latentspace import Autoencoder
    from latentspace.exceptions import ConvergenceWarning

    rng = np.random.RandomState(0)
    X = torch.from_numpy(rng.randn(200, 6)).float()
    X[40:60] = float("nan")  # the 3rd of 10 batches of 20, every epoch
    loader = DataLoader(TensorDataset(X), batch_size=20, shuffle=False)
    ae = Autoencoder(2, hidden_sizes=(8,), max_epochs=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"skipped 3 optimisation step"):
        ae.fit(loader)
    assert ae.n_skipped_steps_ == 3 == sum(h["n_skipped"] for h in ae.history_)
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        Autoencoder(2, hidden_sizes=(8,), max_epochs=3, random_state=0).fit(X[60:].numpy())
    assert not [w for w in caught if "optimisation step" in str(w.message)]
