"""Raster drawing for the procedural phantoms, on a square canvas in normalised ``(u, v)`` coordinates.

Splines through control points (scipy), filled polygons (scikit-image), a polyline renderer with a varying
radius and weight that max-blends a tube or bone cross-section profile into a canvas, smooth random
noise and fields (Gaussian-filtered noise, a cubic-zoomed coarse grid), and the largest connected
component of a mask (scipy's ``label``).
"""

from __future__ import annotations

import numpy as np


def spline(points, n: int = 80, closed: bool = False) -> np.ndarray:
    """``n`` points on the cubic spline through ``points`` (K, 2); closed: periodic."""
    from scipy.interpolate import splev, splprep

    pts = np.asarray(points, dtype=float)
    if closed:
        pts = np.concatenate([pts, pts[:1]])
    tck, _ = splprep(pts.T, s=0, k=3, per=int(closed))
    x, y = splev(np.linspace(0, 1, n), tck)
    return np.stack([x, y], axis=1)


def fill_polygon(points_uv: np.ndarray, n: int) -> np.ndarray:
    """Boolean (n, n) mask of the polygon with vertices in normalised (u, v)."""
    from skimage.draw import polygon

    mask = np.zeros((n, n), dtype=bool)
    rr, cc = polygon(points_uv[:, 0] * n - 0.5, points_uv[:, 1] * n - 0.5, shape=(n, n))
    mask[rr, cc] = True
    return mask


def bone_profile(q: np.ndarray) -> np.ndarray:
    """Projected thickness across a tube of bone with a denser cortex, ``q`` = distance / radius."""
    outer = np.sqrt(np.clip(1 - q * q, 0, None))
    inner = np.sqrt(np.clip(0.6 - q * q, 0, None))
    return outer + 0.6 * (outer - inner)


def tube_profile(q: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(1 - q * q, 0, None))


def stroke(canvas: np.ndarray, points: np.ndarray, radius, weight=1.0, profile=tube_profile) -> None:
    """Draw a polyline (normalised (u, v) points) of varying radius and weight into ``canvas`` (max-blend)."""
    n = canvas.shape[0]
    pts = np.asarray(points, dtype=float) * n - 0.5
    k = len(pts)
    radius = np.broadcast_to(np.asarray(radius, dtype=float) * n, (k,))
    weight = np.broadcast_to(np.asarray(weight, dtype=float), (k,))
    for a in range(k - 1):
        p0, p1, r0, r1 = pts[a], pts[a + 1], radius[a], radius[a + 1]
        r = max(r0, r1) + 1
        lo = np.floor(np.minimum(p0, p1) - r).astype(int)
        hi = np.ceil(np.maximum(p0, p1) + r).astype(int) + 1
        lo, hi = np.clip(lo, 0, n), np.clip(hi, 0, n)
        if np.any(hi <= lo):
            continue
        x = np.arange(lo[0], hi[0], dtype=np.float32)[:, None]
        y = np.arange(lo[1], hi[1], dtype=np.float32)[None, :]
        d = p1 - p0
        length2 = float(d @ d) or 1e-9
        t = np.clip(((x - p0[0]) * d[0] + (y - p0[1]) * d[1]) / length2, 0, 1)
        dist = np.hypot(x - p0[0] - t * d[0], y - p0[1] - t * d[1])
        rad = r0 + t * (r1 - r0)
        value = profile(dist / np.maximum(rad, 0.3)) * (weight[a] + t * (weight[a + 1] - weight[a]))
        view = canvas[lo[0]:hi[0], lo[1]:hi[1]]
        np.maximum(view, value, out=view)


def smooth_noise(rng, n: int, sigma_px: float) -> np.ndarray:
    """Unit-variance Gaussian noise smoothed with ``sigma_px``."""
    from scipy.ndimage import gaussian_filter

    field_ = gaussian_filter(rng.standard_normal((n, n)).astype(np.float32), sigma_px)
    return field_ / (field_.std() + 1e-8)


def smooth_field(rng, n: int, grid: int = 4) -> np.ndarray:
    """A smooth random field in about [-1, 1]: a coarse uniform grid, cubic-interpolated."""
    from scipy.ndimage import zoom

    coarse = rng.uniform(-1, 1, (grid, grid))
    return zoom(coarse, n / grid, order=3, mode="nearest")[:n, :n].astype(np.float32)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of ``mask`` (slivers left by the heart cut are dropped)."""
    from scipy.ndimage import label

    labelled, count = label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return labelled == int(np.argmax(sizes))

