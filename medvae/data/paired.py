"""Paired multi-contrast data for missing-modality synthesis: subject folders and the model's grid.

Layout (BraTS-style)::

    DIR/<subject>/<modality>.nii.gz       e.g. DIR/sub-001/t1.nii.gz, DIR/sub-001/cbf.nii.gz
    DIR/<subject>/<subject>_<modality>.nii.gz   (BraTS names: BraTS2021_00000_t1.nii.gz)
    DIR/<subject>/<subject>-<modality>.nii.gz   (BraTS 2023 names: BraTS-GLI-00000-000-t2f.nii.gz)
    DIR/<subject>/<modality>/             a DICOM series folder
    DIR/<subject>/<modality>.dcm          a single (multi-frame) DICOM file

Modality names are the file names' stems, any the user chooses (``t1``, ``t1c``, ``t1ce``, ``t2``, ``flair``,
``t2f``, ``cbf``, ...), matched case-insensitively; ``mask`` is reserved for the brain mask.

An optional ``mask`` modality marks the brain; without one, the voxels where any source is non-zero in its
original intensities do (skull-stripped inputs, as BraTS data are: zero outside the brain).

Every volume goes through the same steps in training and at inference (:func:`prepare_subject`):

1. each source is z-scored over its non-zero voxels, per volume, in its own grid (MONAI
   ``NormalizeIntensity(nonzero=True)``); inputs are expected skull-stripped, as BraTS data are;
2. MONAI ``Orientation`` to RAS, ``Spacing`` to the model's voxel size and ``DivisiblePad`` to a multiple of
   the U-Net's down-sampling, all invertible: :func:`restore_grid` maps a prediction back onto the input's
   own grid (shape, affine), whatever its size or orientation;
3. the target (training only) is divided by a fixed scale (the training targets' 99th percentile inside
   the mask), so predictions come back in the target's own units (ml/100 g/min for CBF).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medvae.errors import InputError, UsageError

SUFFIXES = (".nii.gz", ".nii", ".dcm", ".npy")


@dataclass
class Subject:
    """A subject folder and the file (or DICOM series folder) of each modality it holds."""

    name: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)


def _modality_of(name: str) -> str:
    lower = name.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return lower[: -len(suffix)]
    return lower


def modality_entries(folder: Path, modality: str) -> list[Path]:
    """Entries of ``folder`` that hold ``modality``: ``t1.nii.gz``, ``X_t1.nii.gz``, ``X-t1.nii.gz`` (BraTS 2023),
    ``t1/`` (DICOM)."""
    modality = modality.lower()
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        stem = _modality_of(entry.name)
        if entry.is_dir() and entry.name.lower() != modality:
            continue
        if entry.is_file() and entry.name.lower() == stem:  # no image suffix
            continue
        if stem == modality or stem.endswith((f"_{modality}", f"-{modality}")):
            found.append(entry)
    return found


def subject_files(folder: Path, modalities: list[str], required: list[str] | None = None) -> Subject:
    """The subject in ``folder``; a ``required`` modality it lacks is a one-line :class:`InputError`."""
    subject = Subject(folder.name, folder)
    for modality in modalities:
        entries = modality_entries(folder, modality)
        if len(entries) > 1:
            raise InputError(f"{folder}: subject {folder.name} has {len(entries)} '{modality}' images "
                             f"({', '.join(e.name for e in entries)}); keep one")
        if entries:
            subject.files[modality] = entries[0]
        elif required is None or modality in required:
            raise InputError(f"{folder}: subject {folder.name} has no '{modality}' image (looked for "
                             f"{modality}.nii.gz, {modality}.nii, *_{modality}.nii.gz, *-{modality}.nii.gz, "
                             f"{modality}.dcm or a "
                             f"{modality}/ DICOM folder)")
    return subject


def is_subject(folder: Path, modalities: list[str]) -> bool:
    """Whether ``folder`` holds any of ``modalities`` directly."""
    return folder.is_dir() and any(modality_entries(folder, m) for m in modalities)


def find_subjects(root: str | os.PathLike, modalities: list[str], required: list[str] | None = None) -> list[Subject]:
    """Subjects under ``root`` (or ``root`` itself when it is one subject), sorted by name.

    Args:
        root: a folder of subject folders, or one subject folder.
        modalities: the modalities to look up.
        required: those a subject must have (default: all of ``modalities``).

    Raises:
        InputError: ``root`` is missing or holds no subjects, or a subject lacks a required modality
            (the message names the subject and the modality).
    """
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"data {root}: no such folder (expected DIR/<subject>/<modality>.nii.gz)", param="data")
    if is_subject(root, modalities):
        return [subject_files(root, modalities, required)]
    folders = [d for d in sorted(root.iterdir()) if not d.name.startswith(".") and is_subject(d, modalities)]
    if not folders:
        raise InputError(f"{root}: no subject folders holding {', '.join(modalities)} images "
                         "(expected DIR/<subject>/<modality>.nii.gz)")
    return [subject_files(d, modalities, required) for d in folders]


def read_subject(subject: Subject, modalities: list[str]):
    """``{modality: Image}`` as 3-D volumes on the first modality's grid (others resampled onto it if needed)."""
    from medvae.io.images import read_image

    images = {}
    for modality in modalities:
        image = read_image(subject.files[modality])
        if image.array.ndim == 2:
            image = image.with_array(image.array[:, :, None])
        if image.array.ndim != 3:
            raise InputError(f"{subject.files[modality]}: expected a 2-D or 3-D image, got shape {image.array.shape}")
        images[modality] = image
    first = images[modalities[0]]
    for modality, image in images.items():
        if image.array.shape != first.array.shape or not np.allclose(image.affine, first.affine, atol=1e-3):
            images[modality] = _resample_onto(image, first, nearest=modality == "mask")
    return images


