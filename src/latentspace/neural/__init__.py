"""Neural latent-variable models on one trainer: autoencoders, the VAE and the GAN."""

from ._autoencoder import Autoencoder
from ._distributed import init_distributed
from ._gan import GAN
from ._trainer import StepContext, TrainResult, load_checkpoint, train
from ._vae import VAE

__all__ = [
    "Autoencoder",
    "GAN",
    "StepContext",
    "TrainResult",
    "VAE",
    "init_distributed",
    "load_checkpoint",
    "train",
]
