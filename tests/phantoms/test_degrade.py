"""Simulated chest X-ray degradations: contract, physics of each kind, random chains, usage errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medvae.phantoms.degrade import DEGRADATIONS, ORDER, degrade, photons, random_degradation
from medvae.errors import UsageError

RANDOM_KINDS = [k for k in DEGRADATIONS if k != "blur"]  # blur is the one deterministic kind


@pytest.fixture(scope="module")
def chest():
    """A 128x128 chest-like image (x, y): a smooth vertical gradient, two dark lungs, a bright spine
    and a bright disk (heart); values within [0.07, 0.85], so nothing clips by accident."""
    x, y = np.meshgrid(np.linspace(-1, 1, 128), np.linspace(-1, 1, 128), indexing="ij")
    image = 0.3 + 0.2 * (y + 1) / 2 + 0.05 * x
    lungs = ((np.abs(x) - 0.45) / 0.3) ** 2 + (y / 0.6) ** 2 < 1
    image = np.where(lungs, 0.12 + 0.05 * y, image)
    image = np.where(np.abs(x) < 0.1, 0.85, image)
    image = np.where(x**2 + (y - 0.3) ** 2 < 0.04, 0.7, image)
    return image


def highpass_std(image):
    return float(np.std(image - ndimage.gaussian_filter(image.astype(float), 2.0)))


def gradient_energy(image):
    gx, gy = np.gradient(image.astype(float))
    return float(np.mean(gx**2 + gy**2))


def mse(a, b):
    return float(np.mean((a.astype(float) - b) ** 2))


# --- the contract every kind keeps ------------------------------------------------------------

@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_output_contract_and_input_untouched(chest, kind):
    image = chest.copy()
    out = degrade(image, kind, 0.7, rng=0)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, image.astype(np.float32))
    np.testing.assert_array_equal(image, chest)
    assert image.dtype == np.float64


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_seedable(chest, kind):
    np.testing.assert_array_equal(degrade(chest, kind, 0.5, 3), degrade(chest, kind, 0.5, 3))
    a = degrade(chest, kind, 0.5, np.random.default_rng(3))
    np.testing.assert_array_equal(a, degrade(chest, kind, 0.5, 3))
    if kind in RANDOM_KINDS:
        assert not any(np.array_equal(a, degrade(chest, kind, 0.5, seed)) for seed in (4, 5))


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_severity_is_monotonic(chest, kind):
    for seed in range(4):
        assert mse(degrade(chest, kind, 0.2, seed), chest) < mse(degrade(chest, kind, 0.8, seed), chest)


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_tiny_excursions_and_other_dtypes_are_accepted(chest, kind):
    image = chest.astype(np.float32)
    image[0, 0], image[1, 0] = -1e-4, 1 + 1e-4
    out = degrade(image, kind, 0.3, 0)
    assert out.min() >= 0 and out.max() <= 1
    assert degrade(np.zeros((8, 8), dtype=np.uint8), kind, 0.3, 0).shape == (8, 8)


# --- each kind does what it says -----------------------------------------------------------

def test_noise_adds_high_frequency_zero_mean_more_with_severity(chest):
    clean = highpass_std(chest)
    low, high = (np.mean([highpass_std(degrade(chest, "noise", s, seed)) for seed in range(3)]) for s in (0.2, 0.8))
    assert clean < low < high
    bias = np.mean([np.mean(degrade(chest, "noise", 0.5, seed) - chest) for seed in range(3)])
    assert abs(bias) < 0.01


def test_noise_is_stronger_where_fewer_photons_arrive(chest):
    residual = degrade(chest, "noise", 0.5, 0) - chest
    dense, lung = np.abs(chest - 0.85) < 1e-9, chest < 0.2
    assert residual[dense].std() > 1.5 * residual[lung].std()
    assert photons(0.0) > photons(0.5) > photons(1.0)


def test_blur_lowers_gradient_energy_more_with_severity(chest):
    energies = [gradient_energy(degrade(chest, "blur", s)) for s in (0.0, 0.5, 1.0)]
    assert gradient_energy(chest) > energies[0] > energies[1] > energies[2]


def test_contrast_lowers_spread(chest):
    for seed in range(6):
        out = degrade(chest, "contrast", 0.6, seed)
        assert out.std() < chest.std()
        assert np.ptp(out) < np.ptp(chest)


def test_grid_adds_a_spectral_peak_at_its_period_along_one_axis(chest):
    axes = set()
    for seed in range(12):
        diff = degrade(chest, "grid", 0.5, seed).astype(float) - chest
        along = int(np.argmax([np.ptp(diff.mean(axis=1)), np.ptp(diff.mean(axis=0))]))
        profile = diff.mean(axis=1 - along)  # the stripe's profile, varying along axis `along`
        assert np.ptp(diff.mean(axis=along)) < 0.2 * np.ptp(profile)  # constant along the lines
        spectrum = np.abs(np.fft.rfft(profile - profile.mean()))
        peak = int(np.argmax(spectrum))
        assert spectrum[peak] > 5 * np.median(spectrum)
        assert 3 - 0.5 <= len(profile) / peak <= 8 + 1.5  # period 3-8 px, within one FFT bin
        axes.add(along)
    assert axes == {0, 1}  # vertical lines mostly, horizontal sometimes


def test_exposure_clips_more_pixels_at_one_end(chest):
    def clipped(image):
        return np.mean((image <= 0) | (image >= 1))

    ends = set()
    for seed in range(8):
        low, high = degrade(chest, "exposure", 0.2, seed), degrade(chest, "exposure", 1.0, seed)
        assert clipped(chest) < clipped(low) < clipped(high)
        assert clipped(high) >= 0.10
        ends.add("dark" if np.mean(high <= 0) > 0.05 else "bright")
    assert ends == {"dark", "bright"}


# --- random chains -------------------------------------------------------------------------

def test_random_degradation_is_deterministic_and_well_formed(chest):
    image = chest.copy()
    counts = set()
    for seed in range(20):
        out, done = random_degradation(image, np.random.default_rng(seed))
        again, done_again = random_degradation(image, np.random.default_rng(seed))
        np.testing.assert_array_equal(out, again)
        assert done == done_again
        assert out.dtype == np.float32 and out.shape == chest.shape and 0 <= out.min() <= out.max() <= 1
        names = [d.split()[0] for d in done]
        assert 1 <= len(names) <= 2 and len(set(names)) == len(names)
        assert names == sorted(names, key=ORDER.index)  # noise, if any, comes last
        assert all(0.2 <= float(d.split()[1]) <= 1.0 for d in done)
        counts.add(len(names))
    assert counts == {1, 2}
    np.testing.assert_array_equal(image, chest)


def test_random_degradation_respects_its_options(chest):
    for seed in range(10):
        _, done = random_degradation(chest, seed, kinds=("blur", "grid", "noise"), severity=(0.5, 0.6), max_kinds=3)
        assert {d.split()[0] for d in done} <= {"blur", "grid", "noise"}
        assert all(0.5 <= float(d.split()[1]) <= 0.6 for d in done)
        _, done = random_degradation(chest, seed, kinds="noise", max_kinds=5)
        assert [d.split()[0] for d in done] == ["noise"]
        assert len(random_degradation(chest, seed, max_kinds=1)[1]) == 1


# --- usage errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("image", "match"), [
    (np.zeros((4, 4, 4)), r"image must be 2-D .*\(4, 4, 4\)"),
    (np.zeros(16), r"image must be 2-D .*\(16,\)"),
    (np.array([["a", "b"]]), "non-empty numeric array"),
    (np.zeros((0, 4)), "non-empty numeric array"),
    (np.full((4, 4), np.nan), "must be finite"),
    (np.arange(16.0).reshape(4, 4) * 50 - 3, r"image values must be in \[0, 1\] \(got -3\.\.747\); scale the image"),
    (np.full((4, 4), 1.05), r"image values must be in \[0, 1\]"),
])
def test_bad_image(image, match):
    with pytest.raises(UsageError, match=match):
        degrade(image, "noise", 0.5, 0)
    with pytest.raises(UsageError, match=match):
        random_degradation(image, 0)


@pytest.mark.parametrize("kind", ["gaussian", "Noise", ""])
def test_bad_kind(chest, kind):
    with pytest.raises(UsageError, match="kind must be one of noise, blur, contrast, grid, exposure"):
        degrade(chest, kind, 0.5)


@pytest.mark.parametrize("severity", [1.5, -0.1, float("nan"), "0.5", True, None])
def test_bad_severity(chest, severity):
    with pytest.raises(UsageError, match=r"severity must be in \[0, 1\], got"):
        degrade(chest, "blur", severity)


@pytest.mark.parametrize("rng", [-1, "seed", 0.5])
def test_bad_rng(chest, rng):
    with pytest.raises(UsageError, match="rng must be a numpy Generator, a non-negative int seed or None"):
        degrade(chest, "noise", 0.5, rng)


@pytest.mark.parametrize(("options", "match"), [
    ({"kinds": ("noise", "speckle")}, "kinds must be distinct names from noise, blur"),
    ({"kinds": ()}, "kinds must be distinct names"),
    ({"kinds": ("noise", "noise")}, "kinds must be distinct names"),
    ({"severity": (0.8, 0.2)}, r"severity must be \(low, high\) with low <= high"),
    ({"severity": (0.2, 1.5)}, r"severity must be a \(low, high\) pair in \[0, 1\], got \(0.2, 1.5\)"),
    ({"severity": 0.5}, r"severity must be a \(low, high\) pair"),
    ({"severity": (0.1, 0.2, 0.3)}, r"severity must be a \(low, high\) pair"),
    ({"max_kinds": 0}, "max_kinds must be a positive integer, got 0"),
    ({"max_kinds": 1.5}, "max_kinds must be a positive integer, got 1.5"),
    ({"max_kinds": True}, "max_kinds must be a positive integer"),
])
def test_bad_random_options(chest, options, match):
    with pytest.raises(UsageError, match=match):
        random_degradation(chest, 0, **options)
