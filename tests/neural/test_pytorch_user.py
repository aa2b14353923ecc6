"""What a PyTorch user brings to the neural models: their own networks, optimizers and
callbacks, safetensors checkpoints that resume, warm starts, progress bars, and the
scikit-learn plumbing (feature names, the container of ``sample``, devices)."""

import io
import math
import pickle
import re
import time
from contextlib import redirect_stderr
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import latentspace
from latentspace.exceptions import ModelFormatError, UnsafeFormatError
from latentspace.neural import GAN, VAE, Autoencoder, load_checkpoint

D, L = 8, 2
# a few epochs on noise: the collapse monitors are right to warn, and are not the point here
pytestmark = [pytest.mark.filterwarnings("ignore:mode collapse"),
              pytest.mark.filterwarnings("ignore:posterior collapse")]


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return rng.random((96, D)).astype(np.float32)


def _torch_modules(*shapes, seed=0):
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(a, 16), nn.Tanh(), nn.Linear(16, b)) for a, b in shapes]


class StopAt:
    """Stops training after epoch ``at``; records what it saw."""

    def __init__(self, at):
        self.at, self.epochs, self.started, self.ended = at, [], 0, 0

    def on_fit_start(self, est):
        self.started += 1

    def on_epoch_end(self, est, record):
        assert record is est.history_[-1]  # the epoch's history_ entry, live
        self.epochs.append(record["epoch"])
        return record["epoch"] == self.at

    def on_fit_end(self, est):
        self.ended += 1


