"""Simulated chest X-ray degradations, for (degraded, clean) training pairs and for evaluation.

Images follow medvae's 2-D convention: a float array in [0, 1], shape ``(x, y)`` (axis 0 along a row,
axis 1 down the rows), bright = dense. The displayed grey value is read as log-attenuation: the
detector saw the transmitted fraction ``t = exp(-MU * image)``, so the densest value (1, bone and
mediastinum) transmits ``T_MIN`` = 10 % of what open lung (0) does. Each kind models one physical cause:

* ``noise``: quantum (Poisson) noise of the photons counted, plus Gaussian electronic noise,
  carried back through the log. The dose falls geometrically from 3000 photons per unattenuated
  pixel (severity 0) to 60 (severity 1); see :func:`photons`. Dense regions receive fewer photons,
  so they come out noisier, as in real radiographs.
* ``blur``: focal-spot and detector unsharpness, a Gaussian of sigma 0.5 px (severity 0) to 3 px (1).
* ``contrast``: low contrast from scatter or poor processing: a gamma drawn away from 1 by up to
  ``0.5 * severity``, then the range squeezed toward the mean to ``1 - 0.6 * severity`` of itself.
* ``grid``: shadows of a stationary anti-scatter grid's lead strips: a sinusoidal stripe of period
  3-8 px and random phase, ADDED to the image (the strips multiply the transmission, which is an
  addition in log-attenuation). Amplitude 0.01 to 0.08. Lines are vertical on screen (varying along
  axis 0) three times in four, horizontal otherwise.
* ``exposure``: over- or under-exposure: the detector clips what falls off its range and the
  display window, pinned at the other end, stretches what is left. Over-exposure darkens and burns
  the lungs out to 0; under-exposure brightens and saturates dense regions at 1. 2 % (severity 0)
  to 15 % (severity 1) more pixels end up clipped.

:func:`random_degradation` chains a few kinds in the order they happen: exposure, contrast, blur,
grid (at the detector, after the focal-spot blur), and noise last (quantum noise arises at detection).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy import ndimage

from medvae.errors import UsageError

DEGRADATIONS = ("noise", "blur", "contrast", "grid", "exposure")
#: the order :func:`random_degradation` applies kinds in
ORDER = ("exposure", "contrast", "blur", "grid", "noise")
T_MIN = 0.1  # transmitted fraction of the densest (value 1) region
MU = -np.log(T_MIN)
DOSE = (3000.0, 60.0)  # photons per unattenuated pixel at severity 0 and 1
ELECTRONIC_SIGMA = 2.0  # detector read noise, in photons
TOLERANCE = 0.01  # image values this far outside [0, 1] are clipped; further out is an error


def photons(severity: float) -> float:
    """Photons per unattenuated pixel for ``noise`` at ``severity``: geometric from 3000 down to 60."""
    return DOSE[0] * (DOSE[1] / DOSE[0]) ** severity


def _check_image(image) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 2:
        raise UsageError(f"image must be 2-D (x, y), got shape {array.shape}; pass one slice or channel", param="image")
    if not np.issubdtype(array.dtype, np.number) or array.size == 0:
        raise UsageError(f"image must be a non-empty numeric array, got dtype {array.dtype} with {array.size} values", param="image")
    array = array.astype(np.float64)  # a copy: the caller's array is never modified
    if not np.isfinite(array).all():
        raise UsageError("image values must be finite, got NaN or inf; fix or mask them first", param="image")
    low, high = array.min(), array.max()
    if low < -TOLERANCE or high > 1 + TOLERANCE:
        raise UsageError(f"image values must be in [0, 1] (got {low:.4g}..{high:.4g}); scale the image first", param="image")
    return np.clip(array, 0.0, 1.0)


def _check_severity(severity, name: str = "severity") -> float:
    if isinstance(severity, bool) or not isinstance(severity, Real) or not 0 <= severity <= 1:
        raise UsageError(f"{name} must be in [0, 1], got {severity!r}", param=name)
    return float(severity)


def _generator(rng) -> np.random.Generator:
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise UsageError(f"rng must be a numpy Generator, a non-negative int seed or None, got {rng!r}", param="rng") from None


def _noise(image, severity, rng):
    dose = photons(severity)
    expected = dose * np.exp(-MU * image)
    counts = rng.poisson(expected) + rng.normal(0.0, ELECTRONIC_SIGMA, image.shape)
    counts = np.maximum(counts, 0.5)  # zero (or negative) counts read as half a photon: the log stays finite
    return -np.log(counts / dose) / MU


def _blur(image, severity, rng):
    return ndimage.gaussian_filter(image, sigma=0.5 + 2.5 * severity, mode="reflect")


def _contrast(image, severity, rng):
    gamma = 1.0 + rng.choice((-1.0, 1.0)) * rng.uniform(0.0, 0.5 * severity)
    image = image**gamma
    mean = image.mean()
    return mean + (1.0 - 0.6 * severity) * (image - mean)


def _grid(image, severity, rng):
    axis = 0 if rng.random() < 0.75 else 1
    period, phase = rng.uniform(3.0, 8.0), rng.uniform(0.0, 2 * np.pi)
    profile = (0.01 + 0.07 * severity) * np.cos(2 * np.pi * np.arange(image.shape[axis]) / period + phase)
    return image + (profile[:, None] if axis == 0 else profile[None, :])


def _exposure(image, severity, rng):
    extra = 0.02 + 0.13 * severity  # fraction of pixels newly clipped
    if rng.random() < 0.5:  # over-exposed: stretch down from 1 so that `extra` more pixels fall to 0
        low = np.quantile(image, min(np.mean(image <= 0.0) + extra, 1.0))
        return (image - low) / max(1.0 - low, 1e-6)
    high = np.quantile(image, max(np.mean(image < 1.0) - extra, 0.0))  # under-exposed: up from 0
    return image / max(high, 1e-6)


_APPLY = {"noise": _noise, "blur": _blur, "contrast": _contrast, "grid": _grid, "exposure": _exposure}


def degrade(image: np.ndarray, kind: str, severity: float,
            rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Apply one simulated degradation to a 2-D image.

    Args:
        image: ``(x, y)`` values in [0, 1], bright = dense; not modified.
        kind: one of :data:`DEGRADATIONS`.
        severity: 0 (barely visible) to 1 (strong but still a plausible clinical image).
        rng: a numpy Generator (advanced in place), a seed, or None for a fresh random one.
            The same seed gives the same output.

    Returns:
        The degraded image, float32 in [0, 1], same shape.

    Raises:
        UsageError: an image that is not 2-D or not in [0, 1], an unknown kind, a severity outside
            [0, 1], or an rng that is none of the above.
    """
    if kind not in DEGRADATIONS:
        raise UsageError(f"kind must be one of {', '.join(DEGRADATIONS)}, got {kind!r}", param="kind")
    array, severity = _check_image(image), _check_severity(severity)
    out = _APPLY[kind](array, severity, _generator(rng))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def random_degradation(image: np.ndarray, rng: np.random.Generator | int | None, *,
                       kinds: tuple[str, ...] = DEGRADATIONS, severity: tuple[float, float] = (0.2, 1.0),
                       max_kinds: int = 2) -> tuple[np.ndarray, list[str]]:
    """Apply 1 to ``max_kinds`` distinct degradations drawn at random, each at a random severity.

    The kinds are applied in :data:`ORDER` (exposure, contrast, blur, grid, noise), the order the
    effects arise in when a radiograph is taken.

    Args:
        image: ``(x, y)`` values in [0, 1]; not modified.
        rng: a numpy Generator (advanced in place), a seed, or None.
        kinds: the kinds to draw from, distinct, each in :data:`DEGRADATIONS`.
        severity: ``(low, high)``; each kind's severity is uniform in it.
        max_kinds: at most this many kinds (capped at ``len(kinds)``).

    Returns:
        The degraded image (float32 in [0, 1]) and what was done, e.g. ``["blur 0.41", "noise 0.53"]``.
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in kinds if k not in DEGRADATIONS]
    if not kinds or unknown or len(set(kinds)) != len(kinds):
        raise UsageError(f"kinds must be distinct names from {', '.join(DEGRADATIONS)}, got {list(kinds)}", param="kinds")
    try:
        low, high = (_check_severity(s, "severity range") for s in severity)
    except (TypeError, ValueError):
        raise UsageError(f"severity must be a (low, high) pair in [0, 1], got {severity!r}", param="severity") from None
    if low > high:
        raise UsageError(f"severity must be (low, high) with low <= high, got {severity!r}", param="severity")
    if isinstance(max_kinds, bool) or not isinstance(max_kinds, Integral) or max_kinds < 1:
        raise UsageError(f"max_kinds must be a positive integer, got {max_kinds!r}", param="max_kinds")
    rng = _generator(rng)
    out = _check_image(image)
    count = int(rng.integers(1, min(max_kinds, len(kinds)) + 1))
    chosen = {str(k) for k in rng.choice(kinds, size=count, replace=False)}
    done = []
    for kind in (k for k in ORDER if k in chosen):
        level = float(rng.uniform(low, high))
        out = degrade(out, kind, level, rng)
        done.append(f"{kind} {level:.2f}")
    return out, done
