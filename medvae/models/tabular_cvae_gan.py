"""Class-conditional VAE-GAN on tables: the model of :mod:`medvae.models.cvae_gan` with fully connected parts.

The setting of the reference method (Ding et al., IEEE Access 2023: a VAE-GAN draws new rows of the rare
class, credit-card fraud). Rows are numeric feature vectors ``(B, F)``, standardised before they reach the
model (the task keeps the training rows' mean and standard deviation in the model file and undoes them on
every draw). The class, one-hot ``c`` ``(B, K)``, reaches all three parts:

- the **encoder** ``[x, c] -> hidden -> (mu, logvar)``, so z need not carry the class;
- the **decoder** ``[z, c] -> hidden -> x``: the mean of a Gaussian whose per-feature scale is learned;
- the **discriminator** ``[x, c] -> hidden -> score``: "a real row *of this class*" (least squares: real 1,
  fake 0), judging reconstructions and prior draws with the batch's own labels.

Generator loss per row::

    Gaussian NLL (summed over features) + beta * KL
        + adv_scale * F * (adv_weight * adversarial + feature_weight * feature matching)

with ``adv_scale`` ramping from 0 to 1 over ``adv_warmup_epochs`` (off in the first epoch) and ``F`` the
feature count, as the image model scales by its pixel count. Drawing a class: z from N(0, I), decoded with
that class (:meth:`TabularCVAEGAN.draw`). Batches carry ``features`` ``(B, F)`` and ``label`` ``(B,)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from medvae.errors import UsageError
from medvae.losses import feature_matching, gaussian_kl
from medvae.models.base import VAE, LossOutput, VAEOutput, standard_normal_like
from medvae.models.warmup import warmup


@dataclass
class TabularCVAEGANConfig:
    """Args:
    num_features: numeric columns per row.
    num_classes: how many classes (2 or more).
    hidden: encoder layer widths; the decoder mirrors them.
    latent_dim: size of z.
    disc_hidden: discriminator layer widths.
    beta: KL weight (1 = the ELBO).
    adv_weight, feature_weight: weights of the adversarial and feature-matching terms, per feature.
    adv_warmup_epochs: the adversarial terms are off in the first epoch and at full weight after this many
        (0: full weight from the start).
    """

    num_features: int = 2
    num_classes: int = 2
    hidden: tuple[int, ...] = (64, 64)
    latent_dim: int = 4
    disc_hidden: tuple[int, ...] = (64, 64)
    beta: float = 1.0
    adv_weight: float = 0.05
    feature_weight: float = 0.05
    adv_warmup_epochs: int = 1

    def __post_init__(self) -> None:
        self.hidden, self.disc_hidden = tuple(self.hidden), tuple(self.disc_hidden)
        for name in ("num_features", "latent_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}", param=name)
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise UsageError(f"num_classes must be an integer of 2 or more, got {self.num_classes!r}; "
                             "a conditional model needs at least two classes", param="num_classes")
        for name in ("hidden", "disc_hidden"):
            widths = getattr(self, name)
            if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
                raise UsageError(f"{name} must be one or more positive layer widths, got {widths}", param=name)
        if min(self.beta, self.adv_weight, self.feature_weight, self.adv_warmup_epochs) < 0:
            raise UsageError("beta, adv_weight, feature_weight and adv_warmup_epochs must be 0 or more",
                             param="beta")


def _mlp(sizes: list[int], last_activation: bool) -> nn.Sequential:
    """Linear layers with LeakyReLU between them (and after the last one when ``last_activation``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class TabularGenerator(nn.Module):
    """Encoder and decoder (the part the generator's optimiser trains), with the decoder's per-feature scale."""

    def __init__(self, config: TabularCVAEGANConfig) -> None:
        super().__init__()
        f, k, h, z = config.num_features, config.num_classes, config.hidden, config.latent_dim
        self.encoder = _mlp([f + k, *h], last_activation=True)
        self.to_mu, self.to_logvar = nn.Linear(h[-1], z), nn.Linear(h[-1], z)
        self.decoder = _mlp([z + k, *reversed(h), f], last_activation=False)
        self.log_scale = nn.Parameter(torch.zeros(f))  # log sigma of each feature's Gaussian likelihood


class TabularDiscriminator(nn.Module):
    """``[x, c]`` → the hidden layers' features and a score per row (``(B, 1)``, last in the list)."""

    def __init__(self, config: TabularCVAEGANConfig) -> None:
        super().__init__()
        sizes = [config.num_features + config.num_classes, *config.disc_hidden]
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.LeakyReLU(0.2))
                                    for a, b in zip(sizes[:-1], sizes[1:]))
        self.score = nn.Linear(sizes[-1], 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return [*features, self.score(x)]


class TabularCVAEGAN(VAE):
    """Class-conditional VAE-GAN on standardised feature rows.

    Args:
        config: see :class:`TabularCVAEGANConfig`.

    Shapes: ``encode(x, c)`` ``(B, F)``, ``(B, K)`` → ``(B, L)`` twice; ``decode(z, c)`` → means ``(B, F)``;
    :meth:`draw` → rows ``(B, F)`` in the standardised units the model was trained in.
    """

    kind = "tabular_cvae_gan"

    def __init__(self, config: TabularCVAEGANConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TabularCVAEGANConfig()
        self.latent_dim = config.latent_dim
        self.generator = TabularGenerator(config)
        self.discriminator = TabularDiscriminator(config)
        self.adv_scale = warmup(0, config.adv_warmup_epochs)
        self._fakes: list[Tensor] = []

    def set_epoch(self, epoch: int) -> None:
        """The adversarial ramp (0 in the first epoch with warm-up)."""
        self.adv_scale = warmup(epoch, self.config.adv_warmup_epochs)

    def one_hot(self, labels: Tensor) -> Tensor:
        """Class indices ``(B,)`` → the condition ``(B, K)``."""
        labels = torch.as_tensor(labels).long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.config.num_classes):
            raise ValueError(f"class indices must be in 0..{self.config.num_classes - 1}, got "
                             f"{labels.min().item()}..{labels.max().item()}")
        return nn.functional.one_hot(labels, self.config.num_classes).float()

    def encode(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        h = self.generator.encoder(torch.cat([x, c], dim=1))
        return self.generator.to_mu(h), self.generator.to_logvar(h).clamp(-12, 8)

    def decode(self, z: Tensor, c: Tensor) -> Tensor:
        return self.generator.decoder(torch.cat([z, c], dim=1))

    def forward(self, x: Tensor, c: Tensor) -> VAEOutput:
        mu, logvar = self.encode(x, c)
        z = self.reparameterize(mu, logvar)
        return VAEOutput(self.decode(z, c), mu, logvar, z)

    def recon_nll(self, mean: Tensor, x: Tensor) -> Tensor:
        """Gaussian NLL of ``x`` under the decoder's ``mean`` and the learned per-feature scale, ``(B,)`` nats."""
        log_scale = self.generator.log_scale.clamp(-6, 3)
        z = (x - mean) * torch.exp(-log_scale)
        return (0.5 * z.square() + log_scale + 0.5 * math.log(2 * math.pi)).sum(dim=1)

    def judge(self, x: Tensor, c: Tensor) -> list[Tensor]:
        """The discriminator's hidden features and scores of rows ``x`` of classes ``c``."""
        return self.discriminator(torch.cat([x, c], dim=1))

    def loss(self, batch: dict[str, Tensor]) -> LossOutput:
        x, c = batch["features"], self.one_hot(batch["label"]).to(batch["features"].device)
        out = self(x, c)
        recon = self.recon_nll(out.logits, x).mean()
        kl = gaussian_kl(out.mu, out.logvar).mean()
        total = recon + self.config.beta * kl
        terms = {"recon": recon.detach(), "kl": kl.detach()}
        if not self.training:  # validation: the VAE's own loss
            return LossOutput(total, terms)
        with torch.set_grad_enabled(self.adv_scale > 0):
            prior = self.decode(standard_normal_like(out.z), c)
        self._fakes = [out.logits.detach(), prior.detach()]
        if self.adv_scale > 0:
            d_fake, d_prior = self.judge(out.logits, c), self.judge(prior, c)
            adv = 0.5 * ((d_fake[-1] - 1).square().mean() + (d_prior[-1] - 1).square().mean())
            with torch.no_grad():
                d_real = self.judge(x, c)
            fm = feature_matching(d_real[:-1], d_fake[:-1])
            weight = self.adv_scale * self.config.num_features
            total = total + weight * (self.config.adv_weight * adv + self.config.feature_weight * fm)
            terms.update(adv=adv.detach(), feature=fm.detach())
        return LossOutput(total, terms)

    def discriminator_loss(self, batch: dict[str, Tensor]) -> LossOutput:
        """Least squares: real rows → 1, the last ``loss`` call's reconstructions and prior draws → 0."""
        if not self._fakes:
            raise RuntimeError("discriminator_loss needs a generator loss call first")
        c = self.one_hot(batch["label"]).to(batch["features"].device)
        loss_real = (self.judge(batch["features"], c)[-1] - 1).square().mean()
        loss_fake = torch.stack([self.judge(f, c)[-1].square().mean() for f in self._fakes]).mean()
        loss = 0.5 * (loss_real + loss_fake)
        return LossOutput(loss, {"d_real": loss_real.detach(), "d_fake": loss_fake.detach()})

    @torch.no_grad()
    def generate(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """Decode latents ``(B, L)`` with their condition ``c`` (one-hot ``(B, K)``) to rows ``(B, F)``."""
        if c is None:  # what an unconditional caller (``medvae generate``) would ask
            raise UsageError("model: a class-conditional table model draws rows of a class: use 'medvae "
                             "oversample MODEL --class NAME --n N'", param="model")
        return self.decode(z, c)

    @torch.no_grad()
    def draw(self, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """New rows of the classes ``labels`` ``(B,)``: z from the prior, decoded with each class (the decoder's
        mean), in standardised units. ``generator`` makes the draws repeatable."""
        device = next(self.parameters()).device
        z = torch.randn(len(labels), self.latent_dim, generator=generator).to(device)
        return self.decode(z, self.one_hot(labels).to(device))
