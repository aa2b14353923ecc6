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

import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.metaestimators import available_if
from torch.utils.data import DataLoader

from .._backend import ArrayLike, ArrayOrTensor
from .._validation import ParameterError, check_choice, check_float, check_int, check_param_array
from ..exceptions import ConvergenceWarning
from . import _nets
from ._base import MAX_WIDTH, _NeuralModel
from ._trainer import make_optimizer

if TYPE_CHECKING:  # Python 3.10 has no typing.Self
    from typing_extensions import Self

__all__ = ["GAN"]

_MONITOR_SAMPLES = 2000  # generated samples per epoch for the mode-coverage figures
_DIVERSITY_ROWS = 256  # generated and training rows behind each epoch's diversity figure
# below this relative diversity the samples are less varied than a single class of image data
# (see latentspace.metrics.relative_diversity): mode collapse
COLLAPSE_DIVERSITY = 0.5
_R1_IMAGES = 10.0  # r1_penalty="auto" on data in [0, 1]: γ of Mescheder et al.'s image runs
_R1_EVERY = 4  # lazy R1: the penalty on every 4th discriminator step, 4 times as heavy
# max_epochs="auto": at least AUTO_MIN_STEPS optimiser steps of each network, and
# AUTO_MIN_EPOCHS epochs as long as they take at most AUTO_MAX_STEPS steps (on large data
# sets fewer, longer epochs: 100 epochs of 20 000 MNIST images were 31 300 steps, over ten
# minutes on two cores)
AUTO_MIN_STEPS = 2000
AUTO_MIN_EPOCHS = 100
AUTO_MAX_STEPS = 5000
# the discriminator "wins outright" when, over the last epoch, it gives real rows a mean
# probability above 1 - _WIN_MARGIN and generated ones below _WIN_MARGIN: the generator then
# gets almost no signal (its minimax gradient vanishes) and its samples are easy to tell apart
_WIN_MARGIN = 0.1


