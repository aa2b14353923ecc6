"""The variational autoencoder (Kingma & Welling, 2014) and its importance-weighted bound.

Encoder q(z|x) = N(μ(x), diag σ²(x)), prior p(z) = N(0, I), decoder p(x|z) Bernoulli (from
logits) or Gaussian (mean from the network; variance shared, per feature, or fixed). Training
maximises the evidence lower bound, averaged over the batch,

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) ‖ p(z))                         (K&W eq. 3)

with one reparameterised sample z = μ + σ ⊙ ε, ε ~ N(0, I) (eq. 4) and the KL in closed form,
KL = ½ Σ_j (μ_j² + σ_j² - 1 - log σ_j²) (K&W appendix B). ``beta`` weights the KL (β-VAE).

``score_samples(X, n_importance=K)`` is Burda et al.'s (2016) bound
log p(x) ≥ log (1/K) Σ_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), computed with logsumexp in
blocks of samples; it rises with K towards log p(x).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin

from .._validation import check_choice, check_float, check_int
from . import _nets
from ._base import _NeuralModel

__all__ = ["VAE"]

_LOG_2PI = math.log(2 * math.pi)
_MIN_LOG_VAR = math.log(1e-6)  # floor of a learned decoder variance (constant features)
_IW_ROWS = 16384  # (sample, row) pairs per decoder pass in the importance-weighted bound
_ACTIVE_ROWS = 1000  # rows used to count active units after each epoch
_ACTIVE_THRESHOLD = 1e-2  # Burda et al.: unit u is active if Cov_x(E_q[u]) > 1e-2
# q(z|x) starts input-independent at σ² = e⁻² (σ ≈ 0.37): a code that tells rows apart from
# the first step. From the prior's σ² = 1, Adam -- which moves a parameter by about its
# learning rate per step -- needs thousands of steps to bring log σ² to the -3 ... -5 of a
# trained posterior, and input-dependent initial variances cost ELBO from the start (linear
# VAE on Olivetti faces, defaults: 1.6% below PPCA's log-likelihood from 0, 0.6-0.7% from -2)
_INIT_POSTERIOR_LOG_VAR = -2.0


class VAE(TransformerMixin, _NeuralModel):
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
    max_epochs, batch_size, optimizer, learning_rate, learning_rate_schedule, momentum,
    weight_decay, grad_clip,
    early_stopping, validation_fraction, n_iter_no_change, tol, checkpoint_path,
    checkpoint_every, device, random_state, verbose
        Training options, as in :class:`Autoencoder`: by default training halves the rate on
        each plateau of the loss (-ELBO) and stops, converged, at the seventh plateau, or
        warns at ``max_epochs=1000``. ``tol`` is relative to max(|loss|, 0.1 nats per
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
    """

    def __init__(
        self,
        latent_dim=2,
        *,
        hidden_sizes=(400,),
        activation="relu",
        likelihood="bernoulli",
        decoder_variance="shared",
        beta=1.0,
        network="mlp",
        max_epochs=1000,
        batch_size="auto",
        optimizer="adam",
        learning_rate=1e-3,
        learning_rate_schedule="plateau",
        momentum=0.9,
        weight_decay=0.0,
        grad_clip=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        checkpoint_path=None,
        checkpoint_every=1,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.latent_dim = latent_dim
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.decoder_variance = decoder_variance
        self.beta = beta
        self.network = network
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
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
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # --- configuration ----------------------------------------------------------------
    def _check_params(self) -> None:
        check_int("latent_dim", self.latent_dim, low=1)
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

    def _n_log_var(self, n_features: int) -> int:
        if self.likelihood != "gaussian" or not isinstance(self.decoder_variance, str):
            return 0
        return 1 if self.decoder_variance == "shared" else n_features

    def _fit_data(self, X):
        data, val = super()._fit_data(X)
        if self.likelihood == "bernoulli":
            self._check_unit_interval(data, "likelihood='bernoulli'", "likelihood='gaussian'")
        return data, val

    def _build_network(self, n_features: int):
        return _nets.encoder_decoder_pair(
            self.network, n_features, self.latent_dim, 2 * self.latent_dim,
            self._check_sizes("hidden_sizes", self.hidden_sizes), self.activation,
            None, self._n_log_var(n_features), rescale_output=self.likelihood == "gaussian",
        )

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

    # --- the model --------------------------------------------------------------------
    def _encode(self, net, x):
        """-> μ, log σ², each (n, L)."""
        mu, log_var = net.encode(x).chunk(2, dim=-1)
        return mu, log_var

    def _decoder_log_var(self, net, like: torch.Tensor) -> torch.Tensor:
        if net.log_var is not None:
            return net.log_var.clamp_min(_MIN_LOG_VAR)
        return torch.full((), math.log(float(self.decoder_variance)), device=like.device,
                          dtype=like.dtype)

    def _log_px(self, net, out: torch.Tensor, x: torch.Tensor, exact: bool = True) -> torch.Tensor:
        """log p(x|z) summed over features -> out.shape[:-1]; in float64 when ``exact``
        (scores), else in the network's precision (training losses)."""
        if self.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none")
        else:
            log_var = self._decoder_log_var(net, out)
            nll = 0.5 * ((x - out).square() * torch.exp(-log_var) + log_var + _LOG_2PI)
        # summed before negating: the sign flip touches (n,) values, not (n, d)
        return -(nll.double().sum(-1) if exact else nll.sum(-1))

    @staticmethod
    def _kl(mu, log_var) -> torch.Tensor:
        """KL(N(μ, σ²) ‖ N(0, I)) summed over latent units -> (n,)."""
        return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(-1)

    def _elbo_parts(self, net, x, generator, exact=True):
        mu, log_var = self._encode(net, x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * log_var) * eps  # reparameterisation, K&W eq. 4
        log_px = self._log_px(net, net.decode(z), x, exact)  # (n,)
        kl = self._kl(mu, log_var)  # (n,)
        return log_px, kl.double() if exact else kl

    def _train_step(self, net):
        beta = float(self.beta)

        def step(x, ctx):
            log_px, kl = self._elbo_parts(net, x, ctx.generator, exact=False)
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
            log_px, kl = self._elbo_parts(net, x, gen)
            return {"loss": (-log_px + beta * kl).mean(), "elbo": (log_px - kl).mean()}

        return val

    def _active_units(self, net, X) -> int:
        """Units u with Var_x(E_q[z_u|x]) > 0.01 over an evenly strided subset of rows."""
        stride = max(1, X.shape[0] // _ACTIVE_ROWS)
        mu, _ = self._encode(net, X[::stride][:_ACTIVE_ROWS].to(torch.float32))
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
    def fit(self, X, y=None, *, resume=None):
        """Maximise the ELBO on ``X`` (array, tensor or DataLoader); see :class:`Autoencoder`."""
        return self._fit(X, resume=resume)

    def transform(self, X):
        """Posterior means μ(x) -> (n_samples, latent_dim)."""
        Xt, kind = self._input(X)
        return self._out(self._infer(lambda x: self._encode(self.network_, x)[0], Xt), kind)

    def _decode_mean(self, z):
        out = self.network_.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def inverse_transform(self, Z):
        """Decoder means E[x|z] -> (n_samples, n_features) (probabilities for Bernoulli)."""
        Zt, kind = self._latent_input(Z)
        return self._out(self._infer(self._decode_mean, Zt), kind)

    def sample(self, n_samples=1, *, random_state=None, noise=False):
        """Draw z ~ N(0, I) and decode.

        Parameters
        ----------
        n_samples : int
        random_state : int, RandomState or None
            None: derived from the estimator's ``random_state``.
        noise : bool, default=False
            False returns the decoder means E[x|z]; True draws x ~ p(x|z).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), float32
        """
        self._check_fitted()
        n_samples = check_int("n_samples", n_samples, low=1)
        gen = self._rng_for_call(random_state)
        net = self.network_
        with torch.no_grad():
            z = torch.randn((n_samples, self.latent_dim), generator=gen, device=gen.device)
            mean = self._decode_mean(z)
            if noise and self.likelihood == "bernoulli":
                mean = torch.bernoulli(mean, generator=gen)
            elif noise:
                std = torch.exp(0.5 * self._decoder_log_var(net, mean))
                mean = mean + std * torch.randn(mean.shape, generator=gen, device=mean.device)
        return mean.cpu().numpy()

    def score_samples(self, X, n_importance=None, *, random_state=None):
        """ELBO of each sample, or the importance-weighted bound with ``n_importance`` samples.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        n_importance : int or None
            None: the ELBO, E_q[log p(x|z)] (one reparameterised sample) - KL (closed form).
            K ≥ 1: log (1/K) Σ_k p(x, z_k)/q(z_k|x) (Burda et al., eq. 8), a lower bound of
            log p(x) that does not decrease with K; computed in blocks with logsumexp.
        random_state : int, RandomState or None
            None: derived from the estimator's ``random_state`` (repeatable).

        Returns
        -------
        scores : (n_samples,) float64 array (or tensor, for tensor input), in nats
        """
        Xt, kind = self._input(X)
        gen = self._rng_for_call(random_state)
        net = self.network_
        x32 = Xt.to(torch.float32)
        with torch.no_grad():
            if n_importance is None:
                blocks = []
                for i in range(0, x32.shape[0], _IW_ROWS):
                    log_px, kl = self._elbo_parts(net, x32[i : i + _IW_ROWS], gen)
                    blocks.append(log_px - kl)
                out = torch.cat(blocks)
            else:
                n_importance = check_int("n_importance", n_importance, low=1)
                out = self._iw_bound(net, x32, n_importance, gen)
        return self._out(out, kind)

    def _iw_bound(self, net, x, K: int, gen) -> torch.Tensor:
        """Importance-weighted bound for each row of ``x`` -> (n,) float64."""
        n = x.shape[0]
        rows = max(1, min(n, _IW_ROWS // K))  # data rows per block
        k_chunk = max(1, min(K, _IW_ROWS // rows))  # importance samples per decoder pass
        result = torch.empty(n, dtype=torch.float64, device=x.device)
        for i in range(0, n, rows):
            xb = x[i : i + rows]  # (b, d)
            mu, log_var = self._encode(net, xb)  # (b, L)
            std = torch.exp(0.5 * log_var)
            acc = torch.full((xb.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
            for k0 in range(0, K, k_chunk):
                k = min(k_chunk, K - k0)
                eps = torch.randn((k, *mu.shape), generator=gen, device=mu.device, dtype=mu.dtype)
                z = mu + std * eps  # (k, b, L)
                out = net.decode(z.reshape(-1, z.shape[-1])).reshape(k, xb.shape[0], -1)
                log_px = self._log_px(net, out, xb)  # (k, b)
                log_pz = -0.5 * (z.square() + _LOG_2PI).double().sum(-1)
                log_qz = -0.5 * (eps.square() + log_var + _LOG_2PI).double().sum(-1)
                log_w = log_px + log_pz - log_qz  # (k, b)
                acc = torch.logaddexp(acc, torch.logsumexp(log_w, dim=0))
            result[i : i + rows] = acc - math.log(K)
        return result
