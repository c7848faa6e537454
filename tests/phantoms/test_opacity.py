"""Simulated airspace opacity: only brightens, stays on and around the lungs, fills the lower lung in the basal
pattern, is fixed by its generator, and refuses arrays of different shapes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medvae.errors import UsageError
from medvae.phantoms.opacity import lung_opacity


@pytest.fixture(scope="module")
def film():
    """A 128² chest-like film (x, y; y runs down): dark lungs on a brighter body, and their mask."""
    x, y = np.meshgrid(np.linspace(-1, 1, 128), np.linspace(-1, 1, 128), indexing="ij")
    lungs = ((np.abs(x) - 0.45) / 0.3) ** 2 + (y / 0.6) ** 2 < 1
    image = np.where(lungs, 0.15, 0.6 + 0.1 * y).astype(np.float32)
    return image, lungs.astype(np.float32)


def test_opacity_only_brightens_and_stays_in_range(film):
    image, lungs = film
    for seed in range(10):
        out = lung_opacity(image, lungs, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1
        assert np.all(out >= image - 1e-6)
        assert out[lungs > 0].mean() > image[lungs > 0].mean() + 0.01  # something was painted on the lungs


def test_opacity_stays_on_and_around_the_lungs(film):
    image, lungs = film
    far = ndimage.distance_transform_edt(lungs == 0) > 32  # a quarter of the film away from any lung
    for seed in range(10):
        change = lung_opacity(image, lungs, np.random.default_rng(seed)) - image
        assert change[far].mean() < 0.02 * change[lungs > 0].mean()


def test_basal_opacity_is_densest_low_in_the_lung():
    """Over many draws, the lower half of each lung brightens more than its upper half."""
    x, y = np.meshgrid(np.linspace(-1, 1, 128), np.linspace(-1, 1, 128), indexing="ij")
    lungs = ((np.abs(x) - 0.45) / 0.3) ** 2 + (y / 0.6) ** 2 < 1
    image = np.where(lungs, 0.15, 0.6).astype(np.float32)
    change = sum(lung_opacity(image, lungs, np.random.default_rng(s)) - image for s in range(40))
    assert change[lungs & (y > 0)].mean() > 1.5 * change[lungs & (y < 0)].mean()


def test_opacity_is_fixed_by_the_generator_and_leaves_a_film_without_lungs_alone(film):
    image, lungs = film
    a, b = (lung_opacity(image, lungs, np.random.default_rng(3)) for _ in range(2))
    assert np.array_equal(a, b)
    assert np.array_equal(lung_opacity(image, np.zeros_like(lungs), np.random.default_rng(3)), image)


def test_opacity_refuses_arrays_of_different_shapes(film):
    image, lungs = film
    with pytest.raises(UsageError, match=r"image and lungs must be 2-D arrays of one shape, got \(128, 128\) and "
                                         r"\(64, 64\)"):
        lung_opacity(image, lungs[:64, :64], np.random.default_rng(0))
