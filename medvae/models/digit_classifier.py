"""A small MNIST digit classifier whose penultimate layer is the feature space of medvae's Fréchet distance.

Standard FID needs Inception weights downloaded from the internet; a classifier that medvae trains
itself on the embedded MNIST sample (seconds on a CPU) gives a digit-aware feature space that works
offline and is the same on every machine with the same seed. Built from MONAI ``Convolution`` blocks.
Images are ``(B, 1, 28, 28)`` in medvae's (x, y) order and [0, 1]; other sizes are resized.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass
class DigitClassifierConfig:
    """Args:
    channels: channels of the two strided convolution blocks.
    features: size of the feature layer used for the Fréchet distance.
    """

    channels: tuple[int, int] = (32, 64)
    features: int = 128


class DigitClassifier(nn.Module):
    """Two strided convolutions, a feature layer and a 10-way output.

    Shapes: ``(B, 1, H, W)`` → ``features`` ``(B, F)`` → logits ``(B, 10)``.
    """

    kind = "digit_classifier"

    def __init__(self, config: DigitClassifierConfig | None = None) -> None:
        from monai.networks.blocks import Convolution

        super().__init__()
        self.config = config = config or DigitClassifierConfig()
        c1, c2 = config.channels
        self.body = nn.Sequential(
            Convolution(2, 1, c1, strides=2, kernel_size=3, act="RELU", norm="BATCH"),   # 28 → 14
            Convolution(2, c1, c2, strides=2, kernel_size=3, act="RELU", norm="BATCH"),  # 14 → 7
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, config.features),
            nn.ReLU(),
        )
        self.head = nn.Linear(config.features, 10)

    def features(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (28, 28):
            x = nn.functional.interpolate(x.float(), size=(28, 28), mode="bilinear", antialias=True,
                                          align_corners=False)
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


