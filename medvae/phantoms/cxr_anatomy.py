"""The chest phantom's anatomy, part by part, in the canonical frame (``u`` left to right, ``v`` top to bottom).

:func:`draw_params` draws one image's pose, sizes and densities; the other functions build a part from
them: the lung and heart outlines (splines), the body's soft tissue, the ribs, clavicles with the humeral
heads and scapulae, the spine, and the branching lung vessels. :func:`medvae.phantoms.cxr_render.cxr_phantom_anatomy`
calls them in a fixed order from one random generator, so each part's draws are part of an image's identity.
"""

from __future__ import annotations

import math

import numpy as np

from medvae.phantoms.cxr_config import CXRPhantomConfig
from medvae.phantoms.drawing import bone_profile, fill_polygon, spline, stroke, tube_profile


def lung_outline(side: int, p: dict, rng) -> tuple[np.ndarray, np.ndarray]:
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
    dome_line = spline(diaphragm, 40)
    outline = np.concatenate([spline(upper, 90), dome_line[1:-1]])
    return (np.stack([0.5 + side * outline[:, 0], outline[:, 1]], axis=1),
            np.stack([0.5 + side * dome_line[:, 0], dome_line[:, 1]], axis=1))


def heart_outline(p: dict, rng) -> np.ndarray:
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
    return spline(pts, 120, closed=True)


def draw_params(rng, config: CXRPhantomConfig) -> dict:
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


def draw_body(n: int, p: dict, uu: np.ndarray, vv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def draw_ribs(canvas: np.ndarray, side: int, p: dict, lateral_edge, rng) -> None:
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
        stroke(canvas, pts, radius, weight, bone_profile)


def draw_clavicle_and_shoulder(canvas: np.ndarray, side: int, p: dict, rng) -> None:
    a = p["apex"]
    vm, vl = a + 0.11 + rng.uniform(-0.01, 0.015), a + rng.uniform(-0.015, 0.01)
    L = np.linspace(0.035, 0.37, 12)
    t = (L - L[0]) / (L[-1] - L[0])
    v = vm + (vl - vm) * t + 0.016 * np.sin(2 * np.pi * t)
    radius = 0.014 + 0.007 * (1 - t) ** 3
    pts = np.stack([0.5 + side * L, v], 1)
    stroke(canvas, pts, radius, 1.0, bone_profile)
    # the humeral head at the shoulder, mostly beyond the image's edge
    centre = np.array([0.5 + side * (p["body_width"] + 0.03), p["shoulder"] + 0.11])
    ring = np.array([centre + 0.05 * np.array([math.cos(t), math.sin(t)]) for t in np.linspace(0, 2 * np.pi, 20)])
    disc = np.zeros_like(canvas)
    stroke(disc, ring, 0.008, 0.6, tube_profile)
    canvas += disc
    humerus = fill_polygon(ring, canvas.shape[0]) * 0.55
    np.maximum(canvas, humerus, out=canvas)
    # the scapula: a faint plate over the upper lateral chest with a denser lateral border
    scap = np.array([(0.5 + side * Lx, vy) for Lx, vy in ((0.3, vl + 0.02), (0.42, vl + 0.035), (0.43, vl + 0.1),
                                                           (0.37, vl + 0.26), (0.31, vl + 0.14))])
    canvas += 0.18 * fill_polygon(scap, canvas.shape[0])
    stroke(canvas, scap[1:4], 0.006, 0.35, tube_profile)


def draw_spine(canvas: np.ndarray, p: dict, uu, vv) -> np.ndarray:
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
            stroke(canvas, ring, 0.003, 0.35, tube_profile)
        stroke(canvas, np.array([(centre, vc + 0.005), (centre, vc + 0.035)]), [0.007, 0.003], 0.3, tube_profile)
    return np.abs(uu - centre) < hw


def draw_vessels(n: int, lungs: np.ndarray, p: dict, rng, contrast: float) -> np.ndarray:
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