class PairEncoder(nn.Module):
    """An encoder returning (mean, log_variance)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(D, 2 * L)

    def forward(self, x):
        h = self.body(x)
        return h[:, :L], h[:, L:]


def _params(module):
    return torch.cat([p.detach().flatten() for p in module.state_dict().values()])


# ----------------------------------------------------------------------------- user modules
@pytest.mark.parametrize("make", [
    lambda cb: Autoencoder(L, encoder=_torch_modules((D, L))[0],
                           decoder=_torch_modules((L, D))[0], callbacks=[cb]),
    lambda cb: VAE(L, encoder=PairEncoder(), decoder=_torch_modules((L, D))[0],
                   callbacks=[cb]),
    lambda cb: VAE(L, encoder=_torch_modules((D, 2 * L))[0],
                   decoder=_torch_modules((L, D))[0], callbacks=[cb]),
    lambda cb: GAN(L, generator=nn.Sequential(_torch_modules((L, D))[0], nn.Sigmoid()),
                   discriminator=_torch_modules((D, 1))[0], callbacks=[cb]),
], ids=["ae", "vae-pair", "vae-2L", "gan"])
def test_user_modules_train_with_adamw_and_a_stopping_callback(X, make):
    cb = StopAt(3)
    est = make(cb).set_params(optimizer=torch.optim.AdamW, max_epochs=10, batch_size=32,
                              random_state=0)
    user = {n: getattr(est, n) for n in est._module_params}
    before = {n: _params(m).clone() for n, m in user.items()}
    est.fit(X)
    assert cb.epochs == [1, 2, 3] and cb.started == 1 and cb.ended == 1
    assert est.n_iter_ == 3 and est.stop_reason_ == "callback" and not est.converged_
    assert [h["epoch"] for h in est.history_] == [1, 2, 3]
    for name, m in user.items():
        trained = getattr(est.network_, name)
        assert trained is not m  # a copy is trained; the object passed in is unchanged
        assert torch.equal(_params(m), before[name])
        assert not torch.equal(_params(trained), before[name])
    # the losses the trainer reports are those of the user's networks on the data
    first = est.history_[0]
    assert all(math.isfinite(v) for v in first.values())


class ConvEncoder(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.net = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 4, 4, 2, 1),
                                 nn.ReLU(), nn.Conv2d(4, 8, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(8 * 7 * 7, out))

    def forward(self, x):
        return self.net(x)


class ConvDecoder(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, 8 * 7 * 7), nn.ReLU(),
                                 nn.Unflatten(1, (8, 7, 7)), nn.ConvTranspose2d(8, 4, 4, 2, 1),
                                 nn.ReLU(), nn.ConvTranspose2d(4, 1, 4, 2, 1), nn.Flatten())

    def forward(self, z):
        return self.net(z)


def test_small_convolutional_user_modules_on_28x28_images():
    rng = np.random.default_rng(1)
    images = (rng.random((48, 784)) < 0.3).astype(np.float32)
    torch.manual_seed(0)
    cb = StopAt(2)
    vae = VAE(L, encoder=ConvEncoder(2 * L), decoder=ConvDecoder(L), optimizer=torch.optim.AdamW,
              max_epochs=5, batch_size=16, callbacks=[cb], random_state=0).fit(images)
    assert vae.n_iter_ == 2 and vae.stop_reason_ == "callback"
    # the ELBO of the trained conv network is what score_samples reports: finite, ≤ 0 bits
    assert np.all(np.isfinite(vae.score_samples(images)))
    torch.manual_seed(0)
    ae = Autoencoder(L, encoder=ConvEncoder(L), decoder=ConvDecoder(L), loss="bce",
                     max_epochs=2, batch_size=16, random_state=0).fit(images)
    codes = ae.transform(images)
    assert codes.shape == (48, L)
    rec = ae.reconstruct(images)
    assert rec.shape == images.shape and rec.min() >= 0 and rec.max() <= 1  # probabilities


@pytest.mark.parametrize("est, pattern", [
    (Autoencoder(L, encoder=nn.Linear(D, 3), decoder=nn.Linear(L, D)),
     r"encoder module returned \(32, 3\).*expects shape \(32, 2\)"),
    (Autoencoder(L, encoder=nn.Linear(D, L), decoder=nn.Linear(L, D + 1)),
     r"decoder module returned \(32, 9\).*expects shape \(32, 8\)"),
    (Autoencoder(L, encoder=nn.Linear(D - 1, L), decoder=nn.Linear(L, D)),
     r"encoder module raised RuntimeError.*\(32, 8\).*codes \(32, 2\)"),
    (VAE(L, encoder=nn.Linear(D, L), decoder=nn.Linear(L, D)),
     r"encoder module returned \(32, 2\).*expects shape \(32, 4\)"),
    (GAN(L, generator=nn.Linear(L, D), discriminator=nn.Linear(D, 2), batch_size=32),
     r"discriminator.*returned \(32, 2\).*expects shape \(32, 1\)"),
    (GAN(L, generator=nn.Linear(3, D), discriminator=nn.Linear(D, 1), batch_size=32),
     r"generator module raised RuntimeError.*noise \(32, 2\)"),
], ids=["ae-code", "ae-out", "ae-input", "vae-half", "gan-d", "gan-g"])
def test_bad_module_shapes_name_the_module_and_the_expected_shape(X, est, pattern):
    est.set_params(max_epochs=2, batch_size=32)
    with pytest.raises(ValueError, match=pattern):
        est.fit(X)
    assert not hasattr(est, "network_")  # nothing of the failed fit remains


def test_modules_come_together_and_must_be_modules(X):
    with pytest.raises(ValueError, match="given encoder but not decoder"):
        Autoencoder(L, encoder=nn.Linear(D, L), max_epochs=1).fit(X)
    with pytest.raises(ValueError, match="generator must be None .* or a torch.nn.Module"):
        GAN(L, generator="mlp", discriminator=nn.Linear(D, 1), max_epochs=1).fit(X)


# ----------------------------------------------------------------------------- optimizers
def test_optimizer_by_name_class_or_callable(X):
    def adam_on(params, **kw):
        return torch.optim.Adam(params, lr=5e-3, **kw)

    for opt, kwargs in [("adamw", None), (torch.optim.SGD, {"momentum": 0.5}),
                        (torch.optim.AdamW, {"betas": (0.8, 0.9)}), (adam_on, {"eps": 1e-6})]:
        est = Autoencoder(L, optimizer=opt, optimizer_kwargs=kwargs, max_epochs=2,
                          random_state=0).fit(X)
        assert est.n_iter_ == 2
    # a callable's own rate is the one used (and scaled by the schedule)
    assert est.history_[0]["learning_rate"] == 5e-3
    est = Autoencoder(L, optimizer=torch.optim.SGD, learning_rate=0.25, max_epochs=1).fit(X)
    assert est.history_[0]["learning_rate"] == 0.25


@pytest.mark.parametrize("opt, kwargs, exc, pattern", [
    ("lbfgs", None, ValueError, r"optimizer='lbfgs' is not supported"),
    (dict, None, ValueError, r"not a torch.optim.Optimizer subclass"),
    (3, None, ValueError, r"optimizer=3 is not supported"),
    (lambda p: "nope", None, TypeError, r"returned a str, not a torch.optim.Optimizer"),
    (torch.optim.AdamW, {"nonsense": 1}, ValueError, r"could not be built.*nonsense.*TypeError"),
    ("adam", ["lr"], ValueError, r"optimizer_kwargs must be None or a dict"),
])
def test_bad_optimizers_are_refused_with_the_fix(X, opt, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Autoencoder(L, optimizer=opt, optimizer_kwargs=kwargs, max_epochs=1).fit(X)


@pytest.mark.parametrize("callbacks", [object(), [object()],
                                       [type("C", (), {"on_epoch_end": 3})()]])
def test_bad_callbacks_are_refused(X, callbacks):
    with pytest.raises(ValueError, match="callbacks"):
        VAE(L, callbacks=callbacks, max_epochs=1).fit(X)


def test_a_callback_that_never_stops_changes_nothing(X):
    class Watch:
        def on_epoch_end(self, est, record):
            return None

    plain = Autoencoder(L, max_epochs=3, random_state=0).fit(X)
    watched = Autoencoder(L, max_epochs=3, random_state=0, callbacks=[Watch()]).fit(X)
    assert torch.equal(_params(plain.network_), _params(watched.network_))


# ----------------------------------------------------------------------------- checkpoints
def _ae(ckpt=None, epochs=6, **kw):
    enc, dec = _torch_modules((D, L), (L, D), seed=3)
    return Autoencoder(L, encoder=enc, decoder=dec, optimizer=torch.optim.AdamW, max_epochs=epochs,
                       batch_size=16, checkpoint_path=ckpt, random_state=0,
                       learning_rate_schedule="constant", **kw)


def test_safetensors_checkpoint_resumes_bit_for_bit(X, tmp_path):
    ckpt = tmp_path / "ckpt.safetensors"
    straight = _ae(epochs=6).fit(X)
    _ae(ckpt, epochs=3).fit(X)
    assert ckpt.read_bytes()[8:9] == b"{"  # the safetensors layout: length, then JSON
    assert load_checkpoint(ckpt)["epoch"] == 3
    resumed = _ae(ckpt, epochs=6).fit(X, resume=ckpt)
    assert torch.equal(_params(straight.network_), _params(resumed.network_))
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in straight.history_]
    assert load_checkpoint(ckpt)["epoch"] == 6
    # the file is a safetensors file any reader can open
    from safetensors import safe_open

    with safe_open(str(ckpt), "pt") as f:
        assert any(k.startswith("state.") for k in f.keys())


def test_load_and_info_recognise_a_checkpoint(X, tmp_path, capsys):
    from latentspace.cli import main

    ckpt = tmp_path / "ckpt.safetensors"
    VAE(L, hidden_sizes=(8,), max_epochs=2, checkpoint_path=ckpt, random_state=0).fit(X)
    with pytest.raises(ModelFormatError, match=r"training checkpoint.*fit\(X, resume=path\)"):
        latentspace.load(ckpt)
    info = latentspace.io.describe(ckpt)
    assert info["kind"] == "checkpoint" and info["class"] == "VAE" and info["epoch"] == 2
    capsys.readouterr()
    assert main(["info", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "training checkpoint" in out and "epochs done: 2" in out
    assert "resume=" in out and "class: VAE" in out
    assert main(["info", "--json", str(ckpt)]) == 0
    assert '"kind": "checkpoint"' in capsys.readouterr().out
    # and a saved model in place of a checkpoint says how to continue from it
    model = tmp_path / "model.safetensors"
    VAE(L, hidden_sizes=(8,), max_epochs=1).fit(X).save(model)
    with pytest.raises(ModelFormatError, match="warm_start=True"):
        VAE(L, hidden_sizes=(8,), max_epochs=2).fit(X, resume=model)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["pickle", "torch_save"])
def test_a_pickle_in_place_of_a_checkpoint_is_refused_unrun(X, tmp_path, writer):
    marker = tmp_path / "PWNED"
    ckpt = tmp_path / "ckpt.safetensors"
    if writer == "pickle":
        ckpt.write_bytes(pickle.dumps({"format": "latentspace-checkpoint",
                                       "x": _Payload(marker)}))
    else:  # a checkpoint of the earlier torch.save format, with a payload
        torch.save({"format": "latentspace-checkpoint", "x": _Payload(marker)}, ckpt)
    est = Autoencoder(L, max_epochs=2)
    with pytest.raises(UnsafeFormatError, match="not a readable latentspace checkpoint"):
        est.fit(X, resume=ckpt)
    with pytest.raises(UnsafeFormatError):
        load_checkpoint(ckpt)
    with pytest.raises(UnsafeFormatError):
        latentspace.load(ckpt)
    with pytest.raises(UnsafeFormatError):
        latentspace.io.describe(ckpt)
    assert not marker.exists()
    assert not hasattr(est, "network_")


def test_checkpoint_code_path_never_unpickles(X, tmp_path, monkeypatch):
    # writing, reading and resuming never reach pickle or torch.load
    def refuse(*a, **k):
        raise AssertionError("unpickling in the checkpoint path")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    ckpt = tmp_path / "run.any-name"
    GAN(L, generator_sizes=(8,), discriminator_sizes=(8,), max_epochs=2, checkpoint_path=ckpt,
        random_state=0).fit(X)
    GAN(L, generator_sizes=(8,), discriminator_sizes=(8,), max_epochs=3, checkpoint_path=ckpt,
        random_state=0).fit(X, resume=ckpt)
    assert load_checkpoint(ckpt)["epoch"] == 3
    latentspace.io.describe(ckpt)


def test_a_tampered_checkpoint_is_a_format_error(X, tmp_path):
    ckpt = tmp_path / "ckpt.safetensors"
    Autoencoder(L, max_epochs=1, checkpoint_path=ckpt).fit(X)
    data = bytearray(ckpt.read_bytes())
    for at in (20, len(data) // 2, len(data) - 3):
        bad = data.copy()
        bad[at] ^= 0x01
        ckpt.write_bytes(bytes(bad))
        with pytest.raises(ModelFormatError):
            Autoencoder(L, max_epochs=2).fit(X, resume=ckpt)


# ----------------------------------------------------------------------------- warm start
class StartState:
    """Keeps the weights the fit starts from."""

    def on_fit_start(self, est):
        self.state = _params(est.network_).clone()


def test_warm_start_after_load_continues_from_the_saved_weights(X, tmp_path):
    first = VAE(L, hidden_sizes=(16,), max_epochs=15, batch_size=16,
                learning_rate_schedule="constant", random_state=0).fit(X)
    path = tmp_path / "vae.safetensors"
    first.save(path)
    loaded = latentspace.load(path)
    seen = StartState()
    loaded.set_params(warm_start=True, max_epochs=3, callbacks=[seen]).fit(X)
    assert torch.equal(seen.state, _params(first.network_))  # exactly the saved weights
    fresh = VAE(L, hidden_sizes=(16,), max_epochs=3, batch_size=16, random_state=0).fit(X)
    # the loss goes on from where it stopped, not from the start: its first epoch is nearer
    # the end of the first fit than a fresh fit's first epoch is
    cont, end, start = (loaded.history_[0]["loss"], first.history_[-1]["loss"],
                        fresh.history_[0]["loss"])
    assert abs(cont - end) < abs(start - end)
    assert [h["epoch"] for h in loaded.history_] == [1, 2, 3]


def test_warm_start_continues_the_optimizer_state_in_memory(X):
    est = Autoencoder(L, max_epochs=2, batch_size=32, random_state=0).fit(X)
    steps = 2 * math.ceil(len(X) / 32)

    def adam_steps(e):
        return {float(s["step"]) for s in e._optimizer_state["main"]["state"].values()}

    assert adam_steps(est) == {steps}
    est.set_params(warm_start=True).fit(X)
    assert adam_steps(est) == {2 * steps}
    # without warm_start a new network and a new optimizer
    est.set_params(warm_start=False).fit(X)
    assert adam_steps(est) == {steps}


def test_warm_start_refuses_other_widths_and_keeps_the_earlier_fit(X):
    est = Autoencoder(L, max_epochs=1, random_state=0).fit(X)
    before = _params(est.network_).clone()
    with pytest.raises(ValueError, match="warm_start=True continues the fitted network"):
        est.set_params(warm_start=True).fit(X[:, :5])
    assert est.n_features_in_ == D and torch.equal(_params(est.network_), before)


def test_user_modules_round_trip_through_a_file(X, tmp_path):
    est = _ae(epochs=2).fit(X)
    path = tmp_path / "ae.safetensors"
    est.save(path)
    with pytest.raises(ModelFormatError, match=r"your own decoder and encoder.*modules="):
        latentspace.load(path)
    info = latentspace.io.describe(path)  # info shows them without needing them
    assert "Sequential" in info["params"]["encoder"]
    assert info["params"]["optimizer"] == "<torch.optim.AdamW>"
    enc, dec = _torch_modules((D, L), (L, D), seed=9)
    back = latentspace.load(path, modules={"encoder": enc, "decoder": dec})
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
    assert back.optimizer is torch.optim.AdamW
    wrong = _torch_modules((D, 3), (3, D))
    with pytest.raises(ModelFormatError, match="do not match the saved weights"):
        latentspace.load(path, modules={"encoder": wrong[0], "decoder": wrong[1]})
    with pytest.raises(ValueError, match="does not store as user modules"):
        latentspace.load(path, modules={"encoder": enc, "decoder": dec, "generator": enc})
    # and the loaded model trains on
    back.set_params(warm_start=True, max_epochs=1).fit(X)
    assert back.n_iter_ == 1


# ----------------------------------------------------------------------------- progress
class SlowEncoder(nn.Module):
    """A linear encoder that takes 30 ms a batch: the bar has time to redraw mid-epoch."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, L)

    def forward(self, x):
        time.sleep(0.03)
        return self.lin(x)


