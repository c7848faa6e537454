"""What the U-Net models' configs share (the enhancer's, the segmenter's and the synthesis network's).

:class:`UNetConfig` is the base of a config whose first fields are ``spatial_dims``, ``in_channels`` and
``channels`` (one entry per level), with :attr:`UNetConfig.multiple`, the factor spatial sizes must be a
multiple of. :data:`NORMS` names the normalisations a config may ask for, and :func:`check_norm` and
:func:`check_weights` are the validations with the messages every config gives (a
:class:`~medvae.errors.UsageError` naming the parameter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medvae.errors import UsageError

#: the normalisations a U-Net config takes (``"NONE"``: none; see :func:`medvae.models.blocks.monai_norm`)
NORMS = ("BATCH", "INSTANCE", "NONE")


@dataclass
class UNetConfig:
    """The fields every U-Net config starts with, in this order (see the subclasses' docstrings)."""

    spatial_dims: int = 2
    in_channels: int = 1
    channels: tuple[int, ...] = (16, 32, 64, 128)

    @property
    def multiple(self) -> int:
        """Spatial sizes must be multiples of this."""
        return 2 ** (len(self.channels) - 1)


def check_norm(norm: str) -> None:
    """Raise :class:`UsageError` (``param="norm"``) unless ``norm`` is one of :data:`NORMS`."""
    if norm not in NORMS:
        raise UsageError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}", param="norm")


def check_weights(config: object, *names: str) -> None:
    """Raise :class:`UsageError` naming the first of ``config``'s fields ``names`` that is not a finite number >= 0."""
    for name in names:
        value = getattr(config, name)
        if not (value >= 0 and math.isfinite(value)):
            raise UsageError(f"{name} must be a finite number, 0 or more, got {value}", param=name)
