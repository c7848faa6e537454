"""Convolutional VAE for 2-D or 3-D images, on MONAI's ``VarAutoEncoder``.

MONAI's network gives the strided convolution encoder, the transposed-convolution decoder and the
linear (mu, log sigma^2) heads. medvae uses its ``encode_forward``/``decode_forward`` and keeps its own
reparametrisation (MONAI's returns ``mu + sigma`` in eval mode) and loss, shared with every VAE here.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from medvae.errors import UsageError
from medvae.models.base import VAE


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
    """

    spatial_dims: int = 2
    in_shape: tuple[int, ...] = (1, 28, 28)
    channels: tuple[int, ...] = (32, 64)
    strides: tuple[int, ...] = (2, 2)
    latent_dim: int = 2
    num_res_units: int = 0
    norm: str = "INSTANCE"

    def __post_init__(self) -> None:
        self.in_shape, self.channels, self.strides = tuple(self.in_shape), tuple(self.channels), tuple(self.strides)
        if self.spatial_dims not in (2, 3):
            raise UsageError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if len(self.in_shape) != self.spatial_dims + 1:
            raise UsageError(
                f"in_shape {self.in_shape} must be (C, *spatial) with {self.spatial_dims} spatial sizes"
            )
        if len(self.channels) != len(self.strides) or not self.channels:
            raise UsageError(f"channels {self.channels} and strides {self.strides} must have the same, non-zero length")
        if self.latent_dim < 1:
            raise UsageError(f"latent_dim must be a positive integer, got {self.latent_dim}")


class ConvVAE(VAE):
    """Convolutional VAE.

    Args:
        config: see :class:`ConvVAEConfig`.

    Shapes: ``encode`` takes ``(B, C, *spatial)`` and returns ``(B, L)`` twice; ``decode`` takes
    ``(B, L)`` and returns ``(B, C, *spatial)`` logits.
    """

    kind = "conv_vae"

    def __init__(self, config: ConvVAEConfig | None = None) -> None:
        from monai.networks.nets import VarAutoEncoder

        super().__init__()
        self.config = config = config or ConvVAEConfig()
        self.latent_dim = config.latent_dim
        self.net = VarAutoEncoder(
            spatial_dims=config.spatial_dims,
            in_shape=config.in_shape,
            out_channels=config.in_shape[0],
            latent_size=config.latent_dim,
            channels=config.channels,
            strides=config.strides,
            num_res_units=config.num_res_units,
            norm=config.norm,
            use_sigmoid=False,
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net.encode_forward(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.net.decode_forward(z, use_sigmoid=False)