def read_subject_folder(folder: Path, modalities: list[str], optional: tuple[str, ...] = ("mask",)) -> dict:
    """``{modality: Image}`` for a subject folder: every one of ``modalities`` (a missing one is an
    :class:`InputError` naming subject and modality) and those of ``optional`` that it holds."""
    subject = subject_files(Path(folder), modalities)
    names = list(modalities)
    for name in optional:
        entries = modality_entries(Path(folder), name)
        if entries:
            subject.files[name] = entries[0]
            names.append(name)
    return read_subject(subject, names)


def _resample_onto(image, reference, nearest: bool = False):
    from monai.data import MetaTensor
    from monai.transforms import ResampleToMatch

    src = MetaTensor(np.asarray(image.array, np.float32)[None], affine=image.affine)
    dst = MetaTensor(np.zeros((1, *reference.array.shape), np.float32), affine=reference.affine)
    out = ResampleToMatch(mode="nearest" if nearest else "bilinear", padding_mode="zeros")(src, dst)
    resampled = image.with_array(out[0].numpy())
    resampled.affine = reference.affine.copy()
    resampled.notes = [*image.notes, f"resampled onto the grid of {reference.path}"]
    return resampled


def brain_mask(images: dict, sources: list[str]) -> np.ndarray:
    """The brain on the first source's grid: the ``mask`` image (> 0.5) where there is one, else the voxels
    where any source is non-zero in its original intensities (skull-stripped data are 0 outside the brain;
    an interpolated undershoot below 0 inside it still counts)."""
    if "mask" in images:
        return np.asarray(images["mask"].array) > 0.5
    return np.any(np.stack([np.asarray(images[s].array) != 0 for s in sources]), axis=0)


def normalize_sources(arrays: np.ndarray) -> np.ndarray:
    """Per volume and channel, z-score over the non-zero voxels: ``(S, *spatial)`` → float32, zeros kept."""
    from monai.transforms import NormalizeIntensity

    out = NormalizeIntensity(nonzero=True, channel_wise=True)(np.asarray(arrays, np.float32))
    return np.asarray(out, np.float32)


