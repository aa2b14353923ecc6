"""Autoencoders: linear (= PCA's subspace), deep, denoising and sparse.

An encoder f maps x to a code h = f(x) of ``latent_dim`` units, a decoder g maps it back, and
training minimises the reconstruction error ‖x - g(f(x))‖² (or the Bernoulli cross-entropy
for data in [0, 1]), summed over features and averaged over the batch. Variants:

- linear: ``hidden_sizes=()`` and a linear code; the optimum spans PCA's top-``latent_dim``
  principal subspace (Baldi & Hornik, 1989);
- denoising: ``noise=("gaussian", std)`` or ``("mask", p)`` corrupts the input, the target
  stays clean (Vincent et al., 2008);
- sparse: a sigmoid code and the penalty β Σ_j KL(ρ ‖ ρ̂_j), with ρ̂_j the mean activation of
  code unit j over the batch (Ng's lecture notes on sparse autoencoders).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from torch.utils.data import DataLoader

from .._backend import ArrayLike, ArrayOrTensor
from .._validation import check_choice, check_float
from . import _nets
from ._base import MAX_WIDTH, _NeuralModel

if TYPE_CHECKING:  # Python 3.10 has no typing.Self
    from typing_extensions import Self

__all__ = ["Autoencoder", "sparsity_kl"]

_EPS = 1e-6


def sparsity_kl(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j) between Bernoulli(ρ) and Bernoulli(ρ̂_j).

    Parameters
    ----------
    rho : float in (0, 1)
        Target mean activation.
    rho_hat : tensor of shape (n_units,)
        Mean activation of each code unit over a batch.

    Returns
    -------
    tensor of shape ()
    """
    rho_hat = rho_hat.clamp(_EPS, 1 - _EPS)
    return (rho * torch.log(rho / rho_hat)
            + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


class Autoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _NeuralModel):
    """Autoencoder with linear, deep, denoising and sparse variants, trained by one trainer.

    Parameters
    ----------
    latent_dim : int, default=2
        Number of code units L.
    hidden_sizes : tuple of int, default=()
        Widths of the encoder's hidden layers; the decoder mirrors them. ``()`` gives one
        linear map each way (with ``code_activation=None``: the linear autoencoder).
    activation : str, default="relu"
        Non-linearity after each hidden layer: one of ``"relu"``, ``"tanh"``, ``"sigmoid"``,
        ``"elu"``, ``"leaky_relu"``, ``"softplus"``, ``"identity"``.
    code_activation : str, None or "auto", default="auto"
        Non-linearity on the code layer. ``"auto"``: ``"sigmoid"`` when ``sparsity_target``
        is set (activations must lie in (0, 1) for the KL penalty), else none.
    loss : {"mse", "bce"}, default="mse"
        Squared error, or Bernoulli cross-entropy from logits (data in [0, 1]); summed over
        features, averaged over the batch.
    noise : None, ("gaussian", std) or ("mask", p), default=None
        Corruption of the input during training (denoising autoencoder): additive
        N(0, std²) noise, or each feature set to 0 with probability p.
    sparsity_target : float in (0, 1) or None, default=None
        ρ of the sparsity penalty; None disables it.
    sparsity_weight : float, default=1.0
        β, the weight of the sparsity penalty.
    network : {"mlp", "conv"}, default="mlp"
        ``"conv"``: a small convolutional encoder/decoder for 28×28 images (784 features).
    encoder, decoder : torch.nn.Module or None, default=None
        Your own networks in place of the built-in ones (give both): ``encoder`` maps float32
        rows of shape (n, n_features) -- images flattened; unflatten them inside, e.g. with
        ``nn.Unflatten(1, (1, 28, 28))`` -- to codes (n, latent_dim), ``decoder`` maps codes
        back to (n, n_features) (logits for ``loss="bce"``). They are used as given: a fit
        trains a copy (the objects passed in are never changed), with no initialisation or
        standardisation of its own, and ``hidden_sizes``, ``activation``,
        ``code_activation`` and ``network`` do not apply. The shapes are checked on the first
        batch. A saved model stores their weights, not their code: load it with
        ``latentspace.load(path, modules={"encoder": ..., "decoder": ...})``.
    max_epochs : int or "auto", default="auto"
        Upper bound on the epochs (passes over the data). Training normally stops earlier, once
        it has converged (see ``learning_rate_schedule``); a fit that reaches ``max_epochs``
        while its loss still improves warns with a
        :class:`~latentspace.exceptions.ConvergenceWarning`. ``"auto"``: 1000 epochs, or the
        epochs of 16 000 optimiser steps when those are fewer, at least 20 -- 1000 up to
        512 rows (with ``batch_size="auto"``), 500 or more up to 4 096, 400 on 5 000, 102 on
        20 000: the bound follows the work done, so that a default fit on a large data set
        ends in minutes (and says so when it ends unconverged).
    batch_size : int or "auto", default="auto"
        Rows per step; ``"auto"``: ``min(128, max(32, n_samples // 32))``, about 32 steps an
        epoch on small data sets (a DataLoader brings its own batches).
    optimizer, learning_rate, momentum, weight_decay, grad_clip
        Training: ``"adam"``, ``"adamw"`` (decoupled weight decay: ``weight_decay``, or
        torch's default 0.01 when it is 0) or ``"sgd"``, the initial step size (default
        1e-3), SGD momentum (Adam's β₁, default 0.9; any value in [0, 1), 0 included: plain
        SGD, or Adam without a first-moment average), L2 penalty, and clipping of the global
        gradient norm (None: off). ``optimizer`` may also be a ``torch.optim.Optimizer``
        subclass, built as ``cls(params, lr=learning_rate, **optimizer_kwargs)`` (plus
        ``weight_decay`` when not 0; ``momentum`` is not passed), or a callable
        ``fn(params, **optimizer_kwargs)`` returning an optimizer, whose own rate is then the
        one the schedule scales.
    optimizer_kwargs : dict or None, default=None
        Further keyword arguments of the optimizer (e.g. ``{"betas": (0.9, 0.99)}``).
    learning_rate_schedule : {"plateau", "constant", "cosine"}, default="plateau"
        ``"plateau"``: each time the loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs, the rate is halved; after six halvings (1/64 of ``learning_rate``) the next
        such plateau ends training as converged -- the large rate makes the progress, the
        small ones reach the optimum rather than a noise floor around it. ``"constant"``:
        the first plateau ends training (scikit-learn's MLP). ``"cosine"``: anneals the rate
        from ``learning_rate`` to 0 over ``max_epochs`` and runs them all (a fixed budget),
        unless validation early stopping ends it.
    tol : float, default=1e-4
        Relative improvement that counts: an epoch improves when its loss is below
        ``best * (1 - tol)`` (for a positive loss), ``best`` being the lowest loss of the
        current learning-rate stage.
    n_iter_no_change : int or "auto", default="auto"
        Epochs without improvement that make a plateau. ``"auto"`` counts the patience in
        optimiser steps: the epochs of 640 steps, at least 3 and at most 20 -- 20 epochs up
        to 4 096 rows (with ``batch_size="auto"``), 5 on 20 000 rows, 3 from about 27 000. An
        epoch over many rows is many steps of progress and its mean loss is measured over
        many batches, so a few epochs judge a plateau as surely as 20 short ones; with 20
        epochs at every size, the six halvings of the plateau schedule (at least 140 epochs)
        made a default fit on 20 000 MNIST images run for minutes.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (default 0.1) and judge plateaus on the
        validation loss instead of the training loss; training ends with the weights of the
        best validation epoch.
    checkpoint_path, checkpoint_every
        Write a training checkpoint atomically every ``checkpoint_every`` epochs and at the
        end (a safetensors file with a JSON manifest, any file name; never a pickle);
        ``fit(X, resume=path)`` continues from one exactly where it was written.
    callbacks : list or None, default=None
        Objects with any of ``on_fit_start(estimator)``, ``on_epoch_end(estimator, record)``
        and ``on_fit_end(estimator)``. ``record`` is the epoch's ``history_`` entry
        (``record["epoch"]`` counts from 1); an ``on_epoch_end`` returning True stops
        training after that epoch (``stop_reason_ == "callback"``). During the fit
        ``network_`` is the network being trained.
    warm_start : bool, default=False
        ``fit`` continues from the current network (and, after a fit in this process, its
        optimizer's state) instead of building a new one, for ``max_epochs`` more epochs --
        also after ``latentspace.load``. ``history_`` then holds this fit's epochs.
    device : {"cpu", "cuda", "cuda:N", "mps", "auto"}, default="cpu"
        ``"mps"`` (Apple's GPUs) is passed to torch where it has that backend and refused
        with a message elsewhere; ``"auto"`` picks CUDA when available, else the CPU.
    random_state : int, RandomState or None
        Seeds the one ``torch.Generator`` of a fit (initial weights, batch order, noise).
    verbose : int, default=0
        >0 shows a ``tqdm.auto`` progress bar on stderr that advances with every step of an
        epoch (a widget in a Jupyter notebook); 0 writes nothing.

    Attributes
    ----------
    n_features_in_ : int
    network_ : torch.nn.Module
        The trained encoder/decoder (``network_.encoder``, ``network_.decoder``).
    history_ : list of dict
        One dict per epoch: ``loss``, ``reconstruction``, ``sparsity_kl`` (sparse only),
        ``val_loss`` (early stopping), ``learning_rate``, ``n_skipped``, ``seconds``.
    n_iter_ : int
        Epochs run.
    converged_ : bool
        Whether training ended by its convergence rule rather than at ``max_epochs``.
    stop_reason_ : {"converged", "validation", "unstable", "max_epochs"}
        What ended training: a plateau of the training loss at the last learning-rate stage,
        the same for the validation loss (``early_stopping=True``), a blow-up of the loss
        with no rate reduction left (the best epoch's weights are kept, and a warning says
        so), or ``max_epochs``. A blow-up before then -- the loss rising above its best by
        more than its own magnitude -- restores the best epoch and halves the rate; the
        epoch's ``history_`` entry then holds ``restored_epoch``.
    n_skipped_steps_ : int
        Steps skipped because their loss or gradient was non-finite. Ten in a row, or every
        step of a fit however few, raise
        :class:`~latentspace.exceptions.TrainingDivergedError` naming epoch and step.
    mean_activation_ : ndarray of shape (latent_dim,)
        Sparse autoencoders only (``sparsity_target`` set, array data): the mean of each code
        unit over the training data, ρ̂_j.

    Notes
    -----
    The networks compute in float32. ``fit`` and every query refuse data that float32 cannot
    hold (magnitudes above 3.4e38, or a largest magnitude below 1.2e-38) with a ``ValueError`` that says to
    rescale; a query whose float32 result overflows raises one naming the row; networks too
    large for the memory are refused before they are allocated, with the estimate.

    Examples
    --------
    >>> import numpy as np
    >>> from latentspace import Autoencoder
    >>> X = np.random.default_rng(0).normal(size=(64, 5))
    >>> ae = Autoencoder(latent_dim=2, max_epochs=3, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (64, 2)
    >>> ae.inverse_transform(ae.transform(X)).shape
    (64, 5)
    >>> ae.score_samples(X).shape
    (64,)
    """

    # fitted attributes a saved file may hold: kind, symbolic shape (see latentspace._schema)
    _fitted_schema = {**_NeuralModel._fitted_schema,
                      "mean_activation_": ("float", ("latent_dim",), "optional")}

    def __init__(
        self,
        latent_dim: int = 2,
        *,
        hidden_sizes: Sequence[int] = (),
        activation: str = "relu",
        code_activation: str | None = "auto",
        loss: str = "mse",
        noise: tuple[str, float] | None = None,
        sparsity_target: float | None = None,
        sparsity_weight: float = 1.0,
        network: str = "mlp",
        encoder: torch.nn.Module | None = None,
        decoder: torch.nn.Module | None = None,
        max_epochs: int | str = "auto",
        batch_size: int | str = "auto",
        optimizer: str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer] = "adam",
        optimizer_kwargs: dict[str, Any] | None = None,
        learning_rate: float = 1e-3,
        learning_rate_schedule: str = "plateau",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        grad_clip: float | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int | str = "auto",
        tol: float = 1e-4,
        checkpoint_path: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        callbacks: Sequence[Any] | None = None,
        warm_start: bool = False,
        device: str = "cpu",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.noise = noise
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight
        self.network = network
        self.encoder = encoder
        self.decoder = decoder
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.optimizer_kwargs = optimizer_kwargs
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # --- configuration ----------------------------------------------------------------
    def _code_activation(self):
        if self.code_activation == "auto":
            return "sigmoid" if self.sparsity_target is not None else None
        return self.code_activation

    def _check_params(self) -> None:
        from .._validation import check_int

        check_int("latent_dim", self.latent_dim, low=1, high=MAX_WIDTH)
        self._check_sizes("hidden_sizes", self.hidden_sizes)
        self._check_activation("activation", self.activation)
        if self.code_activation != "auto":
            self._check_activation("code_activation", self.code_activation)
        check_choice("loss", self.loss, ("mse", "bce"))
        self._noise_spec()
        if self.sparsity_target is not None:
            check_float("sparsity_target", self.sparsity_target, low=0.0, high=1.0,
                        low_open=True, high_open=True)
            if self._code_activation() != "sigmoid":
                raise ValueError(
                    f"sparsity_target needs code activations in (0, 1); set "
                    f"code_activation='sigmoid' or 'auto' (now {self.code_activation!r})."
                )
        check_float("sparsity_weight", self.sparsity_weight, low=0.0)

    def _noise_spec(self):
        """-> None or (kind, level), validated."""
        noise = self.noise
        if noise is None:
            return None
        ok = (isinstance(noise, (tuple, list)) and len(noise) == 2
              and noise[0] in ("gaussian", "mask") and isinstance(noise[1], numbers.Real))
        if not ok:
            raise ValueError(
                f"noise={noise!r} is not supported; use None, ('gaussian', std) or ('mask', p)."
            )
        kind, level = noise[0], float(noise[1])
        if kind == "gaussian":
            check_float("noise std", level, low=0.0, low_open=True)
        else:
            check_float("noise mask probability", level, low=0.0, high=1.0, high_open=True)
        return kind, level

    def _fit_data(self, X):
        data, val = super()._fit_data(X)
        if self.loss == "bce":
            self._check_unit_interval(data, "loss='bce'", "loss='mse'")
        return data, val

    _module_params = ("encoder", "decoder")

    @property
    def _n_features_out(self):
        return self.latent_dim

    def _build_network(self, n_features: int):
        if self._user_modules():
            return _nets.EncoderDecoder(self._user_copy("encoder"), self._user_copy("decoder"),
                                        0, n_features)
        return _nets.encoder_decoder_pair(
            self.network, n_features, self.latent_dim, self.latent_dim,
            self._check_sizes("hidden_sizes", self.hidden_sizes), self.activation,
            self._code_activation(), rescale_output=self.loss == "mse",
        )

    def _check_modules(self, net, x) -> None:
        n, d, L = x.shape[0], int(self.n_features_in_), int(self.latent_dim)
        code = self._probe("encoder", net.encode, x, f"rows ({n}, {d}) to codes ({n}, {L})")
        self._expect_shape("encoder", code, (n, L), tuple(x.shape))
        out = self._probe("decoder", net.decode, code, f"codes ({n}, {L}) to rows ({n}, {d})")
        self._expect_shape("decoder", out, (n, d), tuple(code.shape))

    @torch.no_grad()
    def _init_from_data(self, network, data) -> None:
        super()._init_from_data(network, data)
        if self.loss == "bce":
            self._init_logit_bias(network)
        code = network.output_layer_of(network.encoder)
        if self.sparsity_target is not None and code is not None:
            # the sigmoid code starts at its target mean activation ρ rather than at 1/2:
            # from 1/2, Adam needs about |logit ρ| / learning_rate steps just to move the bias
            rho = float(self.sparsity_target)
            code.bias.fill_(math.log(rho / (1 - rho)))

    # --- losses -----------------------------------------------------------------------
    def _reconstruction_error(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-sample error summed over features -> (n,)."""
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        return (out - x).square().sum(-1)

    def _corrupt(self, x: torch.Tensor, generator) -> torch.Tensor:
        spec = self._noise_spec()
        if spec is None:
            return x
        kind, level = spec
        if kind == "gaussian":
            return x + level * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= level
        return x * keep

    def _losses(self, net, x_in, x):
        code = net.encode(x_in)  # (n, L)
        rec = self._reconstruction_error(net.decode(code), x).mean()
        parts = {"reconstruction": rec}
        loss = rec
        if self.sparsity_target is not None:
            kl = sparsity_kl(self.sparsity_target, code.mean(0))
            loss = loss + self.sparsity_weight * kl
            parts["sparsity_kl"] = kl
        return loss, parts

    def _adam_loss_factor(self, net) -> float:
        """What Adam's loss is multiplied by: 1 for ordinary data, else 1 / s² as a power of two.

        The squared error and its gradients scale with s², the square of the data's scale:
        from s ≈ 1e-6 the gradients sink below Adam's ε = 1e-8, from s ≈ 1e10 their squares
        (Adam's second moment) overflow float32, and either way no step moves the weights
        while nothing is refused. Adam's steps do not otherwise depend on the loss's scale,
        so the loss it sees is brought back to standardised units there -- exactly, by a power
        of two. SGD's steps do depend on it (``learning_rate`` is in the data's units), and
        for s within [1/16, 16] nothing changes.
        """
        scale = float(net.scale)
        if self.optimizer != "adam" or self.loss != "mse" or 1 / 16 <= scale <= 16:
            return 1.0
        return math.ldexp(1.0, -2 * round(math.log2(scale)))

    def _train_step(self, net):
        factor = []  # read once, at the first step: after a resumption restored the scale

        def step(x, ctx):
            if not factor:
                factor.append(self._adam_loss_factor(net))
            loss, parts = self._losses(net, self._corrupt(x, ctx.generator), x)
            ctx.update(loss * factor[0] if factor[0] != 1.0 else loss)
            return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

        return step

    def _val_step(self, net):
        def val(x):  # clean input: the error the model is meant to minimise on new data
            loss, parts = self._losses(net, x, x)
            return {"loss": loss, **parts}

        return val

    def _after_fit(self, net, X_train, generator) -> None:
        # one pass over the training rows: only where it is a figure of the model (ρ̂_j)
        if X_train is not None and self.sparsity_target is not None:
            code = self._infer(net.encode, X_train)
            self.mean_activation_ = code.mean(0).double().cpu().numpy()

    # --- public API -------------------------------------------------------------------
    def fit(self, X: ArrayLike | DataLoader, y: object = None, *,
            resume: str | os.PathLike[str] | None = None) -> Self:
        """Train on ``X``.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features), or a DataLoader
            A DataLoader is streamed as it comes (its own batch size and order).
        y : ignored
            Present for scikit-learn's API.
        resume : path or None, default=None
            A checkpoint written by an earlier run (``checkpoint_path``) to continue from.

        Returns
        -------
        self : Autoencoder
            The fitted estimator.
        """
        return self._fit(X, resume=resume)

    def transform(self, X: ArrayLike) -> ArrayOrTensor:
        """Encode: the codes h = f(x).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray or tensor of shape (n_samples, latent_dim)
            In ``X``'s kind (numpy in, numpy out; a tensor in, a tensor on its device out)
            and float dtype.
        """
        Xt, kind = self._input(X)
        return self._out(self._infer(self.network_.encode, Xt), kind)

    def inverse_transform(self, Z: ArrayLike) -> ArrayOrTensor:
        """Decode: the reconstructions g(h) of codes.

        Parameters
        ----------
        Z : array-like or tensor of shape (n_samples, latent_dim)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_rec : ndarray or tensor of shape (n_samples, n_features)
            Probabilities for ``loss="bce"``; in ``Z``'s kind and float dtype.
        """
        Zt, kind = self._latent_input(Z)

        def decode(z):
            out = self.network_.decode(z)
            return torch.sigmoid(out) if self.loss == "bce" else out

        return self._out(self._infer(decode, Zt), kind)

    def reconstruct(self, X: ArrayLike) -> ArrayOrTensor:
        """Encode then decode: g(f(x)).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Data to reconstruct.

        Returns
        -------
        X_rec : ndarray or tensor of shape (n_samples, n_features)
            Probabilities for ``loss="bce"``; in ``X``'s kind and float dtype.
        """
        Xt, kind = self._input(X)
        net = self.network_

        def rec(x):
            out = net.decode(net.encode(x))
            return torch.sigmoid(out) if self.loss == "bce" else out

        return self._out(self._infer(rec, Xt), kind)

    def score_samples(self, X: ArrayLike) -> ArrayOrTensor:
        """Negative reconstruction error of each sample (no input noise).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray or tensor of shape (n_samples,)
            Float64; the training loss of each row with its sign flipped (higher is better).
        """
        Xt, kind = self._input(X)
        net = self.network_
        err = self._infer(lambda x: self._reconstruction_error(net.decode(net.encode(x)), x), Xt)
        return self._out(-err.double(), kind)

    def score(self, X: ArrayLike, y: object = None) -> float:
        """Mean negative reconstruction error (higher is better).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Data to score.
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        score : float
            The mean of :meth:`score_samples` over the rows of ``X``.
        """
        return super().score(X)