def test_progress_bar_advances_within_epochs_in_a_non_tty_stream(X):
    err, out = io.StringIO(), io.StringIO()
    est = Autoencoder(L, encoder=SlowEncoder(), decoder=nn.Linear(L, D), max_epochs=2,
                      batch_size=12, verbose=1, random_state=0)
    from contextlib import redirect_stdout

    with redirect_stderr(err), redirect_stdout(out):
        est.fit(X)
    text = err.getvalue()
    assert out.getvalue() == ""
    assert "Autoencoder epoch 1/2" in text and "Autoencoder epoch 2/2" in text
    # 8 steps an epoch: some frame of epoch 1 shows a step count strictly inside it
    frames = [f for f in re.split(r"[\r\n]", text) if "epoch 1/2" in f]
    inside = {int(m.group(1)) for f in frames for m in [re.search(r"\b(\d)/8\b", f)] if m}
    assert inside & set(range(1, 8)), frames


def test_verbose_zero_prints_nothing(X, capfd):
    GAN(L, generator_sizes=(8,), discriminator_sizes=(8,), max_epochs=2).fit(X)
    VAE(L, hidden_sizes=(8,), max_epochs=2).fit(X)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_em_verbose_and_choose_k_progress_go_to_stderr(capfd):
    from latentspace import GaussianMixture, KMeans, choose_k

    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(0, 1, (60, 2)), rng.normal(6, 1, (60, 2))])
    GaussianMixture(2, verbose=1, random_state=0).fit(data)
    captured = capfd.readouterr()
    assert captured.out == "" and "lower bound" in captured.err
    choose_k(KMeans(random_state=0), data, [1, 2, 3], verbose=1)
    captured = capfd.readouterr()
    assert captured.out == "" and "choose_k n_clusters=3" in captured.err
    choose_k(KMeans(random_state=0), data, [1, 2, 3])
    assert capfd.readouterr().err == ""


