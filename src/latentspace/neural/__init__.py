"""Neural latent-variable models on one trainer: autoencoders, the VAE and the GAN."""

from ._autoencoder import Autoencoder
from ._distributed import init_distributed
from ._gan import COLLAPSE_DIVERSITY, GAN
from ._nets import make_mlp
from ._trainer import StepContext, TrainResult, load_checkpoint, train
from ._vae import VAE

__all__ = [
    "COLLAPSE_DIVERSITY",
    "Autoencoder",
    "GAN",
    "StepContext",
    "TrainResult",
    "VAE",
    "init_distributed",
    "load_checkpoint",
    "make_mlp",
    "train",
]
