"""The image formats medvae knows: their names and suffixes, and how a file's format is told.

:data:`SUFFIXES` names each format with its file suffixes (:data:`FORMAT_ALIASES` the short names
``--format`` takes); :func:`format_from_suffix` reads a name, :func:`sniff_format` a file's first bytes
(magic numbers, and DICOM without its preamble), and :func:`check_readable` checks that the two agree
before a file is read. Nothing here reads pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

from medvae.errors import InputError, UsageError

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


def sniff_format(path: Path, *, dicom_prefix: bool = True) -> str | None:
    """The format a file's first bytes show, or None; ``"dicom"`` also for the start of a DICOM file cut before
    its 132nd byte (``dicom_prefix=False``: not that)."""
    with open(path, "rb") as f:
        head = f.read(352)
    if dicom_prefix and truncated_dicom(path, head):
        return "dicom"  # its first bytes, cut short: check_readable says so
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff" if _tiff_directory_inside(path, head) else None
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] in (b"n+2\x00",):
        return "nifti"
    if head.startswith(b"\x1f\x8b"):
        return "nifti" if format_from_suffix(path) == "nifti" else "gzip"
    return "dicom" if _headerless_dicom(path, head) else None


def _tiff_directory_inside(path: Path, head: bytes) -> bool:
    """Whether a TIFF header's first image directory lies inside the file. A DICOM preamble may start like a
    TIFF (dual-format files such as pydicom's CT_small.dcm): cut before its 'DICM', it is no TIFF either."""
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    if len(head) < (16 if big else 8):
        return False
    offset = int.from_bytes(head[8:16] if big else head[4:8], "little" if order == "<" else "big")
    return 8 <= offset < path.stat().st_size


def truncated_dicom(path: Path, head: bytes | None = None) -> bool:
    """Whether ``path`` (named as DICOM, or with no known suffix) looks like the start of a DICOM file cut before
    its 132nd byte (the 128-byte preamble and 'DICM'): a preamble that is all zeros or a TIFF header pointing past
    the end, or a file named as DICOM that shows no other format."""
    if head is None:
        with open(path, "rb") as f:
            head = f.read(352)
    named = format_from_suffix(path)
    if len(head) >= 132 or len(head) < 8 or named not in (None, "dicom"):
        return False
    if not any(head) or head[:4] in (b"II*\x00", b"MM\x00*") and not _tiff_directory_inside(path, head):
        return True
    return named == "dicom" and sniff_format(path, dicom_prefix=False) is None


def _headerless_dicom(path: Path, head: bytes) -> bool:
    """DICOM without the preamble and 'DICM' (old ACR-NEMA style): starts with a group 0008 element
    (either byte order) and pydicom finds image attributes in it."""
    if len(head) < 8 or head[:2] not in (b"\x08\x00", b"\x00\x08"):
        return False
    import pydicom

    from medvae.io.dicom_header import quiet

    try:
        with quiet():  # no value warnings (a malformed UID would be quoted)
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=["SOPClassUID", "Rows"])
    except Exception:
        return False
    return "SOPClassUID" in ds or "Rows" in ds


def check_readable(path: Path) -> str:
    """Return the format to read ``path`` as, or raise InputError with one line."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: the file is empty")
    sniffed = sniff_format(path)
    named = format_from_suffix(path)
    if sniffed == "dicom" and size < 132:
        raise InputError(f"{path}: truncated: {size} bytes, shorter than a DICOM file's 128-byte preamble and "
                         "'DICM' prefix; not a complete DICOM file")
    if sniffed is None or sniffed == "gzip":
        what = "a gzip file that is not NIfTI" if sniffed == "gzip" else "not an image file medvae reads"
        raise InputError(f"{path}: {what} (DICOM, NIfTI, PNG, TIFF, JPEG or .npy)")
    if named is not None and named != sniffed:
        raise InputError(f"{path}: named as {named.upper()} but holds {sniffed.upper()} data; "
                         f"rename it to {SUFFIXES[sniffed][0]}")
    return sniffed

