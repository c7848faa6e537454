"""Procedural PA chest radiograph phantoms with lung masks, for segmentation and enhancement work.

Each image is built in a canonical frame (normalised coordinates ``u`` left to right on screen and ``v``
top to bottom, both in [0, 1]) as a projected *density* map, the sum of what an X-ray beam crosses, and then
placed with its own pose (a rotation of a few degrees, a scaling and a shift) and displayed with bright =
dense. Anatomy, every part drawn afresh for each image:

* body: a torso with neck and sloping shoulders, thicker (brighter) in the middle, and air outside it
  (the darkest part of the image); humeral heads and a faint scapula at the shoulders;
* lungs: the classic outlines from splines (rounded apices, sharp costophrenic angles, diaphragm domes,
  the right dome higher; the left lung narrower), each lowering the density by its air content, which
  grows inward from the lung edge;
* heart: a cardiac silhouette (right atrium, left ventricle, aortic knob) over the medial lungs; the lung
  masks exclude what it hides, as hand-drawn lung masks do, which gives the left lung its cardiac notch;
* mediastinum and spine: soft tissue between the lungs, the trachea and main bronchi as an air column,
  vertebral bodies with disc spaces and pedicles;
* ribs (posterior ribs with their lateral and fainter anterior parts) and clavicles, drawn as bone with
  a brighter cortex;
* lung markings: branching vessels from the hila, tapering outward, and a fine band-pass texture;
* the stomach bubble under the left dome (in most images);
* a smooth intensity nonuniformity, a gamma and contrast per image, a Gaussian blur of about 1.5 pixels
  at 512 (the system's sharpness) and a little fine noise.

Masks come from the same geometry, binary and before the blur: label 1 is the patient's right lung, which
a PA radiograph shows on the viewer's left (small ``x``), label 2 the left lung.

Everything is numpy/scipy/scikit-image: polygons and splines for outlines, a polyline-distance renderer
for bones and airways, ``line_aa`` plus Gaussian blur for vessels, and one ``affine_transform`` for the pose.
MONAI has no anatomical phantom generator, hence our own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: a 35 cm detector: the phantom's field of view, millimetres per side
FIELD_OF_VIEW_MM = 350.0
MIN_SIZE, MAX_SIZE = 64, 4096
RIGHT_LUNG, LEFT_LUNG = 1, 2
FORMATS = ("png", "dcm")
_NAME = re.compile(r"cxr-\d{4,}\.(png|dcm)")


@dataclass
class CXRPhantomConfig:
    """How the chest phantoms vary. Each range is drawn uniformly per image.

    Args:
        size: pixels per side of the square image (when the functions are not given one).
        rotation_deg: the patient's in-plane rotation is drawn from ± this.
        shift: the patient's position varies by ± this fraction of the image.
        scale_range: the patient's size factor is drawn from 1 ± this.
        inspiration_range: the lungs' height factor is drawn from 1 ± this.
        heart_range: the heart's size factor is drawn from 1 ± this.
        blur_px: Gaussian blur (sigma) at 512 pixels, scaled with the size.
        noise: standard deviation of the fine noise, as a fraction of the intensity range.
        nonuniformity: the smooth multiplicative intensity field varies by about ± this.
        vessel_contrast: density of the largest lung vessels (lung air lowers density by about 0.35).
        stomach_bubble: chance that an image shows gas in the stomach under the left dome.
    """

    size: int = 512
    rotation_deg: float = 3.0
    shift: float = 0.02
    scale_range: float = 0.05
    inspiration_range: float = 0.06
    heart_range: float = 0.1
    blur_px: float = 1.5
    noise: float = 0.01
    nonuniformity: float = 0.06
    vessel_contrast: float = 0.13
    stomach_bubble: float = 0.7


@dataclass
class CXRPhantom:
    """One phantom with its ground truth.

    Attributes:
        image: float32 in [0, 1], shape ``(x, y)``, bright = dense.
        labels: uint8, 1 = right lung (small ``x``), 2 = left lung, 0 elsewhere.
        regions: bool masks of other structures, same geometry: ``body``, ``heart``, ``spine``.
        params: the drawn values that describe this image (pose, heights, sizes).
    """

    image: np.ndarray
    labels: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)


def check_size(size: int) -> int:
    """Raise :class:`~medvae.errors.UsageError` unless ``size`` is an integer in 64..4096."""
    from medvae.errors import UsageError

    if isinstance(size, bool) or int(size) != size or not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {size!r}", param="size")
    return int(size)


# ---------------------------------------------------------------------------------------------- helpers
def _spline(points, n: int = 80, closed: bool = False) -> np.ndarray:
    """``n`` points on the cubic spline through ``points`` (K, 2); closed: periodic."""
    from scipy.interpolate import splev, splprep

    pts = np.asarray(points, dtype=float)
    if closed:
        pts = np.concatenate([pts, pts[:1]])
    tck, _ = splprep(pts.T, s=0, k=3, per=int(closed))
    x, y = splev(np.linspace(0, 1, n), tck)
    return np.stack([x, y], axis=1)


def _polygon(points_uv: np.ndarray, n: int) -> np.ndarray:
    """Boolean (n, n) mask of the polygon with vertices in normalised (u, v)."""
    from skimage.draw import polygon

    mask = np.zeros((n, n), dtype=bool)
    rr, cc = polygon(points_uv[:, 0] * n - 0.5, points_uv[:, 1] * n - 0.5, shape=(n, n))
    mask[rr, cc] = True
    return mask


def _bone_profile(q: np.ndarray) -> np.ndarray:
    """Projected thickness across a tube of bone with a denser cortex, ``q`` = distance / radius."""
    outer = np.sqrt(np.clip(1 - q * q, 0, None))
    inner = np.sqrt(np.clip(0.6 - q * q, 0, None))
    return outer + 0.6 * (outer - inner)


def _tube_profile(q: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(1 - q * q, 0, None))


def _stroke(canvas: np.ndarray, points: np.ndarray, radius, weight=1.0, profile=_tube_profile) -> None:
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


def _smooth_noise(rng, n: int, sigma_px: float) -> np.ndarray:
    """Unit-variance Gaussian noise smoothed with ``sigma_px``."""
    from scipy.ndimage import gaussian_filter

    field_ = gaussian_filter(rng.standard_normal((n, n)).astype(np.float32), sigma_px)
    return field_ / (field_.std() + 1e-8)


def _smooth_field(rng, n: int, grid: int = 4) -> np.ndarray:
    """A smooth random field in about [-1, 1]: a coarse uniform grid, cubic-interpolated."""
    from scipy.ndimage import zoom

    coarse = rng.uniform(-1, 1, (grid, grid))
    return zoom(coarse, n / grid, order=3, mode="nearest")[:n, :n].astype(np.float32)


# ---------------------------------------------------------------------------------------------- anatomy
def _lung_outline(side: int, p: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    """The full outline of one lung (including the part behind the heart) and its diaphragm, as (u, v) points.

    ``side`` is +1 for the left lung (larger ``u``) and -1 for the right; the outline is built in the
    lateral coordinate ``L`` (distance from the midline) and mirrored.
    """
    left = side > 0
    a, width = p["apex"], p["width_left"] if left else p["width_right"]
    dome = p["dome_left"] if left else p["dome_right"]
    cp = dome + p["cp_depth"] + (0.02 if left else 0.0)
    h = cp - a

    def j(scale=0.006):
        return rng.uniform(-scale, scale)

    m = p["medial"]
    upper = [(width * 0.97, cp), (width * 1.0 + j(), a + 0.66 * h + j()), (width * 0.98 + j(), a + 0.44 * h),
             (width * 0.88 + j(), a + 0.22 * h), (width * 0.68, a + 0.07 * h + j(0.004)),
             (width * 0.46 + j(), a), (width * 0.27, a + 0.045 * h),
             (m + 0.025, a + 0.15 * h + j())]
    if left:  # the aortic knob and the pulmonary trunk indent the left upper lung
        upper += [(m + 0.04 + p["knob"], a + 0.26 * h), (m + 0.035, a + 0.36 * h), (m + 0.01, a + 0.55 * h),
                  (m, dome + 0.04)]
    else:
        upper += [(m + 0.02, a + 0.3 * h), (m + 0.03, a + 0.45 * h), (m + 0.01, a + 0.66 * h),
                  (m + 0.005, dome + 0.04)]
    peak = 0.55 * width
    diaphragm = [(m + 0.005, dome + 0.04), (0.5 * (m + peak), dome + 0.008), (peak, dome),
                 (0.5 * (peak + width), dome + 0.022 + j(0.004)), (width * 0.92, dome + 0.06 + j(0.004)),
                 (width * 0.97, cp)]
    dome_line = _spline(diaphragm, 40)
    outline = np.concatenate([_spline(upper, 90), dome_line[1:-1]])
    return (np.stack([0.5 + side * outline[:, 0], outline[:, 1]], axis=1),
            np.stack([0.5 + side * dome_line[:, 0], dome_line[:, 1]], axis=1))


def _heart_outline(p: dict, rng) -> np.ndarray:
    """The cardiac silhouette: SVC and right atrium on the right, pulmonary trunk, left atrial appendage and
    the left ventricle's convexity on the left, resting on the diaphragm (its lower part, hidden under the
    domes, is cut off by the caller)."""
    a, h = p["apex"], p["dome_right"] + p["cp_depth"] - p["apex"]
    s, dr, dl = p["heart_scale"], p["dome_right"], p["dome_left"]
    rb, lb = p["heart_right"] * s, p["heart_left"] * s
    top = a + 0.40 * h
    pts = [(-0.02, top), (-0.055, top + 0.035), (-0.8 * rb, a + 0.52 * h), (-rb, a + 0.62 * h),
           (-0.96 * rb, dr + 0.01), (-0.8 * rb, dr + 0.07), (0.0, dr + 0.1), (0.6 * lb, dl + 0.09),
           (1.0 * lb, dl + 0.02), (0.97 * lb, dl - 0.07 * s), (0.8 * lb, a + 0.57 * h), (0.55 * lb, a + 0.49 * h),
           (0.42 * lb, a + 0.44 * h), (0.35 * lb, top - 0.005), (0.05, top - 0.03)]
    pts = [(0.5 + p["heart_shift"] + x + rng.uniform(-0.004, 0.004), y + rng.uniform(-0.004, 0.004)) for x, y in pts]
    return _spline(pts, 120, closed=True)


def _draw_params(rng, config: CXRPhantomConfig) -> dict:
    def u(lo, hi):
        return float(rng.uniform(lo, hi))

    inspiration = 1 + u(-config.inspiration_range, config.inspiration_range)
    apex = u(0.09, 0.125)
    dome_right = apex + 0.5 * inspiration + u(-0.02, 0.02)
    width_right = u(0.35, 0.385)
    p = dict(
        rotation=math.radians(u(-config.rotation_deg, config.rotation_deg)),
        scale=1 + u(-config.scale_range, config.scale_range),
        shift_x=u(-config.shift, config.shift), shift_y=u(-config.shift, config.shift),
        apex=apex, dome_right=dome_right, dome_left=dome_right + u(0.015, 0.045), cp_depth=u(0.1, 0.13),
        width_right=width_right, width_left=width_right * u(0.93, 0.99), medial=u(0.045, 0.06), knob=u(0.01, 0.025),
        heart_scale=1 + u(-config.heart_range, config.heart_range), heart_right=u(0.1, 0.125),
        heart_left=u(0.2, 0.24), heart_shift=u(-0.01, 0.015),
        body_width=u(0.44, 0.48), neck=u(0.08, 0.1), shoulder=u(0.03, 0.08),
        soft=u(0.5, 0.58), air=u(0.34, 0.4), bone=u(0.08, 0.11), heart=u(0.1, 0.14),
        curve=u(1.6, 2.2), offset=u(0.02, 0.04), gain=u(0.95, 1.05), gamma=u(1.35, 1.65),
    )
    return p


def _body(n: int, p: dict, uu: np.ndarray, vv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(body mask, soft-tissue density) on the canonical grid: torso, neck and shoulders."""
    lat = np.abs(uu - 0.5)  # (n, 1)
    nw, wb, sh = p["neck"], p["body_width"], p["shoulder"]
    # the top of the body along the lateral coordinate: neck at the top edge, trapezius sloping to the shoulders,
    # the rounded shoulder and arm beyond
    x = np.clip((lat - nw) / (0.38 - nw), 0, 1)
    top = np.where(lat < nw, -1.0, sh * x**0.8 + 6.0 * np.clip(lat - 0.38, 0, None) ** 2)
    # lateral edge: the chest wall, wider at the shoulders (the arms' soft tissue), narrower towards the waist
    edge = wb + 0.09 * np.exp(-(((vv - sh - 0.1) / 0.1) ** 2)) - 0.05 * np.clip((vv - 0.5) / 0.5, 0, 1) ** 2
    body = (vv > top) & (lat < edge)
    thickness = np.sqrt(np.clip(1 - (lat / (edge + 0.01)) ** 2, 0, None))
    depth = 0.75 + 0.25 * np.clip((vv - top) / 0.12, 0, 1)  # thin over the shoulders
    density = body * (0.3 + 0.7 * thickness**0.7) * depth
    # abdomen below the diaphragm: thicker, a gentle rise downwards
    density = density * (1 + 0.12 * np.clip((vv - p["dome_right"]) / 0.3, 0, 1))
    return body, density.astype(np.float32)


