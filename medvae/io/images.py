"""Read and write medical images with their metadata: DICOM, NIfTI, PNG/TIFF/JPEG and .npy.

Reading goes through MONAI's image readers (``MedvaeDicomReader``, ``NibabelReader``, ``PILReader``,
``NumpyReader``), called the way ``LoadImage`` calls them (``read`` then ``get_data``) but without its
conversion to a torch tensor, which would widen uint16 to int32. So every image comes out in MONAI's
convention, the one NIfTI uses too, with the dtype of the file:

* ``Image.array`` has spatial axes only, ``(x, y[, z])``: axis 0 runs along a row (left to right on
  screen, one step per column), axis 1 down the rows, axis 2 through the slices. A PNG's pixel at
  row ``r`` and column ``c`` is ``array[c, r]``; pydicom's ``pixel_array[r, c]`` is ``array[c, r]``.
* ``Image.affine`` maps ``(x, y, z)`` indices to world millimetres in RAS (DICOM's LPS is converted).
* Intensities mean what they say: DICOM rescale slope/intercept applied and MONOCHROME1 inverted.

``.npy`` files are the one exception to the axis order: they hold numpy's image order, ``(rows,
columns)`` and ``(slices, rows, columns)`` (what pydicom and SimpleITK's ``GetArrayFromImage`` give), so
``plt.imshow(np.load(f))`` shows the picture upright. medvae reverses the axes on read and write.

Writers live beside the readers: :func:`write_image` picks the format from the file name. NIfTI is
written with nibabel directly because MONAI's writers resample or rebuild the header, and a NIfTI read
and written again must keep its affine and header exactly.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medvae.io.atomic import atomic_path
from medvae.errors import InputError, UsageError, first_line

# MONAI says, when it loads and on every DICOM read, that its optional GPU decoder (nvImageCodec) is
# missing. On a CPU that is not news to users, so those two messages are silenced.
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*nvImageCodec.*")

#: the formats medvae reads and writes, by name, with their file suffixes
SUFFIXES = {
    "dicom": (".dcm", ".dicom", ".ima"),
    "nifti": (".nii", ".nii.gz"),
    "png": (".png",),
    "tiff": (".tif", ".tiff"),
    "jpeg": (".jpg", ".jpeg"),
    "npy": (".npy",),
}
#: short names accepted by ``--format``
FORMAT_ALIASES = {"dcm": "dicom", "nii": "nifti", "nii.gz": "nifti", "jpg": "jpeg", "tif": "tiff"}
DISPLAY_FORMATS = ("png", "tiff", "jpeg")


@dataclass
class Image:
    """An image or volume with the metadata medvae needs to write it back faithfully.

    Attributes:
        array: spatial values, shape ``(x, y)`` or ``(x, y, z)`` (see the module docstring).
        affine: 4x4 index-to-world matrix in RAS millimetres.
        format: the format it was read from (``"dicom"``, ``"nifti"``, ``"png"``, ...).
        path: the file (or series folder) it was read from.
        spacing_known: False when the source had no pixel size (PNG, JPEG, a DICOM without spacing).
        modality: DICOM Modality (``"CR"``, ``"MR"``, ...); empty if unknown.
        photometric: the photometric interpretation the source stored (before inversion).
        bits: significant bits of the source's stored pixels (8 for an 8-bit PNG, BitsStored for DICOM).
        value_range: the range the source's pixels could take, in the array's units.
        window: a (center, width) display window from the DICOM header, in the array's units.
        dicom: the DICOM headers (without pixel data), one per slice in spatial order.
        nifti_header: the nibabel header of a NIfTI source.
        notes: conversions that were made while reading (colour to gray, MONOCHROME1 inversion, ...).
    """

    array: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    format: str = "npy"
    path: Path | None = None
    spacing_known: bool = False
    modality: str = ""
    photometric: str = "MONOCHROME2"
    bits: int | None = None
    value_range: tuple[float, float] | None = None
    window: tuple[float, float] | None = None
    dicom: list[Any] = field(default_factory=list)
    nifti_header: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def spatial_dims(self) -> int:
        return self.array.ndim

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along each array axis (1.0 where unknown)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, : self.array.ndim], axis=0))

    def plane(self, job: str = "this command takes 2-D images") -> np.ndarray:
        """The array as one 2-D plane ``(x, y)`` (a single trailing channel dropped); a volume or a colour image
        raises :class:`InputError` naming the file and ``job``."""
        array = self.array[:, :, 0] if self.array.ndim == 3 and self.array.shape[2] == 1 else self.array
        if array.ndim != 2:
            raise InputError(f"{self.path}: is a volume of shape {self.array.shape}; {job}")
        return array

    def with_array(self, array: np.ndarray, **changes) -> Image:
        """A copy holding ``array`` (same geometry and headers) with ``changes`` applied."""
        from dataclasses import replace

        return replace(self, array=array, notes=list(self.notes), **changes)


# ---------------------------------------------------------------------------- format detection
def format_from_suffix(path: str | os.PathLike) -> str | None:
    """The format a file name's suffix names, or None (``scan.nii.gz`` → ``"nifti"``)."""
    name = Path(path).name.lower()
    for fmt, suffixes in SUFFIXES.items():
        if any(name.endswith(s) for s in suffixes):
            return fmt
    return None


def normalize_format(fmt: str) -> str:
    """``"dcm"`` → ``"dicom"`` etc.; raises UsageError for an unknown name."""
    key = fmt.lower().lstrip(".")
    key = FORMAT_ALIASES.get(key, key)
    if key not in SUFFIXES:
        raise UsageError(f"format {fmt!r} is not one medvae writes; use one of png, tiff, jpeg, nii, dcm, npy", param="format")
    return key


