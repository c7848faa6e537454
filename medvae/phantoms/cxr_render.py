"""Rendering a chest phantom: the parts of :mod:`medvae.phantoms.cxr_anatomy` composed into one projected
density map (lung air, heart and abdomen, hila, airways, stomach gas, bones, vessels and texture), the
lung labels and structure masks from the same geometry, the patient's pose (one ``affine_transform`` for
the image and the masks) and the display (detector curve, gamma, nonuniformity, blur and noise).
"""

from __future__ import annotations

import math

import numpy as np

from medvae.phantoms.cxr_anatomy import (draw_body, draw_clavicle_and_shoulder, draw_params, draw_ribs, draw_spine,
                                         draw_vessels, heart_outline, lung_outline)
from medvae.phantoms.cxr_config import LEFT_LUNG, RIGHT_LUNG, CXRPhantom, CXRPhantomConfig, check_size
from medvae.phantoms.drawing import fill_polygon, largest_component, smooth_field, smooth_noise, stroke


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
    p = draw_params(rng, config)
    centres = (np.arange(n, dtype=np.float32) + 0.5) / n
    uu, vv = centres[:, None], centres[None, :]

    body, soft = draw_body(n, p, uu, vv)
    # lungs and heart
    drawn = {side: lung_outline(side, p, rng) for side in (-1, 1)}
    outlines = {side: outline for side, (outline, _) in drawn.items()}
    full = {side: fill_polygon(outlines[side], n) & body for side in (-1, 1)}
    # the diaphragm line across the image: the domes, joined under the heart; below it lies the abdomen
    # beyond the costophrenic angles the line runs steeply down the chest wall (no shelf in the soft tissue)
    ends = [(0.5 + side * (p["width_left" if side > 0 else "width_right"] + dx), dome[-1, 1] + dy)
            for side, (_, dome) in drawn.items() for dx, dy in ((0.02, 0.05), (0.08, 0.4))]
    domes = np.concatenate([dome for _, dome in drawn.values()] + [np.array(ends)])
    domes = domes[np.argsort(domes[:, 0])]
    dome_v = np.interp(centres, domes[:, 0], domes[:, 1])[:, None]
    below = (np.clip((vv - dome_v) * n / 2.0 + 0.5, 0, 1) * body).astype(np.float32)
    heart = fill_polygon(heart_outline(p, rng), n) & (below < 0.5)
    lungs_full = full[-1] | full[1]
    labels = np.zeros((n, n), dtype=np.uint8)
    for side, label in ((-1, RIGHT_LUNG), (1, LEFT_LUNG)):
        labels[largest_component(full[side] & ~heart)] = label

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
    stroke(airway, np.array([(0.5 - 0.005, -0.02), (0.5 - 0.004, a + 0.1), carina]), 0.014, 1.0)
    bronchus = [0.01, 0.009, 0.006]
    stroke(airway, np.array([carina, (0.5 - 0.04, a + 0.34 * h), (0.5 - 0.07, a + 0.4 * h)]), bronchus, 1.0)
    stroke(airway, np.array([carina, (0.5 + 0.045, a + 0.35 * h), (0.5 + 0.085, a + 0.4 * h)]), bronchus, 1.0)
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
    spine = draw_spine(bones, p, uu, vv)
    for side, outline in outlines.items():
        dist = np.abs(outline[:, 0] - 0.5)
        lateral = outline[dist > np.median(dist)]
        order = np.argsort(lateral[:, 1])
        ys, ls = lateral[order, 1], np.abs(lateral[order, 0] - 0.5)

        def lateral_edge(v, ys=ys, ls=ls):
            return np.interp(v, ys, ls, left=0.0, right=ls[-1])
        ribs = np.zeros((n, n), dtype=np.float32)
        draw_ribs(ribs, side, p, lateral_edge, rng)
        clav = np.zeros((n, n), dtype=np.float32)
        draw_clavicle_and_shoulder(clav, side, p, rng)
        bones += ribs * body * (1 - 0.6 * below) + clav * 1.2
    # bone contrast fades where the beam crosses much soft tissue (scatter): through the heart and abdomen
    density += p["bone"] * bones * (1 - 0.35 * np.maximum(heart_soft, below))
    # lung markings: vessels and a fine texture, seen against the lung air
    texture = smooth_noise(rng, n, 1.2 * n / 512) - 0.5 * smooth_noise(rng, n, 4.0 * n / 512)
    in_lung = gaussian_filter(lungs_full.astype(np.float32), 2.0 * n / 512)
    density += (draw_vessels(n, lungs_full, p, rng, config.vessel_contrast) + 0.012 * texture) * in_lung
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
    image = image * (1 + config.nonuniformity * smooth_field(rng, n)) * (1 + 0.04 * (centres[None, :] - 0.5))
    image = np.clip(image, 0, 1) ** p["gamma"]
    image = gaussian_filter(image, config.blur_px * n / 512)
    image = image + config.noise * (0.6 * rng.standard_normal((n, n)) + 0.8 * smooth_noise(rng, n, 0.8))
    image = np.clip(image, 0, 1).astype(np.float32)
    return CXRPhantom(image=image, labels=labels.astype(np.uint8), regions=regions, params=p)


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

