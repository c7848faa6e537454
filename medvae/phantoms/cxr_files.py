"""Writing chest phantoms to disk: :func:`write_cxr_phantoms` writes a numbered set of images (8-bit PNG or
12-bit CR DICOM) with their lung masks, and :func:`phantom_dicom` builds the DICOM dataset of one image
(a derived, synthetic PA chest CR with the detector's pixel spacing).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from medvae.phantoms.cxr_config import FIELD_OF_VIEW_MM, CXRPhantomConfig, check_size
from medvae.phantoms.cxr_render import cxr_phantom

FORMATS = ("png", "dcm")
_NAME = re.compile(r"cxr-\d{4,}\.(png|dcm)")


def phantom_dicom(image: np.ndarray, *, pixel_spacing: float, seed: int, index: int):
    """A CR Image Storage dataset (pydicom) holding ``image`` (float in [0, 1], (x, y)) as 12-bit MONOCHROME2.

    Built by :func:`medvae.io.dicom.derived_dataset` from a stub CR header (PA chest), so it has what
    every medvae-derived DICOM has (new UIDs, ImageType DERIVED\\SECONDARY, DerivationDescription, marked
    synthetic), plus PixelSpacing and ImagerPixelSpacing of a 35 cm detector and a display window.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    from medvae.io.dicom import CR, _ds_number, derived_dataset

    stored = np.round(np.clip(image, 0, 1) * 4095).astype(np.uint16)
    stub = Dataset()
    stub.SOPClassUID = CR
    stub.Modality = "CR"
    stub.PatientName = "medvae^chest phantom"
    stub.PatientID = f"cxr-phantom-{seed}-{index + 1:04d}"
    stub.StudyID = "1"
    stub.BodyPartExamined = "CHEST"
    stub.ViewPosition = "PA"
    stub.PatientOrientation = ["L", "F"]  # PA: rows run to the patient's left, columns to the feet
    lo, hi = np.percentile(stored, [1, 99.5])
    ds = derived_dataset(stored.T, stub, operation="chest phantom", synthetic=True, series_uid=generate_uid(),
                         instance=1, geometry=None, spacing=(pixel_spacing, pixel_spacing),
                         notes=[f"medvae chest phantom, seed {seed} image {index + 1}"],
                         series_description="medvae chest phantom",
                         window=(float(lo + hi) / 2, float(max(hi - lo, 1))))
    ds.BitsStored, ds.HighBit = 12, 11
    ds.ImagerPixelSpacing = [_ds_number(pixel_spacing)] * 2
    ds.SeriesNumber = 1
    return ds


def write_cxr_phantoms(n: int, out: str | Path, *, size: int = 512, seed: int = 0, fmt: str = "png",
                       overwrite: bool = False, progress: bool = True,
                       config: CXRPhantomConfig | None = None) -> list[Path]:
    """Write ``n`` phantoms as ``out/images/cxr-0001.png`` (or ``.dcm``) and lung masks ``out/masks/cxr-0001.png``.

    Images are 8-bit grayscale PNG, or with ``fmt="dcm"`` CR DICOM (12 bits stored, PixelSpacing 350 mm /
    size, marked synthetic). Masks are always 8-bit PNG, 0 outside and 255 in either lung, as the public
    lung data sets store them; :func:`cxr_phantom` gives the right/left split. Image ``i`` is drawn from
    ``(seed, i)``, so a larger ``n`` keeps the earlier images.

    Raises:
        InputError: ``out`` exists and is not empty, unless ``overwrite``; with ``overwrite``, phantom files
            (``cxr-NNNN.png``/``.dcm``) already in ``out/images`` and ``out/masks`` are replaced or removed,
            so the folder holds exactly this set.
        UsageError: a bad ``n``, ``size`` or ``fmt``.

    Returns:
        the image files written.
    """
    from tqdm.auto import tqdm

    from medvae.io.atomic import atomic_path
    from medvae.io.images import Image, write_image
    from medvae.errors import InputError, UsageError, check_positive

    check_positive("n", n)
    size = check_size(size)
    fmt = {"dicom": "dcm"}.get(str(fmt).lower(), str(fmt).lower())
    if fmt not in FORMATS:
        raise UsageError(f"format {fmt!r} is not one the chest phantoms are written in; use png or dcm", param="format")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"{out}: the output folder already holds files; pass --overwrite or choose another --out")
        for sub in ("images", "masks"):
            folder = out / sub
            for old in (folder.iterdir() if folder.is_dir() else ()):
                if old.is_file() and _NAME.fullmatch(old.name):
                    old.unlink()
    images, masks = out / "images", out / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    config = config or CXRPhantomConfig()
    written = []
    for i in tqdm(range(n), desc="chest phantoms", unit="image", disable=not progress, leave=False):
        name = f"cxr-{i + 1:04d}"
        image, labels = cxr_phantom(i, size, seed, config)
        if fmt == "png":
            target = images / f"{name}.png"
            write_image(Image(array=np.round(image * 255).astype(np.uint8), format="png", bits=8), target)
        else:
            target = images / f"{name}.dcm"
            ds = phantom_dicom(image, pixel_spacing=FIELD_OF_VIEW_MM / size, seed=seed, index=i)
            with atomic_path(target) as tmp:
                ds.save_as(tmp, enforce_file_format=True)
        write_image(Image(array=np.where(labels > 0, 255, 0).astype(np.uint8), format="png", bits=8),
                    masks / f"{name}.png")
        written.append(target)
    return written
