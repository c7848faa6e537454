"""Class-conditional VAE-GAN: the VAE-GAN of :mod:`medvae.models.vae_gan` told which class each image is.

For oversampling a rare class (Ding et al., IEEE Access 2023, VAE-GAN oversampling of the minority class):
the class, one-hot ``c`` ``(B, K)``, reaches all three parts,

- the **encoder** as K constant extra input channels, so z need not carry the class;
- the **decoder** beside z, so ``decode(z, c)`` draws class ``c`` in the style z;
- the **discriminator** as K extra channels, so it judges "a real image *of this class*" and the generator
  is pushed to make each class look like itself (prior samples are judged with the batch's own labels).

Drawing a class: z from the prior N(0, I), decoded with that class (:meth:`ConditionalVAEGAN.draw`). The
style the decoder learns from the common classes is shared with the rare one: that is what a conditional
model offers over oversampling the few rare images alone. Batches carry ``label`` (class indices, ``(B,)``)
beside ``image``. 2-D and 3-D, as the VAE-GAN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from medvae.errors import UsageError
from medvae.models.vae_gan import VAEGAN, VAEGANConfig


@dataclass
class ConditionalVAEGANConfig(VAEGANConfig):
    """The :class:`VAEGANConfig` fields, plus:

    num_classes: how many classes (2 or more); sets the generator's ``condition`` size.
    """

    num_classes: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise UsageError(f"num_classes must be an integer of 2 or more, got {self.num_classes!r}; "
                             "a conditional model needs at least two classes", param="num_classes")
        self.condition = self.num_classes
        super().__post_init__()


class ConditionalVAEGAN(VAEGAN):
    """Class-conditional VAE-GAN.

    Args:
        config: see :class:`ConditionalVAEGANConfig`.

    Shapes: ``encode(x, c)`` ``(B, C, *spatial)``, ``(B, K)`` → ``(B, L)`` twice; ``decode(z, c)`` → logits
    ``(B, C, *spatial)``; :meth:`draw` → images in [0, 1].
    """

    kind = "cvae_gan"

    def __init__(self, config: ConditionalVAEGANConfig | None = None) -> None:
        super().__init__(config or ConditionalVAEGANConfig())

    def one_hot(self, labels: Tensor) -> Tensor:
        """Class indices ``(B,)`` → the condition ``(B, K)``."""
        labels = torch.as_tensor(labels).long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.config.num_classes):
            raise ValueError(f"class indices must be in 0..{self.config.num_classes - 1}, got "
                             f"{labels.min().item()}..{labels.max().item()}")
        return torch.nn.functional.one_hot(labels, self.config.num_classes).float()

    @torch.no_grad()
    def draw(self, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """New images of the classes ``labels`` ``(B,)``: z from the prior, decoded with each class; ``(B, C,
        *spatial)`` in [0, 1]. ``generator`` makes the draws repeatable."""
        device = next(self.parameters()).device
        z = torch.randn(len(labels), self.latent_dim, generator=generator).to(device)
        return self.generate_from(z, self.one_hot(labels).to(device))

    @torch.no_grad()
    def generate(self, z: Tensor, c: Tensor) -> Tensor:
        """Decode latents ``(B, L)`` with their condition ``c`` (one-hot ``(B, K)``) to images in [0, 1]."""
        return self.generate_from(z, c)
