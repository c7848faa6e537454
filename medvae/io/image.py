"""The :class:`Image` record: an image or volume as an array in MONAI's axis order, with its geometry and headers.

It is what every reader returns and every writer takes (:mod:`medvae.io.reading`, :mod:`medvae.io.writing`).
``Image.array`` has spatial axes only, ``(x, y[, z])``, in MONAI's convention (NIfTI's too): axis 0 runs
along a row (left to right on screen, one step per column), axis 1 down the rows, axis 2 through the
slices, so a PNG's pixel at row ``r`` and column ``c`` is ``array[c, r]``. ``Image.affine`` maps those
indices to world millimetres in RAS; the source's headers (DICOM, NIfTI) ride along so a writer can keep them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medvae.errors import InputError


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
