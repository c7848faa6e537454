"""The phantoms' raster drawing, and the chest phantom's modules gathered in ``medvae.phantoms.cxr``."""

from __future__ import annotations

import numpy as np
import pytest

import medvae.phantoms.cxr as cxr
from medvae.phantoms import cxr_config, cxr_files, cxr_render
from medvae.phantoms.drawing import fill_polygon, largest_component, smooth_field, smooth_noise, spline, stroke


def test_polygon_spline_and_stroke():
    square = np.array([(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)])
    mask = fill_polygon(square, 16)
    assert mask.dtype == bool and mask.sum() == 64 and mask[4:12, 4:12].all()
    ring = spline(square, 40, closed=True)
    assert ring.shape == (40, 2) and np.allclose(ring[0], ring[-1])
    canvas = np.zeros((32, 32), dtype=np.float32)
    stroke(canvas, np.array([(0.2, 0.5), (0.8, 0.5)]), 0.05, 1.0)
    assert 0.9 < canvas.max() <= 1.0  # a tube's profile, along u (axis 0) at v = 0.5 only
    assert canvas[:, :12].max() == canvas[:, 20:].max() == canvas[:4].max() == 0 < canvas[16, 16]


def test_largest_component_and_noise():
    mask = np.zeros((10, 10), dtype=bool)
    mask[1:3, 1:3] = True
    mask[5:9, 5:9] = True
    assert largest_component(mask).sum() == 16
    rng = np.random.default_rng(0)
    noise = smooth_noise(rng, 32, 2.0)
    assert noise.std() == pytest.approx(1.0, abs=1e-3)
    field = smooth_field(rng, 32)
    assert field.shape == (32, 32) and field.dtype == np.float32


@pytest.mark.parametrize("name, home", [
    ("CXRPhantomConfig", cxr_config), ("CXRPhantom", cxr_config), ("check_size", cxr_config),
    ("RIGHT_LUNG", cxr_config), ("LEFT_LUNG", cxr_config), ("FIELD_OF_VIEW_MM", cxr_config),
    ("cxr_phantom", cxr_render), ("cxr_phantom_anatomy", cxr_render), ("write_cxr_phantoms", cxr_files),
    ("phantom_dicom", cxr_files), ("FORMATS", cxr_files),
])
def test_cxr_exports_each_name_from_its_module(name, home):
    assert getattr(cxr, name) is getattr(home, name) and name in cxr.__all__
