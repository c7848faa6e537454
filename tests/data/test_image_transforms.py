"""The model-input pipeline: window to [0, 1], resize keeping aspect, pad; and its inverse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medvae.data.intensity import intensity_window, to_display
from medvae.io.images import Image, read_image
from medvae.data.transforms import IntensityWindow, fit_size, prepare, restore
from medvae.errors import InputError, UsageError


def smooth(shape, seed=0):
    """A smooth random image (sum of a few low-frequency waves), values around 100..1100."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    out = np.zeros(shape)
    for _ in range(3):
        out += np.cos(sum(rng.uniform(0.5, 2) * np.pi * g for g in grids) + rng.uniform(0, 6))
    return (600 + 150 * out).astype(np.float32)


@pytest.mark.parametrize("shape, spacing, size, expected", [
    ((200, 100), (1, 1), (64, 64), (64, 32)),
    ((100, 200), (1, 1), (64, 64), (32, 64)),
    ((100, 100), (1, 2), (64, 64), (32, 64)),       # physical aspect, not voxel counts
    ((30, 40, 20), (1, 1, 3), (32, 32, 32), (16, 21, 32)),
    ((10, 10), (1, 1), (64, 32), (32, 32)),
])
def test_fit_size(shape, spacing, size, expected):
    assert fit_size(shape, spacing, size) == expected


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_prepare_gives_the_model_size_in_unit_range(spatial_dims):
    shape = (50, 30) if spatial_dims == 2 else (20, 16, 12)
    size = (32,) * spatial_dims
    image = Image(array=smooth(shape))
    prepared = prepare(image, size)
    assert tuple(prepared.tensor.shape) == (1, *size) and prepared.tensor.dtype == torch.float32
    assert float(prepared.tensor.min()) >= 0 and float(prepared.tensor.max()) <= 1


def test_aspect_ratio_is_kept_with_symmetric_padding():
    image = Image(array=np.full((64, 32), 500, np.float32))
    image.array[0, 0] = 0  # a window from 0 to 500 so the content is 1 and the padding 0
    t = prepare(image, (32, 32), normalize="minmax").tensor[0]
    assert (t[:, :8] == 0).all() and (t[:, -8:] == 0).all() and (t[2:-2, 10:22] > 0.9).all()


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_restore_undoes_prepare(spatial_dims):
    shape = (48, 40) if spatial_dims == 2 else (24, 20, 16)
    image = Image(array=smooth(shape), affine=np.diag([0.8, 0.8, 1.5, 1.0]))
    prepared = prepare(image, (64,) * spatial_dims, normalize="minmax")
    back = restore(prepared.tensor, prepared)
    assert back.shape == shape
    rel = np.abs(back - image.array).mean() / np.ptp(image.array)
    assert rel < 0.01, rel


def test_restore_of_the_same_size_is_exact():
    image = Image(array=smooth((32, 32)))
    prepared = prepare(image, (32, 32), normalize="minmax")
    np.testing.assert_allclose(restore(prepared.tensor, prepared), image.array, rtol=1e-5, atol=1e-3)


def test_restore_maps_a_model_output_back_to_the_input_scale(sample_dir):
    image = read_image(sample_dir / "dicom" / "chest_cr.dcm")
    prepared = prepare(image, (128, 128), normalize="window")
    low, high = intensity_window(image.array, "window", window=image.window)
    half = torch.full_like(prepared.tensor, 0.5)  # a model that outputs mid-grey
    back = restore(half, prepared)
    assert back.shape == image.array.shape
    np.testing.assert_allclose(back, (low + high) / 2, rtol=1e-5)


def test_intensity_window_inverse_and_none():
    from monai.data import MetaTensor

    x = MetaTensor(torch.linspace(-100, 300, 50).reshape(5, 10)[None])
    t = IntensityWindow("minmax")
    y = t(x)
    assert float(y.min()) == 0 and float(y.max()) == 1
    torch.testing.assert_close(t.inverse(y), x.float(), atol=1e-4, rtol=0)
    unchanged = IntensityWindow("none")(x)
    torch.testing.assert_close(unchanged.as_tensor(), x.as_tensor().float())


def test_errors_name_the_problem():
    with pytest.raises(UsageError, match="normalize 'bogus'"):
        IntensityWindow("bogus")
    with pytest.raises(UsageError, match="has 3 axes .* but the model takes 2"):
        prepare(Image(array=smooth((8, 8, 8))), (16, 16))
    with pytest.raises(InputError, match="no DICOM window"):
        prepare(Image(array=smooth((8, 8)), path=None), (8, 8), normalize="window")
    prepared = prepare(Image(array=smooth((8, 8))), (8, 8))
    with pytest.raises(UsageError, match="does not match"):
        restore(torch.zeros(1, 4, 4), prepared)


def test_display_mapping():
    values = np.array([-10.0, 0.0, 50.0, 100.0, 200.0])
    np.testing.assert_array_equal(to_display(values, 0, 100), [0, 0, 128, 255, 255])
    assert to_display(values, 0, 100, bits=16).dtype == np.uint16
    assert intensity_window(np.full((4, 4), 7.0), "minmax") == (7.0, 8.0)  # a constant image does not divide by 0