def sniff_format(path: Path) -> str | None:
    """The format a file's first bytes show, or None."""
    with open(path, "rb") as f:
        head = f.read(352)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] in (b"n+2\x00",):
        return "nifti"
    if head.startswith(b"\x1f\x8b"):
        return "nifti" if format_from_suffix(path) == "nifti" else "gzip"
    return "dicom" if _headerless_dicom(path, head) else None


def _headerless_dicom(path: Path, head: bytes) -> bool:
    """DICOM without the preamble and 'DICM' (old ACR-NEMA style): starts with a group 0008 element
    (either byte order) and pydicom finds image attributes in it."""
    if len(head) < 8 or head[:2] not in (b"\x08\x00", b"\x00\x08"):
        return False
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=["SOPClassUID", "Rows"])
    except Exception:
        return False
    return "SOPClassUID" in ds or "Rows" in ds


def _check_readable(path: Path) -> str:
    """Return the format to read ``path`` as, or raise InputError with one line."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    sniffed = sniff_format(path)
    named = format_from_suffix(path)
    if sniffed is None or sniffed == "gzip":
        what = "a gzip file that is not NIfTI" if sniffed == "gzip" else "not an image file medvae reads"
        raise InputError(f"{path}: {what} (DICOM, NIfTI, PNG, TIFF, JPEG or .npy)")
    if named is not None and named != sniffed:
        raise InputError(f"{path}: named as {named.upper()} but holds {sniffed.upper()} data; "
                         f"rename it to {SUFFIXES[sniffed][0]}")
    return sniffed


# ---------------------------------------------------------------------------- reading
def read_image(path: str | os.PathLike) -> Image:
    """Read a DICOM file, a folder holding one DICOM series, a NIfTI, PNG, TIFF, JPEG or .npy file.

    Raises:
        InputError: the file is missing, empty, truncated, not an image, or an unsupported kind
            (4-D NIfTI, multi-page TIFF, a folder with several series); the message is one line.
    """
    path = Path(path)
    if path.is_dir():
        return _read_dicom(path, dicom_files_in(path))
    fmt = _check_readable(path)
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
    from monai.data import NibabelReader

    array, _ = _load(NibabelReader(), path)
    if array.ndim > 3:
        raise InputError(f"{path}: a {array.ndim}-D NIfTI {tuple(array.shape)} is not supported; "
                         "split it into 3-D volumes (for example with fslsplit)")
    # nibabel's own affine (sform, else qform): MONAI's may be "corrected" from pixdim, which loses shears
    # and trusts stale pixdims
    img = nib.load(str(path))
    return Image(array=array, affine=np.asarray(img.affine, dtype=np.float64), format="nifti",
                 path=path, spacing_known=True, nifti_header=img.header)


def _read_npy(path: Path) -> Image:
    from monai.data import NumpyReader

    array, _ = _load(NumpyReader(), path)
    if array.ndim not in (2, 3) or array.dtype.kind not in "biuf":
        raise InputError(f"{path}: expected a 2-D or 3-D numeric array, got shape {array.shape} "
                         f"of {array.dtype}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return Image(array=np.ascontiguousarray(array.T), format="npy", path=path)


def _read_pil(path: Path, fmt: str) -> Image:
    from monai.data import PILReader
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

    array, _ = _load(PILReader(converter=to_gray), path)
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


# ---------------------------------------------------------------------------- writing
def write_image(image: Image, path: str | os.PathLike, *, fmt: str | None = None, operation: str = "convert",
                synthetic: bool = False, overwrite: bool = True) -> Path:
    """Write ``image`` to ``path`` in ``fmt`` (default: from the suffix), atomically.

    The array is written as it is: choose display scaling first (see :func:`medvae.data.intensity.to_display`).
    PNG/TIFF take unsigned integers up to 16 bits, JPEG 8 bits; NIfTI and .npy take any numeric dtype;
    DICOM is written by :func:`medvae.io.dicom.write_dicom` (a folder of slices for a volume).

    Returns:
        the path written (for a DICOM volume, the series folder).
    """
    path = Path(path)
    fmt = normalize_format(fmt) if fmt else format_from_suffix(path)
    if fmt is None:
        raise UsageError(f"output {path}: cannot tell the format from the name; add a suffix such as .png, "
                         ".nii.gz or .dcm, or pass --format", param="output")
    if not overwrite and path.exists():
        raise InputError(f"{path}: already exists (pass --overwrite to replace it)")
    if image.path is not None and path.resolve() == Path(image.path).resolve():
        raise UsageError(f"output {path} is the input file; medvae never overwrites an input", param="output")
    if fmt == "dicom":
        from medvae.io.dicom import write_dicom

        return write_dicom(image, path, operation=operation, synthetic=synthetic, overwrite=overwrite)
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
    if array.dtype.kind == "f" or array.dtype == bool:
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise InputError(f"output {path}: the image has non-finite values")
        if not np.array_equal(array, np.round(array)):
            raise UsageError(f"output {path}: {fmt.upper()} stores integers but the values are fractional "
                             f"({array.min():g}..{array.max():g}); pass --normalize percentile or window", param="output")
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if lo < 0 or hi > limit:
        raise UsageError(f"output {path}: values {lo:g}..{hi:g} do not fit an {'8' if limit == 255 else '16'}-bit "
                         f"{fmt.upper()}; pass --normalize percentile or window", param="output")
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
