"""The segmenter's training data: augmentation fixed by (seed, epoch, item), simulated exposure and opacity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medvae.errors import UsageError
from medvae.tasks.cxr.train_segment import AugmentedPairs, SegmentTrainConfig


def films(n=4, size=32):
    x = np.random.default_rng(0).random((n, size, size)).astype(np.float32)
    return x, (x > 0.5).astype(np.float32)


def test_an_item_depends_on_seed_epoch_and_index_not_on_the_order_it_is_drawn_in():
    x, y = films()
    a, b = AugmentedPairs(x, y, seed=1), AugmentedPairs(x, y, seed=1)
    forward = [a[i]["image"] for i in range(4)]
    backward = [b[i]["image"] for i in reversed(range(4))][::-1]
    assert all(torch.equal(f, g) for f, g in zip(forward, backward))
    b.set_epoch(1)
    assert not any(torch.equal(f, b[i]["image"]) for i, f in enumerate(forward))
    assert all(type(v) is torch.Tensor for v in a[0].values())  # plain tensors, not MONAI's MetaTensor


def test_exposure_changes_the_image_and_leaves_the_mask():
    x, y = films()
    plain, exposed = AugmentedPairs(x, y, seed=2), AugmentedPairs(x, y, seed=2, exposure=1.0)
    for i in range(4):
        assert torch.equal(plain[i]["label"], exposed[i]["label"])
        assert not torch.allclose(plain[i]["image"], exposed[i]["image"], atol=1e-3)
    held_out = AugmentedPairs(x, y, seed=2, augment=False, exposure=1.0)  # validation films stay as they are
    assert torch.equal(held_out[0]["image"][0], torch.from_numpy(x[0]))
    with pytest.raises(UsageError, match="exposure must be a share between 0 and 1, got 2"):
        SegmentTrainConfig(images="x", exposure=2)


def test_opacity_brightens_the_lungs_and_leaves_the_mask():
    size = 64
    x, y = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    lungs = (((np.abs(x) - 0.45) / 0.3) ** 2 + (y / 0.6) ** 2 < 1).astype(np.float32)
    films_, masks = np.stack([np.where(lungs > 0, 0.15, 0.6).astype(np.float32)] * 3), np.stack([lungs] * 3)
    plain = AugmentedPairs(films_, masks, seed=4, augment=False)
    opaque = AugmentedPairs(films_, masks, seed=4, opacity=1.0)
    opaque.transform = None  # the opacity alone, without MONAI's affine and contrast
    for i in range(3):
        assert torch.equal(plain[i]["label"], opaque[i]["label"])
        assert (opaque[i]["image"] >= plain[i]["image"] - 1e-6).all()
        assert opaque[i]["image"][0][lungs > 0].mean() > 0.16
    held_out = AugmentedPairs(films_, masks, seed=4, augment=False, opacity=1.0)  # validation films as they are
    assert torch.equal(held_out[0]["image"][0], torch.from_numpy(films_[0]))
    with pytest.raises(UsageError, match="opacity must be a share between 0 and 1, got -0.1"):
        SegmentTrainConfig(images="x", opacity=-0.1)
