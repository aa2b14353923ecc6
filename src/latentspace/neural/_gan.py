"""The generative adversarial network of Goodfellow et al. (2014), Algorithm 1.

A generator G maps noise z ~ p(z) to data space; a discriminator D(x) = σ(logit(x)) tells real
from generated samples. The value function is

    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]                         (eq. 1)

Each training batch performs one discriminator ascent step on V with a fresh minibatch of real
data and of noise (``fake.detach()``: no gradient reaches G); after every ``k_steps`` such
steps the generator descends, on a fresh noise minibatch, either the minimax loss
E_z[log(1 - D(G(z)))] or the non-saturating one -E_z[log D(G(z))] that the paper recommends
early in training (§3). All log-sigmoids come from logits: log D = -softplus(-logit),
log(1 - D) = -softplus(logit).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.metaestimators import available_if

from .._validation import check_choice, check_float, check_int
from ..exceptions import ConvergenceWarning
from . import _nets
from ._base import _NeuralModel
from ._trainer import make_optimizer

__all__ = ["GAN"]

_MONITOR_SAMPLES = 2000  # generated samples per epoch for the mode-coverage figures
# the discriminator "wins outright" when, over the last epoch, it gives real rows a mean
# probability above 1 - _WIN_MARGIN and generated ones below _WIN_MARGIN: the generator then
# gets almost no signal (its minimax gradient vanishes) and its samples are easy to tell apart
_WIN_MARGIN = 0.1


class GAN(_NeuralModel):
    """Generative adversarial network (Goodfellow et al., 2014) with k discriminator steps.

    Parameters
    ----------
    latent_dim : int, default=2
        Dimension of the noise z.
    generator_sizes : tuple of int, default=(128, 128)
        Hidden widths of G.
    discriminator_sizes : tuple of int, default=(128, 128)
        Hidden widths of D.
    activation : str, default="relu"
        Hidden non-linearity of G.
    discriminator_activation : str, default="leaky_relu"
        Hidden non-linearity of D.
    output_activation : str or None, default=None
        Non-linearity on G's output: None for unbounded data, ``"sigmoid"`` for data in [0, 1],
        ``"tanh"`` for [-1, 1].
    k_steps : int, default=1
        Discriminator steps per generator step (k of Algorithm 1; the paper used k = 1).
    loss : {"non_saturating", "minimax"}, default="non_saturating"
        Generator objective.
    noise : {"gaussian", "uniform"}, default="gaussian"
        p(z): N(0, I) or U(-1, 1)^L.
    reference_modes : array-like of shape (n_modes, n_features) or None
        Centres of known modes (e.g. the 8-Gaussians ring); with them each epoch records
        ``modes_covered`` and ``high_quality`` in ``history_`` (see
        :func:`latentspace.metrics.mode_coverage`), and a warning reports mode collapse.
    reference_std : float or None
        Standard deviation of each reference mode (required with ``reference_modes``).
    discriminator_learning_rate : float or None
        Step size of D; None uses ``learning_rate``.
    max_epochs, batch_size, optimizer, learning_rate, learning_rate_schedule, momentum,
    weight_decay, grad_clip,
    checkpoint_path, checkpoint_every, device, random_state, verbose
        Training options, as in :class:`Autoencoder` (``momentum`` is SGD's momentum or
        Adam's β₁; 0.5 is the usual GAN choice), except that a GAN always runs all
        ``max_epochs`` (default 100): its two losses are a game, so no plateau means
        convergence, and ``learning_rate_schedule`` is ``"constant"`` (default) or
        ``"cosine"``.

    Attributes
    ----------
    n_features_in_ : int
    network_ : torch.nn.Module
        ``network_.generator`` and ``network_.discriminator``.
    history_ : list of dict
        Per epoch: ``loss_d``, ``loss_g``, ``d_real`` and ``d_fake`` (mean D outputs), and with
        reference modes ``modes_covered``, ``high_quality``; ``n_skipped``, ``seconds``.
    n_iter_, n_skipped_steps_ : int
    stop_reason_ : str
        Always ``"max_epochs"``: a GAN's losses are a game, not an objective to converge, so
        training runs all ``max_epochs``.
    converged_ : bool
        Always False (no convergence criterion applies).
    discriminator_won_ : bool
        In the last epoch the discriminator told real from generated rows almost perfectly
        (mean D(x) > 0.9 on real rows and < 0.1 on generated ones); a
        :class:`~latentspace.exceptions.ConvergenceWarning` says so.
    """

    def __init__(
        self,
        latent_dim=2,
        *,
        generator_sizes=(128, 128),
        discriminator_sizes=(128, 128),
        activation="relu",
        discriminator_activation="leaky_relu",
        output_activation=None,
        k_steps=1,
        loss="non_saturating",
        noise="gaussian",
        reference_modes=None,
        reference_std=None,
        discriminator_learning_rate=None,
        max_epochs=100,
        batch_size=128,
        optimizer="adam",
        learning_rate=2e-4,
        learning_rate_schedule="constant",
        momentum=0.5,
        weight_decay=0.0,
        grad_clip=None,
        checkpoint_path=None,
        checkpoint_every=1,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.latent_dim = latent_dim
        self.generator_sizes = generator_sizes
        self.discriminator_sizes = discriminator_sizes
        self.activation = activation
        self.discriminator_activation = discriminator_activation
        self.output_activation = output_activation
        self.k_steps = k_steps
        self.loss = loss
        self.noise = noise
        self.reference_modes = reference_modes
        self.reference_std = reference_std
        self.discriminator_learning_rate = discriminator_learning_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    _network_kinds = ("mlp",)
    _schedules = ("constant", "cosine")  # no objective whose plateaus could steer the rate
    _init = "torch"
    network = "mlp"  # GAN networks are MLPs (not a hyperparameter)

    # --- configuration ----------------------------------------------------------------
    def _check_params(self) -> None:
        check_int("latent_dim", self.latent_dim, low=1)
        self._check_sizes("generator_sizes", self.generator_sizes)
        self._check_sizes("discriminator_sizes", self.discriminator_sizes)
        self._check_activation("activation", self.activation)
        self._check_activation("discriminator_activation", self.discriminator_activation)
        self._check_activation("output_activation", self.output_activation)
        check_int("k_steps", self.k_steps, low=1)
        check_choice("loss", self.loss, ("non_saturating", "minimax"))
        check_choice("noise", self.noise, ("gaussian", "uniform"))
        if self.discriminator_learning_rate is not None:
            check_float("discriminator_learning_rate", self.discriminator_learning_rate,
                        low=0.0, low_open=True)
        if (self.reference_modes is None) != (self.reference_std is None):
            raise ValueError(
                "reference_modes and reference_std go together: give both (mode centres and "
                "their standard deviation) or neither."
            )
        if self.reference_std is not None:
            check_float("reference_std", self.reference_std, low=0.0, low_open=True)

    def _fit_data(self, X):
        data, val = super()._fit_data(X)
        if self.reference_modes is not None:
            modes = np.asarray(self.reference_modes, dtype=np.float64)
            if modes.ndim != 2 or modes.shape[1] != self.n_features_in_ or not np.isfinite(modes).all():
                raise ValueError(
                    f"reference_modes must be a finite (n_modes, {self.n_features_in_}) array, got "
                    f"shape {modes.shape}."
                )
        return data, val

    def _build_network(self, n_features: int):
        g = _nets.mlp((self.latent_dim, *self._check_sizes("generator_sizes", self.generator_sizes),
                       n_features), self.activation, self.output_activation)
        d = _nets.mlp((n_features, *self._check_sizes("discriminator_sizes", self.discriminator_sizes),
                       1), self.discriminator_activation, None)
        return _nets.GeneratorDiscriminator(g, d)

    def _make_optimizers(self, net) -> dict:
        lr_d = self.learning_rate if self.discriminator_learning_rate is None else \
            self.discriminator_learning_rate
        return {
            "discriminator": make_optimizer(net.discriminator.parameters(), self.optimizer,
                                            lr_d, self.momentum, self.weight_decay),
            "generator": make_optimizer(net.generator.parameters(), self.optimizer,
                                        self.learning_rate, self.momentum, self.weight_decay),
        }

    def _noise(self, n: int, generator) -> torch.Tensor:
        shape = (n, self.latent_dim)
        if self.noise == "uniform":
            return 2.0 * torch.rand(shape, generator=generator, device=generator.device) - 1.0
        return torch.randn(shape, generator=generator, device=generator.device)

    # --- Algorithm 1 ------------------------------------------------------------------
    def _train_step(self, net):
        G, D = net.generator, net.discriminator
        k, minimax = int(self.k_steps), self.loss == "minimax"

        def step(x, ctx):
            n = x.shape[0]
            # discriminator: ascend V, i.e. descend -[log D(x) + log(1 - D(G(z)))]
            fake = G(self._noise(n, ctx.generator)).detach()
            logit_real, logit_fake = D(x), D(fake)  # (n, 1)
            loss_d = F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()
            ctx.update(loss_d, "discriminator")
            out = {"loss_d": loss_d.detach(),
                   "d_real": torch.sigmoid(logit_real).mean().detach(),
                   "d_fake": torch.sigmoid(logit_fake).mean().detach()}
            if (ctx.step + 1) % k == 0:
                # generator, on fresh noise: minimax E log(1 - D(G(z))) = -E softplus(logit);
                # non-saturating -E log D(G(z)) = E softplus(-logit)
                logit = D(G(self._noise(n, ctx.generator)))
                loss_g = -F.softplus(logit).mean() if minimax else F.softplus(-logit).mean()
                ctx.update(loss_g, "generator")
                out["loss_g"] = loss_g.detach()
            return out

        return step

    def _on_epoch_end(self, net, X_train, generator):
        if self.reference_modes is None:
            return None
        from ..metrics import mode_coverage

        def hook(record):
            # monitoring draws from its own fixed generator so that it never shifts the fit's
            samples = net.generator(self._noise(_MONITOR_SAMPLES, self._monitor_gen()))
            cov = mode_coverage(samples.cpu().numpy(), self.reference_modes, self.reference_std)
            record["modes_covered"] = cov["modes_covered"]
            record["high_quality"] = cov["high_quality"]

        return hook

    def _monitor_gen(self):
        gen = torch.Generator(device=self._device())
        gen.manual_seed(0)
        return gen

    def _after_fit(self, net, X_train, generator) -> None:
        last = self.history_[-1] if self.history_ else {}
        d_real, d_fake = last.get("d_real"), last.get("d_fake")
        self.discriminator_won_ = bool(
            d_real is not None and d_fake is not None
            and d_real > 1 - _WIN_MARGIN and d_fake < _WIN_MARGIN)
        if self.discriminator_won_:
            warnings.warn(
                f"the discriminator wins outright: in the last epoch it gave real rows a mean "
                f"probability of {d_real:.3f} and generated ones {d_fake:.3f}, so the generator "
                "gets almost no training signal and its samples are unlike the data. Try a lower "
                "discriminator_learning_rate, k_steps=1, a wider generator (generator_sizes) or "
                "loss='non_saturating'.",
                ConvergenceWarning,
                stacklevel=5,
            )
        if self.reference_modes is None or not self.history_:
            return
        last = self.history_[-1]
        n_modes = len(np.asarray(self.reference_modes))
        if last.get("modes_covered", n_modes) < n_modes:
            warnings.warn(
                f"mode collapse: generated samples cover {last['modes_covered']} of {n_modes} "
                f"reference modes ({100 * last['high_quality']:.0f}% of samples within 3σ of a "
                "mode); see history_ for the trace. Try k_steps > 1, a lower learning_rate or "
                "more epochs.",
                UserWarning,
                stacklevel=5,
            )

    # --- public API -------------------------------------------------------------------
    def fit(self, X, y=None, *, resume=None):
        """Train G and D on ``X`` (array, tensor or DataLoader) by Algorithm 1."""
        return self._fit(X, resume=resume)

    def sample(self, n_samples=1, *, random_state=None):
        """Draw x = G(z), z ~ p(z) -> ndarray of shape (n_samples, n_features), float32.

        ``random_state=None`` derives the draw from the estimator's ``random_state``.
        """
        self._check_fitted()
        n_samples = check_int("n_samples", n_samples, low=1)
        gen = self._rng_for_call(random_state)
        with torch.no_grad():
            return self.network_.generator(self._noise(n_samples, gen)).cpu().numpy()

    def discriminate(self, X):
        """D(x), the discriminator's probability that each row is real -> (n_samples,)."""
        Xt, kind = self._input(X)
        D = self.network_.discriminator
        return self._out(self._infer(lambda x: torch.sigmoid(D(x))[:, 0], Xt), kind)

    @available_if(lambda self: False)
    def score(self, X, y=None):  # pragma: no cover - never available
        """A GAN defines no likelihood; see :func:`latentspace.metrics.parzen_window_score`."""
        raise AttributeError("GAN has no likelihood to score")
