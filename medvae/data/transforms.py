"""MONAI transform pipelines, one per job, and the description of each stored in model files."""

from __future__ import annotations

from typing import Any


def mnist_transforms():
    """uint8 ``(28, 28)`` digit -> float32 ``(1, 28, 28)`` tensor in [0, 1] (dictionary transforms on ``image``)."""
    import torch
    from monai.transforms import Compose, EnsureChannelFirstd, EnsureTyped, ScaleIntensityRanged

    return Compose(
        [
            EnsureChannelFirstd(keys="image", channel_dim="no_channel"),
            ScaleIntensityRanged(keys="image", a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
            EnsureTyped(keys="image", dtype=torch.float32, track_meta=False),
            EnsureTyped(keys="label", dtype=torch.int64, track_meta=False),
        ]
    )


def mnist_preprocessing() -> dict[str, Any]:
    """What :func:`mnist_transforms` does, as stored in a model file's ``preprocessing`` metadata."""
    return {
        "pipeline": "mnist",
        "input": "uint8 grey levels, 28x28",
        "intensity": {"from": [0, 255], "to": [0.0, 1.0], "clip": True},
        "shape": [1, 28, 28],
        "likelihood": "bernoulli on [0, 1] intensities (not binarised)",
    }
