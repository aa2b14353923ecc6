"""Network builders shared by the autoencoders, the VAE and the GAN.

Two families: multilayer perceptrons (the lecture's default) and a small convolutional
encoder/decoder for 28×28 single-channel images. Networks are created on the ``meta`` device
and then initialised from the fit's own ``torch.Generator``, so building one never touches
torch's global random state.

Encoder/decoder pairs see their data standardised: the encoder reads (x - m) / s, with m the
training mean of each feature and s one scale for all of them (the root mean variance), and
a decoder of real values answers in the data's units, s · out + m. Both are fixed affine maps,
so the family of functions a network can represent does not change (a linear autoencoder is
still any rank-L affine map), but its optimiser starts from centred, unit-scale inputs whatever
the data's offset and units: without the centring a code unit is first spent on the mean, and
the slow escape from that saddle is what kept the linear autoencoder away from PCA.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "mlp", "conv_encoder", "conv_decoder", "materialize",
           "check_float32_range", "check_finite_output", "check_network_memory"]

_F32 = torch.finfo(torch.float32)

# name -> module factory; None and "linear"/"identity" mean no non-linearity
# name -> a factory of the activation module (a class, or a lambda for a set slope)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "softplus": nn.Softplus,
    "identity": nn.Identity,
    "linear": nn.Identity,
}

IMAGE_SIDE = 28  # the convolutional option is for 28×28 single-channel images


def check_float32_range(X: torch.Tensor, owner: str, name: str = "X") -> None:
    """Raise ``ValueError`` ("rescale") when the networks' float32 cannot hold ``X``.

    The networks compute in float32: values above its largest number (3.4e38) become
    infinite, and data whose largest |x| lies below its smallest normal number (1.2e-38)
    vanish or keep only a few significant bits. Either way training and queries would work
    on other numbers than the caller's, so the data are refused before any step. NaN and
    infinity are the input checks' concern (they are let through here).

    Parameters
    ----------
    X : (n_samples, n_features) tensor, any float dtype
    owner : str
        The estimator's class name, for the message.
    name : str
        What ``X`` is called in the message (``"X"``, ``"Z"``, ``"a batch"``).
    """
    from .._math import abs_max

    amax = abs_max(X)
    if amax != amax or math.isinf(amax):
        return
    if amax > _F32.max:
        raise ValueError(
            f"{name} holds values up to {amax:.3g} in absolute value, beyond the largest "
            f"float32 number ({_F32.max:.3g}) that {owner}'s network computes with; rescale "
            f"{name} (e.g. sklearn.preprocessing.StandardScaler, or divide by a constant)."
        )
    if 0 < amax < _F32.tiny:
        raise ValueError(
            f"{name}'s largest absolute value is {amax:.3g}, below the smallest normal float32 "
            f"number ({_F32.tiny:.3g}) that {owner}'s network computes with, so the data would "
            f"vanish or lose their precision; rescale {name} (e.g. "
            "sklearn.preprocessing.StandardScaler, or multiply by a constant)."
        )


def check_finite_output(out: torch.Tensor, owner: str, what: str) -> torch.Tensor:
    """Raise ``ValueError`` naming the first row where a query's float32 result is not
    finite (inputs far outside the training data's range overflow the network); else
    return ``out``."""
    ok = torch.isfinite(out)
    if bool(ok.all()):
        return out
    rows = ok.reshape(out.shape[0], -1).all(1) if out.dim() else ok.reshape(1)
    row = int((~rows).nonzero()[0, 0])
    raise ValueError(
        f"{owner}'s {what} overflowed float32 (a non-finite value) for row {row}: the input "
        "lies far outside the range of the training data; rescale it as the training data "
        "were (e.g. with the same sklearn.preprocessing.StandardScaler)."
    )


def _act(name) -> nn.Module:
    return nn.Identity() if name is None else ACTIVATIONS[name]()


def mlp(sizes, activation, out_activation=None) -> nn.Sequential:
    """A stack of ``Linear`` layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    ``activation`` follows every hidden layer; ``out_activation`` (None: none) follows the last.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        name = out_activation if last else activation
        if name is not None and name not in ("identity", "linear"):
            layers.append(_act(name))
    return nn.Sequential(*layers)


class _Unflatten(nn.Module):
    def forward(self, x):  # (n, 784) -> (n, 1, 28, 28)
        return x.reshape(x.shape[0], 1, IMAGE_SIDE, IMAGE_SIDE)


def conv_encoder(n_out: int, activation="relu", channels=(32, 64)) -> nn.Sequential:
    """(n, 784) -> (n, n_out): two stride-2 convolutions (28 -> 14 -> 7) and a linear head."""
    c1, c2 = channels
    return nn.Sequential(
        _Unflatten(),
        nn.Conv2d(1, c1, 4, stride=2, padding=1),  # (n, c1, 14, 14)
        _act(activation),
        nn.Conv2d(c1, c2, 4, stride=2, padding=1),  # (n, c2, 7, 7)
        _act(activation),
        nn.Flatten(),
        nn.Linear(c2 * 7 * 7, n_out),
    )


def conv_decoder(n_in: int, activation="relu", channels=(64, 32)) -> nn.Sequential:
    """(n, n_in) -> (n, 784): a linear layer to (c, 7, 7) and two stride-2 transposed convolutions."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Linear(n_in, c1 * 7 * 7),
        _act(activation),
        nn.Unflatten(1, (c1, 7, 7)),
        nn.ConvTranspose2d(c1, c2, 4, stride=2, padding=1),  # (n, c2, 14, 14)
        _act(activation),
        nn.ConvTranspose2d(c2, 1, 4, stride=2, padding=1),  # (n, 1, 28, 28)
        nn.Flatten(),
    )


@torch.no_grad()
def materialize(module: nn.Module, device: torch.device, generator: torch.Generator,
                init: str = "torch") -> nn.Module:
    """Move a ``meta``-device module to ``device`` and initialise it from ``generator``.

    ``init="torch"``: weights and biases of linear and convolutional layers are drawn from
    U(-1/√fan_in, 1/√fan_in), PyTorch's default scale, but from our generator.
    ``init="glorot"``: weights from U(-a, a), a = √(6 / (fan_in + fan_out)) (Glorot & Bengio,
    2010; scikit-learn's MLP), biases 0. Encoder/decoder pairs use it: PyTorch's default
    gives a decoder layer L -> d columns of norm √(d / 3L) against encoder rows of norm 0.6,
    an imbalance of the two factors that slows their training by an order of magnitude.
    Other parameters start at 0; modules with ``reset_buffers()`` set their buffers, the
    others' buffers start at 0.
    """
    module = module.to_empty(device=device)
    layer_params: set[int] = set()
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            w = m.weight
            receptive = w[0, 0].numel()
            if init == "glorot":
                bound = math.sqrt(6.0 / max((w.shape[0] + w.shape[1]) * receptive, 1))
                nn.init.uniform_(w, -bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            else:
                bound = 1.0 / math.sqrt(max(w.shape[1] * receptive, 1))  # torch's fan_in
                for p in m.parameters(recurse=False):
                    nn.init.uniform_(p, -bound, bound, generator=generator)
            layer_params.update(id(p) for p in m.parameters(recurse=False))
    for p in module.parameters():
        if id(p) not in layer_params:
            p.zero_()  # free parameters (e.g. log-variances) start at 0
    for b in module.buffers():
        b.zero_()
    for m in module.modules():
        reset = getattr(m, "reset_buffers", None)
        if callable(reset):
            reset()
    return module


def check_network_memory(module: nn.Module, device, *, copies: int, rows: int,
                         owner: str) -> None:
    """Refuse, before anything is allocated, a network too large for ``device``'s memory.

    The estimate (float32): ``copies`` × the parameters (weights; with their gradients and
    Adam's two moment averages in a fit, 4) plus each linear layer's outputs for ``rows``
    rows, twice (activations and their gradients). ``module`` lives on the meta device, so
    counting costs nothing however large the layer sizes are.
    """
    from .._memory import check_allocation

    n_params = float(sum(p.numel() for p in module.parameters()))
    widths = float(sum(m.out_features for m in module.modules() if isinstance(m, nn.Linear)))
    nbytes = 4.0 * (copies * n_params + 2.0 * rows * widths)
    check_allocation(
        nbytes, f"the network of {owner} ({n_params:.3g} parameters, {rows} rows a batch)",
        "choose a smaller latent_dim, smaller hidden layer sizes or a smaller batch_size", device=device)


def size_params(est) -> str:
    """``"latent_dim=2, hidden_sizes=(400,), batch_size=64"``: the hyperparameters that set
    a network's memory, for messages."""
    params = est.get_params(deep=False)
    return ", ".join(f"{k}={v!r}" for k, v in params.items()
                     if k in ("latent_dim", "batch_size") or k.endswith("_sizes"))


def build(factory, device: torch.device, generator: torch.Generator,
          init: str = "torch", *, copies: int = 1, rows: int = 0,
          owner: str = "the model") -> nn.Module:
    """Call ``factory()`` on the meta device, check that it fits in ``device``'s memory
    (:func:`check_network_memory`), then :func:`materialize` it."""
    with torch.device("meta"):
        module = factory()
    check_network_memory(module, device, copies=copies, rows=rows, owner=owner)
    return materialize(module, device, generator, init)


class EncoderDecoder(nn.Module):
    """An encoder, a decoder and, optionally, a free log-variance vector (Gaussian decoders),
    with the fixed standardisation of the data described in the module docstring.

    Buffers ``shift`` (n_features,) and ``scale`` () hold m and s; :meth:`encode` and
    :meth:`decode` apply them, ``encoder`` and ``decoder`` are the bare networks.
    ``rescale_output`` marks decoders of real values (squared error, Gaussian likelihood);
    logits of Bernoulli decoders are not rescaled.
    """

    shift: torch.Tensor  # registered buffers, declared for the type checker
    scale: torch.Tensor

    def __init__(self, encoder: nn.Module, decoder: nn.Module, n_log_var: int = 0,
                 n_features: int = 0, rescale_output: bool = False):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.log_var = nn.Parameter(torch.zeros(n_log_var)) if n_log_var else None
        self.rescale_output = bool(rescale_output)
        self.register_buffer("shift", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(()))

    def reset_buffers(self) -> None:
        """The identity standardisation (m = 0, s = 1)."""
        self.shift.zero_()
        self.scale.fill_(1.0)

    @torch.no_grad()
    def standardize_from(self, X: torch.Tensor, block: int = 8192) -> None:
        """Set m and s from the rows of ``X`` (n, n_features), in float64 and in row blocks."""
        n = X.shape[0]
        total = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
        for i in range(0, n, block):
            total += X[i : i + block].sum(0, dtype=torch.float64)
        mean = total / n
        sq = torch.zeros((), dtype=torch.float64, device=X.device)
        for i in range(0, n, block):
            sq += (X[i : i + block].double() - mean).square().sum()
        var = float(sq) / (n * X.shape[1])
        scale = math.sqrt(var) if math.isfinite(var) and var > 0 else 1.0
        self.shift.copy_(mean.to(self.shift.dtype))
        self.scale.fill_(scale)

    def encode(self, x: torch.Tensor) -> Any:
        """The encoder's output for rows ``x`` in the data's units: a tensor (n, L) for the
        built-in networks; whatever a user's encoder returns (a VAE's may give a pair)."""
        return self.encoder((x - self.shift) / self.scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output for codes ``z``: values in the data's units, or logits."""
        out = self.decoder(z)
        return out * self.scale + self.shift if self.rescale_output else out

    @staticmethod
    def output_layer_of(net: nn.Module) -> nn.Linear | None:
        """The last layer of ``net`` if it is a ``Linear`` with a bias (MLP and conv encoders,
        MLP decoders), else None."""
        last = None
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                last = m
        return last if isinstance(last, nn.Linear) and last.bias is not None else None

    def output_layer(self) -> nn.Linear | None:
        """The decoder's last layer if it has a bias per feature (MLP decoders), else None."""
        last = self.output_layer_of(self.decoder)
        return last if last is not None and last.bias.shape == self.shift.shape else None


class MinibatchStd(nn.Module):
    """Append one feature: the batch's mean standard deviation (Karras et al., 2018, §3).

    For a batch h of shape (n, k) it returns (n, k + 1), the extra column being
    mean_j std_i(h_ij) (population std over the batch, averaged over the k features), the same
    for every row. A discriminator that sees it can tell a batch of near-identical generated
    rows from a varied real batch, so a collapsing generator is penalised at once. A batch of
    one row gets 0.
    """

    def forward(self, h):  # (n, k) -> (n, k + 1)
        if h.shape[0] < 2:
            s = h.new_zeros(())
        else:
            s = (h.var(0, unbiased=False) + 1e-8).sqrt().mean()
        return torch.cat([h, s.expand(h.shape[0], 1)], 1)


def discriminator_mlp(sizes, activation, minibatch_std: bool) -> nn.Sequential:
    """The MLP ``sizes[0] -> ... -> sizes[-1]`` (no output non-linearity: logits), with a
    :class:`MinibatchStd` feature before the last layer when ``minibatch_std``."""
    if not minibatch_std:
        return mlp(sizes, activation, None)
    body = mlp(sizes[:-1], activation, activation)  # every hidden layer, activated
    return nn.Sequential(*body, MinibatchStd(), nn.Linear(sizes[-2] + 1, sizes[-1]))


class GeneratorDiscriminator(nn.Module):
    """The two networks of a GAN."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator


def encoder_decoder_pair(kind, n_features, latent_dim, enc_out, hidden_sizes, activation,
                         code_activation=None, n_log_var=0,
                         rescale_output=False) -> EncoderDecoder:
    """Encoder ``n_features -> enc_out`` and decoder ``latent_dim -> n_features``.

    ``kind='mlp'`` mirrors ``hidden_sizes`` in the decoder; ``kind='conv'`` uses the small
    convolutional pair for 28×28 images (``hidden_sizes`` is then unused).
    """
    if kind == "conv":
        enc = conv_encoder(enc_out, activation or "relu")
        if code_activation is not None:
            enc.append(_act(code_activation))
        dec = conv_decoder(latent_dim, activation or "relu")
    else:
        hs = tuple(hidden_sizes)
        enc = mlp((n_features, *hs, enc_out), activation, code_activation)
        dec = mlp((latent_dim, *hs[::-1], n_features), activation, None)
    return EncoderDecoder(enc, dec, n_log_var, n_features, rescale_output)


def make_mlp(sizes: Sequence[int], activation: str = "relu", *, generator: torch.Generator,
             device: str | torch.device = "cpu",
             out_activation: str | None = None) -> nn.Sequential:
    """A multilayer perceptron through the layer widths ``sizes``, initialised from ``generator``.

    PyTorch's default scale, U(-1/√fan_in, 1/√fan_in), drawn from the given generator rather
    than the global one, so that building it neither reads nor moves the global random state.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first: ``(n_in, hidden..., n_out)``.
    activation : str, default="relu"
        Hidden non-linearity (e.g. ``"relu"``, ``"leaky_relu"``, ``"tanh"``).
    generator : torch.Generator
        The source of the initial weights.
    device : str or torch.device, default="cpu"
        Where the parameters live.
    out_activation : str or None, default=None
        Non-linearity after the last layer (None: none).

    Returns
    -------
    net : torch.nn.Sequential
        Maps (n, sizes[0]) to (n, sizes[-1]).
    """
    net = build(lambda: mlp(tuple(int(s) for s in sizes), activation, out_activation),
                torch.device(device), generator)
    return cast(nn.Sequential, net)  # build returns the module mlp() made, a Sequential
