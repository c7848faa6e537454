"""Reading images: :func:`read_image` for a DICOM file or series folder, NIfTI, PNG/TIFF/JPEG and .npy.

Reading uses pydicom (through :class:`~medvae.io.dicom_reader.MedvaeDicomReader`), nibabel, Pillow and
numpy directly, and gives what MONAI's image readers gave when ``LoadImage`` called them (``read`` then
``get_data``) but without its conversion to a torch tensor, which would widen uint16 to int32: every
:class:`~medvae.io.image.Image` comes out in MONAI's axis order with the dtype of the file. Neither torch nor
MONAI is imported, so ``medvae info`` and ``medvae convert`` start at once. Intensities mean what they say
(DICOM rescale applied, MONOCHROME1 inverted); the affine is nibabel's own for NIfTI; ``.npy`` files, which
hold numpy's image order ``(rows, columns)``, are transposed. Every failure is one line of
:class:`~medvae.errors.InputError`.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from medvae.errors import InputError, first_line
from medvae.io.formats import check_readable, sniff_format
from medvae.io.image import Image

# MONAI says, when it loads and on every DICOM read, that its optional GPU decoder (nvImageCodec) is
# missing. On a CPU that is not news to users, so those two messages are silenced (for the commands that
# import MONAI to run a model; reading itself does not).
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*nvImageCodec.*")


def read_image(path: str | os.PathLike) -> Image:
    """Read a DICOM file, a folder holding one DICOM series, a NIfTI, PNG, TIFF, JPEG or .npy file.

    Raises:
        InputError: the file is missing, empty, truncated, not an image, or an unsupported kind
            (4-D NIfTI, multi-page TIFF, a folder with several series); the message is one line.
    """
    path = Path(path)
    if path.is_dir():
        return _read_dicom(path, dicom_files_in(path))
    fmt = check_readable(path)
    try:
        if fmt == "dicom":
            return _read_dicom(path, [path])
        if fmt == "nifti":
            return _read_nifti(path)
        if fmt == "npy":
            return _read_npy(path)
        return _read_pil(path, fmt)
    except InputError:
        raise
    except Exception as e:
        msg = first_line(e)
        raise InputError(f"{path}: cannot read this {fmt.upper()} file ({msg})") from e


def _load(reader, path: Path | list[Path]) -> tuple[np.ndarray, dict]:
    """What ``LoadImage(reader)`` does, minus the tensor conversion: ``reader.get_data(reader.read(path))``."""
    array, meta = reader.get_data(reader.read([str(p) for p in path] if isinstance(path, list) else str(path)))
    return np.asarray(array), meta


def dicom_files_in(folder: Path) -> list[Path]:
    """The DICOM files directly inside ``folder`` (by content, whatever their names), sorted."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.name.upper() != "DICOMDIR" and p.stat().st_size > 0 and sniff_format(p) == "dicom")
    if not files:
        raise InputError(f"{folder}: the folder holds no DICOM files (to convert many images, "
                         "give a folder to 'medvae convert', which reads each file)")
    return files


