"""Datasets held in memory: :class:`TensorBatches`, and :class:`ImageFolder` for the medical images of a folder.

Small data sets whose MONAI transforms are deterministic are run through that pipeline once, the whole stack
at a time where the transforms act on each value alone (MNIST's intensity window), and held as tensors, so
training draws shuffled mini-batches by indexing instead of collating one sample at a time: the same data,
without the per-sample Python overhead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


class TensorBatches:
    """A whole data set as tensors in memory, served as (shuffled, sharded) mini-batches.

    Args:
        tensors: equal-length tensors by key, e.g. ``{"image": (N, C, *spatial), "label": (N,)}``.
    """

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors must have the same length, got {sorted(lengths)}")
        self.tensors = {k: t.contiguous() for k, t in tensors.items()}
        self.n = lengths.pop()

    def __len__(self) -> int:
        return self.n

    def subset(self, n: int) -> TensorBatches:
        """The first ``n`` items."""
        return TensorBatches({k: t[:n] for k, t in self.tensors.items()})

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> Iterator[dict[str, Tensor]]:
        """Yield mini-batches of ``batch_size`` (the last may be smaller).

        With ``world_size > 1`` each rank gets an equal, disjoint share of one permutation (padded by
        repeating items, as ``DistributedSampler`` does), so every rank takes the same number of steps.
        """
        order = torch.randperm(self.n, generator=generator) if shuffle else torch.arange(self.n)
        if world_size > 1:
            per_rank = -(-self.n // world_size)
            if per_rank * world_size > self.n:  # repeat items so every rank gets per_rank of them
                order = order.repeat(-(-per_rank * world_size // self.n))[: per_rank * world_size]
            order = order[rank::world_size]
        if not shuffle and world_size == 1:
            for i in range(0, self.n, batch_size):  # contiguous slices: views, no copy
                yield {k: t[i : i + batch_size] for k, t in self.tensors.items()}
            return
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            yield {k: t[idx] for k, t in self.tensors.items()}


@dataclass
class ImageFolder:
    """Every image under a folder, prepared for a model and held in memory.

    Attributes:
        images: ``(N, 1, *size)`` float32 in [0, 1].
        files: the file each image came from.
        spacing: median voxel size (mm) of the prepared images along each axis; None when the files do
            not give one (PNG, JPEG, DICOM without PixelSpacing).
        skipped: (file, reason) for files that could not be used.
    """

    images: Tensor
    files: list[str]
    spacing: tuple[float, ...] | None
    skipped: list[tuple[str, str]]


def load_image_folder(folder, size: int | tuple[int, ...], spatial_dims: int = 2, *, normalize: str = "percentile",
                      limit: int | None = None, progress: bool = False, files: list | None = None) -> ImageFolder:
    """Read every image under ``folder`` (recursively), or the given ``files``, through the MONAI pipeline of
    :func:`medvae.data.transforms.prepare`: intensity window to [0, 1], resized keeping its aspect ratio
    and padded to ``size``. Mixed sizes are fine. Volumes are first turned to the closest RAS orientation,
    so a model sees (and later generates) every volume the same way round. Files that cannot be read are
    skipped and listed.

    Raises:
        UsageError: the folder is missing (exit code 2).
        InputError: the folder holds no usable image (one line).
    """
    from pathlib import Path

    import torch
    from tqdm.auto import tqdm

    from medvae.io.batch import discover
    from medvae.io.images import read_image
    from medvae.data.transforms import fit_size, prepare
    from medvae.errors import InputError, UsageError

    folder = Path(folder)
    if files is None and not folder.is_dir():  # the folder the user named: bad usage (exit code 2)
        raise UsageError(f"data {folder}: " + ("is a file; give a folder of images" if folder.exists()
                                               else "no such folder"), param="data")
    target = (size,) * spatial_dims if isinstance(size, int) else tuple(size)
    files = [Path(f) for f in files] if files is not None else discover(folder)
    images, used, spacings, skipped = [], [], [], []
    known = True
    for path in tqdm(files, desc="reading", unit="file", disable=not progress, leave=False):
        if limit is not None and len(images) >= limit:
            break
        try:
            image = read_image(path)
            if image.array.ndim == 3 and spatial_dims == 2 and image.array.shape[2] == 1:
                image = image.with_array(image.array[:, :, 0])
            if image.array.ndim != spatial_dims:
                raise InputError(f"is {image.array.ndim}-D, not {spatial_dims}-D")
            if spatial_dims == 3 and image.spacing_known:
                image = to_ras(image)
            images.append(prepare(image, target, normalize=normalize).tensor.as_tensor())
            known = known and image.spacing_known
            fitted = fit_size(image.array.shape, image.spacing, target)
            spacings.append([n * s / f for n, s, f in zip(image.array.shape, image.spacing, fitted)])
            used.append(str(path))
        except Exception as e:  # a bad file is reported, not fatal
            skipped.append((str(path), (str(e).strip().splitlines() or [type(e).__name__])[0]))
    if not images:
        why = f"; e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise InputError(f"{folder}: no usable {spatial_dims}-D images found{why}")
    spacing = tuple(float(v) for v in np.median(np.array(spacings), axis=0)) if known else None
    return ImageFolder(torch.stack(images).float(), used, spacing, skipped)


def to_ras(image):
    """The image with its axes permuted and flipped to the closest RAS orientation (nibabel's canonical)."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(image.affine)
    array = nib.orientations.apply_orientation(image.array, ornt)
    affine = image.affine @ nib.orientations.inv_ornt_aff(ornt, image.array.shape)
    return image.with_array(np.ascontiguousarray(array), affine=affine)
