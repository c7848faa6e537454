"""Convolutional VAE for 2-D or 3-D images, on MONAI's ``VarAutoEncoder``.

MONAI's network gives the strided convolution encoder, the transposed-convolution decoder and the
linear (mu, log sigma^2) heads. medvae uses its ``encode_forward``/``decode_forward`` and keeps its own
reparametrisation (MONAI's returns ``mu + sigma`` in eval mode) and loss.

Loss: reconstruction NLL (Bernoulli = BCE; Gaussian = scaled MSE with a fixed sigma; or Gaussian with a
per-pixel variance the decoder learns, ``gaussian-learned``: the decoder then has two output channels per
image channel, the mean's logit and the log-variance) plus
``beta`` x KL, with the KL weight ramped up over ``kl_warmup_epochs`` (the training loop calls
:meth:`ConvVAE.set_epoch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from medvae.errors import UsageError
import torch.nn.functional as F

from medvae.losses import bernoulli_nll, gaussian_kl, gaussian_nll, gaussian_pixel_nll
from medvae.models.base import VAE, LossOutput, VAEOutput
from medvae.models.blocks import with_condition_channels
from medvae.models.warmup import warmup


LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned")
#: the learned log-variance's range: a standard deviation from about 0.0025 to 2.7 in [0, 1] image units
LOGVAR_RANGE = (-12.0, 2.0)


@dataclass
class ConvVAEConfig:
    """Args:
    spatial_dims: 2 or 3.
    in_shape: image shape without the batch, ``(C, *spatial)``.
    channels: feature channels per resolution level.
    strides: down-sampling stride per level (same length as ``channels``).
    latent_dim: size of z.
    num_res_units: residual units per level (0 for plain convolutions).
    norm: MONAI normalisation name (``"INSTANCE"``, ``"BATCH"``, ...).
    likelihood: ``"bernoulli"`` (binary cross-entropy), ``"gaussian"`` (MSE / (2 sigma^2)) or
        ``"gaussian-learned"`` (a per-pixel variance the decoder predicts, log-variance clamped to
        :data:`LOGVAR_RANGE`; what An & Cho's reconstruction probability needs to differ from a scaled error).
    sigma: the Gaussian likelihood's standard deviation, in [0, 1] image units.
    beta: weight of the KL term (1 is the ELBO; above 1 a beta-VAE).
    kl_warmup_epochs: ramp the KL weight linearly from beta/N to beta over the first N epochs.
    condition: size of a conditioning vector (a one-hot class, see :mod:`medvae.models.cvae_gan`); 0: none.
        The encoder sees it as that many constant extra input channels, the decoder beside z.
    """

    spatial_dims: int = 2
    in_shape: tuple[int, ...] = (1, 28, 28)
    channels: tuple[int, ...] = (32, 64)
    strides: tuple[int, ...] = (2, 2)
    latent_dim: int = 2
    num_res_units: int = 0
    norm: str = "INSTANCE"
    likelihood: str = "bernoulli"
    sigma: float = 0.1
    beta: float = 1.0
    kl_warmup_epochs: int = 0
    condition: int = 0

    def __post_init__(self) -> None:
        self.in_shape, self.channels, self.strides = tuple(self.in_shape), tuple(self.channels), tuple(self.strides)
        if self.spatial_dims not in (2, 3):
            raise UsageError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}", param="spatial_dims")
        if len(self.in_shape) != self.spatial_dims + 1:
            raise UsageError(
                f"in_shape {self.in_shape} must be (C, *spatial) with {self.spatial_dims} spatial sizes"
            , param="in_shape")
        if len(self.channels) != len(self.strides) or not self.channels:
            raise UsageError(f"channels {self.channels} and strides {self.strides} must have the same, non-zero length", param="channels")
        if self.latent_dim < 1:
            raise UsageError(f"latent_dim must be a positive integer, got {self.latent_dim}", param="latent_dim")
        if self.likelihood not in LIKELIHOODS:
            raise UsageError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}",
                             param="likelihood")
        if not self.sigma > 0:
            raise UsageError(f"sigma must be positive, got {self.sigma}", param="sigma")
        if not self.beta >= 0:
            raise UsageError(f"beta must be 0 or more, got {self.beta}", param="beta")
        if self.kl_warmup_epochs < 0:
            raise UsageError(f"kl_warmup_epochs must be 0 or more, got {self.kl_warmup_epochs}", param="kl_warmup_epochs")
        if self.condition < 0:
            raise UsageError(f"condition must be 0 or more, got {self.condition}", param="condition")
        stride = math.prod(self.strides)
        if any(n % stride or n < 2 * stride for n in self.in_shape[1:]):
            raise UsageError(f"The image size {self.in_shape[1:]} must be divisible by the total down-sampling "
                             f"{stride} (strides {self.strides}) and at least {2 * stride}; pick a size such as "
                             f"{max(2 * stride, (self.in_shape[1] // stride) * stride)} or fewer channel levels")


class ConvVAE(VAE):
    """Convolutional VAE.

    Args:
        config: see :class:`ConvVAEConfig`.

    Shapes: ``encode`` takes ``(B, C, *spatial)`` and returns ``(B, L)`` twice; ``decode`` takes
    ``(B, L)`` and returns ``(B, C, *spatial)`` logits. With ``config.condition`` K > 0 each also takes the
    condition ``c`` ``(B, K)``: tiled over the image as K extra encoder channels, and beside z for the decoder.
    """

    kind = "conv_vae"

    def __init__(self, config: ConvVAEConfig | None = None) -> None:
        from monai.networks.nets import VarAutoEncoder

        super().__init__()
        self.config = config = config or ConvVAEConfig()
        self.latent_dim = config.latent_dim
        self.net = VarAutoEncoder(
            spatial_dims=config.spatial_dims,
            in_shape=(config.in_shape[0] + config.condition, *config.in_shape[1:]),
            out_channels=config.in_shape[0] * (2 if config.likelihood == "gaussian-learned" else 1),
            latent_size=config.latent_dim,
            channels=config.channels,
            strides=config.strides,
            num_res_units=config.num_res_units,
            norm=config.norm,
            use_sigmoid=False,
        )
        if config.condition:  # MONAI's decoder starts with Linear(L, features): give it z and c
            linear = self.net.decodeL
            self.net.decodeL = torch.nn.Linear(linear.in_features + config.condition, linear.out_features)

        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Called by the training loop at the start of each (0-based) epoch: sets the KL warm-up weight,
        ``beta * min(1, (epoch + 1) / kl_warmup_epochs)`` (``beta`` without warm-up)."""
        self.kl_weight = self.config.beta * warmup(epoch + 1, self.config.kl_warmup_epochs)

    def encode(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self._conditioned(c):
            x = with_condition_channels(x, c)
        return self.net.encode_forward(x)

    def decode(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        if self._conditioned(c):
            z = torch.cat([z, c.to(z.dtype)], 1)
        return self.net.decode_forward(z, use_sigmoid=False)

    def forward(self, x: Tensor, c: Tensor | None = None) -> VAEOutput:
        mu, logvar = self.encode(x, c)
        z = self.reparameterize(mu, logvar)
        return VAEOutput(self.decode(z, c), mu, logvar, z)

    def _conditioned(self, c: Tensor | None) -> bool:
        """Whether ``c`` is to be used; a conditioned model needs one of its size, an unconditioned none."""
        k = self.config.condition
        if (c is None) != (k == 0) or (c is not None and c.shape[1] != k):
            got = "none" if c is None else f"one of size {c.shape[1]}"
            raise ValueError(f"this model takes a condition of size {k}, got {got}")
        return k > 0

    def mean_image(self, logits: Tensor) -> Tensor:
        """The decoder distribution's mean in [0, 1], ``(B, C, *spatial)``."""
        return torch.sigmoid(logits[:, : self.config.in_shape[0]])

    def pixel_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """Per-pixel reconstruction NLL ``(B, C, *spatial)`` under the configured likelihood, in nats."""
        if self.config.likelihood == "gaussian-learned":
            c = self.config.in_shape[0]
            logvar = logits[:, c:].clamp(*LOGVAR_RANGE)
            return gaussian_pixel_nll(torch.sigmoid(logits[:, :c]), logvar, x)
        if self.config.likelihood == "gaussian":
            return gaussian_pixel_nll(torch.sigmoid(logits), 2 * math.log(self.config.sigma), x)
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none")

    def recon_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """Per-sample reconstruction NLL ``(B,)`` under the configured likelihood."""
        if self.config.likelihood == "gaussian":
            return gaussian_nll(torch.sigmoid(logits), x, self.config.sigma)
        if self.config.likelihood == "gaussian-learned":
            return self.pixel_nll(logits, x).flatten(1).sum(1)
        return bernoulli_nll(logits, x)

    def elbo_terms(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out = self(x, c)
        return self.recon_nll(out.logits, x), gaussian_kl(out.mu, out.logvar)

    def condition_of(self, batch: dict[str, Tensor]) -> Tensor | None:
        """The batch's condition: its ``label`` (class indices ``(B,)``) one-hot, for a conditioned model."""
        if not self.config.condition:
            return None
        return F.one_hot(batch["label"].long(), self.config.condition).float()

    def loss(self, batch: dict[str, Tensor]) -> LossOutput:
        """Reconstruction NLL + (warmed-up) beta x KL, per image, averaged over the batch."""
        recon, kl = (t.mean() for t in self.elbo_terms(batch["image"], self.condition_of(batch)))
        return LossOutput(recon + self.kl_weight * kl, {"recon": recon.detach(), "kl": kl.detach()})