def _ribs(canvas: np.ndarray, side: int, p: dict, lateral_edge, rng) -> None:
    """Posterior ribs (with their lateral turn and fainter anterior part) of one side into ``canvas``."""
    a = p["apex"]
    h = p["dome_right"] + p["cp_depth"] - a
    step = h / 8.6
    for k in range(10):
        v0 = a - 0.035 + k * step * (0.92 + 0.018 * k) + rng.uniform(-0.004, 0.004)
        lw = float(lateral_edge(v0 + 0.04)) + 0.02
        if lw < 0.1:
            continue
        half = 0.011 + 0.0008 * k + rng.uniform(-0.001, 0.001)
        curl = 1.0 + 0.9 * max(0, 3 - k) / 3  # the upper ribs curve more tightly
        xs = np.linspace(0.03, 1.0, 14)
        L = xs * lw
        v = v0 + lw * (-0.45 * xs + 1.05 * xs**2) * 0.45 * curl
        post = np.stack([L, v], 1)
        # the lateral turn down along the chest wall, then the anterior rib medially downwards
        v_end = v[-1]
        turn = np.array([[lw + 0.012 * math.sin(t), v_end + 0.03 * (1 - math.cos(t)) + 0.02 * t]
                         for t in np.linspace(0.4, 1.6, 4)])
        la = np.linspace(lw - 0.005, 0.45 * lw, 7)
        ant = np.stack([la, turn[-1, 1] + 0.05 + 0.4 * (lw - la) * (0.8 + 0.4 * k / 10)], 1)
        pts = np.concatenate([post, turn, ant])
        weight = np.concatenate([np.linspace(0.7, 1.0, 14), np.linspace(0.85, 0.5, 4), np.linspace(0.4, 0.15, 7)])
        radius = np.concatenate([np.full(14, half), np.full(4, half * 1.1), np.full(7, half * 1.35)])
        pts = np.stack([0.5 + side * pts[:, 0], pts[:, 1]], 1)
        _stroke(canvas, pts, radius, weight, _bone_profile)


