"""VAE-GAN (Larsen et al. 2016): a convolutional VAE as generator, judged by a patch discriminator.

The generator is :class:`~medvae.models.conv_vae.ConvVAE`. The discriminator is MONAI's
``PatchDiscriminator`` (instance normalisation, so it behaves the same under DistributedDataParallel).
Generator loss per image::

    recon NLL + beta * KL + adv_weight * (adversarial on reconstructions and prior samples)
              + feature_weight * feature matching (L1 between the discriminator's features of real and
                reconstructed images, the "learned similarity" of the paper)

The adversarial and feature terms ramp in over ``adv_warmup_epochs``. The discriminator has its own
optimiser (the training loop sees ``discriminator`` and ``discriminator_loss``) and is trained with
MONAI's least-squares ``PatchAdversarialLoss``. Both halves live in one model file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from medvae.errors import UsageError
from medvae.losses import feature_matching, gaussian_kl
from medvae.models.base import VAE, LossOutput, standard_normal_like
from medvae.models.blocks import with_condition_channels
from medvae.models.conv_vae import ConvVAE, ConvVAEConfig
from medvae.models.warmup import warmup


@dataclass
class VAEGANConfig(ConvVAEConfig):
    """The generator's :class:`ConvVAEConfig` fields, plus:

    disc_channels: channels of the discriminator's first layer (doubling per layer).
    disc_layers: strided layers in the discriminator.
    adv_weight: weight of the adversarial term, per pixel (the reconstruction NLL is summed over pixels,
        so both terms are multiplied by the pixel count to keep their balance at any image size).
    feature_weight: weight of the feature-matching term, per pixel likewise.
    adv_warmup_epochs: the adversarial and feature terms are off in the first epoch and reach full weight
        after this many epochs (weight ``min(1, epoch / adv_warmup_epochs)``, epochs counted from 0), so the
        discriminator first sees a VAE that reconstructs; 0 starts them at full weight.
    """

    disc_channels: int = 32
    disc_layers: int = 2
    adv_weight: float = 0.05
    feature_weight: float = 0.05
    adv_warmup_epochs: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.likelihood == "gaussian-learned":  # the discriminator judges mean images; not made for this
            raise UsageError("likelihood gaussian-learned is for 'train vae'; a VAE-GAN takes bernoulli or gaussian",
                             param="likelihood")
        if self.disc_channels < 1 or self.disc_layers < 1:
            raise UsageError(f"disc_channels and disc_layers must be positive, got {self.disc_channels}, "
                             f"{self.disc_layers}", param="disc_channels")
        if self.adv_weight < 0 or self.feature_weight < 0 or self.adv_warmup_epochs < 0:
            raise UsageError("adv_weight, feature_weight and adv_warmup_epochs must be 0 or more")


class VAEGAN(VAE):
    """VAE-GAN.

    Args:
        config: see :class:`VAEGANConfig`.

    ``encode``/``decode``/``generate`` are the generator's; ``loss`` is the generator's loss and keeps the
    batch's fakes for the discriminator step that follows (``discriminator_loss``).
    """

    kind = "vae_gan"

    def __init__(self, config: VAEGANConfig | None = None) -> None:
        from monai.losses import PatchAdversarialLoss
        from monai.networks.nets import PatchDiscriminator

        super().__init__()
        self.config = config = config or VAEGANConfig()
        vae_fields = {f.name for f in dataclasses.fields(ConvVAEConfig)}
        self.generator = ConvVAE(ConvVAEConfig(**{k: v for k, v in dataclasses.asdict(config).items()
                                                  if k in vae_fields}))
        self.latent_dim = config.latent_dim
        self.discriminator = PatchDiscriminator(
            spatial_dims=config.spatial_dims, channels=config.disc_channels,
            in_channels=config.in_shape[0] + config.condition,
            num_layers_d=config.disc_layers, norm="INSTANCE",
        )
        self.adversarial = PatchAdversarialLoss(criterion="least_squares")
        self.adv_scale = warmup(0, config.adv_warmup_epochs)
        self._fakes: list[Tensor] = []

    def set_epoch(self, epoch: int) -> None:
        """KL warm-up of the generator, and the adversarial ramp (0 in the first epoch with warm-up)."""
        self.generator.set_epoch(epoch)
        self.adv_scale = warmup(epoch, self.config.adv_warmup_epochs)

    def encode(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.generator.encode(x, c)

    def decode(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        return self.generator.decode(z, c)

    def elbo_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.generator.elbo_terms(x)

    def recon_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        return self.generator.recon_nll(logits, x)

    def pixel_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        return self.generator.pixel_nll(logits, x)

    def loss(self, batch: dict[str, Tensor]) -> LossOutput:
        x, c = batch["image"], self.generator.condition_of(batch)
        out = self.generator(x, c)
        recon = self.generator.recon_nll(out.logits, x).mean()
        kl = gaussian_kl(out.mu, out.logvar).mean()
        total = recon + self.generator.kl_weight * kl
        terms = {"recon": recon.detach(), "kl": kl.detach()}
        if not self.training:  # validation: the VAE's own loss
            return LossOutput(total, terms)
        fake = torch.sigmoid(out.logits)
        with torch.set_grad_enabled(self.adv_scale > 0):  # without the adversarial term only D needs them
            prior = self.generate_from(standard_normal_like(out.z), c)
        self._fakes = [fake.detach(), prior.detach()]
        if self.adv_scale > 0:
            n = x[0].numel()  # per-image scale, like the summed reconstruction NLL
            d_fake, d_prior = self.judge(fake, c), self.judge(prior, c)
            adv = 0.5 * (self.adversarial(d_fake[-1], target_is_real=True, for_discriminator=False)
                         + self.adversarial(d_prior[-1], target_is_real=True, for_discriminator=False))
            with torch.no_grad():
                d_real = self.judge(x, c)
            fm = feature_matching(d_real[:-1], d_fake[:-1])
            total = total + self.adv_scale * n * (self.config.adv_weight * adv + self.config.feature_weight * fm)
            terms.update(adv=adv.detach(), feature=fm.detach())
        return LossOutput(total, terms)

    def generate_from(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """Decode ``z`` to mean images with gradients (``generate`` is the no-grad version)."""
        return torch.sigmoid(self.generator.decode(z, c))

    def judge(self, images: Tensor, c: Tensor | None = None) -> list[Tensor]:
        """The discriminator's features and patch scores of ``images`` (with a condition ``c`` ``(B, K)``, tiled
        over the image as K extra channels: the conditional model judges an image as one of its class)."""
        return self.discriminator(images if c is None else with_condition_channels(images, c))

    def discriminator_loss(self, batch: dict[str, Tensor]) -> LossOutput:
        """Least-squares patch loss: real images → 1, the last ``loss`` call's fakes → 0."""
        if not self._fakes:
            raise RuntimeError("discriminator_loss needs a generator loss call first")
        c = self.generator.condition_of(batch)
        real = self.judge(batch["image"], c)[-1]
        fakes = [self.judge(f, c)[-1] for f in self._fakes]
        loss_real = self.adversarial(real, target_is_real=True, for_discriminator=True)
        loss_fake = torch.stack([self.adversarial(f, target_is_real=False, for_discriminator=True)
                                 for f in fakes]).mean()
        loss = 0.5 * (loss_real + loss_fake)
        return LossOutput(loss, {"d_real": loss_real.detach(), "d_fake": loss_fake.detach()})
