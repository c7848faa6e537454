"""``medvae train segment``: train the ResUNet++ lung segmenter on radiographs with lung masks.

Images and masks come from :func:`medvae.data.lung_datasets.lung_pairs`, which reads a plain
``--images DIR --masks DIR`` pair of folders or the public sets' own layouts (Montgomery, Shenzhen,
JSRT + SCR). Every radiograph is mapped to [0, 1] by its minimum and maximum and resized to ``size``²
(the whole image: lungs fill most of a chest radiograph); masks are resized with nearest neighbours.
Training uses MONAI random affine and contrast augmentation; ``exposure`` gives a share of the training films
simulated over- or under-exposure (:mod:`medvae.phantoms.degrade`) as well, so that a badly exposed film still
segments, and ``opacity`` a share simulated airspace opacity over their lungs (:mod:`medvae.phantoms.opacity`),
the mask unchanged, so that a lung whose edge consolidation or effusion hides is still drawn to where it is.

Images are held out **by patient**: the patient of each image comes from an index CSV (``--patients``, or an
``index.csv`` beside the images folder or in its parent, as the shared lung set has; see
:mod:`medvae.data.patients`), and an image no table names is its own patient. ``--folds K --fold I`` holds out
fold ``I`` of a patient-level K-fold split (train K models, one per fold, and ``medvae evaluate segment`` scores
each on its own fold); otherwise ``--test-fraction`` of the images is held out, whole patients at a time, and
``--test-fraction 0`` trains on every image. The held-out images' loss is printed each epoch (nothing is chosen
by it: the model kept is the last epoch's) and their list is stored in the model file.

The masks' convention is the model's: trained on the V7 Labs masks of the shared lung set, the retrocardiac
lung (behind the heart) is lung; trained on JSRT/Montgomery masks, it is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import UsageError, check_positive
from medvae.tasks.cxr.trained import TrainedFilmModel
from medvae.train.config import TrainConfig, train_defaults


@dataclass
class SegmentTrainConfig:
    """Settings of :func:`train_segment` (the CLI's options, same names)."""

    data: str | None = None
    images: str = ""
    masks: str | None = None
    out: Path = Path("medvae-segmenter.safetensors")
    size: int = 256
    channels: tuple[int, ...] = (16, 32, 64, 128)
    test_fraction: float = 0.2
    patients: str | None = None
    mask_convention: str = ""
    calibrate: str | None = None
    calibrate_holdout: float = 0.15
    calibrate_films: int = 300
    folds: int = 0
    fold: int = 0
    exposure: float = 0.0
    opacity: float = 0.0
    train: TrainConfig = train_defaults(epochs=20, batch_size=8, lr_schedule="cosine", channels_last=True)

    def __post_init__(self) -> None:
        self.out, self.channels = Path(self.out), tuple(self.channels)
        if self.data:  # a folder holding images/ and masks/ (what 'phantom cxr' writes, and the shared lung set)
            if self.images or self.masks:
                raise UsageError("data is a folder holding images/ and masks/; give it or images (and masks), "
                                 "not both", param="data")
            root = Path(self.data)
            if (root / "images").is_dir():
                self.images, self.masks = str(root / "images"), str(root / "masks")
            else:  # a public set's own layout (Montgomery, Shenzhen, JSRT + SCR): lung_pairs finds its masks
                self.images = str(root)
            self.data = None
        check_positive("size", self.size)
        multiple = 2 ** (len(self.channels) - 1)
        if self.size % multiple or self.size < 4 * multiple:
            raise UsageError(f"size {self.size} must be a multiple of {multiple} and at least {4 * multiple}; try 256", param="size")
        if not 0 <= self.test_fraction < 1:
            raise UsageError(f"test_fraction must be at least 0 and below 1, got {self.test_fraction}", param="test_fraction")
        if not 0 <= self.exposure <= 1:
            raise UsageError(f"exposure must be a share between 0 and 1, got {self.exposure}", param="exposure")
        if not 0 <= self.opacity <= 1:
            raise UsageError(f"opacity must be a share between 0 and 1, got {self.opacity}", param="opacity")
        if self.folds == 1 or self.folds < 0:
            raise UsageError(f"folds must be 0 (no cross-validation) or at least 2, got {self.folds}", param="folds")
        if self.folds and not 0 <= self.fold < self.folds:
            raise UsageError(f"fold must be between 0 and folds - 1 ({self.folds - 1}), got {self.fold}", param="fold")


SegmentTrainResult = TrainedFilmModel  # the name callers know


def load_pair(pair, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(image, mask)`` of a :class:`LungPair` at ``size``², float32 in [0, 1] and 0/1."""
    from medvae.data.intensity import to_unit
    from medvae.data.lung_datasets import load_lung_mask, read_lung_image
    from medvae.data.transforms import resize

    image = read_lung_image(pair.image)
    array = image.plane("the segmenter trains on 2-D radiographs")
    mask = load_lung_mask(pair, array.shape)
    return resize(to_unit(array)[0], (size, size)), resize((mask > 0).astype(np.float32), (size, size), labels=True)


def augmentations(seed: int):
    """MONAI random affine (both keys) and contrast/noise (image only) for a dict of image and label."""
    from monai.transforms import Compose, RandAdjustContrastd, RandAffined, RandGaussianNoised

    transform = Compose([
        RandAffined(("image", "label"), prob=0.8, rotate_range=0.15, scale_range=0.1, translate_range=12,
                    mode=("bilinear", "nearest"), padding_mode="zeros"),
        RandAdjustContrastd("image", prob=0.5, gamma=(0.7, 1.5)),
        RandGaussianNoised("image", prob=0.2, std=0.02),
    ])
    transform.set_random_state(seed)
    return transform


class AugmentedPairs:
    """A map-style dataset of ``{"image": (1, S, S), "label": (1, S, S)}`` with MONAI augmentation.

    Item ``i`` of epoch ``e`` depends only on ``(seed, e, i)`` (the training loop calls :meth:`set_epoch`), not
    on which process or worker draws it, nor in what order.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int, augment: bool = True,
                 exposure: float = 0.0, opacity: float = 0.0) -> None:
        self.images, self.labels, self.seed, self.epoch = images, labels, seed, 0
        self.transform = augmentations(seed) if augment else None
        self.exposure = exposure if augment else 0.0
        self.opacity = opacity if augment else 0.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        import torch

        image = self.images[i]
        if self.opacity:  # consolidation or effusion over the lungs; the mask still draws the lung through it
            from medvae.phantoms.opacity import lung_opacity

            rng = np.random.default_rng([self.seed, self.epoch, i, 2])
            if rng.random() < self.opacity:
                image = lung_opacity(image, self.labels[i], rng)
        if self.exposure:  # over- or under-exposed at a random severity; the lungs are where they were
            from medvae.phantoms.degrade import degrade

            rng = np.random.default_rng([self.seed, self.epoch, i, 1])
            if rng.random() < self.exposure:
                image = degrade(image, "exposure", float(rng.uniform()), rng)
        item = {"image": torch.from_numpy(image[None]), "label": torch.from_numpy(self.labels[i][None])}
        if self.transform is not None:
            state = np.random.SeedSequence([self.seed, self.epoch, i]).generate_state(1)[0]
            self.transform.set_random_state(int(state))
            item = self.transform(item)
            item = {k: torch.as_tensor(v).as_subclass(torch.Tensor).float() for k, v in item.items()}  # no MetaTensor
        return item


def train_segment(config: SegmentTrainConfig | None = None, **overrides) -> SegmentTrainResult | None:
    """Train the lung segmenter and write its model file (see the module docstring)."""
    from medvae import checkpoint
    from medvae.data.lung_datasets import lung_pairs
    from medvae.data.patients import fold_split, patient_split, patients_of
    from medvae.models.resunetpp import SegmenterConfig, SegmenterModel
    from medvae.tasks.cxr import chest_check
    from medvae.train.recipe import Recipe, configure, plain_config, portable_path

    config = configure(SegmentTrainConfig, config, **overrides)
    if not config.images:
        raise UsageError("data must be a folder holding images/ and masks/ (or give images and masks, or a "
                         "public set's root folder as images)", param="data")
    recipe = Recipe(config, config.out)
    seed = config.train.seed
    pairs = lung_pairs(Path(config.images), Path(config.masks) if config.masks else None)
    if len(pairs) < 2:
        raise UsageError(f"images: found {len(pairs)} image(s) with masks; need at least 2 to hold one out", param="images")
    patients, index = patients_of([p.image for p in pairs], config.patients, Path(config.images))
    if config.folds:
        train_idx, test_idx = fold_split(patients, config.folds, config.fold, seed)
    elif config.test_fraction > 0:
        train_idx, test_idx = patient_split(patients, config.test_fraction, seed)
    else:
        train_idx, test_idx = np.arange(len(pairs)), np.array([], dtype=int)
    split = {"by": "patient", "patient_index": index.name if index else None,
             "patients": len(set(patients)), "folds": config.folds, "fold": config.fold if config.folds else None,
             "test_patients": sorted({patients[i] for i in test_idx})}
    loaded = [load_pair(p, config.size) for p in pairs]
    empty = np.zeros((0, config.size, config.size), np.float32)
    stack = {name: np.stack([loaded[i][k] for i in idx]) if len(idx) else empty for name, idx, k in
             (("train_x", train_idx, 0), ("train_y", train_idx, 1), ("test_x", test_idx, 0), ("test_y", test_idx, 1))}
    train_data = AugmentedPairs(stack["train_x"], stack["train_y"], seed, exposure=config.exposure,
                                opacity=config.opacity)
    val_data = AugmentedPairs(stack["test_x"], stack["test_y"], seed, augment=False) if len(test_idx) else None
    model = SegmenterModel(SegmenterConfig(channels=config.channels))
    preprocessing = {"pipeline": "segment", "normalize": "min-max per image to [0, 1]", "size": config.size,
                     "multiple": model.config.multiple, "labels": {"1": "lungs"}}

    def training(record):
        return {"task": "train segment", "images": config.images, "masks": config.masks,
                "train_images": [portable_path(pairs[i].image, config.images) for i in train_idx],
                "test_images": [portable_path(pairs[i].image, config.images) for i in test_idx], "split": split,
                "mask_convention": config.mask_convention, "data_attribution": attribution(index),
                "config": plain_config(config), **record.to_dict(), "command": _command(config)}

    def save(m, record, final):
        if final:  # the chest check's ranges, from the final model (see medvae.tasks.cxr.chest_check)
            m.eval()
            films, where = calibration_films(config, list(stack["train_x"]))
            preprocessing["chest_check"] = {**chest_check.calibrate(m, config.size, films), **where}
        checkpoint.save_model(config.out, m, preprocessing=preprocessing, training=training(record))

    shown = stack["test_x"][:4] if len(test_idx) else stack["train_x"][:4]
    result = recipe.fit(model, train_data, val_data, save, previews=lambda m: previews(m, shown))
    if result is None:
        return None
    return SegmentTrainResult(config.out, result, [str(pairs[i].image) for i in train_idx],
                              [str(pairs[i].image) for i in test_idx])


def previews(model, films: np.ndarray) -> dict:
    """``lungs``: up to four held-out films (training films where none is held out) with the predicted lung
    probability in red, one tiled colour image (``<stem>.lungs.png``)."""
    import torch

    from medvae.viz import tile

    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(films[:, None])).to(device)
    p = model.predict(x)[:, 0].float().cpu().numpy()
    grey, lungs = tile(np.swapaxes(films, 1, 2), ncols=4), tile(np.swapaxes(p, 1, 2), ncols=4)
    return {"lungs": np.stack([np.maximum(grey, lungs), grey * (1 - 0.5 * lungs), grey * (1 - 0.5 * lungs)], -1)}


