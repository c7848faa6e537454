"""The reference MLP VAE of the MNIST demo (Kingma & Welling 2014; the Keras VAE example).

Encoder 784 -> 256 -> 128 -> (mu, log sigma^2) with a 2-D latent; decoder 2 -> 128 -> 256 -> 784,
Bernoulli logits. MONAI has no fully connected VAE, so this one is plain ``nn.Linear`` layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from medvae.errors import UsageError
from medvae.models.base import VAE, LossOutput, standard_normal
from medvae.models.fused_mlp import FusedMLPVAELoss


@dataclass
class MLPVAEConfig:
    """Args:
    in_shape: image shape without the batch, ``(C, *spatial)``; flattened for the MLP.
    hidden: encoder layer widths; the decoder mirrors them.
    latent_dim: size of z.
    """

    in_shape: tuple[int, ...] = (1, 28, 28)
    hidden: tuple[int, ...] = (256, 128)
    latent_dim: int = 2

    def __post_init__(self) -> None:
        self.in_shape, self.hidden = tuple(self.in_shape), tuple(self.hidden)
        if not self.in_shape or any(s < 1 for s in self.in_shape):
            raise UsageError(f"in_shape must be positive sizes, got {self.in_shape}", param="in_shape")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise UsageError(f"hidden must be one or more positive layer widths, got {self.hidden}", param="hidden")
        if self.latent_dim < 1:
            raise UsageError(f"latent_dim must be a positive integer, got {self.latent_dim}", param="latent_dim")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPVAE(VAE):
    """Fully connected VAE on flattened images.

    Args:
        config: layer sizes; see :class:`MLPVAEConfig`.

    Shapes: ``encode`` takes ``(B, *in_shape)`` (or ``(B, D)``) and returns ``(B, L)`` twice; ``decode``
    takes ``(B, L)`` and returns ``(B, *in_shape)`` logits.
    """

    kind = "mlp_vae"
    #: the training loop may enable bfloat16 autocast on CPUs with native bf16 (see fused_mlp.py)
    cpu_bf16 = True

    def __init__(self, config: MLPVAEConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MLPVAEConfig()
        self.latent_dim = config.latent_dim
        d = math.prod(config.in_shape)
        self.encoder = nn.Sequential(_mlp([d, *config.hidden]), nn.ReLU())  # (B, D) -> (B, H)
        self.to_mu = nn.Linear(config.hidden[-1], config.latent_dim)
        self.to_logvar = nn.Linear(config.hidden[-1], config.latent_dim)
        self.decoder = _mlp([config.latent_dim, *reversed(config.hidden), d])  # (B, L) -> (B, D)
        # the Linear layers in the fused loss's order, found once rather than on every training step
        enc = [m for m in self.encoder.modules() if isinstance(m, nn.Linear)]
        dec = [m for m in self.decoder.modules() if isinstance(m, nn.Linear)]
        self._fused_layers = (len(enc), len(dec), (*enc, self.to_mu, self.to_logvar, *dec))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x.flatten(1))  # (B, H)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, *self.config.in_shape)  # (B, C, *spatial)

    def loss(self, batch: dict[str, Tensor]) -> LossOutput:
        """Negative ELBO per image. Training on the CPU uses the hand-written :class:`FusedMLPVAELoss`
        (same value, same noise draws; float32 gradients equal autograd's, and under CPU bf16 autocast the two
        big layers' products are bf16); anything else uses autograd through ``forward``."""
        x = batch["image"]
        fused = x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad
        if not (self.training and torch.is_grad_enabled() and fused):
            return super().loss(batch)
        eps = standard_normal((x.shape[0], self.latent_dim), dtype=x.dtype)  # the draws reparameterize would make
        n_enc, n_dec, layers = self._fused_layers
        params = [t for m in layers for t in (m.weight, m.bias)]
        loss, recon, kl = FusedMLPVAELoss.apply(x.flatten(1), eps, torch.is_autocast_enabled("cpu"), n_enc, n_dec, *params)
        return LossOutput(loss, {"recon": recon, "kl": kl})
