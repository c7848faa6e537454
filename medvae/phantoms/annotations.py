"""Burnt-in annotations, as real radiographs carry them: side markers, "AP"/"PORTABLE" labels, arrows, dates.

Scanners and PACS burn these into the pixels *after* acquisition: sharp, flat, high-contrast glyphs, often
on a dark box. They are content, not defects, so an enhancer must give them back unchanged; a model that
never saw many of them treats their edges like grid lines or noise and alters them (the do-no-harm check of
``medvae evaluate enhance`` found them behind almost all of a clean film's change). :func:`burn_in` draws a
few into a training patch *before* it is degraded, so the clean target holds them too.

Images follow medvae's 2-D convention: float in [0, 1], shape ``(x, y)``, bright = dense.
"""

from __future__ import annotations

import string

import numpy as np

from medvae.errors import UsageError

WORDS = ("AP", "PA", "L", "R", "PORTABLE", "SUPINE", "UPRIGHT", "ERECT", "SEMI-ERECT", "INSP", "EXP", "1",
         "2", "AP PORTABLE", "LAT")


def _text(rng: np.random.Generator) -> str:
    if rng.random() < 0.6:
        return str(rng.choice(WORDS))
    alphabet = string.ascii_uppercase + string.digits + ":/.- "
    return "".join(rng.choice(list(alphabet), size=int(rng.integers(2, 12)))).strip() or "X"


def burn_in(image: np.ndarray, rng: np.random.Generator, count: int | None = None) -> np.ndarray:
    """A copy of ``image`` (2-D, ``(x, y)``, [0, 1]) with ``count`` (default 1-3) annotations drawn in.

    Each is one of: text (2-12 characters, 6-28 px high) in white or black, optionally on a box of the other
    colour; an arrow; a circled side letter; a small filled square. Positions, sizes and grey levels come
    from ``rng`` alone, so a seeded generator gives the same drawing.
    """
    from PIL import Image, ImageDraw, ImageFont

    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 2:
        raise UsageError(f"image must be 2-D (x, y), got shape {array.shape}", param="image")
    count = int(rng.integers(1, 4)) if count is None else count
    width, height = array.shape  # PIL draws (columns, rows) = (x, y)
    canvas = Image.fromarray(np.zeros((height, width), np.uint8))  # where annotations are: alpha 0..255
    colour = Image.fromarray(np.zeros((height, width), np.uint8))  # their grey level
    draw_alpha, draw_colour = ImageDraw.Draw(canvas), ImageDraw.Draw(colour)

    def shape(method: str, grey: float, *args, **kwargs) -> None:
        getattr(draw_alpha, method)(*args, fill=255, **kwargs)
        getattr(draw_colour, method)(*args, fill=int(round(grey * 255)), **kwargs)

    for _ in range(count):
        bright = rng.random() < 0.8  # most annotations are white
        fg = float(rng.uniform(0.85, 1.0)) if bright else float(rng.uniform(0.0, 0.1))
        bg = float(rng.uniform(0.0, 0.15)) if bright else float(rng.uniform(0.85, 1.0))
        size = int(rng.integers(6, 29))
        x, y = int(rng.integers(0, max(1, width - size))), int(rng.integers(0, max(1, height - size)))
        kind = rng.random()
        if kind < 0.6:  # text, sometimes on a box
            font = ImageFont.load_default(size=size)
            text = _text(rng)
            box = draw_alpha.textbbox((x, y), text, font=font)
            if rng.random() < 0.35:
                pad = int(rng.integers(1, 4))
                shape("rectangle", bg, (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))
            shape("text", fg, (x, y), text, font=font)
        elif kind < 0.8:  # an arrow: a shaft and a head
            length = size * int(rng.integers(2, 4))
            angle = rng.uniform(0, 2 * np.pi)
            tip = (x + length * np.cos(angle), y + length * np.sin(angle))
            shape("line", fg, [(x, y), tip], width=max(1, size // 6))
            back = angle + np.pi
            head = [tip, *[(tip[0] + size * 0.6 * np.cos(back + s), tip[1] + size * 0.6 * np.sin(back + s))
                           for s in (-0.5, 0.5)]]
            shape("polygon", fg, head)
        elif kind < 0.92:  # a circled side marker
            ring = (x, y, x + size * 1.6, y + size * 1.6)
            shape("ellipse", bg, ring)
            draw_alpha.ellipse(ring, outline=255, width=max(1, size // 8))
            draw_colour.ellipse(ring, outline=int(round(fg * 255)), width=max(1, size // 8))
            font = ImageFont.load_default(size=size)
            shape("text", fg, (x + size * 0.4, y + size * 0.2), str(rng.choice(["L", "R"])), font=font)
        else:  # a small filled square (a lead marker, a ruler tick)
            shape("rectangle", fg, (x, y, x + size // 2, y + size // 2))
    alpha = np.asarray(canvas, np.float32).T / 255.0
    grey = np.asarray(colour, np.float32).T / 255.0
    # the colour canvas holds the grey already multiplied by coverage where anti-aliased: divide it back out
    grey = np.where(alpha > 0, np.clip(grey / np.maximum(alpha, 1e-6), 0, 1), 0)
    return (array * (1 - alpha) + grey * alpha).astype(np.float32)


def collimate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``image`` (2-D, ``(x, y)``, [0, 1]) with a collimation margin: beyond a straight edge across
    the patch (along either axis, tilted by up to 3 degrees), the film is flat, white (the detector saw no
    exposure, shown bright) or black, as where a collimator or a cropped film's border meets the exposed
    field. The edge is sharp, softened over at most 1 pixel."""
    from scipy.ndimage import gaussian_filter

    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 2:
        raise UsageError(f"image must be 2-D (x, y), got shape {array.shape}", param="image")
    nx, ny = array.shape
    axis = int(rng.integers(2))
    n = array.shape[axis]
    at = rng.uniform(0.15, 0.85) * n
    tilt = np.tan(np.deg2rad(rng.uniform(-3, 3)))
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    along, across = (x, y) if axis == 0 else (y, x)
    side = (along - at - tilt * (across - across.mean())) * (1 if rng.random() < 0.5 else -1)
    mask = (side > 0).astype(np.float32)
    softness = rng.uniform(0, 1)
    if softness > 0.3:
        mask = gaussian_filter(mask, softness)
    level = float(rng.uniform(0.9, 1.0)) if rng.random() < 0.6 else float(rng.uniform(0.0, 0.08))
    return (array * (1 - mask) + level * mask).astype(np.float32)
