"""A small MNIST digit classifier whose penultimate layer is the feature space of medvae's Fréchet distance.

Standard FID needs Inception weights downloaded from the internet; a classifier that medvae trains
itself on the embedded MNIST sample (seconds on a CPU) gives a digit-aware feature space that works
offline and is the same on every machine with the same seed. Built from MONAI ``Convolution`` blocks.
Images are ``(B, 1, 28, 28)`` in medvae's (x, y) order and [0, 1]; other sizes are resized.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
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


def cache_dir() -> Path:
    return Path(os.environ.get("MEDVAE_CACHE", Path.home() / ".cache" / "medvae"))


def mnist_tensors(split: str = "train") -> tuple[Tensor, Tensor]:
    """The embedded MNIST sample as ``(N, 1, 28, 28)`` in [0, 1], (x, y) order, and labels."""
    import numpy as np

    from medvae.data.mnist import load_mnist

    mnist = load_mnist(None)
    images = mnist.train_images if split == "train" else mnist.test_images
    labels = mnist.train_labels if split == "train" else mnist.test_labels
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 2, 1))).float().div_(255)[:, None]
    return x, torch.from_numpy(labels.astype("int64"))


def digit_classifier(epochs: int = 4, seed: int = 0) -> tuple[DigitClassifier, float]:
    """The classifier, trained on the sample's 4,000 training digits (cached after the first call).

    Returns:
        (model in eval mode, its accuracy on the sample's 1,000 test digits).
    """
    from medvae.checkpoint import load_model, save_model

    path = cache_dir() / f"digit_classifier_e{epochs}_s{seed}.safetensors"
    if path.is_file():
        model, info = load_model(path)
        return model.eval(), float(info.training["test_accuracy"])
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier()
    x, y = mnist_tensors("train")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            batch = x[idx] + 0.05 * torch.randn(len(idx), 1, 28, 28, generator=g)  # a little noise: robust features
            loss = nn.functional.cross_entropy(model(batch.clamp(0, 1)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    xt, yt = mnist_tensors("test")
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).float().mean())
    save_model(path, model, training={"task": "digit classifier for Fréchet distance", "epochs": epochs,
                                      "seed": seed, "test_accuracy": accuracy})
    return model, accuracy
