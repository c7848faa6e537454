"""``medvae oversample MODEL``: new images of a class from a class-conditional VAE-GAN, with a manifest.

Writes ``OUT/<class>/synthetic_0001.<ext>``, ... in the training data's format (PNG, NIfTI or DICOM; NIfTI and
DICOM marked synthetic as ``medvae generate`` marks them) and ``OUT/manifest.csv`` with the columns ``file``
(relative to OUT), ``class`` and ``synthetic`` (1; with ``data``, the real training files too, 0), ready for a
classifier's data loader. A model trained on a table writes ``OUT/synthetic.csv`` (and ``OUT/manifest.csv``,
the real and synthetic rows together, with ``data``): see :mod:`medvae.tasks.oversampling.tabular`.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medvae.errors import OutputExists, UsageError, check_positive

if TYPE_CHECKING:
    from medvae.tasks.oversampling.tabular import TableOversampleResult

MANIFEST = "manifest.csv"


@dataclass
class OversampleResult:
    files: list[Path]
    manifest: Path
    counts: dict[str, int]  # synthetic images written per class


def plan(info, class_name: str | None, n: int | None, balance: bool) -> dict[str, int]:
    """Synthetic images to draw per class: ``n`` of ``class_name``, or (``balance``) each class topped up to the
    largest class's training count."""
    classes = info.preprocessing.get("classes") or []
    counts = info.training.get("class_counts") or {}
    if balance == (class_name is not None):
        raise UsageError("give --class NAME with --n N, or --balance (not both)", param="class_name")
    if balance:
        if n is not None:
            raise UsageError("--balance sets the number per class itself; leave out --n", param="n")
        if not counts:
            raise UsageError(f"{info.path}: the model file records no training counts per class; use --class "
                             "NAME --n N", param="balance")
        top = max(counts.values())
        return {c: top - counts.get(c, 0) for c in classes if top > counts.get(c, 0)}
    if class_name not in classes:
        raise UsageError(f"class {class_name!r} is not one of the model's classes: {', '.join(classes)}",
                         param="class_name")
    if n is None:
        raise UsageError("give --n N, the number of images of the class to draw", param="n")
    check_positive("n", n)
    return {class_name: n}


def oversample(model_path: str | os.PathLike, out: str | os.PathLike, *, class_name: str | None = None,
               n: int | None = None, balance: bool = False, fmt: str | None = None, seed: int = 0,
               data: str | os.PathLike | None = None, device: str = "auto", overwrite: bool = False,
               deidentify: bool = False, batch_size: int = 256) -> OversampleResult | TableOversampleResult:
    """Draw images of one class (``class_name``, ``n``) or of every class short of the largest (``balance``)
    from a ``medvae train cvaegan`` model and write them with ``manifest.csv`` into the folder ``out``. A model
    trained on a table (``--label``) writes rows instead: see :mod:`medvae.tasks.oversampling.tabular`.

    Args:
        fmt: ``png``, ``nii`` or ``dcm``; default the format of the model's training files.
        seed: fixes the draws (each class's draws are the same whatever else is drawn).
        data: the folder of class folders (or CSV) the model was trained on: its files are listed in the
            manifest too (``synthetic`` 0), so the manifest is the whole oversampled set.
    Raises:
        OutputExists: ``out`` holds a manifest (a tabular model: ``synthetic.csv``) and ``overwrite`` was not
            given.
    """
    import torch

    from medvae.checkpoint import load_model_of_kind, read_model_info
    from medvae.io.atomic import write_bytes
    from medvae.io.images import normalize_format
    from medvae.tasks.generative.generate import image_names, write_images
    from medvae.train import resolve_device

    info = read_model_info(model_path)
    if info.kind == "tabular_cvae_gan":  # a table's model: rows into synthetic.csv (see .tabular)
        from medvae.tasks.oversampling.tabular import oversample_table

        if fmt is not None:
            raise UsageError("format is for images; a tabular model writes CSV tables", param="format")
        return oversample_table(model_path, out, info, plan(info, class_name, n, balance), seed=seed, data=data,
                                device=str(resolve_device(device)), overwrite=overwrite)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"out {out} is a file; give a folder for the images", param="out")
    if (out / MANIFEST).exists() and not overwrite:
        raise OutputExists(out / MANIFEST, "oversampled set")
    real = _real_files(data) if data is not None else []
    model, info = load_model_of_kind(model_path, "cvae_gan", device=str(resolve_device(device)))
    todo = plan(info, class_name, n, balance)
    fmt = normalize_format(fmt or info.preprocessing.get("format") or "png")
    if fmt not in ("png", "nifti", "dicom"):
        raise UsageError(f"format must be png, nii or dcm, got {fmt!r}", param="format")
    if fmt == "png" and model.config.spatial_dims == 3:
        raise UsageError("format png cannot hold the volumes this model makes; use --format nii or dcm",
                         param="format")
    classes = info.preprocessing["classes"]
    files, rows = [], []
    for name, count in todo.items():
        index = classes.index(name)
        g = torch.Generator().manual_seed(seed * 1000 + index)
        images = torch.cat([model.draw(torch.full((min(batch_size, count - i),), index), generator=g).cpu()
                            for i in range(0, count, batch_size)]).float().numpy()
        folder = out / _safe_name(name)
        names = image_names("synthetic", count, fmt)
        written = write_images(images, folder, fmt, names, info, deidentify=deidentify)
        files += written
        rows += [[p.relative_to(out).as_posix(), name, 1] for p in written]
    rows = [[os.path.relpath(p, out), name, 0] for p, name in real] + rows
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["file", "class", "synthetic"])
    writer.writerows(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / MANIFEST, text.getvalue().encode("utf-8", "surrogateescape"))
    return OversampleResult(files, out / MANIFEST, todo)


def _real_files(data) -> list[tuple[Path, str]]:
    from medvae.data.classes import class_files

    files, labels = class_files(data)
    return [(Path(f).resolve(), label) for f, label in zip(files, labels)]


def _safe_name(name: str) -> str:
    """A class name as a folder name (path separators and leading dots replaced)."""
    safe = name.replace("/", "_").replace("\\", "_").lstrip(".")
    return safe or "_"
