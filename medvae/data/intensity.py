"""Intensity windows: which values map to black and white, for display files and for model inputs.

``none`` keeps values; ``percentile`` maps the 0.5th..99.5th percentiles to the ends (robust to a few
hot pixels); ``window`` uses the DICOM header's Window Center/Width; ``minmax`` the full range;
``auto`` is ``window`` when the header has one and ``percentile`` otherwise.
"""

from __future__ import annotations

import numpy as np

from medvae.errors import InputError, UsageError

NORMALIZE_CHOICES = ("auto", "none", "percentile", "window", "minmax")
PERCENTILES = (0.5, 99.5)


def check_normalize(normalize: str) -> str:
    if normalize not in NORMALIZE_CHOICES:
        raise UsageError(f"normalize {normalize!r} is not one of {', '.join(NORMALIZE_CHOICES)}", param="normalize")
    return normalize


def trained_normalize(preprocessing: dict) -> str:
    """The intensity rule a model was trained with, from its file's ``preprocessing``, for new images: the rule
    itself where it is one of :data:`NORMALIZE_CHOICES`' windows, else ``"minmax"`` (the MNIST models' "none
    (0..255 -> 0..1)", which a display image gets by its own range)."""
    normalize = preprocessing.get("normalize", "percentile")
    return normalize if normalize in ("percentile", "window", "minmax", "none") else "minmax"


def intensity_window(array: np.ndarray, normalize: str, *, window: tuple[float, float] | None = None,
                     percentiles: tuple[float, float] = PERCENTILES, name: str = "image") -> tuple[float, float] | None:
    """The ``(low, high)`` values that ``normalize`` maps to 0 and 1, or None for ``"none"``.

    Args:
        array: the values.
        normalize: one of :data:`NORMALIZE_CHOICES`.
        window: the DICOM (center, width), needed for ``"window"``.
        percentiles: the lower and upper percentile for ``"percentile"``.
        name: the file, for error messages.
    """
    check_normalize(normalize)
    if normalize == "none":
        return None
    if normalize == "auto":
        normalize = "window" if window is not None else "percentile"
    if normalize == "window":
        if window is None:
            raise InputError(f"{name}: has no DICOM window (Window Center/Width); use --normalize percentile")
        center, width = window
        low, high = center - width / 2, center + width / 2
    else:
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        if finite.size == 0:
            raise InputError(f"{name}: the image has no finite values")
        if normalize == "minmax":
            low, high = float(finite.min()), float(finite.max())
        else:
            low, high = (float(v) for v in np.percentile(finite, percentiles))
    if not high > low:  # a constant image: map it to mid-grey rather than divide by zero
        high = low + 1.0
    return float(low), float(high)


def scale_to_unit(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """``(array - low) / (high - low)`` clipped to [0, 1], as float32."""
    out = (array.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(out, 0.0, 1.0, out=out)


def to_display(array: np.ndarray, low: float, high: float, bits: int = 8) -> np.ndarray:
    """Map ``low..high`` to the integers ``0..2**bits - 1`` (uint8 or uint16); NaN and -inf become 0, +inf the
    top value (the reader's note on such an image says so)."""
    if bits not in (8, 16):
        raise UsageError(f"bits must be 8 or 16, got {bits}", param="bits")
    top = 2**bits - 1
    unit = np.nan_to_num(scale_to_unit(array, low, high), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(unit * top).astype(np.uint8 if bits == 8 else np.uint16)


def voi_lut_to_unit(image) -> np.ndarray | None:
    """Apply a DICOM source's VOI LUT Sequence, giving values in [0, 1]; None when it has none.

    The LUT is defined on the Modality LUT's output before MONOCHROME1 inversion, so an inverted image is
    un-inverted, looked up, and inverted back.
    """
    header = image.dicom[0] if getattr(image, "dicom", None) else None
    if header is None or "VOILUTSequence" not in header or not header.VOILUTSequence:
        return None
    from pydicom.pixels import apply_voi_lut

    inverted = image.photometric.upper() == "MONOCHROME1" and image.value_range is not None
    values = image.array
    if inverted:
        values = (image.value_range[0] + image.value_range[1]) - values
    lut = header.VOILUTSequence[0]
    top = 2 ** int(lut.LUTDescriptor[2]) - 1
    out = apply_voi_lut(np.asarray(values), header, index=0).astype(np.float32) / np.float32(top)
    out = np.clip(out, 0.0, 1.0)
    return 1.0 - out if inverted else out


def to_unit(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``array`` mapped to [0, 1] by its minimum and maximum, as float32, with ``(low, high)``."""
    low, high = float(array.min()), float(array.max())
    if not np.isfinite(low) or not np.isfinite(high):
        raise InputError("the image has non-finite values")
    scale = high - low if high > low else 1.0
    return ((array.astype(np.float64) - low) / scale).astype(np.float32), low, high


def from_unit(unit: np.ndarray, low: float, high: float, dtype: np.dtype) -> np.ndarray:
    """The inverse of :func:`to_unit`, rounded and clipped into ``dtype`` when it is an integer type
    (a constant image, ``low == high``, comes back constant)."""
    if not high > low:
        return np.full(unit.shape, low, dtype=dtype)
    values = np.clip(unit, 0.0, 1.0).astype(np.float64) * (high - low) + low
    if np.dtype(dtype).kind in "iub":
        return np.clip(np.round(values), low, high).astype(dtype)
    return values.astype(dtype)