class GAN(_NeuralModel):
    """Generative adversarial network (Goodfellow et al., 2014) with k discriminator steps.

    The defaults are chosen so that ``GAN(latent_dim=16).fit(images)``, with ``images`` a
    float array of flattened images in [0, 1] of a few hundred to a few thousand rows, gives
    recognisable and varied samples on digits, MNIST, Fashion-MNIST, faces, with nothing else
    set. Each default and why:

    - MLPs with leaky-ReLU (slope 0.2) hidden layers on both sides (Radford et al., 2016, use
      them in D; in G they keep gradients flowing through units that a ReLU would switch off),
      G ``latent_dim-256-512-d``, D ``d-512-256-1``: wide enough for 28×28 digits, small enough
      for a CPU.
    - ``output_activation="auto"``: a sigmoid when every training value lies in [0, 1] (pixel
      intensities), none otherwise; a sigmoid G starts at the data's mean image (output
      biases logit of the mean). Without the sigmoid G's samples leave the data's range and D
      wins on that alone.
    - ``minibatch_std=True``: D's last hidden layer is extended by one feature, the batch's
      mean standard deviation (Karras et al., 2018, §3). A batch of near-identical samples then
      stands out at once, so G cannot settle on one glyph (the earlier defaults -- a ReLU G
      without a sigmoid, no such feature, no penalty -- collapsed the digits to a single
      non-digit image).
    - ``r1_penalty="auto"``: on data in [0, 1], the R1 gradient penalty (γ/2) E‖∇ₓ D(x)‖² on
      real rows with γ = 10, the value of Mescheder et al. (2018) for images, applied lazily
      on every 4th D step with 4 times the weight (Karras et al., 2020). It keeps D smooth
      around the data, which damps the oscillations of the game: on MNIST it turned speckled
      strokes into smooth ones (γ = 1 left them speckled). γ is in the data's units, so no
      single value suits unbounded data of any scale: there (the 8-Gaussians ring, whose
      modes are 100 times narrower than its spread, or a unit Gaussian, where γ = 10 kept D
      too flat for G to spread out) "auto" means 0.
    - ``loss="non_saturating"`` (Goodfellow et al., 2014, §3), ``k_steps=1``.
    - Adam with ``learning_rate=2e-4`` for both networks and ``momentum`` (β₁) 0.5, the
      DCGAN setting (Radford et al., 2016): β₁ = 0.9 makes the game oscillate.
    - ``batch_size=64`` and ``max_epochs="auto"``: training length is counted in optimiser
      steps, not passes over the data: at least 2 000 steps of each network, and 100 epochs
      as long as they are at most 5 000 steps, so 280 faces get as many updates as 1 257
      digits (100 epochs of 3 000 MNIST images are 4 700 steps, about 2 minutes on one CPU
      thread) and 20 000 rows get 16 epochs of 313 steps (100 epochs were 31 300 steps,
      over ten minutes on two cores for MNIST).

    Every epoch ``history_`` records the samples' *diversity*: the mean pairwise Euclidean
    distance among 256 samples G(z) of a fixed noise batch, divided by the same among 256
    fixed, evenly spaced training rows (:func:`latentspace.metrics.relative_diversity`): about
    1 when the samples are as varied as the data, towards 0 on collapse. The monitoring noise
    comes from its own generator, so it never changes the fit. A last-epoch diversity below
    0.5 -- samples less varied than even the most compact class of digits, MNIST or
    Fashion-MNIST, whose within-class spread is 0.57, 0.64 and 0.60 of the overall one -- sets
    ``mode_collapse_`` and warns
    ("mode collapse: ..."), as does a ring fit that misses reference modes. The warning is a
    :class:`~latentspace.exceptions.ConvergenceWarning`, like the discriminator's outright win:
    both say that training did not reach what it was for (it is a ``UserWarning`` too).

    Parameters
    ----------
    latent_dim : int, default=2
        Dimension of the noise z.
    generator_sizes : tuple of int, default=(256, 512)
        Hidden widths of G.
    discriminator_sizes : tuple of int, default=(512, 256)
        Hidden widths of D.
    activation : str, default="leaky_relu"
        Hidden non-linearity of G.
    discriminator_activation : str, default="leaky_relu"
        Hidden non-linearity of D.
    output_activation : "auto", str or None, default="auto"
        Non-linearity on G's output: None for unbounded data, ``"sigmoid"`` for data in [0, 1],
        ``"tanh"`` for [-1, 1]; ``"auto"`` is ``"sigmoid"`` when the training array lies in
        [0, 1] and None otherwise (and for a DataLoader, which is not scanned up front). The
        choice made is ``output_activation_``.
    minibatch_std : bool, default=True
        Give D the minibatch standard-deviation feature. D's output for a row then depends on
        the other rows of its batch (:meth:`discriminate` scores rows in blocks of 4 096).
    r1_penalty : "auto" or float, default="auto"
        γ of the R1 penalty; 0 disables it; ``"auto"``: 10 when the training array lies in
        [0, 1], else 0 (and 0 for a DataLoader). The value used is ``r1_penalty_``.
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
        Step size of D; None uses ``learning_rate`` (not used by a callable ``optimizer``).
    generator, discriminator : torch.nn.Module or None, default=None
        Your own networks (give both) in place of the built-in MLPs: ``generator`` maps noise
        (n, latent_dim) to rows (n, n_features) (images flattened), ``discriminator`` maps
        rows to logits (n, 1). Used as given (a copy is trained, with no initialisation of
        its own; ``generator_sizes``, ``discriminator_sizes``, the activations,
        ``output_activation`` and ``minibatch_std`` do not apply); shapes are checked on the
        first batch; ``latentspace.load(path, modules={...})`` asks for them again.
    max_epochs : int or "auto", default="auto"
        Epochs to run; ``"auto"``: enough for 2 000 steps of each network (``k_steps`` times
        as many batches), and 100 epochs when those are at most 5 000 steps, else as many as
        5 000 steps make (100 for a DataLoader without a length).
    batch_size, optimizer, optimizer_kwargs, learning_rate, learning_rate_schedule, momentum,
    weight_decay, grad_clip, checkpoint_path, checkpoint_every, callbacks, warm_start,
    device, random_state, verbose
        Training options, as in :class:`Autoencoder` (``momentum`` is SGD's momentum or
        Adam's β₁; a callable ``optimizer`` is called once per network), except that a GAN
        runs all its epochs unless a callback stops it: its two losses are a game, so no
        plateau means convergence, and ``learning_rate_schedule`` is ``"constant"``
        (default) or ``"cosine"``.

    Attributes
    ----------
    n_features_in_ : int
    network_ : torch.nn.Module
        ``network_.generator`` and ``network_.discriminator``.
    output_activation_ : str or None
        G's output non-linearity (``output_activation`` with ``"auto"`` resolved).
    r1_penalty_ : float
        γ of the R1 penalty used (``r1_penalty`` with ``"auto"`` resolved).
    history_ : list of dict
        Per epoch: ``loss_d``, ``loss_g``, ``d_real`` and ``d_fake`` (mean D outputs),
        ``diversity`` (for array data), with reference modes ``modes_covered`` and
        ``high_quality``; ``n_skipped``, ``seconds``.
    n_iter_, n_skipped_steps_ : int
    stop_reason_ : str
        Always ``"max_epochs"``: a GAN's losses are a game, not an objective to converge, so
        training runs all its epochs.
    converged_ : bool
        Always False (no convergence criterion applies).
    mode_collapse_ : bool
        The last epoch's diversity was below 0.5, or the samples missed a reference mode; a
        :class:`~latentspace.exceptions.ConvergenceWarning` says so.
    discriminator_won_ : bool
        In the last epoch the discriminator told real from generated rows almost perfectly
        (mean D(x) > 0.9 on real rows and < 0.1 on generated ones); a
        :class:`~latentspace.exceptions.ConvergenceWarning` says so.

    References
    ----------
    Goodfellow et al. (2014), Generative adversarial nets. Radford, Metz & Chintala (2016),
    Unsupervised representation learning with deep convolutional GANs. Karras et al. (2018),
    Progressive growing of GANs. Mescheder, Geiger & Nowozin (2018), Which training methods
    for GANs do actually converge? Karras et al. (2020), Analyzing and improving the image
    quality of StyleGAN.

    Examples
    --------
    >>> import numpy as np
    >>> from latentspace import GAN
    >>> X = np.random.default_rng(0).normal(size=(64, 2))
    >>> gan = GAN(latent_dim=2, generator_sizes=(64,), discriminator_sizes=(64,),
    ...           max_epochs=300, random_state=0).fit(X)  # 300 steps: about a second
    >>> gan.sample(10, random_state=0).shape
    (10, 2)
    >>> gan.discriminate(X).shape
    (64,)
    """

    # fitted attributes a saved file may hold: kind, symbolic shape (see latentspace._schema)
    _fitted_schema = {
        **_NeuralModel._fitted_schema, "output_activation_": ("str?", None),
        "r1_penalty_": ("float", None), "discriminator_won_": ("bool", None),
        "mode_collapse_": ("bool", None),
    }

    def __init__(
        self,
        latent_dim: int = 2,
        *,
        generator_sizes: Sequence[int] = (256, 512),
        discriminator_sizes: Sequence[int] = (512, 256),
        activation: str = "leaky_relu",
        discriminator_activation: str = "leaky_relu",
        output_activation: str | None = "auto",
        minibatch_std: bool = True,
        r1_penalty: str | float = "auto",
        k_steps: int = 1,
        loss: str = "non_saturating",
        noise: str = "gaussian",
        reference_modes: ArrayLike | None = None,
        reference_std: float | None = None,
        discriminator_learning_rate: float | None = None,
        generator: torch.nn.Module | None = None,
        discriminator: torch.nn.Module | None = None,
        max_epochs: int | str = "auto",
        batch_size: int | str = 64,
        optimizer: str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer] = "adam",
        optimizer_kwargs: dict[str, Any] | None = None,
        learning_rate: float = 2e-4,
        learning_rate_schedule: str = "constant",
        momentum: float = 0.5,
        weight_decay: float = 0.0,
        grad_clip: float | None = None,
        checkpoint_path: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        callbacks: Sequence[Any] | None = None,
        warm_start: bool = False,
        device: str = "cpu",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.latent_dim = latent_dim
        self.generator_sizes = generator_sizes
        self.discriminator_sizes = discriminator_sizes
        self.activation = activation
        self.discriminator_activation = discriminator_activation
        self.output_activation = output_activation
        self.minibatch_std = minibatch_std
        self.r1_penalty = r1_penalty
        self.k_steps = k_steps
        self.loss = loss
        self.noise = noise
        self.reference_modes = reference_modes
        self.reference_std = reference_std
        self.discriminator_learning_rate = discriminator_learning_rate
        self.generator = generator
        self.discriminator = discriminator
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.optimizer_kwargs = optimizer_kwargs
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    _network_kinds = ("mlp",)
    _schedules = ("constant", "cosine")  # no objective whose plateaus could steer the rate
    _init = "torch"
    network = "mlp"  # GAN networks are MLPs (not a hyperparameter)

    # --- configuration ----------------------------------------------------------------
    def _check_params(self) -> None:
        check_int("latent_dim", self.latent_dim, low=1, high=MAX_WIDTH)
        self._check_sizes("generator_sizes", self.generator_sizes)
        self._check_sizes("discriminator_sizes", self.discriminator_sizes)
        self._check_activation("activation", self.activation)
        self._check_activation("discriminator_activation", self.discriminator_activation)
        if self.output_activation != "auto":
            self._check_activation("output_activation", self.output_activation)
        if not isinstance(self.minibatch_std, (bool, np.bool_)):
            raise ValueError(f"minibatch_std must be True or False, got {self.minibatch_std!r}.")
        if self.r1_penalty != "auto":
            check_float("r1_penalty", self.r1_penalty, low=0.0)
        check_int("k_steps", self.k_steps, low=1)
        check_choice("loss", self.loss, ("non_saturating", "minimax"))
        check_choice("noise", self.noise, ("gaussian", "uniform"))
        if self.discriminator_learning_rate is not None:
            check_float("discriminator_learning_rate", self.discriminator_learning_rate,
                        low=0.0, low_open=True)
        if (self.reference_modes is None) != (self.reference_std is None):
            raise ParameterError(
                "reference_modes and reference_std go together: give both (mode centres and "
                "their standard deviation) or neither."
            )
        if self.reference_std is not None:
            check_float("reference_std", self.reference_std, low=0.0, low_open=True)

    def _fit_data(self, X):
        data, val = super()._fit_data(X)
        if self.reference_modes is not None:
            modes = check_param_array("reference_modes", self.reference_modes,
                                      f"(n_modes, {self.n_features_in_})")
            if modes.ndim != 2 or modes.shape[1] != self.n_features_in_ or not np.isfinite(modes).all():
                raise ParameterError(
                    f"reference_modes must be a finite (n_modes, {self.n_features_in_}) array, got "
                    f"shape {modes.shape}."
                )
        # "auto" settings follow the data: in [0, 1] (images) or not; streamed data is not
        # scanned up front and counts as unbounded
        unit = False
        if isinstance(data, torch.Tensor):
            lo, hi = (float(v) for v in torch.aminmax(data))
            unit = lo >= 0.0 and hi <= 1.0
        out = self.output_activation
        if out == "auto":
            out = "sigmoid" if unit else None
        if self._user_modules():
            out = None  # the user's generator has its own output
        self._g_output = out  # output_activation_ once the fit succeeds
        self._r1 = (_R1_IMAGES if unit else 0.0) if self.r1_penalty == "auto" else \
            float(self.r1_penalty)
        return data, val

    def _n_epochs(self, data) -> int:
        if self.max_epochs != "auto":
            return int(self.max_epochs)
        if isinstance(data, torch.Tensor):
            steps = math.ceil(data.shape[0] / self._batch_size(data))  # batches per epoch
        else:
            try:
                steps = len(data)  # a DataLoader's batches per epoch
            except TypeError:
                return AUTO_MIN_EPOCHS
        # k_steps batches make one generator step
        k = int(self.k_steps)
        epochs = min(AUTO_MIN_EPOCHS, math.ceil(AUTO_MAX_STEPS * k / steps))
        return max(epochs, math.ceil(AUTO_MIN_STEPS * k / steps))

    _module_params = ("generator", "discriminator")

    def _build_network(self, n_features: int):
        if self._user_modules():
            return _nets.GeneratorDiscriminator(self._user_copy("generator"),
                                                self._user_copy("discriminator"))
        g = _nets.mlp((self.latent_dim, *self._check_sizes("generator_sizes", self.generator_sizes),
                       n_features), self.activation, getattr(self, "_g_output", None))
        d = _nets.discriminator_mlp(
            (n_features, *self._check_sizes("discriminator_sizes", self.discriminator_sizes), 1),
            self.discriminator_activation, bool(self.minibatch_std))
        return _nets.GeneratorDiscriminator(g, d)

    @torch.no_grad()
    def _init_from_data(self, network, data) -> None:
        # a sigmoid G starts at the data's mean image: output biases logit(mean), clipped
        if getattr(self, "_g_output", None) != "sigmoid" or not isinstance(data, torch.Tensor):
            return
        last = [m for m in network.generator.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias.copy_(torch.logit(data.mean(0).clamp(1e-3, 1 - 1e-3)))

    def _check_modules(self, net, x) -> None:
        n, d, L = x.shape[0], int(self.n_features_in_), int(self.latent_dim)
        gen = torch.Generator(device=self._device())  # its own: the fit's stream is untouched
        gen.manual_seed(0)
        z = self._noise(n, gen)
        fake = self._probe("generator", net.generator, z, f"noise ({n}, {L}) to rows ({n}, {d})")
        self._expect_shape("generator", fake, (n, d), tuple(z.shape))
        for what, rows in (("real", x), ("generated", fake)):
            logit = self._probe("discriminator", net.discriminator, rows,
                                f"rows ({n}, {d}) to logits ({n}, 1)")
            self._expect_shape(f"discriminator (on {what} rows)", logit, (n, 1), tuple(rows.shape))

    def _before_restore(self) -> None:
        self._g_output = getattr(self, "output_activation_", None)

    def _on_warm_start(self) -> None:
        self._g_output = getattr(self, "output_activation_", None)

    def _make_optimizers(self, net) -> dict:
        lr_d = self.learning_rate if self.discriminator_learning_rate is None else \
            self.discriminator_learning_rate
        return {
            "discriminator": make_optimizer(net.discriminator.parameters(), self.optimizer,
                                            lr_d, self.momentum, self.weight_decay,
                                            self.optimizer_kwargs),
            "generator": make_optimizer(net.generator.parameters(), self.optimizer,
                                        self.learning_rate, self.momentum, self.weight_decay,
                                        self.optimizer_kwargs),
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
        gamma = float(getattr(self, "_r1", 0.0 if self.r1_penalty == "auto" else self.r1_penalty))
        d_params = [p for p in D.parameters() if p.requires_grad]  # a user's frozen ones stay

        def step(x, ctx):
            n = x.shape[0]
            # discriminator: ascend V, i.e. descend -[log D(x) + log(1 - D(G(z)))]
            with torch.no_grad():  # no graph through G: its gradient is not needed here
                fake = G(self._noise(n, ctx.generator))
            lazy_r1 = gamma > 0 and ctx.step % _R1_EVERY == 0
            if lazy_r1:
                x = x.detach().requires_grad_(True)
            logit_real, logit_fake = D(x), D(fake)  # (n, 1)
            loss_d = F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()
            out = {"d_real": torch.sigmoid(logit_real).mean().detach(),
                   "d_fake": torch.sigmoid(logit_fake).mean().detach()}
            if lazy_r1:
                # R1 (Mescheder et al., 2018, eq. 9): (γ/2) E_x ||∇_x logit D(x)||² on real
                # rows, every _R1_EVERY-th step with weight × _R1_EVERY (lazy, Karras et al.
                # 2020, §B): the same penalty on average at a fraction of the cost
                (grad,) = torch.autograd.grad(logit_real.sum(), x, create_graph=True)
                r1 = grad.square().sum(1).mean()
                ctx.update(loss_d + 0.5 * gamma * _R1_EVERY * r1, "discriminator")
            else:
                ctx.update(loss_d, "discriminator")
            out["loss_d"] = loss_d.detach()
            if (ctx.step + 1) % k == 0:
                # generator, on fresh noise: minimax E log(1 - D(G(z))) = -E softplus(logit);
                # non-saturating -E log D(G(z)) = E softplus(-logit)
                # D's weights are constants of this step: no gradient for them (the next D
                # step would discard it), only through D's input to G -- the same update,
                # about a tenth less arithmetic on MNIST
                for p in d_params:
                    p.requires_grad_(False)
                try:
                    logit = D(G(self._noise(n, ctx.generator)))
                    loss_g = -F.softplus(logit).mean() if minimax else F.softplus(-logit).mean()
                    ctx.update(loss_g, "generator")
                finally:
                    for p in d_params:
                        p.requires_grad_(True)
                out["loss_g"] = loss_g.detach()
            return out

        return step

    def _on_epoch_end(self, net, X_train, generator):
        from ..metrics import mean_pairwise_distance, mode_coverage

        ref_spread = None
        if X_train is not None and X_train.shape[0] >= 2:
            # a fixed, evenly spaced subset of the training rows: no random draw
            idx = torch.linspace(0, X_train.shape[0] - 1, min(_DIVERSITY_ROWS, X_train.shape[0]))
            ref_spread = mean_pairwise_distance(X_train[idx.round().long().to(X_train.device)])
            if not ref_spread > 0:
                ref_spread = None  # all-equal training rows: no spread to compare with
        if ref_spread is None and self.reference_modes is None:
            return None
        # monitoring draws from its own fixed generator so that it never shifts the fit's
        n_draw = max(_DIVERSITY_ROWS, _MONITOR_SAMPLES if self.reference_modes is not None else 0)

        def hook(record):
            samples = net.generator(self._noise(n_draw, self._monitor_gen()))
            if ref_spread is not None:
                record["diversity"] = mean_pairwise_distance(samples[:_DIVERSITY_ROWS]) / ref_spread
            if self.reference_modes is not None:
                cov = mode_coverage(samples[:_MONITOR_SAMPLES].cpu().numpy(),
                                    self.reference_modes, self.reference_std)
                record["modes_covered"] = cov["modes_covered"]
                record["high_quality"] = cov["high_quality"]

        return hook

    def _monitor_gen(self):
        gen = torch.Generator(device=self._device())
        gen.manual_seed(0)
        return gen

    def _after_fit(self, net, X_train, generator) -> None:
        self.output_activation_ = getattr(self, "_g_output", None)
        self.r1_penalty_ = float(getattr(self, "_r1", 0.0))
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
        reasons = []
        diversity = last.get("diversity")
        if diversity is not None and diversity < COLLAPSE_DIVERSITY:
            reasons.append(
                f"the samples' mean pairwise distance is {diversity:.2f} of the training rows' "
                f"(below {COLLAPSE_DIVERSITY}: less varied than one class of typical image data)")
        if self.reference_modes is not None:
            n_modes = len(np.asarray(self.reference_modes))
            if last.get("modes_covered", n_modes) < n_modes:
                reasons.append(
                    f"generated samples cover {last['modes_covered']} of {n_modes} reference "
                    f"modes ({100 * last['high_quality']:.0f}% of samples within 3σ of a mode)")
        self.mode_collapse_ = bool(reasons)
        if reasons:
            warnings.warn(
                "mode collapse: " + "; ".join(reasons) + ". See history_ for the per-epoch "
                "trace. Try more epochs, minibatch_std=True, r1_penalty > 0 on images, or a "
                "lower learning_rate.",
                ConvergenceWarning,
                stacklevel=5,
            )

    # --- public API -------------------------------------------------------------------
    def fit(self, X: ArrayLike | DataLoader, y: object = None, *,
            resume: str | os.PathLike[str] | None = None) -> Self:
        """Train G and D on ``X`` by Algorithm 1 of Goodfellow et al. (2014).

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
        self : GAN
            The fitted estimator.
        """
        return self._fit(X, resume=resume)

    def sample(self, n_samples: int = 1, *,
               random_state: int | np.random.RandomState | None = None) -> ArrayOrTensor:
        """Draw x = G(z), z ~ p(z).

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.
        random_state : int, RandomState or None, default=None
            None derives the draw from the estimator's ``random_state`` (repeatable).

        Returns
        -------
        X : ndarray or tensor of shape (n_samples, n_features)
            In the fit's kind, device and dtype (numpy in, numpy out; a tensor in, a tensor
            out; float32 numpy after a DataLoader fit or ``latentspace.load``).
        """
        self._check_fitted()
        n_samples = self._check_n_samples(n_samples)
        gen = self._rng_for_call(random_state)
        self.network_.eval()
        with torch.no_grad():
            return self._sample_out(self.network_.generator(self._noise(n_samples, gen)))

    def discriminate(self, X: ArrayLike) -> ArrayOrTensor:
        """D(x), the discriminator's probability that each row is real.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Rows to judge.

        Returns
        -------
        proba : ndarray or tensor of shape (n_samples,)
            In (0, 1); in ``X``'s kind and float dtype.
        """
        Xt, kind = self._input(X)
        D = self.network_.discriminator
        return self._out(self._infer(lambda x: torch.sigmoid(D(x))[:, 0], Xt), kind)

    @available_if(lambda self: False)
    def score(self, X: ArrayLike, y: object = None) -> float:  # pragma: no cover - never available
        """A GAN defines no likelihood; see :func:`latentspace.metrics.parzen_window_score`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Unused: the method is never available.
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        score : float
            Never returned; the attribute does not exist on a GAN.
        """
        raise AttributeError("GAN has no likelihood to score")
