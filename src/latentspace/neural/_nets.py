"""Network builders shared by the autoencoders, the VAE and the GAN.

Two families: multilayer perceptrons (the lecture's default) and a small convolutional
encoder/decoder for 28×28 single-channel images. Networks are created on the ``meta`` device
and then initialised from the fit's own ``torch.Generator``, so building one never touches
torch's global random state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "mlp", "conv_encoder", "conv_decoder", "materialize"]

# name -> module factory; None and "linear"/"identity" mean no non-linearity
ACTIVATIONS = {
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


def activation_names() -> list[str]:
    return sorted(ACTIVATIONS)


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
def materialize(module: nn.Module, device: torch.device, generator: torch.Generator) -> nn.Module:
    """Move a ``meta``-device module to ``device`` and initialise it from ``generator``.

    Weights and biases of linear and convolutional layers are drawn from
    U(-1/√fan_in, 1/√fan_in), PyTorch's default scale, but from our generator.
    """
    module = module.to_empty(device=device)
    layer_params: set[int] = set()
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight[0].numel()  # torch's convention: dim 1 × receptive field
            bound = 1.0 / math.sqrt(max(fan_in, 1))
            for p in m.parameters(recurse=False):
                nn.init.uniform_(p, -bound, bound, generator=generator)
                layer_params.add(id(p))
    for p in module.parameters():
        if id(p) not in layer_params:
            p.zero_()  # free parameters (e.g. log-variances) start at 0
    for b in module.buffers():
        b.zero_()
    return module


def build(factory, device: torch.device, generator: torch.Generator) -> nn.Module:
    """Call ``factory()`` on the meta device, then :func:`materialize` it."""
    with torch.device("meta"):
        module = factory()
    return materialize(module, device, generator)


class EncoderDecoder(nn.Module):
    """An encoder, a decoder and, optionally, a free log-variance vector (Gaussian decoders)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, n_log_var: int = 0):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.log_var = nn.Parameter(torch.zeros(n_log_var)) if n_log_var else None


class GeneratorDiscriminator(nn.Module):
    """The two networks of a GAN."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator


def encoder_decoder_pair(kind, n_features, latent_dim, enc_out, hidden_sizes, activation,
                         code_activation=None, n_log_var=0) -> EncoderDecoder:
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
    return EncoderDecoder(enc, dec, n_log_var)
