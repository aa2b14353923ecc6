"""The one trainer: optimizer steps, clipping, the non-finite guard, early stopping,
history, checkpoints and resume, checked against hand-computed updates and invariants."""

import math
import pickle

import pytest
import torch
from torch import nn

from latentspace.exceptions import ModelFormatError, TrainingDivergedError
from latentspace.neural import load_checkpoint, train
from latentspace.neural._checkpoint import write_checkpoint
from latentspace.neural._trainer import StepContext, Stopping, make_optimizer


def _net(seed=0):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net


def _data(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g)
    return torch.cat([X, X.sum(1, keepdim=True).sin()], 1)  # features | target


def _mse_step(net, noise=0.0):
    def step(batch, ctx):
        x, y = batch[:, :3], batch[:, 3:]
        if noise:
            x = x + noise * torch.randn(x.shape, generator=ctx.generator)
        loss = (net(x) - y).square().sum(1).mean()
        ctx.update(loss)
        return {"loss": loss.detach()}

    return step


def _fit(net, data, *, epochs=3, seed=0, opt="adam", **kw):
    optim = {"main": make_optimizer(net.parameters(), opt, 1e-2, 0.9)}
    gen = torch.Generator().manual_seed(seed)
    return train(net, data, kw.pop("step", _mse_step(net, kw.pop("noise", 0.1))), optim,
                 n_epochs=epochs, generator=gen, batch_size=kw.pop("batch_size", 8), **kw)