def _clavicle_and_shoulder(canvas: np.ndarray, side: int, p: dict, rng) -> None:
    a = p["apex"]
    vm, vl = a + 0.11 + rng.uniform(-0.01, 0.015), a + rng.uniform(-0.015, 0.01)
    L = np.linspace(0.035, 0.37, 12)
    t = (L - L[0]) / (L[-1] - L[0])
    v = vm + (vl - vm) * t + 0.016 * np.sin(2 * np.pi * t)
    radius = 0.014 + 0.007 * (1 - t) ** 3
    pts = np.stack([0.5 + side * L, v], 1)
    _stroke(canvas, pts, radius, 1.0, _bone_profile)
    # the humeral head at the shoulder, mostly beyond the image's edge
    centre = np.array([0.5 + side * (p["body_width"] + 0.03), p["shoulder"] + 0.11])
    ring = np.array([centre + 0.05 * np.array([math.cos(t), math.sin(t)]) for t in np.linspace(0, 2 * np.pi, 20)])
    disc = np.zeros_like(canvas)
    _stroke(disc, ring, 0.008, 0.6, _tube_profile)
    canvas += disc
    humerus = _polygon(ring, canvas.shape[0]) * 0.55
    np.maximum(canvas, humerus, out=canvas)
    # the scapula: a faint plate over the upper lateral chest with a denser lateral border
    scap = np.array([(0.5 + side * Lx, vy) for Lx, vy in ((0.3, vl + 0.02), (0.42, vl + 0.035), (0.43, vl + 0.1),
                                                           (0.37, vl + 0.26), (0.31, vl + 0.14))])
    canvas += 0.18 * _polygon(scap, canvas.shape[0])
    _stroke(canvas, scap[1:4], 0.006, 0.35, _tube_profile)


