"""Writing images: :func:`write_image` picks the format from the file name and writes atomically.

NIfTI is written with nibabel directly, because MONAI's writers resample or rebuild the header and a NIfTI
read and written again must keep its affine and header exactly (64-bit integers are narrowed to the
smallest type holding them). PNG/TIFF/JPEG go through Pillow (8 or 16 bits, notes in the PNG text),
``.npy`` in numpy's image order, and DICOM through :func:`medvae.io.dicom.write_dicom`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from medvae.errors import InputError, OutputExists, UsageError
from medvae.io.atomic import atomic_path
from medvae.io.formats import format_from_suffix, normalize_format
from medvae.io.image import Image


def write_image(image: Image, path: str | os.PathLike, *, fmt: str | None = None, operation: str = "convert",
                synthetic: bool = False, overwrite: bool = True, deidentify: bool = False) -> Path:
    """Write ``image`` to ``path`` in ``fmt`` (default: from the suffix), atomically.

    The array is written as it is: choose display scaling first (see :func:`medvae.data.intensity.to_display`).
    PNG/TIFF take unsigned integers up to 16 bits, JPEG 8 bits; NIfTI and .npy take any numeric dtype;
    DICOM is written by :func:`medvae.io.dicom.write_dicom` (a folder of slices for a volume), de-identified
    with ``deidentify`` (:mod:`medvae.io.deidentify`; the other formats carry no patient attributes).

    Returns:
        the path written (for a DICOM volume, the series folder).
    """
    path = Path(path)
    fmt = normalize_format(fmt) if fmt else format_from_suffix(path)
    if fmt is None:
        raise UsageError(f"output {path}: cannot tell the format from the name; add a suffix such as .png, "
                         ".nii.gz or .dcm, or pass --format", param="output")
    if not overwrite and path.exists():
        raise OutputExists(path)  # a batch counts it as skipped, as if it had been there at the start
    if image.path is not None and path.resolve() == Path(image.path).resolve():
        raise UsageError(f"output {path} is the input file; medvae never overwrites an input", param="output")
    if fmt == "dicom":
        from medvae.io.dicom import write_dicom

        return write_dicom(image, path, operation=operation, synthetic=synthetic, overwrite=overwrite,
                           deidentify=deidentify)
    if fmt == "nifti":
        _write_nifti(image, path)
    elif fmt == "npy":
        with atomic_path(path) as tmp:
            np.save(tmp, np.ascontiguousarray(image.array.T))
    else:
        _write_pil(image, path, fmt)
    return path


def _write_nifti(image: Image, path: Path) -> None:
    import nibabel as nib

    array = _nifti_dtype(image.array, path)
    if array.ndim == 2 and not (np.allclose(image.affine[2, :2], 0) and np.allclose(image.affine[:2, 2], 0)):
        array = array[:, :, None]  # a slice off the axial plane: a 2-D NIfTI could not say where it lies
    if image.nifti_header is not None and np.allclose(image.nifti_header.get_best_affine(), image.affine):
        header = image.nifti_header.copy()
        header.set_data_dtype(array.dtype)
        header.set_slope_inter(np.nan, np.nan)  # the array holds the values themselves
        header.set_data_shape(array.shape)
        out = nib.Nifti1Image(array, None, header=header)
    else:
        out = nib.Nifti1Image(array, image.affine)
        out.header.set_xyzt_units("mm")
        code = 1 if image.format in ("dicom", "nifti") else 0
        out.set_qform(image.affine, code=max(code, 1) if image.spacing_known else 0)
        out.set_sform(image.affine, code=max(code, 1) if image.spacing_known else 2)
    if image.notes:
        out.header["descrip"] = ("medvae: " + "; ".join(image.notes))[:79].encode()
    with atomic_path(path) as tmp:
        nib.save(out, str(tmp))


def _nifti_dtype(array: np.ndarray, path: Path) -> np.ndarray:
    """An array NIfTI-1 stores well: bool → uint8, float16 → float32, 64-bit integers (numpy's default, common
    for label maps) → the smallest integer type holding their values."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype in (np.int64, np.uint64):
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        for dtype in (np.uint8, np.int16, np.uint16, np.int32, np.uint32):
            if np.iinfo(dtype).min <= lo and hi <= np.iinfo(dtype).max:
                return array.astype(dtype)
        raise InputError(f"output {path}: integers {lo}..{hi} do not fit 32 bits; convert to float first")
    return array


def _fits_integers(array: np.ndarray, limit: int) -> bool:
    """Whether float ``array`` holds whole numbers in 0..``limit`` only (an integer image stored as floats)."""
    finite = bool(np.all(np.isfinite(array)))
    return finite and (array.size == 0 or (float(array.min()) >= 0 and float(array.max()) <= limit
                                           and np.array_equal(array, np.round(array))))


def _write_pil(image: Image, path: Path, fmt: str) -> None:
    from PIL import Image as PILImage
    from PIL import PngImagePlugin

    array = image.array
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise UsageError(f"output {path}: {fmt.upper()} holds a 2-D image but this is a volume of shape "
                         f"{array.shape}; write .nii.gz, .npy or a DICOM series instead", param="output")
    limit = 255 if fmt == "jpeg" else 65535
    if fmt == "tiff" and array.dtype.kind == "f" and not _fits_integers(array, limit):
        # TIFF holds 32-bit floats (SampleFormat 3): fractional values are kept, as NIfTI would keep them
        with atomic_path(path) as tmp:
            PILImage.fromarray(np.ascontiguousarray(array.T.astype(np.float32))).save(tmp, format="TIFF")
        return
    if array.dtype.kind == "f" or array.dtype == bool:
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise InputError(f"output {path}: the image has non-finite values")
        if not np.array_equal(array, np.round(array)):
            raise UsageError(f"output {path}: {fmt.upper()} stores integers but the values are fractional "
                             f"({array.min():g}..{array.max():g}); write TIFF, NIfTI or .npy, or rescale them first (medvae convert "
                             "--normalize percentile or window)", param="output")
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if lo < 0 or hi > limit:
        raise UsageError(f"output {path}: values {lo:g}..{hi:g} do not fit an {'8' if limit == 255 else '16'}-bit "
                         f"{fmt.upper()}; rescale them first (medvae convert --normalize percentile or window)",
                         param="output")
    small = image.bits <= 8 if image.bits else (array.dtype.itemsize == 1 or array.dtype.kind == "f")
    eight = fmt == "jpeg" or (hi <= 255 and small)
    pixels = np.ascontiguousarray(array.T.astype(np.uint8 if eight else np.uint16))
    pil = PILImage.fromarray(pixels)  # uint16 → mode I;16
    options: dict[str, Any] = {}
    if fmt == "png":  # zlib level 3: about 4x faster than Pillow's default 6 on radiographs, files ~10% larger
        options["compress_level"] = 3
    if fmt == "png" and image.notes:
        info = PngImagePlugin.PngInfo()
        info.add_text("Description", "medvae: " + "; ".join(image.notes))
        options["pnginfo"] = info
    if fmt == "jpeg":
        options["quality"] = 95
    with atomic_path(path) as tmp:
        pil.save(tmp, format={"png": "PNG", "tiff": "TIFF", "jpeg": "JPEG"}[fmt], **options)
