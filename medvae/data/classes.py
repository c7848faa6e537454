"""Images with a class each, for the class-conditional models: a folder per class, a CSV, or MNIST's digits.

``--data DIR`` holds one folder per class (``DIR/<class>/...``, searched recursively; the class is the folder's
name), or ``--data table.csv`` names the files: a ``file`` column (or ``path``, ``image``; relative to the CSV's
folder) and a ``label`` column (or ``class``). Classes are sorted by name; class index ``i`` is
``classes[i]``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from medvae.errors import InputError, UsageError

FILE_COLUMNS = ("file", "path", "image", "filename")
LABEL_COLUMNS = ("label", "class", "finding")


@dataclass
class LabelledImages:
    """Attributes:
    images: ``(N, 1, *size)`` in [0, 1].
    labels: ``(N,)`` class indices (int64).
    classes: class names; ``labels`` index them.
    files: the file of each image (None for MNIST).
    spacing: the median voxel size after resizing, or None where a file gave none.
    skipped: ``(file, why)`` of files that could not be read.
    """

    images: object
    labels: object
    classes: list[str]
    files: list[str] | None = None
    spacing: tuple[float, ...] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Images per class name."""
        import torch

        n = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, n))


def class_files(data: str | Path) -> tuple[list[Path], list[str]]:
    """The image files of ``data`` (a folder of class folders, or a CSV) and each one's class name.

    Raises:
        UsageError: ``data`` is missing, has fewer than two classes, or the CSV lacks a file or label column.
        InputError: a class folder holds no file, or a CSV row has an empty label or names a missing file.
    """
    from medvae.io.batch import discover

    data = Path(data)
    if data.suffix.lower() == ".csv" and data.is_file():
        files, labels = _csv_files(data)
    elif data.is_dir():
        folders = sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
        files, labels = [], []
        for folder in folders:
            found = discover(folder)
            if not found:
                raise InputError(f"data {data}: the class folder {folder.name!r} holds no image; add images or "
                                 "remove the folder")
            files += found
            labels += [folder.name] * len(found)
    else:
        raise UsageError(f"data {data}: no such folder or CSV file; give a folder with one folder per class, "
                         "or a CSV of file,label", param="data")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise UsageError(f"data {data}: found {len(classes)} class ({', '.join(classes) or 'none'}); a conditional "
                         "model needs two or more (one folder per class, or a CSV label column)", param="data")
    return files, labels


def _csv_files(table: Path) -> tuple[list[Path], list[str]]:
    with open(table, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = {c.strip().lower(): c for c in reader.fieldnames or []}
        file_col = next((columns[c] for c in FILE_COLUMNS if c in columns), None)
        label_col = next((columns[c] for c in LABEL_COLUMNS if c in columns), None)
        if file_col is None or label_col is None:
            raise UsageError(f"data {table}: the CSV needs a file column ({', '.join(FILE_COLUMNS)}) and a label "
                             f"column ({', '.join(LABEL_COLUMNS)})", param="data")
        files, labels = [], []
        for row_number, row in enumerate(reader, start=2):
            name, label = (row.get(file_col) or "").strip(), (row.get(label_col) or "").strip()
            if not label:
                raise InputError(f"data {table}: row {row_number} has no label; give every file a class")
            path = (table.parent / name) if name else None
            if path is None or not path.is_file():
                raise InputError(f"data {table}: row {row_number} names {name!r}, which is not a file "
                                 f"(paths are relative to the CSV's folder)")
            files.append(path)
            labels.append(label)
    return files, labels


def load_labelled(data: str | Path, size: int, spatial_dims: int = 2, *, normalize: str = "percentile",
                  progress: bool = False) -> LabelledImages:
    """Read the images of ``data`` (see :func:`class_files`) as :func:`medvae.data.datasets.load_image_folder`
    does; an image that cannot be read is skipped and listed, and a class left with none is an error."""
    import torch

    from medvae.data.datasets import load_image_folder

    files, names = class_files(data)
    classes = sorted(set(names))
    folder = load_image_folder(data, size, spatial_dims, normalize=normalize, progress=progress, files=files)
    label_of = {str(f): classes.index(n) for f, n in zip(files, names)}
    labels = torch.tensor([label_of[f] for f in folder.files], dtype=torch.long)
    empty = [c for i, c in enumerate(classes) if not (labels == i).any()]
    if empty:
        raise InputError(f"data {data}: no image of class {empty[0]!r} could be read"
                         + (f" (e.g. {folder.skipped[0][0]}: {folder.skipped[0][1]})" if folder.skipped else ""))
    return LabelledImages(folder.images, labels, classes, folder.files, folder.spacing, folder.skipped)


def parse_class_limits(text: str | None) -> dict[str, int]:
    """``"8=4,3=20"`` → ``{"8": 4, "3": 20}``: at most that many training images of each named class."""
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise UsageError(f"class limit {part!r}: give CLASS=N with N a positive whole number, e.g. 8=4",
                             param="class_limit")
        limits[name.strip()] = int(value)
    return limits


def limit_classes(labelled: LabelledImages, limits: dict[str, int], seed: int = 0) -> LabelledImages:
    """Keep at most ``limits[name]`` images of each named class (a seeded random choice): how a rare class is
    made from a common one for experiments."""
    import torch

    unknown = [n for n in limits if n not in labelled.classes]
    if unknown:
        raise UsageError(f"class limit: no class {unknown[0]!r}; the classes are {', '.join(labelled.classes)}",
                         param="class_limit")
    g = torch.Generator().manual_seed(seed)
    keep = torch.ones(len(labelled.labels), dtype=torch.bool)
    for name, n in limits.items():
        idx = torch.nonzero(labelled.labels == labelled.classes.index(name)).flatten()
        drop = idx[torch.randperm(len(idx), generator=g)[n:]]
        keep[drop] = False
    files = [f for f, k in zip(labelled.files, keep.tolist()) if k] if labelled.files else None
    return LabelledImages(labelled.images[keep], labelled.labels[keep], labelled.classes, files,
                          labelled.spacing, labelled.skipped)
