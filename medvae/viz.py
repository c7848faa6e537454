"""Figures (matplotlib, no screen needed). Each function takes NumPy arrays and writes one PNG atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from medvae.io.atomic import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _plt().close(fig)


def latent_scatter(z: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """Scatter of 2-D latent means ``(N, 2)`` coloured by integer label, with a legend."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(z[m, 0], z[m, 1], s=6, alpha=0.7, color=cmap(int(c) % 10), label=str(c))
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(title or "latent means of the test set")
    ax.legend(title="digit", markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save(fig, path)


def single_image(image: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """One grey image ``(H, W)`` in [0, 1]."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def manifold(images: np.ndarray, extent: tuple[float, float], path: str | os.PathLike, title: str = "") -> None:
    """Grid of decoded images ``(G, G, H, W)``; row 0 is the top (largest z[1]), column 0 the smallest z[0]."""
    plt = _plt()
    g, _, h, w = images.shape
    canvas = images.transpose(0, 2, 1, 3).reshape(g * h, g * w)
    lo, hi = extent
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, extent=(lo, hi, lo, hi))
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(title or "decoded latent manifold")
    _save(fig, path)


def loss_curve(train: Sequence[float], val: Sequence[float], path: str | os.PathLike, ylabel: str = "loss") -> None:
    """Train and validation (held-out) loss per epoch, labelled as the epoch lines name them (train, val)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, marker="o", label="train")
    if len(val):
        ax.plot(epochs[: len(val)], val, marker="o", label="val")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def contact_sheet(images, path: str | os.PathLike, ncols: int = 8, gap: int = 2) -> None:
    """Tile images into one 8-bit PNG (no axes): a quick look at many samples (see :func:`tile`)."""
    write_png(tile(images, ncols, gap), path)


def tile(images, ncols: int = 8, gap: int = 2) -> np.ndarray:
    """``(N, H, W)`` images in [0, 1], rows first (display order), tiled ``ncols`` to a row with ``gap``
    pixels of black between them: one 2-D array in [0, 1]."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    n, h, w = images.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    sheet = np.zeros((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        sheet[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = img
    return sheet


def write_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """A 2-D (grey) or ``(H, W, 3)`` (colour) array in [0, 1] as an 8-bit PNG, written atomically."""
    from PIL import Image

    pixels = np.round(np.clip(np.asarray(image, dtype=np.float32), 0, 1) * 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


def display_slices(batch) -> np.ndarray:
    """``(N, C, x, y[, z])`` model images → ``(N, rows, cols)`` for display: channel 0, the middle slice
    of a volume, transposed from medvae's (x, y) order to (rows, columns)."""
    a = np.asarray(batch.detach().cpu().float() if hasattr(batch, "detach") else batch)[:, 0]
    if a.ndim == 4:
        a = a[..., a.shape[-1] // 2]
    return np.swapaxes(a, 1, 2)