def _params(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


# ----------------------------------------------------------------------------- steps
def test_sgd_update_matches_hand_computed_step():
    net = _net()
    x = _data(8)
    before = [p.detach().clone() for p in net.parameters()]
    loss = (net(x[:, :3]) - x[:, 3:]).square().sum(1).mean()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    opt = make_optimizer(net.parameters(), "sgd", 0.1, 0.9)
    ctx = StepContext({"main": opt}, None, torch.Generator())
    assert ctx.update((net(x[:, :3]) - x[:, 3:]).square().sum(1).mean())
    for p, b, g in zip(net.parameters(), before, grads):
        # first heavy-ball step: the momentum buffer is the gradient itself
        torch.testing.assert_close(p.detach(), b - 0.1 * g)


def test_gradient_clipping_scales_the_step_to_the_clip_norm():
    net = _net()
    x = _data(8)
    loss_fn = lambda: (net(x[:, :3]) - x[:, 3:]).square().sum(1).mean() * 100  # noqa: E731
    grads = torch.autograd.grad(loss_fn(), list(net.parameters()))
    norm = torch.sqrt(sum(g.square().sum() for g in grads))
    assert norm > 1.0
    before = _params(net)
    opt = make_optimizer(net.parameters(), "sgd", 1.0, 0.0)
    StepContext({"main": opt}, 1.0, torch.Generator()).update(loss_fn())
    step = before - _params(net)
    torch.testing.assert_close(step.norm(), torch.tensor(1.0), rtol=1e-5, atol=1e-6)


def test_adam_uses_momentum_as_beta1_and_sgd_has_momentum():
    p = [nn.Parameter(torch.zeros(2))]
    assert make_optimizer(p, "adam", 1e-3, 0.5).param_groups[0]["betas"] == (0.5, 0.999)
    assert make_optimizer(p, "sgd", 1e-3, 0.7).param_groups[0]["momentum"] == 0.7
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer(p, "rmsprop", 1e-3, 0.5)


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_weights_and_different_seed_differs():
    a, b, c = _net(), _net(), _net()
    data = _data()
    _fit(a, data, seed=3)
    _fit(b, data, seed=3)
    _fit(c, data, seed=4)
    assert torch.equal(_params(a), _params(b))
    assert not torch.equal(_params(a), _params(c))


def test_dataloader_batches_equal_tensor_batches():
    from torch.utils.data import DataLoader, TensorDataset

    data = _data()
    a, b = _net(), _net()
    _fit(a, data, shuffle=False, noise=0.0)
    loader = DataLoader(TensorDataset(data), batch_size=8, shuffle=False)
    _fit(b, loader, noise=0.0, prepare=lambda batch: batch[0])
    assert torch.equal(_params(a), _params(b))


# ----------------------------------------------------------------------------- history
def test_history_has_one_batch_size_weighted_mean_per_epoch():
    net = _net()

    def step(batch, ctx):
        loss = net(batch[:, :3]).square().mean()
        ctx.update(loss)
        return {"loss": loss.detach(), "size": float(batch.shape[0])}

    res = _fit(net, _data(20), epochs=2, step=step, batch_size=8)  # batches of 8, 8, 4
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert res.history[0]["size"] == pytest.approx((8 * 8 + 8 * 8 + 4 * 4) / 20)
    assert res.step == 6 and res.n_skipped == 0


# ----------------------------------------------------------------------------- the guard
def test_nan_batches_are_skipped_counted_and_leave_no_trace():
    data = _data(40)
    poisoned = data.clone()
    poisoned[8:16, 0] = math.nan  # batch 2 of 5
    poisoned[32:40, 1] = math.inf  # batch 5 of 5
    clean = torch.cat([data[:8], data[16:32]])
    a, b = _net(), _net()
    res = _fit(a, poisoned, shuffle=False, noise=0.0, epochs=2, opt="sgd")
    _fit(b, clean, shuffle=False, noise=0.0, epochs=2, opt="sgd")
    assert res.n_skipped == 4
    assert [h["n_skipped"] for h in res.history] == [2, 2]
    # skipping is exact: the same weights as never seeing those batches
    torch.testing.assert_close(_params(a), _params(b), rtol=0, atol=0)
    assert all(math.isfinite(h["loss"]) for h in res.history)


def test_repeated_nan_raises_naming_epoch_and_step(tmp_path):
    data = _data(40)
    data[:, 0] = math.nan
    ckpt = tmp_path / "run.ckpt"
    net = _net()
    start = _params(net).clone()
    # 5 batches per epoch: the 10th consecutive bad batch is the last of epoch 2
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step 10") as info:
        _fit(net, data, shuffle=False, epochs=5, max_bad_steps=10, checkpoint_path=ckpt)
    assert "10 consecutive" in str(info.value)
    state = load_checkpoint(ckpt)  # written after epoch 1, never after the failure
    assert state["epoch"] == 1 and state["n_skipped"] == 5
    assert torch.equal(torch.cat([t.flatten() for t in state["module"].values()]), start)


def test_exploding_run_raises_and_keeps_only_finite_checkpoints(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    net = _net()
    optim = {"main": make_optimizer(net.parameters(), "sgd", 1e6, 0.9)}
    data = _data(40) * 100
    with pytest.raises(TrainingDivergedError, match="epoch"):
        train(net, data, _mse_step(net), optim, n_epochs=50, generator=torch.Generator(),
              batch_size=8, checkpoint_path=ckpt, max_bad_steps=3)
    if ckpt.exists():
        state = load_checkpoint(ckpt)
        assert all(torch.isfinite(t).all() for t in state["module"].values())


# ----------------------------------------------------------------------------- early stopping
def test_early_stopping_stops_after_patience_and_restores_best_weights():
    net = _net()
    val_losses = iter([3.0, 2.0, 1.0, 1.5, 2.5, 4.0, 5.0, 6.0])
    snapshots = []

    res = _fit(net, _data(), epochs=8, val_data=_data(8, seed=9),
               val_fn=lambda b: {"loss": next(val_losses)} if b.shape[0] else {},
               stopping=Stopping(patience=2, restore_best=True),
               on_epoch_end=lambda rec: snapshots.append(_params(net).clone()))
    assert res.stopped_early and len(res.history) == 5 and res.best_epoch == 3
    assert res.stop_reason == "validation"
    assert [h["val_loss"] for h in res.history] == [3.0, 2.0, 1.0, 1.5, 2.5]
    assert torch.equal(_params(net), snapshots[2])


def _scripted(net, losses):
    """A real training step whose reported loss is ``losses[epoch]`` (the plateau rule's input)."""
    inner = _mse_step(net)

    def step(batch, ctx):
        inner(batch, ctx)
        return {"loss": losses[ctx.epoch]}

    return step


def test_plateaus_halve_the_rate_then_end_training():
    net = _net()
    res = _fit(net, _data(), epochs=50, step=_scripted(net, [5.0] * 50),
               stopping=Stopping(tol=0.0, patience=2, lr_drops=2, factor=0.5))
    # each stage: one epoch sets its best, two without improvement make the plateau
    rates = [h["learning_rate"] for h in res.history]
    assert rates == pytest.approx([1e-2] * 3 + [5e-3] * 3 + [2.5e-3] * 3)
    assert res.stopped_early and res.stop_reason == "converged" and not res.still_improving
    assert res.lr_scale == 0.25


def test_improvement_is_relative_to_the_best_of_the_stage():
    losses = [1.0, 0.99995, 0.99993] + [0.5] * 10
    # gains of 5e-5 and 7e-5 relative: below tol = 1e-4, so epochs 2 and 3 make a plateau
    net = _net()
    res = _fit(net, _data(), epochs=len(losses), step=_scripted(net, losses),
               stopping=Stopping(tol=1e-4, patience=2, lr_drops=0))
    assert len(res.history) == 3 and res.stop_reason == "converged"
    # with tol = 1e-5 both count as progress, and the drop to 0.5 does too
    net = _net()
    res = _fit(net, _data(), epochs=len(losses), step=_scripted(net, losses),
               stopping=Stopping(tol=1e-5, patience=2, lr_drops=0))
    assert len(res.history) == 6 and res.best_epoch == 4


def test_reaching_n_epochs_while_improving_is_reported():
    net = _net()
    losses = [10.0 - i for i in range(5)]
    res = _fit(net, _data(), epochs=5, step=_scripted(net, losses),
               stopping=Stopping(patience=3, lr_drops=2))
    assert not res.stopped_early and res.stop_reason == "max_epochs" and res.still_improving


def test_a_blow_up_restores_the_best_epoch_and_halves_the_rate():
    net = _net()
    snapshots = []
    losses = [3.0, 2.0, 1.0, 100.0, 0.9, 0.8]  # epoch 4 is > best + |best|
    res = _fit(net, _data(), epochs=4, step=_scripted(net, losses),
               stopping=Stopping(patience=5, lr_drops=1, factor=0.5),
               on_epoch_end=lambda rec: snapshots.append(_params(net).clone()))
    assert res.history[3]["restored_epoch"] == 3
    assert torch.equal(_params(net), snapshots[2]) and not torch.equal(snapshots[3], snapshots[2])
    net2 = _net()
    res2 = _fit(net2, _data(), epochs=6, step=_scripted(net2, losses),
                stopping=Stopping(patience=5, lr_drops=1, factor=0.5))
    assert [h["learning_rate"] for h in res2.history] == pytest.approx([1e-2] * 4 + [5e-3] * 2)
    assert res2.stop_reason == "max_epochs"


def test_a_blow_up_with_no_reduction_left_stops_at_the_best_epoch():
    net = _net()
    snapshots = []
    res = _fit(net, _data(), epochs=10, step=_scripted(net, [3.0, 2.0, 50.0] + [1.0] * 7),
               stopping=Stopping(patience=5, lr_drops=0),
               on_epoch_end=lambda rec: snapshots.append(_params(net).clone()))
    assert len(res.history) == 3 and res.stop_reason == "unstable" and res.best_epoch == 2
    assert torch.equal(_params(net), snapshots[1])


def test_a_rising_validation_loss_is_early_stopping_not_a_blow_up():
    net = _net()
    val = iter([1.0, 3.0, 4.0, 5.0])
    res = _fit(net, _data(), epochs=4, val_data=_data(8, seed=9),
               val_fn=lambda b: {"loss": next(val)},
               stopping=Stopping(patience=3, restore_best=True))
    assert res.stop_reason == "validation" and len(res.history) == 4
    assert "restored_epoch" not in res.history[1]


# ----------------------------------------------------------------------------- checkpoints
def test_resume_continues_exactly(tmp_path):
    data = _data(50)
    ckpt = tmp_path / "run.ckpt"
    full = _net()
    _fit(full, data, epochs=6)
    part = _net()
    _fit(part, data, epochs=4, checkpoint_path=ckpt, checkpoint_every=2)
    assert load_checkpoint(ckpt)["epoch"] == 4
    resumed = _net(seed=7)  # different starting weights: everything must come from the file
    res = _fit(resumed, data, epochs=6, seed=99, resume=ckpt)
    assert torch.equal(_params(full), _params(resumed))
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4, 5, 6]


def test_resume_from_another_device_kind_keeps_weights_and_warns(tmp_path):
    # a CUDA generator's state is 16 bytes, a CPU one's about 5000: a checkpoint written on one
    # kind of device cannot restore the other's random stream; the run must still resume
    data = _data(50)
    ckpt = tmp_path / "run.ckpt"
    part = _net()
    _fit(part, data, epochs=2, checkpoint_path=ckpt)
    state = load_checkpoint(ckpt)
    state["generator"] = torch.arange(16, dtype=torch.uint8)  # as a CUDA generator saves it
    write_checkpoint(ckpt, state)
    resumed = _net(seed=7)
    with pytest.warns(RuntimeWarning, match="another kind of device"):
        res = _fit(resumed, data, epochs=2, resume=ckpt)  # nothing left to train
    assert torch.equal(_params(part), _params(resumed))
    assert [h["epoch"] for h in res.history] == [1, 2]
    with pytest.warns(RuntimeWarning, match="another kind of device"):
        res = _fit(_net(seed=8), data, epochs=3, resume=ckpt)
    assert [h["epoch"] for h in res.history] == [1, 2, 3]


def test_resume_refuses_another_configuration(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    _fit(_net(), _data(), epochs=1, checkpoint_path=ckpt, meta="A")
    with pytest.raises(ValueError, match="different model configuration"):
        _fit(_net(), _data(), epochs=2, resume=ckpt, meta="B")


class _Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_with_code_payload_is_refused_unrun(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.ckpt"
    torch.save({"format": "latentspace-checkpoint", "x": _Payload()}, bad)
    with pytest.raises(ModelFormatError, match="not a readable"):
        load_checkpoint(bad)
    assert not (tmp_path / "PWNED").exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"format": "latentspace-checkpoint"}))
    with pytest.raises(ModelFormatError):
        load_checkpoint(plain)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFormatError):
        load_checkpoint(garbage)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_progress_bar_writes_only_when_asked(capsys):
    _fit(_net(), _data(), epochs=2, progress=False)
    assert capsys.readouterr().err == ""
    _fit(_net(), _data(), epochs=2, progress=True, desc="unit")
    assert "unit" in capsys.readouterr().err
