"""``medvae train vae|vaegan``: a convolutional VAE or VAE-GAN on a folder of images or on MNIST.

Writes the model file (``--out``, default ``medvae-vae.safetensors``), and beside it, after every epoch,
``<stem>.recon.png`` (validation images over their reconstructions), ``<stem>.samples.png`` (draws from
the prior) and ``<stem>.state.pt`` (for ``--resume``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medvae.errors import UsageError, check_positive
from medvae.train.config import TrainConfig, train_defaults

KINDS = {"vae": "conv_vae", "vaegan": "vae_gan"}


@dataclass
class GenerativeTrainConfig:
    """Settings of :func:`train_generative` (the CLI's options, same names)."""

    kind: str = "vae"
    data: str = "mnist"
    out: Path = Path("medvae-vae.safetensors")
    size: int = 32
    spatial_dims: int = 2
    latent_dim: int = 16
    channels: tuple[int, ...] | None = None
    beta: float = 1.0
    kl_warmup: int = 0
    likelihood: str = "bernoulli"
    adv_weight: float = 0.05
    feature_weight: float = 0.05
    adv_warmup: int = 1
    val_fraction: float = 0.1
    normalize: str = "percentile"
    limit: int | None = None
    digits: tuple[int, ...] | None = None  # MNIST only: train on these digits (the others are anomalies)
    anomaly_samples: int = 16  # latent samples per held-out image for the normal scores kept in the model file
    train: TrainConfig = train_defaults(epochs=10, batch_size=32)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.kind not in KINDS:
            raise UsageError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}", param="kind")
        if self.spatial_dims not in (2, 3):
            raise UsageError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}", param="spatial_dims")
        check_positive("size", self.size)
        check_positive("latent_dim", self.latent_dim)
        if not 0 < self.val_fraction < 1:
            raise UsageError(f"val_fraction must be between 0 and 1, got {self.val_fraction}", param="val_fraction")
        if self.digits is not None:
            self.digits = tuple(int(d) for d in self.digits)
            if self.data != "mnist" or not self.digits or any(d not in range(10) for d in self.digits):
                raise UsageError(f"digits takes MNIST digits 0-9 with --data mnist, got {self.digits}", param="digits")
        if self.data == "mnist" and self.spatial_dims == 3:
            raise UsageError("spatial_dims 3 needs a folder of volumes, not mnist", param="spatial_dims")
        self.channels = tuple(self.channels or default_channels(self.size, self.spatial_dims))


def default_channels(size: int, spatial_dims: int, max_levels: int = 5) -> tuple[int, ...]:
    """Channels per level from the image size: 2 to ``max_levels`` levels (one per halving down to about 4
    pixels), 32 channels doubling per level in 2-D, 16 in 3-D."""
    levels = min(max_levels, max(2, int(math.log2(size)) - 2))
    base = 32 if spatial_dims == 2 else 16
    return tuple(base * 2**i for i in range(levels))


def image_preprocessing(data: str, size: int, spatial_dims: int, normalize: str, spacing) -> dict:
    """What a generative model file records of its input: the pipeline, size, intensity window and axes."""
    return {
        "pipeline": "image_folder" if data != "mnist" else "mnist",
        "size": [size] * spatial_dims,
        "spatial_dims": spatial_dims,
        "normalize": normalize if data != "mnist" else "none (0..255 → 0..1)",
        "intensity": "window mapped to [0, 1]",
        "spacing": list(spacing) if spacing else None,
        "axes": "(C, x, y[, z]) as medvae reads images",
    }


@dataclass
class GenerativeTrainResult:
    model_path: Path
    record: dict
    n_train: int
    n_val: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_training_images(config: GenerativeTrainConfig):
    """``(images (N, 1, *size) in [0, 1], spacing or None, source, skipped, files or None)`` from ``config.data``."""
    if config.data == "mnist":  # the sample's training split; its test split stays out for evaluation
        images = mnist_images("train", config.size, config.digits)
        # MNIST's digits have no physical size: no spacing (generated files then claim none)
        return (images[: config.limit] if config.limit else images, None, "mnist (embedded sample, train)", [], None)
    from medvae.data.datasets import load_image_folder

    folder = load_image_folder(config.data, config.size, config.spatial_dims, normalize=config.normalize,
                               limit=config.limit, progress=config.train.progress)
    return (folder.images, folder.spacing, str(Path(config.data).resolve()), folder.skipped,
            [str(Path(f).resolve()) for f in folder.files])


def mnist_images(split_name: str, size: int, digits=None, labels: bool = False):
    """The embedded MNIST sample's ``split_name`` images as ``(N, 1, size, size)`` in [0, 1], (x, y) order (only
    ``digits`` where given; with ``labels``, ``(images, labels)``)."""
    import torch

    from medvae.tasks.generative.classifier import mnist_tensors

    images, label = mnist_tensors(split_name)
    if digits is not None:
        keep = torch.isin(label, torch.as_tensor(list(digits), dtype=label.dtype))
        images, label = images[keep], label[keep]
    if size != 28:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                                                 align_corners=False).clamp_(0, 1)
    return (images, label) if labels else images