def _spine(canvas: np.ndarray, p: dict, uu, vv) -> np.ndarray:
    """Vertebral bodies with disc spaces, pedicles and spinous processes; returns the spine band mask."""
    centre = 0.5
    hw = 0.042
    s = (uu - centre) / hw
    across = np.sqrt(np.clip(1 - s**2, 0, None))
    period = (p["dome_right"] - p["apex"]) / 9.0
    phase = ((vv - p["apex"] + 0.02) / period) % 1.0
    # vertebral body (high), a narrow disc space (low), brighter endplates
    disc = np.exp(-(((phase - 0.92) / 0.05) ** 2)) + np.exp(-(((phase + 0.08) / 0.05) ** 2))
    endplate = np.exp(-(((phase - 0.85) / 0.03) ** 2)) + np.exp(-(((phase - 0.02) / 0.03) ** 2))
    density = across * (0.7 - 0.14 * disc + 0.05 * endplate) * (0.6 + 0.4 * np.clip(vv / 0.3, 0, 1))
    canvas += density.astype(np.float32)
    # pedicles: small bright rings either side, one per vertebra; spinous processes: teardrops on the midline
    k0 = int(np.floor((0 - p["apex"] + 0.02) / period)) - 1
    for k in range(k0, k0 + int(1.2 / period) + 2):
        vc = p["apex"] - 0.02 + (k + 0.42) * period
        if not 0 < vc < 1:
            continue
        for sx in (-1, 1):
            ring = np.array([(centre + sx * 0.03 + 0.008 * math.cos(t), vc + 0.011 * math.sin(t))
                             for t in np.linspace(0, 2 * np.pi, 10)])
            _stroke(canvas, ring, 0.003, 0.35, _tube_profile)
        _stroke(canvas, np.array([(centre, vc + 0.005), (centre, vc + 0.035)]), [0.007, 0.003], 0.3, _tube_profile)
    return np.abs(uu - centre) < hw


