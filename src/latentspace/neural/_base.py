"""What the autoencoders, the VAE and the GAN share: training options, the fit skeleton,
batched inference, and saving the network.

A subclass says how to build its network (``_build_network``), which optimizers it needs
(``_make_optimizers``), what one training step does (``_train_step``) and, optionally, what a
validation step reports (``_val_step``) and what to monitor after each epoch
(``_on_epoch_end``). Everything else lives here and in :mod:`._trainer`.

What a PyTorch user brings is shared here too: their own networks (``_module_params``, e.g.
``encoder``/``decoder``, which replace the built-in ones and are checked on the first
batch by the subclass's ``_check_modules``), an optimizer (a name, a ``torch.optim``
class or a callable), callbacks (:class:`_UserCallbacks`), and ``warm_start``.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .._validation import (
    ParameterError,
    _shown,
    check_array_like,
    check_choice,
    check_float,
    check_int,
    check_n_samples_to_draw,
    check_random_state,
    check_seed,
)
from ..base import LatentModel
from ..exceptions import ConvergenceWarning
from . import _nets
from ._trainer import OPTIMIZERS, Callback, Stopping, make_optimizer, train

__all__ = ["_NeuralModel"]

_INFER_ROWS = 4096  # rows per forward pass at inference time (bounds peak memory)

# options that may differ between a run and its resumption
_RESUME_FREE = {"max_epochs", "verbose", "checkpoint_path", "checkpoint_every", "device",
                "callbacks", "warm_start"}
_HOOKS = ("on_fit_start", "on_epoch_end", "on_fit_end")  # what a user callback may define

# learning_rate_schedule="plateau": on each plateau of the monitored loss the rate is
# multiplied by _PLATEAU_FACTOR, _PLATEAU_DROPS times; the next plateau ends training
_PLATEAU_FACTOR = 0.5
_PLATEAU_DROPS = 6
_AUTO_BATCH = (32, 128)  # batch_size="auto": rows per step, at least and at most
# n_iter_no_change="auto": a plateau is this many optimiser steps without improvement, in
# whole epochs, between these bounds -- 20 epochs up to 4 096 rows (32 steps an epoch), then
# fewer: on 20 000 rows 5 epochs of 157 steps, where 20 made a default fit run for minutes
AUTO_PATIENCE_STEPS = 640
AUTO_PATIENCE_EPOCHS = (3, 20)
# max_epochs="auto" of the autoencoders and the VAE: 1000 epochs, or the epochs of this many
# optimiser steps when fewer (at least AUTO_EPOCHS[0]): 16 000 steps leave the small-data
# fits 1000 epochs up to 512 rows, 500 up to 4 096 and 400 on 5 000 (they converge within
# them), and give 20 000 rows 102 epochs
AUTO_STEPS = 16000
AUTO_EPOCHS = (20, 1000)
# widest layer (latent_dim, hidden sizes) accepted: larger ones would overflow torch's int64
# element counts before the memory estimate could refuse them (10**9 still reaches it)
MAX_WIDTH = 2**30


def _json_param(v):
    """A hyperparameter as JSON for the checkpoint's configuration (``meta``): user modules,
    optimizer classes and callables by their class or qualified name (their weights are
    checked when the checkpoint's state is loaded), never by a ``repr`` holding an address."""
    if isinstance(v, torch.nn.Module):
        return f"<module {type(v).__qualname__}>"
    if isinstance(v, type) or (callable(v) and not isinstance(v, (str, np.ndarray))):
        return f"<callable {getattr(v, '__qualname__', type(v).__qualname__)}>"
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, tuple):
        return [_json_param(x) for x in v]
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _json_param(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)


class _UserCallbacks(Callback):
    """The estimator's ``callbacks`` inside the trainer: ``on_fit_start(estimator)`` before the
    first epoch, ``on_epoch_end(estimator, record)`` after each (True stops training after
    it), ``on_fit_end`` by the estimator once the fit is complete. While training runs, the
    estimator's ``network_`` is the network being trained and ``history_`` its epochs so far."""

    def __init__(self, est, callbacks):
        self.est, self.callbacks = est, list(callbacks)

    def _publish(self, run) -> None:
        self.est.network_ = run.module
        self.est.history_ = run.result.history
        self.est.n_iter_ = len(run.result.history)

    def on_train_start(self, run):
        self._publish(run)
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_start"):
                cb.on_fit_start(self.est)

    def on_epoch_end(self, run, record):
        self._publish(run)
        stop = False
        for cb in self.callbacks:
            if hasattr(cb, "on_epoch_end"):
                answer = cb.on_epoch_end(self.est, record)
                stop = stop or (answer is not None and bool(answer))
        return stop


