"""The MNIST digit classifier whose features give the Fréchet distance: trained here, once, and cached.

The model itself is :class:`medvae.models.digit_classifier.DigitClassifier`; this module trains it on the
embedded MNIST sample (seconds on a CPU) and keeps the result in medvae's cache folder (``MEDVAE_CACHE``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from medvae.models.digit_classifier import DigitClassifier


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


class _Training(nn.Module):
    """The classifier as :func:`medvae.train.fit` trains it: cross-entropy on lightly noised digits (a little
    noise gives features robust to a generator's small artefacts)."""

    def __init__(self, model: DigitClassifier) -> None:
        super().__init__()
        self.model = model

    def loss(self, batch: dict):
        from medvae.models.base import LossOutput

        x = batch["image"]
        noisy = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
        loss = nn.functional.cross_entropy(self.model(noisy), batch["label"])
        return LossOutput(loss, {})


def digit_classifier(epochs: int = 4, seed: int = 0) -> tuple[DigitClassifier, float]:
    """The classifier, trained on the sample's 4,000 training digits (cached after the first call).

    Returns:
        (model in eval mode, its accuracy on the sample's 1,000 test digits).
    """
    from medvae.checkpoint import load_model, save_model
    from medvae.data.datasets import TensorBatches
    from medvae.train import TrainConfig, fit, seed_everything

    path = cache_dir() / f"digit_classifier_fit_e{epochs}_s{seed}.safetensors"
    if path.is_file():
        model, info = load_model(path)
        return model.eval(), float(info.training["test_accuracy"])
    from medvae.train.report import note

    note(f"training the digit classifier for the Fréchet distance once (about a minute; cached in {path.parent})")
    seed_everything(seed)
    model = DigitClassifier()
    x, y = mnist_tensors("train")
    fit(_Training(model), TensorBatches({"image": x, "label": y}), None,
        TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, seed=seed, device="cpu", progress=False))
    model.eval()
    xt, yt = mnist_tensors("test")
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).float().mean())
    save_model(path, model, training={"task": "digit classifier for Fréchet distance", "epochs": epochs,
                                      "seed": seed, "test_accuracy": accuracy})
    return model, accuracy
