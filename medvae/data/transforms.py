"""MONAI transform pipelines, one per job, and the description of each stored in model files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from monai.transforms import InvertibleTransform
from monai.utils import TraceKeys

from medvae.data.intensity import PERCENTILES, check_normalize, intensity_window
from medvae.errors import MedvaeError, UsageError


def mnist_transforms():
    """MONAI dictionary transforms from uint8 digits ``(N, 1, 28, 28)`` (``image``) and their classes ``(N,)``
    (``label``) to a float32 tensor in [0, 1] and an int64 one. Every step acts on each value alone, so it runs
    on the whole stack at once, exactly as it would on each digit."""
    import torch
    from monai.transforms import Compose, EnsureTyped, ScaleIntensityRanged

    return Compose(
        [
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


# ---------------------------------------------------------------------------- medical images in and out of models
class IntensityWindow(InvertibleTransform):
    """Map an intensity window to [0, 1] (clipped), and back.

    MONAI's ``ScaleIntensityRange(Percentiles)`` is not invertible; a model's output must go back to the
    input's own scale (Hounsfield units, detector counts, grey levels), so this transform records the
    window it used in the image's ``applied_operations`` and :meth:`inverse` undoes it.

    Args:
        normalize: ``"percentile"``, ``"window"`` (the DICOM window), ``"minmax"``, ``"none"`` or
            ``"auto"`` (see :mod:`medvae.data.intensity`).
        window: the DICOM (center, width), for ``"window"`` and ``"auto"``.
        percentiles: lower and upper percentile for ``"percentile"``.
    """

    def __init__(self, normalize: str = "percentile", window: tuple[float, float] | None = None,
                 percentiles: tuple[float, float] = PERCENTILES, name: str = "image") -> None:
        self.normalize = check_normalize(normalize)
        self.window = window
        self.percentiles = percentiles
        self.name = name

    def __call__(self, img):
        import torch

        values = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
        bounds = intensity_window(values, self.normalize, window=self.window, percentiles=self.percentiles,
                                  name=self.name)
        low, high = bounds if bounds is not None else (0.0, 1.0)
        out = img.float() if isinstance(img, torch.Tensor) else torch.as_tensor(values, dtype=torch.float32)
        out = (out - low) / (high - low)
        if bounds is not None:
            out = out.clamp(0.0, 1.0)
        self.push_transform(out, extra_info={"low": low, "high": high})
        return out

    def inverse(self, data):
        info = self.pop_transform(data)
        low, high = info[TraceKeys.EXTRA_INFO]["low"], info[TraceKeys.EXTRA_INFO]["high"]
        return data * (high - low) + low


def fit_size(shape: Sequence[int], spacing: Sequence[float], size: Sequence[int]) -> tuple[int, ...]:
    """The largest shape inside ``size`` with the physical aspect ratio of ``shape`` x ``spacing``.

    >>> fit_size((200, 100), (1.0, 1.0), (64, 64))
    (64, 32)
    """
    extent = [n * s for n, s in zip(shape, spacing)]
    scale = min(t / e for t, e in zip(size, extent))
    return tuple(max(1, min(t, round(e * scale))) for t, e in zip(size, extent))


@dataclass
class ModelInput:
    """An image prepared for a model, and how to put the model's output back.

    Attributes:
        tensor: ``(1, *size)`` float32 MetaTensor in [0, 1], carrying the operations applied to it.
        pipeline: the MONAI Compose that made it; :func:`restore` runs its inverse.
    """

    tensor: Any
    pipeline: Any


def prepare(image, size: Sequence[int], *, normalize: str = "percentile",
            percentiles: tuple[float, float] = PERCENTILES) -> ModelInput:
    """Channel-first, intensity window to [0, 1], resize keeping the physical aspect ratio, pad to ``size``.

    Args:
        image: a :class:`medvae.io.images.Image` (2-D or 3-D).
        size: the model's spatial size, one number per image axis.
        normalize: how intensities map to [0, 1] (see :class:`IntensityWindow`).

    Returns:
        a :class:`ModelInput` whose tensor has shape ``(1, *size)``.
    """
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Compose, EnsureChannelFirst, Resize, SpatialPad

    size = tuple(int(s) for s in size)
    if len(size) != image.array.ndim:
        raise UsageError(f"{image.path or 'The image'}: has {image.array.ndim} axes {tuple(image.array.shape)} "
                         f"but the model takes {len(size)} ({size})")
    target = fit_size(image.array.shape, image.spacing, size)
    pipeline = Compose([
        EnsureChannelFirst(channel_dim="no_channel"),
        IntensityWindow(normalize, window=image.window, percentiles=percentiles, name=str(image.path or "image")),
        Resize(spatial_size=target, mode="bilinear" if len(size) == 2 else "trilinear", anti_aliasing=True),
        SpatialPad(spatial_size=size, method="symmetric"),
    ])
    values = image.array if image.array.dtype.kind == "f" else image.array.astype(np.float32)
    try:
        tensor = pipeline(MetaTensor(torch.as_tensor(np.ascontiguousarray(values)),
                                     affine=torch.as_tensor(image.affine)))
    except RuntimeError as e:  # MONAI wraps a transform's error: surface ours as it is
        cause = e
        while cause.__cause__ is not None and not isinstance(cause, MedvaeError):
            cause = cause.__cause__
        if isinstance(cause, MedvaeError):
            raise cause from None
        raise
    return ModelInput(tensor=tensor, pipeline=pipeline)


def restore(output, prepared: ModelInput) -> np.ndarray:
    """Undo :func:`prepare` on a model's output: crop the padding, resize back, undo the intensity window.

    Args:
        output: ``(1, *size)`` (or ``(*size)``) tensor in the model's [0, 1] space.
        prepared: what :func:`prepare` returned for the input.

    Returns:
        float32 array with the input image's shape, in its intensity units.
    """
    import torch
    from monai.data import MetaTensor

    output = torch.as_tensor(output).detach().float().cpu()
    if output.ndim == prepared.tensor.ndim - 1:
        output = output[None]
    if tuple(output.shape[1:]) != tuple(prepared.tensor.shape[1:]):
        raise UsageError(f"output shape {tuple(output.shape)} does not match the prepared input "
                         f"{tuple(prepared.tensor.shape)}", param="output")
    tracked = MetaTensor(output, meta=dict(prepared.tensor.meta),
                         applied_operations=list(prepared.tensor.applied_operations))
    restored = prepared.pipeline.inverse(tracked)
    return np.asarray(restored[0].numpy(), dtype=np.float32)


def restore_map(values, prepared: ModelInput) -> np.ndarray:
    """Undo :func:`prepare`'s geometry only on a per-pixel map (an anomaly map in nats, not intensities): crop the
    padding and resize back, values kept as they are."""
    restored = restore(values, prepared)
    for op in prepared.tensor.applied_operations:  # undo the intensity inverse that restore applied
        extra = op.get("extra_info") or {}
        if "low" in extra and "high" in extra:
            restored = (restored - extra["low"]) / (extra["high"] - extra["low"])
    return np.asarray(restored, dtype=np.float32)


def resize(array: np.ndarray, shape: tuple[int, int], *, labels: bool = False) -> np.ndarray:
    """``array`` resized to ``shape``: anti-aliased linear for images, nearest neighbour for labels."""
    from skimage.transform import resize as sk_resize

    if tuple(array.shape) == tuple(shape):
        return array
    if labels:
        return sk_resize(array, shape, order=0, preserve_range=True, anti_aliasing=False).astype(array.dtype)
    return sk_resize(array, shape, order=1, preserve_range=True, anti_aliasing=True).astype(np.float32)