def build(config: GenerativeTrainConfig):
    from medvae.models import ConvVAE, ConvVAEConfig, VAEGAN, VAEGANConfig

    common = dict(spatial_dims=config.spatial_dims, in_shape=(1,) + (config.size,) * config.spatial_dims,
                  channels=config.channels, strides=(2,) * len(config.channels), latent_dim=config.latent_dim,
                  likelihood=config.likelihood, beta=config.beta, kl_warmup_epochs=config.kl_warmup)
    if config.kind == "vae":
        return ConvVAE(ConvVAEConfig(**common))
    return VAEGAN(VAEGANConfig(**common, adv_weight=config.adv_weight, feature_weight=config.feature_weight,
                               adv_warmup_epochs=config.adv_warmup))


def train_generative(config: GenerativeTrainConfig | None = None, **overrides) -> GenerativeTrainResult | None:
    """Train a ConvVAE or VAE-GAN and write its model file, previews and training state.

    Returns the result on the process that writes files (None on other ``torchrun`` ranks).
    """
    import torch

    from medvae import checkpoint
    from medvae.data.datasets import TensorBatches
    from medvae.data.patients import random_split
    from medvae.train.recipe import Recipe, configure

    config = configure(GenerativeTrainConfig, config, **overrides)
    recipe = Recipe(config, config.out)
    images, spacing, source, skipped, files = load_training_images(config)
    train_idx, val_idx = random_split(len(images), config.val_fraction, config.train.seed)
    train_data = TensorBatches({"image": images[train_idx]})
    val_data = TensorBatches({"image": images[val_idx]})
    model = build(config)
    preprocessing = image_preprocessing(config.data, config.size, config.spatial_dims, config.normalize, spacing)
    fixed_z = torch.randn(16, config.latent_dim, generator=torch.Generator().manual_seed(config.train.seed))
    preview_images = images[val_idx[:8]]

    def save(m, record, final):
        if final and len(val_idx):  # what normal looks like to the model: 'medvae score' places images among these
            preprocessing["anomaly"] = normal_reference(m, images[val_idx], config)
        training = {"task": f"train {config.kind}", "data": source, "train_images": len(train_idx),
                    "val_images": len(val_idx), **record.to_dict(), "command": _command(config),
                    "digits": list(config.digits) if config.digits else None,
                    # the held-out files, so 'evaluate generative --data <the same folder>' scores only them
                    "val_files": [files[i] for i in val_idx] if files else None}
        checkpoint.save_model(config.out, m, preprocessing=preprocessing, training=training)

    result = recipe.fit(model, train_data, val_data, save,
                        previews=lambda m: previews(m, preview_images, fixed_z))
    if result is None:
        return None
    return GenerativeTrainResult(config.out, result, len(train_idx), len(val_idx), skipped)


def normal_reference(model, images, config: GenerativeTrainConfig) -> dict:
    """The anomaly scores of the held-out (normal) ``images`` (:mod:`medvae.anomaly.calibration`)."""
    from medvae.anomaly.calibration import reference
    from medvae.anomaly.scores import score_images

    was_training = model.training
    model.eval()
    try:
        scores, _ = score_images(model, images, samples=config.anomaly_samples, seed=config.train.seed)
    finally:
        model.train(was_training)
    return reference({k: v.numpy() for k, v in scores.items()}, samples=config.anomaly_samples,
                     seed=config.train.seed, source="the validation images held out of training")


def previews(model, images, z) -> dict:
    """``recon`` (validation images over their reconstructions) and ``samples`` (draws from the prior at
    the fixed points ``z``), each one tiled image (written as ``<stem>.recon.png`` and ``<stem>.samples.png``)."""
    from medvae.viz import display_slices, tile

    device = next(model.parameters()).device
    x = images.to(device)
    mu, _ = model.encode(x)
    recon = model.generate(mu)
    samples = model.generate(z.to(device))
    return {"recon": tile(np.concatenate([display_slices(x), display_slices(recon)]), ncols=len(images)),
            "samples": tile(display_slices(samples), ncols=8)}


def _command(config: GenerativeTrainConfig) -> str:
    """The command line that reproduces this training (stored in the model file)."""
    from medvae.train.recipe import changed_options

    parts = [f"medvae train {config.kind}", f"--data {config.data}", f"--size {config.size}"]
    defaults = GenerativeTrainConfig(kind=config.kind, data=config.data, size=config.size,
                                     spatial_dims=config.spatial_dims)
    parts += changed_options(config, defaults, ("kind", "data", "size", "out"))
    return " ".join(parts)
