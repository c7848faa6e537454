"""Missing-modality synthesis: a conditional VAE-GAN on a U-Net, and the same U-Net trained with L1 only.

The generator is a U-Net on the source modalities ``(B, S, *spatial)``. At its bottleneck it takes a
*spatial* latent ``z`` of shape ``(B, latent_channels, *spatial / 2**(levels-1))``, so samples can differ
in one region and agree in another: that spread is the per-voxel uncertainty. Two heads give Gaussians
over ``z``:

* the **posterior** q(z | source, target), a small strided encoder on both, used in training;
* the **prior** p(z | source), a 1×1 convolution on the U-Net's bottleneck features, used at inference.

Loss (per voxel, in the target's normalised units)::

    L1(G(source, z ~ q), target) + beta * KL(q || p) / n_voxels
        + adv_weight * least-squares patch loss of D(source, fake)
        + Laplace NLL of the residual under a predicted per-voxel scale b (``aleatoric``; the mean's gradient
          is stopped, so the mean is trained by L1 + KL + adversarial alone)

The uncertainty of a synthesis therefore has two parts: how much the draws of z move the mean (what the
sources leave open about the subject) and the predicted scale b (noise no source can predict, such as
ASL's); :func:`predictive_moments` combines them by the law of total variance.

The discriminator is MONAI's ``PatchDiscriminator`` on (source, target) pairs (conditional, as in pix2pix),
trained with MONAI's ``PatchAdversarialLoss``; the adversarial term ramps in over ``adv_warmup_epochs``.
With ``latent_channels=0`` and ``gan=False`` the same class is the deterministic L1 U-Net baseline
(pix2pix without the GAN), the same size as the generator.

MONAI's ``UNet`` has no place to inject a latent at the bottleneck, so the U-Net is assembled here from
MONAI's ``ResidualUnit`` and ``Convolution`` blocks; one class serves 2-D slices and 3-D patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from medvae.errors import UsageError
from medvae.losses import gaussian_kl, gaussian_kl_elements
from medvae.models.base import LossOutput, reparameterize
from medvae.models.blocks import conv1x1, decoder, encoder, residual_unit
from medvae.models.unet_config import UNetConfig
from medvae.models.warmup import warmup


@dataclass
class SynthesisConfig(UNetConfig):
    """Args:
    spatial_dims: 2 (slices) or 3 (patches).
    in_channels: source modalities.
    channels: feature channels per U-Net level; the input is halved ``len(channels) - 1`` times, so
        spatial sizes must be multiples of ``2 ** (len(channels) - 1)``.
    latent_channels: channels of the spatial latent at the bottleneck; 0 makes a deterministic U-Net.
    global_latent: size of a per-image latent vector beside the spatial one (0: none). It scales and shifts
        every channel of the last decoder features (FiLM), so one draw moves the whole image together: what
        the sources cannot show about the whole image, such as a subject-wide perfusion level. Its prior
        and posterior are Gaussians from the globally pooled bottleneck (prior) and posterior features.
    global_gain: a per-image gain instead: the first of the ``global_latent`` values multiplies the mean output
        by its exponential (a subject-wide factor such as a perfusion level scales the whole map), so a draw's
        spread is proportional to the synthesis itself. Needs ``global_latent``.
    num_res_units: residual units per block.
    norm: MONAI normalisation name.
    beta: weight of KL(q || p), summed over the latent and divided by the voxel count.
    free_bits: the least KL, in nats per latent element, that each channel of the spatial latent is charged
        (its KL averaged over the batch and the latent's positions; free bits, Kingma et al. 2016): below it
        the channel's KL costs nothing and gets no gradient, so the posterior may carry that much about the
        target without paying for it, against a latent left unused (posterior collapse). 0: off.
    aleatoric: also predict the per-voxel Laplace scale of the residual (a second output channel).
    gan: train with the patch discriminator.
    adv_weight: weight of the generator's adversarial term.
    disc_channels, disc_layers: the discriminator's first-layer channels and strided layers.
    adv_warmup_epochs: the adversarial term is off in epoch 0 and at full weight from this epoch on.
    """

    latent_channels: int = 4
    global_latent: int = 0
    global_gain: bool = False
    num_res_units: int = 1
    norm: str = "INSTANCE"
    beta: float = 0.05
    free_bits: float = 0.0
    aleatoric: bool = True
    gan: bool = True
    adv_weight: float = 0.02
    disc_channels: int = 32
    disc_layers: int = 2
    adv_warmup_epochs: int = 1

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if self.spatial_dims not in (2, 3):
            raise UsageError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}", param="spatial_dims")
        if self.in_channels < 1:
            raise UsageError(f"in_channels must be at least 1 (one source modality), got {self.in_channels}", param="in_channels")
        if len(self.channels) < 2 or any(c < 1 for c in self.channels):
            raise UsageError(f"channels must list at least 2 positive sizes, got {self.channels}", param="channels")
        if self.latent_channels < 0:
            raise UsageError(f"latent_channels must be 0 or more, got {self.latent_channels}", param="latent_channels")
        if self.global_latent < 0 or (self.global_latent and not self.latent_channels):
            raise UsageError(f"global_latent must be 0 or more, and needs latent_channels > 0, got "
                             f"{self.global_latent}", param="global_latent")
        if self.global_gain and not self.global_latent:
            raise UsageError("global_gain needs global_latent of at least 1 (the gain's latent)", param="global_gain")
        if self.free_bits < 0 or (self.free_bits and not self.latent_channels):
            raise UsageError(f"free_bits must be 0 or more, and needs latent_channels > 0, got {self.free_bits}",
                             param="free_bits")
        if self.beta < 0 or self.adv_weight < 0 or self.adv_warmup_epochs < 0:
            raise UsageError("beta, adv_weight and adv_warmup_epochs must be 0 or more")


class SynthesisGenerator(nn.Module):
    """U-Net from sources (and a latent) to the target, with the prior and posterior heads over z."""

    def __init__(self, config: SynthesisConfig) -> None:
        super().__init__()
        self.config = c = config
        ch, zc, sd = c.channels, c.latent_channels, c.spatial_dims
        res = partial(residual_unit, sd, subunits=max(1, c.num_res_units + 1), norm=c.norm, act="LEAKYRELU")
        self.down = encoder(res, c.in_channels, ch)
        self.fuse = res(ch[-1] + zc, ch[-1]) if zc else nn.Identity()
        self.up, self.merge = decoder(sd, res, ch, norm=c.norm, act="LEAKYRELU")
        self.head = conv1x1(sd, ch[0], 1)
        if c.aleatoric:  # its own block on detached features: the NLL's gradients never reach the mean's path
            self.scale_head = nn.Sequential(res(ch[0], ch[0]), conv1x1(sd, ch[0], 1))
        if zc:
            self.prior = conv1x1(sd, ch[-1], 2 * zc)
            self.posterior = nn.Sequential(*encoder(res, c.in_channels + 1, ch), conv1x1(sd, ch[-1], 2 * zc))
        if c.global_latent:  # pooled features → (mu, logvar); z → per-channel (scale, shift) of the last features
            zg = c.global_latent
            self.global_prior = nn.Linear(ch[-1], 2 * zg)
            self.global_posterior = nn.Linear(2 * zc, 2 * zg)
            if not c.global_gain:
                self.film = nn.Linear(zg, 2 * ch[0])
                nn.init.zeros_(self.film.weight)  # starts as the plain U-Net
                nn.init.zeros_(self.film.bias)

    def features(self, source: Tensor) -> list[Tensor]:
        """The encoder's features per level; the last is the bottleneck ``(B, channels[-1], *spatial/2**L)``."""
        feats = []
        h = source
        for block in self.down:
            h = block(h)
            feats.append(h)
        return feats

    def prior_params(self, feats: list[Tensor]) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(mu, logvar)`` of p(z | source), each ``(B, latent_channels, *bottleneck)``; with a global latent
        also its ``(mu, logvar)``, each ``(B, global_latent)``."""
        mu, logvar = self.prior(feats[-1]).chunk(2, dim=1)
        if not self.config.global_latent:
            return mu, logvar.clamp(-10, 10)
        mu_g, logvar_g = self.global_prior(_pool(feats[-1])).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10), mu_g, logvar_g.clamp(-10, 10)

    def posterior_params(self, source: Tensor, target: Tensor) -> tuple[Tensor, ...]:
        """``(mu, logvar)`` of q(z | source, target) (and of the global latent: see :meth:`prior_params`)."""
        h = self.posterior(torch.cat([source, target], dim=1))
        mu, logvar = h.chunk(2, dim=1)
        if not self.config.global_latent:
            return mu, logvar.clamp(-10, 10)
        mu_g, logvar_g = self.global_posterior(_pool(h)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10), mu_g, logvar_g.clamp(-10, 10)

    def draw(self, params: tuple[Tensor, ...], generator: torch.Generator | None = None,
             mean: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """A latent drawn from ``params`` (prior or posterior; their means with ``mean=True``): ``z``, or
        ``(z, z_global)`` with a global latent."""
        zs = [mu if mean else reparameterize(mu, logvar, generator) for mu, logvar in zip(params[::2], params[1::2])]
        return zs[0] if len(zs) == 1 else tuple(zs)

    def decode(self, feats: list[Tensor], z: Tensor | tuple[Tensor, Tensor] | None) -> Tensor:
        """``(B, 1 or 2, *spatial)`` from the encoder features and ``z`` (None without a latent; ``(z,
        z_global)`` with a global latent): the target's mean, and with ``aleatoric`` the log of the Laplace
        scale of the residual."""
        z, z_global = z if isinstance(z, tuple) else (z, None)
        h = feats[-1] if z is None else self.fuse(torch.cat([feats[-1], z], dim=1))
        for up, merge, skip in zip(self.up, self.merge, reversed(feats[:-1])):
            h = merge(torch.cat([up(h), skip], dim=1))
        gain = None
        if z_global is not None and self.config.global_gain:  # the whole mean map times exp(g)
            gain = torch.exp(z_global[:, :1].clamp(-3, 3)).view(-1, 1, *(1,) * (h.ndim - 2))
        elif z_global is not None:
            scale, shift = self.film(z_global).view(*z_global.shape[:1], 2, -1, *(1,) * (h.ndim - 2)).unbind(1)
            h = h * (1 + scale) + shift
        mean = self.head(h) if gain is None else self.head(h) * gain
        if self.config.aleatoric:
            return torch.cat([mean, self.scale_head(h.detach())], dim=1)
        return mean

    def forward(self, source: Tensor) -> Tensor:
        """One synthesis ``(B, 1, *spatial)`` with z drawn from the prior."""
        return self.sample(source)[0][:, :1]

    def sample(self, source: Tensor, n: int = 1, generator: torch.Generator | None = None,
               mean: bool = False) -> Tensor:
        """``n`` draws ``(n, B, 1 or 2, *spatial)`` (see :meth:`decode`) with z ~ p(z | source) (the prior
        mean with ``mean=True``)."""
        feats = self.features(source)
        if not self.config.latent_channels:
            out = self.decode(feats, None)
            return out.unsqueeze(0).expand(n, *out.shape)
        prior = self.prior_params(feats)
        return torch.stack([self.decode(feats, self.draw(prior, generator, mean)) for _ in range(n)])


def free_bits_kl(kl: Tensor, free_bits: float) -> Tensor:
    """The KL of a spatial latent per image from its element-wise KL ``(B, C, *latent)``
    (:func:`medvae.losses.gaussian_kl_elements`), each channel charged at least ``free_bits`` nats per element:
    ``positions * sum_c max(mean_{batch, positions} KL_c, free_bits)``. With ``free_bits = 0`` it is the batch
    mean of the KL summed per image."""
    per_channel = kl.transpose(0, 1).flatten(1).mean(1)  # (C,) nats per latent element
    return per_channel.clamp(min=free_bits).sum() * kl[0, 0].numel()


def _pool(h: Tensor) -> Tensor:
    """``(B, C, *spatial)`` → ``(B, C)``: the mean over space."""
    return h.flatten(2).mean(-1)


LOG_SCALE_RANGE = (-7.0, 3.0)


def predictive_moments(draws: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of the predictive distribution from ``draws`` ``(K, B, C, *spatial)``.

    Channel 0 of each draw is a mean, channel 1 (if any) a log Laplace scale b. By the law of total variance,
    ``var = Var_k(mean_k) + E_k(2 b_k^2)`` (2 b^2 is a Laplace variance); the first term uses ``K - 1`` and is
    0 for one draw. Returns ``(mean, std)``, each ``(B, *spatial)``.
    """
    means = draws[:, :, 0]
    var = means.var(0, correction=1) if len(draws) > 1 else torch.zeros_like(means[0])
    if draws.shape[2] > 1:
        var = var + (2 * torch.exp(2 * draws[:, :, 1].clamp(*LOG_SCALE_RANGE))).mean(0)
    return means.mean(0), var.sqrt()


class SynthesisModel(nn.Module):
    """Conditional VAE-GAN for missing-modality synthesis (or, with ``gan=False, latent_channels=0``, the L1 U-Net).

    Batches are ``{"source": (B, S, *spatial), "target": (B, 1, *spatial)}`` in normalised units.
    The training loop sees ``generator``/``discriminator``/``discriminator_loss`` when ``gan`` is on.

    Args:
        config: what the generator, the discriminator and the loss are (:class:`SynthesisConfig`).
    """

    kind = "synthesis"

    def __init__(self, config: SynthesisConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SynthesisConfig()
        self.generator = SynthesisGenerator(config)
        self.adv_scale = warmup(0, config.adv_warmup_epochs)
        if config.gan:
            from monai.losses import PatchAdversarialLoss
            from monai.networks.nets import PatchDiscriminator

            self.discriminator = PatchDiscriminator(
                spatial_dims=config.spatial_dims, channels=config.disc_channels, in_channels=config.in_channels + 1,
                num_layers_d=config.disc_layers, norm="INSTANCE")
            self.adversarial = PatchAdversarialLoss(criterion="least_squares")
            self._pair: tuple[Tensor, Tensor] | None = None
            self.discriminator_loss = self._discriminator_loss  # the training loop looks for this attribute

    def set_epoch(self, epoch: int) -> None:
        """Ramp the adversarial term: 0 in epoch 0 with warm-up, full weight from ``adv_warmup_epochs``."""
        self.adv_scale = warmup(epoch, self.config.adv_warmup_epochs)

    def loss(self, batch: dict[str, Tensor]) -> LossOutput:
        source, target = batch["source"], batch["target"]
        g = self.generator
        feats = g.features(source)
        terms: dict[str, Tensor] = {}
        if self.config.latent_channels:
            q, p = g.posterior_params(source, target), g.prior_params(feats)
            out = g.decode(feats, g.draw(q))  # a reparameterised draw: gradients reach q
            elements = gaussian_kl_elements(q[0], q[1], p[0], p[1])  # (B, C, *latent)
            kl = (elements.flatten(1).sum(1) / target[0].numel()).mean()
            terms["kl"] = kl.detach()
            if self.config.free_bits:
                kl = free_bits_kl(elements, self.config.free_bits) / target[0].numel()
            if self.config.global_latent:  # per image, not per voxel: its KL is weighed once per image
                kl_global = gaussian_kl(q[2], q[3], p[2], p[3]).mean() / target[0].numel()
                kl = kl + kl_global
                terms["kl_global"] = kl_global.detach()
        else:
            out = g.decode(feats, None)
            kl = out.new_zeros(())
        fake = out[:, :1]
        l1 = (fake - target).abs().mean()
        terms["l1"] = l1.detach()
        total = l1 + self.config.beta * kl
        if self.config.aleatoric:  # Laplace NLL of the residual; the mean gets no gradient from it
            log_b = out[:, 1:].clamp(*LOG_SCALE_RANGE)
            nll = ((fake.detach() - target).abs() * torch.exp(-log_b) + log_b).mean()
            total = total + nll
            terms["scale_nll"] = nll.detach()
        if self.config.gan and self.training:
            self._pair = (source.detach(), fake.detach())
            if self.adv_scale > 0:
                adv = self.adversarial(self.discriminator(torch.cat([source, fake], 1))[-1], target_is_real=True,
                                       for_discriminator=False)
                total = total + self.adv_scale * self.config.adv_weight * adv
                terms["adv"] = adv.detach()
        return LossOutput(total, terms)

    def _discriminator_loss(self, batch: dict[str, Tensor]) -> LossOutput:
        """Least-squares patch loss on pairs: (source, target) → 1, (source, last fake) → 0."""
        if self._pair is None:
            raise RuntimeError("discriminator_loss needs a generator loss call first")
        source, fake = self._pair
        real = self.discriminator(torch.cat([batch["source"], batch["target"]], 1))[-1]
        fake = self.discriminator(torch.cat([source, fake], 1))[-1]
        loss_real = self.adversarial(real, target_is_real=True, for_discriminator=True)
        loss_fake = self.adversarial(fake, target_is_real=False, for_discriminator=True)
        loss = 0.5 * (loss_real + loss_fake)
        return LossOutput(loss, {"d_real": loss_real.detach(), "d_fake": loss_fake.detach()})