# ----------------------------------------------------------------------------- sklearn plumbing
@pytest.mark.parametrize("cls", [Autoencoder, VAE])
def test_feature_names_out_in_a_pandas_pipeline(X, cls):
    pd = pytest.importorskip("pandas")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    kw = {"hidden_sizes": (8,)}
    pipe = make_pipeline(MinMaxScaler(), cls(3, max_epochs=1, **kw)).set_output(transform="pandas")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(D)])
    out = pipe.fit_transform(frame)
    prefix = cls.__name__.lower()
    assert list(out.columns) == [f"{prefix}{i}" for i in range(3)]
    np.testing.assert_allclose(out.to_numpy(), pipe.transform(frame).to_numpy())
    assert list(pipe.get_feature_names_out()) == list(out.columns)


@pytest.mark.parametrize("make", [
    lambda: VAE(L, hidden_sizes=(8,), max_epochs=1, random_state=0),
    lambda: GAN(L, generator_sizes=(8,), discriminator_sizes=(8,), max_epochs=1, random_state=0),
], ids=["vae", "gan"])
@pytest.mark.parametrize("kind", ["numpy32", "numpy64", "torch32", "torch64"])
def test_sample_keeps_the_fits_container_and_dtype(X, make, kind):
    data = X.astype(np.float64) if kind.endswith("64") else X
    if kind.startswith("torch"):
        data = torch.as_tensor(data)
    est = make().fit(data)
    draw = est.sample(5)
    want = data.dtype
    assert type(draw) is type(data) and draw.dtype == want and draw.shape == (5, D)
    if isinstance(draw, torch.Tensor):
        assert draw.device == data.device and not draw.requires_grad
    # the values are the network's float32 ones, only converted
    again = est.sample(5)
    np.testing.assert_array_equal(np.asarray(draw), np.asarray(again))


def test_mps_is_accepted_where_torch_has_it_and_refused_with_a_reason_elsewhere(X):
    from latentspace import GaussianMixture

    has_mps = torch.backends.mps.is_available()
    est = Autoencoder(L, max_epochs=1, device="mps")
    if not has_mps:
        with pytest.raises(ValueError, match=r"device='mps'.*no usable MPS backend"):
            est.fit(X)
    with pytest.raises(ValueError, match=r"device='mps' is supported by the neural models only"):
        GaussianMixture(2, device="mps").fit(X)


def test_user_modules_on_a_dataloader_and_what_it_samples(X):
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.as_tensor(X)), batch_size=32)
    g, d = nn.Sequential(nn.Linear(L, D), nn.Sigmoid()), nn.Linear(D, 1)
    gan = GAN(L, generator=g, discriminator=d, max_epochs=2, random_state=0).fit(loader)
    draw = gan.sample(4)
    assert isinstance(draw, np.ndarray) and draw.dtype == np.float32  # the input is not known
    with pytest.raises(ValueError, match=r"decoder module returned \(32, 7\)"):
        Autoencoder(L, encoder=nn.Linear(D, L), decoder=nn.Linear(L, D - 1),
                    max_epochs=1).fit(loader)
