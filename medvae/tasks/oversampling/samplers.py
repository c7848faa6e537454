"""The ways of adding minority images that ``evaluate oversampling`` compares, all seeded, all fed only the
training split.

Each sampler takes the training images ``(N, 1, *size)`` in [0, 1] and labels ``(N,)``, the minority class
index, how many images to add and a generator, and returns the new images ``(count, 1, *size)``:

- ``random``: minority images drawn with replacement, each through a small random affine (MONAI
  ``RandAffine``: rotation up to 10°, shift up to 6 %, scale up to 10 %): random oversampling with
  augmentation.
- ``smote-pixels``: SMOTE (imbalanced-learn) on the flattened pixels.
- ``smote-latent``: SMOTE on a VAE's posterior means, decoded.
- ``vae``: a VAE's posterior around each minority image (z ~ q(z|x) of a random minority image), decoded.
- ``cvaegan``: the class-conditional VAE-GAN's prior, decoded as the minority class.

The VAE (a :class:`~medvae.models.ConvVAE`) and the conditional VAE-GAN are trained here on the training split
(all classes) by the one training loop.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SAMPLERS = ("random", "smote-pixels", "smote-latent", "vae", "cvaegan")


def fit_vae(images: Tensor, config, seed: int):
    """A ConvVAE on ``images`` (the VAE of ``smote-latent`` and ``vae``); ``config`` is the evaluation's."""
    from medvae.data.datasets import TensorBatches
    from medvae.models import ConvVAE, ConvVAEConfig
    from medvae.train import TrainConfig, fit, seed_everything

    seed_everything(seed)
    model = ConvVAE(ConvVAEConfig(spatial_dims=images.ndim - 2, in_shape=tuple(images.shape[1:]),
                                  channels=config.channels, strides=(2,) * len(config.channels),
                                  latent_dim=config.latent_dim))
    fit(model, TensorBatches({"image": images}), None,
        TrainConfig(epochs=config.generator_epochs, batch_size=64, seed=seed, device=config.device, progress=False))
    return model.cpu().eval()  # draws are made on the CPU, beside the training split


def fit_cvaegan(images: Tensor, labels: Tensor, num_classes: int, config, seed: int):
    """A class-conditional VAE-GAN on the training split, its rare classes repeated as ``train cvaegan`` does."""
    from medvae.data.datasets import TensorBatches
    from medvae.tasks.oversampling.train import CVAEGANTrainConfig, balanced_indices, build
    from medvae.train import TrainConfig, fit, seed_everything

    seed_everything(seed)
    model = build(CVAEGANTrainConfig(size=images.shape[-1], spatial_dims=images.ndim - 2, channels=config.channels,
                                     latent_dim=config.latent_dim), num_classes)
    idx = balanced_indices(labels)
    fit(model, TensorBatches({"image": images[idx], "label": labels[idx]}), None,
        TrainConfig(epochs=config.generator_epochs, batch_size=64, seed=seed, device=config.device, progress=False))
    return model.cpu().eval()


def augment(images: Tensor, seed: int) -> Tensor:
    """Each image through its own small random affine (MONAI ``RandAffine``), seeded."""
    from monai.transforms import RandAffine

    dims = images.ndim - 2
    affine = RandAffine(prob=1.0, rotate_range=(math.radians(10),) * (1 if dims == 2 else 3),
                        translate_range=tuple(0.06 * n for n in images.shape[2:]), scale_range=(0.1,) * dims,
                        padding_mode="zeros")
    affine.set_random_state(seed)
    return torch.stack([torch.as_tensor(affine(x)) for x in images]).clamp(0, 1)


def _smote(features: Tensor, labels: Tensor, minority: int, count: int, seed: int) -> Tensor:
    """``count`` SMOTE rows of class ``minority`` (imbalanced-learn), from the minority rows of ``features``."""
    from imblearn.over_sampling import SMOTE

    is_min = (labels == minority).numpy()
    n_min = int(is_min.sum())
    if n_min < 2:
        raise ValueError("SMOTE needs at least 2 minority images")
    # the minority against all the rest: SMOTE interpolates between minority neighbours only
    x = features.numpy().reshape(len(features), -1)
    y = is_min.astype(int)
    smote = SMOTE(sampling_strategy={1: n_min + count}, k_neighbors=min(5, n_min - 1), random_state=seed)
    x_new, _ = smote.fit_resample(x, y)
    return torch.from_numpy(x_new[len(x):]).float().reshape(count, *features.shape[1:])


def draw(sampler: str, images: Tensor, labels: Tensor, minority: int, count: int, seed: int,
         models: dict) -> Tensor:
    """``count`` new minority images from ``sampler`` (see the module's list); ``models`` holds the fitted
    ``vae`` and ``cvaegan`` where those samplers need them."""
    if count < 1:
        return images[:0]
    g = torch.Generator().manual_seed(seed)
    minority_images = images[labels == minority]
    if sampler == "random":
        picks = minority_images[torch.randint(len(minority_images), (count,), generator=g)]
        return augment(picks, seed)
    if sampler == "smote-pixels":
        return _smote(images, labels, minority, count, seed).clamp(0, 1)
    with torch.no_grad():
        if sampler == "smote-latent":
            vae = models["vae"]
            mu, _ = vae.encode(images)
            return vae.generate(_smote(mu, labels, minority, count, seed))
        if sampler == "vae":
            vae = models["vae"]
            mu, logvar = vae.encode(minority_images)
            pick = torch.randint(len(minority_images), (count,), generator=g)
            z = mu[pick] + torch.exp(0.5 * logvar[pick]) * torch.randn(count, mu.shape[1], generator=g)
            return vae.generate(z)
        if sampler == "cvaegan":
            return models["cvaegan"].draw(torch.full((count,), minority), generator=g)
    raise ValueError(f"unknown sampler {sampler!r}; one of {', '.join(SAMPLERS)}")
