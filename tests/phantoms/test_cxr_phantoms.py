"""Chest radiograph phantoms: anatomy and its contrasts, lung labels, determinism, the CLI's files."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy.ndimage import binary_dilation
from typer.testing import CliRunner

from medvae.phantoms.cxr import (LEFT_LUNG, RIGHT_LUNG, CXRPhantomConfig, cxr_phantom, cxr_phantom_anatomy)
from medvae.io.images import read_image
from medvae.data.lung_datasets import load_lung_mask, lung_pairs
from medvae.errors import UsageError
from medvae_cli.main import app

SIZE = 256


@pytest.fixture(scope="module")
def phantoms():
    return [cxr_phantom_anatomy(i, SIZE, seed=7) for i in range(6)]


def test_deterministic_per_seed_and_index():
    a, la = cxr_phantom(3, 128, seed=5)
    b, lb = cxr_phantom(3, 128, seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    c, lc = cxr_phantom(4, 128, seed=5)
    d, _ = cxr_phantom(3, 128, seed=6)
    assert np.abs(a - c).mean() > 0.02 and np.mean(la != lc) > 0.01  # other anatomy
    assert np.abs(a - d).mean() > 0.02


def test_types_ranges_and_labels(phantoms):
    for p in phantoms:
        assert p.image.shape == (SIZE, SIZE) and p.image.dtype == np.float32
        assert 0 <= p.image.min() and p.image.max() <= 1
        assert p.labels.dtype == np.uint8 and set(np.unique(p.labels)) == {0, RIGHT_LUNG, LEFT_LUNG}


def test_lungs_are_dark_against_the_dense_parts(phantoms):
    for p in phantoms:
        image, lungs, body = p.image, p.labels > 0, p.regions["body"]
        lung = image[lungs].mean()
        near = binary_dilation(lungs, iterations=4)
        soft = body & ~near & ~p.regions["heart"] & ~p.regions["spine"]  # chest wall, shoulders, abdomen
        air = image[~binary_dilation(body, iterations=4)].mean()
        assert lung + 0.25 < image[p.regions["heart"]].mean()
        assert lung + 0.25 < image[p.regions["spine"] & ~near].mean()  # mediastinum over the spine
        assert lung + 0.15 < image[soft].mean()
        assert air + 0.1 < lung and air < 0.1  # air outside the body is darkest


def test_right_lung_on_the_viewers_left_and_larger(phantoms):
    fractions, ratios = [], []
    for p in phantoms:
        x = np.arange(SIZE)[:, None] * np.ones((1, SIZE))
        right, left = p.labels == RIGHT_LUNG, p.labels == LEFT_LUNG
        assert x[right].mean() < SIZE / 2 < x[left].mean()
        assert x[right].max() < x[left].min() + SIZE * 0.05  # separate, the mediastinum between them
        fractions.append((right | left).mean())
        ratios.append(left.sum() / right.sum())
    assert all(0.15 < f < 0.45 for f in fractions), fractions
    assert np.mean(ratios) < 0.95  # the left lung is smaller: the heart's notch


def test_lungs_in_plausible_places(phantoms):
    for p in phantoms:
        rows = np.arange(SIZE)[None, :] * np.ones((SIZE, 1))
        lungs = p.labels > 0
        assert 0.03 * SIZE < rows[lungs].min() < 0.25 * SIZE  # apices near the top
        assert 0.6 * SIZE < rows[lungs].max() < 0.9 * SIZE  # costophrenic angles


def test_right_dome_higher():
    config = CXRPhantomConfig(rotation_deg=0)  # a tilt of 3 degrees moves the domes by about as much
    for i in range(6):
        labels = cxr_phantom(i, SIZE, seed=1, config=config)[1]
        bases = []
        for label in (RIGHT_LUNG, LEFT_LUNG):
            lung = labels == label
            columns = np.flatnonzero(lung.any(axis=1))
            lo, hi = columns.min(), columns.max()
            k0, k1 = int(0.15 * (hi - lo)), int(0.25 * (hi - lo))  # lateral to the heart, medial to the angle
            chosen = range(lo + k0, lo + k1) if label == RIGHT_LUNG else range(hi - k1, hi - k0)
            bases.append(np.median([np.flatnonzero(lung[c]).max() for c in chosen]))
        assert bases[0] < bases[1], bases  # rows grow downwards: the right dome is higher


def test_size_changes_resolution_not_anatomy():
    small, ls = cxr_phantom(2, 128)
    big, lb = cxr_phantom(2, 256)
    assert abs((ls > 0).mean() - (lb > 0).mean()) < 0.01
    assert np.abs(big.reshape(128, 2, 128, 2).mean(axis=(1, 3)) - small).mean() < 0.05


def test_config_and_bad_size():
    image, _ = cxr_phantom(0, config=CXRPhantomConfig(size=96))
    assert image.shape == (96, 96)
    with pytest.raises(UsageError, match="size must be"):
        cxr_phantom(0, 16)


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_writes_images_and_masks(tmp_path):
    out = tmp_path / "cxr"
    result = CliRunner().invoke(app, ["phantom", "cxr", "--n", "3", "--size", "128", "--out", str(out), "--seed", "2",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    names = ["cxr-0001.png", "cxr-0002.png", "cxr-0003.png"]
    assert sorted(p.name for p in (out / "images").iterdir()) == names
    assert sorted(p.name for p in (out / "masks").iterdir()) == names
    for name in names:
        with PILImage.open(out / "images" / name) as img, PILImage.open(out / "masks" / name) as msk:
            assert img.mode == "L" and msk.mode == "L" and img.size == msk.size == (128, 128)
            assert set(np.unique(np.asarray(msk))) == {0, 255}
    # the same images as the library's, in PNG's (rows, columns) order
    image, labels = cxr_phantom(1, 128, seed=2)
    png = read_image(out / "images" / "cxr-0002.png").array
    np.testing.assert_array_equal(png, np.round(image * 255).astype(np.uint8))
    pairs = lung_pairs(out)
    assert len(pairs) == 3
    np.testing.assert_array_equal(load_lung_mask(pairs[1], (128, 128)), (labels > 0).astype(np.uint8))


def test_cli_writes_dicom(tmp_path):
    out = tmp_path / "dcm"
    result = CliRunner().invoke(app, ["phantom", "cxr", "--n", "2", "--size", "128", "--out", str(out),
                                      "--format", "dcm", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "images").iterdir()) == ["cxr-0001.dcm", "cxr-0002.dcm"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["cxr-0001.png", "cxr-0002.png"]
    image = read_image(out / "images" / "cxr-0001.dcm")
    assert image.array.shape == (128, 128) and image.modality == "CR" and image.bits == 12
    assert image.spacing_known
    np.testing.assert_allclose(image.spacing, (350 / 128, 350 / 128))
    phantom, _ = cxr_phantom(0, 128)
    np.testing.assert_array_equal(image.array, np.round(phantom * 4095).astype(np.uint16))
    ds = image.dicom[0]
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.BitsAllocated == 16 and ds.BitsStored == 12
    assert list(ds.ImageType[:2]) == ["DERIVED", "SECONDARY"] and ds.BurnedInAnnotation == "NO"
    assert "medvae chest phantom" in ds.ImageComments and "synthetic" in ds.DerivationDescription
    if shutil.which("dciodvfy"):
        check = subprocess.run(["dciodvfy", str(out / "images" / "cxr-0001.dcm")], capture_output=True, text=True)
        errors = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]
        assert errors == []


def test_cli_skips_an_existing_output_with_a_note_and_refuses_bad_usage(tmp_path):
    out = tmp_path / "cxr"
    runner = CliRunner()
    assert runner.invoke(app, ["phantom", "cxr", "--n", "2", "--size", "64", "--out", str(out),
                               "--no-progress"]).exit_code == 0
    before = sorted(p.name for p in (out / "images").iterdir())
    again = runner.invoke(app, ["phantom", "cxr", "--n", "1", "--size", "64", "--out", str(out)])
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr.strip() == f"note: {out}: the phantom set exists; skipped (--overwrite redoes it)"
    assert sorted(p.name for p in (out / "images").iterdir()) == before  # left alone
    # --overwrite replaces the set: no image of the earlier, larger run is left behind
    redo = runner.invoke(app, ["phantom", "cxr", "--n", "1", "--size", "64", "--out", str(out), "--format", "dcm",
                               "--overwrite", "--no-progress"])
    assert redo.exit_code == 0, redo.output
    assert sorted(p.name for p in (out / "images").iterdir()) == ["cxr-0001.dcm"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["cxr-0001.png"]
    bad = runner.invoke(app, ["phantom", "cxr", "--size", "16", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--size" in bad.stderr
    fmt = runner.invoke(app, ["phantom", "cxr", "--format", "jpg", "--out", str(tmp_path / "y")])
    assert fmt.exit_code == 2 and "--format" in fmt.stderr
    n = runner.invoke(app, ["phantom", "cxr", "--n", "0", "--out", str(tmp_path / "z")])
    assert n.exit_code == 2 and "--n must be a positive integer" in n.stderr