class _NeuralModel(LatentModel):
    """Base of the neural latent-variable models (private: ``load`` never rebuilds it)."""

    # fitted attributes every neural model's file may hold (see latentspace._schema)
    _fitted_schema: dict[str, tuple[Any, ...]] = {
        "history_": ("records", None), "n_iter_": ("int", None),
        "n_skipped_steps_": ("int", None), "stop_reason_": ("str", None),
        "converged_": ("bool", None),
    }
    _network_kinds: tuple[str, ...] = ("mlp", "conv")
    _schedules: tuple[str, ...] = ("plateau", "constant", "cosine")
    _init = "glorot"  # weight initialisation (see _nets.materialize)

    def _device(self) -> torch.device:
        # "mps" too: the networks compute in float32 (see latentspace._backend)
        from .._backend import resolve_device

        return resolve_device(getattr(self, "device", "cpu"), allow_mps=True)

    # --- hooks ------------------------------------------------------------------------
    def _check_params(self) -> None:  # pragma: no cover - overridden
        pass

    def _build_network(self, n_features: int) -> torch.nn.Module:  # pragma: no cover
        raise NotImplementedError

    def _make_optimizers(self, network) -> dict:
        return {"main": make_optimizer(network.parameters(), self.optimizer,
                                       self.learning_rate, self.momentum, self.weight_decay,
                                       self.optimizer_kwargs)}

    def _train_step(self, network):  # pragma: no cover - overridden
        raise NotImplementedError

    def _val_step(self, network):
        return None

    def _on_epoch_end(self, network, X_train, generator):
        return None

    def _after_fit(self, network, X_train, generator) -> None:
        pass

    def _init_from_data(self, network, data) -> None:
        """Data-dependent initialisation of a freshly built network: the standardisation of
        encoder/decoder pairs, from the training rows (or, streamed, from the first batch)."""
        if not hasattr(network, "standardize_from"):
            return
        if not isinstance(data, torch.Tensor):
            data = self._prepare_batch(next(iter(data)))
        network.standardize_from(data)

    @staticmethod
    @torch.no_grad()
    def _init_logit_bias(network) -> None:
        """Start a Bernoulli decoder at the data's mean: output biases logit(m), clipped."""
        layer = network.output_layer()
        if layer is not None:
            layer.bias.copy_(torch.logit(network.shift.clamp(1e-3, 1 - 1e-3)))

    # --- parameter checks -------------------------------------------------------------
    def _check_common_params(self) -> None:
        if isinstance(self.max_epochs, str):
            if self.max_epochs != "auto":
                raise ParameterError(
                    f"max_epochs must be 'auto' or a positive integer, got "
                    f"{_shown(self.max_epochs)}."
                )
        else:
            check_int("max_epochs", self.max_epochs, low=1)
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                raise ValueError(
                    f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}."
                )
        else:
            check_int("batch_size", self.batch_size, low=1)
        self._check_optimizer()
        self._check_callbacks()
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ParameterError(
                f"warm_start must be True or False, got {_shown(self.warm_start)}."
            )
        self._user_modules()
        check_float("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_choice("learning_rate_schedule", self.learning_rate_schedule, self._schedules)
        check_float("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_float("weight_decay", self.weight_decay, low=0.0)
        if self.grad_clip is not None:
            check_float("grad_clip", self.grad_clip, low=0.0, low_open=True)
        if hasattr(self, "early_stopping"):  # the GAN has no loss to stop on
            if not isinstance(self.early_stopping, (bool, np.bool_)):
                raise ValueError(
                    f"early_stopping must be True or False, got {self.early_stopping!r}."
                )
            check_float("validation_fraction", self.validation_fraction, low=0.0, high=1.0,
                        low_open=True, high_open=True)
            if isinstance(self.n_iter_no_change, str):
                if self.n_iter_no_change != "auto":
                    raise ParameterError(
                        "n_iter_no_change must be 'auto' or a positive integer, got "
                        f"{_shown(self.n_iter_no_change)}."
                    )
            else:
                check_int("n_iter_no_change", self.n_iter_no_change, low=1)
            check_float("tol", self.tol, low=0.0)
        check_checkpoint_path(self.checkpoint_path)
        check_int("checkpoint_every", self.checkpoint_every, low=1)
        check_int("verbose", self.verbose, low=0)
        check_seed("random_state", self.random_state)
        self._device()  # raises ValueError for a bad or unavailable device

    def _check_optimizer(self) -> None:
        opt = self.optimizer
        if isinstance(opt, str):
            check_choice("optimizer", opt, OPTIMIZERS)
        elif isinstance(opt, type):
            if not issubclass(opt, torch.optim.Optimizer):
                raise ParameterError(
                    f"optimizer={opt.__qualname__} is a class but not a torch.optim.Optimizer "
                    f"subclass; pass one of {OPTIMIZERS}, an Optimizer subclass such as "
                    "torch.optim.AdamW, or a callable(params) returning an optimizer."
                )
        elif not callable(opt):
            raise ParameterError(
                f"optimizer={_shown(opt)} is not supported; pass one of {OPTIMIZERS}, an "
                "optimizer class (an Optimizer subclass such as AdamW) or a callable(params) "
                "returning an optimizer."
            )
        kw = self.optimizer_kwargs
        if kw is not None and not (isinstance(kw, dict) and all(isinstance(k, str) for k in kw)):
            raise ParameterError(
                f"optimizer_kwargs must be None or a dict of keyword arguments, got {_shown(kw)}."
            )

    def _check_callbacks(self) -> None:
        cbs = self.callbacks
        if cbs is None:
            return
        if not isinstance(cbs, (list, tuple)):
            raise ParameterError(
                f"callbacks must be None or a list of callback objects, got {_shown(cbs)} "
                f"({type(cbs).__name__})."
            )
        for i, cb in enumerate(cbs):
            hooks = [h for h in _HOOKS if hasattr(cb, h)]
            if not hooks or not all(callable(getattr(cb, h)) for h in hooks):
                raise ParameterError(
                    f"callbacks[{i}] ({type(cb).__name__}) must define at least one of the "
                    f"methods {', '.join(_HOOKS)}; on_epoch_end(estimator, record) returning "
                    "True stops training after that epoch."
                )

    # user networks: the names of the parameters that take them, in the subclass
    _module_params: tuple[str, ...] = ()

    def _user_modules(self) -> dict:
        """The networks the user passed -> {name: nn.Module} (all or none of them)."""
        given = {n: getattr(self, n, None) for n in self._module_params}
        for name, m in given.items():
            if m is not None and not isinstance(m, torch.nn.Module):
                raise ParameterError(
                    f"{name} must be None (the built-in network) or a torch.nn.Module, got "
                    f"{_shown(m)} ({type(m).__name__})."
                )
        present = [n for n, m in given.items() if m is not None]
        if present and len(present) != len(given):
            missing = [n for n in given if n not in present]
            raise ParameterError(
                f"{type(self).__name__} was given {' and '.join(present)} but not "
                f"{' and '.join(missing)}; pass all of {', '.join(given)} as torch.nn.Module "
                "objects, or none of them for the built-in networks."
            )
        return {n: given[n] for n in present}

    def _persisted_param(self, name: str, value):
        """How a model file stores a hyperparameter that JSON cannot hold (see
        :func:`latentspace.io.save`), or ``NotImplemented`` for the ordinary ones: a user's
        network or custom optimizer by its class name (``load`` asks for it again), a
        ``torch.optim`` class by its name, callbacks not at all (None)."""
        if name == "callbacks":
            return None
        if name in self._module_params and isinstance(value, torch.nn.Module):
            return {"__module__": type(value).__qualname__}
        if name == "optimizer" and not isinstance(value, str):
            if isinstance(value, type):
                cls_name = value.__name__
                if getattr(torch.optim, cls_name, None) is value:
                    return {"__optimizer__": cls_name}
            return {"__module__": getattr(value, "__qualname__", type(value).__qualname__)}
        return NotImplemented

    def _user_copy(self, name: str) -> torch.nn.Module:
        """A copy of the user's module ``name``: a fit never changes the object passed in."""
        return copy.deepcopy(getattr(self, name))

    def _check_modules(self, network, x: torch.Tensor) -> None:  # pragma: no cover
        """Raise ``ValueError`` naming the module and the expected shape when a user network
        does not fit the model, from the first batch ``x`` (a hook)."""

    def _probe(self, name: str, fn, arg, expected: str):
        """``fn(arg)`` for the shape check, any exception inside the user's module turned into
        a ``ValueError`` naming it and the expected shapes."""
        try:
            return fn(arg)
        except Exception as exc:  # the user's code: any error there is a mismatch
            # torch's own words stay in the chained exception; ours say what fits
            raise ValueError(
                f"the {name} module raised {type(exc).__name__} on a first batch of shape "
                f"{tuple(arg.shape)}; {type(self).__name__} expects it to map {expected} "
                "(the error it raised is chained below)."
            ) from exc

    def _expect_shape(self, name: str, out, shape: tuple, given: tuple) -> None:
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"the {name} module returned {got} for a batch of shape {given}, but "
                f"{type(self).__name__} expects shape {shape} (with latent_dim="
                f"{self.latent_dim} and {self.n_features_in_} features)."
            )
        if not out.is_floating_point():
            raise ValueError(f"the {name} module returned a {out.dtype} tensor; "
                             f"{type(self).__name__} expects float32 values.")

    def _first_rows(self, data) -> torch.Tensor:
        if isinstance(data, torch.Tensor):
            return data[: min(self._batch_size(data), data.shape[0])]
        return self._prepare_batch(next(iter(data)))

    def _check_sizes(self, name: str, sizes) -> tuple[int, ...]:
        ok = isinstance(sizes, (tuple, list))
        for i, s in enumerate(sizes if ok else ()):
            try:
                check_int(f"{name}[{i}]", s, low=1, high=MAX_WIDTH)
            except ValueError as exc:
                raise ValueError(f"{name} must be a tuple of positive integers: {exc}") from None
        if not ok:
            raise ValueError(f"{name} must be a tuple of positive integers, got {sizes!r}.")
        return tuple(int(s) for s in sizes)

    def _check_activation(self, name: str, value, *, allow_none=True) -> None:
        if value is None and allow_none:
            return
        check_choice(name, value, _nets.ACTIVATIONS)

    def _check_network(self, n_features: int) -> None:
        check_choice("network", self.network, self._network_kinds)
        if self._user_modules():
            return  # the user's networks replace the built-in ones
        if self.network == "conv" and n_features != _nets.IMAGE_SIDE**2:
            raise ValueError(
                f"network='conv' expects 28×28 images flattened to 784 features, but X has "
                f"{n_features} features; use network='mlp' for other shapes."
            )

    # --- data -------------------------------------------------------------------------
    def _prepare_batch(self, batch) -> torch.Tensor:
        """A batch from a DataLoader -> float32 (n, n_features) tensor on the model's device."""
        if isinstance(batch, (list, tuple)):
            batch = batch[0]  # (inputs, labels) pairs: the labels are not used
        x = torch.as_tensor(batch).to(self._device(), torch.float32)
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"a batch has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        if isinstance(batch, torch.Tensor) and batch.dtype == torch.float64:
            _nets.check_float32_range(batch, type(self).__name__, "a batch")
        return x

    def _fit_data(self, X):
        """-> (training data, validation data or None); data is a tensor or a DataLoader."""
        from torch.utils.data import DataLoader

        if isinstance(X, DataLoader):
            self._fit_output = None
            first = X.dataset[0]
            first = first[0] if isinstance(first, (list, tuple)) else first
            n_features = int(torch.as_tensor(first).numel())
            if n_features < 1:
                raise ValueError("the DataLoader yields samples with 0 feature(s).")
            self.n_features_in_ = n_features
            # streamed data is not validated up front; non-finite batches are skipped and
            # counted by the trainer's guard (history_[i]["n_skipped"])
            return X, None
        Xt, kind = self._check_X(X, reset=True)
        _nets.check_float32_range(Xt, type(self).__name__)
        self._fit_output = (kind, Xt.dtype)  # what sample() hands back
        Xt = Xt.to(torch.float32)
        return Xt, None

    @staticmethod
    def _check_unit_interval(data, option: str, alternative: str) -> None:
        """Raise unless every entry of a training tensor lies in [0, 1] (Bernoulli targets)."""
        if not isinstance(data, torch.Tensor):
            return  # streamed batches are not scanned up front
        lo, hi = (float(v) for v in torch.aminmax(data))
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{option} needs X in [0, 1], but X ranges over [{lo:.4g}, {hi:.4g}]; rescale X "
                f"(e.g. MinMaxScaler) or use {alternative}."
            )

    def _split(self, Xt: torch.Tensor, generator: torch.Generator):
        n = Xt.shape[0]
        n_val = int(np.ceil(self.validation_fraction * n))
        if n - n_val < 1 or n_val < 1:
            raise ValueError(
                f"early_stopping needs a validation split, but validation_fraction="
                f"{self.validation_fraction} of {n} sample(s) leaves an empty training or "
                "validation set; pass more samples or set early_stopping=False."
            )
        order = torch.randperm(n, generator=generator, device=generator.device).to(Xt.device)
        return Xt[order[n_val:]], Xt[order[:n_val]]

    # --- fit --------------------------------------------------------------------------
    def _meta(self) -> str:
        params = {k: _json_param(v) for k, v in sorted(self.get_params(deep=False).items())
                  if k not in _RESUME_FREE}
        return json.dumps({"class": type(self).__name__, "params": params,
                           "n_features_in": int(self.n_features_in_)}, sort_keys=True)

    def _batch_size(self, data) -> int:
        """Rows per step; ``"auto"``: about 32 steps an epoch on small data sets, 32 to 128
        rows each -- with a fixed 128, 400 rows make 4 steps an epoch and a plateau of 20
        epochs only 80 steps, too few for the rate halvings to reach the optimum."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        n = data.shape[0] if isinstance(data, torch.Tensor) else _AUTO_BATCH[1]
        return int(min(_AUTO_BATCH[1], max(_AUTO_BATCH[0], n // 32)))

    def _batch_rows(self, data) -> int:
        """Rows of the largest training batch (a DataLoader's are not known up front: 0)."""
        if not isinstance(data, torch.Tensor):
            return 0
        return min(self._batch_size(data), int(data.shape[0]))

    def _tol_floor(self) -> float:
        """Smallest scale of the relative ``tol`` (see :class:`._trainer.Stopping`)."""
        return 0.0

    def _steps_per_epoch(self, data) -> int | None:
        """Optimiser steps of one epoch over ``data`` (None: an iterable without a length)."""
        if isinstance(data, torch.Tensor):
            return -(-int(data.shape[0]) // self._batch_size(data))
        try:
            return len(data)
        except TypeError:
            return None

    def _patience(self, data) -> int:
        """Epochs without improvement that make a plateau: ``n_iter_no_change``, or for
        ``"auto"`` the epochs of :data:`AUTO_PATIENCE_STEPS` steps, within
        :data:`AUTO_PATIENCE_EPOCHS` (the most of them when the steps are not known)."""
        if self.n_iter_no_change != "auto":
            return int(self.n_iter_no_change)
        lo, hi = AUTO_PATIENCE_EPOCHS
        steps = self._steps_per_epoch(data)
        if not steps:
            return hi
        return int(min(hi, max(lo, -(-AUTO_PATIENCE_STEPS // steps))))

    def _stopping(self, data) -> Stopping | None:
        """The plateau rule of this fit: learning-rate reductions, then the end of training."""
        if not hasattr(self, "tol"):  # the GAN: no objective to converge, max_epochs only
            return None
        schedule = self.learning_rate_schedule
        self._plateau_epochs = self._patience(data)
        return Stopping(
            tol=float(self.tol),
            patience=self._plateau_epochs,
            lr_drops=_PLATEAU_DROPS if schedule == "plateau" else 0,
            factor=_PLATEAU_FACTOR,
            floor=self._tol_floor(),
            # a cosine schedule is a budget: it runs to max_epochs unless validation stops it
            stop=schedule != "cosine" or bool(self.early_stopping),
            restore_best=bool(self.early_stopping),
        )

    _auto_epochs = True  # max_epochs="auto" is resolved by _n_epochs

    def _n_epochs(self, data) -> int:
        """Epochs of this fit: ``max_epochs``, or for ``"auto"`` those of :data:`AUTO_STEPS`
        optimiser steps within :data:`AUTO_EPOCHS` (the most when the steps are not known)."""
        if self.max_epochs != "auto":
            return int(self.max_epochs)
        lo, hi = AUTO_EPOCHS
        steps = self._steps_per_epoch(data)
        if not steps:
            return hi
        return int(min(hi, max(lo, -(-AUTO_STEPS // steps))))

    def _lr_schedule(self, total: int):
        if self.learning_rate_schedule == "cosine":
            # half a cosine from the full rate down to 0 at the last epoch
            return lambda epoch: 0.5 * (1.0 + np.cos(np.pi * epoch / total))
        return None

    def _new_generator(self, random_state) -> torch.Generator:
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        gen = torch.Generator(device=self._device())
        gen.manual_seed(seed)
        return gen

    def _fit(self, X, resume=None):
        # the subclasses' fit is transactional (LatentModel): a failed fit (bad data,
        # divergence) leaves an earlier fit usable as it was
        return self._fit_new(X, resume)

    def _warm_network(self):
        """The network a ``warm_start`` fit continues from (a copy: a failed fit leaves the
        earlier one as it was), or None."""
        if not self.warm_start or not hasattr(self, "network_"):
            return None
        return copy.deepcopy(self.network_).to(self._device())

    def _fit_new(self, X, resume):
        self._check_common_params()
        self._check_params()
        n_before = getattr(self, "n_features_in_", None)
        warm = self._warm_network() if resume is None else None
        data, val = self._fit_data(X)
        if warm is not None and self.n_features_in_ != n_before:
            raise ValueError(
                f"warm_start=True continues the fitted network, which takes {n_before} "
                f"features, but X has {self.n_features_in_}; pass data of the same width or "
                "set warm_start=False to fit a new network."
            )
        self._check_network(self.n_features_in_)
        user = self._user_modules()
        generator = self._new_generator(self.random_state)
        owner = f"{type(self).__name__}({_nets.size_params(self)})"
        if warm is not None:
            network = warm
            self._on_warm_start()
        elif user:  # the user's modules as they are: no initialisation, no standardisation
            network = self._build_network(self.n_features_in_).to(self._device())
        else:
            # parameters, gradients and Adam's two moments: 4 float32 copies
            network = _nets.build(lambda: self._build_network(self.n_features_in_),
                                  self._device(), generator, self._init, copies=4,
                                  rows=self._batch_rows(data), owner=owner)
        if user and warm is None:
            network.eval()
            with torch.no_grad():
                self._check_modules(network, self._first_rows(data))
        if resume is None and warm is None and not user:
            self._init_from_data(network, data)
        early_stopping = bool(getattr(self, "early_stopping", False))
        if early_stopping and isinstance(data, torch.Tensor):
            data, val = self._split(data, generator)
        optimizers = self._make_optimizers(network)
        if warm is not None:
            self._restore_optimizers(optimizers)
        X_monitor = data if isinstance(data, torch.Tensor) else None
        hook = self._on_epoch_end(network, X_monitor, generator)
        n_epochs = self._n_epochs(data)
        callbacks = [_UserCallbacks(self, self.callbacks)] if self.callbacks else []
        result = train(
            network,
            data,
            self._train_step(network),
            optimizers,
            n_epochs=n_epochs,
            generator=generator,
            batch_size=self._batch_size(data),
            grad_clip=self.grad_clip,
            val_data=val,
            val_fn=self._val_step(network),
            stopping=self._stopping(data),
            checkpoint_path=self.checkpoint_path,
            checkpoint_every=self.checkpoint_every,
            resume=resume,
            meta=self._meta(),
            on_epoch_end=hook,
            lr_schedule=self._lr_schedule(n_epochs),
            prepare=self._prepare_batch,
            progress=self.verbose > 0,
            desc=type(self).__name__,
            callbacks=callbacks,
        )
        # what a later warm start continues from (the moments, not the rates)
        self._optimizer_state = {name: opt.state_dict() for name, opt in optimizers.items()}
        network.eval()
        self.network_ = network
        self.history_ = result.history
        self.n_iter_ = len(result.history)
        self.n_skipped_steps_ = int(result.n_skipped)
        self.stop_reason_ = result.stop_reason
        self.converged_ = result.stop_reason in ("converged", "validation")
        if result.stop_reason == "unstable":
            warnings.warn(
                f"{type(self).__name__}'s loss blew up at the smallest learning rate its schedule "
                f"allows; training stopped at the weights of its best epoch ({result.best_epoch})."
                " Lower learning_rate, or set grad_clip.",
                ConvergenceWarning,
                stacklevel=4,
            )
        elif hasattr(self, "tol") and result.still_improving:
            self._warn_unconverged(result, validated=val is not None)
        if self.n_skipped_steps_:
            # never hide a failed part of a fit: the skipped steps changed nothing
            warnings.warn(
                f"{type(self).__name__} skipped {self.n_skipped_steps_} optimisation step(s) "
                "whose loss or gradients were not finite (each changed nothing; the count per "
                "epoch is history_[i]['n_skipped']). Rescale X (e.g. StandardScaler), check it "
                "for NaN or infinity, lower learning_rate or set grad_clip.",
                ConvergenceWarning,
                stacklevel=4,
            )
        with torch.no_grad():
            self._after_fit(network, X_monitor, generator)
        for cb in self.callbacks or ():
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(self)
        return self

    def _on_warm_start(self) -> None:
        """Set what the network's construction decided in the earlier fit (a hook)."""

    def _restore_optimizers(self, optimizers: dict) -> None:
        """Continue the earlier fit's optimizer state (moments, step counts) when it came from
        the same kind of optimizer over the same parameters; the rates are this fit's."""
        saved = getattr(self, "_optimizer_state", None) or {}
        for name, opt in optimizers.items():
            state = saved.get(name)
            if state is None:
                continue
            current = opt.state_dict()
            if len(state["param_groups"]) != len(current["param_groups"]) or any(
                len(a["params"]) != len(b["params"]) or set(a) - {"initial_lr"} != set(b)
                for a, b in zip(state["param_groups"], current["param_groups"])
            ):
                continue  # another optimizer, or other parameters: start its state afresh
            try:
                opt.load_state_dict({"state": copy.deepcopy(state["state"]),
                                     "param_groups": current["param_groups"]})
            except (ValueError, KeyError, RuntimeError):
                opt.load_state_dict(current)

    def _warn_unconverged(self, result, validated: bool) -> None:
        monitor, key = ("validation loss", "val_loss") if validated else ("training loss", "loss")
        values = [r.get(key) for r in result.history if r.get(key) is not None]
        patience = int(getattr(self, "_plateau_epochs", 0) or self._patience(None))
        window = values[-(patience + 1):]
        gain = ""
        if len(window) >= 2 and window[0] != 0:
            gain = (f" (by {100 * (window[0] - min(window)) / abs(window[0]):.2g}% over its last "
                    f"{len(window) - 1} epochs)")
        warnings.warn(
            f"{type(self).__name__} stopped at max_epochs={self.max_epochs!r}"
            f"{f' ({len(result.history)} epochs)' if self.max_epochs == 'auto' else ''} "
            f"while its {monitor} "
            f"was still improving{gain}; raise max_epochs to let it converge (it stops by itself "
            f"once the loss improves by less than tol={self.tol} for {patience} epochs, "
            f"n_iter_no_change={self.n_iter_no_change!r}).",
            ConvergenceWarning,
            stacklevel=5,
        )

    # --- inference helpers ------------------------------------------------------------
    def _infer(self, fn, Xt: torch.Tensor) -> torch.Tensor:
        """Apply ``fn`` (float32 tensor -> tensor) to ``Xt`` in row blocks, without gradients,
        and return the result in ``Xt``'s dtype."""
        check_is_fitted(self, "network_")
        self.network_.eval()
        outs = []
        with torch.no_grad():
            for i in range(0, Xt.shape[0], _INFER_ROWS):
                outs.append(fn(Xt[i : i + _INFER_ROWS].to(torch.float32)))
        out = _nets.check_finite_output(torch.cat(outs), type(self).__name__, "result")
        return out.to(Xt.dtype)

    def _input(self, X):
        check_is_fitted(self, "network_")
        Xt, kind = self._check_X(X, reset=False)
        _nets.check_float32_range(Xt, type(self).__name__)
        return Xt, kind

    def _latent_input(self, Z):
        """Validate latent codes for ``inverse_transform`` -> (tensor, caller's InputKind)."""
        check_is_fitted(self, "network_")
        Zt, kind = check_array_like(Z, device=self._device(), n_features=None, name="Z",
                                    owner=type(self).__name__)
        if Zt.shape[1] != self.latent_dim:
            raise ValueError(
                f"Z has {Zt.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.latent_dim} latent dimensions (latent_dim) as input."
            )
        _nets.check_float32_range(Zt, type(self).__name__, "Z")
        return Zt.to(self._device()), kind

    def _check_n_samples(self, n_samples) -> int:
        """``n_samples`` of ``sample()``, its output and activations estimated first.

        Per row: the code, every layer's float32 output (a convolution's channels over the
        whole image) and the output row.
        """
        widths = self.latent_dim + 2 * int(self.n_features_in_)
        for p in self.network_.parameters():
            if p.dim() == 2:
                widths += p.shape[0]
            elif p.dim() == 4:
                widths += p.shape[0] * _nets.IMAGE_SIDE**2
        return check_n_samples_to_draw(n_samples, 4 * widths, type(self).__name__,
                                       device=self._device())

    def _sample_out(self, t: torch.Tensor):
        """Generated rows in the fit's container, device and dtype (numpy float32 when the
        fit's input is not known: a DataLoader, or a model loaded from a file)."""
        fit = getattr(self, "_fit_output", None)
        if fit is None:
            return t.cpu().numpy()
        kind, dtype = fit
        return self._out(t.to(dtype), kind)

    def _rng_for_call(self, random_state) -> torch.Generator:
        """A generator for a stochastic method (sampling, Monte-Carlo scores): seeded from the
        call's ``random_state``, else from the estimator's, so repeated calls agree."""
        return self._new_generator(self.random_state if random_state is None else random_state)

    # --- persistence ------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        if not hasattr(self, "network_"):
            return {}
        return {f"network.{k}": v for k, v in self.network_.state_dict().items()}

    def _before_restore(self) -> None:
        """Set what ``_build_network`` reads from the fitted attributes (a hook)."""

    def _state_spec(self) -> dict[str, tuple[torch.dtype, tuple[int, ...], bool]]:
        """name -> (dtype, shape, required) of what :meth:`_state_tensors` writes for this
        model's hyperparameters, from a network built on the meta device (no memory).
        Buffers are optional: files written before the standardisation existed hold none."""
        self._before_restore()
        with torch.device("meta"):
            network = self._build_network(int(self.n_features_in_))
        buffers = {name for name, _ in network.named_buffers()}
        return {f"network.{k}": (v.dtype, tuple(v.shape), k not in buffers)
                for k, v in network.state_dict().items()}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Rebuild the network and load ``tensors`` (already checked against
        :meth:`_state_spec` by :func:`latentspace.io.load`)."""
        state = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
        if not state:
            return
        self._before_restore()
        gen = torch.Generator(device=self._device())
        network = _nets.build(lambda: self._build_network(int(self.n_features_in_)),
                              self._device(), gen)
        # files written before the standardisation existed hold none: the identity
        for name, buf in network.named_buffers():
            state.setdefault(name, buf)
        network.load_state_dict(state)
        network.eval()
        self.network_ = network

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


_NAME_MAX = 255  # NAME_MAX of Linux, macOS and Windows file systems, in bytes


def check_checkpoint_path(path) -> None:
    """Refuse, before any training, a ``checkpoint_path`` that no checkpoint could be
    written to: not a path, empty, a folder, a name longer than the file system allows, or
    inside something that is not a folder. A missing folder is fine (it is created)."""
    if path is None:
        return
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(
            f"checkpoint_path must be None or a file path, got {_shown(path)} "
            f"({type(path).__name__})."
        )
    text = os.fsdecode(os.fspath(path))
    fix = "give a file path such as 'run.ckpt', or None for no checkpoints"
    if not text.strip():
        raise ParameterError(f"checkpoint_path={text!r} is empty; {fix}.")
    p = Path(text).expanduser()
    for part in p.parts:
        if len(os.fsencode(part)) > _NAME_MAX:
            raise ParameterError(
                f"checkpoint_path={_shown(text)} has a name of {len(os.fsencode(part))} bytes, "
                f"longer than the {_NAME_MAX} file systems allow; {fix}."
            )
    try:
        if p.is_dir():
            raise ParameterError(
                f"checkpoint_path={_shown(text)} is a folder; {fix} (a file name inside it)."
            )
        existing = p.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        isdir = existing.is_dir()
    except OSError as exc:  # a path the system refuses to look up (too long, a loop)
        raise ParameterError(
            f"checkpoint_path={_shown(text)} cannot be used ({exc.strerror or exc}); {fix}."
        ) from None
    if not isdir:
        raise ParameterError(
            f"checkpoint_path={_shown(text)} is inside {str(existing)!r}, which is a file, "
            f"not a folder; {fix}."
        )
