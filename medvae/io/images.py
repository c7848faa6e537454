"""Read and write medical images with their metadata: DICOM, NIfTI, PNG/TIFF/JPEG and .npy.

The one place the rest of medvae imports image I/O from; the code lives in four modules and is gathered
here: :class:`~medvae.io.image.Image` (the record), :mod:`medvae.io.formats` (suffixes and sniffing),
:mod:`medvae.io.reading` (:func:`read_image`, with pydicom, nibabel, Pillow and numpy) and :mod:`medvae.io.writing`
(:func:`write_image`). Every image comes out in MONAI's convention, the one NIfTI uses too, with the
dtype of the file:

* ``Image.array`` has spatial axes only, ``(x, y[, z])``: axis 0 runs along a row (left to right on
  screen, one step per column), axis 1 down the rows, axis 2 through the slices. A PNG's pixel at
  row ``r`` and column ``c`` is ``array[c, r]``; pydicom's ``pixel_array[r, c]`` is ``array[c, r]``.
* ``Image.affine`` maps ``(x, y, z)`` indices to world millimetres in RAS (DICOM's LPS is converted).
* Intensities mean what they say: DICOM rescale slope/intercept applied and MONOCHROME1 inverted.

``.npy`` files are the one exception to the axis order: they hold numpy's image order, ``(rows,
columns)`` and ``(slices, rows, columns)`` (what pydicom and SimpleITK's ``GetArrayFromImage`` give), so
``plt.imshow(np.load(f))`` shows the picture upright. medvae reverses the axes on read and write.
"""

from __future__ import annotations

from medvae.io.formats import (DISPLAY_FORMATS, FORMAT_ALIASES, SUFFIXES, check_readable, format_from_suffix,
                               normalize_format, sniff_format)
from medvae.io.image import Image
from medvae.io.reading import dicom_files_in, read_image
from medvae.io.writing import write_image

__all__ = ["Image", "SUFFIXES", "FORMAT_ALIASES", "DISPLAY_FORMATS", "format_from_suffix", "normalize_format",
           "sniff_format", "check_readable", "dicom_files_in", "read_image", "write_image"]
