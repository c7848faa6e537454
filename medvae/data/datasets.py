"""Datasets: MONAI ``Dataset``s of ``{"image", "label"}`` dicts, and :class:`TensorBatches`.

Every image, MNIST or medical, enters as a MONAI Dataset with the job's transform pipeline. Small
data sets whose transforms are deterministic are then run through that pipeline once and held as
tensors (:class:`TensorBatches`), so training draws shuffled mini-batches by indexing instead of
collating one sample at a time: the same data, without the per-sample Python overhead.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor


def array_dataset(images: np.ndarray, labels: np.ndarray | None, transform):
    """A MONAI ``Dataset`` over in-memory images ``(N, *spatial)`` with optional labels ``(N,)``."""
    from monai.data import Dataset

    items = [
        {"image": images[i], **({"label": np.int64(labels[i])} if labels is not None else {})}
        for i in range(len(images))
    ]
    return Dataset(items, transform=transform)


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

    @classmethod
    def from_dataset(cls, dataset, batch_size: int = 1000) -> TensorBatches:
        """Run every item of ``dataset`` (a MONAI Dataset with its transforms) once and stack the results."""
        from monai.data import DataLoader

        parts: dict[str, list[Tensor]] = {}
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            for k, v in batch.items():
                if isinstance(v, Tensor):
                    parts.setdefault(k, []).append(v.as_tensor() if hasattr(v, "as_tensor") else v)
        return cls({k: torch.cat(v) for k, v in parts.items()})

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
