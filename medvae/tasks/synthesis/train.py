"""``medvae train synthesis``: a conditional VAE-GAN (or the L1 U-Net baseline) from source modalities to a target.

Subjects are split, not slices (``holdout="subjects"``, the default): every slice (or patch) of a held-out
subject stays out of training. The held-out subjects' slices give the validation loss printed after each
epoch (nothing is selected on it), and their folders are stored in the model file so ``medvae evaluate
synthesis`` scores only them.

With one subject, or on request, ``holdout="slabs"`` (2-D only) holds out contiguous axial slabs of every
subject instead: blocks of 16 mm from the lowest brain slice, every ``round(1 / test_fraction)``-th held out
(the first at block ``seed % period``), and 8 mm beside each held-out slab used for nothing, so that the
through-plane interpolation of thick-slice acquisitions does not leak (see :mod:`medvae.data.slabs`). The
held-out slabs' slices give the validation loss, and their ranges (slice indices on the model's grid and
world S coordinates in mm) are stored per subject in the model file's training record under
``heldout_slabs``, so an evaluation can score only them (:func:`medvae.data.slabs.heldout_voxels`).

The target is divided by one fixed scale, the 99th percentile of the training targets inside the brain
(training slabs only with ``holdout="slabs"``), so predictions come back in the target's own units.

Writes the model file (``--out``), ``<stem>.preview.png`` after every epoch (a held-out slice: sources,
target, mean of 4 samples, their spread) and ``<stem>.state.pt`` for ``--resume``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import UsageError, check_positive
from medvae.train.config import TrainConfig, train_defaults

MODELS = ("vaegan", "unet")
HOLDOUTS = ("subjects", "slabs")


@dataclass
class SynthesisTrainConfig:
    """Settings of :func:`train_synthesis` (the CLI's options, same names)."""

    data: str = ""
    sources: tuple[str, ...] = ("t1",)
    target: str = "cbf"
    out: Path = Path("medvae-synthesis.safetensors")
    model: str = "vaegan"
    spatial_dims: int = 2
    patch_size: int = 32
    patches_per_subject: int = 64
    spacing: tuple[float, ...] | None = None
    channels: tuple[int, ...] = (16, 32, 64, 128)
    latent_channels: int = 4
    global_latent: int = 0
    global_gain: bool = False
    beta: float = 0.05
    free_bits: float = 0.0
    adv_weight: float = 0.02
    adv_warmup: int = 1
    test_fraction: float = 0.25
    holdout: str = "subjects"
    limit: int | None = None
    train: TrainConfig = train_defaults(epochs=20, batch_size=16)

    def __post_init__(self) -> None:
        from medvae.data.paired import check_modalities

        self.out = Path(self.out)
        self.sources = tuple(s.lower() for s in self.sources)
        self.target = self.target.lower()
        self.channels = tuple(self.channels)
        check_modalities(list(self.sources), self.target)
        if self.model not in MODELS:
            raise UsageError(f"model must be vaegan or unet (the L1 baseline), got {self.model!r}", param="model")
        if self.spatial_dims not in (2, 3):
            raise UsageError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}", param="spatial_dims")
        for name in ("patch_size", "patches_per_subject"):
            check_positive(name, getattr(self, name))
        multiple = 2 ** (len(self.channels) - 1)
        if self.spatial_dims == 3 and self.patch_size % multiple:
            raise UsageError(f"patch_size {self.patch_size} must be a multiple of {multiple} "
                             f"(2 ** (levels - 1) for channels {self.channels}); try {multiple * 4}", param="patch_size")
        if self.spatial_dims == 3 and self.patch_size < 16:
            raise UsageError(f"patch_size {self.patch_size} is too small for the patch discriminator; use 16 or more", param="patch_size")
        if not 0 < self.test_fraction < 1:
            raise UsageError(f"test_fraction must be between 0 and 1, got {self.test_fraction}", param="test_fraction")
        self.holdout = str(self.holdout).lower()
        if self.holdout not in HOLDOUTS:
            raise UsageError(f"holdout must be subjects (hold out whole subjects) or slabs (hold out axial slabs "
                             f"of each subject), got {self.holdout!r}", param="holdout")
        if self.holdout == "slabs" and self.spatial_dims != 2:
            raise UsageError("holdout slabs needs spatial_dims 2: 3-D patches would reach across the held-out "
                             "slabs", param="holdout")
        if self.spacing is not None:
            self.spacing = tuple(float(s) for s in self.spacing)
            if len(self.spacing) != 3 or min(self.spacing) <= 0:
                raise UsageError(f"spacing must be three positive sizes in mm, got {self.spacing}", param="spacing")