def _vessels(n: int, lungs: np.ndarray, p: dict, rng, contrast: float) -> np.ndarray:
    """Branching lung vessels from the hila, tapering outwards, blurred by size class."""
    from scipy.ndimage import gaussian_filter
    from skimage.draw import line_aa

    a = p["apex"]
    h = p["dome_right"] + p["cp_depth"] - a
    canvases = [np.zeros((n, n), dtype=np.float32) for _ in range(3)]
    segments = []

    def grow(x, y, angle, length, width, depth, side):
        # one branch: three short pieces with a wandering direction, then two daughters
        for _ in range(3):
            angle += rng.normal(0, 0.15)
            x1, y1 = x + side * length / 3 * math.cos(angle), y + length / 3 * math.sin(angle)
            segments.append((x, y, x1, y1, width, depth))
            x, y = x1, y1
        i, j = int(x * n), int(y * n)
        if depth < 6 and 0 <= i < n and 0 <= j < n and lungs[i, j]:
            spread = rng.uniform(0.25, 0.55)
            share = rng.uniform(0.35, 0.65)
            grow(x, y, angle - spread * share, length * rng.uniform(0.7, 0.85), width * 0.75, depth + 1, side)
            grow(x, y, angle + spread * (1 - share), length * rng.uniform(0.6, 0.8), width * 0.7, depth + 1, side)

    for side in (-1, 1):
        hx = 0.5 + side * (p["medial"] + 0.045)
        hy = a + (0.42 if side > 0 else 0.46) * h
        for base in (-1.3, -0.75, -0.2, 0.35, 0.85, 1.3):  # up, up-out, out, down-out, down, down-in
            grow(hx, hy, base + rng.uniform(-0.15, 0.15), rng.uniform(0.05, 0.07), 1.0, 0, side)
    for x0, y0, x1, y1, width, depth in segments:
        rr, cc, val = line_aa(int(round(x0 * n)), int(round(y0 * n)), int(round(x1 * n)), int(round(y1 * n)))
        ok = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n)
        cls = 0 if depth <= 1 else (1 if depth <= 3 else 2)
        np.maximum.at(canvases[cls], (rr[ok], cc[ok]), (val[ok] * width).astype(np.float32))
    scale = n / 512
    out = np.zeros((n, n), dtype=np.float32)
    for canvas, sigma, gain in zip(canvases, (3.0, 1.6, 0.9), (7.0, 4.0, 2.2)):
        out += gain * gaussian_filter(canvas, max(sigma * scale, 0.5))
    return np.clip(out * contrast, 0, contrast * 1.5)


