"""Simulated airspace opacity over a real radiograph's lungs, for training a segmenter whose masks draw the
lung through it.

Consolidation, effusion and collapse make the lower lungs as dense as soft tissue, so the lung's edge against
the diaphragm and the chest wall disappears (the silhouette sign). Human lung masks of such films still draw
the lung down to where it must be, and a segmenter trained on few such films stops at the visible edge
instead. :func:`lung_opacity` paints the opacity onto a film whose lung mask is known, leaving the mask as it
is, so the model learns to draw the lung through it.

Images follow medvae's 2-D convention: float in [0, 1], shape ``(x, y)`` (axis 1 runs down the rows), bright =
dense. Two patterns, one or both lungs each:

* ``basal``: the lowest 15-60 % of a lung's height brightens toward the film's soft-tissue level, with a
  soft upper border that rises toward the chest wall (a meniscus) and runs a few pixels past the lung's lower
  edge, so the diaphragm's outline is lost as in a real effusion or lower-lobe consolidation;
* ``patchy``: two to six round blobs centred inside the lung (patchy consolidation).

Both are modulated by smooth random texture. The soft-tissue level is the 70th percentile of the pixels
outside the lungs; a pixel only ever gets brighter.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medvae.errors import UsageError


def lung_opacity(image: np.ndarray, lungs: np.ndarray, rng: np.random.Generator,
                 strength: tuple[float, float] = (0.4, 1.0)) -> np.ndarray:
    """``image`` with simulated opacity in one or both lungs of the 0/1 mask ``lungs`` (same shape, ``(x, y)``).

    strength: range of the share of the way each opaque pixel moves toward the soft-tissue level.
    Returns a new float32 array in [0, 1]; a film without lung pixels comes back unchanged.
    """
    image = np.asarray(image, np.float32)
    inside = np.asarray(lungs) > 0.5
    if image.ndim != 2 or inside.shape != image.shape:
        raise UsageError(f"image and lungs must be 2-D arrays of one shape, got {image.shape} and {inside.shape}",
                         param="image")
    if not inside.any() or inside.all():
        return image
    regions, count = ndimage.label(inside)
    sizes = ndimage.sum(inside, regions, range(1, count + 1))
    lungs_found = [1 + int(i) for i in np.argsort(sizes)[::-1][:2]]
    chosen = [r for r in lungs_found if rng.random() < 0.6] or [lungs_found[int(rng.integers(len(lungs_found)))]]
    weight = np.zeros_like(image)
    for region in chosen:
        lung = regions == region
        shape = _basal(lung, rng) if rng.random() < 0.6 else _patchy(lung, rng)
        weight = np.maximum(weight, shape)
    texture = ndimage.gaussian_filter(rng.standard_normal(image.shape).astype(np.float32), image.shape[0] / 40)
    texture = 0.75 + 0.25 * texture / (np.abs(texture).max() + 1e-6)
    soft = float(np.percentile(image[~inside], 70))
    amount = float(rng.uniform(*strength)) * np.clip(weight * texture, 0, 1)
    return np.clip(image + amount * np.maximum(soft - image, 0), 0, 1).astype(np.float32)


def _basal(lung: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Weight in [0, 1]: the lower part of ``lung``, its top a meniscus, running a little past its lower edge."""
    xs, ys = np.nonzero(lung)
    top, bottom = ys.min(), ys.max()
    height = bottom - top + 1
    level = bottom - rng.uniform(0.15, 0.6) * height  # the opacity's upper border at the lung's middle
    centre = xs.mean()
    half_width = max((xs.max() - xs.min()) / 2, 1)
    x = np.arange(lung.shape[0], dtype=np.float32)[:, None]
    y = np.arange(lung.shape[1], dtype=np.float32)[None, :]
    lateral = 1.0 if centre > lung.shape[0] / 2 else -1.0  # the chest wall is on the lung's outer side
    rise = rng.uniform(0, 0.25) * height * np.clip(lateral * (x - centre) / half_width, 0, 1)  # meniscus
    edge = max(height * 0.04, 1.0)
    below_level = 1 / (1 + np.exp(-(y - (level - rise)) / edge))
    # across: the lung's own width, softened; down: until a little below the lung's lowest point
    across = ndimage.gaussian_filter(ndimage.binary_dilation(lung, iterations=2).any(axis=1).astype(np.float32),
                                     edge)[:, None]
    past = 1 / (1 + np.exp((y - bottom - rng.uniform(0.02, 0.1) * height) / edge))
    return (below_level * across * past).astype(np.float32)


def _patchy(lung: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Weight in [0, 1]: a few round blobs centred on random pixels of ``lung``."""
    xs, ys = np.nonzero(lung)
    height = ys.max() - ys.min() + 1
    spots = np.zeros(lung.shape, np.float32)
    for _ in range(int(rng.integers(2, 7))):
        k = int(rng.integers(len(xs)))
        spots[xs[k], ys[k]] = 1.0
    sigma = rng.uniform(0.05, 0.15) * height
    blobs = ndimage.gaussian_filter(spots, sigma)
    return np.clip(blobs / (blobs.max() + 1e-12) * 1.5, 0, 1).astype(np.float32)