def grid_transform(spacing, multiple: int, spatial_dims: int):
    """The invertible MONAI pipeline onto the model's grid: RAS, ``spacing`` mm, padded to ``multiple``."""
    from monai.transforms import Compose, DivisiblePad, Orientation, Spacing

    k = (multiple, multiple, 1) if spatial_dims == 2 else multiple
    return Compose([Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))), Spacing(pixdim=tuple(spacing), mode="bilinear", padding_mode="zeros"),
                    DivisiblePad(k=k)])


@dataclass
class PreparedSubject:
    """A subject on the model's grid: ``source`` is a MetaTensor ``(S, X, Y, Z)`` that remembers the way back."""

    source: object
    target: np.ndarray | None  # (X, Y, Z), raw units
    mask: np.ndarray  # (X, Y, Z) bool
    reference: object  # the first source Image: the grid and header outputs go back to
    transform: object  # the MONAI Compose that moved it (its inverse needs the same instance)


def prepare_subject(images: dict, sources: list[str], *, spacing, multiple: int, spatial_dims: int,
                    target: str | None = None) -> PreparedSubject:
    """Normalise the sources, stack target and mask beside them and move everything onto the model's grid."""
    import torch
    from monai.data import MetaTensor

    reference = images[sources[0]]
    stack = normalize_sources(np.stack([images[s].array for s in sources]))
    mask = brain_mask(images, sources)
    extra = [mask.astype(np.float32)] + ([np.asarray(images[target].array, np.float32)] if target else [])
    data = MetaTensor(torch.from_numpy(np.concatenate([stack, np.stack(extra)])), affine=reference.affine)
    transform = grid_transform(spacing, multiple, spatial_dims)
    moved = transform(data)
    n = len(sources)
    source = moved[:n]
    return PreparedSubject(source=source, mask=moved[n].numpy() > 0.5,
                           target=moved[n + 1].numpy() if target else None, reference=reference,
                           transform=transform)


def restore_grid(values: np.ndarray, prepared: PreparedSubject) -> np.ndarray:
    """Map ``values`` ``(C, X, Y, Z)`` on the model's grid back onto the reference image's grid ``(C, x, y, z)``."""
    import torch
    from monai.data import MetaTensor

    src = prepared.source
    out = MetaTensor(torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32), meta=dict(src.meta),
                     applied_operations=list(src.applied_operations))
    back = prepared.transform.inverse(out)
    return np.asarray(back.detach().cpu().numpy(), np.float32)


def check_modality_name(name: str, param: str) -> None:
    """A modality is a name (the stem of its files: ``t1``, ``flair``), not a file or a path."""
    if not name or not name.strip():
        raise UsageError(f"{param} must name a modality, e.g. t1, got an empty name", param=param)
    if any(name.lower().endswith(x) for x in SUFFIXES) or "/" in name or "\\" in name:
        stem = re.split(r"[_-]", _modality_of(re.split(r"[/\\]", name)[-1]))[-1] or "t1"
        raise UsageError(f"{param} {name!r} is a file or path; name the modality as the files' stem ({stem})",
                         param=param)


def check_modalities(sources: list[str], target: str) -> None:
    """Sources must be distinct, non-empty modality names, and not include the target or the mask."""
    if not sources:
        raise UsageError("source must name at least one modality, e.g. --source t1", param="source")
    for name in sources:
        check_modality_name(name, "source")
    check_modality_name(target, "target")
    if len(set(sources)) != len(sources):
        raise UsageError(f"source lists a modality twice: {sources}", param="source")
    if target in sources:
        raise UsageError(f"target {target!r} is also a source; the target is the modality to synthesise", param="target")
    if "mask" in sources or target == "mask":
        raise UsageError("'mask' marks the brain; it cannot be a source or the target")