def calibration_films(config: SegmentTrainConfig, training_films: list[np.ndarray]) -> tuple[list, dict]:
    """The chest films that set the chest check's ranges, and where they came from: the training part of a
    patient split of ``config.calibrate``'s films (at most ``calibrate_films``, first by name), else the
    segmenter's own training films."""
    from medvae.data.transforms import resize
    from medvae.tasks.cxr.train_enhance import image_split, read_unit

    if not config.calibrate:
        return training_films, {"calibrated_on": "the training films"}
    train, test = image_split((config.calibrate,), config.calibrate_holdout, config.train.seed)
    chosen = sorted(train, key=lambda p: p.name)[: config.calibrate_films]
    return [resize(read_unit(p), (config.size, config.size)) for p in chosen], {
        "calibrated_on": config.calibrate, "calibration_images": [p.name for p in chosen],
        "held_out_images": sorted(p.name for p in test)}


def attribution(index: Path | None) -> dict | None:
    """Licences, sources and DOIs of the training images, counted from the patient index's columns (those
    named like ``*licen[cs]e*``, ``source*`` and ``doi``), or None where the table has none."""
    import csv
    from collections import Counter

    if index is None:
        return None
    with open(index, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    summary = {}
    for row in rows[:1]:
        for column in row:
            key = column.lower()
            what = ("licences" if "licen" in key else "sources" if key.startswith("source") else
                    "dois" if key == "doi" else None)
            if what:
                summary[what] = dict(Counter(r[column] for r in rows if r.get(column)).most_common())
    return summary or None


def _command(config: SegmentTrainConfig) -> str:
    """The command line that reproduces this training (stored in the model file)."""
    from medvae.train.recipe import changed_options

    parts = [f"medvae train segment --images {config.images}"] + ([f"--masks {config.masks}"] if config.masks else [])
    parts += changed_options(config, SegmentTrainConfig(images=config.images, masks=config.masks),
                             ("data", "images", "masks"))
    return " ".join(parts)
