"""The variational autoencoder (Kingma & Welling, 2014) and its importance-weighted bound.

The model itself — encode, reparameterize, decode, the ELBO's parts and the bound — is the
``nn.Module`` :class:`~latentspace.neural._vae_module.VAEModule`; this estimator keeps the
scikit-learn plumbing: parameters, initialisation from the data, the training step
(maximising the ELBO averaged over the batch, ``beta`` weighting the KL as in a β-VAE),
monitoring and the public API. ``score_samples(X, n_importance=K)`` is Burda et al.'s (2016)
bound, which rises with K towards log p(x).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from torch.utils.data import DataLoader

from .._backend import ArrayLike, ArrayOrTensor
from .._validation import check_choice, check_float, check_int
from . import _nets
from ._base import MAX_WIDTH, _NeuralModel
from ._vae_module import _MIN_LOG_VAR, VAEModule

if TYPE_CHECKING:  # Python 3.10 has no typing.Self
    from typing_extensions import Self

__all__ = ["VAE"]
_IW_ROWS = 16384  # (sample, row) pairs per decoder pass in the importance-weighted bound
_ACTIVE_ROWS = 1000  # rows used to count active units after each epoch
_ACTIVE_THRESHOLD = 1e-2  # Burda et al.: unit u is active if Cov_x(E_q[u]) > 1e-2
# q(z|x) starts input-independent at σ² = e⁻² (σ ≈ 0.37): a code that tells rows apart from
# the first step. From the prior's σ² = 1, Adam -- which moves a parameter by about its
# learning rate per step -- needs thousands of steps to bring log σ² to the -3 ... -5 of a
# trained posterior, and input-dependent initial variances cost ELBO from the start (linear
# VAE on Olivetti faces, defaults: 1.6% below PPCA's log-likelihood from 0, 0.6-0.7% from -2)
_INIT_POSTERIOR_LOG_VAR = -2.0


class VAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _NeuralModel):
    """Variational autoencoder with a Gaussian encoder and a Bernoulli or Gaussian decoder.

    Parameters
    ----------
    latent_dim : int, default=2
        Dimension L of z.
    hidden_sizes : tuple of int, default=(400,)
        Encoder hidden widths; the decoder mirrors them. ``()`` gives linear maps (with a
        Gaussian decoder: the linear-Gaussian model of probabilistic PCA).
    activation : str, default="relu"
        Hidden-layer non-linearity (see :class:`Autoencoder`).
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        p(x|z): Bernoulli from logits (data in [0, 1]) or Gaussian.
    decoder_variance : "shared", "feature" or float, default="shared"
        Gaussian decoder variance: one learned scalar, one learned value per feature, or
        fixed at the given value.
    beta : float, default=1.0
        Weight of the KL term (β = 1: the ELBO).
    network : {"mlp", "conv"}, default="mlp"
        ``"conv"``: a small convolutional encoder/decoder for 28×28 images.
    encoder, decoder : torch.nn.Module or None, default=None
        Your own networks (give both), as in :class:`Autoencoder`: ``encoder`` maps rows
        (n, n_features) to q(z|x)'s parameters, either a pair ``(mean, log_variance)`` of
        (n, latent_dim) tensors or one (n, 2 * latent_dim) tensor, mean first; ``decoder``
        maps codes (n, latent_dim) to (n, n_features) logits (Bernoulli) or means
        (Gaussian). Used as given (a copy is trained, no initialisation of its own); shapes
        are checked on the first batch; ``latentspace.load(path, modules={...})`` asks for
        them again.
    max_epochs, batch_size, optimizer, optimizer_kwargs, learning_rate,
    learning_rate_schedule, momentum, weight_decay, grad_clip,
    early_stopping, validation_fraction, n_iter_no_change, tol, checkpoint_path,
    checkpoint_every, callbacks, warm_start, device, random_state, verbose
        Training options, as in :class:`Autoencoder`: by default training halves the rate on
        each plateau of the loss (-ELBO) and stops, converged, at the seventh plateau, or
        warns at ``max_epochs="auto"`` (1000 epochs, or 16 000 optimiser steps when those
        are fewer); a plateau (``n_iter_no_change="auto"``) is 640
        optimiser steps without improvement in whole epochs, between 3 and 20 of them. ``tol`` is relative to max(``|loss|``, 0.1 nats per
        feature): a log-density's offset depends on the data's units, so the loss may sit
        near 0.

    Attributes
    ----------
    n_features_in_ : int
    network_ : torch.nn.Module
        ``network_.encoder`` (outputs [μ, log σ²]), ``network_.decoder`` and, for learned
        Gaussian variances, ``network_.log_var``.
    history_ : list of dict
        Per epoch: ``loss`` (= -ELBO for β = 1), ``reconstruction``, ``kl``, ``elbo``,
        ``active_units``, ``val_*`` with early stopping, ``learning_rate``, ``n_skipped``,
        ``seconds``.
    n_iter_, n_skipped_steps_ : int
    converged_, stop_reason_
        Whether and why training ended before ``max_epochs``, as in :class:`Autoencoder`.
    active_units_ : int
        Array data only: latent units with Var_x(E_q[z_u]) > 0.01 (Burda et al.) over up to
        1000 evenly spaced training rows; 0 signals posterior collapse (a warning is raised).

    Examples
    --------
    >>> import numpy as np
    >>> from latentspace import VAE
    >>> X = (np.random.default_rng(0).random((64, 6)) > 0.5).astype(float)
    >>> vae = VAE(latent_dim=2, hidden_sizes=(8,), max_epochs=3, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (64, 2)
    >>> vae.sample(5, random_state=0).shape
    (5, 6)
    >>> vae.score_samples(X, n_importance=4).shape
    (64,)
    """

    # fitted attributes a saved file may hold: kind, symbolic shape (see latentspace._schema)
    _fitted_schema = {**_NeuralModel._fitted_schema, "active_units_": ("int", None, "optional")}

    def __init__(
        self,
        latent_dim: int = 2,
        *,
        hidden_sizes: Sequence[int] = (400,),
        activation: str = "relu",
        likelihood: str = "bernoulli",
        decoder_variance: str | float = "shared",
        beta: float = 1.0,
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
        self.likelihood = likelihood
        self.decoder_variance = decoder_variance
        self.beta = beta
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
    def _check_params(self) -> None:
        check_int("latent_dim", self.latent_dim, low=1, high=MAX_WIDTH)
        self._check_sizes("hidden_sizes", self.hidden_sizes)
        self._check_activation("activation", self.activation)
        check_choice("likelihood", self.likelihood, ("bernoulli", "gaussian"))
        if not (isinstance(self.decoder_variance, str)
                and self.decoder_variance in ("shared", "feature")):
            if isinstance(self.decoder_variance, str):
                raise ValueError(
                    f"decoder_variance={self.decoder_variance!r} is not supported; use 'shared', "
                    "'feature' or a positive number."
                )
            check_float("decoder_variance", self.decoder_variance, low=0.0, low_open=True)
        check_float("beta", self.beta, low=0.0)

    def _fit_data(self, X):
        data, val = super()._fit_data(X)
        if self.likelihood == "bernoulli":
            self._check_unit_interval(data, "likelihood='bernoulli'", "likelihood='gaussian'")
        return data, val

    _module_params = ("encoder", "decoder")

    @property
    def _n_features_out(self):
        return self.latent_dim

    def _build_network(self, n_features: int) -> VAEModule:
        if self._user_modules():
            return VAEModule(self._user_copy("encoder"), self._user_copy("decoder"),
                             likelihood=self.likelihood, decoder_variance=self.decoder_variance,
                             n_features=n_features)
        pair = _nets.encoder_decoder_pair(
            self.network, n_features, self.latent_dim, 2 * self.latent_dim,
            self._check_sizes("hidden_sizes", self.hidden_sizes), self.activation,
        )
        return VAEModule(pair.encoder, pair.decoder, likelihood=self.likelihood,
                         decoder_variance=self.decoder_variance, n_features=n_features)

    def _check_modules(self, net, x) -> None:
        n, d, L = x.shape[0], int(self.n_features_in_), int(self.latent_dim)
        want = f"rows ({n}, {d}) to a pair (mean, log_variance) of ({n}, {L}) or one ({n}, {2 * L})"
        raw = self._probe("encoder", net.encoder, x, want)
        if isinstance(raw, (tuple, list)):
            if len(raw) != 2:
                raise ValueError(
                    f"the encoder module returned {len(raw)} values for a batch of shape "
                    f"{tuple(x.shape)}, but VAE expects a pair (mean, log_variance) of shape "
                    f"({n}, {L}) each, or one tensor of shape ({n}, {2 * L}), mean first."
                )
            for part, t in zip(("mean", "log_variance"), raw):
                self._expect_shape(f"encoder ({part})", t, (n, L), tuple(x.shape))
            mu = raw[0]
        else:
            self._expect_shape("encoder", raw, (n, 2 * L), tuple(x.shape))
            mu = raw[:, :L]
        out = self._probe("decoder", net.decode, mu, f"codes ({n}, {L}) to rows ({n}, {d})")
        self._expect_shape("decoder", out, (n, d), tuple(mu.shape))

    def _tol_floor(self) -> float:
        # a log-density's offset depends on the data's units (Gaussian: −log σ per feature),
        # so the loss may sit near 0; judge relative gains against at least 0.1 nats per
        # feature there instead of demanding ever smaller absolute ones
        return 0.1 * float(self.n_features_in_)

    @torch.no_grad()
    def _init_from_data(self, network, data) -> None:
        super()._init_from_data(network, data)
        if self.likelihood == "bernoulli":
            self._init_logit_bias(network)
        elif network.log_var is not None:
            # learned variances start at the data's mean variance s², not at 1 in its units
            network.log_var.fill_(max(2 * math.log(float(network.scale)), _MIN_LOG_VAR))
        head = network.output_layer_of(network.encoder)
        if head is not None:  # the log σ² half of the encoder's last layer: input-independent
            head.weight[self.latent_dim:] = 0.0
            head.bias[self.latent_dim:] = _INIT_POSTERIOR_LOG_VAR

    def _train_step(self, net):
        beta = float(self.beta)

        def step(x, ctx):
            log_px, kl = net.elbo_parts(x, ctx.generator, exact=False)
            rec, kl_mean = -log_px.mean(), kl.mean()
            loss = rec + beta * kl_mean if beta != 1.0 else rec + kl_mean
            ctx.update(loss)
            # the epoch's ELBO is -(reconstruction + kl), added by the epoch-end hook
            return {"loss": loss.detach(), "reconstruction": rec.detach(), "kl": kl_mean.detach()}

        return step

    def _val_step(self, net):
        beta = float(self.beta)
        # validation noise from its own fixed generator: it must not shift the fit's stream
        gen = torch.Generator(device=self._device())

        def val(x):
            gen.manual_seed(0)
            log_px, kl = net.elbo_parts(x, gen)
            return {"loss": (-log_px + beta * kl).mean(), "elbo": (log_px - kl).mean()}

        return val

    def _active_units(self, net, X) -> int:
        """Units u with Var_x(E_q[z_u|x]) > 0.01 over an evenly strided subset of rows."""
        stride = max(1, X.shape[0] // _ACTIVE_ROWS)
        mu, _ = net.encode(X[::stride][:_ACTIVE_ROWS].to(torch.float32))
        if mu.shape[0] < 2:
            return 0
        return int((mu.double().var(0) > _ACTIVE_THRESHOLD).sum())

    def _on_epoch_end(self, net, X_train, generator):
        def hook(record):
            if "reconstruction" in record:
                record["elbo"] = -(record["reconstruction"] + record["kl"])
            if X_train is not None:
                record["active_units"] = self._active_units(net, X_train)

        return hook

    def _after_fit(self, net, X_train, generator) -> None:
        if X_train is None:
            return
        self.active_units_ = self._active_units(net, X_train)
        if self.active_units_ == 0 and X_train.shape[0] >= 2:
            warnings.warn(
                f"posterior collapse: 0 of {self.latent_dim} latent units are active (variance "
                f"of E_q[z] over the data ≤ {_ACTIVE_THRESHOLD}); lower beta, train longer, or "
                "use a smaller latent_dim.",
                UserWarning,
                stacklevel=5,
            )

    # --- public API -------------------------------------------------------------------
    def fit(self, X: ArrayLike | DataLoader, y: object = None, *,
            resume: str | os.PathLike[str] | None = None) -> Self:
        """Maximise the ELBO on ``X``.

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
        self : VAE
            The fitted estimator.
        """
        return self._fit(X, resume=resume)

    def transform(self, X: ArrayLike) -> ArrayOrTensor:
        """Encode: the posterior means μ(x).

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
        return self._out(self._infer(lambda x: self.network_.encode(x)[0], Xt), kind)

    def inverse_transform(self, Z: ArrayLike) -> ArrayOrTensor:
        """Decode: the decoder means E[x|z].

        Parameters
        ----------
        Z : array-like or tensor of shape (n_samples, latent_dim)
            Latent codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_mean : ndarray or tensor of shape (n_samples, n_features)
            Probabilities for the Bernoulli likelihood; in ``Z``'s kind and float dtype.
        """
        Zt, kind = self._latent_input(Z)
        return self._out(self._infer(self.network_.mean, Zt), kind)

    def sample(self, n_samples: int = 1, *,
               random_state: int | np.random.RandomState | None = None,
               noise: bool = False) -> ArrayOrTensor:
        """Draw z ~ N(0, I) and decode.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.
        random_state : int, RandomState or None
            None: derived from the estimator's ``random_state``.
        noise : bool, default=False
            False returns the decoder means E[x|z]; True draws x ~ p(x|z).

        Returns
        -------
        X : ndarray or tensor of shape (n_samples, n_features)
            Of the fit's kind, device and dtype: numpy in, numpy out; a tensor in, a tensor
            on its device out (float32 after a DataLoader fit or a ``latentspace.load``).
        """
        self._check_fitted()
        n_samples = self._check_n_samples(n_samples)
        gen = self._rng_for_call(random_state)
        net = self.network_
        with torch.no_grad():
            z = torch.randn((n_samples, self.latent_dim), generator=gen, device=gen.device)
            mean = net.mean(z)
            if noise and self.likelihood == "bernoulli":
                mean = torch.bernoulli(mean, generator=gen)
            elif noise:
                std = torch.exp(0.5 * net.decoder_log_var(mean))
                mean = mean + std * torch.randn(mean.shape, generator=gen, device=mean.device)
        return self._sample_out(mean)

    def score_samples(self, X: ArrayLike, n_importance: int | None = None, *,
                      random_state: int | np.random.RandomState | None = None
                      ) -> ArrayOrTensor:
        """ELBO of each sample, or the importance-weighted bound with ``n_importance`` samples.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Data to score.
        n_importance : int or None, default=None
            None: the ELBO, E_q[log p(x|z)] (one reparameterised sample) - KL (closed form).
            K ≥ 1: log (1/K) Σ_k p(x, z_k)/q(z_k|x) (Burda et al., eq. 8), a lower bound of
            log p(x) that does not decrease with K; computed in blocks with logsumexp.
        random_state : int, RandomState or None
            None: derived from the estimator's ``random_state`` (repeatable).

        Returns
        -------
        scores : ndarray or tensor of shape (n_samples,)
            Float64, in nats; a tensor for tensor input.
        """
        Xt, kind = self._input(X)
        gen = self._rng_for_call(random_state)
        net = self.network_
        x32 = Xt.to(torch.float32)
        with torch.no_grad():
            if n_importance is None:
                blocks = []
                for i in range(0, x32.shape[0], _IW_ROWS):
                    log_px, kl = net.elbo_parts(x32[i : i + _IW_ROWS], gen)
                    blocks.append(log_px - kl)
                out = torch.cat(blocks)
            else:
                n_importance = check_int("n_importance", n_importance, low=1)
                out = net.iw_bound(x32, n_importance, gen, pairs=_IW_ROWS)
        return self._out(_nets.check_finite_output(out, "VAE", "score"), kind)