def cxr_phantom_anatomy(index: int, size: int | None = None, seed: int = 0,
                        config: CXRPhantomConfig | None = None) -> CXRPhantom:
    """One chest phantom with its lung labels, other structures' masks and its drawn parameters.

    Image ``index`` depends only on ``(seed, index)``; ``size`` (pixels per side, default
    ``config.size``) changes the resolution, not the anatomy.
    """
    from scipy.ndimage import affine_transform, distance_transform_edt, gaussian_filter

    config = config or CXRPhantomConfig()
    n = check_size(config.size if size is None else size)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    p = _draw_params(rng, config)
    centres = (np.arange(n, dtype=np.float32) + 0.5) / n
    uu, vv = centres[:, None], centres[None, :]

    body, soft = _body(n, p, uu, vv)
    # lungs and heart
    drawn = {side: _lung_outline(side, p, rng) for side in (-1, 1)}
    outlines = {side: outline for side, (outline, _) in drawn.items()}
    full = {side: _polygon(outlines[side], n) & body for side in (-1, 1)}
    # the diaphragm line across the image: the domes, joined under the heart; below it lies the abdomen
    # beyond the costophrenic angles the line runs steeply down the chest wall (no shelf in the soft tissue)
    ends = [(0.5 + side * (p["width_left" if side > 0 else "width_right"] + dx), dome[-1, 1] + dy)
            for side, (_, dome) in drawn.items() for dx, dy in ((0.02, 0.05), (0.08, 0.4))]
    domes = np.concatenate([dome for _, dome in drawn.values()] + [np.array(ends)])
    domes = domes[np.argsort(domes[:, 0])]
    dome_v = np.interp(centres, domes[:, 0], domes[:, 1])[:, None]
    below = (np.clip((vv - dome_v) * n / 2.0 + 0.5, 0, 1) * body).astype(np.float32)
    heart = _polygon(_heart_outline(p, rng), n) & (below < 0.5)
    lungs_full = full[-1] | full[1]
    labels = np.zeros((n, n), dtype=np.uint8)
    for side, label in ((-1, RIGHT_LUNG), (1, LEFT_LUNG)):
        labels[_largest(full[side] & ~heart)] = label

    # air content: a crisp edge, deepening inward; thicker lung at the bases; partly hidden behind the heart
    edt = distance_transform_edt(lungs_full) / n
    air = lungs_full * (0.55 + 0.45 * (1 - np.exp(-edt / 0.03)))
    air = air * (0.8 + 0.3 * np.clip((vv - p["apex"]) / (p["dome_right"] - p["apex"]), 0, 1))
    heart_soft = gaussian_filter(heart.astype(np.float32), 1.0 * n / 512 + 0.3)
    air = air * (1 - 0.72 * heart_soft)
    # the posterior costophrenic recesses: some lung air below the domes, fading downwards
    lat = np.abs(uu - 0.5)
    recess = below * np.exp(-(vv - dome_v) / 0.035) * np.clip((lat - p["medial"] - 0.06) / 0.05, 0, 1) \
        * np.clip((p["width_right"] - 0.01 - lat) / 0.03, 0, 1)
    air = air + 0.3 * recess

    # the abdomen under the diaphragm is as dense as the heart above it: one continuous silhouette
    # (fading towards the flanks, where the abdomen is thinner)
    abdomen = gaussian_filter(below, 12.0 * n / 512) * np.sqrt(np.clip(1 - (lat / p["body_width"]) ** 2, 0, None))
    density = soft * p["soft"] - p["air"] * air.astype(np.float32) + p["heart"] * np.maximum(heart_soft, abdomen)
    # hila: soft-tissue density of the pulmonary arteries and veins at the lung roots
    a, h = p["apex"], p["dome_right"] + p["cp_depth"] - p["apex"]
    for side, hy in ((-1, 0.46), (1, 0.42)):
        blob = np.exp(-(((uu - 0.5 - side * (p["medial"] + 0.035)) / 0.03) ** 2 + ((vv - a - hy * h) / 0.05) ** 2))
        density += 0.1 * blob
    # trachea and main bronchi: an air column in the mediastinum
    airway = np.zeros((n, n), dtype=np.float32)
    carina = (0.5 - 0.005, a + 0.3 * h)
    _stroke(airway, np.array([(0.5 - 0.005, -0.02), (0.5 - 0.004, a + 0.1), carina]), 0.014, 1.0)
    bronchus = [0.01, 0.009, 0.006]
    _stroke(airway, np.array([carina, (0.5 - 0.04, a + 0.34 * h), (0.5 - 0.07, a + 0.4 * h)]), bronchus, 1.0)
    _stroke(airway, np.array([carina, (0.5 + 0.045, a + 0.35 * h), (0.5 + 0.085, a + 0.4 * h)]), bronchus, 1.0)
    density -= 0.12 * airway * body
    # stomach bubble under the left dome: gas with a flat fluid level, just under the diaphragm
    if rng.random() < config.stomach_bubble:
        cx, half = 0.5 + p["width_left"] * rng.uniform(0.5, 0.7), rng.uniform(0.035, 0.06)
        top = dome_v + 0.012
        depth = rng.uniform(0.02, 0.045)
        across = np.clip(1 - ((uu - cx) / half) ** 2, 0, None)
        gas = np.clip((vv - top) * n / 2, 0, 1) * np.clip((top + depth * np.sqrt(across) - vv) * n / 2, 0, 1)
        density -= 0.13 * (gas * (across > 0)).astype(np.float32)
    # bones
    bones = np.zeros((n, n), dtype=np.float32)
    spine = _spine(bones, p, uu, vv)
    for side, outline in outlines.items():
        dist = np.abs(outline[:, 0] - 0.5)
        lateral = outline[dist > np.median(dist)]
        order = np.argsort(lateral[:, 1])
        ys, ls = lateral[order, 1], np.abs(lateral[order, 0] - 0.5)

        def lateral_edge(v, ys=ys, ls=ls):
            return np.interp(v, ys, ls, left=0.0, right=ls[-1])
        ribs = np.zeros((n, n), dtype=np.float32)
        _ribs(ribs, side, p, lateral_edge, rng)
        clav = np.zeros((n, n), dtype=np.float32)
        _clavicle_and_shoulder(clav, side, p, rng)
        bones += ribs * body * (1 - 0.6 * below) + clav * 1.2
    # bone contrast fades where the beam crosses much soft tissue (scatter): through the heart and abdomen
    density += p["bone"] * bones * (1 - 0.35 * np.maximum(heart_soft, below))
    # lung markings: vessels and a fine texture, seen against the lung air
    texture = _smooth_noise(rng, n, 1.2 * n / 512) - 0.5 * _smooth_noise(rng, n, 4.0 * n / 512)
    in_lung = gaussian_filter(lungs_full.astype(np.float32), 2.0 * n / 512)
    density += (_vessels(n, lungs_full, p, rng, config.vessel_contrast) + 0.012 * texture) * in_lung
    density = np.clip(density, 0, None)

    # pose: rotate, scale and shift the patient on the detector (one affine for the image and the masks)
    theta, s = p["rotation"], p["scale"]
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]]) / s
    centre = np.array([0.5, 0.5]) * n
    t = np.array([p["shift_x"], p["shift_y"]]) * n
    offset = centre - 0.5 + rot @ (0.5 - centre - t)

    def place(array, order):
        return affine_transform(array, rot, offset=offset, order=order, mode="nearest")

    density = place(density.astype(np.float32), 1)
    labels = place(labels, 0)
    regions = {"body": place(body.astype(np.uint8), 0) > 0, "heart": place(heart.astype(np.uint8), 0) > 0,
               "spine": place((spine & body).astype(np.uint8), 0) > 0}

    # display: bright = dense, a per-image gain/gamma, smooth nonuniformity, system blur, fine noise
    # the film/detector characteristic: high densities are compressed (ribs fade over the abdomen)
    image = p["offset"] + p["gain"] * (1 - np.exp(-p["curve"] * density)) / (1 - np.exp(-p["curve"] * 1.2))
    image = image * (1 + config.nonuniformity * _smooth_field(rng, n)) * (1 + 0.04 * (centres[None, :] - 0.5))
    image = np.clip(image, 0, 1) ** p["gamma"]
    image = gaussian_filter(image, config.blur_px * n / 512)
    image = image + config.noise * (0.6 * rng.standard_normal((n, n)) + 0.8 * _smooth_noise(rng, n, 0.8))
    image = np.clip(image, 0, 1).astype(np.float32)
    return CXRPhantom(image=image, labels=labels.astype(np.uint8), regions=regions, params=p)


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of ``mask`` (slivers left by the heart cut are dropped)."""
    from scipy.ndimage import label

    labelled, count = label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return labelled == int(np.argmax(sizes))


def cxr_phantom(index: int, size: int | None = None, seed: int = 0,
                config: CXRPhantomConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A PA chest radiograph phantom and its lung labels.

    Args:
        index: the image's number; image ``index`` depends only on ``(seed, index)``.
        size: pixels per side (64 to 4096; default ``config.size``, 512).
        seed: the data set's seed.
        config: how the anatomy and appearance vary (:class:`CXRPhantomConfig`).

    Returns:
        ``(image, labels)``: the image, float32 in [0, 1], shape ``(x, y)``, bright = dense; the lung
        labels, uint8: 1 = right lung (on the viewer's left, small ``x``), 2 = left lung, 0 elsewhere.
    """
    phantom = cxr_phantom_anatomy(index, size, seed, config)
    return phantom.image, phantom.labels