@dataclass
class SynthesisTrainResult:
    model_path: Path
    record: dict
    train_subjects: list[str]
    test_subjects: list[str]
    n_train: int
    n_val: int


def load_subjects(config: SynthesisTrainConfig):
    """``(subjects, images)``: each subject's ``{modality: Image}`` (sources, target, mask if any)."""
    from medvae.data.paired import find_subjects, read_subject_folder

    modalities = [*config.sources, config.target]
    subjects = find_subjects(config.data, modalities)
    if config.limit:
        subjects = subjects[: config.limit]
    return subjects, [read_subject_folder(s.folder, modalities) for s in subjects]


def model_spacing(images: list[dict], source: str) -> tuple[float, float, float]:
    """The median voxel size of the training subjects' first source, mm."""
    sizes = np.array([np.sqrt((im[source].affine[:3, :3] ** 2).sum(0)) for im in images])
    return tuple(float(round(v, 3)) for v in np.median(sizes, axis=0))


def training_examples(prepared: list, scale: float, config: SynthesisTrainConfig, seed: int,
                      slices: list[np.ndarray] | None = None):
    """``{"source": (N, S, *spatial), "target": (N, 1, *spatial)}`` tensors: axial slices holding brain (2-D;
    only those flagged in ``slices``, one boolean ``(Z,)`` per subject, where given) or patches centred on
    brain voxels (3-D, MONAI ``RandCropByPosNegLabel``)."""
    import torch

    if config.spatial_dims == 2:
        size = np.max([p.source.shape[1:3] for p in prepared], axis=0)
        src, tgt = [], []
        for i, p in enumerate(prepared):
            x = np.concatenate([p.source.numpy(), p.target[None] / scale, p.mask[None]])
            pad = [(0, 0)] + [((s - n) // 2, s - n - (s - n) // 2) for s, n in zip(size, x.shape[1:3])] + [(0, 0)]
            x = np.pad(x, pad)
            keep = x[-1].mean(axis=(0, 1)) > 0.01  # slices with at least 1% brain
            if slices is not None:
                keep = keep & slices[i]
            x = np.moveaxis(x[..., keep], -1, 0)  # (slices, C, X, Y)
            src.append(x[:, :-2])
            tgt.append(x[:, -2:-1])
        return {"source": torch.from_numpy(np.concatenate(src)), "target": torch.from_numpy(np.concatenate(tgt))}
    from monai.transforms import RandCropByPosNegLabel, SpatialPad

    crop = RandCropByPosNegLabel(spatial_size=[config.patch_size] * 3, pos=1, neg=0,
                                 num_samples=config.patches_per_subject)
    crop.set_random_state(seed)
    pad = SpatialPad([config.patch_size] * 3)
    src, tgt = [], []
    for p in prepared:
        x = pad(np.concatenate([p.source.numpy(), p.target[None] / scale]))
        label = pad(p.mask[None].astype(np.float32))
        for patch in crop(x, label=label):
            patch = np.asarray(patch)
            src.append(patch[:-1])
            tgt.append(patch[-1:])
    return {"source": torch.from_numpy(np.stack(src)), "target": torch.from_numpy(np.stack(tgt))}


def slab_splits(prepared: list, subjects: list, config: SynthesisTrainConfig) -> list:
    """Each prepared subject's :class:`~medvae.data.slabs.SlabSplit` (``holdout="slabs"``)."""
    from medvae.data.slabs import period_of, split_slabs

    period = period_of(config.test_fraction)
    return [split_slabs(p.mask.any(axis=(0, 1)), np.asarray(p.source.affine), p.mask.shape, period=period,
                        phase=config.train.seed % period, name=s.name) for p, s in zip(prepared, subjects)]


def build(config: SynthesisTrainConfig):
    from medvae.models import SynthesisConfig, SynthesisModel

    gan = config.model == "vaegan"
    return SynthesisModel(SynthesisConfig(
        spatial_dims=config.spatial_dims, in_channels=len(config.sources), channels=config.channels,
        latent_channels=config.latent_channels if gan else 0, global_latent=config.global_latent if gan else 0,
        global_gain=config.global_gain and gan,
        beta=config.beta if gan else 0.0, free_bits=config.free_bits if gan else 0.0, gan=gan,
        aleatoric=gan,
        adv_weight=config.adv_weight, adv_warmup_epochs=config.adv_warmup))


def train_synthesis(config: SynthesisTrainConfig | None = None, **overrides) -> SynthesisTrainResult | None:
    """Train a synthesis model on subject folders and write its model file (see the module docstring)."""
    from medvae import checkpoint
    from medvae.data.datasets import TensorBatches
    from medvae.data.paired import prepare_subject
    from medvae.data.patients import random_split
    from medvae.train.recipe import Recipe, configure, plain_config

    config = configure(SynthesisTrainConfig, config, **overrides)
    if not config.data:
        raise UsageError("data must be a folder of subject folders (DIR/<subject>/<modality>.nii.gz)", param="data")
    recipe = Recipe(config, config.out)
    seed = config.train.seed
    subjects, images = load_subjects(config)
    slabs = config.holdout == "slabs"
    if not slabs and len(subjects) < 2:
        raise UsageError(f"holdout subjects needs at least 2 subjects to hold one out, found {len(subjects)} in "
                         f"{config.data}; hold out axial slabs of it instead with holdout slabs", param="holdout")
    if slabs:  # every subject trains on its training slabs and is tested on its held-out slabs
        train_idx = test_idx = np.arange(len(subjects))
    else:
        train_idx, test_idx = random_split(len(subjects), config.test_fraction, seed)
    spacing = config.spacing or model_spacing([images[i] for i in train_idx], config.sources[0])
    model = build(config)
    multiple = model.config.multiple
    prepared = [prepare_subject(im, list(config.sources), spacing=spacing, multiple=multiple,
                                spatial_dims=config.spatial_dims, target=config.target) for im in images]
    split = slab_splits(prepared, subjects, config) if slabs else None
    train_slices = [split[i].train for i in train_idx] if slabs else None
    test_slices = [split[i].heldout for i in test_idx] if slabs else None
    in_mask = np.concatenate([prepared[i].target[prepared[i].mask & (split[i].train if slabs else True)]
                              for i in train_idx])
    scale = float(np.percentile(in_mask, 99)) if in_mask.size else 0.0
    if not scale > 0:
        raise UsageError(f"data holds {config.target} images that are zero inside the brain; "
                         "check --target", param="data")
    train_data = TensorBatches(training_examples([prepared[i] for i in train_idx], scale, config, seed,
                                                 train_slices))
    val_data = TensorBatches(training_examples([prepared[i] for i in test_idx], scale, config, seed + 1,
                                               test_slices))
    preprocessing = {
        "pipeline": "synthesis",
        "sources": list(config.sources),
        "target": config.target,
        "spatial_dims": config.spatial_dims,
        "spacing": list(spacing),
        "orientation": "RAS",
        "multiple": multiple,
        "slices": "axial (the third RAS axis)" if config.spatial_dims == 2 else None,
        "patch_size": config.patch_size if config.spatial_dims == 3 else None,
        "normalize": "z-score over non-zero voxels, per volume and source",
        "target_scale": scale,
    }
    preview = prepared[test_idx[0]]
    preview_z = None
    if slabs:  # the held-out slice with the most brain
        preview_z = int(np.argmax(preview.mask.sum(axis=(0, 1)) * split[test_idx[0]].heldout))
    held = {"holdout": config.holdout}
    if slabs:
        from medvae.data.slabs import GAP_MM, SLAB_MM, period_of

        period = period_of(config.test_fraction)
        held.update(slab_mm=SLAB_MM, gap_mm=GAP_MM, slab_period=period, slab_phase=seed % period,
                    heldout_slabs={str(subjects[i].folder.resolve()): split[i].to_dict() for i in test_idx})

    def save(m, record, final):
        training = {"task": f"train synthesis ({config.model})", "data": str(Path(config.data).resolve()),
                    "train_subjects": [str(subjects[i].folder.resolve()) for i in train_idx],
                    "test_subjects": [str(subjects[i].folder.resolve()) for i in test_idx], **held,
                    "train_examples": len(train_data), "val_examples": len(val_data),
                    "config": plain_config(config), **record.to_dict(), "command": _command(config)}
        checkpoint.save_model(config.out, m, preprocessing=preprocessing, training=training)

    result = recipe.fit(model, train_data, val_data, save,
                        previews=lambda m: previews(m, preview, scale, preview_z))
    if result is None:
        return None
    return SynthesisTrainResult(config.out, result, [subjects[i].name for i in train_idx],
                                [subjects[i].name for i in test_idx], len(train_data), len(val_data))


def previews(model, prepared, scale: float, z: int | None = None) -> dict:
    """``preview``: one held-out slice (``z``, or that with the most brain), each source, the target, the mean
    of 4 draws and the predicted spread side by side (``<stem>.preview.png``)."""
    import torch

    from medvae.models.synthesis import predictive_moments
    from medvae.viz import tile

    src = prepared.source.as_tensor()
    z = int(np.argmax(prepared.mask.sum(axis=(0, 1)))) if z is None else z
    device = next(model.parameters()).device
    if model.config.spatial_dims == 2:
        x = src[..., z][None].to(device)
    else:
        m = model.config.multiple * 4
        x = src[None].to(device)
        x = x[..., max(0, z - m // 2): max(0, z - m // 2) + m]
        if x.shape[-1] % model.config.multiple:
            return {}
    draws = model.generator.sample(x, 4, generator=torch.Generator(device).manual_seed(0)).float().cpu()
    mean, std = (v[0].numpy() for v in predictive_moments(draws))
    if model.config.spatial_dims == 3:
        mean, std = mean[..., min(z, m // 2)], std[..., min(z, m // 2)]
    target = prepared.target[..., z] / scale
    panels = [np.clip((s[..., z].numpy() + 2) / 6, 0, 1) for s in src] + [np.clip(v, 0, 1) for v in
                                                                           (target, mean)]
    panels.append(np.clip(std / max(float(std.max()), 1e-6), 0, 1))
    return {"preview": tile(np.swapaxes(np.stack(panels), 1, 2)[:, ::-1], ncols=len(panels))}


def _command(config: SynthesisTrainConfig) -> str:
    """The command line that reproduces this training (stored in the model file)."""
    from medvae.train.recipe import changed_options

    parts = [f"medvae train synthesis --data {config.data}"] + [f"--source {s}" for s in config.sources]
    parts.append(f"--target {config.target}")
    defaults = SynthesisTrainConfig(data=config.data, sources=config.sources, target=config.target)
    parts += changed_options(config, defaults, ("data", "sources", "target", "out"))
    return " ".join(parts)
