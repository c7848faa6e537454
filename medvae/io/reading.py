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
from medvae.io.limits import check_size

# MONAI says, when it loads and on every DICOM read, that its optional GPU decoder (nvImageCodec) is
# missing. On a CPU that is not news to users, so those two messages are silenced (for the commands that
# import MONAI to run a model; reading itself does not).
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*nvImageCodec.*")


def read_image(path: str | os.PathLike) -> Image:
    """Read a DICOM file, a folder holding one DICOM series, a NIfTI, PNG, TIFF, JPEG or .npy file.

    Sizes are checked from the header before any pixel is decoded (:mod:`medvae.io.limits`); NaN and infinite
    values are kept, and a note counts them.

    Raises:
        InputError: the file is missing, empty, truncated, not an image, larger than the voxel limit, or an
            unsupported kind (4-D NIfTI, multi-page TIFF, a folder with several series); the message is one
            line, and names a DICOM attribute rather than showing its value.
    """
    path = Path(path)
    if path.is_dir():
        return _note_non_finite(_read_dicom(path, dicom_files_in(path)))
    fmt = check_readable(path)
    try:
        if fmt == "dicom":
            image = _read_dicom(path, [path])
        elif fmt == "nifti":
            image = _read_nifti(path)
        elif fmt == "npy":
            image = _read_npy(path)
        else:
            image = _read_pil(path, fmt)
    except InputError:
        raise
    except Exception as e:
        msg = first_line(e) if fmt != "dicom" else type(e).__name__  # a DICOM error may quote a header value
        raise InputError(f"{path}: cannot read this {fmt.upper()} file ({msg})") from e
    return _note_non_finite(image)


def _note_non_finite(image: Image) -> Image:
    """Add a note counting NaN and infinite values. They are kept (NIfTI, .npy and DICOM's refusal see them as they
    are); display formats show them as black (NaN, -inf) and white (+inf)."""
    a = image.array
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        nan = int(np.count_nonzero(np.isnan(a)))
        inf = int(np.count_nonzero(np.isinf(a)))
        parts = [f"{nan} NaN" if nan else "", f"{inf} infinite" if inf else ""]
        image.notes.append("the image holds " + " and ".join(p for p in parts if p) + f" value{'s' if nan + inf > 1 else ''}"
                           " (PNG, TIFF and JPEG show NaN and -inf as black, +inf as white)")
    return image


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
    from medvae.io.dicom_header import read_header
    from medvae.io.dicom_reader import MedvaeDicomReader

    headers = [read_header(f) for f in files]  # sniffed as DICOM already; only the attributes medvae uses
    for f, h in zip(files, headers):
        if "SegmentSequence" in h:
            raise InputError(f"{f}: a DICOM SEG (segmentation) is not an image medvae reads; convert its "
                             "source images instead")
    series = {str(getattr(h, "SeriesInstanceUID", "")) for h in headers}
    if len(series) > 1:
        raise InputError(f"{path}: the folder holds {len(series)} DICOM series; give one series' folder")
    sizes = [(int(h.get("Columns") or 0), int(h.get("Rows") or 0), int(h.get("NumberOfFrames") or 1)) for h in headers]
    check_size(path, sizes[0] if len(sizes) == 1 else (*sizes[0][:2], sum(s[2] for s in sizes)))
    reader = MedvaeDicomReader(force=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            array, meta = _load(reader, files)  # several files: one series (see MedvaeDicomReader.read)
    except InputError:
        raise
    except Exception as e:  # the type only: pydicom's and numpy's messages may quote a header value
        raise InputError(f"{path}: cannot read this DICOM data ({type(e).__name__})") from e
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

    img = nib.load(str(path))  # the header only; the voxels are read (decompressed) below
    if len(img.shape) > 3:  # before reading the voxels: a 4-D series can be large
        raise InputError(f"{path}: a {len(img.shape)}-D NIfTI {tuple(img.shape)} is not supported; "
                         "split it into 3-D volumes (for example with fslsplit)")
    check_size(path, img.shape, "volume" if len(img.shape) == 3 else "image")
    # the voxels as stored (scaled by scl_slope/scl_inter), in the file's axis order, as MONAI's NibabelReader
    # gave them; the affine is nibabel's own (sform, else qform): MONAI's may be "corrected" from pixdim,
    # which loses shears and trusts stale pixdims
    array = np.asarray(np.asanyarray(img.dataobj))
    return Image(array=array, affine=np.asarray(img.affine, dtype=np.float64), format="nifti",
                 path=path, spacing_known=True, nifti_header=img.header)


def _read_npy(path: Path) -> Image:
    try:
        with open(path, "rb") as f:  # the header first: shape and dtype, before any data is read
            version = np.lib.format.read_magic(f)
            shape = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                     np.lib.format.read_array_header_2_0)(f)[0]
    except Exception:
        shape = None  # np.load below says what is wrong
    if shape is not None:
        check_size(path, shape, "array")
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
    notes: list[str] = []
    with _pil_open(path) as probe:  # the header only: size, mode and pages, before any pixel is decoded
        check_size(path, probe.size)
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

    with _pil_open(path) as img:  # (columns, rows): PIL's rows first, swapped like MONAI's PILReader
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



def _pil_open(path: Path):
    """``PIL.Image.open`` with Pillow's own decompression-bomb guard set to medvae's limit: sizes are checked
    against :func:`medvae.io.limits.max_voxels` (one line), so Pillow neither warns nor refuses below it."""
    from PIL import Image as PILImage

    from medvae.io.limits import max_voxels

    PILImage.MAX_IMAGE_PIXELS = max(max_voxels(), PILImage.MAX_IMAGE_PIXELS or 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            return PILImage.open(str(path))
        except PILImage.DecompressionBombError:
            raise InputError(f"{path}: the image is larger than medvae's limit of {max_voxels():,} pixels; "
                             "nothing was decoded (set MEDVAE_MAX_IMAGE_VOXELS to raise the limit)") from None
