"""``medvae segment``: lung masks for one chest radiograph or a folder tree, optionally after enhancement.

Per input: the radiograph (enhanced first with ``--enhance``, at full resolution) is mapped to [0, 1],
resized to the model's size, segmented by the ResUNet++, and the probabilities are resized back to the
input's grid, thresholded at 0.5 and cleaned (the two largest connected regions, holes filled, with MONAI's
transforms). The two lungs are told apart by side: in a PA radiograph the patient's right lung is on the
viewer's left (smaller x), unless a DICOM's PatientOrientation says its rows run toward the patient's right. Outputs, mirroring the input tree:

* the mask in the input's geometry: ``png`` (8-bit, lungs 255; the public data sets' convention), ``nii``
  (labels 1 right lung, 2 left lung, with the input's affine) or ``dcm`` (a DICOM Segmentation object
  via highdicom with one segment per lung, referencing the source image; DICOM inputs only);
* ``<name>.overlay.png``: the radiograph with the right lung tinted blue and the left orange;
* ``lung_areas.csv`` in the output folder: each lung's area in pixels, and in cm² where the pixel
  spacing is known, and the chest check: ``ok``, or why the input does not look like a frontal chest
  radiograph (:mod:`medvae.tasks.cxr.chest_check`; also a note in the report), or empty for a model without one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medvae.errors import InputError, UsageError

FORMATS = {"png": ".png", "nii": ".nii.gz", "dcm": ".dcm"}
CSV_NAME = "lung_areas.csv"


@dataclass
class LungAreas:
    """One row of the CSV: lung areas of one input (cm² are None where the pixel size is unknown)."""

    input: str
    mask: str
    right_px: int
    left_px: int
    right_cm2: float | None
    left_cm2: float | None
    chest_check: str = ""  # "ok", what looks wrong, or "" where not checked


def predict_lungs(model, info, unit: np.ndarray, small: np.ndarray | None = None) -> np.ndarray:
    """Lung probability for a 2-D image in [0, 1], shape ``(x, y)`` → same shape (``small``: the probability
    at the model's own size, if already computed)."""
    from medvae.tasks.cxr.chest_check import model_probability
    from medvae.data.transforms import resize

    if small is None:
        small = model_probability(model, int(info.preprocessing.get("size", 256)), unit)
    return np.clip(resize(small, unit.shape), 0, 1)


def lung_labels(prob: np.ndarray, threshold: float = 0.5, right_at_small_x: bool = True) -> np.ndarray:
    """uint8 labels from a probability map: 1 right lung, 2 left lung, 0 elsewhere.

    Keeps the two largest connected regions above ``threshold`` (MONAI's ``KeepLargestConnectedComponent``)
    with their holes filled (``FillHoles``), each region on its own; regions and holes are 4-connected
    (``connectivity=1``), as scipy's ``label`` and ``binary_fill_holes`` count them. The patient's right is at
    small x (the viewer's left, as in a PA film) unless ``right_at_small_x`` is False.
    """
    from monai.transforms import FillHoles, KeepLargestConnectedComponent

    labels = np.zeros(prob.shape, np.uint8)
    mask = (np.asarray(prob) >= threshold)[None]  # channel first, as MONAI's transforms take it
    if not mask.any():
        return labels
    # the transforms may write into their input: give each its own copy
    two = np.asarray(KeepLargestConnectedComponent(num_components=2, connectivity=1)(mask.copy()), bool)
    largest = np.asarray(KeepLargestConnectedComponent(num_components=1, connectivity=1)(two.copy()), bool)
    fill = FillHoles(connectivity=1)
    middle = prob.shape[0] / 2
    for region in (largest, two & ~largest):
        if not region.any():
            continue
        region = np.asarray(fill(region.astype(np.uint8)))[0] > 0
        side = 1 if (np.nonzero(region)[0].mean() < middle) == right_at_small_x else 2
        labels[region & (labels == 0)] = side
    return labels


def rows_point_right(image) -> bool:
    """Whether a DICOM radiograph's rows run toward the patient's right (PatientOrientation ``R\\...``, an AP
    or mirrored display), which puts the right lung at large x."""
    header = image.dicom[0] if image.dicom else None
    orientation = header.get("PatientOrientation") if header is not None else None
    return bool(orientation) and str(orientation[0]).upper().startswith("R")


def lung_areas(labels: np.ndarray, image, src: Path, dst: Path, verdict=None) -> LungAreas:
    """The CSV row for ``labels`` on ``image``'s grid (pixel area from its spacing when known) and the chest
    check's ``verdict`` (a :class:`medvae.tasks.cxr.chest_check.CheckResult`, or None where not checked)."""
    right, left = int((labels == 1).sum()), int((labels == 2).sum())
    cm2 = float(np.prod(image.spacing[:2])) / 100 if image.spacing_known else None
    from medvae.tasks.cxr.chest_check import verdict_text

    check = verdict_text(verdict)
    return LungAreas(str(src), str(dst), right, left, round(right * cm2, 3) if cm2 else None,
                     round(left * cm2, 3) if cm2 else None, check)


def write_mask(labels: np.ndarray, image, dst: Path, fmt: str, overwrite: bool, deidentify: bool = False) -> Path:
    """Write the lung labels in ``fmt`` on the input's grid (see the module docstring)."""
    from medvae.io.images import Image, write_image

    if fmt == "png":
        return write_image(Image(array=np.where(labels > 0, 255, 0).astype(np.uint8), format="png", bits=8),
                           dst, overwrite=overwrite)
    if fmt == "nii":
        return write_image(image.with_array(labels, format="nifti", nifti_header=None), dst, overwrite=overwrite)
    from medvae.io.dicom_seg import write_lung_seg

    return write_lung_seg(labels, image, dst, overwrite=overwrite, deidentify=deidentify)


def write_overlay(image, labels: np.ndarray, dst: Path) -> Path:
    """An RGB PNG of the radiograph (its DICOM window, else the 0.5-99.5 percentiles) with the right lung
    tinted blue and the left orange."""
    from PIL import Image as PILImage

    from medvae.io.atomic import atomic_path
    from medvae.data.intensity import intensity_window, scale_to_unit

    array = image.plane()
    low, high = intensity_window(array, "auto", window=image.window, name=str(image.path))
    gray = scale_to_unit(array, low, high).T * 255  # (rows, columns)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    for value, colour in ((1, (40, 120, 255)), (2, (255, 150, 40))):
        where = labels.T == value
        rgb[where] = 0.6 * rgb[where] + 0.4 * np.array(colour)
    with atomic_path(dst) as tmp:
        PILImage.fromarray(rgb.astype(np.uint8), "RGB").save(tmp, format="PNG")
    return dst


CSV_COLUMNS = ["input", "mask", "right_lung_px", "left_lung_px", "right_lung_cm2", "left_lung_cm2", "chest_check"]


def write_csv(rows: list[LungAreas], path: Path) -> Path:
    """``lung_areas.csv``: this run's rows merged into what an earlier run or another shard wrote
    (:func:`medvae.io.tables.merge_rows`)."""
    from medvae.io.tables import merge_rows

    return merge_rows(path, CSV_COLUMNS, [[r.input, r.mask, r.right_px, r.left_px,
                                           "" if r.right_cm2 is None else r.right_cm2,
                                           "" if r.left_cm2 is None else r.left_cm2, r.chest_check] for r in rows])


def segment(input: str | os.PathLike, output: str | os.PathLike, *, model: str | os.PathLike | None = None,
            enhance: bool = False, enhancer: str | os.PathLike | None = None, fmt: str = "png",
            overwrite: bool = False, progress: bool = True, device: str = "auto", deidentify: bool = False,
            shard=None):
    """Segment the lungs in one radiograph or every image under a folder, into the folder ``output``.

    Args:
        input: a file or a folder (its tree is mirrored under ``output``).
        output: the output folder (masks, overlays and ``lung_areas.csv``).
        model: a segmenter model file; None uses the packaged one.
        enhance: enhance each radiograph first (with ``enhancer``, or the packaged enhancer).
        fmt: mask format, ``png``, ``nii`` or ``dcm`` (DICOM SEG, DICOM inputs only).

    Returns:
        ``(report, csv path)``.
    """
    from medvae.io.batch import check_output_location, discover, run_batch, shard_inputs
    from medvae.io.images import read_image
    from medvae.tasks.pipeline import pipelined
    from medvae.tasks.cxr.chest_check import check_image, model_probability
    from medvae.tasks.cxr.enhance import enhance_image
    from medvae.data.intensity import to_unit
    from medvae.checkpoint import load_model_of_kind
    from medvae.train import resolve_device

    if fmt not in FORMATS:
        raise UsageError(f"format {fmt!r} is not one of {', '.join(FORMATS)}", param="format")
    if enhancer is not None:
        enhance = True
    input, output = Path(input), Path(output)
    if output.suffix:
        raise UsageError(f"output {output}: give a folder (masks, overlays and {CSV_NAME} go in it)", param="output")
    check_output_location(input, output)
    ignored: list = []
    inputs, share = shard_inputs(discover(input, ignored=ignored), shard)
    dev = str(resolve_device(device))
    net, info = load_model_of_kind(model, "segmenter", device=dev)
    enhancer_net = load_model_of_kind(enhancer, "enhancer", "enhancer", device=dev)[0] if enhance else None
    rows: dict[Path, LungAreas] = {}

    def compute(image):
        image.plane("segment takes 2-D radiographs")  # a volume fails here, named
        if fmt == "dcm" and image.format != "dicom":
            raise InputError(f"{image.path}: a DICOM Segmentation needs a DICOM source; use --format png or nii")
        if enhancer_net is not None:
            image = enhance_image(enhancer_net, image)
        unit = to_unit(image.plane())[0]
        small = model_probability(net, int(info.preprocessing.get("size", 256)), unit)
        labels = lung_labels(predict_lungs(net, info, unit, small), right_at_small_x=not rows_point_right(image))
        return image, labels, check_image(net, info, unit, small)

    def write(src: Path, dst: Path, image, result) -> tuple[Path, list[str]]:
        shown, labels, verdict = result  # the radiograph as segmented (enhanced with --enhance)
        base = dst.name[: -len(FORMATS[fmt])] if dst.name.endswith(FORMATS[fmt]) else dst.name
        write_overlay(shown, labels, dst.parent / f"{base}.overlay.png")  # first: a mask means all is written
        written = write_mask(labels, image, dst, fmt, overwrite, deidentify)
        rows[src] = lung_areas(labels, image, src, written, verdict)
        notes = [] if (labels > 0).any() else ["no lungs found"]
        if verdict is not None and not verdict.ok:
            notes.append(verdict.note())
        return written, notes

    with pipelined(inputs, read_image, compute, write) as process:
        report = run_batch(inputs, input, output, process, suffix=FORMATS[fmt], overwrite=overwrite,
                           progress=progress, desc="segmenting", ignored=ignored, shard=share)
    for src, done in report.skipped:  # outputs from an earlier run still belong in the table
        try:
            source = read_image(src)
            rows[src] = lung_areas(_labels_of(done, fmt, not rows_point_right(source)), source, src, done)
        except Exception as e:  # an unreadable old output: say so, keep the rest of the table
            report.notes.append((src, f"not in {CSV_NAME}: its earlier mask {done} cannot be read ({e})"))
    csv_path = write_csv([rows[src] for src in inputs if src in rows], output / CSV_NAME)
    return report, csv_path


def _labels_of(mask: Path, fmt: str, right_at_small_x: bool = True) -> np.ndarray:
    """Right/left labels of a mask written earlier."""
    from medvae.io.images import read_image

    if fmt == "dcm":
        from medvae.io.dicom_seg import read_lung_seg

        return read_lung_seg(mask)
    array = read_image(mask).array
    array = array.reshape(array.shape[:2])
    return array.astype(np.uint8) if fmt == "nii" else lung_labels((array > 0).astype(np.float32), 0.5,
                                                                    right_at_small_x)
