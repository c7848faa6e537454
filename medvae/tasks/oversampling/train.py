"""``medvae train cvaegan``: a class-conditional VAE-GAN on images with classes (a folder per class, a CSV, MNIST).

Writes the model file (``--out``, default ``medvae-cvaegan.safetensors``) and beside it, after every epoch,
``<stem>.samples.png`` (one row of draws per class, at fixed latent points) and ``<stem>.state.pt``
(``--resume``). The model file records the class names, the training images per class (what ``oversample
--balance`` tops up) and the training files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from medvae.errors import UsageError, check_positive
from medvae.train.config import TrainConfig, train_defaults

#: a rare class is repeated in each training epoch until it has at least this share of the largest class
RARE_FLOOR = 0.25


@dataclass
class CVAEGANTrainConfig:
    """Settings of :func:`train_cvaegan` (the CLI's options, same names).

    class_limit: ``{"class": N}``: keep at most N training images of that class (to make a class rare, e.g.
        MNIST's 8 cut to 4 images); a seeded choice.
    balance_classes: repeat the images of rare classes within each epoch until every class has at least
        :data:`RARE_FLOOR` of the largest class's count, so the decoder and discriminator see the rare class
        often enough to learn what it is.
    """

    data: str = "mnist"
    out: Path = Path("medvae-cvaegan.safetensors")
    size: int = 28
    spatial_dims: int = 2
    latent_dim: int = 16
    channels: tuple[int, ...] | None = None
    beta: float = 1.0
    likelihood: str = "bernoulli"
    adv_weight: float = 0.05
    feature_weight: float = 0.05
    adv_warmup: int = 1
    val_fraction: float = 0.1
    normalize: str = "percentile"
    class_limit: dict[str, int] = field(default_factory=dict)
    balance_classes: bool = True
    train: TrainConfig = train_defaults(epochs=10, batch_size=64)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.spatial_dims not in (2, 3):
            raise UsageError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}", param="spatial_dims")
        check_positive("size", self.size)
        check_positive("latent_dim", self.latent_dim)
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"val_fraction must be at least 0 and below 1, got {self.val_fraction}",
                             param="val_fraction")
        if self.data == "mnist" and self.spatial_dims == 3:
            raise UsageError("spatial_dims 3 needs a folder of volumes, not mnist", param="spatial_dims")
        from medvae.tasks.generative.train import default_channels

        # images up to 32² (MNIST's 28²) keep the two levels this model has always had there
        self.channels = tuple(self.channels or default_channels(self.size, self.spatial_dims,
                                                                max_levels=2 if self.size <= 32 else 5))


@dataclass
class CVAEGANTrainResult:
    model_path: Path
    record: dict
    counts: dict[str, int]
    n_val: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_labelled_data(config: CVAEGANTrainConfig):
    """The training images with their classes (:class:`medvae.data.classes.LabelledImages`), the class limits
    applied, and a description of their source."""
    from medvae.data.classes import LabelledImages, limit_classes, load_labelled

    if config.data == "mnist":
        from medvae.tasks.generative.train import mnist_images

        images, labels = mnist_images("train", config.size, labels=True)
        labelled = LabelledImages(images, labels, [str(d) for d in range(10)])
        source = "mnist (embedded sample, train)"
    else:
        labelled = load_labelled(config.data, config.size, config.spatial_dims, normalize=config.normalize,
                                 progress=config.train.progress)
        source = Path(config.data).name
    if config.class_limit:
        labelled = limit_classes(labelled, {str(k): int(v) for k, v in config.class_limit.items()},
                                 config.train.seed)
    return labelled, source


def stratified_split(labels, fraction: float, seed: int):
    """``(train, val)`` indices: ``floor(n_k * fraction)`` of each class's ``n_k`` images held out, so a class
    of a few images keeps them all for training."""
    import torch

    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for k in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val = int(len(idx) * fraction)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def balanced_indices(labels, floor: float = RARE_FLOOR):
    """Indices of ``labels`` with each class repeated (whole copies, then a first part) until it has at least
    ``floor`` times the largest class's count."""
    import torch

    counts = torch.bincount(labels)
    target = math.ceil(floor * int(counts.max()))
    parts = []
    for k in torch.nonzero(counts).flatten().tolist():
        idx = torch.nonzero(labels == k).flatten()
        need = max(len(idx), target)
        parts.append(idx.repeat(math.ceil(need / len(idx)))[:need])
    return torch.cat(parts)


def build(config: CVAEGANTrainConfig, num_classes: int):
    from medvae.models import ConditionalVAEGAN, ConditionalVAEGANConfig

    return ConditionalVAEGAN(ConditionalVAEGANConfig(
        spatial_dims=config.spatial_dims, in_shape=(1,) + (config.size,) * config.spatial_dims,
        channels=config.channels, strides=(2,) * len(config.channels), latent_dim=config.latent_dim,
        likelihood=config.likelihood, beta=config.beta, adv_weight=config.adv_weight,
        feature_weight=config.feature_weight, adv_warmup_epochs=config.adv_warmup, num_classes=num_classes))


def train_cvaegan(config: CVAEGANTrainConfig | None = None, **overrides) -> CVAEGANTrainResult | None:
    """Train a class-conditional VAE-GAN and write its model file, previews and training state.

    Returns the result on the process that writes files (None on other ``torchrun`` ranks).
    """
    import torch

    from medvae import checkpoint
    from medvae.data.datasets import TensorBatches
    from medvae.tasks.generative.train import image_preprocessing
    from medvae.train.recipe import Recipe, configure, portable_path

    config = configure(CVAEGANTrainConfig, config, **overrides)
    recipe = Recipe(config, config.out)
    labelled, source = load_labelled_data(config)
    train_idx, val_idx = stratified_split(labelled.labels, config.val_fraction, config.train.seed)
    seen = balanced_indices(labelled.labels[train_idx]) if config.balance_classes else torch.arange(len(train_idx))
    epoch_idx = train_idx[seen]
    train_data = TensorBatches({"image": labelled.images[epoch_idx], "label": labelled.labels[epoch_idx]})
    val_data = (TensorBatches({"image": labelled.images[val_idx], "label": labelled.labels[val_idx]})
                if len(val_idx) else None)
    counts = dict(zip(labelled.classes, torch.bincount(labelled.labels[train_idx],
                                                       minlength=len(labelled.classes)).tolist()))
    model = build(config, len(labelled.classes))
    files = labelled.files
    preprocessing = {**image_preprocessing(config.data, config.size, config.spatial_dims, config.normalize,
                                           labelled.spacing),
                     "classes": labelled.classes, "format": _data_format(files)}
    fixed_z = torch.randn(8, config.latent_dim, generator=torch.Generator().manual_seed(config.train.seed))

    def save(m, record, final):
        training = {"task": "train cvaegan", "data": source, "class_counts": counts,
                    "train_images": len(train_idx), "val_images": len(val_idx),
                    "balance_classes": config.balance_classes, **record.to_dict(), "command": _command(config),
                    "train_files": ([[portable_path(files[i], config.data), labelled.classes[labelled.labels[i]]]
                                     for i in train_idx.tolist()] if files else None)}
        checkpoint.save_model(config.out, m, preprocessing=preprocessing, training=training)

    result = recipe.fit(model, train_data, val_data, save, previews=lambda m: {"samples": class_rows(m, fixed_z)})
    if result is None:
        return None
    return CVAEGANTrainResult(config.out, result, counts, len(val_idx), labelled.skipped)


def class_rows(model, z):
    """Draws at the fixed latent points ``z`` ``(n, L)``, one row per class: what conditioning does at a glance
    (a column keeps its style, a row its class)."""
    import numpy as np
    import torch

    from medvae.viz import display_slices, tile

    k = model.config.num_classes
    device = next(model.parameters()).device
    labels = torch.arange(k).repeat_interleave(len(z))
    images = model.generate(z.repeat(k, 1).to(device), model.one_hot(labels).to(device))
    return tile(np.asarray(display_slices(images)), ncols=len(z))


def _data_format(files) -> str:
    """The format most training files have (what ``oversample`` writes by default): png, nifti or dicom."""
    from collections import Counter

    from medvae.io.images import normalize_format

    if not files:
        return "png"
    kinds = Counter()
    for f in files:
        name = str(f).lower()
        kinds["nifti" if name.endswith((".nii", ".nii.gz")) else "dicom" if name.endswith(".dcm") or
              "." not in Path(name).name else "png"] += 1
    return normalize_format(kinds.most_common(1)[0][0])


def _command(config: CVAEGANTrainConfig) -> str:
    """The command line that reproduces this training (stored in the model file)."""
    from medvae.train.recipe import changed_options

    parts = ["medvae train cvaegan", f"--data {Path(config.data).name}", f"--size {config.size}"]
    defaults = CVAEGANTrainConfig(data=config.data, size=config.size, spatial_dims=config.spatial_dims)
    if config.class_limit:
        parts.append("--class-limit " + ",".join(f"{k}={v}" for k, v in config.class_limit.items()))
    parts += changed_options(config, defaults, ("data", "size", "out", "class_limit"))
    return " ".join(parts)
