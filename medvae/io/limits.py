"""The largest image medvae reads, checked from a file's header before any pixel is decompressed.

A gzip-compressed NIfTI of zeros, a DICOM whose Rows x Columns x NumberOfFrames is huge, or a PNG with an
enormous width and height can be a few kilobytes on disk and ask for gigabytes of memory once decoded (a
"decompression bomb"). Every reader in :mod:`medvae.io.reading` asks :func:`check_size` with the shape the
header states, and refuses with one line before decoding.

The limit is :data:`DEFAULT_MAX_VOXELS` (2**30, about 1.07 billion voxels: a 1024 x 1024 x 1024 volume, twice
the largest routine CT, 512 x 512 x 2000) unless the environment variable ``MEDVAE_MAX_IMAGE_VOXELS`` sets
another (a positive integer; ``2**31`` and ``1e9`` are accepted too). The same limit holds for 2-D images
(pixels) and volumes (voxels, all slices of a series together); colour samples count as one.
"""

from __future__ import annotations

import math
import os

from medvae.errors import InputError, UsageError

#: the environment variable that sets the limit
ENV = "MEDVAE_MAX_IMAGE_VOXELS"
#: the limit when the environment does not set one: 2**30 voxels
DEFAULT_MAX_VOXELS = 2**30


def max_voxels() -> int:
    """The largest number of voxels (pixels for 2-D images) medvae reads: ``MEDVAE_MAX_IMAGE_VOXELS`` or 2**30.

    Raises:
        UsageError: the variable is set to something that is not a positive whole number.
    """
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT_MAX_VOXELS
    try:
        if "**" in text:
            base, _, exponent = text.partition("**")
            value = int(base) ** int(exponent)
        else:
            number = float(text)
            value = int(number) if math.isfinite(number) and number == int(number) else 0
    except (ValueError, OverflowError):
        value = 0
    if value <= 0:
        raise UsageError(f"{ENV} must be a positive whole number of voxels (such as 1073741824 or 2**30), "
                         f"got {text!r}")
    return value


def check_size(path, shape, what: str = "image") -> int:
    """Refuse ``path`` (InputError, one line) when the ``shape`` its header states holds more voxels than
    :func:`max_voxels`; return the number of voxels otherwise. Negative sizes are refused too."""
    dims = [int(n) for n in shape]
    if any(n < 0 for n in dims):
        raise InputError(f"{path}: the header states a negative {what} size; the file is damaged")
    count = math.prod(dims)
    limit = max_voxels()
    if count > limit:
        size = " x ".join(str(n) for n in dims)
        raise InputError(f"{path}: the {what} would hold {count:,} voxels ({size}), more than medvae's limit of "
                         f"{limit:,}; nothing was decoded (set {ENV} to raise the limit)")
    return count
