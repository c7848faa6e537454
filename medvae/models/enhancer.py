"""Chest X-ray enhancement: a VAE-U-Net, a U-Net whose bottleneck is variational.

The encoder is a U-Net's contracting path. At its bottleneck two 1×1 convolutions give a *spatial*
Gaussian posterior q(z | x) of shape ``(B, latent_channels, *spatial / 2**(levels-1))``; a sample of z
(the mean at inference) is projected back to feature channels and joins the bottleneck features, and the
decoder climbs back up through transposed convolutions and the skip features. The head predicts a
residual, so the output is ``degraded + residual`` (``residual=True``): the network only has to learn what
the degradation changed, and starts as the identity (the head is zero-initialised).

Loss per voxel, on (degraded, clean) pairs with intensities in [0, 1]::

    L1(out, clean) + ssim_weight * (1 - SSIM(out, clean)) + beta * KL(q(z | x) || N(0, I)) / n_voxels

Normalisation defaults to instance norm, which also gives every layer the tile's own intensity statistics
(through the residual shortcuts, which are not normalised), what exposure and contrast correction need:
on a toy task (disks under random gain, offset and noise; 32² patches, 300 Adam steps) it reached a test
L1 of 0.009 where batch norm reached 0.035. The price: the output depends on the statistics of the whole
input, so apply it to whole films, or to large overlapping tiles. ``norm="BATCH"`` makes the network
(in eval mode) a local operator instead, whose tiles agree exactly with the whole image.

MONAI's ``UNet`` and ``VarAutoEncoder`` have no variational bottleneck with skips, so the network is
assembled here from MONAI's ``ResidualUnit`` and ``Convolution`` blocks, for 2-D films and 3-D volumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from medvae.errors import UsageError
from medvae.losses import gaussian_kl
from medvae.models.base import LossOutput, reparameterize
from medvae.models.blocks import check_size, conv1x1, decoder, encoder, monai_norm, residual_unit
from medvae.models.unet_config import UNetConfig, check_norm, check_weights


@dataclass
class EnhancerConfig(UNetConfig):
    """Args:
    spatial_dims: 2 (films) or 3 (volumes).
    in_channels: image channels; the output has as many.
    channels: feature channels per U-Net level; the input is halved ``len(channels) - 1`` times, so
        spatial sizes must be multiples of :attr:`multiple` (``2 ** (len(channels) - 1)``).
    latent_channels: channels of the spatial latent at the bottleneck.
    num_res_units: each residual block has ``num_res_units + 1`` convolutions.
    norm: ``"INSTANCE"`` (default; see the module docstring), ``"BATCH"`` or ``"NONE"``.
    beta: weight of the KL term, summed over the latent and divided by the image's voxel count.
    ssim_weight: weight of the SSIM loss (``1 - SSIM``, 11-voxel window: patches need 11 voxels a side).
    residual: predict ``clean - degraded`` and add the input back, rather than the clean image itself.
    """

    latent_channels: int = 8
    num_res_units: int = 1
    norm: str = "INSTANCE"
    beta: float = 1e-4
    ssim_weight: float = 0.2
    residual: bool = True

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        self.norm = str(self.norm).upper()
        if self.spatial_dims not in (2, 3):
            raise UsageError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}", param="spatial_dims")
        if self.in_channels < 1:
            raise UsageError(f"in_channels must be at least 1, got {self.in_channels}", param="in_channels")
        if len(self.channels) < 2 or any(int(c) != c or c < 1 for c in self.channels):
            raise UsageError(f"channels must list at least 2 positive integers, got {self.channels}", param="channels")
        if self.latent_channels < 1:
            raise UsageError(f"latent_channels must be at least 1, got {self.latent_channels}", param="latent_channels")
        if self.num_res_units < 0:
            raise UsageError(f"num_res_units must be 0 or more, got {self.num_res_units}", param="num_res_units")
        check_norm(self.norm)
        check_weights(self, "beta", "ssim_weight")


@dataclass
class EnhancerOutput:
    """One pass through the enhancer.

    Attributes:
        image: the enhanced image ``(B, C, *spatial)`` (not clamped).
        mu: posterior means ``(B, latent_channels, *bottleneck)``.
        logvar: posterior log-variances, same shape.
    """

    image: Tensor
    mu: Tensor
    logvar: Tensor


class EnhancerModel(nn.Module):
    """VAE-U-Net from a degraded image to the clean one.

    Batches are ``{"image": degraded (B, C, *spatial), "target": clean (B, C, *spatial)}`` in [0, 1].

    Args:
        config: the levels, latent, normalisation and loss weights (:class:`EnhancerConfig`; defaults if None).
    """

    kind = "enhancer"

    def __init__(self, config: EnhancerConfig | None = None) -> None:
        from monai.losses import SSIMLoss

        super().__init__()
        self.config = c = config or EnhancerConfig()
        ch, zc, sd, norm = c.channels, c.latent_channels, c.spatial_dims, monai_norm(c.norm)
        res = partial(residual_unit, sd, subunits=c.num_res_units + 1, norm=norm, act="LEAKYRELU")
        self.down = encoder(res, c.in_channels, ch)
        self.to_posterior = conv1x1(sd, ch[-1], 2 * zc)  # -> (mu, logvar)
        self.from_latent = conv1x1(sd, zc, ch[-1])
        self.fuse = res(2 * ch[-1], ch[-1])
        self.up, self.merge = decoder(sd, res, ch, norm=norm, act="LEAKYRELU")
        self.head = conv1x1(sd, ch[0], c.in_channels)
        if c.residual:  # start as the identity: out = x + 0
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.ssim = SSIMLoss(c.spatial_dims, data_range=1.0)

    @property
    def multiple(self) -> int:
        """Spatial sizes must be multiples of this."""
        return self.config.multiple

    def forward(self, x: Tensor, sample: bool | None = None) -> EnhancerOutput:
        """Enhance ``x`` ``(B, C, *spatial)``; z is sampled when ``sample`` (default: in training mode),
        else the posterior mean."""
        check_size(x, self.config.spatial_dims, self.multiple)
        feats = []
        h = x
        for block in self.down:  # (B, ch[i], *spatial / 2**i)
            h = block(h)
            feats.append(h)
        mu, logvar = self.to_posterior(h).chunk(2, dim=1)  # each (B, zc, *bottleneck)
        logvar = logvar.clamp(-10, 10)
        sample = self.training if sample is None else sample
        z = reparameterize(mu, logvar) if sample else mu
        h = self.fuse(torch.cat([h, self.from_latent(z)], dim=1))  # (B, ch[-1], *bottleneck)
        for up, merge, skip in zip(self.up, self.merge, reversed(feats[:-1])):
            h = merge(torch.cat([up(h), skip], dim=1))  # (B, ch[i-1], *spatial / 2**(i-1))
        out = self.head(h)  # (B, C, *spatial)
        return EnhancerOutput(x + out if self.config.residual else out, mu, logvar)

    @torch.no_grad()
    def enhance(self, x: Tensor) -> Tensor:
        """Deterministic enhancement (z = the posterior mean, eval-mode normalisation) of ``x``
        ``(B, C, *spatial)`` in [0, 1], sizes multiples of :attr:`multiple`; returns the same shape in [0, 1]."""
        was_training = self.training
        self.eval()  # with batch norm: its running statistics, left unchanged
        try:
            return self(x, sample=False).image.clamp(0, 1)
        finally:
            self.train(was_training)

    def loss(self, batch: dict[str, Tensor]) -> LossOutput:
        x, target = batch["image"], batch["target"].float()
        out = self(x)
        # the loss in float32 even under mixed precision: SSIM's local variances (E[x^2] - E[x]^2) and the
        # KL's exp(logvar) lose everything in bfloat16, and training then diverges
        with torch.autocast(x.device.type, enabled=False):
            image, mu, logvar = out.image.float(), out.mu.float(), out.logvar.float()
            l1 = (image - target).abs().mean()
            kl = (gaussian_kl(mu, logvar) / target[0].numel()).mean()
            c = self.config
            total = l1 + c.beta * kl
            terms = {"l1": l1.detach(), "kl": kl.detach()}
            if c.ssim_weight > 0:
                if min(target.shape[2:]) < 11:
                    raise UsageError(f"the SSIM loss needs patches of at least 11 voxels a side, got "
                                     f"{tuple(target.shape[2:])}; use bigger patches or ssim_weight=0")
                ssim = self.ssim(image, target)
                total = total + c.ssim_weight * ssim
                terms["ssim"] = ssim.detach()
        return LossOutput(total, terms)
