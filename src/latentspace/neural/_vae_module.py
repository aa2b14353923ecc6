"""The VAE's network as one ``nn.Module``: encode, reparameterize, decode, and the ELBO's parts.

Encoder q(z|x) = N(μ(x), diag σ²(x)), prior p(z) = N(0, I), decoder p(x|z) Bernoulli (from
logits) or Gaussian (mean from the network; variance shared, per feature, or fixed). For one
reparameterised sample z = μ + σ ⊙ ε, ε ~ N(0, I) (Kingma & Welling 2014, eq. 4),

    ELBO(x) = log p(x|z) − KL(q(z|x) ‖ p(z)),   KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)

(K&W eq. 3 and appendix B), and Burda et al.'s (2016, eq. 8) importance-weighted bound
log (1/K) Σ_k p(x, z_k) / q(z_k|x) rises with K towards log p(x). The estimator
(:class:`latentspace.neural.VAE`) keeps the scikit-learn plumbing around this module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._nets import EncoderDecoder

__all__ = ["VAEModule"]

_LOG_2PI = math.log(2 * math.pi)
_MIN_LOG_VAR = math.log(1e-6)  # floor of a learned decoder variance (constant features)


class VAEModule(EncoderDecoder):
    """Encoder and decoder networks of a VAE with the data's fixed standardisation.

    Parameters
    ----------
    encoder : nn.Module
        Rows (n, D) -> (n, 2L): μ then log σ² (or a pair of (n, L) tensors).
    decoder : nn.Module
        Codes (n, L) -> (n, D): logits (Bernoulli) or means (Gaussian).
    likelihood : {"bernoulli", "gaussian"}
    decoder_variance : "shared", "feature" or float
        A Gaussian decoder's variance: learned (one shared or one per feature, then held in
        ``log_var``) or fixed.
    n_features : int
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, likelihood: str,
                 decoder_variance, n_features: int):
        learned = likelihood == "gaussian" and isinstance(decoder_variance, str)
        n_log_var = (1 if decoder_variance == "shared" else n_features) if learned else 0
        super().__init__(encoder, decoder, n_log_var, n_features,
                         rescale_output=likelihood == "gaussian")
        self.likelihood = likelihood
        self.decoder_variance = decoder_variance

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) of rows x (n, D) -> μ, log σ², each (n, L): the encoder's (n, 2L) output
        split in two, or the pair it returns."""
        out = super().encode(x)
        if isinstance(out, (tuple, list)):
            return out[0], out[1]
        mu, log_var = out.chunk(2, dim=-1)
        return mu, log_var

    @staticmethod
    def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """z = μ + σ ⊙ ε (K&W eq. 4): differentiable in μ and log σ²."""
        return mu + torch.exp(0.5 * log_var) * eps

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder means E[x|z] (probabilities for a Bernoulli decoder): (n, D)."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def decoder_log_var(self, like: torch.Tensor) -> torch.Tensor:
        """log σ² of a Gaussian decoder: the learned one (floored) or the fixed one."""
        if self.log_var is not None:
            return self.log_var.clamp_min(_MIN_LOG_VAR)
        return torch.full((), math.log(float(self.decoder_variance)), device=like.device,
                          dtype=like.dtype)

    def log_px(self, out: torch.Tensor, x: torch.Tensor, exact: bool = True) -> torch.Tensor:
        """log p(x|z) summed over features for decoder outputs ``out`` -> out.shape[:-1]; in
        float64 when ``exact`` (scores), else in the network's precision (training losses)."""
        if self.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none")
        else:
            log_var = self.decoder_log_var(out)
            nll = 0.5 * ((x - out).square() * torch.exp(-log_var) + log_var + _LOG_2PI)
        # summed before negating: the sign flip touches (n,) values, not (n, d)
        return -(nll.double().sum(-1) if exact else nll.sum(-1))

    @staticmethod
    def kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """KL(N(μ, σ²) ‖ N(0, I)) summed over latent units -> (n,)."""
        return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(-1)

    def elbo_parts(self, x: torch.Tensor, generator: torch.Generator, exact: bool = True):
        """(log p(x|z) for one reparameterised z, KL) of rows x -> two (n,) tensors."""
        mu, log_var = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        log_px = self.log_px(self.decode(self.reparameterize(mu, log_var, eps)), x, exact)
        kl = self.kl(mu, log_var)
        return log_px, kl.double() if exact else kl

    def iw_bound(self, x: torch.Tensor, K: int, generator: torch.Generator,
                 pairs: int = 16384) -> torch.Tensor:
        """Importance-weighted bound of each row of x with K samples -> (n,) float64, in
        blocks of at most ``pairs`` (sample, row) pairs per decoder pass."""
        n = x.shape[0]
        rows = max(1, min(n, pairs // K))  # data rows per block
        k_chunk = max(1, min(K, pairs // rows))  # importance samples per decoder pass
        result = torch.empty(n, dtype=torch.float64, device=x.device)
        for i in range(0, n, rows):
            xb = x[i : i + rows]  # (b, d)
            mu, log_var = self.encode(xb)  # (b, L)
            acc = torch.full((xb.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
            for k0 in range(0, K, k_chunk):
                k = min(k_chunk, K - k0)
                eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device,
                                  dtype=mu.dtype)
                z = self.reparameterize(mu, log_var, eps)  # (k, b, L)
                out = self.decode(z.reshape(-1, z.shape[-1])).reshape(k, xb.shape[0], -1)
                log_px = self.log_px(out, xb)  # (k, b)
                log_pz = -0.5 * (z.square() + _LOG_2PI).double().sum(-1)
                log_qz = -0.5 * (eps.square() + log_var + _LOG_2PI).double().sum(-1)
                acc = torch.logaddexp(acc, torch.logsumexp(log_px + log_pz - log_qz, dim=0))
            result[i : i + rows] = acc - math.log(K)
        return result
