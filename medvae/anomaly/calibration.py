"""What "normal" looks like to a model: the scores of held-out normal images, stored in the model file.

``medvae train vae|vaegan`` scores its validation images (normal by assumption: the model is trained on normal
images) when it saves the final model and keeps the distribution in ``preprocessing["anomaly"]``::

    {"images": 120, "samples": 16, "seed": 0, "source": "...",
     "scores": {"recon_prob": [sorted values, or 1001 quantiles], ...}}

From it, :func:`percentile` places a new image among those normals and :func:`threshold` gives the score above
which an image is flagged at a stated false-alarm rate on normals.
"""

from __future__ import annotations

import numpy as np

from medvae.errors import InputError, UsageError

MAX_STORED = 1001  # more normals than this are kept as this many quantiles


def reference(scores: dict, *, samples: int, seed: int, source: str) -> dict:
    """The ``preprocessing["anomaly"]`` entry for normal images' ``scores`` ``{name: (N,) values}``."""
    stored = {}
    for name, values in scores.items():
        v = np.sort(np.asarray(values, dtype=float))
        if len(v) > MAX_STORED:
            v = np.quantile(v, np.linspace(0, 1, MAX_STORED))
        stored[name] = [round(float(x), 6) for x in v]
    n = len(next(iter(scores.values()))) if scores else 0
    return {"images": n, "samples": samples, "seed": seed, "source": source, "scores": stored}


def normals_of(info, name: str) -> np.ndarray:
    """The stored normal scores ``name`` of a model file (:class:`medvae.checkpoint.ModelInfo`).

    Raises:
        InputError: the file holds no normal scores (it was not trained by this medvae's ``train vae|vaegan``).
    """
    entry = (info.preprocessing or {}).get("anomaly") or {}
    values = (entry.get("scores") or {}).get(name)
    if not values:
        raise InputError(f"{info.path}: the model file holds no scores of held-out normal images; retrain it with "
                         "'medvae train vae', or pass --normal DIR (a folder of normal images to calibrate on)")
    return np.asarray(values, dtype=float)


def percentile(normals: np.ndarray, values) -> np.ndarray:
    """Percent of ``normals`` at or below each of ``values`` (100: above every normal image)."""
    normals = np.sort(np.asarray(normals, dtype=float))
    return 100.0 * np.searchsorted(normals, np.asarray(values, dtype=float), side="right") / len(normals)


def threshold(normals: np.ndarray, fpr: float) -> float:
    """The score above which an image is flagged: the ``1 - fpr`` quantile of ``normals`` (so about ``fpr`` of
    normal images are flagged).

    Raises:
        UsageError: ``fpr`` is not between 0 and 1.
    """
    if not 0 < fpr < 1:
        raise UsageError(f"fpr must be between 0 and 1 (a false-alarm rate such as 0.05), got {fpr}", param="fpr")
    return float(np.quantile(np.asarray(normals, dtype=float), 1 - fpr))