# ---------------------------------------------------------------------------------------------- writing
def phantom_dicom(image: np.ndarray, *, pixel_spacing: float, seed: int, index: int):
    """A CR Image Storage dataset (pydicom) holding ``image`` (float in [0, 1], (x, y)) as 12-bit MONOCHROME2.

    Built by :func:`medvae.io.dicom.derived_dataset` from a stub CR header (PA chest), so it has what
    every medvae-derived DICOM has (new UIDs, ImageType DERIVED\\SECONDARY, DerivationDescription, marked
    synthetic), plus PixelSpacing and ImagerPixelSpacing of a 35 cm detector and a display window.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    from medvae.io.dicom import CR, _ds_number, derived_dataset

    stored = np.round(np.clip(image, 0, 1) * 4095).astype(np.uint16)
    stub = Dataset()
    stub.SOPClassUID = CR
    stub.Modality = "CR"
    stub.PatientName = "medvae^chest phantom"
    stub.PatientID = f"cxr-phantom-{seed}-{index + 1:04d}"
    stub.StudyID = "1"
    stub.BodyPartExamined = "CHEST"
    stub.ViewPosition = "PA"
    stub.PatientOrientation = ["L", "F"]  # PA: rows run to the patient's left, columns to the feet
    lo, hi = np.percentile(stored, [1, 99.5])
    ds = derived_dataset(stored.T, stub, operation="chest phantom", synthetic=True, series_uid=generate_uid(),
                         instance=1, geometry=None, spacing=(pixel_spacing, pixel_spacing),
                         notes=[f"medvae chest phantom, seed {seed} image {index + 1}"],
                         series_description="medvae chest phantom",
                         window=(float(lo + hi) / 2, float(max(hi - lo, 1))))
    ds.BitsStored, ds.HighBit = 12, 11
    ds.ImagerPixelSpacing = [_ds_number(pixel_spacing)] * 2
    ds.SeriesNumber = 1
    return ds


def write_cxr_phantoms(n: int, out: str | Path, *, size: int = 512, seed: int = 0, fmt: str = "png",
                       overwrite: bool = False, progress: bool = True,
                       config: CXRPhantomConfig | None = None) -> list[Path]:
    """Write ``n`` phantoms as ``out/images/cxr-0001.png`` (or ``.dcm``) and lung masks ``out/masks/cxr-0001.png``.

    Images are 8-bit grayscale PNG, or with ``fmt="dcm"`` CR DICOM (12 bits stored, PixelSpacing 350 mm /
    size, marked synthetic). Masks are always 8-bit PNG, 0 outside and 255 in either lung, as the public
    lung data sets store them; :func:`cxr_phantom` gives the right/left split. Image ``i`` is drawn from
    ``(seed, i)``, so a larger ``n`` keeps the earlier images.

    Raises:
        InputError: ``out`` exists and is not empty, unless ``overwrite``; with ``overwrite``, phantom files
            (``cxr-NNNN.png``/``.dcm``) already in ``out/images`` and ``out/masks`` are replaced or removed,
            so the folder holds exactly this set.
        UsageError: a bad ``n``, ``size`` or ``fmt``.

    Returns:
        the image files written.
    """
    from tqdm.auto import tqdm

    from medvae.io.atomic import atomic_path
    from medvae.io.images import Image, write_image
    from medvae.errors import InputError, UsageError, check_positive

    check_positive("n", n)
    size = check_size(size)
    fmt = {"dicom": "dcm"}.get(str(fmt).lower(), str(fmt).lower())
    if fmt not in FORMATS:
        raise UsageError(f"format {fmt!r} is not one the chest phantoms are written in; use png or dcm", param="format")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"{out}: the output folder already holds files; pass --overwrite or choose another --out")
        for sub in ("images", "masks"):
            folder = out / sub
            for old in (folder.iterdir() if folder.is_dir() else ()):
                if old.is_file() and _NAME.fullmatch(old.name):
                    old.unlink()
    images, masks = out / "images", out / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    config = config or CXRPhantomConfig()
    written = []
    for i in tqdm(range(n), desc="chest phantoms", unit="image", disable=not progress, leave=False):
        name = f"cxr-{i + 1:04d}"
        image, labels = cxr_phantom(i, size, seed, config)
        if fmt == "png":
            target = images / f"{name}.png"
            write_image(Image(array=np.round(image * 255).astype(np.uint8), format="png", bits=8), target)
        else:
            target = images / f"{name}.dcm"
            ds = phantom_dicom(image, pixel_spacing=FIELD_OF_VIEW_MM / size, seed=seed, index=i)
            with atomic_path(target) as tmp:
                ds.save_as(tmp, enforce_file_format=True)
        write_image(Image(array=np.where(labels > 0, 255, 0).astype(np.uint8), format="png", bits=8),
                    masks / f"{name}.png")
        written.append(target)
    return written