def _read_dicom(path: Path, files: list[Path]) -> Image:
    import pydicom
    from medvae.io.dicom_reader import MedvaeDicomReader

    headers = []
    for f in files:
        try:
            headers.append(pydicom.dcmread(f, stop_before_pixels=True, force=True))  # sniffed as DICOM already
        except Exception as e:
            raise InputError(f"{f}: not a readable DICOM file ({first_line(e)})") from e
    for f, h in zip(files, headers):
        if "SegmentSequence" in h:
            raise InputError(f"{f}: a DICOM SEG (segmentation) is not an image medvae reads; convert its "
                             "source images instead")
    series = {str(getattr(h, "SeriesInstanceUID", "")) for h in headers}
    if len(series) > 1:
        raise InputError(f"{path}: the folder holds {len(series)} DICOM series; give one series' folder")
    reader = MedvaeDicomReader(force=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            array, meta = _load(reader, files)  # several files: one series (see MedvaeDicomReader.read)
    except InputError:
        raise
    except Exception as e:
        msg = first_line(e)
        raise InputError(f"{path}: cannot read this DICOM data ({msg})") from e
    facts = reader.facts
    if len(files) > 1:  # headers in the same (spatial) order as the slices
        by_name = {str(f): h for f, h in zip(files, headers)}
        headers = [by_name[name] for name in facts.slice_files]
    first = headers[0]
    array = np.asarray(array)
    return Image(
        array=array,
        affine=np.asarray(meta["affine"], dtype=np.float64),
        format="dicom",
        path=path,
        spacing_known=bool(meta.get("spacing_known", "00280030" in meta)),
        modality=str(getattr(first, "Modality", "")),
        photometric=str(getattr(first, "PhotometricInterpretation", "MONOCHROME2")),
        bits=facts.bits,
        value_range=facts.value_range,
        window=facts.window,
        dicom=headers,
        notes=facts.notes,
    )


def _read_nifti(path: Path) -> Image:
    import nibabel as nib

    img = nib.load(str(path))
    if len(img.shape) > 3:  # before reading the voxels: a 4-D series can be large
        raise InputError(f"{path}: a {len(img.shape)}-D NIfTI {tuple(img.shape)} is not supported; "
                         "split it into 3-D volumes (for example with fslsplit)")
    # the voxels as stored (scaled by scl_slope/scl_inter), in the file's axis order, as MONAI's NibabelReader
    # gave them; the affine is nibabel's own (sform, else qform): MONAI's may be "corrected" from pixdim,
    # which loses shears and trusts stale pixdims
    array = np.asarray(np.asanyarray(img.dataobj))
    return Image(array=array, affine=np.asarray(img.affine, dtype=np.float64), format="nifti",
                 path=path, spacing_known=True, nifti_header=img.header)


def _read_npy(path: Path) -> Image:
    try:
        array = np.asarray(np.load(str(path), allow_pickle=False))
    except ValueError as e:  # the message medvae gave when it read .npy through MONAI's NumpyReader
        raise ValueError("MONAI default value for argument `allow_pickle` of `np.load` changed to `False`, "
                         "explicitly pass `allow_pickle=True` as a constructor argument to NumpyReader "
                         "to enable pickle loading.") from e
    if array.ndim not in (2, 3) or array.dtype.kind not in "biuf":
        raise InputError(f"{path}: expected a 2-D or 3-D numeric array, got shape {array.shape} "
                         f"of {array.dtype}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return Image(array=np.ascontiguousarray(array.T), format="npy", path=path)


def _read_pil(path: Path, fmt: str) -> Image:
    from PIL import Image as PILImage

    notes: list[str] = []
    with PILImage.open(path) as probe:
        mode, frames = probe.mode, getattr(probe, "n_frames", 1)
    if frames > 1:
        raise InputError(f"{path}: a {frames}-page {fmt.upper()} is not supported; save one page per file")

    def to_gray(img):
        if img.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LA", "PA"):
            notes.append(f"{img.mode} converted to grayscale (BT.601 luma)" if img.mode not in ("LA", "PA")
                         else "alpha channel dropped")
            return img.convert("L")
        if img.mode == "1":
            return img.convert("L")
        return img

    with PILImage.open(str(path)) as img:  # (columns, rows): PIL's rows first, swapped like MONAI's PILReader
        array = np.asarray(np.moveaxis(np.asarray(to_gray(img)), 0, 1))
    lo, hi = (int(array.min()), int(array.max())) if array.size and array.dtype.kind in "iub" else (0, 0)
    if array.dtype.kind == "f":
        bits = None  # a float TIFF: values as they are
    elif array.dtype.itemsize == 1 and mode not in ("I", "I;16", "I;16S", "I;16B"):
        array, bits = array.astype(np.uint8), 8
    elif lo >= 0 and hi <= 65535:
        array, bits = array.astype(np.uint16), 16
    else:  # signed or 32-bit integers (TIFF): keep every value
        array, bits = array.astype(np.int16 if -32768 <= lo and hi <= 32767 else np.int32), None
    value_range = (0.0, float(2**bits - 1)) if bits else None
    return Image(array=np.ascontiguousarray(array), format=fmt, path=path, bits=bits, value_range=value_range,
                 notes=notes)

