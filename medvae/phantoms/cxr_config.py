"""The chest phantom's settings and result types: :class:`CXRPhantomConfig` (how the anatomy and appearance
vary from image to image), :class:`CXRPhantom` (an image with its lung labels, other structures' masks and
drawn parameters), the label values and size limits, and :func:`check_size`, which every entry point
applies to the requested image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: a 35 cm detector: the phantom's field of view, millimetres per side
FIELD_OF_VIEW_MM = 350.0
MIN_SIZE, MAX_SIZE = 64, 4096
RIGHT_LUNG, LEFT_LUNG = 1, 2


@dataclass
class CXRPhantomConfig:
    """How the chest phantoms vary. Each range is drawn uniformly per image.

    Args:
        size: pixels per side of the square image (when the functions are not given one).
        rotation_deg: the patient's in-plane rotation is drawn from ± this.
        shift: the patient's position varies by ± this fraction of the image.
        scale_range: the patient's size factor is drawn from 1 ± this.
        inspiration_range: the lungs' height factor is drawn from 1 ± this.
        heart_range: the heart's size factor is drawn from 1 ± this.
        blur_px: Gaussian blur (sigma) at 512 pixels, scaled with the size.
        noise: standard deviation of the fine noise, as a fraction of the intensity range.
        nonuniformity: the smooth multiplicative intensity field varies by about ± this.
        vessel_contrast: density of the largest lung vessels (lung air lowers density by about 0.35).
        stomach_bubble: chance that an image shows gas in the stomach under the left dome.
    """

    size: int = 512
    rotation_deg: float = 3.0
    shift: float = 0.02
    scale_range: float = 0.05
    inspiration_range: float = 0.06
    heart_range: float = 0.1
    blur_px: float = 1.5
    noise: float = 0.01
    nonuniformity: float = 0.06
    vessel_contrast: float = 0.13
    stomach_bubble: float = 0.7


@dataclass
class CXRPhantom:
    """One phantom with its ground truth.

    Attributes:
        image: float32 in [0, 1], shape ``(x, y)``, bright = dense.
        labels: uint8, 1 = right lung (small ``x``), 2 = left lung, 0 elsewhere.
        regions: bool masks of other structures, same geometry: ``body``, ``heart``, ``spine``.
        params: the drawn values that describe this image (pose, heights, sizes).
    """

    image: np.ndarray
    labels: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)


def check_size(size: int) -> int:
    """Raise :class:`~medvae.errors.UsageError` unless ``size`` is an integer in 64..4096."""
    from medvae.errors import UsageError

    if isinstance(size, bool) or int(size) != size or not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {size!r}", param="size")
    return int(size)

