"""``medvae train enhance``: train the chest X-ray VAE-U-Net on clean radiographs with simulated degradations.

Training pairs are made on the fly: a random patch of a clean image (at full resolution, or reduced 2× or
4× so the model sees anatomy as well as texture), degraded by one or two of
:mod:`medvae.phantoms.degrade`'s degradations at a random severity; the model learns to give back the clean
patch. So a handful of real images suffices. Every image is mapped to [0, 1] by its own minimum and
maximum, exactly as ``medvae enhance`` maps its inputs.

A share of the patches (``clean_fraction``) is left undegraded, so the model also learns to leave a good
film alone, and a share (``annotations``) gets burnt-in annotations (text, arrows, side markers; see
:mod:`medvae.phantoms.annotations`) drawn in before it is degraded, so the model learns to give them back
unchanged instead of treating their sharp edges as defects; a share (``borders``) is cut at the film's own
edge, so the model also sees the film's border rows (often unlike their neighbours after resizing or
collimation) and learns to leave them as they are; a share (``collimation``) gets a flat margin beyond a
sharp straight edge, as where a collimator's shadow or a blank border meets the exposed field; and a share
(``appearance``) gets a random exposure or contrast change applied to the clean patch itself, before the
other degradations, so input and target both carry it: films differ in exposure and contrast, and the model
learns to remove noise, blur and grid lines at any of them while leaving the exposure and contrast alone.

Images named directly (files) are always trained on; images found in folders are split **by patient** (the
patient of each image from ``--patients`` or an ``index.csv`` beside the folder, see
:mod:`medvae.data.patients`; an image no table names is its own patient), and the held-out ones give the
validation loss and are stored in the model file for ``medvae evaluate enhance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import UsageError, check_positive
from medvae.tasks.cxr.trained import TrainedFilmModel
from medvae.train.config import TrainConfig, train_defaults

SCALES = (1, 2, 4)
APPEARANCE = ("contrast", "exposure")  # what --appearance varies in both the input and the target


@dataclass
class EnhanceTrainConfig:
    """Settings of :func:`train_enhance` (the CLI's options, same names)."""

    data: tuple[str, ...] = ()
    out: Path = Path("medvae-enhancer.safetensors")
    init: Path | None = None
    patch: int = 128
    patches_per_epoch: int = 1024
    channels: tuple[int, ...] = (16, 32, 64, 128)
    latent_channels: int = 8
    norm: str = "batch"
    beta: float = 1e-4
    kinds: tuple[str, ...] = ("noise", "blur", "contrast", "grid", "exposure")
    severity: tuple[float, float] = (0.1, 1.0)
    clean_fraction: float = 0.1
    annotations: float = 0.0
    borders: float = 0.0
    collimation: float = 0.0
    appearance: float = 0.0
    patients: str | None = None
    attribution: str = ""
    test_fraction: float = 0.2
    train: TrainConfig = train_defaults(epochs=10, batch_size=16)

    def __post_init__(self) -> None:
        from medvae.phantoms.degrade import DEGRADATIONS

        self.out, self.data = Path(self.out), tuple(str(d) for d in self.data)
        self.init = Path(self.init) if self.init is not None else None
        self.channels, self.kinds = tuple(self.channels), tuple(self.kinds)
        self.severity = tuple(float(s) for s in self.severity)
        for name in ("patch", "patches_per_epoch"):
            check_positive(name, getattr(self, name))
        multiple = 2 ** (len(self.channels) - 1)
        if self.patch % multiple or self.patch < 2 * multiple:
            raise UsageError(f"patch {self.patch} must be a multiple of {multiple} and at least {2 * multiple} "
                             f"(for channels {self.channels}); try 128", param="patch")
        unknown = [k for k in self.kinds if k not in DEGRADATIONS]
        if unknown or not self.kinds:
            raise UsageError(f"kinds {','.join(unknown) or '(none)'}: choose from {', '.join(DEGRADATIONS)}", param="kinds")
        if len(self.severity) != 2 or not 0 <= self.severity[0] <= self.severity[1] <= 1:
            raise UsageError(f"severity must be two numbers 0 <= low <= high <= 1, got {self.severity}", param="severity")
        if not 0 < self.test_fraction < 1:
            raise UsageError(f"test_fraction must be between 0 and 1, got {self.test_fraction}", param="test_fraction")
        if not 0 <= self.clean_fraction < 1:
            raise UsageError(f"clean_fraction must be at least 0 and below 1, got {self.clean_fraction}", param="clean_fraction")
        for name in ("annotations", "borders", "collimation", "appearance"):
            if not 0 <= getattr(self, name) <= 1:
                raise UsageError(f"{name} must be a share between 0 and 1, got {getattr(self, name)}", param=name)


EnhanceTrainResult = TrainedFilmModel  # the name callers know


def read_unit(path: Path) -> np.ndarray:
    """A 2-D radiograph as float32 in [0, 1], shape ``(x, y)`` (its own min → 0, max → 1)."""
    from medvae.io.images import read_image
    from medvae.data.intensity import to_unit

    return to_unit(read_image(path).plane("enhancement trains on 2-D radiographs"))[0]


def image_split(data: tuple[str, ...], test_fraction: float, seed: int, patients: str | None = None
                ) -> tuple[list[Path], list[Path]]:
    """``(train, test)`` image paths: files given directly train; images in folders are split by patient
    (see the module docstring)."""
    from medvae.io.batch import discover
    from medvae.data.patients import patient_split, patients_of

    direct, found, owner = [], [], {}
    for entry in data:
        path = Path(entry)
        images = [p.resolve() for p in discover(path)]
        (direct if path.is_file() else found).extend(images)
        if not path.is_file():
            owner.update(zip(images, patients_of(images, patients, path)[0]))
    direct = list(dict.fromkeys(direct))  # each image once; named files never held out
    found = [p for p in dict.fromkeys(found) if p not in set(direct)]
    if not direct and len(found) < 2:
        raise UsageError(f"data holds {len(found)} image(s); give at least 2 (or name a file to train on)", param="data")
    if len({owner[p] for p in found}) < 2:
        return direct + found, []
    train_idx, test_idx = patient_split([owner[p] for p in found], test_fraction, seed)
    return direct + [found[i] for i in train_idx], [found[i] for i in test_idx]


class DegradedPatches:
    """A map-style dataset of ``{"image": degraded (1, p, p), "target": clean (1, p, p)}``, made on the fly.

    Item ``i`` of epoch ``e`` depends only on ``(seed, e, i)``; the training loop calls :meth:`set_epoch`
    before each epoch (also the epoch a resumed run continues from).
    """

    def __init__(self, images: list[np.ndarray], patch: int, length: int, *, kinds, severity, seed: int,
                 clean_fraction: float = 0.0, annotations: float = 0.0, borders: float = 0.0,
                 collimation: float = 0.0, appearance: float = 0.0) -> None:
        from skimage.transform import downscale_local_mean

        self.pyramid = []  # (image, scale) for every scale at which the image still holds a patch
        for image in images:
            for s in SCALES:
                reduced = image if s == 1 else downscale_local_mean(image, (s, s)).astype(np.float32)
                if min(reduced.shape) >= patch:
                    self.pyramid.append(reduced)
        if not self.pyramid:
            raise UsageError(f"patch {patch} is larger than every training image; pass a smaller --patch", param="patch")
        self.patch, self.length, self.kinds, self.severity, self.seed = patch, length, kinds, severity, seed
        self.clean_fraction, self.annotations, self.borders = clean_fraction, annotations, borders
        self.collimation, self.appearance = collimation, appearance
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        import torch

        from medvae.phantoms.degrade import random_degradation

        rng = np.random.default_rng([self.seed, self.epoch, i])
        image = self.pyramid[rng.integers(len(self.pyramid))]
        x, y = (int(rng.integers(0, n - self.patch + 1)) for n in image.shape)
        if self.borders and rng.random() < self.borders:  # against one of the film's four edges
            edge = int(rng.integers(4))
            start = 0 if edge % 2 == 0 else image.shape[edge // 2] - self.patch
            x, y = (start, y) if edge // 2 == 0 else (x, start)
        clean = image[x:x + self.patch, y:y + self.patch]
        if rng.random() < 0.5:
            clean = clean[::-1]  # left-right: the body is near enough symmetric for texture
        clean = np.ascontiguousarray(clean)
        if self.annotations and rng.random() < self.annotations:  # drawn before degrading: films are degraded whole
            from medvae.phantoms.annotations import burn_in

            clean = burn_in(clean, rng)
        if self.collimation and rng.random() < self.collimation:  # a blank margin beyond a sharp edge
            from medvae.phantoms.annotations import collimate

            clean = collimate(clean, rng)
        if self.appearance and rng.random() < self.appearance:  # another exposure or contrast: kept in the target
            from medvae.phantoms.degrade import degrade

            clean = degrade(clean, APPEARANCE[int(rng.integers(len(APPEARANCE)))], float(rng.uniform()), rng)
        if rng.random() < self.clean_fraction:  # a good film: learn to leave it alone
            degraded = clean
        else:
            degraded, _ = random_degradation(clean, rng, kinds=self.kinds, severity=self.severity)
        return {"image": torch.from_numpy(degraded[None].astype(np.float32)),
                "target": torch.from_numpy(clean[None].astype(np.float32))}


def train_enhance(config: EnhanceTrainConfig | None = None, **overrides) -> EnhanceTrainResult | None:
    """Train the enhancer and write its model file (see the module docstring)."""
    from medvae import checkpoint
    from medvae.models.enhancer import EnhancerConfig, EnhancerModel
    from medvae.train.recipe import Recipe, configure, plain_config, portable_command, portable_path

    config = configure(EnhanceTrainConfig, config, **overrides)
    if not config.data:
        raise UsageError("data must name clean radiographs: files or folders of them", param="data")
    recipe = Recipe(config, config.out)
    seed = config.train.seed
    train_paths, test_paths = image_split(config.data, config.test_fraction, seed, config.patients)
    history: list[str] = []  # the commands that made the init model, oldest first
    if config.init is not None:  # fine-tune: the architecture comes from the model file
        from medvae.checkpoint import load_model_of_kind

        if config.init.resolve() == config.out.resolve():
            raise UsageError(f"init {config.init} is also --out; write the fine-tuned model to another file", param="init")
        model, init_info = load_model_of_kind(config.init, "enhancer", option="init")
        model.train()
        history = [portable_command(c) for c in
                   [*init_info.training.get("history", []), init_info.training.get("command", "?")]]
    else:
        model = EnhancerModel(EnhancerConfig(channels=config.channels, latent_channels=config.latent_channels,
                                             norm=config.norm, beta=config.beta))
    options = dict(kinds=config.kinds, severity=config.severity, clean_fraction=config.clean_fraction,
                   annotations=config.annotations, borders=config.borders, collimation=config.collimation,
                   appearance=config.appearance)
    train_data = DegradedPatches([read_unit(p) for p in train_paths], config.patch, config.patches_per_epoch,
                                 seed=seed, **options)
    val_data = None
    if test_paths:  # a fixed validation set: the same patches and degradations every epoch
        val = DegradedPatches([read_unit(p) for p in test_paths], config.patch, 128, seed=seed + 1, **options)
        val_data = [val[i] for i in range(len(val))]
    preprocessing = {"pipeline": "enhance", "normalize": "min-max per image to [0, 1]",
                     "multiple": model.config.multiple, "patch": config.patch, "scales": list(SCALES),
                     "degradations": list(config.kinds), "severity": list(config.severity),
                     "clean_fraction": config.clean_fraction, "annotations": config.annotations,
                     "borders": config.borders, "collimation": config.collimation,
                     "appearance": config.appearance}

    folders = [Path(d) for d in config.data if Path(d).is_dir()]

    def recorded(path: Path) -> str:  # relative to the --data folder it came from: no machine's own folders
        root = next((f for f in folders if path.is_relative_to(f.resolve())), path.parent)
        return portable_path(path, root)

    def training(record):
        return {"task": "train enhance", "data": list(config.data),
                "train_images": [recorded(p) for p in train_paths], "test_images": [recorded(p) for p in test_paths],
                "data_attribution": config.attribution or None, "config": plain_config(config), **record.to_dict(),
                "command": _command(config), "history": history}

    def save(m, record, final):
        checkpoint.save_model(config.out, m, preprocessing=preprocessing, training=training(record))

    shown = val_data[:4] if val_data else [train_data[i] for i in range(4)]
    result = recipe.fit(model, train_data, val_data, save, previews=lambda m: previews(m, shown))
    if result is None:
        return None
    return EnhanceTrainResult(config.out, result, [str(p) for p in train_paths], [str(p) for p in test_paths])

def previews(model, items: list[dict]) -> dict:
    """``patches``: up to four patches, a row each of degraded, enhanced and clean (``<stem>.patches.png``)."""
    import torch

    from medvae.viz import tile

    device = next(model.parameters()).device
    degraded = torch.stack([item["image"] for item in items]).to(device)
    enhanced = model.enhance(degraded).float().cpu()
    rows = [[item["image"][0], e[0], item["target"][0]] for item, e in zip(items, enhanced)]
    return {"patches": tile(np.stack([np.asarray(p).T for row in rows for p in row]), ncols=3)}


def _command(config: EnhanceTrainConfig) -> str:
    """The command line that reproduces this training (stored in the model file)."""
    from medvae.train.recipe import changed_options

    parts = ["medvae train enhance"] + [f"--data {d}" for d in config.data]
    parts += changed_options(config, EnhanceTrainConfig(data=config.data), ("data",))
    return " ".join(parts)
